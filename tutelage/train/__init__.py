"""The weights stage's seam: a ``Trainer`` turns training rows into an ``Adapter``.

``TRAINERS`` maps a name to one file each: ``peft`` (LoRA with transformers + peft + TRL, on CPU or
GPU) and ``openai`` (the OpenAI fine-tuning API). The rows are TRL's conversational prompt-completion
format, one JSON object a line: ``{"prompt": [system, user], "completion": [assistant]}`` (the loop
builds them from the fine-tune sets ``tutelage.train.datasets`` writes). Asking for a name that is not
registered is a config error, never a silent no-op.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tutelage.errors import ConfigError

__all__ = ["TRAINERS", "Adapter", "Progress", "Trainer", "trainer"]

# name -> "module:Class"; a Trainer class is built with no arguments and configured per call
TRAINERS: dict[str, str] = {
    "peft": "tutelage.train.peft:PeftTrainer",
    "openai": "tutelage.train.openai:OpenAITrainer",
}

# progress(step, total_steps, message): called as training advances (steps done of the planned total)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Adapter:
    """What training produced: a name the serving backend addresses, and where its weights are.

    ``meta`` holds what serving and reports need: ``gguf`` (llama.cpp's copy of a LoRA adapter),
    ``sha256`` of the weights, ``base_sha256``, and the training cost (``seconds``, ``examples``,
    ``tokens``, ``steps``, ``peak_rss_mb``).
    """

    name: str
    base: str  # the model it was trained on (a GGUF file, an HF folder or id, a hosted model name)
    path: Path | None  # local weights (a PEFT folder); None for a hosted model
    trainer: str
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base,
            "path": str(self.path) if self.path is not None else None,
            "trainer": self.trainer,
            "meta": self.meta,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Adapter:
        path = data.get("path")
        return cls(data["name"], data["base"], Path(path) if path else None, data["trainer"], data["meta"])


class Trainer(Protocol):
    """Train ``base`` on the prompt-completion rows in ``data``, writing under ``out_dir``.

    ``options`` are the trainer's settings (``train.*`` of the run config, plus ``name``: what to call
    the adapter). A call whose ``out_dir`` holds a killed earlier call's checkpoints resumes from them.
    """

    def train(
        self,
        base: str,
        *,
        data: Path,
        out_dir: Path,
        seed: int,
        options: dict[str, Any],
        progress: Progress | None = None,
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
