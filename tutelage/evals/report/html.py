"""``report.html``: one self-contained page (inline CSS, figures as base64 PNG, no external URL)."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Iterable
from html import escape

from tutelage.evals.report.data import ReportData
from tutelage.evals.report.figures import Plot
from tutelage.evals.report.markdown import (
    CREDIT_RULE,
    KIND_HEAD,
    KIND_RULE,
    SLICE_ROWS,
    SLICE_RULE,
    cost_rows,
    delta_ci,
    headline,
    kind_cells,
    pct,
    weights_rows,
    with_ci,
)
from tutelage.evals.stats import Interval, format_p
from tutelage.memory.lesson import reason_category

__all__ = ["render_html"]

CSS = """
body{font:15px/1.5 system-ui,sans-serif;color:#1d2d35;margin:0;background:#f6f7f9}
main{max-width:1000px;margin:0 auto;padding:24px 28px 48px;background:#fff}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #e3e6ea;padding-bottom:4px}
.meta{color:#5c6b73;font-size:13px}.meta b{color:#1d2d35}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{flex:1 1 200px;border:1px solid #e3e6ea;border-radius:8px;padding:10px 14px}
.card .k{font-size:12px;color:#5c6b73;text-transform:uppercase;letter-spacing:.04em}
.card .v{font-size:22px;font-weight:600}.card .s{font-size:12px;color:#5c6b73}
table{border-collapse:collapse;width:100%;font-size:13px;margin:8px 0}
th,td{border-bottom:1px solid #eef0f2;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f6f7f9;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.kept{color:#1f7a6f;font-weight:600}.rolled{color:#c4513a;font-weight:600}.flag{color:#b7791f}
figure{margin:12px 0}figure img{max-width:100%;height:auto;border:1px solid #eef0f2}
figcaption{font-size:12px;color:#5c6b73}
.note{background:#fff8e6;border-left:3px solid #e9c46a;padding:6px 10px}
code{font-size:12px;background:#f1f3f5;padding:0 3px;border-radius:3px}
footer{margin-top:32px;font-size:12px;color:#8d99ae}
"""

# Counts the figures that decoded; a headless browser test reads the result back from the DOM.
IMAGE_CHECK = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  var el = document.getElementById("image-check");
  el.setAttribute("data-images", String(imgs.length));
  el.setAttribute("data-loaded", String(ok));
  el.textContent = ok + " of " + imgs.length + " figures rendered.";
  document.title = document.title + " [figures " + ok + "/" + imgs.length + "]";
});
"""


def _e(value: object) -> str:
    return escape(str(value))


def _table(head: Iterable[str], rows: Iterable[Iterable[str]], numeric: set[int] | None = None) -> str:
    """A table of already-escaped cells; ``numeric`` column indexes are right-aligned."""
    numeric = numeric or set()
    ths = "".join(f"<th{' class=n' if i in numeric else ''}>{h}</th>" for i, h in enumerate(head))
    trs = "".join(
        "<tr>"
        + "".join(f"<td{' class=n' if i in numeric else ''}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{ths}</tr></thead><tbody>{trs}</tbody></table>"


def _card(key: str, value: str, sub: str = "") -> str:
    return (
        f"<div class=card><div class=k>{_e(key)}</div><div class=v>{_e(value)}</div>"
        f"<div class=s>{_e(sub)}</div></div>"
    )


def _figure(figures: dict[str, Plot], name: str) -> str:
    f = figures.get(name)
    if f is None:
        return ""
    data = base64.b64encode(f.png).decode("ascii")
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{_e(f.caption)}">'
        f"<figcaption>{_e(f.caption)}</figcaption></figure>"
    )


def _ci(iv: Interval | None) -> str:
    return "-" if iv is None else f"{100 * iv.low:.1f}–{100 * iv.high:.1f}% (n={iv.n})"


def _header(data: ReportData) -> str:
    cfg, m = data.cfg, data.metrics
    done = sum(1 for p in data.rounds if p.row)
    facts = [
        ("suite", cfg.suite.name),
        ("student", f"{cfg.student.model} ({cfg.student.provider})"),
        ("teacher", f"{cfg.teacher.model} ({cfg.teacher.provider})"),
        ("optimizer", cfg.loop.optimizer),
        ("rounds", f"{done} of {cfg.loop.rounds}"),
        ("stopped", m.get("stop_reason") or "running"),
        ("kept program", f"round {m.get('kept_round')}"),
        ("wall time", f"{m.get('wall_seconds', 0) or 0:.0f} s"),
    ]
    meta = " · ".join(f"{_e(k)} <b>{_e(v)}</b>" for k, v in facts)
    return f"<h1>tutelage run <code>{_e(data.name)}</code></h1><p class=meta>{meta}</p>"


def _cards(data: ReportData) -> str:
    cards = [
        _card(
            "test before round 1",
            pct(data.test_before.mean if data.test_before else None),
            _ci(data.test_before),
        ),
        _card(
            "test after last round",
            pct(data.test_after.mean if data.test_after else None),
            _ci(data.test_after),
        ),
    ]
    if (c := data.test_paired) is not None:
        cards.append(
            _card(
                "after − before",
                f"{100 * c.diff:+.1f} pts",
                f"95% CI {100 * c.low:+.1f}, {100 * c.high:+.1f}; McNemar {format_p(c.p_value)}; "
                f"{c.wins} fixed, {c.losses} broken",
            )
        )
    start = data.rounds[0].dev if data.rounds else None
    kept = next((p.dev for p in data.rounds if p.round == data.metrics.get("kept_round")), None)
    cards.append(
        _card(
            "dev: start → kept", f"{pct(start.mean if start else None)} → {pct(kept.mean if kept else None)}"
        )
    )
    return f"<div class=cards>{''.join(cards)}</div><p>{_e(headline(data))}</p>"


def _decisions(data: ReportData) -> str:
    rows = []
    for p in data.rounds:
        r = p.row
        if not r:
            rows.append(["0", with_ci(p.dev), "-", "-", "<span class=kept>starting program</span>", ""])
            continue
        verdict = "<span class=kept>kept</span>" if p.kept else "<span class=rolled>rolled back</span>"
        gain = "-" if r.get("gain") is None else f"{100 * r['gain']:+.1f}"
        p_value = "-" if r.get("p_value") is None else format_p(r["p_value"])[2:]
        flag = f"<span class=flag>{_e(r['flag'])}</span>" if r.get("flag") else ""
        rows.append(
            [_e(r["round"]), with_ci(p.dev), gain, p_value, verdict, f"{_e(r.get('decision') or '')} {flag}"]
        )
    head = ["round", "dev acc [95% CI]", "gain (pts)", "sign-test p", "decision", "why"]
    return _table(head, rows, {0, 1, 2, 3})


def _rounds(data: ReportData) -> str:
    keys = [
        ("train acc", "train_accuracy"),
        ("diagnosed", "diagnosed"),
        ("written", "lessons_added"),
        ("refused", "lessons_refused"),
        ("rejected", "lessons_rejected"),
        ("retired", "lessons_retired"),
        ("rolled back", "lessons_rolled_back"),
        ("active", "lessons"),
        ("k", "k_examples"),
        ("seconds", "seconds"),
    ]
    rows = []
    for p in data.rounds:
        if not p.row:
            continue
        cells = [_e(p.row["round"])]
        for _, key in keys:
            v = p.row.get(key)
            cells.append(
                pct(v)
                if key == "train_accuracy"
                else ("-" if v is None else _e(f"{v:.0f}" if key == "seconds" else v))
            )
        rows.append(cells)
    return _table(["round", *(k for k, _ in keys)], rows, set(range(len(keys) + 1)))


def _weights(data: ReportData) -> str:
    rows = weights_rows(data)
    if not rows:
        return ""
    head = ["round", "adapter", "examples", "tokens", "steps", "seconds", "peak RSS (MB)", "kept"]
    cells = [[_e(c.strip("`")) for c in row] for row in rows]
    return f"<h2>Weights trained</h2>{_table(head, cells, {0, 2, 3, 4, 5, 6})}"


def _cost(data: ReportData) -> str:
    rows = [
        [
            _e(label),
            _e(role),
            f"{c['calls']:,}",
            f"{c['failures']:,}",
            f"{c['tokens_in']:,}",
            f"{c['tokens_out']:,}",
            f"{c['usd']:.4f}",
            f"{c['seconds']:.0f}",
        ]
        for label, role, c in cost_rows(data)
    ]
    head = ["phase", "role", "calls", "failures", "tokens in", "tokens out", "USD", "LM seconds"]
    return _table(head, rows, {2, 3, 4, 5, 6, 7})


def _slices(data: ReportData) -> str:
    rows = [
        [
            _e(s.name),
            str(s.paired.n),
            pct(s.paired.mean_a),
            pct(s.paired.mean_b),
            _e(delta_ci(s)),
            format_p(s.paired.p_value)[2:],
            format_p(s.p_holm)[2:],
        ]
        for s in data.moved_slices[:SLICE_ROWS]
    ]
    head = ["slice", "n", "before", "after", "Δ pts [95% CI]", "p", "Holm p"]
    return f"<p>{_e(SLICE_RULE)} {_e(data.slice_summary(len(rows)))}</p>" + (
        _table(head, rows, {1, 2, 3, 4, 5, 6}) if rows else ""
    )


def _credits(data: ReportData) -> str:
    if not data.credits:
        return "<p>No lesson was shown on a test item that moved from wrong to right.</p>"
    rows = []
    for c in data.credits:
        x = c.lesson
        text = _e(x.text[:200]) if x else "<i>(not in the memory)</i>"
        rows.append(
            [
                f"<code>{_e(c.id)}</code>",
                _e(x.kind if x else "-"),
                text,
                _e(x.answer if x else ""),
                str(c.shown),
                str(c.fixed),
                str(c.broken),
                f"{c.net:+d}",
            ]
        )
    head = ["lesson", "kind", "text", "answer", "shown", "fixed", "broken", "net"]
    return f"<p>{_e(CREDIT_RULE)}</p>" + _table(head, rows, {4, 5, 6, 7})


def _memory(data: ReportData) -> str:
    status = Counter(x.status for x in data.lessons)
    text = (
        f"<p>{status['active']} active, {status['retired']} retired or rejected, "
        f"{status['candidate']} pending ({len(data.lessons)} stored). "
        "The whole playbook: <code>playbook.md</code>.</p>"
    )
    reasons = Counter(reason_category(x.reason) for x in data.lessons if x.status == "retired")
    if reasons:
        text += _table(
            ["why not active", "lessons"], ([_e(r), str(n)] for r, n in reasons.most_common(8)), {1}
        )
    return text


def _kinds(data: ReportData) -> str:
    if not data.kinds:
        return "<p>No lessons yet.</p>"
    rows = ([_e(c) for c in kind_cells(r)] for r in data.kinds)
    return f"<p>{_e(KIND_RULE)}</p>" + _table(KIND_HEAD, rows, set(range(1, len(KIND_HEAD))))


def render_html(data: ReportData, figures: list[Plot]) -> str:
    """The whole ``report.html``: nothing in it is fetched from anywhere."""
    by_name = {f.name: f for f in figures}
    notes = "".join(f"<p class=note>{_e(n)}</p>" for n in data.notes)
    slices = (
        f"<h2>Per-slice test deltas</h2>{_figure(by_name, 'slices')}{_slices(data)}" if data.slices else ""
    )
    body = (
        f"{_header(data)}{_cards(data)}{notes}"
        f"<h2>Score per round</h2>{_figure(by_name, 'scores')}"
        "<p>Brackets and whiskers: 95% percentile-bootstrap intervals over items. A round is kept only if "
        "it beats the kept program on the same dev items (one-sided sign test, <code>loop.accept</code>).</p>"
        f"<h2>Decisions</h2>{_decisions(data)}"
        f"<h2>Active lessons per round</h2>{_figure(by_name, 'lessons')}{_rounds(data)}"
        f"{_weights(data)}"
        f"<h2>Cost per round</h2>{_figure(by_name, 'cost')}{_cost(data)}"
        f"{slices}"
        f"<h2>Lessons that helped most</h2>{_credits(data)}"
        f"<h2>Lessons by kind</h2>{_kinds(data)}"
        f"<h2>Lesson memory</h2>{_memory(data)}"
        "<footer><p id=image-check data-images=-1 data-loaded=-1>Figures not checked yet.</p>"
        "Written by <code>tutelage report</code> from <code>metrics.json</code>, <code>ledger.jsonl</code>, "
        "<code>evals/</code> and <code>rounds/*/dev.jsonl</code>.</footer>"
    )
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>tutelage run {_e(data.name)}</title><style>{CSS}</style></head>"
        f"<body><main>{body}</main><script>{IMAGE_CHECK}</script></body></html>\n"
    )
