"""What a retrieval may see (status, kind, scope, a past round) and how hits are diversified and cut."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from tutelage.memory.lesson import Lesson, LessonKind, LessonStatus

__all__ = ["LessonFilter", "fit_budget", "flat", "mmr_order", "source_key"]


def flat(lesson: Lesson) -> dict[str, Any]:
    """The flat fields of a lesson that filters test (what a store keeps beside the whole record)."""
    return {
        "kind": lesson.kind,
        "scope": lesson.scope,
        "status": lesson.status,
        "answer": lesson.answer,
        "round": lesson.round,
        "active_from": lesson.active_from,
        "active_until": lesson.active_until,
        "sources": "|" + "|".join(lesson.provenance.source_task_ids) + "|",
    }


def source_key(meta: Mapping[str, Any]) -> str:
    """``|train-1|train-7|``: the task ids a stored lesson came from, as flat metadata can hold them
    (read from the whole record for a memory written before that field existed)."""
    key = meta.get("sources")
    if isinstance(key, str):
        return key
    record = meta.get("record")
    if not isinstance(record, str):
        return "||"
    ids = json.loads(record).get("provenance", {}).get("source_task_ids", [])
    return "|" + "|".join(ids) + "|"


@dataclass(frozen=True)
class LessonFilter:
    """Metadata filter for lessons.

    ``as_of_round=r`` replays round ``r`` exactly: the lessons that were active while round ``r``'s
    program ran (activated by then, not yet retired), whatever their status is now. Without it,
    ``status`` applies (default: only active lessons). ``kind`` is one kind or several.

    ``exclude_source`` hides every lesson made from that task (its gold example, what the teacher
    wrote about it): a probe of how lessons transfer to a task must not show the task its own answer.
    Each store turns a filter into its own terms; ``matches`` is the reference test on flat fields.
    """

    kind: LessonKind | tuple[LessonKind, ...] | None = None
    scope: str | None = None
    status: LessonStatus | None = "active"
    as_of_round: int | None = None
    exclude_source: str | None = None

    @property
    def kinds(self) -> tuple[LessonKind, ...] | None:
        if self.kind is None:
            return None
        return self.kind if isinstance(self.kind, tuple) else (self.kind,)

    def narrowed(self, *, kind: LessonKind | tuple[LessonKind, ...] | None) -> LessonFilter:
        return replace(self, kind=kind) if kind is not None else self

    def matches(self, meta: Mapping[str, Any]) -> bool:
        """Whether a lesson with these flat fields (``flat``) passes the filter."""
        kinds = self.kinds
        if kinds is not None and meta.get("kind") not in kinds:
            return False
        if self.exclude_source is not None and f"|{self.exclude_source}|" in source_key(meta):
            return False
        if self.scope is not None and meta.get("scope") != self.scope:
            return False
        if self.as_of_round is not None:
            return bool(meta["active_from"] <= self.as_of_round < meta["active_until"])
        return self.status is None or meta.get("status") == self.status


def mmr_order(similarities: Sequence[float], vectors: np.ndarray, *, k: int, lam: float) -> list[int]:
    """Maximal marginal relevance: indices of ``k`` hits, each the best trade-off of similarity to the
    query (weight ``lam``) against similarity to hits already chosen (weight ``1 - lam``)."""
    if len(similarities) == 0:
        return []
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1.0, norms)
    pairwise = unit @ unit.T
    relevance = np.asarray(similarities, dtype=float)
    chosen: list[int] = [int(np.argmax(relevance))]
    while len(chosen) < min(k, len(relevance)):
        redundancy = pairwise[:, chosen].max(axis=1)
        score = lam * relevance - (1.0 - lam) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


def fit_budget(ranked: Sequence[Sequence[Lesson]], budget: int | None) -> list[list[Lesson]]:
    """Keep lessons in rank order across the groups (strategies, examples) until ``budget`` tokens.

    Groups are interleaved by rank, so one kind cannot crowd out the other; the first lesson is always
    kept so a tight budget never empties the prompt.
    """
    if budget is None:
        return [list(group) for group in ranked]
    kept: list[list[Lesson]] = [[] for _ in ranked]
    used, first = 0, True
    for rank in range(max((len(g) for g in ranked), default=0)):
        for g, group in enumerate(ranked):
            if rank >= len(group):
                continue
            cost = group[rank].tokens
            if first or used + cost <= budget:
                kept[g].append(group[rank])
                used += cost
                first = False
    return kept
