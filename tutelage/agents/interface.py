"""The interface your own agent meets: called with a task and its retrieved ``Lessons``, it returns a
``Trajectory``; it calls its model through ``agent_lm()`` so the run's ledger sees every call."""

from __future__ import annotations

import contextvars
import importlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import dspy

from tutelage.backends.meter import meter_for
from tutelage.errors import ConfigError, TutelageError
from tutelage.evals.trajectory import Trajectory

__all__ = ["Agent", "Lessons", "agent_base_url", "agent_lm", "import_object", "lm_for_agent", "reset_lm"]

_LM: contextvars.ContextVar[Any] = contextvars.ContextVar("tutelage_agent_lm", default=None)


@dataclass(frozen=True)
class Lessons:
    """What retrieval found for one task: example ``(input, reply)`` pairs, most relevant first, and
    strategies; ``ids`` name them all (the run credits lessons by id)."""

    examples: tuple[tuple[str, str], ...] = ()
    strategies: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.examples or self.strategies)

    def as_text(self) -> str:
        """The lessons as one block for a system message ("" when there are none)."""
        parts = []
        if self.strategies:
            parts.append("Strategies:\n" + "\n".join(f"- {s}" for s in self.strategies))
        if self.examples:
            # a worked example's reply is its solution (several lines, ending in its answer): shown as is
            shown = "\n".join(
                f"Input: {x}\n{y}" if "\n" in y.strip() else f"Input: {x}\nAnswer: {y}"
                for x, y in reversed(self.examples)
            )
            parts.append("Solved examples:\n" + shown)
        return "\n\n".join(parts)


@runtime_checkable
class Agent(Protocol):
    """A student: given a task and the lessons retrieved for it, what it did (answer and steps)."""

    def __call__(self, task: str, lessons: Lessons) -> Trajectory: ...


def agent_lm() -> dspy.LM:
    """The student LM tutelage gives the agent now (metered into the run's ledger).

    Example:
        >>> def my_agent(task, lessons):  # doctest: +SKIP
        ...     lm = tutelage.agent_lm()
        ...     return lm(messages=[{"role": "system", "content": lessons.as_text()},
        ...                         {"role": "user", "content": task}])[0]
    """
    lm = _LM.get() or dspy.settings.lm
    if lm is None:
        raise TutelageError("no student LM here: agent_lm() is for agents run by tutelage (improve, Student)")
    return lm


def agent_base_url() -> str:
    """An OpenAI-compatible base URL for an agent's own client (OpenAI SDK, ``ChatOpenAI``, httpx):
    a local proxy to the run's student endpoint that records every call in the ledger, as
    ``agent_lm()`` does. Any ``model`` name will do; the run's is used.

    Example:
        >>> client = openai.OpenAI(base_url=tutelage.agent_base_url(), api_key="-")  # doctest: +SKIP
    """
    return str(meter_for(agent_lm()).base_url)


def import_object(path: str) -> Any:
    """The object at ``pkg.mod:attr`` (``attr`` may be dotted); a bad path is one ConfigError line."""
    module, sep, attr = path.partition(":")
    if not sep or not module or not attr:
        raise ConfigError(f"student.program must be an import path module:attr, got {path!r}")
    if module not in sys.modules and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # `tutelage resume` finds your package where you run it, as uvicorn does
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"student.program {path!r} cannot be imported: {exc}") from None
    return obj


def lm_for_agent(lm: Any) -> contextvars.Token[Any]:
    """Make ``lm`` what ``agent_lm()`` returns in this context (reset with the returned token)."""
    return _LM.set(lm)


def reset_lm(token: contextvars.Token[Any]) -> None:
    _LM.reset(token)
