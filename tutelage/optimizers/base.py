"""The one small interface every optimizer implements, and what it may use while compiling.

An optimizer is one file in this package with a class that has a ``name`` and
``compile(student, *, trainset, valset, ctx) -> Compiled``. It must return a ``StudentProgram``
(or a subclass) whose state is plain JSON: the loop saves it with ``save_json`` and the next
process reloads it with ``StudentProgram.load_json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import dspy

from tutelage.agents.student import StudentProgram
from tutelage.config import LoopConfig
from tutelage.evals.harness import Attempt
from tutelage.evals.metrics import Metric
from tutelage.evals.suites import Task
from tutelage.memory._admit import Admission
from tutelage.memory.lesson import Lesson
from tutelage.memory.store import LessonStore

__all__ = ["CompileContext", "Compiled", "Optimizer", "dspy_examples", "float_metric"]

ScoreFn = Callable[[StudentProgram, list[Task], str], float]
FeedbackFn = Callable[[Task, Attempt], str]


@dataclass
class CompileContext:
    """Everything an optimizer may use besides the student and the data.

    ``score(program, tasks, tag)`` runs the student on ``tasks`` concurrently and journaled (a resumed
    compile does not redo finished items) and returns its accuracy. ``feedback(task, attempt)`` asks
    the teacher why an attempt failed (train tasks only; the gold answer is in ``task``). Every LM call
    made through ``student_lm`` or ``teacher_lm`` is counted in the run's cost ledger (and, in the
    loop, journaled so a resumed compile replays it). ``threads``: concurrent student calls (the
    student role's ``concurrency``). ``admit(lessons)`` is how an optimizer writes lessons: the loop's
    admission path (leakage guard, then verification); it returns the ids now active. Without it,
    lessons are written and activated with no guard (an optimizer used outside a run). ``finetune``
    is the ``dspy.Provider`` the weight optimizers (``finetune``, ``better_together``) train through.
    """

    student_lm: dspy.LM
    teacher_lm: dspy.LM | None
    metric: Metric
    score: ScoreFn
    feedback: FeedbackFn
    config: LoopConfig
    memory: LessonStore | None = None
    seed: int = 0
    round: int = 1
    scope: str = ""
    teacher_model: str = ""
    work_dir: Path | None = None
    threads: int = 1
    admit: Callable[[list[Lesson]], list[str]] | None = None
    # DSPy's fine-tuning seam (``tutelage.train.dspy_provider.FinetuneProvider``: the run's trainer
    # and adapter serving) for the optimizers that train weights; None when the run cannot serve them
    finetune: Any = None

    def write_lessons(self, lessons: list[Lesson]) -> list[str]:
        """Write ``lessons`` through ``admit`` (or, outside a run, straight to active); the active ids."""
        if self.admit is not None:
            return self.admit(lessons)
        if self.memory is None:
            return []
        return Admission(None, "off").admit(self.memory, lessons, round=self.round).active


@dataclass
class Compiled:
    """A compiled program and what the optimizer tried (saved in the program's JSON ``meta``)."""

    program: StudentProgram
    trials: list[dict[str, Any]] = field(default_factory=list)


class Optimizer(Protocol):
    name: ClassVar[str]

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled: ...


def dspy_examples(tasks: list[Task]) -> list[dspy.Example]:
    """Tasks as DSPy examples with ``task`` as the input and ``answer`` as the label."""
    return [dspy.Example(task=t.input, answer=t.answer, task_id=t.id).with_inputs("task") for t in tasks]


def float_metric(metric: Metric) -> Callable[..., float]:
    """A DSPy metric ``(example, prediction, trace=None) -> float`` from a suite metric."""

    def score(example: dspy.Example, pred: dspy.Prediction, trace: Any = None) -> float:
        return metric(str(getattr(pred, "answer", "")), str(example.answer))

    return score
