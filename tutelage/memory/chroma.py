"""The lesson store on ChromaDB (embedded ``PersistentClient``); the only module that imports chromadb.

Vectors always come from tutelage's own embedder and are passed in explicitly; the collection
records the embedding model id and refuses to be opened with another one.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import chromadb
from chromadb.config import Settings

from tutelage.errors import ConfigError
from tutelage.memory.embed import Embedder
from tutelage.memory.lesson import Lesson, LessonKind

__all__ = ["ChromaLessonStore"]

_META_FIELDS = ("kind", "answer", "round", "source_task_id", "teacher_model", "diagnosis")


def _to_lesson(lesson_id: str, document: str, meta: dict[str, Any]) -> Lesson:
    return Lesson(id=lesson_id, text=document, **{k: meta[k] for k in _META_FIELDS if k in meta})


class ChromaLessonStore:
    """Lessons in an embedded Chroma collection under ``path``.

    Example:
        >>> from tutelage.testing import HashEmbedder
        >>> store = ChromaLessonStore(tmp_path / "memory", embedder=HashEmbedder())  # doctest: +SKIP
        >>> store.add([lesson]); store.search("my card is late", kind="example", k=4)  # doctest: +SKIP
    """

    def __init__(self, path: str | Path, *, embedder: Embedder, collection: str = "lessons") -> None:
        self.path = Path(path)
        self.embedder = embedder
        self._client = chromadb.PersistentClient(
            path=str(self.path), settings=Settings(anonymized_telemetry=False, allow_reset=False)
        )
        self._col = self._client.get_or_create_collection(
            collection,
            embedding_function=None,
            # A wide search beam: lesson stores are small enough that recall matters more than microseconds.
            metadata={"hnsw:space": "cosine", "hnsw:search_ef": 100, "embedding_model": embedder.model_id},
        )
        stored_model = (self._col.metadata or {}).get("embedding_model")
        if stored_model != embedder.model_id:
            raise ConfigError(
                f"memory at {self.path} was embedded with {stored_model!r}, not {embedder.model_id!r}; "
                "use the same memory.embedder or a new run directory"
            )
        self._write_lock = threading.Lock()

    def add(self, lessons: list[Lesson]) -> list[str]:
        """Write lessons whose ids are not stored yet; return the ids that were new."""
        unique = list({lesson.id: lesson for lesson in lessons}.values())
        if not unique:
            return []
        with self._write_lock:
            existing = set(self._col.get(ids=[lesson.id for lesson in unique], include=[])["ids"])
            fresh = [lesson for lesson in unique if lesson.id not in existing]
            if fresh:
                self._col.add(
                    ids=[lesson.id for lesson in fresh],
                    documents=[lesson.text for lesson in fresh],
                    embeddings=self.embedder.embed([lesson.text for lesson in fresh]),  # type: ignore[arg-type]
                    metadatas=[{k: getattr(lesson, k) for k in _META_FIELDS} for lesson in fresh],
                )
        return [lesson.id for lesson in fresh]

    def count(self, kind: LessonKind | None = None) -> int:
        if kind is None:
            return int(self._col.count())
        return len(self._col.get(where={"kind": kind}, include=[])["ids"])

    def all(self) -> list[Lesson]:
        """Every lesson, ordered by round then id (stable for listings and reports)."""
        got = self._col.get(include=["documents", "metadatas"])
        lessons = [
            _to_lesson(i, d, dict(m))
            for i, d, m in zip(got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True)
        ]
        return sorted(lessons, key=lambda lesson: (lesson.round, lesson.id))

    def search(self, text: str, *, kind: LessonKind | None = None, k: int = 4) -> list[Lesson]:
        """The ``k`` lessons most similar to ``text`` (most similar first)."""
        if k <= 0:
            return []
        return self.search_many([text], kind=kind, k=k)[0]

    def search_many(
        self, texts: list[str], *, kind: LessonKind | None = None, k: int = 4
    ) -> list[list[Lesson]]:
        if k <= 0 or not texts:
            return [[] for _ in texts]
        total = self.count(kind)
        if total == 0:
            return [[] for _ in texts]
        got = self._col.query(
            query_embeddings=self.embedder.embed(texts),  # type: ignore[arg-type]
            n_results=min(k, total),
            where={"kind": kind} if kind else None,
            include=["documents", "metadatas"],
        )
        return [
            [_to_lesson(i, d, dict(m)) for i, d, m in zip(ids, docs, metas, strict=True)]
            for ids, docs, metas in zip(
                got["ids"], got["documents"] or [], got["metadatas"] or [], strict=True
            )
        ]
