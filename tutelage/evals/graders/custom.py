"""Graders from user code: any ``(prediction, gold)`` callable named by an import path ``module:attr``."""

from __future__ import annotations

import functools
import importlib
import math
import numbers
from collections.abc import Callable
from typing import Any

from tutelage.evals.graders._base import Grade, Grader

__all__ = ["CallableGrader", "load_grader"]

UserMetric = Callable[[str, str], Any]


class CallableGrader(Grader):
    """Wraps a user function returning a score, a ``Grade`` or a ``(score, feedback)`` pair.

    Example:
        >>> grader = CallableGrader(lambda p, g: float(p.strip() == g), name="exact")
        >>> grader.grade("4", "5").feedback
        "scored 0.00; the expected answer is '5'"
    """

    name = "custom"

    def __init__(self, fn: UserMetric, *, name: str = "custom") -> None:
        if not callable(fn):
            raise TypeError(f"grader {name!r} is a {type(fn).__name__}, not a callable (prediction, gold)")
        self.fn = fn
        self.label = name

    def grade(self, prediction: str, gold: str) -> Grade:
        result = self.fn(prediction, gold)
        if isinstance(result, Grade):
            return result
        feedback = None
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
            result, feedback = result
        if isinstance(result, numbers.Real) and math.isfinite(float(result)):
            score = float(result)
            if feedback is None:
                feedback = (
                    "correct" if score >= 1.0 else f"scored {score:.2f}; the expected answer is {gold!r}"
                )
            return Grade(score, prediction.strip(), feedback)
        raise TypeError(
            f"grader {self.label!r} returned {type(result).__name__}; "
            "expected a number, a Grade or a (score, feedback) pair"
        )


def _import(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"grader path {path!r} must look like 'package.module:attribute'")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"grader {path!r}: cannot import module {module_name!r} ({exc})") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ValueError(f"grader {path!r}: module {module_name!r} has no attribute {attr!r}") from None
    return obj


def load_grader(path: str, **options: Any) -> Grader:
    """The grader at ``package.module:attribute``: a Grader subclass (built with ``options``), a Grader
    instance, or a plain ``(prediction, gold)`` function (called with ``options`` as keywords).

    Raises:
        ValueError: the module or attribute cannot be imported.
        TypeError: the attribute is not callable, or ``options`` do not fit it.
    """
    obj = _import(path)
    if isinstance(obj, type) and issubclass(obj, Grader):
        try:
            return obj(**options)
        except TypeError as exc:
            raise TypeError(f"grader {path!r} cannot be built with options {sorted(options)}: {exc}") from exc
    if isinstance(obj, Grader):
        if options:
            raise TypeError(f"grader {path!r} is already built; it takes no options (got {sorted(options)})")
        return obj
    if not callable(obj):
        raise TypeError(f"grader {path!r} is a {type(obj).__name__}, not a callable (prediction, gold)")
    return CallableGrader(functools.partial(obj, **options) if options else obj, name=path)
