"""What every DSPy-driven optimizer needs around the student: a breaker that stops the search on
the first systemic failure, and the student as DSPy's evaluators see it.

DSPy's evaluators (and GEPA's proposer loop) count a raising program as one failed item and keep
going, so a dead endpoint or a spent budget would otherwise only show up as low scores.
"""

from __future__ import annotations

import threading
from typing import Any

import dspy
from dspy.utils.exceptions import AdapterParseError

from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.student import StudentProgram
from tutelage.backends import systemic_error
from tutelage.errors import TutelageError

__all__ = ["Breaker", "Guarded"]


class Breaker:
    """The first systemic failure of a compile; every model call after it fails at once with it.

    GEPA scores a raising program as a failed item and logs a raising proposer, so a dead endpoint
    would otherwise only lower scores. Shared by every copy of the program (``deepcopy`` returns it).
    """

    def __init__(self) -> None:
        self.error: TutelageError | None = None
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def trip(self, exc: BaseException, *, role: str) -> TutelageError | None:
        err = exc if isinstance(exc, TutelageError) else systemic_error(exc, role=role)
        if err is not None:
            with self._lock:
                self.error = self.error or err
        return err

    def __deepcopy__(self, memo: dict[int, Any]) -> Breaker:
        return self


class Guarded(dspy.Module):
    """The student as the optimizer sees it: plain chat turns, per-task failures as empty answers."""

    def __init__(self, program: StudentProgram, breaker: Breaker) -> None:
        super().__init__()
        self.program = program
        self.breaker = breaker

    def forward(self, task: str) -> dspy.Prediction:
        self.breaker.check()
        try:
            with dspy.context(adapter=PlainChatAdapter()):
                pred: dspy.Prediction = self.program(task=task)
                return pred
        except AdapterParseError:
            pass
        except Exception as exc:
            if (err := self.breaker.trip(exc, role="student")) is not None:
                raise err from None
        return dspy.Prediction(answer="", raw="", lesson_ids=[])

    def deepcopy(self) -> Guarded:
        return Guarded(self.program.deepcopy(), self.breaker)
