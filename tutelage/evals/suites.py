"""Task suites loaded from files, with seeded train/dev/test splits.

Banking77 ships inside the package (CC BY 4.0, Casanueva et al. 2020; see ``data/banking77``), so the
quickstart needs no network and no ``../shared``. ``suite.data_dir`` points at another copy.
"""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from tutelage.config import SuiteConfig
from tutelage.errors import DataError
from tutelage.evals.metrics import Metric, label_match, normalize_label

__all__ = ["Suite", "Task", "load_suite"]


@dataclass(frozen=True)
class Task:
    """One item: a stable id, the input shown to the student, and the gold answer."""

    id: str
    input: str
    answer: str


@dataclass(frozen=True)
class Suite:
    """A task suite: splits, the student's instruction, the metric and the teacher's format demo."""

    name: str
    instruction: str
    train: list[Task]
    dev: list[Task]
    test: list[Task]
    metric: Metric
    labels: list[str] = field(default_factory=list)
    teacher_demo: tuple[str, str] | None = None
    held_out: list[Task] = field(default_factory=list)  # the whole test file, for the leakage guard

    def guarded(self) -> list[Task]:
        """Every held-out item no lesson may quote (the whole test file, not only the scored slice)."""
        return self.held_out or self.test

    def by_id(self) -> dict[str, Task]:
        return {t.id: t for t in [*self.train, *self.dev, *self.test]}


def _banking77_dir(cfg: SuiteConfig) -> Path:
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
            tasks.append(Task(id=f"{split}-{row_no - 2}", input=text, answer=label))
    return tasks


def _banking77(cfg: SuiteConfig) -> Suite:
    base = _banking77_dir(cfg)
    try:
        labels = json.loads((base / "categories.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {base / 'categories.json'}: {exc}") from None
    train_all = _read_csv(base / "train.csv", "train")
    test_all = _read_csv(base / "test.csv", "test")
    # Leakage guard: a few texts occur in both files; they never become train or dev items.
    test_texts = {normalize_label(t.input) for t in test_all}
    train_all = [t for t in train_all if normalize_label(t.input) not in test_texts]
    rng = random.Random(cfg.seed)
    rng.shuffle(train_all)
    test_rng = random.Random(cfg.seed + 1)
    test = list(test_all)
    test_rng.shuffle(test)
    dev, train = train_all[: cfg.dev_size], train_all[cfg.dev_size :]
    if cfg.train_size is not None:
        train = train[: cfg.train_size]
    if cfg.test_size is not None:
        test = test[: cfg.test_size]
    instruction = "Classify the banking customer message into its intent label."
    if cfg.show_labels:
        instruction = (
            "Classify the banking customer message into one of these intent labels: "
            + ", ".join(labels)
            + "."
        )
    instruction += " Reply with the label only."
    demo = (
        "Task: I need to change my PIN.\nStudent answer: pin_blocked\nCorrect answer: change_pin",
        "DIAGNOSIS: The student focused on the word PIN and ignored that the customer wants to change it, "
        "not unblock it.\n"
        "STRATEGY: Look at the action the customer asks for, not only the object they mention.",
    )
    return Suite("banking77", instruction, train, dev, test, label_match, labels, demo, held_out=test_all)


def load_suite(cfg: SuiteConfig) -> Suite:
    """Load the suite a config names, with its seeded splits."""
    if cfg.name == "banking77":
        return _banking77(cfg)
    raise DataError(f"unknown suite {cfg.name!r}")
