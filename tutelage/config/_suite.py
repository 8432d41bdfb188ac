"""The benchmark suite a run learns and is scored on."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from tutelage.config._base import _Frozen

SuiteName = Literal["banking77", "gsm8k", "bbh", "math500", "nlupp", "file", "hf"]


class FieldMap(_Frozen):
    """Which columns of a ``file`` or ``hf`` suite hold what.

    ``input`` and ``answer`` are required on every row; ``id`` (optional) must be unique, else rows are
    numbered; ``tags`` columns are kept as ``Task.tags`` for per-slice scores; ``split`` (optional)
    holds ``train``, ``dev`` or ``test`` per row.
    """

    input: str = "input"
    answer: str = "answer"
    id: str | None = None
    tags: tuple[str, ...] = ()
    split: str | None = None


class HFConfig(_Frozen):
    """A Hugging Face dataset for ``name: hf``: ``datasets.load_dataset(path, name, split=...)``.

    ``dev_split``/``test_split`` set to ``None`` carve that split from the train split with the seed.
    """

    path: str | None = None
    name: str | None = None
    revision: str | None = None
    train_split: str = "train"
    dev_split: str | None = None
    test_split: str | None = "test"


class SuiteConfig(_Frozen):
    """A task suite and its seeded splits (sizes are caps; ``None`` keeps the whole split).

    ``name``: ``banking77`` (packaged), ``gsm8k``, ``bbh``, ``math500``, ``nlupp`` (read from
    ``data_dir``, a folder holding e.g. ``gsm8k/train.jsonl``), ``file`` (your JSONL or CSV at ``path``)
    or ``hf`` (a Hugging Face dataset, ``hf``). ``seed`` drives every shuffle; ``dev_size`` items are
    carved from the train side, never from test; ``test_size`` caps the scored test items (the whole
    held-out side still guards lessons against leakage).

    Other keys:
        style: BBH prompt style, ``cot`` (published 3-shot chain of thought) or ``direct``.
        tasks: BBH subset by task name (``None``: all 27).
        domain: NLU++ domain, ``banking`` (when unset) or ``hotels``; its intents are the label set.
        path: ``file`` suites: a ``.jsonl`` or ``.csv`` file.
        fields: the column mapping of ``file`` and ``hf`` suites (see ``FieldMap``).
        metric: a grader name (``label``, ``gsm8k``, ``bbh``, ``math``, ``f1``, ``judge``) or an import
            path ``module:attr`` replacing the suite's own grader. ``judge`` grades with the teacher
            endpoint against ``rubric`` (one call per graded item, counted as the teacher's).
        rubric: what a good reply must do, in words (``metric: judge`` only).
        labels: the closed label set of a ``file``/``hf`` suite: each answer must be one of them, or
            with ``metric: f1`` a set of them (a list, or separated by commas or semicolons).
        instruction: replaces the suite's instruction to the student.
        hf: the dataset of an ``hf`` suite (see ``HFConfig``).
        show_labels: list the labels in the instruction; snap_to_labels: read a reply as the label it
            names or most resembles.
    """

    name: SuiteName = "banking77"
    data_dir: str | None = None
    seed: int = 0
    train_size: int | None = Field(None, ge=0)
    dev_size: int = Field(40, ge=1)
    test_size: int | None = Field(100, ge=1)
    show_labels: bool = True
    snap_to_labels: bool = True
    style: Literal["cot", "direct"] = "cot"
    tasks: tuple[str, ...] | None = None
    domain: Literal["banking", "hotels"] | None = None
    path: str | None = None
    fields: FieldMap = FieldMap()
    metric: str | None = Field(None, min_length=1)
    rubric: str | None = Field(None, min_length=1)
    labels: tuple[str, ...] | None = None
    instruction: str | None = Field(None, min_length=1)
    hf: HFConfig = HFConfig()

    @model_validator(mode="after")
    def _keys_fit_the_suite(self) -> SuiteConfig:
        if self.name == "file" and not self.path:
            raise ValueError("a file suite needs suite.path (a .jsonl or .csv file)")
        if self.path and Path(self.path).suffix.lower() not in (".jsonl", ".csv"):
            raise ValueError(f"suite.path must end in .jsonl or .csv, got {self.path!r}")
        if self.name == "hf" and not self.hf.path:
            raise ValueError("an hf suite needs suite.hf.path (a Hugging Face dataset name)")
        if self.tasks is not None and self.name != "bbh":
            raise ValueError("suite.tasks selects BBH tasks; it needs name: bbh")
        if self.tasks is not None and not self.tasks:
            raise ValueError("suite.tasks is empty; leave it out to run all BBH tasks")
        if self.domain is not None and self.name != "nlupp":
            raise ValueError("suite.domain selects the NLU++ domain; it needs name: nlupp")
        if self.metric == "judge" and not (self.rubric and self.rubric.strip()):
            raise ValueError("suite.metric: judge needs suite.rubric (what a good reply must do, in words)")
        if self.rubric and self.metric != "judge":
            raise ValueError("suite.rubric is read by the judge grader only; set suite.metric: judge")
        return self
