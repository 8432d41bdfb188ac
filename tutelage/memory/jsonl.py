"""A small lesson store held in memory and saved as one JSONL file (``memory.store: jsonl``).

Exact search by brute force over numpy vectors, so it needs no index and no server: for tests, for
a memory of a few thousand lessons, and as the example of what a new store implements. With no
``path`` it lives only in memory. Each write replaces the file atomically, so a kill never leaves a
half-written store.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

import numpy as np

from tutelage import runfiles
from tutelage.errors import ConfigError, DataError
from tutelage.memory._undo import UndoLog
from tutelage.memory.embed import Embedder
from tutelage.memory.lesson import Lesson, LessonKind, LessonStatus
from tutelage.memory.query import LessonFilter, flat, mmr_order
from tutelage.memory.store import Hit

__all__ = ["JsonlLessonStore"]


def _changed_in(lesson: Lesson) -> int | None:
    return lesson.history[-1].round if lesson.history else lesson.round


class JsonlLessonStore:
    """Lessons and their vectors in a dict, saved to ``path/<collection>.jsonl`` after every write.

    Example:
        >>> from tutelage.testing import HashEmbedder
        >>> store = JsonlLessonStore(None, embedder=HashEmbedder())  # in memory only
        >>> store.count()
        0
    """

    marker: ClassVar[str] = "lessons.jsonl"  # the default collection's file

    @classmethod
    def open(
        cls, *, path: Path | None, url: str | None, collection: str, embedder: Embedder
    ) -> JsonlLessonStore:
        if url is not None:
            raise ConfigError("memory.store 'jsonl' is a local file: unset memory.url or use 'chroma'")
        return cls(path, embedder=embedder, collection=collection)

    def __init__(self, path: str | Path | None, *, embedder: Embedder, collection: str = "lessons") -> None:
        self.embedder = embedder
        self.undo: UndoLog | None = None
        self.file = Path(path) / f"{collection}.jsonl" if path is not None else None
        self._lessons: dict[str, Lesson] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        if self.file is not None and self.file.is_file():
            self._load(self.file)

    def _load(self, file: Path) -> None:
        lines = file.read_text(encoding="utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        if header.get("embedding_model") != self.embedder.model_id:
            raise ConfigError(
                f"memory at {file} was embedded with {header.get('embedding_model')!r}, not "
                f"{self.embedder.model_id!r}; use the same memory.embedder or a new run directory"
            )
        for n, line in enumerate(lines[1:], start=2):
            try:
                row = json.loads(line)
                lesson = Lesson.model_validate(row["record"])
            except (ValueError, KeyError) as exc:
                raise DataError(f"{file}:{n}: not a lesson row ({exc.__class__.__name__})") from None
            self._lessons[lesson.id] = lesson
            self._vectors[lesson.id] = np.asarray(row["vector"], dtype=float)

    def _save(self) -> None:
        if self.file is None:
            return
        rows = [json.dumps({"embedding_model": self.embedder.model_id})]
        for i, lesson in self._lessons.items():
            rows.append(
                json.dumps({"record": lesson.model_dump(mode="json"), "vector": self._vectors[i].tolist()})
            )
        runfiles.write_text(self.file, "".join(f"{row}\n" for row in rows), fsync=True)

    # -- writing ---------------------------------------------------------------------------------

    def add(self, lessons: Iterable[Lesson]) -> list[str]:
        unique = list({x.id: x for x in lessons}.values())
        with self._lock:
            stored = {x.id: self._lessons[x.id] for x in unique if x.id in self._lessons}
            fresh = [
                x.model_copy(update={"embedding_model": self.embedder.model_id})
                for x in unique
                if x.id not in stored
            ]
            revived = [
                old.with_status(
                    "candidate", f"written again (was retired: {old.reason})", round=_changed_in(x)
                )
                for x in unique
                if (old := stored.get(x.id)) is not None
                and old.status == "retired"
                and x.status == "candidate"
                and _changed_in(old) != _changed_in(x)
            ]
            if not fresh and not revived:
                return []
            if self.undo is not None:
                self.undo.before([x.id for x in [*fresh, *revived]], stored)
            vectors = self.embedder.embed([x.text for x in fresh]) if fresh else []
            for lesson, vector in zip(fresh, vectors, strict=True):
                self._lessons[lesson.id] = lesson
                self._vectors[lesson.id] = np.asarray(vector, dtype=float)
            self._lessons.update((x.id, x) for x in revived)
            self._save()
        return [x.id for x in [*fresh, *revived]]

    def put(self, lessons: Iterable[Lesson]) -> None:
        batch = list({x.id: x for x in lessons}.values())
        if batch:
            with self._lock:
                self._put_unlocked(batch)

    def _put_unlocked(self, batch: list[Lesson]) -> None:
        if not batch:
            return
        missing = [x.id for x in batch if x.id not in self._lessons]
        if missing:
            raise KeyError(f"no such lesson: {missing[0]}")
        for x in batch:
            old = self._lessons[x.id]
            if (x.kind, x.text, x.answer, x.rationale) != (old.kind, old.text, old.answer, old.rationale):
                raise ValueError(f"lesson {x.id}: content is fixed by the id; write a new lesson")
        if self.undo is not None:
            self.undo.before([x.id for x in batch], {x.id: self._lessons[x.id] for x in batch})
        self._lessons.update((x.id, x) for x in batch)
        self._save()

    def set_status(
        self, ids: Iterable[str], status: LessonStatus, reason: str, *, round: int | None = None
    ) -> list[Lesson]:
        with self._lock:
            changed = [x.with_status(status, reason, round=round) for x in self.get(list(ids))]
            self._put_unlocked(changed)
        return changed

    # -- reading ---------------------------------------------------------------------------------

    def get(self, ids: list[str]) -> list[Lesson]:
        return [self._lessons[i] for i in ids if i in self._lessons]

    def all(self, where: LessonFilter | None = None) -> list[Lesson]:
        chosen = [x for x in self._lessons.values() if where is None or where.matches(flat(x))]
        return sorted(chosen, key=lambda x: (x.round, x.id))

    def count(self, kind: LessonKind | None = None, status: LessonStatus | None = None) -> int:
        if kind is None and status is None:
            return len(self._lessons)
        return len(self.all(LessonFilter(kind=kind, status=status)))

    def search(
        self,
        text: str,
        *,
        kind: LessonKind | tuple[LessonKind, ...] | None = None,
        k: int = 4,
        where: LessonFilter | None = None,
        mmr: float | None = None,
    ) -> list[Lesson]:
        return [x for x, _ in self.search_many([text], kind=kind, k=k, where=where, mmr=mmr)[0]]

    def search_many(
        self,
        texts: list[str],
        *,
        kind: LessonKind | tuple[LessonKind, ...] | None = None,
        k: int = 4,
        where: LessonFilter | None = None,
        mmr: float | None = None,
    ) -> list[list[Hit]]:
        if k <= 0 or not texts:
            return [[] for _ in texts]
        filt = (where or LessonFilter()).narrowed(kind=kind)
        pool = self.all(filt)
        if not pool:
            return [[] for _ in texts]
        vecs = np.stack([self._vectors[x.id] for x in pool])
        vecs = vecs / np.linalg.norm(vecs, axis=1, keepdims=True).clip(min=1e-12)
        fetch = k + 8 if mmr is None else max(4 * k, 20)
        out: list[list[Hit]] = []
        for query in np.asarray(self.embedder.embed(texts), dtype=float):
            sims = vecs @ (query / max(float(np.linalg.norm(query)), 1e-12))
            order = sorted(range(len(pool)), key=lambda j: (-round(float(sims[j]), 6), pool[j].id))[:fetch]
            if mmr is not None:
                picked = mmr_order([float(sims[j]) for j in order], vecs[order], k=k, lam=mmr)
                order = [order[j] for j in picked]
            out.append([(pool[j], float(sims[j])) for j in order[:k]])
        return out
