"""The loop's nodes: each reads the run context, does one thing, returns a partial state.

Every node that calls a model journals its per-item results under the run directory, so a node
interrupted by a kill redoes only the items it had not finished when the run resumes. A spent budget
(``BudgetExhausted`` from the cost ledger) ends the round where it is: the remaining model nodes of
the round are skipped, ``decide`` rolls the round back and ``record_round`` stops the run.
"""

from __future__ import annotations

import functools
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

from langgraph.runtime import Runtime

from tutelage.agents.build import build_student
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.agents.teacher import Diagnosis, Teacher, TeacherAsk
from tutelage.backends import routed
from tutelage.errors import BudgetExhausted, ConfigError, DataError
from tutelage.evals.harness import Attempt, accuracy, load_journal, run_tasks
from tutelage.evals.stats import paired_sign_test
from tutelage.evals.suites import Task
from tutelage.loop._batches import select_batch
from tutelage.loop._metrics import write_metrics
from tutelage.loop._state import LoopState, RunContext
from tutelage.memory._curate import Outcome, apply_credit, rollback_round
from tutelage.memory._undo import UndoLog
from tutelage.memory.query import LessonFilter
from tutelage.train import Adapter

__all__ = [
    "attempt",
    "decide",
    "diagnose",
    "evaluate_dev",
    "grade",
    "monitor",
    "next_step",
    "record_round",
    "sample_batch",
    "start",
    "test_after",
    "test_before",
]

Node = TypeVar("Node", bound=Callable[..., dict[str, Any]])


def timed(node: Node) -> Node:
    """Attribute the node's LM calls in the ledger, add its wall time to the round's seconds, and
    turn a spent budget into state instead of an exception."""

    @functools.wraps(node)
    def wrapper(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
        if state.get("budget_stop"):  # a budget ran out earlier in this round: no more model calls
            return {}
        ctx, r = runtime.context, state.get("round", 0)
        ctx.ledger.at(r, node.__name__)
        # Every change this round makes to the memory is imaged first, so a rollback can undo it.
        ctx.memory.undo = UndoLog(undo_path(ctx, r)) if r >= 1 else None
        began = time.perf_counter()
        try:
            update = node(state, runtime)
        except BudgetExhausted as exc:
            update = {"budget_stop": str(exc)}
        finally:
            ctx.memory.undo = None
        elapsed = time.perf_counter() - began
        update["round_seconds"] = state.get("round_seconds", 0.0) + elapsed
        update["phase_seconds"] = {**state.get("phase_seconds", {}), node.__name__: round(elapsed, 1)}
        return update

    return cast(Node, wrapper)


def undo_path(ctx: RunContext, round_no: int) -> Path:
    return ctx.paths.journal(round_no, "memory-undo")


def load_program(ctx: RunContext, path: str, *, as_of_round: int | None = None) -> StudentProgram:
    return StudentProgram.load_json(ctx.paths.root / path, memory=ctx.memory, as_of_round=as_of_round)


def student_lm(ctx: RunContext, program: StudentProgram) -> Any:
    """The student LM that answers as ``program``: the base model, or the adapter the program names."""
    if program.adapter is None:
        return ctx.student_lm
    if ctx.adapters is None:
        raise ConfigError(
            f"student.provider {ctx.config.student.provider!r} cannot serve trained adapters "
            f"(the program names adapter {program.adapter['name']!r})"
        )
    return routed(ctx.student_lm, ctx.adapters.serve(Adapter.from_json(program.adapter)))


def _shuffled_train(ctx: RunContext) -> list[Task]:
    """The train pool in the run's seeded order: batches from the front, search minibatches from the back."""
    pool = list(ctx.suite.train)
    random.Random(ctx.config.seed).shuffle(pool)
    return pool


def _evaluate(
    ctx: RunContext,
    program: StudentProgram,
    tasks: list[Task],
    journal: Any,
    label: str,
    *,
    hide_own: bool = False,
) -> float:
    ctx.reporter.phase(label, len(tasks))
    solve = make_solver(program, lm=student_lm(ctx, program), metric=ctx.suite.metric, hide_own=hide_own)
    attempts = run_tasks(
        solve,
        tasks,
        concurrency=ctx.config.student.concurrency,
        journal=journal,
        on_progress=ctx.reporter.update,
    )
    graded = [a for a in attempts if not (a.error or "").startswith("grader:")]
    if attempts and not graded:  # a broken grader would otherwise read as a student scoring 0%
        raise DataError(f"the grader failed on all {len(attempts)} items of {label}: {attempts[0].error}")
    return accuracy(attempts).accuracy


def _scores(ctx: RunContext, path: str) -> dict[str, float]:
    journal: dict[str, Attempt] = load_journal(ctx.paths.root / path, Attempt)
    return {i: a.score for i, a in journal.items()}


def _journal_path(ctx: RunContext, round_no: int, name: str) -> str:
    return str(ctx.paths.journal(round_no, name).relative_to(ctx.paths.root))


@timed
def start(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Save the starting program (no lessons yet) and score it on dev: the first incumbent."""
    ctx = runtime.context
    program = build_student(
        ctx.config,
        instructions=ctx.suite.instruction,
        memory=ctx.memory,
        choices=ctx.suite.labels if ctx.config.suite.snap_to_labels else None,
        scope=ctx.suite.name,
    )
    path = ctx.paths.program(0)
    program.save_json(path, round=0, optimizer="initial")
    update: dict[str, Any] = {
        "round": 0,
        "rounds": [],
        "program_path": str(path.relative_to(ctx.paths.root)),
        "incumbent_dev_path": _journal_path(ctx, 0, "dev"),
        "incumbent_round": 0,
        "rollbacks_in_row": 0,
    }
    try:
        dev: float | None = _evaluate(
            ctx, program, ctx.suite.dev, ctx.paths.journal(0, "dev"), "dev (starting program)"
        )
    except BudgetExhausted as exc:  # the program is saved: the run still ends with a test score
        update["budget_stop"], dev = str(exc), None
    return {**update, "dev_start": dev, "dev_incumbent": dev}


def test_before(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score the starting program once on the held-out test split (recorded, never budget-limited)."""
    ctx = runtime.context
    ctx.ledger.at(0, "test")
    program = load_program(ctx, state["program_path"])
    began = time.perf_counter()
    score = _evaluate(ctx, program, ctx.suite.test, ctx.paths.test_journal("before"), "test (before round 1)")
    update: dict[str, Any] = {
        "test_before": score,
        "test_seconds": {"before": round(time.perf_counter() - began, 1)},
    }
    if state.get("budget_stop"):
        update["stop_reason"] = state["budget_stop"]
    return update


def _seen(ctx: RunContext, before_round: int) -> dict[str, Attempt]:
    """Every train item attempted before ``before_round``, with its latest attempt, oldest first."""
    seen: dict[str, Attempt] = {}
    for r in range(1, before_round):
        for task_id, a in load_journal(ctx.paths.journal(r, "attempts"), Attempt).items():
            seen.pop(task_id, None)
            seen[task_id] = a
    return seen


def sample_batch(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The next train batch (``loop.batch``: uniform, hard or curriculum), seeded."""
    ctx = runtime.context
    round_no = state.get("round", 0) + 1
    loop = ctx.config.loop
    pool = _shuffled_train(ctx)[: max(0, len(ctx.suite.train) - loop.search_size)]
    batch = select_batch(
        loop.batch,
        pool=pool,
        seen=_seen(ctx, round_no),
        size=loop.batch_size,
        seed=ctx.config.seed + round_no,
        embed=ctx.memory.embedder.embed,
    )
    return {
        "round": round_no,
        "batch_ids": [t.id for t in batch],
        "failed_ids": [],
        "round_seconds": 0.0,
        "phase_seconds": {},
        "lessons_added": 0,
        "lessons_dropped": 0,
        "lessons_refused": 0,
        "lessons_rejected": 0,
        "lessons_retired": 0,
        "candidate_path": None,
        "dev_accuracy": None,
        "monitor_fit": None,
        "finetune_rows": {},
        "train": None,
    }


@timed
def attempt(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The current student attempts the batch, concurrently and bounded, journaled per item."""
    ctx, r = runtime.context, state["round"]
    tasks = [ctx.tasks[i] for i in state["batch_ids"]]
    ctx.reporter.phase(f"round {r}: student attempts", len(tasks))
    program = load_program(ctx, state["program_path"])
    solve = make_solver(program, lm=student_lm(ctx, program), metric=ctx.suite.metric)
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


def teacher_ask(ctx: RunContext) -> TeacherAsk:
    """What the teacher is asked for besides diagnoses and strategies, by what the suite can use:
    synthetic examples where the student replies with an answer, a worked solution where it reasons."""
    mem = ctx.config.memory
    return TeacherAsk(
        examples=0 if ctx.suite.reasoning else mem.synthetic,
        reasoning=ctx.suite.reasoning and mem.worked,
        # an agent's attempts carry their steps: the teacher reads them and names the first wrong one
        steps=ctx.config.student.program is not None or ctx.config.agent.kind == "react",
    )


@timed
def diagnose(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """The teacher diagnoses each failure with the gold answer in hand (train items only)."""
    ctx, r = runtime.context, state["round"]
    if ctx.teacher_lm is None:  # teacher: off: the failures' gold examples are all the round learns
        return {}
    attempts: dict[str, Attempt] = load_journal(ctx.paths.journal(r, "attempts"), Attempt)
    failed = [ctx.tasks[i] for i in state["failed_ids"]][: ctx.config.loop.diagnose_max]
    teacher = Teacher(ctx.suite.teacher_demo, teacher_ask(ctx))
    ctx.reporter.phase(f"round {r}: teacher diagnoses", len(failed))
    guards = ctx.config.guards
    temperature = ctx.config.teacher.temperature or 0.7
    run_tasks(
        lambda task: teacher.diagnose(
            task,
            attempts[task.id],
            lm=ctx.teacher_lm,
            samples=guards.teacher_samples,
            temperature=temperature,
            diversity=guards.diversity,
        ),
        failed,
        concurrency=ctx.config.teacher.concurrency,
        journal=ctx.paths.journal(r, "teacher"),
        record=Diagnosis,
        on_progress=ctx.reporter.update,
    )
    return {}


@timed
def evaluate_dev(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score the round's compiled program on the fixed dev split, item by item."""
    ctx, r = runtime.context, state["round"]
    program = load_program(ctx, str(state["candidate_path"]))
    dev = _evaluate(ctx, program, ctx.suite.dev, ctx.paths.journal(r, "dev"), f"round {r}: dev evaluation")
    return {"dev_accuracy": dev}


@timed
def monitor(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Teacher-hacking monitor: how well the compiled program now does on failures the teacher taught.

    Each taught failure is re-attempted with the lessons made from it hidden (its own gold example
    would only test copying): a rise there without a dev gain means the lessons fit what the teacher
    saw, not the task."""
    ctx, r = runtime.context, state["round"]
    size = ctx.config.guards.monitor_size
    failed = sorted(state.get("failed_ids", []))
    if not size or not failed:
        return {"monitor_fit": None}
    sample = random.Random(ctx.config.seed + r).sample(failed, min(size, len(failed)))
    program = load_program(ctx, str(state["candidate_path"]))
    fit = _evaluate(
        ctx,
        program,
        [ctx.tasks[i] for i in sample],
        ctx.paths.journal(r, "monitor"),
        f"round {r}: monitor",
        hide_own=True,
    )
    return {"monitor_fit": fit}


def decide(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Accept the round's program only if it beats the incumbent on the same dev items by more than
    noise (``loop.accept``); otherwise roll the round back: the incumbent stays and every status
    change the round made to the memory is undone."""
    ctx, r = runtime.context, state["round"]
    rule = ctx.config.loop.accept
    update: dict[str, Any] = {"flag": None}
    if state.get("budget_stop") or not state.get("candidate_path") or state.get("dev_accuracy") is None:
        accepted, why = False, f"round {r} did not finish: {state.get('budget_stop') or 'no program'}"
        update.update(gain=None, p_value=None)
    else:
        paired = paired_sign_test(
            _scores(ctx, state["incumbent_dev_path"]), _scores(ctx, _journal_path(ctx, r, "dev"))
        )
        accepted = paired.gain > rule.min_gain and paired.p_value < rule.alpha
        why = paired.describe()
        update.update(gain=paired.gain, p_value=paired.p_value)
        fit = state.get("monitor_fit")
        guards = ctx.config.guards
        if fit is not None and fit >= guards.monitor_margin and paired.gain <= 0:
            # The taught failures were all wrong before the round: a rise there without a dev gain
            # means the student fits the teacher's lessons, not the task.
            update["flag"] = (
                f"possible teacher hacking: {100 * fit:.0f}% of the failures the teacher taught are now "
                f"solved, but dev moved {100 * paired.gain:+.1f} pts"
            )
    if accepted:
        update.update(
            program_path=state["candidate_path"],
            incumbent_dev_path=_journal_path(ctx, r, "dev"),
            incumbent_round=r,
            dev_incumbent=state["dev_accuracy"],
            rollbacks_in_row=0,
        )
    else:
        reason = f"rolled back: round {r} not accepted ({why})"
        undone = rollback_round(ctx.memory, UndoLog(undo_path(ctx, r)), reason, round=r)
        # the candidate's own new adapter (train_weights', or a weight optimizer's) stays on disk with
        # its scores and is never served again
        trained = _program_json(ctx, state.get("candidate_path")).get("adapter")
        kept = _program_json(ctx, state.get("program_path")).get("adapter")
        if trained is not None and trained != kept and ctx.adapters is not None:
            ctx.adapters.unload(Adapter.from_json(trained))
        update.update(rollbacks_in_row=state.get("rollbacks_in_row", 0) + 1, lessons_rolled_back=undone)
    update.update(accepted=accepted, decision=("accepted: " if accepted else "rolled back: ") + why)
    return update


def _program_json(ctx: RunContext, path: str | None) -> dict[str, Any]:
    if not path or not (ctx.paths.root / path).is_file():
        return {}
    data: dict[str, Any] = json.loads((ctx.paths.root / path).read_text())
    return data


def _stop_reason(state: LoopState, ctx: RunContext) -> str | None:
    loop = ctx.config.loop
    if state.get("budget_stop"):
        return str(state["budget_stop"])
    if (spent := ctx.ledger.exhausted()) is not None:
        return spent
    if loop.patience is not None and state.get("rollbacks_in_row", 0) >= loop.patience:
        return f"patience: {loop.patience} round(s) in a row rolled back"
    if state["round"] >= loop.rounds:
        return "max rounds reached"
    return None


def _by_kind(ctx: RunContext) -> dict[str, int]:
    """Active lessons per kind (what the student may be shown next round)."""
    counts: dict[str, int] = {}
    for x in ctx.memory.all(LessonFilter()):
        counts[x.kind] = counts.get(x.kind, 0) + 1
    return dict(sorted(counts.items()))


def record_round(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Append the round's row (scores, decision, lessons, cost) to ``metrics.json``; decide to stop."""
    ctx, r = runtime.context, state["round"]
    row = {
        "round": r,
        "dev_accuracy": state.get("dev_accuracy"),
        "dev_incumbent": state.get("dev_incumbent"),
        "accepted": state.get("accepted", False),
        "decision": state.get("decision"),
        "gain": state.get("gain"),
        "p_value": state.get("p_value"),
        "monitor_fit": state.get("monitor_fit"),
        "flag": state.get("flag"),
        "lessons": ctx.memory.count(status="active"),
        "lessons_stored": ctx.memory.count(),
        "lessons_refused": state.get("lessons_refused", 0),
        "lessons_dropped": state.get("lessons_dropped", 0),
        "lessons_by_kind": _by_kind(ctx),
        "lessons_rejected": state.get("lessons_rejected", 0),
        "lessons_retired": state.get("lessons_retired", 0),
        "lessons_rolled_back": state.get("lessons_rolled_back", 0) if not state.get("accepted") else 0,
        "seconds": round(state.get("round_seconds", 0.0), 1),
        "train_accuracy": state.get("train_accuracy"),
        "diagnosed": len(state.get("failed_ids", [])),
        "lessons_added": state.get("lessons_added", 0),
        "k_examples": state.get("k_examples"),
        "batch": ctx.config.loop.batch,
        "cost": ctx.ledger.round_totals(r),
        "finetune_rows": state.get("finetune_rows", {}),
        "phase_seconds": state.get("phase_seconds", {}),
        "moved": ctx.config.loop.moves(r),
        "train": _train_row(state.get("train")),
    }
    rounds = [*[x for x in state.get("rounds", []) if x["round"] != r], row]
    update: dict[str, Any] = {"rounds": rounds, "stop_reason": _stop_reason(state, ctx)}
    write_metrics(ctx.paths, {**state, **update})
    ctx.reporter.round_done(row)
    return update


def _train_row(train: dict[str, Any] | None) -> dict[str, Any] | None:
    """The round's weights training as reported: the adapter's name and digest, the cost, the data."""
    if not train:
        return None
    adapter = train.get("adapter")
    if adapter is None:
        return {"skipped": train.get("skipped")}
    meta = adapter["meta"]
    keys = ("seconds", "examples", "tokens", "steps", "loss", "peak_rss_mb", "sha256")
    return {"adapter": adapter["name"], **{k: meta.get(k) for k in keys}, "data": train.get("data", {})}


def next_step(state: LoopState) -> str:
    """Decide: another round, or the final test."""
    return "test_after" if state.get("stop_reason") else "sample_batch"


def test_after(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Score the kept program (the last accepted one) once on the held-out test split."""
    ctx = runtime.context
    ctx.ledger.at(state.get("round", 0), "test")
    program = load_program(ctx, state["program_path"])
    began = time.perf_counter()
    score = _evaluate(
        ctx, program, ctx.suite.test, ctx.paths.test_journal("after"), "test (after last round)"
    )
    seconds = {**state.get("test_seconds", {}), "after": round(time.perf_counter() - began, 1)}
    update: dict[str, Any] = {"test_after": score, "test_seconds": seconds}
    write_metrics(ctx.paths, {**state, **update})
    return update
