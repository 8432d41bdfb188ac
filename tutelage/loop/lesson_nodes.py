"""The loop's memory nodes: write candidate lessons, verify them, curate the store.

Each is safe to re-run after a crash: lesson ids come from content (a rewrite is a no-op),
verdicts are journaled per lesson, and curation only acts on what is still active.
"""

from __future__ import annotations

from typing import Any

from langgraph.runtime import Runtime

from tutelage.agents.student import make_solver
from tutelage.agents.teacher import Diagnosis, lessons_from
from tutelage.evals.harness import Attempt, load_journal, run_tasks
from tutelage.evals.suites import Task
from tutelage.loop.finetune import held_out, write_round_sets
from tutelage.loop.nodes import load_program, timed
from tutelage.loop.state import LoopState, RunContext
from tutelage.loop.verify import Verdict, nearest_tasks, verify_lesson
from tutelage.memory.curate import curate
from tutelage.memory.lesson import Lesson
from tutelage.memory.query import LessonFilter

__all__ = ["curate_memory", "finetune_sets", "verify_lessons", "write_lessons"]


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


@timed
def write_lessons(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Turn diagnoses into candidate lessons (and, with ``memory.examples=attempted``, every item the
    student solved into a gold example); refuse (and keep, retired) any that quote a test item."""
    ctx, r = runtime.context, state["round"]
    diagnoses = load_journal(ctx.paths.journal(r, "teacher"), Diagnosis)
    lessons: list[Lesson] = []
    for task_id in state["failed_ids"]:
        diag = diagnoses.get(task_id) or Diagnosis(task_id, "", False, error="no diagnosis recorded")
        lessons += lessons_from(
            diag, ctx.tasks[task_id], round=r, teacher_model=ctx.config.teacher.model, scope=ctx.suite.name
        )
    if ctx.config.memory.examples == "attempted":
        attempts = load_journal(ctx.paths.journal(r, "attempts"), Attempt)
        failed = set(state["failed_ids"])
        lessons += [
            solved_example(ctx.tasks[i], round=r, scope=ctx.suite.name)
            for i in state["batch_ids"]
            if i in attempts and i not in failed
        ]
    refused = 0
    for i, lesson in enumerate(lessons):
        if (leak := ctx.guard.check(lesson.text, lesson.answer)) is not None:
            lessons[i] = lesson.with_status("retired", leak.reason(), round=r)
            refused += 1
    added = ctx.memory.add(lessons)
    return {"lessons_added": len(added), "lessons_refused": refused}


@timed
def verify_lessons(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Activate the candidates that pass ``memory.verify``; the rest are retired with the reason."""
    ctx, r = runtime.context, state["round"]
    mode = ctx.config.memory.verify
    candidates = ctx.memory.all(LessonFilter(status="candidate"))
    if mode == "off":
        ctx.memory.set_status(
            [x.id for x in candidates], "active", "active without a check (memory.verify=off)", round=r
        )
        return {"lessons_rejected": 0}

    attempts: dict[str, Attempt] = load_journal(ctx.paths.journal(r, "attempts"), Attempt)
    batch = [ctx.tasks[i] for i in state["batch_ids"] if i in attempts]
    probes: list[list[tuple[Task, Attempt]]] = [[] for _ in candidates]
    if mode == "probe" and batch:
        position = {t.id: n for n, t in enumerate(batch)}
        sources = [
            x.provenance.source_task_ids[0] if x.provenance.source_task_ids else "" for x in candidates
        ]
        texts = [
            ctx.tasks[s].input if s in ctx.tasks else x.text for s, x in zip(sources, candidates, strict=True)
        ]
        vectors = ctx.memory.embedder.embed([*texts, *(t.input for t in batch)])
        near = nearest_tasks(
            vectors[: len(texts)],
            vectors[len(texts) :],
            k=ctx.config.memory.probe_size,
            exclude=[position.get(s) for s in sources],
        )
        probes = [[(batch[j], attempts[batch[j].id]) for j in row] for row in near]
    probe_of = {x.id: p for x, p in zip(candidates, probes, strict=True)}

    # The memory exactly as this round's attempts saw it, plus the one lesson under test.
    program = load_program(ctx, state["program_path"], as_of_round=r - 1)

    def solve_with(lesson: Lesson, task: Task) -> Attempt:
        return make_solver(program.with_lessons([lesson]), lm=ctx.student_lm, metric=ctx.suite.metric)(task)

    def check(lesson: Lesson) -> Verdict:
        source = lesson.provenance.source_task_ids[0] if lesson.provenance.source_task_ids else ""
        return verify_lesson(
            lesson, solve_with=solve_with, source=ctx.tasks.get(source), probes=probe_of[lesson.id]
        )

    ctx.reporter.phase(f"round {r}: verify lessons ({mode})", len(candidates))
    verdicts = run_tasks(
        check,
        candidates,
        concurrency=ctx.config.student.concurrency,
        journal=ctx.paths.journal(r, "verify"),
        record=Verdict,
        on_progress=ctx.reporter.update,
    )
    ctx.memory.put(
        x.with_status("active" if v.passed else "retired", v.reason, round=r)
        for x, v in zip(candidates, verdicts, strict=True)
    )
    return {"lessons_rejected": sum(not v.passed for v in verdicts)}


@timed
def curate_memory(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Retire bad records, merge near-duplicates, enforce the budget (see ``memory.curate``)."""
    ctx, r = runtime.context, state["round"]
    report = curate(ctx.memory, ctx.config.memory.curate, round=r)
    return {"lessons_retired": report.retired}


@timed
def finetune_sets(state: LoopState, runtime: Runtime[RunContext]) -> dict[str, Any]:
    """Write the round's fine-tune sets (``finetune/round_N/``) from its own, fresh data."""
    ctx, r = runtime.context, state["round"]
    counts = write_round_sets(
        ctx.paths,
        r,
        tasks=ctx.tasks,
        memory=ctx.memory,
        guard=ctx.guard,
        instructions=ctx.suite.instruction,
        held_out_ids=held_out(ctx.suite),
        teacher_model=ctx.config.teacher.model,
    )
    return {"finetune_rows": {"sft": counts["sft"], "preference": counts["preference"]}}
