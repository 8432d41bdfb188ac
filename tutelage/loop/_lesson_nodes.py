"""The loop's memory nodes: write candidate lessons, verify them, curate the store.

Each is safe to re-run after a crash: lesson ids come from content (a rewrite is a no-op),
verdicts are journaled per lesson, and curation only acts on what is still active. Every change a
round makes to the memory is also imaged first (``memory.undo``), so a rollback restores it.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from tutelage.agents.student import make_solver
from tutelage.agents.teacher import Diagnosis, lessons_from
from tutelage.evals.harness import Attempt, load_journal
from tutelage.evals.suites import Task
from tutelage.evals.trajectory import Step
from tutelage.loop._nodes import load_program, student_lm, timed
from tutelage.loop._state import LoopState, RunContext
from tutelage.loop._verify import check_candidates
from tutelage.memory._admit import Check, Verdict
from tutelage.memory._curate import curate
from tutelage.memory.lesson import Lesson
from tutelage.memory.query import LessonFilter
from tutelage.train.datasets import held_out, write_round_sets

__all__ = [
    "candidate_check",
    "curate_memory",
    "finetune_sets",
    "verify_lessons",
    "write_lessons",
    "write_sets",
]


def solved_example(task: Task, *, round: int, scope: str) -> Lesson:
    """The gold-labelled example of a train item the student answered correctly (no teacher involved)."""
    return Lesson.make(
        kind="example",
        text=task.input,
        answer=task.answer,
        round=round,
        source_task_id=task.id,
        scope=scope,
        reason="the student answered this train item correctly (gold answer)",
    )


def solved_trajectory(task: Task, attempt: Attempt, *, round: int, scope: str) -> Lesson | None:
    """A worked example whose solution is the agent's own successful steps, when it used a tool."""
    steps = [Step.from_json(x) for x in attempt.steps or []]
    if not any(s.kind == "tool_result" for s in steps):
        return None
    while steps and steps[-1].kind == "prediction":  # the last words are the answer, written below
        steps.pop()
    lines, said = [], False
    for step in steps:
        if step.kind == "prediction":
            lines.append(step.content.strip())
        elif step.kind == "tool_call" and not said:  # a native tool call with no words of its own
            lines.append(f"{step.name}[{step.content}]")
        elif step.kind == "tool_result":
            lines.append(f"Observation: {step.content.strip()}")
        said = step.kind == "prediction"
    return Lesson.make(
        kind="worked",
        text=task.input,
        answer=task.answer,
        rationale="\n".join([*lines, f"Answer: {task.answer}"]),
        round=round,
        source_task_id=task.id,
        scope=scope,
        reason="the student solved this train item with tools (its own steps)",
    )


def _confused(attempt: Attempt | None) -> str:
    return attempt.answer if attempt is not None else ""


@timed
def write_lessons(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Turn diagnoses into candidate lessons (the gold example of each failure, the teacher's strategies,
    synthetic and worked examples) and, with ``memory.examples=attempted``, every item the student
    solved into a gold example (a worked one showing its steps, when it solved it with a tool and
    ``memory.trajectories`` is on); all through the one admission path (leakage guard first)."""
    ctx, r = runtime.context, state["round"]
    diagnoses = load_journal(ctx.paths.journal(r, "teacher"), Diagnosis)
    attempts: dict[str, Attempt] = load_journal(ctx.paths.journal(r, "attempts"), Attempt)
    lessons: list[Lesson] = []
    dropped = 0
    for task_id in state["failed_ids"]:
        diag = diagnoses.get(task_id) or Diagnosis(task_id, "", False, error="no diagnosis recorded")
        made, why = lessons_from(
            diag,
            ctx.tasks[task_id],
            round=r,
            teacher_model=ctx.config.teacher.model if ctx.config.teacher_on else "",
            scope=ctx.suite.name,
            labels=ctx.suite.labels,
            metric=ctx.suite.metric,
            confused=_confused(attempts.get(task_id)),
        )
        lessons += made
        dropped += len(why)
    if ctx.config.memory.examples == "attempted":
        failed = set(state["failed_ids"])
        for i in state["batch_ids"]:
            if i not in attempts or i in failed:
                continue
            task = ctx.tasks[i]
            worked = ctx.config.memory.trajectories and solved_trajectory(
                task, attempts[i], round=r, scope=ctx.suite.name
            )
            lessons.append(worked or solved_example(task, round=r, scope=ctx.suite.name))
    done = ctx.admission.write(ctx.memory, lessons, round=r)
    return {"lessons_added": len(done.written), "lessons_refused": done.refused, "lessons_dropped": dropped}


def candidate_check(ctx: RunContext, state: LoopState, label: str) -> Check:
    """The verification of this round's candidates (``memory.verify``), as a function of the candidates:
    the loop's own lessons and GEPA's proposals are checked the same way."""
    r = state["round"]
    mode = ctx.config.memory.verify
    attempts: dict[str, Attempt] = load_journal(ctx.paths.journal(r, "attempts"), Attempt)
    batch = [ctx.tasks[i] for i in state["batch_ids"] if i in attempts]
    # The memory exactly as this round's attempts saw it, plus the one lesson under test.
    program = load_program(ctx, state["program_path"], as_of_round=r - 1)
    lm = student_lm(ctx, program)

    def solve_with(lesson: Lesson, task: Task) -> Attempt:
        solver = make_solver(program.with_lessons([lesson]), lm=lm, metric=ctx.suite.metric, hide_own=True)
        return solver(task)

    def check(candidates: list[Lesson]) -> list[Verdict]:
        ctx.reporter.phase(f"round {r}: {label} ({mode})", len(candidates))
        return check_candidates(
            candidates,
            mode=mode,
            batch=batch,
            attempts=attempts,
            tasks=ctx.tasks,
            embed=ctx.memory.embedder.embed,
            probe_size=ctx.config.memory.probe_size,
            solve_with=solve_with,
            concurrency=ctx.config.student.concurrency,
            journal=ctx.paths.journal(r, "verify"),
            on_progress=ctx.reporter.update,
        )

    return check


@timed
def verify_lessons(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Activate the candidates that pass ``memory.verify``; the rest are retired with the reason."""
    ctx, r = runtime.context, state["round"]
    candidates = ctx.memory.all(LessonFilter(status="candidate"))
    if ctx.config.memory.verify == "off":
        ctx.admission.activate_unchecked(ctx.memory, [x.id for x in candidates], round=r)
        return {"lessons_rejected": 0}
    verdicts = candidate_check(ctx, state, "verify lessons")(candidates)
    _, rejected = ctx.admission.settle(ctx.memory, verdicts, round=r)
    return {"lessons_rejected": len(rejected)}


@timed
def curate_memory(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Retire bad records, merge near-duplicates, enforce the budget (see ``memory.curate``)."""
    ctx, r = runtime.context, state["round"]
    report = curate(ctx.memory, ctx.config.memory.curate, round=r)
    return {"lessons_retired": report.retired}


def write_sets(ctx: RunContext, r: int) -> dict[str, int]:
    """Write round ``r``'s fine-tune sets (``finetune/round_N/``) from its own, fresh data."""
    return write_round_sets(
        ctx.paths,
        r,
        tasks=ctx.tasks,
        memory=ctx.memory,
        guard=ctx.guard,
        instructions=ctx.suite.instruction,
        held_out_ids=held_out(ctx.suite),
        teacher_model=ctx.config.teacher.model,
        verified=ctx.config.memory.verify != "off",
    )


@timed
def finetune_sets(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Write the round's fine-tune sets (``finetune/round_N/``) from its own, fresh data."""
    ctx, r = runtime.context, state["round"]
    counts = write_sets(ctx, r)
    return {"finetune_rows": {"sft": counts["sft"], "preference": counts["preference"]}}
