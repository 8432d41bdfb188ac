"""Paired statistics on per-item scores: is program B better than program A on the same items?

The loop's accept-or-roll-back rule uses ``paired_sign_test``: only the items the two programs
disagree on carry information, and under "no difference" each disagreement is a fair coin.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from math import comb

__all__ = ["Paired", "paired_sign_test"]


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
