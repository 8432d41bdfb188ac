"""MATH and MATH-500: the last ``\\boxed{}`` answer, normalised string match, else symbolic equivalence."""

from __future__ import annotations

import re

from tutelage.evals.graders._base import Grade, Grader, shorten
from tutelage.evals.graders._latex import last_boxed, strip_answer
from tutelage.evals.graders._symbolic import symbolic_equal

__all__ = ["MathGrader", "math_answer"]

_FINAL = re.compile(r"\banswer(?:\s+is)?\s*:\s*(.+)|\banswer\s+is\s+(.+)", re.IGNORECASE)
_DOLLARS = re.compile(r"\$+([^$]+)\$+")


def _unwrap(text: str) -> str:
    text = text.strip()
    inline = _DOLLARS.search(text)
    if inline:
        return inline.group(1).strip()
    return text.rstrip(".").strip()


def math_answer(text: str) -> tuple[str | None, str]:
    """The answer a reply or solution gives, and where it was read.

    The last ``\\boxed{}``/``\\fbox{}`` (the MATH convention); else the last ``answer is ...`` or
    ``answer: ...`` (Minerva's ``Final Answer: The final answer is $x$``); else the whole reply when it
    is a single line (a bare answer). None otherwise.
    """
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed.strip(), "the last \\boxed{}"
    finals = _FINAL.findall(text)
    if finals:
        return _unwrap("".join(finals[-1])), "the 'answer is' line"
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        return _unwrap(lines[0]), "the reply"
    return None, "nowhere"


class MathGrader(Grader):
    """The MATH grading of Hendrycks et al., with math-verify for answers written differently.

    Both the reply and the gold (a full solution or a bare answer) give their last ``\\boxed{}``.
    Equal after the reference normalisation scores 1; otherwise the two are compared symbolically
    (``\\frac{1}{2}`` and ``0.5``, ``2\\sqrt{2}`` and ``\\sqrt{8}``, equal intervals and tuples).

    Args:
        timeout: seconds allowed for one symbolic comparison; an undecided comparison scores 0.

    Example:
        >>> MathGrader()("so $x = \\\\boxed{\\\\dfrac{1}{2}}$", "0.5")
        1.0
    """

    name = "math"

    def __init__(self, *, timeout: int = 5) -> None:
        if timeout < 1:
            raise ValueError(f"math grader timeout must be at least 1 second, not {timeout!r}")
        self.timeout = timeout

    def grade(self, prediction: str, gold: str) -> Grade:
        want, _ = math_answer(gold)
        want = want if want is not None else gold.strip()
        got, where = math_answer(prediction)
        if got is None or not got:
            return Grade(0.0, "", f"no \\boxed{{}} answer in the reply; expected {shorten(want, 200)}")
        if strip_answer(got) == strip_answer(want):
            return Grade(1.0, got, f"correct: read {shorten(got, 200)} from {where}")
        verdict = symbolic_equal(want, got, timeout=self.timeout)
        if verdict:
            return Grade(1.0, got, f"correct: {shorten(got, 200)} (from {where}) equals {shorten(want, 200)}")
        why = "is not equal to" if verdict is False else "could not be shown equal to"
        return Grade(
            0.0, got, f"read {shorten(got, 200)} from {where}; it {why} the expected {shorten(want, 200)}"
        )
