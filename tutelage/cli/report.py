"""``tutelage report`` (rewrite a run's report.md and report.html) and ``tutelage compare`` (B against A)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from tutelage.cli._common import _env, _guard, console

if TYPE_CHECKING:
    from tutelage.evals.compare import Comparison

__all__ = ["app", "compare_command", "report_command"]

app = typer.Typer()

Source = Annotated[
    Path,
    typer.Argument(
        help="a run directory, an eval folder (journal.jsonl) or a .jsonl journal", show_default=False
    ),
]
SliceKey = Annotated[
    str | None,
    typer.Option(
        "--slice", help="slice by this task tag (default: the suite's first; 'answer': gold answer)"
    ),
]


@app.command("report")
def report_command(
    run_dir: Annotated[Path, typer.Argument(help="the run directory, finished or not", show_default=False)],
    slice_key: SliceKey = None,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap intervals")] = 0,
) -> None:
    """(Re)write a run's report.md and self-contained report.html (plots, intervals, slices, cost)."""
    _env()
    from tutelage.evals.report import report_run
    from tutelage.evals.report.markdown import headline

    written = _guard(lambda: report_run(run_dir, slice_key=slice_key, seed=seed))
    figures = sum(1 for p in written.paths if p.suffix == ".png")
    playbook = any(p.name == "playbook.md" for p in written.paths)
    console.print(
        f"wrote {escape(str(run_dir / 'report.html'))} and report.md ({figures} figures in report_files/"
        f"{', playbook.md' if playbook else ''})",
        soft_wrap=True,
        highlight=False,
    )
    console.print(escape(headline(written.data)), soft_wrap=True, highlight=False)
    for note in written.data.notes:
        console.print(f"[yellow]{escape(note)}[/]", soft_wrap=True, highlight=False)


def _slice_table(result: Comparison, top: int) -> Table:
    rows = sorted(
        zip(result.slices.items(), result.slice_p_holm, strict=True),
        key=lambda r: (-abs(r[0][1].diff) * r[0][1].n, -abs(r[0][1].diff), r[0][0]),
    )
    shown = rows[:top]
    table = Table(
        title=f"per slice ({result.slice_key}): {len(shown)} of {len(rows)}, most items moved first",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    for col in ("slice", "n", "A", "B", "B − A [95% CI]", "p", "Holm p"):
        table.add_column(col, justify="left" if col == "slice" else "right", no_wrap=col != "slice")
    from tutelage.evals.report.data import MIN_CI_N
    from tutelage.evals.stats import format_p

    for (name, c), p_holm in shown:
        ci = f" [{100 * c.low:+.1f}, {100 * c.high:+.1f}]" if c.n >= MIN_CI_N else ""
        table.add_row(
            escape(name),
            str(c.n),
            f"{100 * c.mean_a:.1f}%",
            f"{100 * c.mean_b:.1f}%",
            f"{100 * c.diff:+.1f}{ci}",
            format_p(c.p_value)[2:],
            format_p(p_holm)[2:],
        )
    return table


@app.command("compare")
def compare_command(
    run_a: Annotated[Path, typer.Argument(help="A: the baseline", show_default=False)],
    run_b: Annotated[Path, typer.Argument(help="B: compared against A", show_default=False)],
    split: Annotated[
        Literal["test", "dev"],
        typer.Option(help="test: the held-out test after the last round; dev: the kept program"),
    ] = "test",
    slice_key: SliceKey = None,
    top: Annotated[int, typer.Option(help="slices to print (0: none)")] = 15,
    as_json: Annotated[bool, typer.Option("--json", help="print machine-readable JSON instead")] = False,
    seed: Annotated[int, typer.Option(help="seed of the bootstrap and permutation draws")] = 0,
) -> None:
    """Compare two runs on the items both scored: intervals, paired difference, p-value, effect size.

    Example: tutelage compare runs/baseline runs/with-lessons --split test --slice intent
    """
    _env()
    from tutelage.evals.compare import compare

    result = _guard(lambda: compare(run_a, run_b, split=split, slice_key=slice_key, seed=seed))
    if as_json:
        console.print(
            json.dumps(result.as_dict(), indent=2, ensure_ascii=False),
            soft_wrap=True,
            highlight=False,
            markup=False,
        )
        return
    c = result.paired

    def line(text: str) -> None:
        console.print(text, soft_wrap=True, highlight=False)

    line(f"A  {escape(result.a)}: {result.score_a.describe()}")
    line(f"B  {escape(result.b)}: {result.score_b.describe()}")
    line(f"[bold]{escape(c.describe())}[/]")
    line(f"items: {c.n} shared, {result.only_a} only in A, {result.only_b} only in B ({result.split} split)")
    if result.only_a or result.only_b:
        line("[yellow]scores and the difference are over the shared items only[/]")
    if result.note:
        line(escape(result.note))
    if result.slices and top > 0:
        console.print(_slice_table(result, top))
