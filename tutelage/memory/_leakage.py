"""The leakage guard: no lesson may quote a held-out test item.

A lesson's word n-grams are looked up in an index of every test item's n-grams; a lesson whose
overlap (the share of its n-grams that occur in one test item) reaches the threshold is refused.
Texts shorter than ``n`` words count as one n-gram of their own length.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["LeakageGuard", "Overlap"]

_WORD = re.compile(r"[a-z0-9]+")


def _grams(text: str, n: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class Overlap:
    """The test item a text overlaps most, and by how much (share of the text's n-grams)."""

    task_id: str
    share: float
    n: int

    def reason(self) -> str:
        return f"refused: leakage, {self.share:.0%} of its {self.n}-grams occur in test item {self.task_id}"


class LeakageGuard:
    """Index the test split once; ``check(text)`` names the test item a lesson would leak, if any.

    Example:
        >>> guard = LeakageGuard([("test-1", "where is my new card")], n=3, threshold=0.5)
        >>> guard.check("Where is my new card? It is late.").task_id
        'test-1'
    """

    def __init__(self, items: Iterable[tuple[str, str]], *, n: int = 6, threshold: float = 0.5) -> None:
        self.n, self.threshold = n, threshold
        self._index: dict[tuple[str, ...], set[str]] = defaultdict(set)
        for task_id, text in items:
            for gram in _grams(text, n):
                self._index[gram].add(task_id)

    def overlap(self, text: str) -> Overlap | None:
        grams = _grams(text, self.n)
        if not grams:
            return None
        hits: dict[str, int] = defaultdict(int)
        for gram in grams:
            for task_id in self._index.get(gram, ()):
                hits[task_id] += 1
        if not hits:
            return None
        task_id, count = max(sorted(hits.items()), key=lambda kv: kv[1])
        return Overlap(task_id, count / len(grams), self.n)

    def check(self, *texts: str) -> Overlap | None:
        """The worst overlap at or above the threshold among ``texts`` (e.g. a lesson's text and answer)."""
        found = [o for t in texts if (o := self.overlap(t)) is not None and o.share >= self.threshold]
        return max(found, key=lambda o: o.share) if found else None
