"""GSM8K grade-school maths (MIT, Cobbe et al. 2021): worked solutions ending in ``#### N``.

Reads ``gsm8k/train.jsonl`` and ``gsm8k/test.jsonl`` (``question``, ``answer``) under
``suite.data_dir``. The gold answer is the worked solution with its calculator marks ``<<48/2=24>>``
stripped, so a correct example is also a good lesson; the ``gsm8k`` grader reads the number after
``####``. Splits as Banking77: dev is carved from train.jsonl with the seed, test is test.jsonl
shuffled with seed + 1; train questions that also occur in test never become train or dev items.
"""

from __future__ import annotations

import re
from pathlib import Path

from tutelage.config import SuiteConfig
from tutelage.errors import DataError
from tutelage.evals.suites._base import Suite, Task
from tutelage.evals.suites._common import data_folder, grader_for, read_jsonl
from tutelage.evals.suites._split import drop_leaks, split_pools

__all__ = ["INSTRUCTION", "load", "strip_calculator"]

INSTRUCTION = (
    "Solve the grade-school maths problem. Reason step by step, then end with a last line "
    "'#### <number>' holding the final answer as a plain number."
)

DEMO = (
    "Task: A pen costs $3 and a notebook costs twice as much. How much do 2 pens and 1 notebook cost?\n"
    "Student answer: Notebook: 3*2 = 6. Total: 6+3 = 9.\n#### 9\n"
    "Correct answer: A notebook costs 3*2 = $6.\nTwo pens cost 2*3 = $6.\nTotal: 6+6 = $12.\n#### 12",
    "DIAGNOSIS: The student priced one pen instead of the two the question asks for.\n"
    "STRATEGY: Before adding, list each item with the quantity the question gives, and multiply "
    "price by quantity for every item.\n"
    "REASONING: A notebook costs 3*2 = $6. Two pens cost 2*3 = $6. Together: 6+6 = $12.\n#### 12",
)

_CALC = re.compile(r"<<[^<>]*>>")


def strip_calculator(solution: str) -> str:
    """A GSM8K solution without its calculator annotations: ``48/2 = <<48/2=24>>24`` -> ``48/2 = 24``."""
    return _CALC.sub("", solution)


def _read(path: Path, split: str) -> list[Task]:
    tasks = []
    for n, (line_no, row) in enumerate(read_jsonl(path)):
        question, solution = str(row.get("question") or "").strip(), str(row.get("answer") or "").strip()
        if not question or "####" not in solution:
            raise DataError(f"{path}:{line_no}: expected 'question' and an 'answer' ending in '#### N'")
        answer = strip_calculator(solution)
        steps = len([ln for ln in answer.split("####")[0].splitlines() if ln.strip()])
        tasks.append(Task(f"{split}-{n}", question, answer, tags={"steps": str(steps)}))
    return tasks


def load(cfg: SuiteConfig) -> Suite:
    """GSM8K: ids ``train-N`` / ``test-N`` are the rows of each file (default: 7,433 train, 40 dev)."""
    base = data_folder(cfg, "gsm8k", "test.jsonl", "gsm8k/train.jsonl and gsm8k/test.jsonl")
    test_all = _read(base / "test.jsonl", "test")
    train_pool = drop_leaks(_read(base / "train.jsonl", "train"), test_all)
    train, dev, test = split_pools(train_pool, test_all, cfg)
    return Suite(
        "gsm8k",
        cfg.instruction or INSTRUCTION,
        train,
        dev,
        test,
        grader_for(cfg, "gsm8k"),
        [],
        DEMO,
        held_out=test_all,
        reasoning=True,
        slice_keys=("steps",),
    )
