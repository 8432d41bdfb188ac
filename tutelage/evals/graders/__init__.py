"""Graders: how a reply is scored against a gold answer, the way each benchmark's authors grade it.

A grader is a ``Metric`` (``grader(prediction, gold) -> float`` in [0, 1]) that can also explain
itself: ``grade`` returns the score, the answer it read from the reply and textual feedback for the
teacher and for GEPA; ``aggregate`` turns per-item pairs into the suite's headline score (the mean,
or micro-F1 for multi-label). ``get_grader(name)`` builds one by name or by import path.

    label   exact normalised label (Banking77)          _base.py  Grade, Grader, feedback_for
    gsm8k   number after ####, else the last number     gsm8k.py
    bbh     text after "So the answer is" / first line  bbh.py
    math    last \\boxed{}, normalised or symbolic      hendrycks_math.py (_latex, _symbolic)
    f1      label sets, micro-F1 (NLU++)                multilabel.py
    judge   an LM with a rubric                         judge.py
    a.b:c   any (prediction, gold) callable             custom.py
"""

from __future__ import annotations

import inspect
from typing import Any

from tutelage.evals.graders._base import Grade, Grader, feedback_for
from tutelage.evals.graders.bbh import BBHGrader
from tutelage.evals.graders.custom import CallableGrader, load_grader
from tutelage.evals.graders.gsm8k import GSM8KGrader
from tutelage.evals.graders.hendrycks_math import MathGrader
from tutelage.evals.graders.judge import JudgeGrader
from tutelage.evals.graders.label import LabelGrader
from tutelage.evals.graders.multilabel import MultiLabelF1Grader

__all__ = [
    "GRADERS",
    "BBHGrader",
    "CallableGrader",
    "GSM8KGrader",
    "Grade",
    "Grader",
    "JudgeGrader",
    "LabelGrader",
    "MathGrader",
    "MultiLabelF1Grader",
    "feedback_for",
    "get_grader",
]

_REGISTRY: dict[str, type[Grader]] = {
    cls.name: cls
    for cls in (LabelGrader, GSM8KGrader, BBHGrader, MathGrader, MultiLabelF1Grader, JudgeGrader)
}

GRADERS: tuple[str, ...] = tuple(_REGISTRY)
"""The built-in grader names; any ``package.module:attribute`` path is accepted as well."""


def _options_of(cls: type[Grader]) -> list[str]:
    params = inspect.signature(cls.__init__).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY]


def get_grader(name: str, **options: Any) -> Grader:
    """A grader by name or by import path ``package.module:attribute``.

    Args:
        name: one of ``GRADERS`` (``label``, ``gsm8k``, ``bbh``, ``math``, ``f1``, ``judge``) or an
            import path to a Grader subclass, a Grader instance or a ``(prediction, gold)`` function.
        **options: the grader's keyword options: ``gsm8k`` strict; ``bbh`` style (``cot``/``direct``);
            ``math`` timeout; ``f1`` labels; ``judge`` lm, rubric, scale.

    Raises:
        ValueError: an unknown name, an import path that does not import, or a bad option value.
        TypeError: an option the grader does not take, or an import path that is not callable.

    Example:
        >>> get_grader("gsm8k")("... so she pays $18.\\n#### 18", "#### 18")
        1.0
        >>> get_grader("bbh", style="direct").grade("(B) Inc", "(A)").feedback
        'answered (B); expected (A)'
    """
    if ":" in name:
        return load_grader(name, **options)
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ValueError(
            f"unknown grader {name!r}; choose one of {', '.join(GRADERS)} or give 'package.module:attribute'"
        )
    accepted = _options_of(cls)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        takes = f"it takes {', '.join(accepted)}" if accepted else "it takes no options"
        raise TypeError(f"grader {name!r} has no option {', '.join(unknown)}; {takes}")
    return cls(**options)
