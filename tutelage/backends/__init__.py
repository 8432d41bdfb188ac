"""Model backends: where each role's OpenAI-compatible endpoint comes from, behind one interface.

A backend is one class in one file (``local.py``: llama.cpp serving a GGUF file; ``openai.py``: any
OpenAI-compatible URL) plus one line in ``BACKENDS``; a role picks it with ``provider``. Whatever the
backend, the LM clients are the same (``build_lm``: DSPy's LM over HTTP). No module outside this
package starts a model server or builds an LM client.

Example:
    >>> from tutelage.backends import build_lm, open_endpoints
    >>> with open_endpoints(cfg, log_dir=run_dir) as endpoints:  # doctest: +SKIP
    ...     student = build_lm(cfg.student, endpoints.student, name="student")
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import dspy

from tutelage.backends._clients import build_lm
from tutelage.backends._lm import (
    RETRIED,
    CallJournal,
    CallLedger,
    ItemConnectionError,
    MeteredLM,
    check_endpoint,
    counting_calls,
    label_constraint,
    replayed,
    resolve_api_key,
    systemic_error,
)
from tutelage.config import RoleConfig, RunConfig
from tutelage.errors import ConfigError

__all__ = [
    "BACKENDS",
    "RETRIED",
    "AdapterHost",
    "AdapterRoute",
    "CallJournal",
    "CallLedger",
    "Endpoints",
    "ItemConnectionError",
    "MeteredLM",
    "ModelBackend",
    "backend",
    "build_lm",
    "check_endpoint",
    "counting_calls",
    "label_constraint",
    "open_endpoints",
    "replayed",
    "resolve_api_key",
    "routed",
    "systemic_error",
]

# provider -> "module:Class", imported only when a role names it
BACKENDS: dict[str, str] = {
    "local": "tutelage.backends.local:LocalBackend",
    "openai": "tutelage.backends.openai:OpenAIBackend",
    "vllm": "tutelage.backends.vllm:VLLMBackend",
}


class ModelBackend(Protocol):
    """Where the endpoints of the roles on one provider come from.

    ``open`` starts the servers the roles need, or attaches to theirs; checks that every endpoint
    answers (a failure is one ``TutelageError`` line); yields role name -> ``api_base`` (``.../v1``);
    and stops what it started when the block ends. A backend that only attaches
    (``starts_servers = False``) is opened before any that starts a server, so a typo fails in a second.
    A backend that can serve trained adapters also has ``adapter_host(role) -> AdapterHost``, valid
    while its ``open`` block is.
    """

    starts_servers: ClassVar[bool]

    def open(
        self, *, roles: Mapping[str, RoleConfig], log_dir: Path | None = None
    ) -> AbstractContextManager[dict[str, str]]:
        """Serve ``roles`` (name -> config, all on this provider); started servers log in ``log_dir``."""
        ...


@dataclass(frozen=True)
class AdapterRoute:
    """How a request reaches a served adapter: another model name, and/or extra request-body fields."""

    model: str | None = None  # vLLM, OpenAI: the adapter (or tuned model) is addressed by name
    body: dict[str, Any] = field(default_factory=dict)  # llama.cpp: the per-request ``lora`` scales


class AdapterHost(Protocol):
    """Serves trained adapters on one role's endpoint (what a backend offers after ``open``).

    ``serve`` makes the adapter answer on the endpoint (loading it, or restarting a server the backend
    started) and returns how to address it; requests without that route still reach the base model.
    ``unload`` frees an adapter that was rolled back. ``adapter`` is a ``tutelage.train.Adapter``.
    """

    def serve(self, adapter: Any) -> AdapterRoute: ...

    def unload(self, adapter: Any) -> None: ...


def routed(lm: dspy.LM, route: AdapterRoute) -> dspy.LM:
    """A copy of ``lm`` (same ledger, role and journal) whose requests go to ``route``'s adapter."""
    changes: dict[str, Any] = {}
    if route.model is not None:
        changes["model"] = f"{str(lm.model).split('/', 1)[0]}/{route.model}"  # same provider
    if route.body:
        changes["extra_body"] = {**(lm.kwargs.get("extra_body") or {}), **route.body}
    return lm.copy(**changes)


@dataclass(frozen=True)
class Endpoints:
    """Resolved base URLs (``.../v1``) of the student and the teacher (empty when the teacher is off),
    and the student backend's adapter host (None: its backend cannot serve trained adapters)."""

    student: str
    teacher: str
    adapters: AdapterHost | None = None


def backend(provider: str, *, role: str = "role") -> ModelBackend:
    """The backend registered for ``provider``; an unknown one is a ``ConfigError`` naming ``role``."""
    if provider not in BACKENDS:
        known = ", ".join(sorted(BACKENDS))
        raise ConfigError(f"{role}.provider {provider!r} is not a model backend (known: {known})")
    module, _, attr = BACKENDS[provider].partition(":")
    cls: type[ModelBackend] = getattr(importlib.import_module(module), attr)
    return cls()


@contextlib.contextmanager
def open_endpoints(cfg: RunConfig, *, log_dir: Path | None = None) -> Iterator[Endpoints]:
    """Open every role's backend, attaching ones first; stop the servers started when the block ends.

    Example:
        >>> with open_endpoints(load_config(None)) as endpoints:  # doctest: +SKIP
        ...     print(endpoints.student)  # http://127.0.0.1:PORT/v1
    """
    roles = {"student": cfg.student, "teacher": cfg.teacher}
    if not cfg.teacher_on:  # teacher: off: only the student's endpoint is opened
        roles = {"student": cfg.student}
    served: dict[str, dict[str, RoleConfig]] = {}
    for name, role in roles.items():
        served.setdefault(role.provider, {})[name] = role
    opened = sorted(
        ((backend(provider, role=next(iter(group))), group) for provider, group in served.items()),
        key=lambda pair: pair[0].starts_servers,
    )
    bases: dict[str, str] = {}
    host: AdapterHost | None = None
    with contextlib.ExitStack() as stack:
        for chosen, group in opened:
            bases.update(stack.enter_context(chosen.open(roles=group, log_dir=log_dir)))
            hosting = getattr(chosen, "adapter_host", None)  # optional: not every backend serves adapters
            if "student" in group and hosting is not None:
                host = hosting("student")
        yield Endpoints(student=bases["student"], teacher=bases.get("teacher", ""), adapters=host)
