"""Adapters from the agents people already have to tutelage's ``Agent`` interface, one file each.

``wrap(obj)`` picks the adapter by what ``obj`` is: a DSPy module, a LangGraph compiled graph, or
any callable ``fn(task, lessons) -> str | Trajectory``. A new kind of agent is one file and one
line in ``ADAPTERS``.
"""

from __future__ import annotations

import importlib
from typing import Any

from tutelage.agents.interface import Agent
from tutelage.errors import ConfigError

__all__ = ["ADAPTERS", "wrap"]

# (what the object is, "module:Class" of its adapter), tried in order; the callable comes last
ADAPTERS: tuple[tuple[str, str], ...] = (
    ("dspy", "tutelage.agents.own.dspy_module:DSPyAgent"),
    ("langgraph", "tutelage.agents.own.langgraph_graph:GraphAgent"),
    ("callable", "tutelage.agents.own.function:FunctionAgent"),
)


def wrap(obj: Any) -> Agent:
    """``obj`` as an ``Agent`` (an adapter that is already one is returned as it is)."""
    if getattr(obj, "is_tutelage_agent", False):
        return obj  # type: ignore[no-any-return]
    for _, path in ADAPTERS:
        module, _, name = path.partition(":")
        adapter = getattr(importlib.import_module(module), name)
        if adapter.accepts(obj):
            return adapter(obj)  # type: ignore[no-any-return]
    raise ConfigError(
        f"student.program {obj!r} is not an agent: give a DSPy module, a LangGraph compiled graph "
        "or a function fn(task, lessons)"
    )
