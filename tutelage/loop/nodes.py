"""The loop's nodes: each reads the run context, does one thing, returns a partial state.

Every node that calls a model journals its per-item results under the run directory, so a node
interrupted by a kill redoes only the items it had not finished when the run resumes.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from langgraph.runtime import Runtime

from tutelage.agents.student import StudentProgram, make_solver
from tutelage.agents.teacher import Diagnosis, Teacher
from tutelage.evals.harness import Attempt, accuracy, load_journal, run_tasks
from tutelage.evals.suites import Task
from tutelage.loop.rundir import write_metrics
from tutelage.loop.state import LoopState, RunContext
from tutelage.memory.curate import Outcome, apply_credit
from tutelage.optimizers import CompileContext, build_optimizer

__all__ = [
    "attempt",
    "compile_program",
    "diagnose",
    "evaluate_dev",
    "grade",
    "next_step",
    "sample_batch",
    "test_after",
    "test_before",
]

Node = TypeVar("Node", bound=Callable[..., dict[str, Any]])


def timed(node: Node) -> Node:
    """Add the node's wall time to the round's seconds."""

    @functools.wraps(node)
    def wrapper(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        start = time.perf_counter()
        update = node(state, runtime)
        elapsed = time.perf_counter() - start
        update["round_seconds"] = state.get("round_seconds", 0.0) + elapsed
        update["phase_seconds"] = {**state.get("phase_seconds", {}), node.__name__: round(elapsed, 1)}
        return update

    return cast(Node, wrapper)


def load_program(ctx: RunContext, path: str, *, as_of_round: int | None = None) -> StudentProgram:
    return StudentProgram.load_json(ctx.paths.root / path, memory=ctx.memory, as_of_round=as_of_round)


def _shuffled_train(ctx: RunContext) -> list[Task]:
    """The train pool in the run's seeded order: batches from the front, search minibatches from the back."""
    pool = list(ctx.suite.train)
    random.Random(ctx.config.seed).shuffle(pool)
    return pool


def _evaluate(ctx: RunContext, program: StudentProgram, tasks: list[Task], journal: Any, label: str) -> float:
    ctx.reporter.phase(label, len(tasks))
    solve = make_solver(program, lm=ctx.student_lm, metric=ctx.suite.metric)
    attempts = run_tasks(
        solve,
        tasks,
        concurrency=ctx.config.student.concurrency,
        journal=journal,
        on_progress=ctx.reporter.update,
    )
    return accuracy(attempts).accuracy


def test_before(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Save the starting program (no lessons yet) and score it once on the held-out test split."""
    ctx = runtime.context
    mem = ctx.config.memory
    program = StudentProgram(
        ctx.suite.instruction,
        memory=ctx.memory,
        k_examples=mem.k_examples,
        k_strategies=mem.k_strategies,
        choices=ctx.suite.labels if ctx.config.suite.snap_to_labels else None,
        scope=ctx.suite.name,
        mmr=mem.mmr,
        token_budget=mem.token_budget,
    )
    path = ctx.paths.program(0)
    program.save_json(path, round=0, optimizer="initial")
    start = time.perf_counter()
    score = _evaluate(ctx, program, ctx.suite.test, ctx.paths.test_journal("before"), "test (before round 1)")
    return {
        "round": 0,
        "rounds": [],
        "test_before": score,
        "test_seconds": {"before": round(time.perf_counter() - start, 1)},
        "program_path": str(path.relative_to(ctx.paths.root)),
    }


def sample_batch(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The next train batch: a fresh, seeded slice of train items never sampled before."""
    ctx = runtime.context
    round_no = state.get("round", 0) + 1
    size = ctx.config.loop.batch_size
    pool = _shuffled_train(ctx)[: max(0, len(ctx.suite.train) - ctx.config.loop.search_size)]
    start = ((round_no - 1) * size) % max(1, len(pool))
    batch = (pool[start:] + pool[:start])[:size]
    return {"round": round_no, "batch_ids": [t.id for t in batch], "round_seconds": 0.0, "phase_seconds": {}}


@timed
def attempt(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The current student attempts the batch, concurrently and bounded, journaled per item."""
    ctx, r = runtime.context, state["round"]
    tasks = [ctx.tasks[i] for i in state["batch_ids"]]
    ctx.reporter.phase(f"round {r}: student attempts", len(tasks))
    solve = make_solver(load_program(ctx, state["program_path"]), lm=ctx.student_lm, metric=ctx.suite.metric)
    run_tasks(
        solve,
        tasks,
        concurrency=ctx.config.student.concurrency,
        journal=ctx.paths.journal(r, "attempts"),
        on_progress=ctx.reporter.update,
    )
    return {}


@timed
def grade(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Read the graded attempts back; the failures go to the teacher."""
    ctx, r = runtime.context, state["round"]
    attempts: dict[str, Attempt] = load_journal(ctx.paths.journal(r, "attempts"), Attempt)
    rows = [attempts[i] for i in state["batch_ids"] if i in attempts]
    outcomes = [Outcome(a.lesson_ids, a.answer, ctx.tasks[a.task_id].answer, a.score) for a in rows]
    apply_credit(ctx.memory, outcomes, round=r)
    return {
        "failed_ids": [a.task_id for a in rows if a.score < 1.0],
        "train_accuracy": accuracy(rows).accuracy,
    }


@timed
def diagnose(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The teacher diagnoses each failure with the gold answer in hand (train items only)."""
    ctx, r = runtime.context, state["round"]
    attempts: dict[str, Attempt] = load_journal(ctx.paths.journal(r, "attempts"), Attempt)
    failed = [ctx.tasks[i] for i in state["failed_ids"]]
    teacher = Teacher(ctx.suite.teacher_demo)
    ctx.reporter.phase(f"round {r}: teacher diagnoses", len(failed))
    run_tasks(
        lambda task: teacher.diagnose(task, attempts[task.id], lm=ctx.teacher_lm),
        failed,
        concurrency=ctx.config.teacher.concurrency,
        journal=ctx.paths.journal(r, "teacher"),
        record=Diagnosis,
        on_progress=ctx.reporter.update,
    )
    return {}


@timed
def compile_program(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Run the configured DSPy optimizer; save the program the student uses next round as JSON."""
    ctx, r = runtime.context, state["round"]
    loop = ctx.config.loop
    search = _shuffled_train(ctx)[-loop.search_size :]

    def score(program: StudentProgram, tasks: list[Task], tag: str) -> float:
        journal = ctx.paths.journal(r, f"compile-{tag}")
        return _evaluate(ctx, program, tasks, journal, f"round {r}: compile ({tag})")

    teacher = Teacher(ctx.suite.teacher_demo)

    def feedback(task: Task, attempt: Attempt) -> str:
        diag = teacher.diagnose(task, attempt, lm=ctx.teacher_lm)
        return diag.diagnosis or diag.raw or (diag.error or "")

    optimizer = build_optimizer(loop.optimizer)
    compile_ctx = CompileContext(
        student_lm=ctx.student_lm,
        teacher_lm=ctx.teacher_lm,
        metric=ctx.suite.metric,
        score=score,
        feedback=feedback,
        config=loop,
        memory=ctx.memory,
        seed=ctx.config.seed + r,
        round=r,
        scope=ctx.suite.name,
        teacher_model=ctx.config.teacher.model,
        work_dir=ctx.paths.root / "rounds" / f"round_{r}" / "optimizer",
    )
    compiled = optimizer.compile(
        load_program(ctx, state["program_path"]), trainset=search, valset=search, ctx=compile_ctx
    )
    path = ctx.paths.program(r)
    compiled.program.save_json(path, round=r, optimizer=optimizer.name, trials=compiled.trials)
    return {"program_path": str(path.relative_to(ctx.paths.root)), "k_examples": compiled.program.k_examples}


@timed
def evaluate_dev(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score the compiled program on the fixed dev split and record the round."""
    ctx, r = runtime.context, state["round"]
    program = load_program(ctx, state["program_path"])
    dev = _evaluate(ctx, program, ctx.suite.dev, ctx.paths.journal(r, "dev"), f"round {r}: dev evaluation")
    return {"dev_accuracy": dev}


def record_round(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Append the round's row to the metrics and write ``metrics.json``."""
    ctx, r = runtime.context, state["round"]
    row = {
        "round": r,
        "dev_accuracy": state["dev_accuracy"],
        "lessons": ctx.memory.count(status="active"),
        "lessons_stored": ctx.memory.count(),
        "lessons_refused": state.get("lessons_refused", 0),
        "lessons_rejected": state.get("lessons_rejected", 0),
        "lessons_retired": state.get("lessons_retired", 0),
        "seconds": round(state.get("round_seconds", 0.0), 1),
        "train_accuracy": state.get("train_accuracy"),
        "diagnosed": len(state.get("failed_ids", [])),
        "lessons_added": state.get("lessons_added", 0),
        "k_examples": state.get("k_examples"),
        "phase_seconds": state.get("phase_seconds", {}),
    }
    rounds = [*[x for x in state.get("rounds", []) if x["round"] != r], row]
    stop = "max rounds reached" if r >= ctx.config.loop.rounds else None
    update: dict[str, Any] = {"rounds": rounds, "stop_reason": stop}
    write_metrics(ctx.paths, {**state, **update})
    ctx.reporter.round_done(row)
    return update


def next_step(state: LoopState) -> str:
    """Decide: another round, or the final test."""
    return "test_after" if state.get("stop_reason") else "sample_batch"


def test_after(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score the final program once on the held-out test split."""
    ctx = runtime.context
    program = load_program(ctx, state["program_path"])
    start = time.perf_counter()
    score = _evaluate(
        ctx, program, ctx.suite.test, ctx.paths.test_journal("after"), "test (after last round)"
    )
    seconds = {**state.get("test_seconds", {}), "after": round(time.perf_counter() - start, 1)}
    update: dict[str, Any] = {"test_after": score, "test_seconds": seconds}
    write_metrics(ctx.paths, {**state, **update})
    return update
