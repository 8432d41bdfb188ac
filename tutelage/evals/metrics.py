"""Metrics: how an answer is graded. Banking77 uses exact label match after normalisation."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable

__all__ = ["Metric", "closest_choice", "label_match", "normalize_label"]

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


def closest_choice(text: str, choices: list[str]) -> str:
    """The choice a free-text reply means: exact after normalisation, else the most similar string.

    The closed-label analogue of a ``Literal[...]`` output type: a small model that writes
    ``refuse_not_showing_up`` meant ``Refund_not_showing_up``.
    """
    if not choices:
        return text
    by_norm = _by_norm(tuple(choices))
    norm = normalize_label(text)
    if norm in by_norm:
        return by_norm[norm]
    best = difflib.get_close_matches(norm, list(by_norm), n=1, cutoff=0.0)
    return by_norm[best[0]] if best else text


@functools.lru_cache(maxsize=32)
def _by_norm(choices: tuple[str, ...]) -> dict[str, str]:
    """Normalised label -> label, built once per label set, not per reply (normalising Banking77's 77
    labels took 0.3 ms of CPU on every item the harness graded). Callers must not mutate it."""
    return {normalize_label(c): c for c in choices}
