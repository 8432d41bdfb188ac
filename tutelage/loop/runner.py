"""Run and resume: open the run directory, endpoints, memory and checkpoints, then drive the graph."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver

from tutelage import runfiles
from tutelage.agents.build import require_tools
from tutelage.agents.ledger import Ledger
from tutelage.backends import build_lm, open_endpoints
from tutelage.checkpoints import checkpointer, checkpoints_for
from tutelage.config import RunConfig, load_config
from tutelage.errors import DataError, RunDirError, TutelageError
from tutelage.evals.suites import bind_judge, load_suite
from tutelage.loop._metrics import write_metrics
from tutelage.loop._state import RunContext
from tutelage.loop.graph import build_graph
from tutelage.loop.progress import LogReporter, Reporter
from tutelage.memory.embed import Embedder
from tutelage.memory.lesson import Lesson
from tutelage.memory.location import open_run_memory
from tutelage.rundir import RunPaths, new_run_dir
from tutelage.tracking import log_finished_run, require_mlflow

__all__ = ["Finish", "RunResult", "resume_run", "start_run"]

# What a finished (or resumed-finished) run hands to the layer above: its folder, config, metrics, lessons
Finish = Callable[[Path, RunConfig, dict[str, Any], list[Lesson]], object]


@dataclass(frozen=True)
class RunResult:
    """Where a run lives and what it measured (the content of ``metrics.json``).

    With ``tracking.mlflow_uri`` set, ``mlflow_run_id`` names the MLflow run it was logged to, or
    ``tracking_warning`` says why logging failed (the run itself still succeeded).
    """

    run_dir: Path
    metrics: dict[str, Any]
    mlflow_run_id: str | None = None
    tracking_warning: str | None = None

    @property
    def test_before(self) -> float | None:
        return self.metrics["test_accuracy"]["before"]  # type: ignore[no-any-return]

    @property
    def test_after(self) -> float | None:
        return self.metrics["test_accuracy"]["after"]  # type: ignore[no-any-return]


def own_namespace(cfg: RunConfig, paths: RunPaths) -> RunConfig:
    """On a shared Chroma server, a run with no ``memory.namespace`` gets one of its own."""
    if cfg.memory.url is None or cfg.memory.namespace is not None:
        return cfg
    stem = re.sub(r"[^a-zA-Z0-9._-]+", "-", paths.root.name).strip("-._").replace("..", ".")[:60]
    namespace = f"{stem or 'run'}-{uuid.uuid4().hex[:8]}"
    return cfg.model_copy(update={"memory": cfg.memory.model_copy(update={"namespace": namespace})})


def _progress(saver: BaseCheckpointSaver[str], config: dict[str, Any]) -> str:
    """``none`` (no checkpoint yet), ``finished`` (the graph reached its end) or ``running``.

    A node whose writes were saved but whose next checkpoint was not (a kill between the two) leaves
    no task in ``next``: the pending tasks, not ``next``, say whether anything is left to run.
    """
    snapshot = build_graph(saver).get_state(config)
    if not snapshot.values and not snapshot.tasks:
        return "none"
    return "finished" if not snapshot.tasks and "test_after" in snapshot.values else "running"


def _drive(
    paths: RunPaths,
    cfg: RunConfig,
    reporter: Reporter,
    *,
    fresh: bool,
    embedder: Embedder | None,
    finish: Finish | None,
) -> RunResult:
    require_tools(cfg)
    suite = load_suite(cfg.suite)
    if not suite.train or not suite.dev:
        raise DataError(
            f"suite {suite.name!r} has {len(suite.train)} train and {len(suite.dev)} dev items; the loop "
            "needs both (a test-only file can still be scored with `tutelage eval`)"
        )
    checkpoints = checkpoints_for(cfg, paths)
    config = {
        "configurable": {"thread_id": checkpoints.thread_id},
        "recursion_limit": 17 * cfg.loop.rounds + 20,
    }
    with contextlib.ExitStack() as stack:
        stack.enter_context(paths.lock())
        saver = stack.enter_context(checkpoints.open()) if checkpoints.exists() else None
        progress = _progress(saver, config) if saver is not None and not fresh else "none"
        if progress == "finished":
            reporter.message(f"{paths.root} has already finished; nothing to resume")
            state = dict(build_graph(saver).get_state(config).values)
            memory = open_run_memory(paths, cfg, embedder)
        else:
            fresh = fresh or progress == "none"  # killed before its first checkpoint: start over
            # Memory and endpoints first: a run that cannot reach them leaves no checkpoint behind.
            memory = open_run_memory(paths, cfg, embedder)
            endpoints = stack.enter_context(open_endpoints(cfg, log_dir=paths.root))
            saver = saver or stack.enter_context(checkpoints.open())
            ledger = Ledger.for_run(cfg, paths.ledger)
            teacher_lm = (
                build_lm(cfg.teacher, endpoints.teacher, name="teacher", ledger=ledger)
                if cfg.teacher_on
                else None
            )
            ctx = RunContext(
                config=cfg,
                # suite.metric: judge grades with the teacher (a config error when the teacher is off)
                suite=bind_judge(suite, teacher_lm) if teacher_lm is not None else suite,
                memory=memory,
                student_lm=build_lm(cfg.student, endpoints.student, name="student", ledger=ledger),
                teacher_lm=teacher_lm,
                paths=paths,
                reporter=reporter,
                ledger=ledger,
                adapters=endpoints.adapters,
            )
            # "sync": a node's checkpoint is on disk before the next node starts, so a kill can never
            # leave a node's results saved without the checkpoint that says it ran.
            state = build_graph(saver).invoke(
                {} if fresh else None, config=config, context=ctx, durability="sync"
            )
    metrics = write_metrics(paths, state)
    if finish is not None:
        finish(paths.root, cfg, metrics, memory.all())
    mlflow_run_id, warning = log_finished_run(paths.root, cfg.tracking)
    if warning:
        reporter.message(f"warning: {warning}")
    return RunResult(paths.root, metrics, mlflow_run_id=mlflow_run_id, tracking_warning=warning)


def start_run(
    cfg: RunConfig,
    *,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
    finish: Finish | None = None,
) -> RunResult:
    """Start a new run in a fresh directory under ``cfg.runs_dir``.

    ``finish(run_dir, cfg, metrics, lessons)`` runs once the run has its metrics, before the run is
    logged to MLflow: ``tutelage.run`` writes the reports there (the loop never imports them).
    """
    require_mlflow(cfg.tracking)
    checkpointer(cfg.checkpoints.url)  # a bad URL fails before a run directory is made
    paths = new_run_dir(cfg)
    paths.claim_id()
    cfg = own_namespace(cfg, paths)
    paths.write_config(cfg)
    reporter = reporter or LogReporter()
    reporter.message(f"run directory: {paths.root}  (resume with `tutelage resume {paths.root}`)")
    try:
        return _drive(paths, cfg, reporter, fresh=True, embedder=embedder, finish=finish)
    except TutelageError:
        if not checkpoints_for(cfg, paths).exists():  # nothing ran: leave no half-made run directory behind
            runfiles.remove_tree(paths.root)
        raise


def resume_run(
    run_dir: str | Path,
    *,
    reporter: Reporter | None = None,
    embedder: Embedder | None = None,
    finish: Finish | None = None,
) -> RunResult:
    """Continue a run that was killed, from its last checkpoint, without redoing finished rounds."""
    paths = RunPaths(Path(run_dir))
    paths.require()
    cfg = load_config(paths.config)
    if not checkpoints_for(cfg, paths).exists():
        raise RunDirError(f"{paths.root} has no checkpoints to resume from")
    require_mlflow(cfg.tracking)
    reporter = reporter or LogReporter()
    reporter.message(f"resuming {paths.root}")
    return _drive(paths, cfg, reporter, fresh=False, embedder=embedder, finish=finish)
