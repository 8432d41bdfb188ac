"""Baseline students: the same program and prompt format as tutelage's student, another demo policy.

Every baseline is a ``StudentProgram`` (demos as chat turns through ``PlainChatAdapter``, replies
snapped to the suite's labels), so a comparison with a tutelage run differs only in which demos the
student sees:

- ``zero-shot``: the suite instruction alone; no demos, no memory.
- ``fewshot-random``: ``dspy.LabeledFewShot`` with ``k`` fixed demos, a seeded random sample of train.
- ``retrieval-train``: the ``k`` nearest train items for every task (``dspy.KNNFewShot``'s policy),
  retrieved from a lesson store that holds the whole train split as active examples. The upper
  bound for example retrieval: a memory that already has every labelled item.

Example:
    >>> from tutelage.evals.baselines import build_baseline
    >>> student = build_baseline("fewshot-random", suite, seed=0)  # doctest: +SKIP
    >>> solve = make_solver(student, lm=lm, metric=suite.metric)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import dspy

from tutelage.agents.student import StudentProgram
from tutelage.config import MemoryConfig
from tutelage.errors import ConfigError
from tutelage.evals.suites import Suite, Task
from tutelage.memory.embed import Embedder
from tutelage.memory.lesson import Lesson
from tutelage.memory.store import LessonStore, open_store

__all__ = ["BASELINES", "build_baseline", "sample_demos", "train_store", "train_store_path"]

BASELINES = ("zero-shot", "fewshot-random", "retrieval-train")
DEFAULT_K = 8


def sample_demos(train: list[Task], k: int, *, seed: int) -> list[Task]:
    """``k`` train items drawn by ``random.Random(seed)``, in the order drawn."""
    return random.Random(seed).sample(train, min(k, len(train)))


def train_store_path(suite: Suite, embedder: Embedder, store_dir: Path) -> Path:
    """Where the whole-train store of ``suite`` lives under ``store_dir``.

    The name carries the suite, the train split's size, the embedding model and a digest of the train
    items (ids and answers, so it changes with the split's seed or data); any change makes a new store.
    """
    digest = hashlib.sha256("\n".join(f"{t.id}\x1f{t.answer}" for t in suite.train).encode()).hexdigest()
    model = re.sub(r"[^A-Za-z0-9.]+", "-", embedder.model_id.split("/")[-1]).strip("-")
    return Path(store_dir) / f"{suite.name}-train{len(suite.train)}-{model}-{digest[:10]}"


def _train_lessons(suite: Suite) -> list[Lesson]:
    return [
        Lesson.make(
            kind="example", text=t.input, answer=t.answer, scope=suite.name, source_task_id=t.id
        ).with_status("active", "baseline: a labelled train item", round=0)
        for t in suite.train
    ]


def train_store(suite: Suite, *, embedder: Embedder, store_dir: Path) -> LessonStore:
    """An embedded lesson store holding every train item of ``suite`` as an active example lesson.

    Built once under ``store_dir`` (see ``train_store_path``) and reused: a store that already holds
    the whole split embeds nothing; one left incomplete by a kill gets only its missing items.
    """
    store = open_store(MemoryConfig(), path=train_store_path(suite, embedder, store_dir), embedder=embedder)
    lessons = _train_lessons(suite)
    # Items with the same text and answer share an id (content-addressed), so count distinct ids.
    if store.count() < len({x.id for x in lessons}):
        store.add(lessons)
    return store


def build_baseline(
    name: str,
    suite: Suite,
    *,
    embedder: Embedder | None = None,
    store_dir: Path | None = None,
    seed: int = 0,
    k: int = DEFAULT_K,
    snap_to_labels: bool = True,
) -> StudentProgram:
    """The baseline student ``name`` (one of ``BASELINES``) for ``suite``.

    Args:
        name: ``zero-shot``, ``fewshot-random`` or ``retrieval-train``.
        suite: the suite whose instruction, labels and train split the baseline uses.
        embedder: embeds the train split and each task (``retrieval-train`` only).
        store_dir: the folder that caches whole-train stores (``retrieval-train`` only).
        seed: seeds the ``fewshot-random`` sample.
        k: demos shown (``fewshot-random``) or retrieved per task (``retrieval-train``).
        snap_to_labels: read each reply as the label it names or most resembles, as the loop does
            with ``suite.snap_to_labels``.

    Raises:
        ConfigError: an unknown name, or ``retrieval-train`` without ``embedder`` and ``store_dir``.
    """
    choices = suite.labels if snap_to_labels and suite.labels else None
    if name == "zero-shot":
        return StudentProgram(suite.instruction, memory=None, k_examples=0, choices=choices)
    if name == "fewshot-random":
        student = StudentProgram(suite.instruction, memory=None, k_examples=0, choices=choices)
        # dspy's LabeledFewShot samples with a fixed random.Random(0); its maintainers' advice is to
        # draw on the caller's side, so the seeded sample goes in whole and is kept as is.
        demos = [
            dspy.Example(task=t.input, answer=t.answer, task_id=t.id).with_inputs("task")
            for t in sample_demos(suite.train, k, seed=seed)
        ]
        compiled: StudentProgram = dspy.LabeledFewShot(k=k).compile(student, trainset=demos, sample=False)
        return compiled
    if name == "retrieval-train":
        if embedder is None or store_dir is None:
            raise ConfigError("the retrieval-train baseline needs an embedder and a store directory")
        store = train_store(suite, embedder=embedder, store_dir=store_dir)
        return StudentProgram(
            suite.instruction, memory=store, k_examples=k, k_strategies=0, choices=choices, scope=suite.name
        )
    raise ConfigError(f"unknown baseline {name!r}; choose one of {', '.join(BASELINES)}")
