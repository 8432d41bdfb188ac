"""The student seam: what the loop needs of a student, the saved formats it reloads, what retrieval sees.

A student is a DSPy module that answers a task from the lessons it retrieves and saves itself as
JSON. Its implementations are ``StudentProgram`` (one chat call), ``ReActStudent`` (a tool-using
loop) and ``AgentStudent`` (your own agent, ``tutelage.agents.agent``); a new one is one file plus
one line in ``STUDENT_FORMATS``.
"""

from __future__ import annotations

import contextvars
import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self, runtime_checkable

import dspy

from tutelage.errors import DataError
from tutelage.memory.query import LessonFilter

if TYPE_CHECKING:
    from tutelage.memory.store import LessonStore

__all__ = [
    "POLICY_KEYS",
    "STUDENT_FORMATS",
    "StudentProtocol",
    "hidden_source",
    "hiding",
    "lesson_filter",
    "load_student",
    "unhide",
]

# The retrieval policy every student keeps, saves and lets the policy search change.
POLICY_KEYS = (
    "k_examples",
    "k_strategies",
    "scope",
    "mmr",
    "token_budget",
    "as_of_round",
    "teacher_examples",
)

# A saved program's "format" -> "module:Class" whose ``from_json`` rebuilds it
STUDENT_FORMATS: dict[str, str] = {
    "tutelage.student/2": "tutelage.agents.student:StudentProgram",
    "tutelage.react/1": "tutelage.agents.react:ReActStudent",
    "tutelage.agent/1": "tutelage.agents.agent:AgentStudent",
}


@runtime_checkable
class StudentProtocol(Protocol):
    """A student the loop can run, copy with another retrieval policy, save and reload.

    Calling it with ``task=`` (and a suite's fixed ``prefix=``) returns a ``dspy.Prediction`` with
    ``answer`` (the graded reply), ``raw`` (the model's own words), ``lesson_ids`` (what it was shown)
    and, for a student that takes steps, ``steps`` (``tutelage.evals.trajectory.Step`` rows).
    """

    def __call__(self, *, task: str, prefix: str = "") -> dspy.Prediction: ...

    def with_policy(self, **changes: Any) -> Self: ...

    def to_json(self) -> dict[str, Any]: ...

    def save_json(self, path: Path, **meta: Any) -> None: ...

    @classmethod
    def from_json(
        cls, data: dict[str, Any], *, memory: LessonStore | None, as_of_round: int | None = None
    ) -> Self: ...


def load_student(path: Path, *, memory: LessonStore | None, as_of_round: int | None = None) -> Any:
    """Reload a saved student of any registered format; ``as_of_round`` replays that round's memory."""
    data = json.loads(Path(path).read_text())
    fmt = data.get("format")
    if fmt is None or str(fmt).startswith("tutelage.student/"):  # the plain program, any version
        fmt = "tutelage.student/2"
    if fmt not in STUDENT_FORMATS:
        raise DataError(f"{path}: not a saved tutelage student (format {fmt!r})")
    module, _, attr = STUDENT_FORMATS[fmt].partition(":")
    return getattr(importlib.import_module(module), attr).from_json(
        data, memory=memory, as_of_round=as_of_round
    )


# The task whose own lessons retrieval must not show (``make_solver(..., hide_own=True)``): a probe of
# how lessons transfer must not hand a task its own answer. A context variable, so concurrent
# solver threads each hide their own task.
_HIDDEN: contextvars.ContextVar[str | None] = contextvars.ContextVar("tutelage_hidden_source", default=None)


def hidden_source() -> str | None:
    return _HIDDEN.get()


def hiding(task_id: str | None) -> contextvars.Token[str | None]:
    """Hide ``task_id``'s lessons from retrieval in this context (reset with the returned token)."""
    return _HIDDEN.set(task_id)


def unhide(token: contextvars.Token[str | None]) -> None:
    _HIDDEN.reset(token)


def lesson_filter(scope: str | None, as_of_round: int | None) -> LessonFilter:
    """What a student's retrieval may see now: its scope, a replayed round, minus a hidden task's lessons."""
    return LessonFilter(scope=scope, as_of_round=as_of_round, exclude_source=_HIDDEN.get())
