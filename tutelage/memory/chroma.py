"""The lesson store on ChromaDB, embedded (``PersistentClient``) or a server (``memory.url``).

``memory.store: chroma`` (the default). This is the only module that imports chromadb, and the only
one that speaks Chroma's filter syntax (``_where``). Vectors always come from tutelage's own embedder and
are passed in explicitly; the collection records the embedding model id and refuses to be opened
with another one. Each record is stored whole (JSON) next to the flat fields retrieval filters on.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import chromadb
import numpy as np
from chromadb.config import Settings

from tutelage import failpoints
from tutelage.errors import ConfigError, DataError, EndpointError
from tutelage.memory._undo import UndoLog
from tutelage.memory.embed import Embedder
from tutelage.memory.lesson import Lesson, LessonKind, LessonStatus
from tutelage.memory.query import LessonFilter, flat, mmr_order
from tutelage.memory.store import Hit

__all__ = ["ChromaLessonStore"]

_CHUNK = 2000  # records per Chroma call
_QUERY_HITS = 16000  # hits one Chroma query call may return across its batch of query vectors
_EXACT_LIMIT = 5000  # a filter matching fewer lessons can be searched exactly by brute force


def _metadata(lesson: Lesson) -> dict[str, Any]:
    return {**flat(lesson), "record": lesson.model_dump_json()}


def _where(filt: LessonFilter) -> dict[str, Any] | None:
    """``filt`` in Chroma's metadata-filter syntax (all but ``exclude_source``, checked on our side)."""
    clauses: list[dict[str, Any]] = []
    kinds = filt.kinds
    if kinds is not None:
        clauses.append({"kind": kinds[0]} if len(kinds) == 1 else {"kind": {"$in": list(kinds)}})
    if filt.scope is not None:
        clauses.append({"scope": filt.scope})
    if filt.as_of_round is not None:
        clauses.append({"active_from": {"$lte": filt.as_of_round}})
        clauses.append({"active_until": {"$gt": filt.as_of_round}})
    elif filt.status is not None:
        clauses.append({"status": filt.status})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def _changed_in(lesson: Lesson) -> int | None:
    """The round of a record's latest status change."""
    return lesson.history[-1].round if lesson.history else lesson.round


def _lesson(meta: Any) -> Lesson:
    if "record" not in meta:
        raise DataError(
            "this memory was written by tutelage 0.1's first store format (no lesson records); "
            "start a new run, or re-run the old one, to get a memory this version can read"
        )
    return Lesson.model_validate_json(meta["record"])


def _row(got: Any, i: int) -> list[tuple[Any, float, Any]]:
    """Query result ``i`` as (metadata, cosine similarity, vector or None) triples."""
    metas, dists = got["metadatas"][i], got["distances"][i]
    vecs = got["embeddings"][i] if got.get("embeddings") is not None else [None] * len(metas)
    return [(m, 1.0 - float(d), v) for m, d, v in zip(metas, dists, vecs, strict=True)]


def _client(path: str | Path | None, url: str | None) -> Any:
    settings = Settings(anonymized_telemetry=False, allow_reset=False)
    if url is None:
        if path is None:
            raise ConfigError("a lesson store needs a path (embedded) or memory.url (a Chroma server)")
        return chromadb.PersistentClient(path=str(path), settings=settings)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"memory.url must look like http://host:port, not {url!r}")
    try:
        return chromadb.HttpClient(
            host=parsed.hostname,
            port=parsed.port or (443 if parsed.scheme == "https" else 8000),
            ssl=parsed.scheme == "https",
            settings=settings,
        )
    except Exception as exc:  # chromadb raises a bare ValueError/ConnectError when the server is down
        raise EndpointError(f"Chroma server at {url} is unreachable: {str(exc)[:120]}") from None


class ChromaLessonStore:
    """Lessons in a Chroma collection: embedded under ``path``, or on the server at ``url``.

    Example:
        >>> from tutelage.testing import HashEmbedder
        >>> store = ChromaLessonStore(tmp_path / "memory", embedder=HashEmbedder())  # doctest: +SKIP
        >>> store.add([lesson]); store.search("my card is late", kind="example", k=4)  # doctest: +SKIP
    """

    marker: ClassVar[str] = "chroma.sqlite3"  # what an embedded Chroma store writes at its root

    @classmethod
    def open(
        cls, *, path: Path | None, url: str | None, collection: str, embedder: Embedder
    ) -> ChromaLessonStore:
        return cls(path, url=url, collection=collection, embedder=embedder)

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        embedder: Embedder,
        collection: str = "lessons",
        url: str | None = None,
    ) -> None:
        self.path = Path(path) if path is not None else None
        self.url = url
        self.embedder = embedder
        self._client = _client(path, url)
        where = url or str(self.path)
        try:
            self._col = self._client.get_or_create_collection(
                collection,
                embedding_function=None,
                # A wide search beam: recall matters more than microseconds for a lesson store.
                metadata={
                    "hnsw:space": "cosine",
                    "hnsw:search_ef": 100,
                    "embedding_model": embedder.model_id,
                },
            )
        except Exception as exc:
            if url is None:
                raise
            raise EndpointError(f"Chroma server at {url} failed: {str(exc)[:160]}") from None
        stored_model = (self._col.metadata or {}).get("embedding_model")
        if stored_model != embedder.model_id:
            raise ConfigError(
                f"memory at {where} was embedded with {stored_model!r}, not {embedder.model_id!r}; "
                "use the same memory.embedder or a new run directory"
            )
        self._write_lock = threading.Lock()
        # While a round runs, the loop points this at the round's before-images (``memory.undo``).
        self.undo: UndoLog | None = None

    # -- writing ---------------------------------------------------------------------------------

    def add(self, lessons: Iterable[Lesson]) -> list[str]:
        """Write new lessons (records kept as given); return the ids written or revived.

        A lesson already stored is not written twice (ids come from content), except that a new
        candidate whose stored copy was retired in an earlier round comes back as a candidate, with
        the reason in its history: a lesson a rollback or curation retired can be learned again.
        """
        unique = list({lesson.id: lesson for lesson in lessons}.values())
        if not unique:
            return []
        with self._write_lock:
            stored = {x.id: x for x in self._get_unlocked([x.id for x in unique])}
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
                and _changed_in(old) != _changed_in(x)  # not retired by the very round writing it
            ]
            if self.undo is not None:
                self.undo.before([x.id for x in [*fresh, *revived]], stored)
            for start in range(0, len(fresh), _CHUNK):
                chunk = fresh[start : start + _CHUNK]
                self._col.add(
                    ids=[x.id for x in chunk],
                    documents=[x.text for x in chunk],
                    embeddings=self.embedder.embed([x.text for x in chunk]),  # type: ignore[arg-type]
                    metadatas=[_metadata(x) for x in chunk],  # type: ignore[misc]
                )
                failpoints.step()
            self._update(revived)
        return [x.id for x in [*fresh, *revived]]

    def _update(self, batch: list[Lesson]) -> None:
        for start in range(0, len(batch), _CHUNK):
            chunk = batch[start : start + _CHUNK]
            self._col.update(ids=[x.id for x in chunk], metadatas=[_metadata(x) for x in chunk])  # type: ignore[misc]
            failpoints.step()

    def put(self, lessons: Iterable[Lesson]) -> None:
        """Replace stored records (status, counters, history); text and answer are fixed by the id."""
        batch = list({x.id: x for x in lessons}.values())
        if not batch:
            return
        with self._write_lock:
            self._put_unlocked(batch)

    def _put_unlocked(self, batch: list[Lesson]) -> None:
        if batch:
            known = {x.id: x for x in self._get_unlocked([x.id for x in batch])}
            missing = [x.id for x in batch if x.id not in known]
            if missing:
                raise KeyError(f"no such lesson: {missing[0]}")
            for x in batch:
                old = known[x.id]
                if (x.kind, x.text, x.answer, x.rationale) != (old.kind, old.text, old.answer, old.rationale):
                    raise ValueError(f"lesson {x.id}: content is fixed by the id; write a new lesson")
            if self.undo is not None:
                self.undo.before([x.id for x in batch], known)
            self._update(batch)

    def set_status(
        self, ids: Iterable[str], status: LessonStatus, reason: str, *, round: int | None = None
    ) -> list[Lesson]:
        """Move lessons to ``status`` with a reason (kept in their history); return the new records."""
        with self._write_lock:  # read and write under one lock: no change made in between is lost
            changed = [x.with_status(status, reason, round=round) for x in self._get_unlocked(list(ids))]
            self._put_unlocked(changed)
        return changed

    # -- reading ---------------------------------------------------------------------------------

    def get(self, ids: list[str]) -> list[Lesson]:
        """The stored records for ``ids`` (unknown ids are skipped), in the order asked."""
        return self._get_unlocked(ids)

    def _get_unlocked(self, ids: list[str]) -> list[Lesson]:
        if not ids:
            return []
        unique = list(dict.fromkeys(ids))
        by_id: dict[str, Lesson] = {}
        for start in range(0, len(unique), _CHUNK):  # SQLite caps the variables of one statement
            got = self._col.get(ids=unique[start : start + _CHUNK], include=["metadatas"])
            by_id.update((i, _lesson(m)) for i, m in zip(got["ids"], got["metadatas"] or [], strict=True))
        return [by_id[i] for i in ids if i in by_id]

    def all(self, where: LessonFilter | None = None) -> list[Lesson]:
        """Every lesson matching ``where`` (default: all), ordered by round then id."""
        got = self._col.get(where=_where(where) if where else None, include=["metadatas"])  # type: ignore[arg-type]
        lessons = [_lesson(m) for m in got["metadatas"] or []]
        return sorted(lessons, key=lambda x: (x.round, x.id))

    def count(self, kind: LessonKind | None = None, status: LessonStatus | None = None) -> int:
        if kind is None and status is None:
            return int(self._col.count())
        where = _where(LessonFilter(kind=kind, status=status))
        return len(self._col.get(where=where, include=[])["ids"])  # type: ignore[arg-type]

    def search(
        self,
        text: str,
        *,
        kind: LessonKind | tuple[LessonKind, ...] | None = None,
        k: int = 4,
        where: LessonFilter | None = None,
        mmr: float | None = None,
    ) -> list[Lesson]:
        """The ``k`` active lessons most similar to ``text`` (most similar first).

        ``where`` narrows further (scope, round replay); ``mmr`` (a lambda in [0, 1]) trades
        similarity for diversity with maximal marginal relevance.
        """
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
        """Scored hits for each text: ``(lesson, cosine similarity)``, most similar first."""
        if k <= 0 or not texts:
            return [[] for _ in texts]
        filt = (where or LessonFilter()).narrowed(kind=kind)
        # A few extra hits so that equally similar lessons are cut by id, not by index order:
        # a resumed run must retrieve exactly what an uninterrupted one did.
        fetch = k + 8 if mmr is None else max(4 * k, 20)
        # Chroma binds one SQL variable per returned hit: a batch of queries x hits must stay under
        # SQLite's limit (32,766), or curating a 300-item round fails with "too many SQL variables".
        per_call = max(1, _QUERY_HITS // (fetch * 8))
        if len(texts) > per_call:
            return [
                hits
                for start in range(0, len(texts), per_call)
                for hits in self.search_many(
                    texts[start : start + per_call], kind=kind, k=k, where=where, mmr=mmr
                )
            ]
        include = ["metadatas", "distances", *(["embeddings"] if mmr is not None else [])]
        vectors = self.embedder.embed(texts)
        # Chroma evaluates a metadata filter over the whole collection before the vector search, which
        # dominates at 10k+ lessons. Most lessons pass the filter, so search unfiltered a few times
        # wider and filter here; only queries left with too few hits repeat with Chroma's filter.
        wide = fetch * 8
        got = self._col.query(
            query_embeddings=vectors,  # type: ignore[arg-type]
            n_results=wide,
            include=include,  # type: ignore[arg-type]
        )
        rows: list[list[tuple[Any, float, Any]]] = []
        redo: list[int] = []
        for i in range(len(texts)):
            row = _row(got, i)
            kept = [hit for hit in row if filt.matches(hit[0])]
            # Chroma may return fewer than `wide` approximate hits, so a short row proves nothing:
            # too few survivors always repeat the query with Chroma's exact filter.
            if len(kept) < k:
                redo.append(i)
            rows.append(kept)
        if redo:
            again = self._col.query(
                query_embeddings=[vectors[i] for i in redo],  # type: ignore[arg-type]
                n_results=fetch,
                where=_where(filt),  # type: ignore[arg-type]
                include=include,  # type: ignore[arg-type]
            )
            for n, i in enumerate(redo):
                rows[i] = _row(again, n)
            short = [i for i in redo if len(rows[i]) < k]
            if short:
                self._exact(filt, [vectors[i] for i in short], [rows[i] for i in short], fetch)
        out: list[list[Hit]] = []
        for row in rows:
            # Chroma's own filter (the redo and exact paths) cannot express every clause: check all.
            top = sorted((h for h in row if filt.matches(h[0])), key=lambda h: -h[1])[:fetch]
            hits = sorted(
                ((_lesson(meta), sim, vec) for meta, sim, vec in top),
                key=lambda h: (-round(h[1], 6), h[0].id),
            )
            if mmr is not None and hits:
                vecs = np.asarray([h[2] for h in hits], dtype=float)
                hits = [hits[j] for j in mmr_order([h[1] for h in hits], vecs, k=k, lam=mmr)]
            out.append([(lesson, sim) for lesson, sim, _ in hits[:k]])
        return out

    def _exact(
        self, filt: LessonFilter, vectors: list[list[float]], rows: list[list[Any]], fetch: int
    ) -> None:
        """Brute-force the lessons matching ``filt`` into ``rows`` (in place), for a filter so narrow
        that HNSW's filtered search can miss them; a filter matching many lessons keeps HNSW's hits."""
        got = self._col.get(where=_where(filt), include=["metadatas", "embeddings"], limit=_EXACT_LIMIT)  # type: ignore[arg-type]
        if not got["ids"] or len(got["ids"]) >= _EXACT_LIMIT:
            return
        pool = np.asarray(got["embeddings"], dtype=float)
        pool /= np.linalg.norm(pool, axis=1, keepdims=True).clip(min=1e-12)
        for vector, row in zip(vectors, rows, strict=True):
            query = np.asarray(vector, dtype=float)
            sims = pool @ (query / max(float(np.linalg.norm(query)), 1e-12))
            best = np.argsort(-sims, kind="stable")[:fetch]
            row[:] = [(got["metadatas"][j], float(sims[j]), got["embeddings"][j]) for j in best]  # type: ignore[index]
