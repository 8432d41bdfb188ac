"""What a run report shows, gathered from the run directory: scores with intervals, slices, lessons, cost."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutelage.agents.ledger import Ledger, summarize
from tutelage.config import RunConfig
from tutelage.errors import TutelageError
from tutelage.evals.compare import slice_tags
from tutelage.evals.harness import Attempt, load_journal
from tutelage.evals.stats import (
    Interval,
    PairedComparison,
    bootstrap_ci,
    holm,
    paired_by_slice,
    paired_compare,
)
from tutelage.evals.suites import load_suite
from tutelage.memory.lesson import Lesson

__all__ = [
    "MIN_CI_N",
    "KindRow",
    "LessonCredit",
    "ReportData",
    "RoundPoint",
    "SliceRow",
    "collect",
    "kind_rows",
]

TOP_LESSONS = 10
MIN_CI_N = 5  # below this many items a slice's bootstrap interval is degenerate: none is shown


@dataclass(frozen=True)
class RoundPoint:
    """One round as the report draws it (round 0 is the starting program, always kept)."""

    round: int
    dev: Interval | None
    kept: bool
    row: dict[str, Any] = field(default_factory=dict)  # the round's row of metrics.json ({} for round 0)


@dataclass(frozen=True)
class SliceRow:
    """Test before against after on one slice (p uncorrected and Holm-adjusted over all slices)."""

    name: str
    paired: PairedComparison
    p_holm: float

    @property
    def has_ci(self) -> bool:
        return self.paired.n >= MIN_CI_N


@dataclass(frozen=True)
class LessonCredit:
    """A lesson shown on test items after the last round: items it was shown on that the starting
    program got wrong and the kept one right (``fixed``), the reverse (``broken``)."""

    id: str
    lesson: Lesson | None
    shown: int
    fixed: int
    broken: int

    @property
    def net(self) -> int:
        return self.fixed - self.broken


@dataclass(frozen=True)
class KindRow:
    """One kind of lesson (gold example, worked, synthetic, strategy): how many, and what they did.

    ``shown``/``helped``/``hurt`` are the rounds' counters summed over every lesson of the kind;
    ``test_shown`` counts held-out test items (after the last round) shown at least one lesson of the
    kind, ``fixed``/``broken`` those the starting program got wrong and the kept one right, or reverse.
    """

    kind: str
    active: int
    stored: int
    shown: int
    helped: int
    hurt: int
    test_shown: int = 0
    fixed: int = 0
    broken: int = 0


def kind_rows(lessons: list[Lesson], before: dict[str, float], after: dict[str, Attempt]) -> list[KindRow]:
    """Per lesson kind: counts, the rounds' counters, and the held-out test items it was shown on."""
    by_id = {x.id: x for x in lessons}
    rows: dict[str, dict[str, int]] = {}
    for x in lessons:
        row = rows.setdefault(x.kind, defaultdict(int))
        row["active"] += x.status == "active"
        row["stored"] += 1
        row["shown"] += x.retrieved
        row["helped"] += x.helped
        row["hurt"] += x.hurt
    for task_id, attempt in after.items():
        kinds = {by_id[i].kind for i in attempt.lesson_ids if i in by_id}
        for kind in kinds:
            row = rows[kind]
            row["test_shown"] += 1
            if task_id in before:
                row["fixed"] += attempt.score > before[task_id]
                row["broken"] += attempt.score < before[task_id]
    return [KindRow(kind, **dict(row)) for kind, row in sorted(rows.items())]


@dataclass(frozen=True)
class ReportData:
    root: Path
    cfg: RunConfig
    metrics: dict[str, Any]
    lessons: list[Lesson]
    rounds: list[RoundPoint]
    test_before: Interval | None
    test_after: Interval | None
    test_paired: PairedComparison | None
    slice_key: str | None
    slices: list[SliceRow]
    credits: list[LessonCredit]
    kinds: list[KindRow]
    cost: list[tuple[str, dict[str, dict[str, Any]]]]  # (phase label, per-role totals), in run order
    notes: list[str]

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def moved_slices(self) -> list[SliceRow]:
        """The slices in which at least one test item changed, most items moved first."""
        return [s for s in self.slices if s.paired.wins + s.paired.losses]

    def slice_summary(self, shown: int) -> str:
        """'Slice key intent: 12 of 56 slices changed; the top 12 are shown.'"""
        moved = len(self.moved_slices)
        return f"Slice key {self.slice_key}: {moved} of {len(self.slices)} slices changed" + (
            f"; the top {shown} are shown." if moved else "."
        )


def _scores(path: Path) -> dict[str, float]:
    return {i: a.score for i, a in load_journal(path, Attempt).items()}


def _interval(scores: dict[str, float], seed: int) -> Interval | None:
    # Items in id order, as ``tutelage compare`` takes them: the same seed gives the same interval.
    return bootstrap_ci([scores[i] for i in sorted(scores)], seed=seed) if scores else None


def _rounds(root: Path, metrics: dict[str, Any], seed: int) -> list[RoundPoint]:
    def dev(r: int) -> Interval | None:
        return _interval(_scores(root / "rounds" / f"round_{r}" / "dev.jsonl"), seed)

    points = [RoundPoint(0, dev(0), True)]
    for row in metrics.get("rounds", []):
        points.append(RoundPoint(int(row["round"]), dev(int(row["round"])), bool(row.get("accepted")), row))
    return points


def _slices(
    cfg: RunConfig, before: dict[str, float], after: dict[str, float], key: str | None, seed: int
) -> tuple[str | None, list[SliceRow], str | None]:
    """Per-slice test deltas, the slices with the most items moved first; or why there are none."""
    if not before or not after:
        return None, [], None
    try:
        suite = load_suite(cfg.suite)
    except TutelageError as exc:
        return None, [], f"no per-slice table: the suite did not load ({exc})"
    tasks = list({t.id: t for t in [*suite.test, *suite.held_out]}.values())
    used, tags = slice_tags(tasks, key, preferred=tuple(getattr(suite, "slice_keys", ())))
    per = paired_by_slice(before, after, tags, seed=seed)
    adjusted = holm([c.p_value for c in per.values()])
    rows = [SliceRow(name, c, p) for (name, c), p in zip(per.items(), adjusted, strict=True)]
    # Items moved (n x |delta|) first: a one-item slice at +100 points is noise, not the headline.
    rows.sort(key=lambda s: (-abs(s.paired.diff) * s.paired.n, -abs(s.paired.diff), s.name))
    return used, rows, None


def _credits(
    before: dict[str, float], after: dict[str, Attempt], lessons: list[Lesson]
) -> list[LessonCredit]:
    by_id = {x.id: x for x in lessons}
    tally: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for task_id, attempt in after.items():
        if task_id not in before:
            continue
        for lesson_id in dict.fromkeys(attempt.lesson_ids):
            row = tally[lesson_id]
            row[0] += 1
            row[1] += attempt.score > before[task_id]
            row[2] += attempt.score < before[task_id]
    credits = [LessonCredit(i, by_id.get(i), *counts) for i, counts in tally.items()]
    credits.sort(key=lambda c: (-c.net, -c.fixed, c.id))
    return [c for c in credits if c.net > 0][:TOP_LESSONS]


def _cost(root: Path, metrics: dict[str, Any]) -> list[tuple[str, dict[str, dict[str, Any]]]]:
    """Totals per role for the start, each round and the test evaluations (from ``ledger.jsonl``)."""
    calls = Ledger(root / "ledger.jsonl").calls
    if not calls:
        return [(f"round {r['round']}", r.get("cost", {})) for r in metrics.get("rounds", [])]
    groups: dict[str, list[Any]] = {}
    for c in sorted(calls, key=lambda c: (c.phase == "test", c.round)):
        if c.phase == "test":
            label = "test before" if c.round == 0 else "test after"
        else:
            label = "start" if c.round == 0 else f"round {c.round}"
        groups.setdefault(label, []).append(c)
    return [(label, summarize(group)) for label, group in groups.items()]


def collect(
    root: Path,
    cfg: RunConfig,
    metrics: dict[str, Any],
    lessons: list[Lesson] | None,
    *,
    slice_key: str | None = None,
    seed: int = 0,
) -> ReportData:
    """Read every journal the report needs; missing ones (a partial run) leave gaps, not errors.

    ``lessons`` is None when the memory could not be opened (lessons are then named by id only).
    """
    notes: list[str] = []
    before = _scores(root / "evals" / "test_before.jsonl")
    after_attempts: dict[str, Attempt] = load_journal(root / "evals" / "test_after.jsonl", Attempt)
    after = {i: a.score for i, a in after_attempts.items()}
    paired = paired_compare(before, after, seed=seed) if set(before) & set(after) else None
    if not after:
        notes.append("The held-out test after the last round has not run yet.")
    key, slices, why = _slices(cfg, before, after, slice_key, seed)
    if why:
        notes.append(why)
    if lessons is None:
        notes.append("The lesson memory could not be opened: lessons are named by id only.")
        lessons = []
    return ReportData(
        root=root,
        cfg=cfg,
        metrics=metrics,
        lessons=lessons,
        rounds=_rounds(root, metrics, seed),
        test_before=_interval(before, seed),
        test_after=_interval(after, seed),
        test_paired=paired,
        slice_key=key,
        slices=slices,
        credits=_credits(before, after_attempts, lessons),
        kinds=kind_rows(lessons, before, after_attempts),
        cost=_cost(root, metrics),
        notes=notes,
    )
