"""``none``: the student unchanged (the memory still grows; only the program stays)."""

from __future__ import annotations

from typing import ClassVar

from tutelage.agents.student import StudentProgram
from tutelage.evals.suites import Task
from tutelage.optimizers.base import CompileContext, Compiled

__all__ = ["Unchanged"]


class Unchanged:
    name: ClassVar[str] = "none"

    def compile(
        self, student: StudentProgram, *, trainset: list[Task], valset: list[Task], ctx: CompileContext
    ) -> Compiled:
        return Compiled(student.deepcopy())
