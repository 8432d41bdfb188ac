"""Credit and curation: count what each lesson did for the student, then keep the memory small and good.

Credit (ACE-style counters): every graded answer names the lessons it was shown. An example lesson
(gold, worked or synthetic) *helped* when the answer was right and the example carried the gold
answer, and *hurt* when the answer was wrong and copied the example's answer. A strategy helped or
hurt with the outcome.

Curation, after each round's writes: retire lessons with a bad record, merge near-duplicates into the
one with the better record, and retire the weakest lessons of a scope beyond its count or token budget.
Every change is a status change with its reason, so nothing disappears without a trace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from tutelage.config import CurateConfig
from tutelage.evals.metrics import normalize_label
from tutelage.memory._undo import UndoLog
from tutelage.memory.lesson import DEMO_KINDS, Lesson
from tutelage.memory.query import LessonFilter
from tutelage.memory.store import LessonStore

__all__ = ["Curation", "Outcome", "apply_credit", "credit", "curate", "rollback_round"]


@dataclass(frozen=True)
class Outcome:
    """One graded answer: the lessons shown, what the student said, the gold answer, the score."""

    lesson_ids: list[str]
    answer: str
    gold: str
    score: float


@dataclass
class Counts:
    retrieved: int = 0
    helped: int = 0
    hurt: int = 0


def credit(outcomes: Iterable[Outcome], lessons: dict[str, Lesson]) -> dict[str, Counts]:
    """Per-lesson counters earned by these outcomes (lessons not in ``lessons`` are skipped)."""
    counts: dict[str, Counts] = defaultdict(Counts)
    for out in outcomes:
        right = out.score >= 1.0
        for lesson_id in dict.fromkeys(out.lesson_ids):
            lesson = lessons.get(lesson_id)
            if lesson is None:
                continue
            c = counts[lesson_id]
            c.retrieved += 1
            if lesson.kind in DEMO_KINDS:
                shown = normalize_label(lesson.answer)
                c.helped += int(right and shown == normalize_label(out.gold))
                c.hurt += int(not right and shown == normalize_label(out.answer))
            else:
                c.helped += int(right)
                c.hurt += int(not right)
    return dict(counts)


def apply_credit(store: LessonStore, outcomes: list[Outcome], *, round: int) -> int:
    """Add round ``round``'s credit to the stored counters, once: a lesson already credited for this
    round is skipped, so re-grading a resumed round never counts twice. Returns lessons updated."""
    ids = sorted({i for out in outcomes for i in out.lesson_ids})
    lessons = {x.id: x for x in store.get(ids) if x.credited_round < round}
    earned = credit(outcomes, lessons)
    store.put(
        lessons[i].with_counts(retrieved=c.retrieved, helped=c.helped, hurt=c.hurt, credited_round=round)
        for i, c in earned.items()
    )
    return len(earned)


@dataclass
class Curation:
    """What one curation pass changed (ids per reason)."""

    bad_record: list[str] = field(default_factory=list)
    merged: list[str] = field(default_factory=list)
    over_budget: list[str] = field(default_factory=list)

    @property
    def retired(self) -> int:
        return len(self.bad_record) + len(self.merged) + len(self.over_budget)


def _value(x: Lesson) -> tuple[int, int, int, str]:
    """Higher is better: net record, then how often it was useful at all, then seniority."""
    return (x.helped - x.hurt, x.helped, -x.round, x.id)


def curate(store: LessonStore, cfg: CurateConfig, *, round: int) -> Curation:
    """Run one curation pass over the active lessons (retirements are stamped with ``round``)."""
    report = Curation()
    active = store.all(LessonFilter(status="active"))

    bad = [
        x
        for x in active
        if x.hurt >= cfg.retire_min_hurt and x.hurt >= cfg.retire_hurt_share * (x.helped + x.hurt)
    ]
    for x in bad:
        store.set_status([x.id], "retired", f"bad record (helped {x.helped}, hurt {x.hurt})", round=round)
    report.bad_record = [x.id for x in bad]
    gone = set(report.bad_record)

    if cfg.merge_threshold is not None:
        report.merged = _merge(store, [x for x in active if x.id not in gone], cfg.merge_threshold, round)
        gone |= set(report.merged)

    live = [x for x in active if x.id not in gone]
    by_scope: dict[str, list[Lesson]] = defaultdict(list)
    for x in live:
        by_scope[x.scope].append(x)
    for scope, lessons in sorted(by_scope.items()):
        lessons.sort(key=_value, reverse=True)
        keep, tokens = 0, 0
        for x in lessons:
            fits_count = cfg.max_active is None or keep < cfg.max_active
            fits_tokens = cfg.max_tokens is None or tokens + x.tokens <= cfg.max_tokens
            if fits_count and fits_tokens:
                keep, tokens = keep + 1, tokens + x.tokens
                continue
            limit = f"{cfg.max_active} lessons" if not fits_count else f"{cfg.max_tokens} tokens"
            store.set_status([x.id], "retired", f"over the budget of scope {scope!r} ({limit})", round=round)
            report.over_budget.append(x.id)
    return report


def _merge(store: LessonStore, active: list[Lesson], threshold: float, round: int) -> list[str]:
    """Fold each near-duplicate (same kind, scope and answer; cosine >= threshold) into the better one."""
    by_id = {x.id: x for x in active}
    merged: set[str] = set()
    newest = [x for x in active if x.active_from >= round]
    hits = store.search_many([x.text for x in newest], k=6, where=LessonFilter(status="active"))
    for x, row in zip(newest, hits, strict=True):
        for other, sim in row:
            if x.id in merged:
                break
            if other.id in (x.id, *merged) or other.id not in by_id or sim < threshold:
                continue
            if (other.kind, other.scope, other.answer) != (x.kind, x.scope, x.answer):
                continue
            keep, drop = sorted([by_id[x.id], by_id[other.id]], key=_value, reverse=True)
            sources = tuple(
                dict.fromkeys([*keep.provenance.source_task_ids, *drop.provenance.source_task_ids])
            )
            survivor = keep.with_counts(
                retrieved=drop.retrieved,
                helped=drop.helped,
                hurt=drop.hurt,
                credited_round=drop.credited_round,
            ).model_copy(
                update={"provenance": keep.provenance.model_copy(update={"source_task_ids": sources})}
            )
            store.put([survivor])
            store.set_status([drop.id], "retired", f"merged into {keep.id} (cosine {sim:.2f})", round=round)
            by_id[keep.id] = survivor
            merged.add(drop.id)
    return sorted(merged)


def rollback_round(store: LessonStore, log: UndoLog, reason: str, *, round: int) -> int:
    """Undo everything round ``round`` did to the memory, from its before-images (``log``).

    Every lesson the round changed gets its record back exactly as the round found it: status,
    counters, merged-in sources and history. A lesson the round created is retired with ``reason``
    (kept for the record; writing it again in a later round revives it). Safe to repeat after a
    crash: the images are read again and put back again. Returns the lessons whose record changed.
    """
    images = log.images()
    current = {x.id: x for x in store.get(list(images))}
    restored: list[Lesson] = []
    for lesson_id, before in images.items():
        now = current.get(lesson_id)
        if now is None:
            continue
        if before is None:
            if now.status != "retired":
                restored.append(now.with_status("retired", reason, round=round))
        elif now != before:
            restored.append(before)
    undo, store.undo = store.undo, None  # the rollback's own writes are not the round's changes
    try:
        store.put(restored)
    finally:
        store.undo = undo
    return len(restored)
