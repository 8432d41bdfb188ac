"""The weights stage's seam: a ``Trainer`` turns a round's fine-tune rows into an ``Adapter``.

The data sets exist today (``tutelage.train.datasets`` writes each round's ``sft.jsonl`` and
``preference.jsonl``); ``TRAINERS`` is the registry trainers fill, one file each (a LoRA trainer on
transformers + peft, the OpenAI fine-tuning API). None ships yet; asking for a name that is not
registered is a config error, never a silent no-op.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tutelage.errors import ConfigError

__all__ = ["TRAINERS", "Adapter", "Trainer", "trainer"]

# name -> "module:Class"; a Trainer class is built with no arguments and configured per call
TRAINERS: dict[str, str] = {}


@dataclass(frozen=True)
class Adapter:
    """What training produced: a name the serving backend addresses, and where its weights are."""

    name: str
    base: str  # the model it was trained on
    path: Path | None  # local weights (a PEFT folder, a GGUF adapter); None for a hosted model
    trainer: str
    meta: dict[str, Any] = field(default_factory=dict)


class Trainer(Protocol):
    """Train ``base`` on the rows in ``data`` (chat-format JSONL), writing under ``out_dir``."""

    def train(
        self, base: str, *, data: Path, out_dir: Path, seed: int, options: dict[str, Any]
    ) -> Adapter: ...


def trainer(name: str) -> Trainer:
    """The trainer registered as ``name``."""
    if name not in TRAINERS:
        known = ", ".join(sorted(TRAINERS)) or "none registered yet"
        raise ConfigError(f"trainer {name!r} is not registered (known: {known})")
    module, _, attr = TRAINERS[name].partition(":")
    cls = getattr(importlib.import_module(module), attr)
    built: Trainer = cls()
    return built
