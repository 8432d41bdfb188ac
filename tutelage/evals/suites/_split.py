"""Seeded splitting shared by the loaders: shuffles, dev carved from train, leak filters, balanced caps."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import TypeVar

from tutelage.config import SuiteConfig
from tutelage.errors import ConfigError
from tutelage.evals.suites._base import Task

__all__ = [
    "Splits",
    "balanced",
    "cap",
    "carve",
    "dev_from",
    "drop_leaks",
    "norm_text",
    "shuffled",
    "split_pools",
]

T = TypeVar("T")

Splits = tuple[list[Task], list[Task], list[Task]]


def shuffled(items: Sequence[T], seed: int | str) -> list[T]:
    """A copy of ``items`` shuffled by ``random.Random(seed)`` (string seeds are stable across runs)."""
    out = list(items)
    random.Random(seed).shuffle(out)
    return out


def norm_text(text: str) -> str:
    """Lower case with whitespace collapsed: two inputs that differ only in spacing or case are one."""
    return " ".join(text.lower().split())


def drop_leaks(
    pool: Sequence[Task], held: Sequence[Task], key: Callable[[str], str] = norm_text
) -> list[Task]:
    """``pool`` without the items whose input also occurs (by ``key``) on the held-out side."""
    seen = {key(t.input) for t in held}
    return [t for t in pool if key(t.input) not in seen]


def cap(items: list[Task], size: int | None) -> list[Task]:
    """The first ``size`` items (all when ``size`` is None)."""
    return items if size is None else items[:size]


def split_pools(train_pool: Sequence[Task], test_pool: Sequence[Task], cfg: SuiteConfig) -> Splits:
    """Train/dev/test from a train file and a test file (Banking77's rule; its splits depend on it).

    The train pool is shuffled with ``seed`` and its first ``dev_size`` items are dev, the rest train
    (capped at ``train_size``); the test pool is shuffled with ``seed + 1`` and capped at ``test_size``.
    Callers drop leaked items from the train pool first.
    """
    train, dev = dev_from(shuffled(train_pool, cfg.seed), cfg)
    return train, dev, cap(shuffled(test_pool, cfg.seed + 1), cfg.test_size)


def dev_from(pool: list[Task], cfg: SuiteConfig) -> tuple[list[Task], list[Task]]:
    """(train, dev) of a shuffled pool: dev is its first ``dev_size``, train the rest up to ``train_size``."""
    if cfg.dev_size >= len(pool) > 0:
        raise ConfigError(f"suite.dev_size {cfg.dev_size} leaves no train items in a pool of {len(pool)}")
    return cap(pool[cfg.dev_size :], cfg.train_size), pool[: cfg.dev_size]


def carve(items: Sequence[Task], seed: int | str, pool_size: int) -> tuple[list[Task], list[Task]]:
    """A fixed-seed (train pool, held-out test) partition of one file: the pool is the first ``pool_size``.

    The boundary depends on the seed only, so changing ``dev_size``, ``train_size`` or ``test_size``
    never moves an item between the train side and the test side. Pool items whose text also occurs
    on the test side are dropped.
    """
    order = shuffled(items, seed)
    pool, test = order[:pool_size], order[pool_size:]
    return drop_leaks(pool, test), test


def balanced(groups: Sequence[Sequence[T]], size: int | None) -> list[T]:
    """Round-robin over ``groups`` until ``size`` items are taken (``None``: all, still interleaved)."""
    out: list[T] = []
    depth = max((len(g) for g in groups), default=0)
    for i in range(depth):
        for group in groups:
            if i < len(group):
                if size is not None and len(out) >= size:
                    return out
                out.append(group[i])
    return out
