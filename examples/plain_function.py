"""The shortest way in: a plain function is the student.

``solve(task, lessons)`` asks the model tutelage gives it (``tutelage.agent_lm()``, so the ledger
counts every call) with the retrieved lessons in the system message. Run it with
``python -m examples.plain_function`` (the embedded model as student and teacher).
"""

from __future__ import annotations

from typing import Any

import tutelage
from examples.word_problems import splits


def solve(task: str, lessons: tutelage.Lessons) -> str:
    system = "Solve the arithmetic word problem. Reply with the number only.\n\n" + lessons.as_text()
    messages = [{"role": "system", "content": system}, {"role": "user", "content": task}]
    return str(tutelage.agent_lm()(messages=messages)[0])


def main(sizes: tuple[int, int, int] = (40, 20, 20), **options: Any) -> tutelage.RunResult:
    """Improve the agent on ``sizes`` (train, dev, test) word problems; ``options`` go to ``improve``."""
    train, dev, test = splits(*sizes)
    return tutelage.improve(
        solve, train=train, dev=dev, test=test, metric="gsm8k", **{"name": "plain-function", **options}
    )


if __name__ == "__main__":
    result = main(rounds=1)
    print(f"test accuracy {result.test_before:.0%} -> {result.test_after:.0%}  ({result.run_dir})")
