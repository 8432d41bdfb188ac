"""A suite from a Hugging Face dataset (``suite.hf``), mapped by ``suite.fields`` like a file suite.

``datasets`` is an optional dependency (``pip install datasets`` or ``tutelage[hf]``), imported only
here and only when an ``hf`` suite loads. Each configured split is one
``datasets.load_dataset(hf.path, hf.name, split=...)``; a missing dev or test split is carved from
train with the seed, as for file suites.

Example:
    >>> cfg = SuiteConfig(name="hf", hf={"path": "openai/gsm8k", "name": "main"},
    ...                   fields={"input": "question"}, metric="gsm8k")  # doctest: +SKIP
    >>> load(cfg)  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from tutelage.config import SuiteConfig
from tutelage.errors import ConfigError, DataError
from tutelage.evals.suites._base import Suite
from tutelage.evals.suites.files import Row, assemble, rows_to_tasks

__all__ = ["load"]


def _datasets() -> Any:
    try:
        return importlib.import_module("datasets")
    except ImportError:
        raise ConfigError(
            "suite name 'hf' needs the Hugging Face datasets package: pip install datasets "
            "(or pip install 'tutelage[hf]')"
        ) from None


def _rows(data: Iterable[Mapping[str, Any]]) -> list[Row]:
    return [(n, row) for n, row in enumerate(data, start=1)]


def load(cfg: SuiteConfig) -> Suite:
    """Load ``suite.hf.path`` (config ``hf.name``) and map its columns with ``suite.fields``."""
    hf = cfg.hf
    if not hf.path:
        raise ConfigError("an hf suite needs suite.hf.path (a Hugging Face dataset name)")
    if cfg.fields.split:
        raise ConfigError("suite.fields.split is for file suites; an hf suite takes its splits from suite.hf")
    datasets = _datasets()
    wanted = {"train": hf.train_split, "dev": hf.dev_split, "test": hf.test_split}
    splits = {}
    for ours, theirs in wanted.items():
        if theirs is None:
            continue
        try:
            data = datasets.load_dataset(hf.path, hf.name, split=theirs, revision=hf.revision)
        except Exception as exc:  # datasets raises many types (network, missing config, missing split)
            raise DataError(
                f"cannot load {hf.path} ({hf.name or 'default'}) split {theirs!r}: {exc}"
            ) from None
        splits[ours] = rows_to_tasks(_rows(data), cfg, f"{hf.path} split {theirs} row", id_prefix=ours)[
            "train"
        ]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", hf.path)
    return assemble(cfg, name, splits)
