"""The ``tutelage`` command line: run, resume, eval, memory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tutelage._cli import _env, _guard, console
from tutelage.cli_finetune import export_finetune_command
from tutelage.cli_memory import memory_app

app = typer.Typer(
    help="tutelage: a teacher writes lessons, DSPy compiles a better student.", no_args_is_help=True
)
app.add_typer(memory_app, name="memory")
app.command("export-finetune")(export_finetune_command)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


class RichReporter:
    """Progress bars per phase and a row per finished round."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, label: str, total: int) -> None:
        if self._task is not None:
            self.progress.remove_task(self._task)
        self._task = self.progress.add_task(label, total=total)

    def update(self, done: int, total: int) -> None:
        if self._task is not None:
            self.progress.update(self._task, completed=done, total=total)

    def round_done(self, row: dict[str, Any]) -> None:
        self.progress.console.print(
            f"[bold]round {row['round']}[/]  train {_pct(row.get('train_accuracy'))}  "
            f"failed {row.get('diagnosed', 0)}  "
            f"lessons +{row.get('lessons_added', 0)} -{_dropped(row)} = {row['lessons']}  "
            f"k={row.get('k_examples')}  [bold]dev {_pct(row.get('dev_accuracy'))}[/] "
            f"{'kept' if row.get('accepted') else 'rolled back'}  tokens {_tokens(row.get('cost', {}))}  "
            f"{row['seconds']:.0f}s"
        )
        if row.get("flag"):
            self.progress.console.print(f"[yellow]  {row['flag']}[/]")

    def message(self, text: str) -> None:
        self.progress.console.print(text)


def _dropped(row: dict[str, Any]) -> int:
    """Lessons of the round that are not active: refused (leakage), rejected (verify), retired (curation)."""
    return int(row.get("lessons_refused", 0) + row.get("lessons_rejected", 0) + row.get("lessons_retired", 0))


def _kilo(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _tokens(cost: dict[str, Any]) -> str:
    """Tokens in+out per role, student/teacher: '31.2k/5.0k'."""
    used = [cost.get(role, {}) for role in ("student", "teacher")]
    return "/".join(_kilo(int(c.get("tokens_in", 0) + c.get("tokens_out", 0))) for c in used)


def _summary(result: Any) -> None:
    table = Table(title=f"run {result.run_dir}")
    # Short headers: the table must stay whole in an 80-column terminal or log.
    for col in ("round", "train", "failed", "new", "drop", "active", "dev", "kept", "tok s/t", "secs"):
        table.add_column(col, justify="right")
    for row in result.metrics["rounds"]:
        table.add_row(
            str(row["round"]),
            _pct(row.get("train_accuracy")),
            str(row.get("diagnosed", 0)),
            str(row.get("lessons_added", 0)),
            str(_dropped(row)),
            str(row["lessons"]),
            _pct(row.get("dev_accuracy")),
            "yes" if row.get("accepted") else "no",
            _tokens(row.get("cost", {})),
            f"{row['seconds']:.0f}",
        )
    console.print(table)
    metrics = result.metrics
    cost = metrics.get("cost", {})
    calls = "  ".join(
        f"{role} {c['calls']} calls, {_kilo(c['tokens_in'])} in / {_kilo(c['tokens_out'])} out"
        + (f", ${c['usd']:.4f}" if c["usd"] else "")
        for role, c in sorted(cost.items())
    )
    console.print(f"stopped: {metrics.get('stop_reason')}.  cost: {calls}")
    dev = metrics.get("dev_accuracy", {})
    console.print(
        f"dev accuracy: {_pct(dev.get('start'))} at the start -> {_pct(dev.get('kept'))} "
        f"with the kept program (round {metrics.get('kept_round')})"
    )
    console.print(
        f"held-out test accuracy: [bold]{_pct(result.test_before)}[/] before round 1 -> "
        f"[bold]{_pct(result.test_after)}[/] after the last round"
    )
    console.print(f"written to {result.run_dir}/: metrics.json, report.md, playbook.md, programs/")


Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="override a config key: --set loop.rounds=2")
]


@app.command()
def run(
    config: Annotated[Path | None, typer.Argument(help="YAML config; none: the embedded quickstart")] = None,
    overrides: Overrides = None,
) -> None:
    """Run the self-improvement loop (no CONFIG: Banking77 quickstart on the embedded SmolLM2, 3 rounds)."""
    _env()
    from tutelage.config import load_config
    from tutelage.loop.runner import start_run

    cfg = _guard(lambda: load_config(config, overrides))
    console.print(
        f"tutelage run: suite [bold]{cfg.suite.name}[/], {cfg.loop.rounds} rounds, "
        f"student {cfg.student.model} "
        f"({cfg.student.provider}), teacher {cfg.teacher.model} ({cfg.teacher.provider})"
    )
    with RichReporter() as reporter:
        result = _guard(lambda: start_run(cfg, reporter=reporter))
    _summary(result)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="the run directory to continue")]) -> None:
    """Continue a run that was killed, without redoing finished rounds or duplicating lessons."""
    _env()
    from tutelage.loop.runner import resume_run

    with RichReporter() as reporter:
        result = _guard(lambda: resume_run(run_dir, reporter=reporter))
    _summary(result)


@app.command("eval")
def eval_(
    config: Annotated[Path | None, typer.Argument(help="YAML config naming the student and suite")] = None,
    memory: Annotated[Path | None, typer.Option(help="use this run's memory and latest program")] = None,
    program: Annotated[Path | None, typer.Option(help="a compiled program JSON (with --memory)")] = None,
    split: Annotated[str, typer.Option(help="test or dev")] = "test",
    limit: Annotated[int | None, typer.Option(help="score only the first N items")] = None,
    overrides: Overrides = None,
) -> None:
    """Score a student on a suite, with or without a run's memory and program."""
    _env()
    from tutelage.evals.runner import evaluate_student

    with RichReporter() as reporter:
        result = _guard(
            lambda: evaluate_student(
                config,
                overrides,
                run_dir=memory,
                program=program,
                split=split,
                limit=limit,
                reporter=reporter,
            )
        )
    console.print(
        f"{result['suite']} {split}: accuracy [bold]{_pct(result['accuracy'])}[/] on {result['n']} items "
        f"({result['failures']} per-item failures) with {result['student']}"
    )


def main() -> None:  # pragma: no cover - console entry
    app(prog_name="tutelage")


if __name__ == "__main__":  # pragma: no cover
    main()
