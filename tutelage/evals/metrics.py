"""Metrics: how an answer is graded. Banking77 uses exact label match after normalisation."""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["Metric", "label_match", "normalize_label"]

Metric = Callable[[str, str], float]

_EDGE = re.compile(r"^[\s\"'`*.:;,!?()\[\]]+|[\s\"'`*.:;,!?()\[\]]+$")


def normalize_label(text: str) -> str:
    """First non-empty line, outer quotes and punctuation dropped, lower case, spaces and hyphens to ``_``."""
    line = next((ln for ln in text.splitlines() if ln.strip()), "")
    line = _EDGE.sub("", line.strip()).lower()
    return re.sub(r"[\s\-]+", "_", line)


def label_match(prediction: str, gold: str) -> float:
    """1.0 when the normalised prediction equals the normalised gold label, else 0.0."""
    return 1.0 if normalize_label(prediction) == normalize_label(gold) else 0.0
