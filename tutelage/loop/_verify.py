"""Verified writes: a candidate lesson becomes active only if showing it to the student does not hurt.

No check shows a task its own answer. An example (gold, worked or synthetic) carries the answer of
the task it came from, so re-asking that task would only test copying: it is checked for transfer
instead, on the ``probe_size`` train items of the round most similar to it (never its source), which
must not do worse with it than they did without it. A strategy must fix the failure it was written for
(``source``), and with ``probe`` must also not make similar items worse. Every try hides the lessons
made from the task being tried and uses the memory exactly as the round's attempts saw it
(``as_of_round = r - 1``), so the lesson under test is the only difference, whatever order
candidates are checked in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from tutelage.evals.harness import Attempt, run_tasks
from tutelage.evals.suites import Task
from tutelage.memory._admit import Verdict, VerifyMode
from tutelage.memory.lesson import Lesson

__all__ = ["SolveWith", "Verdict", "check_candidates", "nearest_tasks", "verify_lesson"]

SolveWith = Callable[[Lesson, Task], Attempt]


def nearest_tasks(
    queries: Sequence[list[float]], pool: Sequence[list[float]], *, k: int, exclude: Sequence[set[int]]
) -> list[list[int]]:
    """For each query vector, the indices of the ``k`` most similar pool vectors (cosine), skipping
    ``exclude[i]`` (the tasks the lesson came from)."""
    if not pool or not queries:
        return [[] for _ in queries]
    q, p = np.asarray(queries, dtype=float), np.asarray(pool, dtype=float)
    q /= np.linalg.norm(q, axis=1, keepdims=True).clip(min=1e-12)
    p /= np.linalg.norm(p, axis=1, keepdims=True).clip(min=1e-12)
    sims = q @ p.T
    out = []
    for row, skip in zip(sims, exclude, strict=True):
        order = [int(i) for i in np.argsort(-row, kind="stable") if int(i) not in skip]
        out.append(order[:k])
    return out


def verify_lesson(
    lesson: Lesson,
    *,
    mode: VerifyMode,
    solve_with: SolveWith,
    source: Task | None,
    probes: Sequence[tuple[Task, Attempt]] = (),
) -> Verdict:
    """Check one candidate. ``probes``: the similar tasks, each with its attempt without the lesson."""
    tally = ""
    if lesson.kind == "strategy" and source is not None:
        first = solve_with(lesson, source)
        if first.score < 1.0:
            said = first.error or repr(first.answer)
            return Verdict(
                lesson.id, False, f"rejected: source task {source.id} still fails with it ({said})"
            )
        if mode == "source":
            return Verdict(lesson.id, True, f"verified: source task {source.id} passes with it")
        tally = f"source task {source.id} passes; "
    if not probes:
        return Verdict(lesson.id, False, "rejected: no similar train item to check it on")
    with_it = sum(int(solve_with(lesson, task).score >= 1.0) for task, _ in probes)
    without = sum(int(before.score >= 1.0) for _, before in probes)
    tally += f"{with_it}/{len(probes)} similar tasks pass with it, {without}/{len(probes)} without"
    if with_it < without:
        return Verdict(lesson.id, False, f"rejected: similar tasks got worse ({tally})", with_it, without)
    return Verdict(lesson.id, True, f"verified: {tally}", with_it, without)


def check_candidates(
    candidates: list[Lesson],
    *,
    mode: VerifyMode,
    batch: list[Task],
    attempts: dict[str, Attempt],
    tasks: dict[str, Task],
    embed: Callable[[list[str]], list[list[float]]],
    probe_size: int,
    solve_with: SolveWith,
    concurrency: int,
    journal: Path | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> list[Verdict]:
    """Verdicts for ``candidates``, probing on the attempted ``batch`` items (journaled per lesson)."""
    batch = [t for t in batch if t.id in attempts]
    position = {t.id: n for n, t in enumerate(batch)}
    probes: dict[str, list[tuple[Task, Attempt]]] = {x.id: [] for x in candidates}
    if batch and candidates:
        # An example is probed near its own input; a strategy near the failure it was written for.
        texts = [
            x.text
            if x.kind != "strategy"
            else next((tasks[s].input for s in x.sources if s in tasks), x.text)
            for x in candidates
        ]
        vectors = embed([*texts, *(t.input for t in batch)])
        near = nearest_tasks(
            vectors[: len(texts)],
            vectors[len(texts) :],
            k=probe_size,
            exclude=[{position[s] for s in x.sources if s in position} for x in candidates],
        )
        for x, row in zip(candidates, near, strict=True):
            probes[x.id] = [(batch[j], attempts[batch[j].id]) for j in row]

    def check(lesson: Lesson) -> Verdict:
        source = next((tasks[s] for s in lesson.sources if s in tasks), None)
        return verify_lesson(
            lesson, mode=mode, solve_with=solve_with, source=source, probes=probes[lesson.id]
        )

    return run_tasks(
        check,
        candidates,
        concurrency=concurrency,
        journal=journal,
        record=Verdict,
        on_progress=on_progress,
    )
