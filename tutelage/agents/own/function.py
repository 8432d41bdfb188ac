"""A plain function as the student: ``fn(task, lessons) -> str | Trajectory``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from tutelage.agents.interface import Lessons
from tutelage.evals.trajectory import Step, Trajectory

__all__ = ["FunctionAgent"]


class FunctionAgent:
    """Calls ``fn(task, lessons)``; a string reply is the answer, one prediction step."""

    is_tutelage_agent: ClassVar[bool] = True

    def __init__(self, fn: Callable[[str, Lessons], Any]) -> None:
        self.fn = fn

    @staticmethod
    def accepts(obj: Any) -> bool:
        return callable(obj)

    def __call__(self, task: str, lessons: Lessons) -> Trajectory:
        out = self.fn(task, lessons)
        if isinstance(out, Trajectory):
            return out
        if not isinstance(out, str):
            raise TypeError(f"the agent returned {type(out).__name__}, not a str or a Trajectory")
        return Trajectory(answer=out, steps=(Step("prediction", out),))
