"""``tutelage eval``: score a student on a suite split, with or without a run's memory and program."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tutelage.agents.lm import build_lm, open_endpoints
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.config import load_config
from tutelage.errors import ConfigError
from tutelage.evals.harness import accuracy, run_tasks
from tutelage.evals.suites import load_suite
from tutelage.loop.progress import LogReporter, Reporter

__all__ = ["evaluate_student"]


def evaluate_student(
    config: Path | None,
    overrides: list[str] | None = None,
    *,
    run_dir: Path | None = None,
    program: Path | None = None,
    split: str = "test",
    limit: int | None = None,
    reporter: Reporter | None = None,
) -> dict[str, Any]:
    """Score the configured student (or a run's student with its memory) on ``split``."""
    from tutelage.api import latest_program
    from tutelage.loop.rundir import RunPaths
    from tutelage.loop.runner import open_memory

    reporter = reporter or LogReporter()
    if split not in ("test", "dev"):
        raise ConfigError(f"--split must be 'test' or 'dev', not {split!r}")
    if run_dir is not None and config is None:
        paths = RunPaths(run_dir)
        paths.require()
        config = paths.config
    cfg = load_config(config, overrides)
    suite = load_suite(cfg.suite)
    tasks = suite.test if split == "test" else suite.dev
    tasks = tasks[:limit] if limit else tasks
    if run_dir is not None:
        paths = RunPaths(run_dir)
        paths.require()
        student = StudentProgram.load_json(program or latest_program(paths), memory=open_memory(paths, cfg))
        label = f"{cfg.student.model} + memory of {run_dir}"
    else:
        choices = suite.labels if cfg.suite.snap_to_labels else None
        student = StudentProgram(suite.instruction, memory=None, k_examples=0, choices=choices)
        label = f"{cfg.student.model}, zero-shot"
    with open_endpoints(cfg.model_copy(update={"teacher": cfg.student})) as endpoints:
        solve = make_solver(student, lm=build_lm(cfg.student, endpoints.student), metric=suite.metric)
        reporter.phase(f"eval {suite.name} {split}", len(tasks))
        result = accuracy(
            run_tasks(solve, tasks, concurrency=cfg.student.concurrency, on_progress=reporter.update)
        )
    return {"suite": suite.name, "student": label, **result.as_dict()}
