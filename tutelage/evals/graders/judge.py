"""LLM-as-judge: the teacher scores a reply against the gold answer with a rubric, and says why."""

from __future__ import annotations

import re
import threading
from typing import Any

import dspy

from tutelage.evals.graders._base import Grade, Grader, shorten

__all__ = ["JudgeGrader", "parse_judge_reply"]

# One user message: DSPy 3.4 applies the LM's max_tokens to a plain prompt, while its messages= form
# is deprecated and its lm15 Request form drops the LM's generation bounds.
_PROMPT = """You grade answers. Compare the reply with the gold answer and apply the rubric.

Rubric:
{rubric}

Gold answer:
{gold}

Reply to grade:
{prediction}

Answer in exactly this format, with nothing before it:
SCORE: <a number from 0 to {scale}>
FEEDBACK: <one or two sentences: what the reply got right or wrong, and why>"""

_SCORE = re.compile(
    r"\**\s*SCORE\s*\**\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?))?", re.IGNORECASE
)
_FEEDBACK = re.compile(r"\**\s*FEEDBACK\s*\**\s*[:=]\s*\**\s*(.*)", re.IGNORECASE | re.DOTALL)
_CACHE_SIZE = 4096


def parse_judge_reply(text: str, *, scale: int = 1) -> tuple[float, str] | None:
    """``(score in [0, 1], feedback)`` from a judge's ``SCORE: ... FEEDBACK: ...`` reply; None if none.

    ``SCORE: 7/10`` is read as 0.7; a bare number above ``scale`` but at most 10 as out of 10.
    """
    found = _SCORE.search(text)
    if found is None:
        return None
    value = float(found.group(1))
    if found.group(2) is not None:
        denominator = float(found.group(2))
        if denominator <= 0 or value > denominator:
            return None
        score = value / denominator
    elif value <= scale:
        score = value / scale
    elif value <= 10:
        score = value / 10
    else:
        return None
    said = _FEEDBACK.search(text)
    feedback = said.group(1).strip() if said else (text[: found.start()] + text[found.end() :]).strip()
    return score, feedback


def _reply_text(outputs: Any) -> str:
    first = outputs[0] if isinstance(outputs, list) and outputs else ""
    if isinstance(first, dict):
        first = first.get("text") or ""
    return first if isinstance(first, str) else ""


class JudgeGrader(Grader):
    """Grades with an LM (the teacher) told the rubric and the gold answer.

    A judge reply that does not parse is a grade of 0 whose feedback says so; it never raises for
    one. An endpoint that fails after its retries does raise: that is a systemic failure. Replies are
    remembered per ``(prediction, gold)``, so ``grade`` and the score cost one call together.

    From config (``suite.metric: judge``, ``suite.rubric``) the grader is built without an LM and
    the run or eval binds the teacher's with ``bind`` once its endpoint is open (``bind_judge``).

    Args:
        lm: the judge's DSPy LM; bound its generation with ``max_tokens`` on the LM. ``None`` only
            for an unbound grader, which refuses to grade until ``bind`` gives it one.
        rubric: what a good reply must do, in words.
        scale: the score scale the judge is asked for (``1``: 0 to 1, ``10``: 0 to 10).

    Example:
        >>> grader = get_grader("judge", lm=teacher_lm, rubric="Same meaning as the gold.")  # doctest: +SKIP
        >>> grader.grade("Paris", "The capital is Paris.").score  # doctest: +SKIP
        1.0
    """

    name = "judge"

    def __init__(self, *, lm: Any = None, rubric: str = "", scale: int = 1, unbound: bool = False) -> None:
        if lm is None and not unbound:
            raise ValueError("the judge grader needs lm= (a dspy.LM, usually the teacher)")
        if not rubric or not rubric.strip():
            raise ValueError("the judge grader needs a rubric= saying what a good reply must do")
        if scale not in (1, 10, 100):
            raise ValueError(f"judge scale must be 1, 10 or 100, not {scale!r}")
        self.lm = lm
        self.rubric = rubric.strip()
        self.scale = scale
        self._cache: dict[tuple[str, str], Grade] = {}
        self._lock = threading.Lock()

    def bind(self, lm: Any) -> JudgeGrader:
        """The same rubric and scale, graded by ``lm``."""
        return JudgeGrader(lm=lm, rubric=self.rubric, scale=self.scale)

    def prompt(self, prediction: str, gold: str) -> str:
        """The prompt sent to the judge (as one user message) for one reply."""
        return _PROMPT.format(
            rubric=self.rubric, gold=gold.strip(), prediction=prediction.strip(), scale=self.scale
        )

    def grade(self, prediction: str, gold: str) -> Grade:
        key = (prediction, gold)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        if self.lm is None:
            raise RuntimeError("this judge grader has no LM yet: call bind(lm) first")
        with dspy.context(lm=self.lm):
            reply = _reply_text(self.lm(self.prompt(prediction, gold)))
        parsed = parse_judge_reply(reply, scale=self.scale)
        extracted = shorten(prediction, 200)
        if parsed is None:
            feedback = (
                f"the judge's reply did not parse (no 'SCORE: <number>' line): {shorten(reply, 200)!r}"
                if reply.strip()
                else "the judge's reply did not parse: it was empty"
            )
            result = Grade(0.0, extracted, feedback)
        else:
            score, said = parsed
            result = Grade(score, extracted, f"judge scored {score:.2f}: {said or '(no feedback given)'}")
        with self._lock:
            if len(self._cache) >= _CACHE_SIZE:
                self._cache.clear()
            self._cache[key] = result
        return result
