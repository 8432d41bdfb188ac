"""The report's figures as PNG bytes (matplotlib, Agg, no pyplot state): the same images in both reports."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tutelage.evals.report.data import MIN_CI_N, ReportData

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["Plot", "render_figures"]

KEPT, ROLLED, TEST, MUTED = "#2a9d8f", "#e76f51", "#264653", "#8d99ae"
ROLES = {"student": ("#457b9d", "#a8dadc"), "teacher": ("#e9c46a", "#f4a261")}  # (tokens in, tokens out)
TOP_SLICES = 15


@dataclass(frozen=True)
class Plot:
    """One figure: its file name (``report_files/<name>.png``), PNG bytes, and what it shows."""

    name: str
    png: bytes
    caption: str


def _new(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=110, layout="constrained")


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    # No "Software" text chunk: the file stays byte-stable across matplotlib versions and names no URL.
    fig.savefig(buf, format="png", metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def _pct_axis(ax: Axes) -> None:
    from matplotlib.ticker import PercentFormatter

    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.grid(axis="y", alpha=0.3)


def _scores(data: ReportData) -> Plot:
    fig = _new(8.0, 3.6)
    ax, side = fig.subplots(1, 2, width_ratios=[3, 1], sharey=True)
    best: list[tuple[int, float]] = []
    incumbent = None
    for p, dev in ((p, p.dev) for p in data.rounds if p.dev is not None):
        if p.kept:
            incumbent = dev.mean
        if incumbent is not None:
            best.append((p.round, incumbent))
        color = KEPT if p.kept else ROLLED
        ax.errorbar(
            [p.round],
            [dev.mean],
            yerr=[[dev.mean - dev.low], [dev.high - dev.mean]],
            fmt="o" if p.kept else "X",
            color=color,
            capsize=4,
            markersize=8,
            markerfacecolor=color if p.kept else "white",
        )
    if best:
        ax.step(*zip(*best, strict=True), where="post", color=MUTED, linestyle="--", linewidth=1)
    ax.plot([], [], "o", color=KEPT, label="dev, kept")
    ax.plot([], [], "X", color=ROLLED, markerfacecolor="white", label="dev, rolled back")
    ax.plot([], [], "--", color=MUTED, label="kept program's dev")
    ax.set_xlabel("round (0 = starting program)")
    ax.set_ylabel("accuracy (95% bootstrap CI)")
    ax.set_xticks([p.round for p in data.rounds])
    fig.legend(loc="outside lower center", fontsize=8, ncols=3)
    _pct_axis(ax)
    ax.set_title("Dev accuracy per round", fontsize=10)
    for x, (label, iv) in enumerate((("before", data.test_before), ("after", data.test_after))):
        if iv is None:
            continue
        side.bar([x], [iv.mean], color=TEST if label == "after" else MUTED, width=0.6)
        side.errorbar(
            [x], [iv.mean], yerr=[[iv.mean - iv.low], [iv.high - iv.mean]], color="black", capsize=5
        )
        side.annotate(f"{100 * iv.mean:.1f}%", (x, iv.high), ha="center", va="bottom", fontsize=8)
    side.set_xticks([0, 1], ["before", "after"])
    side.set_xlim(-0.6, 1.6)
    side.set_ylim(0, 1.08)
    side.set_title("Held-out test", fontsize=10)
    side.grid(axis="y", alpha=0.3)
    caption = (
        "Dev accuracy of each round's program with 95% bootstrap intervals (filled: kept, crossed: "
        "rolled back; dashed: the kept program), and the held-out test before round 1 and after the last."
    )
    return Plot("scores", _png(fig), caption)


def _lessons(data: ReportData) -> Plot:
    fig = _new(8.0, 3.0)
    ax = fig.subplots()
    rows = [p.row for p in data.rounds if p.row]
    rounds = [0, *(int(r["round"]) for r in rows)]
    active = [0, *(int(r.get("lessons", 0)) for r in rows)]
    ax.plot(rounds, active, "o-", color=TEST, label="active after the round")
    width = 0.35
    added = [0, *(int(r.get("lessons_added", 0)) for r in rows)]
    dropped = [
        0,
        *(
            int(sum(r.get(k, 0) for k in ("lessons_refused", "lessons_rejected", "lessons_retired")))
            + int(r.get("lessons_rolled_back", 0))
            for r in rows
        ),
    ]
    ax.bar([r - width / 2 for r in rounds], added, width, color=KEPT, alpha=0.6, label="written")
    ax.bar([r + width / 2 for r in rounds], dropped, width, color=ROLLED, alpha=0.6, label="dropped")
    ax.set_xticks(rounds)
    ax.set_xlabel("round")
    ax.set_ylabel("lessons")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title("Active lessons per round", fontsize=10)
    caption = (
        "Lessons active at the end of each round (shown to the student), with the lessons the round "
        "wrote and dropped (refused for leakage, rejected by verification, retired, or rolled back)."
    )
    return Plot("lessons", _png(fig), caption)


def _cost(data: ReportData) -> Plot:
    fig = _new(8.0, 3.0)
    ax = fig.subplots()
    labels = [label for label, _ in data.cost]
    bottom = [0.0] * len(labels)
    for role, (c_in, c_out) in ROLES.items():
        for part, color in (("tokens_in", c_in), ("tokens_out", c_out)):
            values = [float(per.get(role, {}).get(part, 0)) / 1000 for _, per in data.cost]
            ax.bar(labels, values, bottom=bottom, color=color, label=f"{role} {part.replace('_', ' ')}")
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("thousand tokens")
    ax.grid(axis="y", alpha=0.3)
    fig.legend(loc="outside right upper", fontsize=8)
    ax.set_title("Tokens per phase and role", fontsize=10)
    caption = (
        "Tokens in and out per role for the start, each round, and the held-out test runs (ledger.jsonl)."
    )
    return Plot("cost", _png(fig), caption)


def _slices(data: ReportData) -> Plot | None:
    rows = data.moved_slices[:TOP_SLICES]
    if not rows:
        return None
    fig = _new(8.0, max(1.8, 0.6 + 0.28 * len(rows)))
    ax = fig.subplots()
    y = list(range(len(rows)))[::-1]
    diffs = [100 * s.paired.diff for s in rows]
    ax.barh(y, diffs, color=[KEPT if d >= 0 else ROLLED for d in diffs], alpha=0.8)
    wide = [(d, yy, s) for d, yy, s in zip(diffs, y, rows, strict=True) if s.has_ci]
    if wide:
        ax.errorbar(
            [d for d, _, _ in wide],
            [yy for _, yy, _ in wide],
            xerr=[
                [100 * (s.paired.diff - s.paired.low) for _, _, s in wide],
                [100 * (s.paired.high - s.paired.diff) for _, _, s in wide],
            ],
            fmt="none",
            color="black",
            capsize=3,
            linewidth=0.8,
        )
    ax.set_yticks(y, [f"{s.name} (n={s.paired.n})" for s in rows], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("test after − before (points, 95% CI)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Per-slice test change, most items moved first ({data.slice_key})", fontsize=10)
    caption = (
        f"The {len(rows)} slices ({data.slice_key}) with the most held-out test items moved between before "
        f"round 1 and after the last round; whiskers: paired-bootstrap 95% intervals (from {MIN_CI_N} items)."
    )
    return Plot("slices", _png(fig), caption)


def render_figures(data: ReportData) -> list[Plot]:
    """Scores per round, lessons per round, cost per phase, and per-slice deltas (when there are any)."""
    figures = [_scores(data), _lessons(data), _cost(data), _slices(data)]
    return [f for f in figures if f is not None]
