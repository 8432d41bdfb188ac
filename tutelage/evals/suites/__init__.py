"""Task suites: one loader per benchmark, each giving seeded train/dev/test splits and a grader.

A loader is a function ``load(cfg: SuiteConfig) -> Suite`` registered in ``SUITES`` under the name
``suite.name`` selects. Every loader keeps dev apart from test, keeps test items (by id and by
normalised text) out of train and dev, lists the whole test side in ``Suite.held_out`` for the
leakage guard, and gives the teacher a DIAGNOSIS:/STRATEGY: format demo. The rule each uses to split
is in its module docstring.

Example:
    >>> from tutelage.config import SuiteConfig
    >>> suite = load_suite(SuiteConfig(dev_size=40, test_size=100))
    >>> len(suite.dev), len(suite.test), suite.test[0].id.startswith("test-")
    (40, 100, True)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from tutelage.config import SuiteConfig
from tutelage.errors import ConfigError
from tutelage.evals.graders.judge import JudgeGrader
from tutelage.evals.suites import banking77, bbh, files, gsm8k, hf, math500, nlupp
from tutelage.evals.suites._base import Suite, Tags, Task

__all__ = ["SUITES", "Loader", "Suite", "Tags", "Task", "bind_judge", "load_suite"]

Loader = Callable[[SuiteConfig], Suite]

SUITES: Mapping[str, Loader] = MappingProxyType(
    {
        "banking77": banking77.load,
        "gsm8k": gsm8k.load,
        "bbh": bbh.load,
        "math500": math500.load,
        "nlupp": nlupp.load,
        "file": files.load,
        "hf": hf.load,
    }
)


def load_suite(cfg: SuiteConfig) -> Suite:
    """Load the suite ``cfg.name`` names, with its seeded splits.

    Raises:
        DataError: the suite's data is missing or malformed (the message names the file and line).
        ConfigError: the config asks for something the suite cannot give (an unknown BBH task, a
            grader that does not exist, a dev split larger than the train pool).
    """
    loader = SUITES.get(cfg.name)
    if loader is None:
        raise ConfigError(f"unknown suite {cfg.name!r}; choose one of {', '.join(SUITES)}")
    return loader(cfg)


def bind_judge(suite: Suite, lm: Any) -> Suite:
    """``suite`` with its judge grader (``suite.metric: judge``) bound to ``lm``, the teacher's LM.

    Other suites come back as they are.
    """
    metric = suite.metric
    if isinstance(metric, JudgeGrader) and metric.lm is None:
        return dataclasses.replace(suite, metric=metric.bind(lm))
    return suite
