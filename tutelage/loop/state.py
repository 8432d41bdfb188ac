"""The LangGraph state of a run: ids, scores, paths and counters only (clients live in the context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from tutelage.config import RunConfig
from tutelage.evals.suites import Suite, Task
from tutelage.loop.progress import Reporter
from tutelage.loop.rundir import RunPaths
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.memory.leakage import LeakageGuard

__all__ = ["LoopState", "RunContext"]


class LoopState(TypedDict, total=False):
    round: int
    batch_ids: list[str]
    failed_ids: list[str]
    program_path: str
    round_seconds: float
    phase_seconds: dict[str, float]
    train_accuracy: float
    lessons_added: int
    lessons_refused: int
    lessons_rejected: int
    lessons_retired: int
    k_examples: int
    dev_accuracy: float
    rounds: list[dict[str, Any]]
    test_before: float
    test_after: float
    test_seconds: dict[str, float]
    stop_reason: str


@dataclass
class RunContext:
    """Everything a node needs that is not state: config, suite, memory, LM clients, paths, reporter."""

    config: RunConfig
    suite: Suite
    memory: ChromaLessonStore
    student_lm: Any
    teacher_lm: Any
    paths: RunPaths
    reporter: Reporter
    tasks: dict[str, Task] = field(default_factory=dict)
    guard: LeakageGuard = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = self.suite.by_id()
        mem = self.config.memory
        self.guard = LeakageGuard(
            ((t.id, t.input) for t in self.suite.guarded()),
            n=mem.leakage_ngram,
            threshold=mem.leakage_threshold,
        )
