"""``bootstrap``: ``dspy.BootstrapFewShot`` adds up to two of the student's own successful traces
as fixed demos (plain chat adapter, float metric)."""

from __future__ import annotations

from typing import ClassVar

import dspy

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.student import StudentProgram
from tutelage.evals.suites import Task
from tutelage.optimizers.base import CompileContext, Compiled, dspy_examples, float_metric

__all__ = ["Bootstrap"]


class Bootstrap:
    name: ClassVar[str] = "bootstrap"

    def __init__(self, max_demos: int = 2) -> None:
        self.max_demos = max_demos

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled:
        optimizer = dspy.BootstrapFewShot(
            metric=float_metric(ctx.metric),
            max_bootstrapped_demos=self.max_demos,
            max_labeled_demos=0,
            max_rounds=1,
        )
        with dspy.context(lm=ctx.student_lm, adapter=PlainChatAdapter()):
            compiled: StudentProgram = optimizer.compile(student, trainset=dspy_examples(trainset))
        return Compiled(compiled, [{"demos": len(compiled.predict.demos), "n": len(trainset)}])
