"""Compilers that turn this round's student and memory into the program used next round.

Each is a DSPy ``Teleprompter`` with ``compile(student, *, trainset)``:

- ``retrieval-search``: tries each retrieval depth (how many example lessons the student sees) on a
  minibatch of train tasks whose text is not in memory, keeps the best (ties: fewer lessons, a
  shorter and cheaper prompt).
- ``bootstrap``: ``dspy.BootstrapFewShot`` adds up to two of the student's own successful traces as
  fixed demos.
- ``none``: the student unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import dspy
from dspy.teleprompt import Teleprompter

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.student import StudentProgram
from tutelage.evals.metrics import Metric
from tutelage.evals.suites import Task

__all__ = ["CompileReport", "RetrievalDepthSearch", "build_optimizer"]

ScoreFn = Callable[[StudentProgram, list[Task], str], float]


@dataclass
class CompileReport:
    optimizer: str
    trials: list[dict[str, Any]] = field(default_factory=list)


class RetrievalDepthSearch(Teleprompter):
    """Pick the retrieval depth by measured accuracy on a train minibatch."""

    def __init__(self, *, candidates: tuple[int, ...], score: ScoreFn) -> None:
        super().__init__()
        self.candidates = tuple(sorted(set(candidates)))
        self.score = score
        self.report = CompileReport("retrieval-search")

    def compile(self, student: StudentProgram, *, trainset: list[Task], **_: Any) -> StudentProgram:  # type: ignore[override]
        best, best_score = student, -1.0
        for k in self.candidates:
            candidate = student.with_policy(k_examples=k)
            value = self.score(candidate, trainset, f"k{k}")
            self.report.trials.append({"k_examples": k, "score": value, "n": len(trainset)})
            if value > best_score:
                best, best_score = candidate, value
        return best


class BootstrapDemos(Teleprompter):
    """``dspy.BootstrapFewShot`` over train tasks, with the plain chat adapter and a float metric."""

    def __init__(self, *, metric: Metric, lm: dspy.LM, max_demos: int = 2) -> None:
        super().__init__()
        self.metric, self.lm, self.max_demos = metric, lm, max_demos
        self.report = CompileReport("bootstrap")

    def compile(self, student: StudentProgram, *, trainset: list[Task], **_: Any) -> StudentProgram:  # type: ignore[override]
        examples = [dspy.Example(task=t.input, answer=t.answer).with_inputs("task") for t in trainset]

        def metric(example: dspy.Example, pred: dspy.Prediction, trace: Any = None) -> float:
            return self.metric(str(pred.answer), str(example.answer))

        optimizer = dspy.BootstrapFewShot(
            metric=metric, max_bootstrapped_demos=self.max_demos, max_labeled_demos=0, max_rounds=1
        )
        with dspy.context(lm=self.lm, adapter=PlainChatAdapter()):
            compiled = optimizer.compile(student, trainset=examples)
        self.report.trials.append({"demos": len(compiled.predict.demos), "n": len(trainset)})
        return compiled  # type: ignore[no-any-return]


class Unchanged(Teleprompter):
    def __init__(self) -> None:
        super().__init__()
        self.report = CompileReport("none")

    def compile(self, student: StudentProgram, *, trainset: list[Task], **_: Any) -> StudentProgram:  # type: ignore[override]
        return student.deepcopy()


def build_optimizer(
    name: str, *, candidates: tuple[int, ...], score: ScoreFn, metric: Metric, lm: dspy.LM
) -> RetrievalDepthSearch | BootstrapDemos | Unchanged:
    if name == "retrieval-search":
        return RetrievalDepthSearch(candidates=candidates, score=score)
    if name == "bootstrap":
        return BootstrapDemos(metric=metric, lm=lm)
    return Unchanged()
