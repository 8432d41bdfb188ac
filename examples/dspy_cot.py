"""A DSPy program is the student: ``dspy.ChainOfThought("question -> answer")``.

Lessons reach its predictor: retrieved examples as demos, strategies after its instructions. It
runs under DSPy's own ChatAdapter, which a 135M model cannot follow, so point ``model`` at a larger
OpenAI-compatible endpoint, e.g. ``main(model={"provider": "openai", "api_base": ..., "model": ...})``.
"""

from __future__ import annotations

from typing import Any

import dspy

import tutelage
from examples.word_problems import splits

program = dspy.ChainOfThought("question -> answer")


def main(sizes: tuple[int, int, int] = (40, 20, 20), **options: Any) -> tutelage.RunResult:
    """Improve the agent on ``sizes`` (train, dev, test) word problems; ``options`` go to ``improve``."""
    train, dev, test = splits(*sizes)
    return tutelage.improve(
        "examples.dspy_cot:program",  # a module object has no import path of its own: name it
        train=train,
        dev=dev,
        test=test,
        metric="gsm8k",
        **{"name": "dspy-cot", **options},
    )


if __name__ == "__main__":
    result = main(rounds=1)
    print(f"test accuracy {result.test_before:.0%} -> {result.test_after:.0%}  ({result.run_dir})")
