"""The lesson memory's settings: store, admission, retrieval and curation."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from tutelage.config._base import _Frozen
from tutelage.config._roles import EmbedderConfig


class CurateConfig(_Frozen):
    """Curation after each round: retire bad records, merge near-duplicates, enforce a budget per scope."""

    retire_min_hurt: int = Field(3, ge=1)
    retire_hurt_share: float = Field(0.75, gt=0.0, le=1.0)
    merge_threshold: float | None = Field(0.95, gt=0.0, le=1.0)
    max_active: int | None = Field(None, ge=1)
    max_tokens: int | None = Field(None, ge=1)


class MemoryConfig(_Frozen):
    """The lesson store, how lessons are admitted and curated, and what the student sees.

    ``verify`` (what a kept lesson has shown; every check uses the memory as the round's attempts saw
    it, with the lessons made from the task being tried hidden, so no check is a copy test):

    - ``off``: nothing; every candidate is activated.
    - ``source``: a strategy fixes the failure it was written for; an example (gold, worked or
      synthetic, which carries its source's answer, so re-asking the source would test copying) does
      not make the ``probe_size`` most similar other train items of the round worse (transfer).
    - ``probe``: as ``source``, and a strategy must also not make those similar items worse.

    ``synthetic``: synthetic examples the teacher writes per failure: new inputs near the confusion
    with the failure's answer (suites whose replies are answers, not reasoning; for a label suite,
    one naming another label than the gold one is dropped). ``worked``: ask for a worked solution
    of each failure (suites whose replies are reasoning); kept only when it reaches the gold answer.

    ``examples``: which attempted train items become gold-labelled example lessons. ``attempted``
    (default) stores every item of the batch, so intents the student already answers get examples
    too; ``failed`` stores only the failures the teacher diagnosed (a smaller memory). Measured on
    Banking77 with ``bench/coverage.py`` (k-NN label vote of 100 test items): a failures-only memory
    of 880 items 77/100, all 2,400 items the same rounds attempted 89/100, the whole train 92/100.

    ``trajectories``: a solved item whose attempt used a tool (an agent student) is stored as a worked
    example whose solution is the agent's own steps (its actions, the tools' results, its answer), as
    ExpeL keeps successful trajectories; off, it is a plain gold example like any other.
    """

    embedder: EmbedderConfig = EmbedderConfig()
    # The LessonStore implementation (``tutelage.memory.store.STORES``): ``chroma`` (embedded, or the
    # server at ``url``) or ``jsonl`` (in memory, saved as one JSONL file; exact search, small memories).
    store: str = Field("chroma", min_length=1)
    url: str | None = None
    # Chroma's own rule: 3-512 characters of [a-zA-Z0-9._-], alphanumeric at both ends, no "..".
    collection: str = Field(
        "lessons", min_length=3, max_length=512, pattern=r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?$"
    )
    # On a Chroma server, each run's lessons live in ``<collection>-<namespace>``. Left empty, a new run
    # gets a namespace of its own (its name and a random suffix, kept in the run's config.yaml), so
    # runs sharing a server never see or change each other's lessons; set it to share on purpose.
    namespace: str | None = Field(
        None, min_length=1, max_length=200, pattern=r"^[a-zA-Z0-9](?:[a-zA-Z0-9._-]*[a-zA-Z0-9])?$"
    )
    k_examples: int = Field(4, ge=0, le=64)
    k_strategies: int = Field(0, ge=0, le=16)
    mmr: float | None = Field(None, ge=0.0, le=1.0)
    token_budget: int | None = Field(None, ge=1)
    verify: Literal["off", "source", "probe"] = "off"
    examples: Literal["attempted", "failed"] = "attempted"
    trajectories: bool = True
    synthetic: int = Field(2, ge=0, le=8)
    worked: bool = True
    probe_size: int = Field(3, ge=1, le=32)
    leakage_ngram: int = Field(8, ge=1, le=64)
    leakage_threshold: float = Field(0.5, gt=0.0, le=1.0)
    curate: CurateConfig = CurateConfig()

    @field_validator("collection", "namespace")
    @classmethod
    def _no_double_dot(cls, value: str | None) -> str | None:
        if value is not None and ".." in value:
            raise ValueError("a collection name may not contain '..'")
        return value

    @model_validator(mode="after")
    def _name_fits(self) -> MemoryConfig:
        if len(self.collection_name) > 512:
            raise ValueError("memory.collection and memory.namespace together exceed 512 characters")
        return self

    @property
    def collection_name(self) -> str:
        """The Chroma collection this memory lives in: ``collection``, then ``-namespace`` if set."""
        return self.collection if self.namespace is None else f"{self.collection}-{self.namespace}"

    @field_validator("verify", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        # YAML 1.1 reads a bare `off` as false; `verify: off` must still mean "off".
        return "off" if value is False else value
