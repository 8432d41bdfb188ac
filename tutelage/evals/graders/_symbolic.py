"""Symbolic equivalence of two LaTeX answers: math-verify first, a small sympy check as the fallback.

math-verify bounds its work with ``signal.alarm``, which only works in the main thread of a POSIX
process; the harness grades in worker threads. There the check runs with math-verify's timeouts off,
in a daemon thread that is abandoned after the timeout: a pathological expression costs one stuck
thread instead of a hung evaluation.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from typing import Any

from tutelage.evals.graders._latex import strip_answer

__all__ = ["symbolic_equal"]

logger = logging.getLogger(__name__)


class _NoTimeoutNotice(logging.Filter):
    """Drop math-verify's "Timeout is disabled" warning: off the main thread this module bounds the
    check itself (see ``_bounded``), so the warning would only alarm the user."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.grader", "math_verify.parser"):
    logging.getLogger(_name).addFilter(_NoTimeoutNotice())

_MAX_CHARS = 400  # longer "answers" are prose or runaway output; sympy on them is slow and pointless
# sympy's parse_expr runs eval(): admit only numbers, operators, sqrt, pi and one-letter variables, so
# no name in a model's reply can reach a Python builtin.
_SAFE = re.compile(r"(?:sqrt|pi|[a-z](?![a-z])|\d+(?:\.\d+)?|[-+*/()^ ])*")
_SYMPY_NAMES = ("Float", "Function", "Integer", "Rational", "Symbol", "pi", "sqrt")


def _bounded(check: Callable[[int | None], bool | None], seconds: int) -> bool | None:
    """``check(timeout)`` with math-verify's own alarm in the main thread, else in a daemon thread."""
    if os.name == "posix" and threading.current_thread() is threading.main_thread():
        return check(seconds)
    result: list[bool | None] = [None]

    def run() -> None:
        try:
            result[0] = check(None)
        except Exception:  # a sympy crash on odd input is a "could not decide", not a failed run
            logger.debug("symbolic check failed", exc_info=True)

    worker = threading.Thread(target=run, name="tutelage-math-verify", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        logger.warning("symbolic equivalence check gave up after %ss", seconds)
        return None
    return result[0]


def _math_verify(gold: str, answer: str, timeout: int | None) -> bool | None:
    from math_verify import parse, verify

    opts: dict[str, Any] = {"parsing_timeout": timeout}
    parsed_gold = parse(f"\\boxed{{{gold}}}", **opts)
    parsed_answer = parse(f"\\boxed{{{answer}}}", **opts)
    if not parsed_gold or not parsed_answer:
        return None
    return bool(verify(parsed_gold, parsed_answer, timeout_seconds=timeout))


def _to_sympy_text(latex: str) -> str | None:
    s = latex.replace("\\left", "").replace("\\right", "").replace("\\cdot", "*").replace("\\times", "*")
    s = s.replace("\\pi", "pi").replace("\\", "")
    for _ in range(8):  # innermost first: frac{a}{b} -> ((a)/(b)), sqrt{a} -> sqrt(a)
        s = re.sub(r"frac\{([^{}]*)\}\{([^{}]*)\}", r"((\1)/(\2))", s)
        s = re.sub(r"sqrt\{([^{}]*)\}", r"sqrt(\1)", s)
    s = s.replace("{", "(").replace("}", ")")
    return s if _SAFE.fullmatch(s) else None


def _sympy(gold: str, answer: str, timeout: int | None) -> bool | None:
    """Equal as sympy expressions; only for plain arithmetic and single-letter variables."""
    if timeout is None:
        return _sympy_unbounded(gold, answer)
    from math_verify.errors import TimeoutException
    from math_verify.utils import timeout as alarm

    try:
        verdict: bool | None = alarm(timeout_seconds=timeout)(_sympy_unbounded)(gold, answer)
    except TimeoutException:
        logger.warning("sympy equivalence check gave up after %ss", timeout)
        return None
    return verdict


def _sympy_unbounded(gold: str, answer: str) -> bool | None:
    import sympy
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    texts = [_to_sympy_text(strip_answer(gold)), _to_sympy_text(strip_answer(answer))]
    if None in texts:
        return None
    transforms = (*standard_transformations, implicit_multiplication_application, convert_xor)
    names: dict[str, Any] = {"__builtins__": {}} | {name: getattr(sympy, name) for name in _SYMPY_NAMES}
    try:
        left, right = (
            parse_expr(t, local_dict={}, global_dict=dict(names), transformations=transforms)
            for t in texts
            if t
        )
        return bool(sympy.simplify(left - right) == 0)
    except Exception:  # unparsable or non-arithmetic after all: undecided
        return None


def symbolic_equal(gold: str, answer: str, *, timeout: int = 5) -> bool | None:
    """True or False when the two answers could be compared symbolically, None when undecided."""
    if not gold or not answer or max(len(gold), len(answer)) > _MAX_CHARS:
        return None

    def check(limit: int | None) -> bool | None:
        verdict = _math_verify(gold, answer, limit)
        return verdict if verdict is not None else _sympy(gold, answer, limit)

    return _bounded(check, timeout)
