"""Banking77 intent classification: 77 labels, packaged in ``tutelage/evals/data/banking77``.

Banking77 ships inside the package (CC BY 4.0, Casanueva et al. 2020), so the quickstart needs no
network and no ``../shared``; ``suite.data_dir`` points at another copy. Splits: dev is carved from
train.csv with the seed, test is test.csv shuffled with seed + 1; train texts that also occur in
test.csv never become train or dev items.
"""

from __future__ import annotations

import csv
from importlib import resources
from pathlib import Path

from tutelage.config import SuiteConfig
from tutelage.errors import DataError
from tutelage.evals.metrics import normalize_label
from tutelage.evals.suites._base import Suite, Task
from tutelage.evals.suites._common import grader_for, read_json
from tutelage.evals.suites._split import drop_leaks, split_pools

__all__ = ["load"]

DEMO = (
    "Task: I need to change my PIN.\nStudent answer: pin_blocked\nCorrect answer: change_pin",
    "DIAGNOSIS: The customer wants to change the PIN, not unblock it.\n"
    "STRATEGY: Look at the action the customer asks for, not only the object they mention.\n"
    "EXAMPLE: How can I set a different PIN for my card? => change_pin\n"
    "EXAMPLE: My PIN is fine but I would like to pick new digits for it. => change_pin",
)


def _folder(cfg: SuiteConfig) -> Path:
    if cfg.data_dir:
        base = Path(cfg.data_dir)
        return base / "banking77" if (base / "banking77").is_dir() else base
    return Path(str(resources.files("tutelage.evals").joinpath("data", "banking77")))


def _read_csv(path: Path, split: str) -> list[Task]:
    if not path.is_file():
        raise DataError(f"Banking77 file not found: {path}")
    tasks = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"text", "category"} <= set(reader.fieldnames):
            raise DataError(f"{path}: expected a CSV header 'text,category'")
        for row_no, row in enumerate(reader, start=2):
            text, label = (row.get("text") or "").strip(), (row.get("category") or "").strip()
            if not text or not label:
                raise DataError(f"{path}:{row_no}: empty text or category")
            tasks.append(Task(f"{split}-{row_no - 2}", text, label, tags={"intent": label}))
    return tasks


def load(cfg: SuiteConfig) -> Suite:
    """Banking77 with seeded splits: ids ``train-N`` / ``test-N`` are the data rows of each CSV."""
    base = _folder(cfg)
    labels = read_json(base / "categories.json")
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise DataError(f"{base / 'categories.json'}: expected a JSON list of label strings")
    test_all = _read_csv(base / "test.csv", "test")
    # A few texts occur in both files; they never become train or dev items.
    train_pool = drop_leaks(_read_csv(base / "train.csv", "train"), test_all, key=normalize_label)
    train, dev, test = split_pools(train_pool, test_all, cfg)
    instruction = "Classify the banking customer message into its intent label."
    if cfg.show_labels:
        instruction = (
            "Classify the banking customer message into one of these intent labels: "
            + ", ".join(labels)
            + "."
        )
    instruction += " Reply with the label only."
    return Suite(
        "banking77",
        cfg.instruction or instruction,
        train,
        dev,
        test,
        grader_for(cfg, "label"),
        labels,
        DEMO,
        held_out=test_all,
        slice_keys=("intent",),
    )
