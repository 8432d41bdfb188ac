"""The LangGraph state of a run: ids, scores, paths and counters only (clients live in the context)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

from tutelage.agents.ledger import Ledger
from tutelage.backends import AdapterHost
from tutelage.config import RunConfig
from tutelage.evals.suites import Suite, Task
from tutelage.loop.progress import Reporter
from tutelage.memory._admit import Admission
from tutelage.memory._leakage import LeakageGuard
from tutelage.memory.store import LessonStore
from tutelage.rundir import RunPaths

__all__ = ["LoopState", "RunContext"]


class LoopState(TypedDict, total=False):
    round: int
    batch_ids: list[str]
    failed_ids: list[str]
    program_path: str  # the incumbent: the last accepted program (round 0: the starting one)
    candidate_path: str | None  # this round's compiled program, until ``decide``
    incumbent_dev_path: str  # the incumbent's per-item dev journal, for the paired comparison
    incumbent_round: int
    dev_start: float
    dev_incumbent: float
    accepted: bool
    decision: str | None
    gain: float | None
    p_value: float | None
    rollbacks_in_row: int
    lessons_rolled_back: int
    monitor_fit: float | None
    flag: str | None
    budget_stop: str | None
    finetune_rows: dict[str, int]
    train: dict[str, Any] | None  # this round's weights training (adapter, cost), or why it did not run
    round_seconds: float
    phase_seconds: dict[str, float]
    train_accuracy: float
    lessons_added: int
    lessons_dropped: int
    lessons_refused: int
    lessons_rejected: int
    lessons_retired: int
    k_examples: int
    dev_accuracy: float | None  # this round's compiled program on dev
    rounds: list[dict[str, Any]]
    test_before: float
    test_after: float
    test_seconds: dict[str, float]
    stop_reason: str


@dataclass
class RunContext:
    """Everything a node needs that is not state: config, suite, memory, LM clients (``teacher_lm`` is
    None with ``teacher: off``), paths, reporter, the cost ledger the LM clients record into, and the
    admission path every lesson takes into the memory."""

    config: RunConfig
    suite: Suite
    memory: LessonStore
    student_lm: Any
    teacher_lm: Any
    paths: RunPaths
    reporter: Reporter
    ledger: Ledger = field(default_factory=Ledger)
    adapters: AdapterHost | None = None  # serves trained adapters on the student's endpoint
    tasks: dict[str, Task] = field(default_factory=dict)
    guard: LeakageGuard = field(init=False)
    admission: Admission = field(init=False)

    def __post_init__(self) -> None:
        self.tasks = self.suite.by_id()
        mem = self.config.memory
        self.guard = LeakageGuard(
            ((t.id, t.input) for t in self.suite.guarded()),
            n=mem.leakage_ngram,
            threshold=mem.leakage_threshold,
        )
        self.admission = Admission(self.guard, mem.verify)
