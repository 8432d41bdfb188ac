"""GSM8K: the number after ``####`` (strict), else the reply's last number (lm-eval flexible-extract)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from tutelage.evals.graders._base import Grade, Grader, shorten

__all__ = ["GSM8KGrader", "gsm8k_gold", "gsm8k_number"]

# lm-eval's gsm8k "strict-match" reads `#### (-?[0-9.,]+)`; a `$` or extra spaces before the number are
# tolerated here because chat models write "#### $18".
_STRICT = re.compile(r"####\s*\$?\s*(-?[0-9.,]*[0-9][0-9.,]*)")
# lm-eval's "flexible-extract": the last match of this pattern anywhere in the completion.
_FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")


def gsm8k_number(text: str) -> Decimal | None:
    """A GSM8K answer token as a number: commas, ``$`` and a trailing period dropped; None if not one."""
    cleaned = text.strip().replace(",", "").replace("$", "").rstrip(".")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def gsm8k_gold(gold: str) -> str:
    """The answer of a gold field: the text after the last ``####`` of a solution, or the bare answer."""
    if "####" in gold:
        tail = gold.rsplit("####", 1)[1].strip()
        return tail.splitlines()[0].strip() if tail else ""
    return gold.strip()


def _strict_answer(prediction: str) -> str | None:
    found = _STRICT.findall(prediction)
    return found[-1] if found else None


def _flexible_answer(prediction: str) -> str | None:
    for match in reversed(list(_FLEXIBLE.finditer(prediction))):
        token = match.group(0)
        if any(ch.isdigit() for ch in token):
            return token
    return None


def _show(value: Decimal | None, token: str) -> str:
    return token.strip() if value is None else format(value.normalize(), "f")


class GSM8KGrader(Grader):
    """Numeric match of the final answer, as lm-eval grades GSM8K.

    Args:
        strict: read only the ``#### N`` line (lm-eval "strict-match"); by default a reply without one
            falls back to its last number ("flexible-extract").

    Example:
        >>> GSM8KGrader()("She makes 9 * 2 = $18.\\n#### 18", "#### 18")
        1.0
    """

    name = "gsm8k"

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict

    def grade(self, prediction: str, gold: str) -> Grade:
        want_token = gsm8k_gold(gold)
        want = gsm8k_number(want_token)
        want_text = _show(want, want_token)
        token = _strict_answer(prediction)
        how = "'####' line read"
        if token is None:
            if self.strict:
                return Grade(0.0, "", f"no '#### <number>' line (strict grading); expected {want_text}")
            token = _flexible_answer(prediction)
            if token is None:
                return Grade(
                    0.0, "", f"no number in the reply ({shorten(prediction, 80)!r}); expected {want_text}"
                )
            how = "no '####' line; last number read was"
        got = gsm8k_number(token)
        got_text = _show(got, token)
        if got is not None and want is not None:
            same = got == want
        else:
            same = token.strip().rstrip(".").replace(",", "") == want_token.rstrip(".").replace(",", "")
        if same:
            return Grade(1.0, got_text, f"correct ({how} {got_text})")
        return Grade(0.0, got_text, f"{how} {got_text}; expected {want_text}")
