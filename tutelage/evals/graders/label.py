"""Closed label sets (Banking77 and the like): exact match after label normalisation."""

from __future__ import annotations

from tutelage.evals.graders._base import Grade, Grader
from tutelage.evals.metrics import normalize_label

__all__ = ["LabelGrader"]


class LabelGrader(Grader):
    """Exact match of the normalised label (Banking77 and any closed label set)."""

    name = "label"

    def grade(self, prediction: str, gold: str) -> Grade:
        got, want = normalize_label(prediction), normalize_label(gold)
        if got == want:
            return Grade(1.0, got, "correct")
        return Grade(0.0, got, f"answered {got or '(nothing)'!r}; the correct label is {want!r}")
