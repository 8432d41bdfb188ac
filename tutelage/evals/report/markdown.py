"""``report.md``: the run in Markdown, with the same numbers and figures as ``report.html``."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tutelage.evals.report.data import MIN_CI_N, KindRow, LessonCredit, ReportData, SliceRow
from tutelage.evals.report.figures import Plot
from tutelage.evals.stats import Interval, format_p
from tutelage.memory.lesson import Lesson, reason_category

__all__ = ["CREDIT_RULE", "FIGURE_DIR", "SLICE_RULE", "delta_ci", "pct", "render_markdown", "with_ci"]

FIGURE_DIR = "report_files"
CREDIT_RULE = (
    "For each lesson shown on held-out test items after the last round: the items it was shown on that "
    "the starting program got wrong and the kept program got right (fixed), minus the reverse (broken). "
    "A lesson is shown alongside others, so this is credit by association, not a controlled ablation."
)
SLICE_ROWS = 20
SLICE_RULE = (
    "Held-out test accuracy per slice, before round 1 -> after the last round; the slices with the most "
    f"items moved (n × |Δ|) first. Intervals: paired bootstrap, not shown under {MIN_CI_N} items. "
    "p: exact McNemar on the slice's items; Holm p: adjusted for testing every slice."
)


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def with_ci(iv: Interval | None) -> str:
    """'62.0% [52.0, 71.0]' (the 95% bootstrap interval), or '-'."""
    return "-" if iv is None else f"{pct(iv.mean)} [{100 * iv.low:.1f}, {100 * iv.high:.1f}]"


def headline(data: ReportData) -> str:
    """The one sentence a reader wants: test before -> after with intervals and the paired test."""
    test = data.metrics.get("test_accuracy", {})
    before = with_ci(data.test_before) if data.test_before else pct(test.get("before"))
    after = with_ci(data.test_after) if data.test_after else pct(test.get("after"))
    text = f"Held-out test accuracy: {before} before round 1 -> {after} after the last round"
    if data.test_paired is not None:
        text += f"; after − before: {data.test_paired.describe().removeprefix('B − A = ')}"
    return text + "."


def _rounds_table(data: ReportData) -> list[str]:
    lines = [
        "| round | train acc (attempts) | failures diagnosed | lessons written | refused (leakage) "
        "| rejected (verify) | retired (curation) | rolled back | active | k examples | dev acc [95% CI] "
        "| kept | seconds |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for point in data.rounds:
        row = point.row
        if not row:
            continue
        dev = with_ci(point.dev) if point.dev else pct(row.get("dev_accuracy"))
        lines.append(
            f"| {row['round']} | {pct(row.get('train_accuracy'))} | {row.get('diagnosed', 0)} "
            f"| {row.get('lessons_added', 0)} | {row.get('lessons_refused', 0)} "
            f"| {row.get('lessons_rejected', 0)} | {row.get('lessons_retired', 0)} "
            f"| {row.get('lessons_rolled_back', 0)} | {row.get('lessons', 0)} "
            f"| {row.get('k_examples', '-')} | {dev} "
            f"| {'yes' if row.get('accepted') else 'no'} | {row.get('seconds', 0):.0f} |"
        )
    return lines


WEIGHT_KEYS = ("examples", "tokens", "steps", "seconds", "peak_rss_mb")


def weights_rows(data: ReportData) -> list[list[str]]:
    """Per round that trained weights: round, adapter, examples, tokens, steps, seconds, peak MB, kept."""
    rows = []
    for point in data.rounds:
        train = (point.row or {}).get("train") or {}
        if not train:
            continue
        if "adapter" not in train:
            rows.append([str(point.row["round"]), f"skipped: {train.get('skipped')}", *["-"] * 6])
            continue
        cells = [str(train.get(k) if train.get(k) is not None else "-") for k in WEIGHT_KEYS]
        kept = "yes" if point.row.get("accepted") else "no (never served)"
        rows.append([str(point.row["round"]), f"`{train['adapter']}`", *cells, kept])
    return rows


def _weights_table(data: ReportData) -> list[str]:
    rows = weights_rows(data)
    if not rows:
        return []
    return [
        "Weights trained (LoRA adapters; `loop.schedule`):",
        "",
        "| round | adapter | examples | tokens | steps | seconds | peak RSS (MB) | kept |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
        *("| " + " | ".join(row) + " |" for row in rows),
        "",
    ]


def cost_rows(data: ReportData) -> list[tuple[str, str, dict[str, Any]]]:
    """(phase, role, totals) rows, then the run's totals per role."""
    rows = [(label, role, c) for label, per in data.cost for role, c in sorted(per.items())]
    totals: dict[str, dict[str, Any]] = {}
    for _, role, c in rows:
        t = totals.setdefault(role, dict.fromkeys(c, 0))
        for k, v in c.items():
            t[k] = t.get(k, 0) + v
    return [*rows, *(("total", role, t) for role, t in sorted(totals.items()))]


def _cost_section(data: ReportData) -> list[str]:
    lines = [
        "## Cost",
        "",
        "| phase | role | calls | failures | tokens in | tokens out | USD | LM seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, role, c in cost_rows(data):
        lines.append(
            f"| {label} | {role} | {c['calls']} | {c['failures']} | {c['tokens_in']:,} "
            f"| {c['tokens_out']:,} | {c['usd']:.4f} | {c['seconds']:.0f} |"
        )
    wall = data.metrics.get("wall_seconds", 0) or 0
    return [*lines, "", f"Wall time: {wall:.0f} s. Every call: `ledger.jsonl`."]


def delta_ci(s: SliceRow) -> str:
    """'+12.0 [+4.0, +20.0]', or '+100.0' alone on a slice too small for an interval."""
    c = s.paired
    return f"{100 * c.diff:+.1f}" + (f" [{100 * c.low:+.1f}, {100 * c.high:+.1f}]" if s.has_ci else "")


def _slice_section(data: ReportData) -> list[str]:
    if not data.slices:
        return []
    shown = data.moved_slices[:SLICE_ROWS]
    lines = [
        f"## Per-slice test deltas ({data.slice_key})",
        "",
        f"{SLICE_RULE} {data.slice_summary(len(shown))}",
    ]
    if shown:
        lines += [
            "",
            "| slice | n | before | after | delta [95% CI] | p | Holm p |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
    for s in shown:
        c = s.paired
        lines.append(
            f"| {s.name} | {c.n} | {pct(c.mean_a)} | {pct(c.mean_b)} | {delta_ci(s)} "
            f"| {format_p(c.p_value)[2:]} | {format_p(s.p_holm)[2:]} |"
        )
    return lines


def credit_label(c: LessonCredit) -> str:
    x = c.lesson
    if x is None:
        return f"`{c.id}`"
    return f'`{c.id}` {x.kind} "{x.text[:100]}"{" -> " + x.answer if x.answer else ""}'


def _credit_section(data: ReportData) -> list[str]:
    if not data.credits:
        return []
    lines = ["## Lessons that helped most on the held-out test", "", CREDIT_RULE, ""]
    lines += [
        f"- {credit_label(c)}: net {c.net:+d} ({c.fixed} fixed, {c.broken} broken, shown on {c.shown})"
        for c in data.credits
    ]
    return lines


KIND_HEAD = ("kind", "active", "stored", "shown", "helped", "hurt", "test items shown", "fixed", "broken")
KIND_RULE = (
    "*shown/helped/hurt*: the rounds' counters over every lesson of the kind; *test items shown*: "
    "held-out test items answered with at least one of them, *fixed/broken*: of those, the ones the "
    "starting program got wrong and the kept one right, or the reverse."
)


def kind_cells(row: KindRow) -> list[str]:
    return [
        row.kind,
        *(f"{getattr(row, k):,}" for k in KIND_HEAD[1:6]),
        f"{row.test_shown:,}",
        str(row.fixed),
        str(row.broken),
    ]


def _kind_section(data: ReportData) -> list[str]:
    if not data.kinds:
        return []
    lines = ["## Lessons by kind", "", KIND_RULE, "", "| " + " | ".join(KIND_HEAD) + " |"]
    lines.append("|---|" + "---:|" * (len(KIND_HEAD) - 1))
    lines += ["| " + " | ".join(kind_cells(r)) + " |" for r in data.kinds]
    return [*lines, ""]


def memory_section(lessons: list[Lesson]) -> list[str]:
    """Status counts, why lessons were refused, rejected or retired, and the lessons that helped most."""
    status = Counter(x.status for x in lessons)
    lines = [
        "## Lesson memory",
        "",
        f"{status['active']} active, {status['retired']} retired or rejected, {status['candidate']} pending "
        f"({len(lessons)} stored). The whole playbook: `playbook.md`.",
    ]
    reasons = Counter(reason_category(x.reason) for x in lessons if x.status == "retired")
    if reasons:
        lines += ["", "| why not active | lessons |", "|---|---:|"]
        lines += [f"| {reason} | {n} |" for reason, n in reasons.most_common(8)]
    best = sorted((x for x in lessons if x.helped), key=lambda x: (x.hurt - x.helped, x.id))[:5]
    if best:
        lines += ["", "Lessons that helped most during the rounds (their helped/hurt counters):", ""]
        lines += [
            f'- `{x.id}` {x.kind} "{x.text[:80]}"{" -> " + x.answer if x.answer else ""}: '
            f"helped {x.helped}, hurt {x.hurt}, shown {x.retrieved}"
            for x in best
        ]
    return lines


def describe_run(data: ReportData) -> str:
    cfg = data.cfg
    return (
        f"Suite **{cfg.suite.name}**; student `{cfg.student.model}` ({cfg.student.provider}); "
        f"teacher `{cfg.teacher.model}` ({cfg.teacher.provider}); optimizer `{cfg.loop.optimizer}`; "
        f"verified writes `{cfg.memory.verify}`."
    )


def render_markdown(data: ReportData, figures: list[Plot]) -> str:
    """The whole ``report.md``; figures are linked from ``report_files/``."""
    m = data.metrics
    start = data.rounds[0].dev if data.rounds else None
    kept_round = m.get("kept_round")
    kept = next((p.dev for p in data.rounds if p.round == kept_round), None)
    dev = m.get("dev_accuracy", {})
    active = sum(x.status == "active" for x in data.lessons)
    lines = [
        f"# tutelage run `{data.name}`",
        "",
        describe_run(data),
        "",
        f"**{headline(data)}** Active lessons: {active}.",
        "",
        *(f"> {note}" for note in data.notes),
        *([""] if data.notes else []),
        *_rounds_table(data),
        "",
        *_weights_table(data),
        f"Stopped: {m.get('stop_reason') or 'running'}. Dev accuracy "
        f"{with_ci(start) if start else pct(dev.get('start'))} with the starting program, "
        f"{with_ci(kept) if kept else pct(dev.get('kept'))} with the kept one (round {kept_round}). "
        "Brackets: 95% bootstrap intervals.",
        "",
        *(f"![{f.caption}]({FIGURE_DIR}/{f.name}.png)\n" for f in figures),
        "Decisions (paired on the same dev items):",
        "",
        *(f"- round {p.row['round']}: {p.row.get('decision')}" for p in data.rounds if p.row),
        *(f"- round {p.row['round']}: **{p.row['flag']}**" for p in data.rounds if p.row.get("flag")),
        "",
        *_slice_section(data),
        "",
        *_credit_section(data),
        *_kind_section(data),
        "",
        *_cost_section(data),
        "",
        *memory_section(data.lessons),
        "",
    ]
    return "\n".join(lines)
