"""The lesson-store seam: the ``LessonStore`` interface, its registry, and the one way to open a store.

Everything outside a store implementation names ``LessonStore``; ``memory.store`` in the config picks
the implementation. Adding a store is one new file (a class with the methods below and an ``open``
classmethod) plus one line in ``STORES``. The contract tests (``tests/test_memory.py``) run over every
registered store.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, runtime_checkable

from tutelage.errors import ConfigError
from tutelage.memory._undo import UndoLog
from tutelage.memory.embed import Embedder
from tutelage.memory.lesson import Lesson, LessonKind, LessonStatus
from tutelage.memory.query import LessonFilter

if TYPE_CHECKING:
    from tutelage.config import MemoryConfig

__all__ = ["STORES", "Hit", "LessonStore", "StoreClass", "open_store", "store_class", "store_kind_at"]

Hit = tuple[Lesson, float]  # a lesson and its cosine similarity to the query

# name -> "module:Class", imported only when chosen (the Chroma client is not loaded for other stores)
STORES: dict[str, str] = {
    "chroma": "tutelage.memory.chroma:ChromaLessonStore",
    "jsonl": "tutelage.memory.jsonl:JsonlLessonStore",
}


@runtime_checkable
class LessonStore(Protocol):
    """Lessons with their vectors: written by the loop, searched by the student, curated each round.

    Semantics every implementation keeps (the contract tests check them): ids come from content, so
    ``add`` of a stored lesson writes nothing (a retired one written again as a candidate in a later
    round comes back); ``put`` replaces records but never their content; ``search`` sees only lessons
    ``where`` admits (by default the active ones), most similar first, ties cut by id; every change a
    round makes is imaged first in ``undo`` when the loop has set one.
    """

    embedder: Embedder
    undo: UndoLog | None

    def add(self, lessons: Iterable[Lesson]) -> list[str]: ...

    def put(self, lessons: Iterable[Lesson]) -> None: ...

    def set_status(
        self, ids: Iterable[str], status: LessonStatus, reason: str, *, round: int | None = None
    ) -> list[Lesson]: ...

    def get(self, ids: list[str]) -> list[Lesson]: ...

    def all(self, where: LessonFilter | None = None) -> list[Lesson]: ...

    def count(self, kind: LessonKind | None = None, status: LessonStatus | None = None) -> int: ...

    def search(
        self,
        text: str,
        *,
        kind: LessonKind | tuple[LessonKind, ...] | None = None,
        k: int = 4,
        where: LessonFilter | None = None,
        mmr: float | None = None,
    ) -> list[Lesson]: ...

    def search_many(
        self,
        texts: list[str],
        *,
        kind: LessonKind | tuple[LessonKind, ...] | None = None,
        k: int = 4,
        where: LessonFilter | None = None,
        mmr: float | None = None,
    ) -> list[list[Hit]]: ...


class StoreClass(Protocol):
    """What the registry needs of an implementation's class: how to open it, and how to recognise it."""

    marker: ClassVar[str]  # a file at the root of a folder that holds this kind of store

    def open(
        self, *, path: Path | None, url: str | None, collection: str, embedder: Embedder
    ) -> LessonStore: ...


def store_class(name: str) -> StoreClass:
    """The implementation registered as ``name`` (one clear line for an unknown name)."""
    if name not in STORES:
        raise ConfigError(f"memory.store {name!r} is not one of: {', '.join(sorted(STORES))}")
    module, _, attr = STORES[name].partition(":")
    cls: StoreClass = getattr(importlib.import_module(module), attr)
    return cls


def open_store(
    cfg: MemoryConfig, *, path: Path | None, embedder: Embedder, collection: str | None = None
) -> LessonStore:
    """The store ``cfg.memory`` names: under ``path`` (embedded), or on ``cfg.url`` when it is a server."""
    return store_class(cfg.store).open(
        path=None if cfg.url else path,
        url=cfg.url,
        collection=collection or cfg.collection_name,
        embedder=embedder,
    )


def store_kind_at(path: Path) -> str | None:
    """The registered store whose files are at the root of ``path``, if any."""
    return next((name for name in STORES if (path / store_class(name).marker).is_file()), None)
