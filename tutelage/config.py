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
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tutelage.errors import ConfigError

__all__ = [
    "CurateConfig",
    "EmbedderConfig",
    "LoopConfig",
    "MemoryConfig",
    "RoleConfig",
    "RunConfig",
    "SuiteConfig",
    "default_config_path",
    "load_config",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RoleConfig(_Frozen):
    """One model role (student or teacher).

    ``provider: local`` starts the embedded llama.cpp server with SmolLM2; ``openai`` talks to any
    OpenAI-compatible endpoint (vLLM, llama.cpp, OpenAI) at ``api_base``.
    """

    provider: Literal["local", "openai"] = "local"
    model: str = "smollm2-135m-instruct"
    api_base: str | None = None
    api_key_env: str | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(64, ge=1, le=32768)
    stop: tuple[str, ...] = ()
    timeout: float = Field(60.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    retries: int = Field(2, ge=0, le=10)


class EmbedderConfig(_Frozen):
    """Where lesson embeddings come from: the packaged MiniLM, or an OpenAI-compatible /v1/embeddings."""

    provider: Literal["local", "openai"] = "local"
    model: str = "all-MiniLM-L6-v2"
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float = Field(30.0, gt=0)


class CurateConfig(_Frozen):
    """Curation after each round: retire bad records, merge near-duplicates, enforce a budget per scope."""

    retire_min_hurt: int = Field(3, ge=1)
    retire_hurt_share: float = Field(0.75, gt=0.0, le=1.0)
    merge_threshold: float | None = Field(0.95, gt=0.0, le=1.0)
    max_active: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)


class MemoryConfig(_Frozen):
    """The lesson store, how lessons are admitted and curated, and what the student sees.

    ``verify``: ``off`` activates every candidate; ``source`` re-attempts the failure a lesson came
    from with the lesson shown, and keeps it only if that now passes; ``probe`` also re-attempts
    ``probe_size`` similar tasks of the round's batch and keeps it only if they do not get worse.
    """

    embedder: EmbedderConfig = EmbedderConfig()
    url: str | None = None
    collection: str = Field("lessons", min_length=3)
    k_examples: int = Field(4, ge=0, le=64)
    k_strategies: int = Field(0, ge=0, le=16)
    mmr: float | None = Field(None, ge=0.0, le=1.0)
    token_budget: int | None = Field(None, ge=1)
    verify: Literal["off", "source", "probe"] = "off"
    probe_size: int = Field(3, ge=1, le=32)
    leakage_ngram: int = Field(8, ge=1, le=64)
    leakage_threshold: float = Field(0.5, gt=0.0, le=1.0)
    curate: CurateConfig = CurateConfig()

    @field_validator("verify", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` as false; `verify: off` must still mean "off".
        return "off" if value is False else value


class SuiteConfig(_Frozen):
    """A task suite and its seeded splits (sizes are caps; ``None`` keeps the whole split)."""

    name: Literal["banking77"] = "banking77"
    data_dir: str | None = None
    seed: int = 0
    train_size: int | None = None
    dev_size: int = Field(40, ge=1)
    test_size: int | None = Field(100, ge=1)
    show_labels: bool = True
    snap_to_labels: bool = True


class LoopConfig(_Frozen):
    """The round structure of a run."""

    rounds: int = Field(3, ge=1, le=1000)
    batch_size: int = Field(100, ge=1)
    optimizer: Literal["retrieval-search", "bootstrap", "none"] = "retrieval-search"
    search_k: tuple[int, ...] = (2, 4, 8)
    search_size: int = Field(20, ge=1)


class RunConfig(_Frozen):
    """Everything one run needs; written resolved into its run directory."""

    name: str = "quickstart"
    runs_dir: str = "runs"
    seed: int = 0
    student: RoleConfig = RoleConfig(max_tokens=24)
    teacher: RoleConfig = RoleConfig(max_tokens=160)
    memory: MemoryConfig = MemoryConfig()
    suite: SuiteConfig = SuiteConfig()
    loop: LoopConfig = LoopConfig()

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
    node[parts[-1]] = yaml.safe_load(raw)


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "<root>"
    if first["type"] == "extra_forbidden":
        return f"{source}: unknown key {where!r}"
    return f"{source}: {where}: {first['msg']}"


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML config (``None``: the packaged quickstart), apply overrides, validate.

    Raises:
        ConfigError: the file is missing, is not YAML, or has an unknown key or a bad value.
    """
    source = Path(path) if path is not None else default_config_path()
    if not source.is_file():
        raise ConfigError(f"config file not found: {source}")
    try:
        data = yaml.safe_load(source.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    for item in overrides or []:
        _set_dotted(data, item)
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        where = f"{source} with --set {' '.join(overrides)}" if overrides else str(source)
        raise ConfigError(_describe(exc, where)) from None
