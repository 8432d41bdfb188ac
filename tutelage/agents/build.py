"""Build the student a run config asks for: a plain StudentProgram, a tool-using ReActStudent, or
your own agent (``student.program``) in an AgentStudent."""

from __future__ import annotations

from typing import Any

from tutelage.agents.agent import AgentStudent
from tutelage.agents.react import ReActStudent
from tutelage.agents.student import StudentProgram
from tutelage.config import RunConfig
from tutelage.errors import ConfigError
from tutelage.memory.store import LessonStore
from tutelage.tools.sandbox import SandboxUnavailable, require_bwrap

__all__ = ["build_student", "require_tools"]


def require_tools(cfg: RunConfig) -> None:
    """Refuse, with one line, a student whose tools cannot run safely here (no bubblewrap)."""
    agent = cfg.agent
    if agent.kind == "react" and "python" in agent.tools and agent.python_sandbox == "bwrap":
        try:
            require_bwrap()
        except SandboxUnavailable as exc:
            raise ConfigError(str(exc)) from None


def build_student(
    cfg: RunConfig,
    *,
    instructions: str,
    memory: LessonStore | None,
    choices: list[str] | None,
    scope: str | None,
) -> StudentProgram:
    """The starting student of a run: ``cfg.agent`` picks its shape, ``cfg.memory`` its retrieval.

    Example:
        >>> student = build_student(cfg, instructions=suite.instruction, memory=store,  # doctest: +SKIP
        ...                         choices=suite.labels, scope=suite.name)
    """
    require_tools(cfg)
    mem, agent = cfg.memory, cfg.agent
    common: dict[str, Any] = {
        "memory": memory,
        "choices": choices,
        "scope": scope,
        "k_examples": mem.k_examples,
        "k_strategies": mem.k_strategies,
        "mmr": mem.mmr,
        "token_budget": mem.token_budget,
    }
    if cfg.student.program is not None:
        return AgentStudent(instructions, program=cfg.student.program, **common)
    if agent.kind == "plain":
        return StudentProgram(instructions, **common)
    return ReActStudent(
        instructions,
        tools=agent.tools,
        max_steps=agent.max_steps,
        python_timeout=agent.python_timeout,
        python_memory_mb=agent.python_memory_mb,
        python_sandbox=agent.python_sandbox,
        **common,
    )
