"""Run configuration: YAML file -> one frozen pydantic model, with `--set a.b=c` overrides.

Unknown keys fail loudly (``extra="forbid"``) naming the key and the file.

Example:
    >>> from tutelage.config import load_config
    >>> cfg = load_config(None, ["loop.rounds=2"])
    >>> cfg.loop.rounds
    2
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from tutelage.config._base import _Frozen
from tutelage.config._loop import (
    OWN_AGENT_OPTIMIZERS,
    WEIGHT_OPTIMIZERS,
    AcceptConfig,
    AgentConfig,
    BudgetConfig,
    GepaConfig,
    GuardConfig,
    LoopConfig,
    MiproConfig,
    Optimizer,
    Policy,
)
from tutelage.config._memory import CurateConfig, MemoryConfig
from tutelage.config._roles import EmbedderConfig, RoleConfig, ServeConfig
from tutelage.config._suite import FieldMap, HFConfig, SuiteConfig, SuiteName
from tutelage.config._train import LORA_MODULES, CheckpointConfig, TrackingConfig, TrainConfig, TrainData
from tutelage.errors import ConfigError

__all__ = [
    "AcceptConfig",
    "AgentConfig",
    "BudgetConfig",
    "CurateConfig",
    "EmbedderConfig",
    "FieldMap",
    "GepaConfig",
    "GuardConfig",
    "HFConfig",
    "LoopConfig",
    "MemoryConfig",
    "MiproConfig",
    "Policy",
    "RoleConfig",
    "ServeConfig",
    "RunConfig",
    "SuiteConfig",
    "TrackingConfig",
    "default_config_path",
    "load_config",
    "LORA_MODULES",
    "OWN_AGENT_OPTIMIZERS",
    "WEIGHT_OPTIMIZERS",
    "CheckpointConfig",
    "Optimizer",
    "SuiteName",
    "TrainConfig",
    "TrainData",
]


class RunConfig(_Frozen):
    """Everything one run needs; written resolved into its run directory."""

    name: str = Field("quickstart", min_length=1, max_length=200)
    runs_dir: str = Field("runs", min_length=1)
    seed: int = 0
    student: RoleConfig = RoleConfig(max_tokens=24)
    teacher: RoleConfig = RoleConfig(max_tokens=160)
    memory: MemoryConfig = MemoryConfig()
    suite: SuiteConfig = SuiteConfig()
    loop: LoopConfig = LoopConfig()
    guards: GuardConfig = GuardConfig()
    agent: AgentConfig = AgentConfig()
    tracking: TrackingConfig = TrackingConfig()
    checkpoints: CheckpointConfig = CheckpointConfig()
    train: TrainConfig = TrainConfig()

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        # The run directory is runs_dir/name: a name is one folder name, never a path.
        if value in (".", "..") or any(c in value for c in "/\\\x00") or not value.isprintable():
            raise ValueError(
                f"must be a plain folder name (no '/', '\\', '..' or control characters): {value!r}"
            )
        return value

    @field_validator("teacher", mode="before")
    @classmethod
    def _teacher_off(cls, value: object) -> object:
        # `teacher: off` (YAML reads it as false) runs without a teacher: gold examples only.
        if value is False or value in ("off", "none"):
            return {"provider": "none"}
        return value

    @model_validator(mode="after")
    def _teacher_needed(self) -> RunConfig:
        if self.teacher.provider == "none":
            if self.loop.optimizer in ("mipro", "gepa"):
                raise ValueError(f"loop.optimizer {self.loop.optimizer} needs a teacher (teacher is off)")
            if self.suite.metric == "judge":
                raise ValueError("suite.metric: judge grades with the teacher, and the teacher is off")
        if self.student.provider == "none":
            raise ValueError("student.provider: none is not a student; use local or openai")
        self._own_agent_fits()
        trains = any(m != "prompt" for m in self.loop.schedule) or self.loop.optimizer in WEIGHT_OPTIMIZERS
        if trains:  # weights are trained: can they be served?
            served = {"peft": ("local", "vllm"), "openai": ("openai",)}.get(self.train.trainer)
            if served is not None and self.student.provider not in served:
                raise ValueError(
                    f"train.trainer {self.train.trainer} makes adapters that student.provider "
                    f"{self.student.provider} cannot serve (use {' or '.join(served)})"
                )
        if any(m != "prompt" for m in self.loop.schedule):
            if self.loop.optimizer in WEIGHT_OPTIMIZERS:
                raise ValueError(
                    f"loop.optimizer {self.loop.optimizer} trains the weights in compile, and "
                    "loop.schedule trains them again in train_weights: keep loop.schedule: [prompt]"
                )
            if self.agent.kind == "react" and self.train.prompts == "retrieved":
                raise ValueError(
                    "train.prompts: retrieved renders the plain student's request, not agent.kind "
                    "react's tool transcript; set train.prompts: bare"
                )
        return self

    def _own_agent_fits(self) -> None:
        if self.teacher.program is not None:
            raise ValueError("teacher.program is not read: only the student can be your own agent")
        if self.student.program is None:
            return
        if self.agent.kind != "plain":
            raise ValueError(
                "student.program is your own agent; agent.kind react is tutelage's own, drop one"
            )
        if self.loop.optimizer not in OWN_AGENT_OPTIMIZERS:
            raise ValueError(
                f"loop.optimizer {self.loop.optimizer} rewrites tutelage's own prompt; a student.program "
                f"agent takes {' or '.join(OWN_AGENT_OPTIMIZERS)} (the retrieval policy search)"
            )
        if any(m != "prompt" for m in self.loop.schedule):
            raise ValueError("student.program runs its own model calls: keep loop.schedule: [prompt]")

    @property
    def teacher_on(self) -> bool:
        return self.teacher.provider != "none"

    @property
    def run_dir(self) -> Path:
        return Path(self.runs_dir) / self.name


def default_config_path() -> Path:
    """The packaged quickstart config (Banking77 subset, embedded SmolLM2, 3 rounds)."""
    return Path(str(resources.files("tutelage").joinpath("quickstart.yaml")))


def _set_dotted(data: dict[str, Any], dotted: str) -> None:
    if "=" not in dotted:
        raise ConfigError(f"override {dotted!r} must look like key.sub=value")
    key, raw = dotted.split("=", 1)
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted!r}: {part!r} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"override {dotted!r}: the value is not valid YAML ({exc.__class__.__name__})"
        ) from None


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where!r}"
    # pydantic's "Value error, " prefix says nothing; a check across keys names them itself
    msg = str(first["msg"]).removeprefix("Value error, ")
    return f"{source}: {msg}" if not first["loc"] or msg.startswith(where) else f"{source}: {where}: {msg}"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (``None``: the packaged quickstart), apply overrides, validate.

    Raises:
        ConfigError: the file is missing, is not YAML, or has an unknown key or a bad value.
    """
    source = Path(path) if path is not None else default_config_path()
    if not source.is_file():
        raise ConfigError(f"config file not found: {source}")
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {source}: {exc.strerror or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    for item in overrides or []:
        _set_dotted(data, item)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, _culprit(exc, source, overrides or []))) from None


def _culprit(err: ValidationError, source: Path, overrides: list[str]) -> str:
    """Where a bad value came from: the ``--set`` that wrote its key (the last one wins), else the file."""
    first = err.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    for item in reversed(overrides):
        key = item.split("=", 1)[0].strip()
        if loc and (loc == key or loc.startswith(key + ".") or key.startswith(loc + ".")):
            return f"{source} with --set {item}"
        if not loc and first["type"] == "value_error" and key in str(first["msg"]):
            return f"{source} with --set {item}"  # a check across sections names the keys it read
    return str(source)
