"""``tutelage run``, ``resume``, ``eval``, ``transfer`` and ``track``, with their progress display."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from tutelage.cli._common import _env, _guard, console
from tutelage.cli._progress import _dropped, _kilo, _pct, _tokens, log_format, reporting

__all__ = ["app"]

app = typer.Typer()


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
        (
            f"trainer {c['calls']} training(s), {_kilo(c['tokens_in'])} tokens trained, {c['seconds']:.0f}s"
            if role == "trainer"  # the ledger's training rows: not model calls
            else f"{role} {c['calls']} calls, {_kilo(c['tokens_in'])} in / {_kilo(c['tokens_out'])} out"
        )
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
    console.print(f"written to {result.run_dir}/: metrics.json, report.md, report.html, playbook.md")


Overrides = Annotated[
    list[str] | None, typer.Option("--set", help="override a config key: --set loop.rounds=2")
]


def _log_format(ctx: typer.Context, value: str) -> str:
    fmt = _guard(lambda: log_format(value, terminal=console.is_terminal))
    if fmt == "json":  # stdout holds the JSON lines only: the command's own text goes to stderr
        console.stderr = True
        ctx.call_on_close(lambda: setattr(console, "stderr", False))
    return fmt


LogFormat = Annotated[
    str,
    typer.Option(
        "--log-format",
        metavar="[auto|plain|json]",
        callback=_log_format,
        help="auto: progress bars on a terminal, else plain lines; plain; json: JSON lines on stdout",
    ),
]


@app.command()
def run(
    config: Annotated[Path | None, typer.Argument(help="YAML config; none: the embedded quickstart")] = None,
    overrides: Overrides = None,
    log_format: LogFormat = "auto",
) -> None:
    """Run the self-improvement loop (no CONFIG: Banking77 quickstart on the embedded SmolLM2, 3 rounds)."""
    _env()
    from tutelage.api import run as run_loop
    from tutelage.config import load_config

    cfg = _guard(lambda: load_config(config, overrides))
    console.print(
        f"tutelage run: suite [bold]{cfg.suite.name}[/], {cfg.loop.rounds} rounds, "
        f"student {cfg.student.model} "
        f"({cfg.student.provider}), teacher {cfg.teacher.model} ({cfg.teacher.provider})"
    )
    with reporting(log_format) as reporter:
        result = _guard(lambda: run_loop(cfg, reporter=reporter))
    _summary(result)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="the run directory to continue")],
    log_format: LogFormat = "auto",
) -> None:
    """Continue a run that was killed, without redoing finished rounds or duplicating lessons."""
    _env()
    from tutelage.api import resume as resume_loop

    with reporting(log_format) as reporter:
        result = _guard(lambda: resume_loop(run_dir, reporter=reporter))
    _summary(result)


@app.command("eval")
def eval_(
    suite: Annotated[
        str | None,
        typer.Argument(help="banking77, gsm8k, bbh, math500, nlupp, a .jsonl/.csv file, or a YAML config"),
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="YAML config for the student (default: quickstart)")
    ] = None,
    data_dir: Annotated[str | None, typer.Option(help="folder holding the suite's files")] = None,
    memory: Annotated[Path | None, typer.Option(help="use this run's memory and kept program")] = None,
    program: Annotated[Path | None, typer.Option(help="a compiled program JSON")] = None,
    baseline: Annotated[
        str | None, typer.Option(help="zero-shot, fewshot-random or retrieval-train (instead of a program)")
    ] = None,
    k: Annotated[
        int, typer.Option(min=1, help="demos shown by fewshot-random / retrieved by retrieval-train")
    ] = 8,
    split: Annotated[str, typer.Option(help="test or dev")] = "test",
    limit: Annotated[int | None, typer.Option(min=1, help="score only the first N items")] = None,
    out: Annotated[
        Path | None, typer.Option(help="evaluation folder (default: under RUNS_DIR/evals)")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="discard the cached items of this evaluation")] = False,
    retry_failed: Annotated[bool, typer.Option(help="ask again for cached per-item failures")] = False,
    overrides: Overrides = None,
    log_format: LogFormat = "auto",
) -> None:
    """Score a student on a suite: zero-shot, a baseline, or with a run's memory and program.

    Items are cached in the evaluation folder as they finish: the same command after a kill resumes.
    """
    _env()
    from tutelage.config import load_config
    from tutelage.evals.runner import eval_overrides, evaluate
    from tutelage.rundir import RunPaths

    if suite is not None and suite.endswith((".yaml", ".yml")):
        config, suite = config or Path(suite), None
    if config is None and memory is not None:
        config = RunPaths(memory).config
    sets = eval_overrides(suite, data_dir, overrides or [])
    cfg = _guard(lambda: load_config(config, sets))
    with reporting(log_format) as reporter:
        result = _guard(
            lambda: evaluate(
                cfg,
                run_dir=memory,
                program=program,
                baseline=baseline,
                k=k,
                split=split,
                limit=limit,
                out=out,
                fresh=fresh,
                retry_failed=retry_failed,
                reporter=reporter,
            ),
            resume="the same command again: finished items are cached",
        )
    _eval_summary(result)


def _of(n: int, total: int, split: str) -> str:
    if total <= n:
        return f"{n} items"
    key = "suite.test_size" if split == "test" else "suite.dev_size"
    return f"{n} of {total:,} items (a seeded sample; --set {key}=... for more)"


def _eval_summary(result: Any) -> None:
    resumed = f", {result.resumed} read back from the cache" if result.resumed else ""
    console.print(
        f"{result.suite} {result.split}: score [bold]{_pct(result.score)}[/] "
        f"[95% CI {_pct(result.low)}, {_pct(result.high)}] on {_of(result.n, result.of, result.split)} "
        f"({result.failures} per-item failures{resumed}) with {result.student}"
    )
    if result.decoding == "constrained":
        console.print(
            f"labels: constrained by the endpoint's structured outputs {_pct(result.score)}; free replies "
            f"snapped to the nearest label {_pct(result.free_score)} ({result.free_snapped} of {result.n} "
            "replies were not a label as written)"
        )
    elif result.decoding == "snapped":
        console.print(f"labels: {result.snapped} of {result.n} replies were not a label and were snapped")
    for key, slices in result.slices.items():
        sizes = sorted(s["n"] for s in slices.values())
        if len(slices) < 2 or sizes[len(sizes) // 2] < 5:  # slices of one or two items say nothing
            continue
        worst = sorted(slices.items(), key=lambda kv: (kv[1]["mean"], kv[0]))[:8]
        shown = "  ".join(f"{name} {_pct(s['mean'])} (n={int(s['n'])})" for name, s in worst)
        console.print(f"lowest by {key} ({len(slices)} slices): {shown}")
    console.print(f"written to {result.out}/: journal.jsonl, summary.json")


@app.command()
def transfer(
    run_dir: Annotated[Path, typer.Argument(help="the run whose lessons and program are transferred")],
    split: Annotated[str, typer.Option(help="test or dev")] = "test",
    limit: Annotated[int | None, typer.Option(help="score only the first N items")] = None,
    overrides: Overrides = None,
    log_format: LogFormat = "auto",
) -> None:
    """Give a run's lessons and program to another student (--set student.model=...): paired, same items."""
    _env()
    from tutelage.evals.transfer import transfer as run_transfer

    with reporting(log_format) as reporter:
        result = _guard(
            lambda: run_transfer(run_dir, overrides or [], split=split, limit=limit, reporter=reporter),
            resume="the same command again: finished items are cached",
        )
    alone, taught, paired = result.alone, result.taught, result.paired
    console.print(f"transfer of {run_dir} to student [bold]{result.student}[/] on {paired.n} {split} items:")
    for name, row in (("alone (zero-shot):", alone), ("with the run lessons + program:", taught)):
        console.print(f"  {name:<33}{_pct(row.score)} [{_pct(row.low)}, {_pct(row.high)}]")
    console.print(f"  taught - alone: {paired.describe().removeprefix('B − A = ')}")
    if result.source is not None:
        console.print(
            f"  the run's own student ({result.source_student}), same items: {result.source.describe()}"
        )
    if result.adapter_left_out:
        console.print(
            f"  the run's adapter {result.adapter_left_out} was left out: its weights fit the run's own base"
        )
    console.print(f"cached in {alone.out}/ and {taught.out}/")


@app.command()
def track(
    run_dir: Annotated[Path, typer.Argument(help="a run directory to log")],
    uri: Annotated[str | None, typer.Option(help="MLflow tracking URI (default: the run's)")] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: the run's)")] = None,
) -> None:
    """Log a run to MLflow (params, per-round metrics, artifacts); again: the same MLflow run is updated."""
    _env()
    from tutelage.tracking import log_run

    run_id = _guard(lambda: log_run(run_dir, uri, experiment))
    console.print(f"logged {run_dir} to MLflow run {run_id}")
