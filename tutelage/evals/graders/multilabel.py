"""Multi-label intents (NLU++): label sets read from text, F1 per item, micro-F1 over the suite."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence

from tutelage.evals.graders._base import Grade, Grader
from tutelage.evals.metrics import closest_choice, normalize_label

__all__ = ["MultiLabelF1Grader", "parse_labels"]

_SPLIT = re.compile(r"[,;|\n]+|\s+and\s+|\s*&\s*", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+")
_NONE = {"", "none", "no_intent", "no_intents", "nothing", "n/a", "empty"}
_SNAP_CUTOFF = 0.8  # a predicted item is snapped to a known label only when this similar to it


def parse_labels(text: str) -> frozenset[str]:
    """A label set from text: ``a, b``, ``["a", "b"]``, one per line, ``a and b``; normalised labels.

    ``none`` (or nothing at all) is the empty set.
    """
    body = text.strip().strip("[](){}")
    items = (_BULLET.sub("", part) for part in _SPLIT.split(body))
    labels = {normalize_label(item) for item in items}
    return frozenset(label for label in labels if label not in _NONE)


def _counts(got: frozenset[str], want: frozenset[str]) -> tuple[int, int, int]:
    return len(got & want), len(got - want), len(want - got)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 1.0 if tp + fp + fn == 0 else 2 * tp / (2 * tp + fp + fn)


def _show(labels: frozenset[str]) -> str:
    return "{" + ", ".join(sorted(labels)) + "}" if labels else "{} (no labels)"


class MultiLabelF1Grader(Grader):
    """F1 of the predicted label set against the gold set; the suite score is micro-F1 (NLU++).

    Args:
        labels: the known label set; a predicted item that is close to one of them (a typo, a plural)
            is read as that label, anything else stays as written and counts as a false positive.

    Example:
        >>> grader = MultiLabelF1Grader()
        >>> grader("pin, arrival", "how_long, pin, arrival")
        0.8
    """

    name = "f1"

    def __init__(self, *, labels: Sequence[str] | None = None) -> None:
        self.labels = list(labels) if labels is not None else None
        self._known = {normalize_label(label) for label in self.labels or ()}

    def read(self, text: str) -> frozenset[str]:
        """The label set a reply gives, snapped to the known labels where close."""
        items = parse_labels(text)
        if not self.labels:
            return items
        return frozenset(self._snap(item) for item in items)

    def _snap(self, item: str) -> str:
        if item in self._known or self.labels is None:
            return item
        closest = normalize_label(closest_choice(item, self.labels))
        close = difflib.SequenceMatcher(None, item, closest).ratio() >= _SNAP_CUTOFF
        return closest if close else item

    def grade(self, prediction: str, gold: str) -> Grade:
        got, want = self.read(prediction), parse_labels(gold)
        tp, fp, fn = _counts(got, want)
        score = _f1(tp, fp, fn)
        shown = ", ".join(sorted(got))
        if score == 1.0:
            return Grade(1.0, shown, f"correct: {_show(got)}")
        parts = [f"read {_show(got)}; expected {_show(want)}"]
        if want - got:
            parts.append(f"missing {', '.join(sorted(want - got))}")
        if got - want:
            unknown = sorted(got - want - self._known) if self.labels else []
            extra = f"wrongly added {', '.join(sorted(got - want))}"
            parts.append(extra + (f" ({', '.join(unknown)} not a known label)" if unknown else ""))
        return Grade(score, shown, f"{'; '.join(parts)} (F1 {score:.2f})")

    def counts(self, prediction: str, gold: str) -> tuple[int, int, int]:
        """True positives, false positives and false negatives of one reply."""
        return _counts(self.read(prediction), parse_labels(gold))

    def aggregate(self, pairs: Sequence[tuple[str, str]]) -> float:
        """Micro-F1 over all pairs: true and false positives and negatives summed before dividing."""
        return micro_f1([self.counts(prediction, gold) for prediction, gold in pairs])


def micro_f1(rows: Sequence[tuple[int, int, int]]) -> float:
    """F1 of the summed (tp, fp, fn) rows; 0.0 for no rows."""
    if not rows:
        return 0.0
    return _f1(sum(r[0] for r in rows), sum(r[1] for r in rows), sum(r[2] for r in rows))
