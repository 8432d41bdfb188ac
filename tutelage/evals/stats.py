"""Statistics on per-item scores: bootstrap intervals, paired tests of B against A, per-slice deltas.

The loop's accept-or-roll-back rule uses ``paired_sign_test``: only the items the two programs
disagree on carry information, and under "no difference" each disagreement is a fair coin.
Reports and ``tutelage compare`` use ``bootstrap_ci`` and ``paired_compare``, which add intervals,
a two-sided p-value and an effect size. Every resampling takes a seed, so a report is reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from math import comb
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from tutelage.errors import DataError

__all__ = [
    "Interval",
    "Paired",
    "PairedComparison",
    "bootstrap_ci",
    "by_slice",
    "format_p",
    "holm",
    "paired_by_slice",
    "paired_compare",
    "paired_sign_test",
]

_EXACT_FLIPS = 16  # up to this many non-zero differences the permutation test enumerates every sign
_CHUNK = 250  # bootstrap replicates drawn at a time (bounds memory on large suites)


@dataclass(frozen=True)
class Paired:
    """B against A on ``n`` shared items: ``wins`` (B right, A wrong), ``losses``, the mean gain, and
    the one-sided exact sign-test p-value of "B is no better than A"."""

    n: int
    wins: int
    losses: int
    gain: float
    p_value: float

    def describe(self) -> str:
        return (
            f"{100 * self.gain:+.1f} pts on {self.n} dev items "
            f"({self.wins} fixed, {self.losses} broken; sign test p={self.p_value:.3f})"
        )


def _upper_tail(k: int, n: int) -> float:
    """P(X >= k) for X ~ Binomial(n, 1/2)."""
    if n == 0:
        return 1.0
    return float(sum(comb(n, i) for i in range(k, n + 1)) / 2**n)


def paired_sign_test(a: Mapping[str, float], b: Mapping[str, float]) -> Paired:
    """Compare per-item scores (item id -> score in [0, 1]) on the items both have."""
    shared = sorted(set(a) & set(b))
    wins = sum(1 for i in shared if b[i] > a[i])
    losses = sum(1 for i in shared if b[i] < a[i])
    gain = sum(b[i] - a[i] for i in shared) / len(shared) if shared else 0.0
    return Paired(len(shared), wins, losses, gain, _upper_tail(wins, wins + losses))


@dataclass(frozen=True)
class Interval:
    """A mean score over ``n`` items with its percentile-bootstrap interval at ``level``.

    ``n == 0`` (nothing scored) gives an all-zero interval rather than an error.
    """

    mean: float
    low: float
    high: float
    n: int
    level: float = 0.95

    def describe(self, scale: float = 100.0) -> str:
        """'62.0% [95% CI 52.0, 71.0] (n=100)'."""
        return (
            f"{scale * self.mean:.1f}% [{100 * self.level:.0f}% CI {scale * self.low:.1f}, "
            f"{scale * self.high:.1f}] (n={self.n})"
        )


def _boot_means(values: NDArray[np.float64], n_boot: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """Means of ``n_boot`` resamples (with replacement) of ``values``."""
    n = len(values)
    out = np.empty(n_boot)
    for start in range(0, n_boot, _CHUNK):
        size = min(_CHUNK, n_boot - start)
        out[start : start + size] = values[rng.integers(0, n, size=(size, n))].mean(axis=1)
    return out


def _percentiles(draws: NDArray[np.float64], level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2
    low, high = np.quantile(draws, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_ci(
    scores: Iterable[float], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0
) -> Interval:
    """The mean of ``scores`` with a percentile-bootstrap interval (seeded, so reproducible).

    Example:
        >>> bootstrap_ci([1, 0, 1, 1]).mean
        0.75
    """
    values = np.asarray(list(scores), dtype=float)
    if values.size == 0:
        return Interval(0.0, 0.0, 0.0, 0, level)
    low, high = _percentiles(_boot_means(values, n_boot, np.random.default_rng(seed)), level)
    mean = float(values.mean())
    # Quantile interpolation can land a hair outside the data's mean on degenerate samples.
    return Interval(mean, min(low, mean), max(high, mean), int(values.size), level)


def _binary(values: NDArray[np.float64]) -> bool:
    return bool(np.all((values == 0.0) | (values == 1.0)))


def _mcnemar(wins: int, losses: int) -> float:
    """Exact two-sided McNemar p-value: the discordant pairs are Binomial(wins + losses, 1/2)."""
    n = wins + losses
    if n == 0:
        return 1.0
    k = min(wins, losses)
    return float(min(1.0, 2 * sum(comb(n, i) for i in range(k + 1)) / 2**n))


def _sign_flip(diffs: NDArray[np.float64], n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided paired permutation p-value of mean(diffs): exact for few non-zero differences."""
    d = diffs[diffs != 0.0]
    if d.size == 0:
        return 1.0
    observed = abs(d.sum()) - 1e-12 * max(1.0, float(np.abs(d).sum()))
    if d.size <= _EXACT_FLIPS:
        bits = (np.arange(2**d.size)[:, None] >> np.arange(d.size)) & 1
        sums = ((1 - 2 * bits) * d).sum(axis=1)
        return float(np.mean(np.abs(sums) >= observed))
    signs = rng.choice(np.array([-1.0, 1.0]), size=(n_perm, d.size))
    hits = int(np.sum(np.abs((signs * d).sum(axis=1)) >= observed))
    return (hits + 1) / (n_perm + 1)


@dataclass(frozen=True)
class PairedComparison:
    """B against A on the ``n`` items both scored.

    ``diff`` is mean(B) - mean(A) with a paired-bootstrap interval (items resampled together).
    ``test`` names the two-sided p-value: ``mcnemar`` (exact, for 0/1 scores) or ``permutation``
    (paired sign-flip, for continuous scores). ``effect`` names the effect size: ``cohen_h``
    (2·asin√pB − 2·asin√pA, for 0/1 scores; 0.2 small, 0.5 medium, 0.8 large) or ``d_z`` (mean
    difference over its standard deviation, for continuous scores). ``wins``: items B scored higher
    on (fixed), ``losses``: items B scored lower on (broken).
    """

    n: int
    mean_a: float
    mean_b: float
    diff: float
    low: float
    high: float
    p_value: float
    test: Literal["mcnemar", "permutation"]
    effect: Literal["cohen_h", "d_z"]
    effect_size: float
    wins: int
    losses: int
    level: float = 0.95

    def describe(self) -> str:
        """'B − A = +12.0 pts [95% CI +4.0, +20.0], McNemar p=0.004 (n=100; 15 fixed, 3 broken; ...)'."""
        test = "McNemar" if self.test == "mcnemar" else "permutation"
        effect = "Cohen's h" if self.effect == "cohen_h" else "d_z"
        return (
            f"B − A = {100 * self.diff:+.1f} pts [{100 * self.level:.0f}% CI {100 * self.low:+.1f}, "
            f"{100 * self.high:+.1f}], {test} {format_p(self.p_value)} "
            f"(n={self.n}; {self.wins} fixed, {self.losses} broken; {effect}={self.effect_size:.2f})"
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe fields (an infinite effect size, from a constant non-zero difference, is None)."""
        out = asdict(self)
        if not math.isfinite(self.effect_size):
            out["effect_size"] = None
        return out


def format_p(p: float) -> str:
    """'p=0.004', or 'p<0.001'."""
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def paired_compare(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> PairedComparison:
    """Compare per-item scores of B against A on the items both have (see ``PairedComparison``).

    Raises:
        DataError: the two share no item.

    Example:
        >>> paired_compare({"x": 0, "y": 1}, {"x": 1, "y": 1}).wins
        1
    """
    shared = sorted(set(a) & set(b))
    if not shared:
        raise DataError("the two score sets share no item ids; nothing to compare")
    va = np.array([float(a[i]) for i in shared])
    vb = np.array([float(b[i]) for i in shared])
    diffs = vb - va
    rng = np.random.default_rng(seed)
    low, high = _percentiles(_boot_means(diffs, n_boot, rng), level)
    diff = float(diffs.mean())
    wins, losses = int(np.sum(diffs > 0)), int(np.sum(diffs < 0))
    test: Literal["mcnemar", "permutation"]
    effect: Literal["cohen_h", "d_z"]
    if _binary(va) and _binary(vb):
        p_value, test = _mcnemar(wins, losses), "mcnemar"
        effect, size = "cohen_h", 2 * math.asin(math.sqrt(vb.mean())) - 2 * math.asin(math.sqrt(va.mean()))
    else:
        p_value, test = _sign_flip(diffs, n_boot, rng), "permutation"
        sd = float(diffs.std(ddof=1)) if diffs.size > 1 else 0.0
        effect = "d_z"
        size = diff / sd if sd > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
    return PairedComparison(
        n=len(shared),
        mean_a=float(va.mean()),
        mean_b=float(vb.mean()),
        diff=diff,
        low=min(low, diff),
        high=max(high, diff),
        p_value=float(p_value),
        test=test,
        effect=effect,
        effect_size=float(size),
        wins=wins,
        losses=losses,
        level=level,
    )


def _groups(ids: Iterable[str], tags: Mapping[str, str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for i in ids:
        if i in tags:
            groups.setdefault(tags[i], []).append(i)
    return dict(sorted(groups.items()))


def by_slice(
    scores: Mapping[str, float],
    tags: Mapping[str, str],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Interval]:
    """Per slice (``tags``: item id -> slice name), the mean score with its bootstrap interval.

    Items without a tag are left out; slices come sorted by name.
    """
    return {
        name: bootstrap_ci([scores[i] for i in ids], n_boot=n_boot, level=level, seed=seed)
        for name, ids in _groups(scores, tags).items()
    }


def paired_by_slice(
    a: Mapping[str, float],
    b: Mapping[str, float],
    tags: Mapping[str, str],
    *,
    n_boot: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, PairedComparison]:
    """Per slice, B against A on the slice's shared items (p-values uncorrected: see ``holm``)."""
    shared = sorted(set(a) & set(b))
    return {
        name: paired_compare(
            {i: a[i] for i in ids}, {i: b[i] for i in ids}, n_boot=n_boot, level=level, seed=seed
        )
        for name, ids in _groups(shared, tags).items()
    }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (same order as given): many slices, few false alarms."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [1.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
