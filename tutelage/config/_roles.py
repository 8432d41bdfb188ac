"""Model roles (student, teacher), how a managed vLLM server is started, and the embedder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from tutelage.config._base import _Frozen


class ServeConfig(_Frozen):
    """How tutelage starts ``vllm serve MODEL`` for a ``vllm`` role that names no ``api_base``.

    The server listens on 127.0.0.1 (``port``; 0: a free one) with runtime LoRA loading on, and is
    stopped when the run ends, fails, is interrupted, or its process is killed. ``args`` are passed to
    ``vllm serve`` as they are (``["--dtype", "bfloat16"]``).
    """

    port: int = Field(0, ge=0, le=65535)
    gpu_memory_utilization: float = Field(0.85, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=16)
    max_lora_rank: int = Field(16, ge=1, le=512)
    max_loras: int = Field(4, ge=1, le=64)
    args: tuple[str, ...] = ()
    start_timeout: float = Field(900.0, gt=0, description="seconds to wait for /health (loading weights)")


class RoleConfig(_Frozen):
    """One model role (student or teacher).

    ``provider`` names a model backend (``tutelage.backends.BACKENDS``): ``local`` starts llama.cpp's
    server on the GGUF file at ``model_path`` (default: the packaged SmolLM2-135M); ``openai`` talks
    to any OpenAI-compatible endpoint (vLLM, llama.cpp, OpenAI) at ``api_base``. ``none`` (the
    teacher only, also written ``teacher: off``) runs without a teacher: the memory holds gold
    examples only. An unknown provider fails when the endpoints are opened, naming the known ones.
    ``vllm`` attaches to the vLLM server at ``api_base``, or, with no ``api_base``, starts ``vllm
    serve MODEL`` itself (``serve``).

    ``api_base`` may be a list of replicas serving the same model: requests are spread over them
    (LiteLLM's Router), a replica that stops answering is taken out and its requests retried on the
    others, and each ledger row names the replica that answered. ``constrain_labels``: on a suite with
    a closed label set, ask an endpoint that can (vLLM) to reply with exactly one label (structured
    outputs) instead of reading a free reply as the nearest label.
    """

    provider: str = Field("local", min_length=1)
    model: str = Field("smollm2-135m-instruct", min_length=1)
    model_path: str | None = Field(
        None,
        min_length=1,
        description="local provider: the GGUF file to serve; default the packaged SmolLM2-135M",
    )
    api_base: str | tuple[str, ...] | None = None
    api_key_env: str | None = None
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(64, ge=1, le=32768)
    stop: tuple[str, ...] = ()
    timeout: float = Field(60.0, gt=0)
    concurrency: int = Field(4, ge=1, le=256)
    retries: int = Field(2, ge=0, le=10)
    price_in: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="USD per million prompt tokens")
    price_out: float = Field(
        0.0, ge=0.0, allow_inf_nan=False, description="USD per million completion tokens"
    )
    program: str | None = Field(
        None,
        min_length=3,
        description="student only: your agent as an import path pkg.mod:attr (a DSPy module, a "
        "LangGraph graph or fn(task, lessons)); it calls this role's model through tutelage.agent_lm()",
    )
    serve: ServeConfig = ServeConfig()
    constrain_labels: bool = True

    @field_validator("api_base")
    @classmethod
    def _replicas(cls, value: str | tuple[str, ...] | None) -> str | tuple[str, ...] | None:
        if isinstance(value, tuple):
            if not value or not all(isinstance(v, str) and v.strip() for v in value):
                raise ValueError("a list of replicas needs at least one non-empty URL")
            if len(set(value)) != len(value):
                raise ValueError("the same replica is listed twice")
            return value[0] if len(value) == 1 else value
        return value

    @property
    def replicas(self) -> tuple[str, ...]:
        """Every ``api_base`` this role names (empty: none)."""
        if self.api_base is None:
            return ()
        return (self.api_base,) if isinstance(self.api_base, str) else self.api_base


class EmbedderConfig(_Frozen):
    """Where lesson embeddings come from: the packaged MiniLM, or an OpenAI-compatible /v1/embeddings."""

    provider: Literal["local", "openai"] = "local"
    model: str = "all-MiniLM-L6-v2"
    api_base: str | None = None
    api_key_env: str | None = None
    timeout: float = Field(30.0, gt=0)
