"""The checkpointer seam: where a run's LangGraph checkpoints live, picked by ``checkpoints.url``.

No URL keeps them in the run folder (``checkpoints.sqlite``); a URL's scheme picks the registered
implementation (``sqlite://``, ``postgresql://``). Adding one is one new file with a ``Checkpoints``
class plus one line in ``CHECKPOINTERS``. Every run's checkpoints are filed under its own thread id
(``RunPaths.thread_id``, the run id), so many runs can share one database.
"""

from __future__ import annotations

import importlib
from contextlib import AbstractContextManager
from typing import Protocol
from urllib.parse import urlparse

from langgraph.checkpoint.base import BaseCheckpointSaver

from tutelage.config import RunConfig
from tutelage.errors import ConfigError
from tutelage.rundir import RunPaths

__all__ = ["CHECKPOINTERS", "Checkpoints", "checkpointer", "checkpoints_for"]

# URL scheme -> "module:Class"; a run without checkpoints.url uses "sqlite" in its own folder
CHECKPOINTERS: dict[str, str] = {
    "sqlite": "tutelage.checkpoints.sqlite:SqliteCheckpoints",
    "postgresql": "tutelage.checkpoints.postgres:PostgresCheckpoints",
    "postgres": "tutelage.checkpoints.postgres:PostgresCheckpoints",
}


class Checkpoints(Protocol):
    """One run's checkpoints: whether the run has begun storing them, and a saver open while it runs."""

    thread_id: str

    def exists(self) -> bool: ...

    def open(self) -> AbstractContextManager[BaseCheckpointSaver[str]]: ...


class _Factory(Protocol):
    def __call__(self, url: str | None, *, paths: RunPaths) -> Checkpoints: ...


def checkpointer(url: str | None) -> _Factory:
    """The implementation for ``checkpoints.url`` (one clear line for a scheme nobody registered)."""
    scheme = urlparse(url).scheme.split("+")[0] if url else "sqlite"
    if scheme not in CHECKPOINTERS:
        known = ", ".join(f"{name}://" for name in sorted(CHECKPOINTERS))
        raise ConfigError(f"checkpoints.url {url!r}: no checkpointer for {scheme!r} (known: {known})")
    module, _, attr = CHECKPOINTERS[scheme].partition(":")
    factory: _Factory = getattr(importlib.import_module(module), attr)
    return factory


def checkpoints_for(cfg: RunConfig, paths: RunPaths) -> Checkpoints:
    """The checkpoints of the run in ``paths``, where ``cfg.checkpoints.url`` says they live."""
    return checkpointer(cfg.checkpoints.url)(cfg.checkpoints.url, paths=paths)
