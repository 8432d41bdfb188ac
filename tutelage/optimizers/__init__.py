"""Optimizers: each compiles the student program used next round; one file each, chosen in config.

``build_optimizer(name)`` imports only the chosen one (``mipro`` needs optuna, ``gepa`` the gepa
package), so a run never pays for optimizers it does not use.
"""

from __future__ import annotations

import importlib

from tutelage.errors import ConfigError
from tutelage.optimizers.base import CompileContext, Compiled, Optimizer

__all__ = ["OPTIMIZERS", "CompileContext", "Compiled", "Optimizer", "build_optimizer"]

OPTIMIZERS = {
    "fewshot": "tutelage.optimizers.fewshot:FewShot",
    "mipro": "tutelage.optimizers.mipro:Mipro",
    "gepa": "tutelage.optimizers.gepa:Gepa",
    "bootstrap": "tutelage.optimizers.bootstrap:Bootstrap",
    "finetune": "tutelage.optimizers.finetune:BootstrapFinetune",
    "better_together": "tutelage.optimizers.finetune:BetterTogether",
    "none": "tutelage.optimizers.none:Unchanged",
}


def build_optimizer(name: str) -> Optimizer:
    """The optimizer called ``name`` (a key of ``OPTIMIZERS``)."""
    if name not in OPTIMIZERS:
        raise ConfigError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZERS)}")
    module, cls = OPTIMIZERS[name].split(":")
    try:
        factory = getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise ConfigError(f"optimizer {name!r} needs a package that is not installed: {exc.name}") from None
    optimizer: Optimizer = factory()
    return optimizer
