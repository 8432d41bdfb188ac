"""MATH-500 competition maths (MIT, Hendrycks et al. 2021; the 500-problem subset of Lightman et al.).

Reads ``math500/test.jsonl`` (``problem``, ``solution``, ``answer``, ``subject``, ``level``,
``unique_id``) under ``suite.data_dir``. The gold answer is the worked solution, which ends in the
final ``\\boxed{}``; the ``math`` grader compares the last boxed expression of gold and reply.

MATH-500 is one file. It is shuffled with the seed and the first ``POOL`` problems form the train
pool (dev is its first ``dev_size``, the rest train); the other 300 are held out as test, of which
``test_size`` are scored. Changing the sizes never moves a problem between the two sides.
"""

from __future__ import annotations

from tutelage.config import SuiteConfig
from tutelage.errors import DataError
from tutelage.evals.suites._base import Suite, Task
from tutelage.evals.suites._common import data_folder, grader_for, read_jsonl
from tutelage.evals.suites._split import cap, carve, dev_from

__all__ = ["INSTRUCTION", "POOL", "load"]

POOL = 200

INSTRUCTION = (
    "Solve the competition maths problem. Reason step by step, then give the final answer in simplest "
    "form inside \\boxed{}, e.g. \\boxed{\\frac{3}{4}}."
)

DEMO = (
    "Task: What is the sum of the roots of $x^2 - 7x + 10 = 0$?\n"
    "Student answer: The roots are $-2$ and $-5$, so the sum is $\\boxed{-7}$.\n"
    "Correct answer: By Vieta's formulas the sum of the roots is $7$: the roots are $2$ and $5$. "
    "$\\boxed{7}$",
    "DIAGNOSIS: The student flipped the signs of the roots when factoring $(x-2)(x-5)$.\n"
    "STRATEGY: After finding roots, substitute one back into the equation, and cross-check a sum or "
    "product of roots with Vieta's formulas ($-b/a$ and $c/a$).\n"
    "REASONING: $x^2 - 7x + 10 = (x-2)(x-5)$, so the roots are $2$ and $5$ and their sum is "
    "$\\boxed{7}$.",
)


def load(cfg: SuiteConfig) -> Suite:
    """MATH-500 with a seeded 200/300 train-pool/test partition; ids are ``math500-<row>``."""
    base = data_folder(cfg, "math500", "test.jsonl", "math500/test.jsonl")
    path = base / "test.jsonl"
    items = []
    for n, (line_no, row) in enumerate(read_jsonl(path)):
        problem, solution = str(row.get("problem") or "").strip(), str(row.get("solution") or "").strip()
        if not problem or "\\boxed" not in solution:
            raise DataError(f"{path}:{line_no}: expected a 'problem' and a 'solution' with \\boxed{{}}")
        tags = {"subject": str(row.get("subject", "")), "level": str(row.get("level", ""))}
        items.append(Task(f"math500-{n}", problem, solution, tags))
    pool, test_all = carve(items, f"math500:{cfg.seed}", POOL)
    train, dev = dev_from(pool, cfg)
    return Suite(
        "math500",
        cfg.instruction or INSTRUCTION,
        train,
        dev,
        cap(test_all, cfg.test_size),
        grader_for(cfg, "math"),
        [],
        DEMO,
        held_out=test_all,
        reasoning=True,
        slice_keys=("subject", "level"),
    )
