"""Which train items a round attempts: ``uniform``, ``hard`` (mined from failures) or ``curriculum``.

All three draw fresh items in the run's seeded order, so a seeded run picks the same batches on
every machine and on resume. What the student did before is read from earlier rounds' journals.

- ``uniform``: the next ``batch_size`` items never attempted.
- ``hard`` (performance-guided, as in PGKD): up to half the batch re-attempts items the student got
  wrong or was unsure of (its reply was not a valid answer and had to be snapped to one) in earlier
  rounds, most recent first; the rest are unseen items nearest (by embedding) to those failures,
  chosen from a window of ``4 x batch_size`` upcoming items.
- ``curriculum``: unseen items from shortest to longest input, a cheap difficulty proxy that needs
  no model call (short Banking77 queries name their intent more directly).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import numpy as np

from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task

__all__ = ["is_hard", "select_batch"]

Embed = Callable[[list[str]], list[list[float]]]


def is_hard(attempt: Attempt) -> bool:
    """Failed, or unsure: the raw reply had to be read as the nearest valid answer."""
    return attempt.score < 1.0 or attempt.raw is not None


def _hard(
    pool: list[Task], seen: dict[str, Attempt], size: int, embed: Embed, by_id: dict[str, Task]
) -> list[Task]:
    retry = [by_id[i] for i, a in reversed(seen.items()) if is_hard(a) and i in by_id][: size // 2]
    fresh = [t for t in pool if t.id not in seen]
    need = size - len(retry)
    if not retry or need <= 0:
        return (retry + fresh)[:size]
    window = fresh[: 4 * size]
    vectors = np.asarray(embed([t.input for t in [*retry, *window]]), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True) + 1e-12
    nearest = (vectors[len(retry) :] @ vectors[: len(retry)].T).max(axis=1)
    order = sorted(range(len(window)), key=lambda j: (-float(nearest[j]), j))
    return retry + [window[j] for j in order[:need]]


def select_batch(
    kind: str,
    *,
    pool: list[Task],
    seen: dict[str, Attempt],
    size: int,
    seed: int,
    embed: Embed,
) -> list[Task]:
    """The next batch from ``pool`` (already in the run's seeded order).

    ``seen`` maps each attempted task id to its latest attempt, in the order attempted.
    """
    by_id = {t.id: t for t in pool}
    fresh = [t for t in pool if t.id not in seen]
    if kind == "hard":
        return _hard(pool, seen, size, embed, by_id)
    if kind == "curriculum":
        rank = {t.id: n for n, t in enumerate(fresh)}
        return sorted(fresh, key=lambda t: (len(t.input.split()), rank[t.id]))[:size]
    if len(fresh) < size:  # the pool is used up: start another pass in a new seeded order
        rest = [t for t in pool if t.id in seen]
        random.Random(seed + len(seen)).shuffle(rest)
        fresh += rest
    return fresh[:size]
