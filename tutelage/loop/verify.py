"""Verified writes: a candidate lesson becomes active only if showing it to the student helps.

``source`` re-attempts the failure the lesson came from with the lesson shown; it must now pass.
``probe`` also re-attempts the most similar tasks of the round's batch with the lesson shown; they
must not do worse than they did without it. Both runs use the memory exactly as the round's attempts
saw it (``as_of_round = r - 1``), so the lesson is the only difference, whatever order candidates are
checked in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task
from tutelage.memory.lesson import Lesson

__all__ = ["Verdict", "nearest_tasks", "verify_lesson"]

SolveWith = Callable[[Lesson, Task], Attempt]


@dataclass(frozen=True)
class Verdict:
    """The outcome of one candidate's check (journaled per lesson id, so a resumed round skips it)."""

    task_id: str  # the lesson id; named so the harness journal can key on it
    passed: bool
    reason: str
    probe_with: int = 0
    probe_without: int = 0


def nearest_tasks(
    queries: Sequence[list[float]], pool: Sequence[list[float]], *, k: int, exclude: Sequence[int | None]
) -> list[list[int]]:
    """For each query vector, the indices of the ``k`` most similar pool vectors (cosine), skipping
    ``exclude[i]`` (the query's own source task)."""
    if not pool or not queries:
        return [[] for _ in queries]
    q, p = np.asarray(queries, dtype=float), np.asarray(pool, dtype=float)
    q /= np.linalg.norm(q, axis=1, keepdims=True).clip(min=1e-12)
    p /= np.linalg.norm(p, axis=1, keepdims=True).clip(min=1e-12)
    sims = q @ p.T
    out = []
    for row, skip in zip(sims, exclude, strict=True):
        order = [int(i) for i in np.argsort(-row, kind="stable") if int(i) != skip]
        out.append(order[:k])
    return out


def verify_lesson(
    lesson: Lesson,
    *,
    solve_with: SolveWith,
    source: Task | None,
    probes: Sequence[tuple[Task, Attempt]] = (),
) -> Verdict:
    """Check one candidate; ``probes`` (similar tasks with their attempts without the lesson) is the
    ``probe`` mode's extra check and is empty in ``source`` mode."""
    if source is None:
        return Verdict(lesson.id, False, "rejected: its source task is not in this run's train split")
    first = solve_with(lesson, source)
    if first.score < 1.0:
        said = first.error or repr(first.answer)
        return Verdict(lesson.id, False, f"rejected: source task {source.id} still fails with it ({said})")
    if not probes:
        return Verdict(lesson.id, True, f"verified: source task {source.id} passes with it")
    with_it = sum(int(solve_with(lesson, task).score >= 1.0) for task, _ in probes)
    without = sum(int(before.score >= 1.0) for _, before in probes)
    tally = f"{with_it}/{len(probes)} similar tasks pass with it, {without}/{len(probes)} without"
    if with_it < without:
        return Verdict(lesson.id, False, f"rejected: probe got worse ({tally})", with_it, without)
    return Verdict(lesson.id, True, f"verified: source task passes; {tally}", with_it, without)
