"""The grader contract: a ``Grade`` record and the ``Grader`` base class every grader extends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Grade", "Grader", "feedback_for", "shorten"]


@dataclass(frozen=True)
class Grade:
    """One graded reply: its score in [0, 1], the answer read from it, and feedback in words."""

    score: float
    extracted: str
    feedback: str


class Grader:
    """Base class: subclasses implement ``grade``; ``__call__`` makes every grader a plain Metric.

    Example:
        >>> class Exact(Grader):
        ...     name = "exact"
        ...
        ...     def grade(self, prediction: str, gold: str) -> Grade:
        ...         ok = prediction.strip() == gold.strip()
        ...         return Grade(float(ok), prediction.strip(), "correct" if ok else f"expected {gold!r}")
        >>> Exact()("4", "4")
        1.0
    """

    name: ClassVar[str] = "grader"

    def grade(self, prediction: str, gold: str) -> Grade:
        """Score one reply against its gold answer, saying what was read and why it is right or wrong."""
        raise NotImplementedError

    def __call__(self, prediction: str, gold: str) -> float:
        return self.grade(prediction, gold).score

    def aggregate(self, pairs: Sequence[tuple[str, str]]) -> float:
        """The suite score over ``(prediction, gold)`` pairs: the mean item score by default."""
        return sum(self(p, g) for p, g in pairs) / len(pairs) if pairs else 0.0


def feedback_for(metric: Any, prediction: str, gold: str) -> str:
    """Feedback from any metric: a grader's own words, else a generic right/wrong sentence."""
    if isinstance(metric, Grader):
        return metric.grade(prediction, gold).feedback
    score = float(metric(prediction, gold))
    return "correct" if score >= 1.0 else f"scored {score:.2f}; the expected answer is {gold!r}"


def shorten(text: str, limit: int = 120) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis, for feedback sentences."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
