"""Your own suite from a JSONL or CSV file, with a column mapping (``suite.fields``) and seeded splits.

Every row needs a non-empty input and answer (else a ``DataError`` naming the file and line). With a
``split`` column, its ``train``/``dev``/``test`` values are honoured (``validation`` counts as dev);
dev is carved from train with the seed when no row says ``dev``, and test from train (below) when no
row says ``test``. Without one, the rows are shuffled with the seed: the first ``test_size`` (a fifth
when ``test_size`` is ``None``) are the held-out test, then dev, then train. Graded by ``label``
(normalised exact match) unless ``suite.metric`` says otherwise.

With ``suite.labels``, every answer must be one of them; with ``metric: f1`` too (multi-label), an
answer is a set of them: a JSON list (kept as ``"a, b"``; ``[]`` is ``none``) or text separated by
commas or semicolons, and the instruction asks for every label that applies.

Example:
    >>> cfg = SuiteConfig(name="file", path="qa.csv", fields={"input": "q", "answer": "a"})  # doctest: +SKIP
    >>> load(cfg).test[0].input  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tutelage.config import SuiteConfig
from tutelage.errors import ConfigError, DataError
from tutelage.evals.graders.multilabel import parse_labels
from tutelage.evals.metrics import normalize_label
from tutelage.evals.suites._base import Suite, Task
from tutelage.evals.suites._common import GENERIC_DEMO, grader_for, read_jsonl
from tutelage.evals.suites._split import cap, dev_from, drop_leaks, shuffled

__all__ = ["assemble", "load", "rows_to_tasks"]

Row = tuple[int, Mapping[str, Any]]
NONE = "none"
SPLITS = {"train": "train", "dev": "dev", "validation": "dev", "valid": "dev", "val": "dev", "test": "test"}


def _cell(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    return "" if value is None else str(value).strip()


def _multi(cfg: SuiteConfig) -> bool:
    return cfg.metric == "f1"


def _answer(row: Mapping[str, Any], key: str, multi: bool) -> str:
    value = row.get(key)
    if multi and isinstance(value, list):
        return ", ".join(str(v).strip() for v in value) or NONE
    return _cell(row, key)


def _check_labels(answer: str, labels: set[str], multi: bool, where: str) -> None:
    if multi:
        outside = ", ".join(sorted(parse_labels(answer) - labels))
        if outside:
            raise DataError(f"{where}: answer {answer!r} has labels not in suite.labels: {outside}")
    elif normalize_label(answer) not in labels:
        parts = parse_labels(answer)
        hint = " (a set of labels? set suite.metric: f1)" if len(parts) > 1 and parts <= labels else ""
        raise DataError(f"{where}: answer {answer!r} is not one of suite.labels{hint}")


def rows_to_tasks(
    rows: Iterable[Row], cfg: SuiteConfig, source: str, *, id_prefix: str = "row"
) -> dict[str, list[Task]]:
    """Tasks per split (``train``/``dev``/``test``; all ``train`` without a split column) from raw rows.

    Without an id column, ids are ``<id_prefix>-<row index>``.
    """
    fields, labels = cfg.fields, {normalize_label(x) for x in cfg.labels or ()}
    multi = _multi(cfg)
    out: dict[str, list[Task]] = {"train": [], "dev": [], "test": []}
    ids: set[str] = set()
    for n, (line, row) in enumerate(rows):
        where = f"{source}:{line}"
        for key in (fields.input, fields.answer):
            if not _cell(row, key):
                raise DataError(f"{where}: missing or empty {key!r} (suite.fields maps input and answer)")
        answer = _answer(row, fields.answer, multi)
        if labels:
            _check_labels(answer, labels, multi, where)
        task_id = _cell(row, fields.id) if fields.id else f"{id_prefix}-{n}"
        if not task_id or task_id in ids:
            raise DataError(f"{where}: {'duplicate' if task_id else 'empty'} id {task_id!r} in {fields.id!r}")
        ids.add(task_id)
        split = "train"
        if fields.split:
            raw = _cell(row, fields.split).lower()
            if raw not in SPLITS:
                raise DataError(f"{where}: split {raw!r} in {fields.split!r} is not train, dev or test")
            split = SPLITS[raw]
        tags = {key: _cell(row, key) for key in fields.tags if _cell(row, key)}
        out[split].append(Task(task_id, _cell(row, fields.input), answer, tags))
    return out


def assemble(cfg: SuiteConfig, name: str, splits: Mapping[str, list[Task]]) -> Suite:
    """A suite from tasks per split, carving the missing dev and test splits with the seed."""
    pool, test_all = list(splits.get("train", [])), list(splits.get("test", []))
    if test_all:
        test = cap(shuffled(test_all, cfg.seed + 1), cfg.test_size)
        pool = shuffled(pool, cfg.seed)
    else:
        pool = shuffled(pool, cfg.seed)
        n_test = cfg.test_size if cfg.test_size is not None else max(1, len(pool) // 5)
        if n_test >= len(pool):
            raise ConfigError(
                f"suite {name!r}: test_size {n_test} leaves no train items out of {len(pool)}; "
                "set suite.test_size, or mark rows with a split column"
            )
        test_all, pool = pool[:n_test], pool[n_test:]
        test = test_all
    pool = drop_leaks(pool, test_all)
    if splits.get("dev"):
        train, dev = (
            cap(pool, cfg.train_size),
            cap(shuffled(drop_leaks(splits["dev"], test_all), cfg.seed), cfg.dev_size),
        )
    else:
        train, dev = dev_from(pool, cfg)
    if not train and not test:
        raise DataError(f"suite {name!r} has no items")
    labels = list(cfg.labels or [])
    multi = bool(labels) and _multi(cfg)
    grader = grader_for(cfg, "f1", labels=labels) if multi else grader_for(cfg, "label")
    if multi:
        listed = f" Choose from: {', '.join(labels)}." if cfg.show_labels else ""
        instruction = (
            f"List every label that applies to the input.{listed} "
            f"Reply with the labels separated by commas, or '{NONE}' if none applies."
        )
        # Snapping a reply to one label would destroy a set: the labels travel with the f1 grader.
        labels = []
    elif labels:
        listed = f" into one of these labels: {', '.join(labels)}." if cfg.show_labels else " into its label."
        instruction = f"Classify the input{listed} Reply with the label only."
    else:
        instruction = "Answer the input. Reply with the answer only."
    return Suite(
        name,
        cfg.instruction or instruction,
        train,
        dev,
        test,
        grader,
        labels,
        GENERIC_DEMO,
        held_out=test_all,
        slice_keys=cfg.fields.tags,
    )


def _read_csv(path: Path, cfg: SuiteConfig) -> list[Row]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [k for k in (cfg.fields.input, cfg.fields.answer) if k not in header]
            if missing:
                raise DataError(f"{path}:1: no column {', '.join(map(repr, missing))} in the header {header}")
            return [(reader.line_num, row) for row in reader]
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or exc}") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not valid CSV ({exc})") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start} of a read block)") from None


def load(cfg: SuiteConfig) -> Suite:
    """A suite from ``suite.path`` (``.jsonl``: one JSON object a line; ``.csv``: a header row)."""
    if not cfg.path:
        raise ConfigError("a file suite needs suite.path (a .jsonl or .csv file)")
    path = Path(cfg.path).expanduser()
    if not path.is_file():
        raise DataError(f"suite file not found: {path}")
    rows = _read_csv(path, cfg) if path.suffix.lower() == ".csv" else read_jsonl(path)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem) or "file"
    return assemble(cfg, name, rows_to_tasks(rows, cfg, str(path)))
