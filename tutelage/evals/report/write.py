"""Writing a run's reports: ``report.md``, ``report.html``, their figures and ``playbook.md``."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tutelage import runfiles
from tutelage.agents.ledger import Ledger
from tutelage.config import RunConfig, load_config
from tutelage.errors import RunDirError, TutelageError
from tutelage.evals.report.data import ReportData, collect
from tutelage.evals.report.figures import render_figures
from tutelage.evals.report.html import render_html
from tutelage.evals.report.markdown import FIGURE_DIR, render_markdown
from tutelage.memory.lesson import Lesson
from tutelage.memory.location import open_run_memory
from tutelage.memory.playbook import playbook_markdown
from tutelage.rundir import RunPaths

__all__ = ["Written", "report_run", "write_run_report"]


@dataclass(frozen=True)
class Written:
    """What a report write produced: the data shown and the files written."""

    data: ReportData
    paths: list[Path] = field(default_factory=list)


def write_run_report(
    root: Path,
    cfg: RunConfig,
    metrics: dict[str, Any],
    lessons: list[Lesson] | None,
    *,
    slice_key: str | None = None,
    seed: int = 0,
) -> Written:
    """Write ``report.md``, ``report.html`` (self-contained), ``report_files/*.png`` and, when the
    lessons are known, ``playbook.md``."""
    data = collect(root, cfg, metrics, lessons, slice_key=slice_key, seed=seed)
    figures = render_figures(data)
    folder = root / FIGURE_DIR
    written = []
    for f in figures:
        written.append(runfiles.write_bytes(folder / f"{f.name}.png", f.png))
    for name, text in (
        ("report.md", render_markdown(data, figures)),
        ("report.html", render_html(data, figures)),
    ):
        written.append(runfiles.write_text(root / name, text))
    if lessons is not None:
        written.append(
            runfiles.write_text(root / "playbook.md", playbook_markdown(lessons, title=f"run {root.name}"))
        )
    return Written(data, written)


def _metrics(root: Path) -> dict[str, Any]:
    """``metrics.json``, or what a run killed before its first round can say without it."""
    path = root / "metrics.json"
    if path.is_file():
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except ValueError:
            raise RunDirError(f"{path} is not JSON") from None
    ledger = Ledger(root / "ledger.jsonl")
    return {
        "rounds": [],
        "test_accuracy": {"before": None, "after": None},
        "dev_accuracy": {"start": None, "kept": None},
        "kept_round": 0,
        "stop_reason": None,
        "cost": ledger.totals(),
        "wall_seconds": round(ledger.recorded_seconds(), 1),
    }


def report_run(run_dir: Path, *, slice_key: str | None = None, seed: int = 0) -> Written:
    """(Re)write the reports of a finished or partial run from what its directory holds.

    Raises:
        RunDirError: not a run directory, or an unreadable ``metrics.json``.

    Example:
        >>> report_run(Path("runs/quickstart"))  # doctest: +SKIP
    """
    if not (run_dir / "config.yaml").is_file():
        raise RunDirError(f"{run_dir} is not a tutelage run directory (no config.yaml)")
    cfg = load_config(run_dir / "config.yaml")
    metrics = _metrics(run_dir)
    lessons: list[Lesson] | None
    try:
        lessons = open_run_memory(RunPaths(run_dir), cfg).all()
    except TutelageError:
        lessons = None
    return write_run_report(run_dir, cfg, metrics, lessons, slice_key=slice_key, seed=seed)
