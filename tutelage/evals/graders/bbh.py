"""BIG-Bench Hard: exact match of the answer after ``So the answer is`` (CoT) or on the first line."""

from __future__ import annotations

import re
from typing import Literal

from tutelage.evals.graders._base import Grade, Grader, shorten

__all__ = ["BBHGrader", "bbh_answer", "option_letter"]

Style = Literal["cot", "direct"]

_MARKER = re.compile(r"so the answer is\s", re.IGNORECASE)
_GOLD_LETTER = re.compile(r"\(([A-Z])\)")
_BARE_LETTER = re.compile(r"\(?([A-Z])\)?")
_LEADING_OPTION = re.compile(r"\(([A-Z])\)\s")
_ANY_OPTION = re.compile(r"\(([A-Z])\)")
# Chat models decorate answers (`**(A)**`, `` `True` ``); the published outputs never carry these.
_DECORATION = "*`_ \t"


def _clean(answer: str) -> str:
    line = next((ln for ln in answer.strip().splitlines() if ln.strip()), "")
    return line.strip(_DECORATION).rstrip(".").strip(_DECORATION)


def bbh_answer(prediction: str, style: Style) -> str | None:
    """The answer a reply gives: the first line after the last ``So the answer is`` (CoT) or its first
    line (direct), with the trailing period dropped; None when a CoT reply never says it.

    The published code-davinci-002 CoT outputs go on after the answer with a new ``Q:`` on the next
    line; only the answer's own line counts.
    """
    if style == "cot":
        marks = list(_MARKER.finditer(prediction))
        if not marks:
            return None
        return _clean(prediction[marks[-1].end() :])
    return _clean(prediction)


def option_letter(answer: str) -> str | None:
    """The option an answer names: ``A``, ``(A)`` and ``(A) option text`` all mean ``A``.

    An answer naming two options (``(A) or (B)``) names none: the published grading counts it wrong.
    """
    if bare := _BARE_LETTER.fullmatch(answer):
        return bare.group(1)
    lead = _LEADING_OPTION.match(answer)
    if lead and set(_ANY_OPTION.findall(answer)) == {lead.group(1)}:
        return lead.group(1)
    return None


def _same_text(got: str, want: str) -> bool:
    return " ".join(got.split()).casefold() == " ".join(want.split()).casefold()


class BBHGrader(Grader):
    """Exact match as the BBH authors grade it, tolerant only of how an option letter is written.

    A multiple-choice gold ``(B)`` accepts ``B``, ``(B)`` and ``(B) option text``; any other gold
    (``True``, ``valid``, a sorted word list, a Dyck closing sequence, and the three BBH targets written
    as option text) is compared as text, ignoring case and runs of spaces. This reproduces the published
    code-davinci-002 accuracy of all 27 tasks in both styles.

    Args:
        style: ``"cot"`` reads the text after the last ``So the answer is``; ``"direct"`` the first line.

    Example:
        >>> BBHGrader(style="cot")("... so Bob is lying. So the answer is No.", "No")
        1.0
    """

    name = "bbh"

    def __init__(self, *, style: Style = "cot") -> None:
        if style not in ("cot", "direct"):
            raise ValueError(f"bbh style must be 'cot' or 'direct', not {style!r}")
        self.style: Style = style

    def grade(self, prediction: str, gold: str) -> Grade:
        want = gold.strip()
        got = bbh_answer(prediction, self.style)
        if got is None:
            why = "the reply never says 'So the answer is ...', so no answer was read"
            return Grade(0.0, "", f"{why}; expected {shorten(want, 300)}")
        if not got:
            where = "after 'So the answer is'" if self.style == "cot" else "in the reply"
            return Grade(0.0, "", f"no answer {where}; expected {shorten(want, 300)}")
        if gold_letter := _GOLD_LETTER.fullmatch(want):
            letter = option_letter(got)
            shown = f"({letter})" if letter else got
            if letter == gold_letter.group(1):
                return Grade(1.0, shown, f"correct: answered {shown}")
            if letter is None and _ANY_OPTION.search(got):
                why = f"the answer {shorten(got, 60)!r} names more than one option"
                return Grade(0.0, got, f"{why}; expected {want}")
            if letter is None:
                return Grade(
                    0.0, got, f"the answer {shorten(got, 60)!r} is not an option letter; expected {want}"
                )
            return Grade(0.0, shown, f"answered {shown}; expected {want}")
        if _same_text(got, want):
            return Grade(1.0, got, f"correct: answered {shorten(got, 300)!r}")
        return Grade(0.0, got, f"answered {shorten(got, 300)!r}; expected {shorten(want, 300)!r}")
