"""The ``vllm`` backend: a vLLM server a role names, whose LoRA adapters are loaded at runtime.

Attaching works as for ``openai``. Adapters go through vLLM's runtime LoRA API (``POST
/v1/load_lora_adapter`` and ``/v1/unload_lora_adapter``), which the server offers only when started
with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True``; a request then picks an adapter by
naming it as its ``model``, and requests naming the base model stay on the base weights.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from tutelage.backends import AdapterRoute
from tutelage.backends.openai import OpenAIBackend
from tutelage.errors import EndpointError

__all__ = ["VLLMAdapterHost", "VLLMBackend"]

TIMEOUT = 120.0  # seconds: loading an adapter reads its weights


class VLLMBackend(OpenAIBackend):
    """Attach to each role's vLLM ``api_base``; serve trained LoRA adapters on the student's."""

    def adapter_host(self, role: str) -> VLLMAdapterHost:
        """Serve adapters on ``role``'s vLLM server (valid inside ``open``)."""
        return VLLMAdapterHost(self._bases[role], role=role, api_key=self._keys[role])


def _detail(response: httpx.Response) -> str:
    """vLLM's error ``message`` (or OpenAI's ``error.message``, FastAPI's ``detail``), else the text."""
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:200]
    if not isinstance(body, dict):
        return ""
    error = body.get("error")
    found = error.get("message") if isinstance(error, dict) else body.get("message") or body.get("detail")
    return " ".join(str(found or "").split())[:300]


class VLLMAdapterHost:
    """LoRA adapters (PEFT folders the vLLM server can read) loaded into a running vLLM server.

    An adapter without local weights (``path`` None) is one the server already serves by name.
    """

    def __init__(self, api_base: str, *, role: str = "student", api_key: str = "not-needed") -> None:
        self.api_base = api_base.rstrip("/")  # ``.../v1``
        self.role = role
        self._headers = {"Authorization": f"Bearer {api_key}"}

    def _post(self, route: str, body: dict[str, Any]) -> httpx.Response:
        where = f"{self.role} endpoint {self.api_base}"
        try:
            return httpx.post(f"{self.api_base}/{route}", json=body, headers=self._headers, timeout=TIMEOUT)
        except httpx.ConnectError:
            raise EndpointError(f"{where} refused the connection") from None
        except httpx.TimeoutException:
            raise EndpointError(f"{where} did not answer {route} within {TIMEOUT:.0f}s") from None
        except httpx.HTTPError as exc:
            raise EndpointError(f"{where} failed on {route}: {exc.__class__.__name__}") from None

    def _loaded_from(self, name: str) -> str | None:
        """The folder vLLM loaded adapter ``name`` from (its ``root`` in ``GET /models``), if it says."""
        try:
            cards = httpx.get(f"{self.api_base}/models", headers=self._headers, timeout=TIMEOUT).json()[
                "data"
            ]
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            return None
        return next((str(c.get("root")) for c in cards if isinstance(c, dict) and c.get("id") == name), None)

    def serve(self, adapter: Any) -> AdapterRoute:
        if adapter.path is None:
            return AdapterRoute(model=adapter.name)
        path = os.path.abspath(adapter.path)
        body = {"lora_name": adapter.name, "lora_path": path}
        response = self._post("load_lora_adapter", body)
        if response.status_code == 400 and "already been loaded" in _detail(response):
            root = self._loaded_from(adapter.name)
            if root is None or root == path:
                return AdapterRoute(model=adapter.name)
            self.unload(adapter)  # the name now stands for other weights: load them instead
            response = self._post("load_lora_adapter", body)
        if response.status_code >= 400:
            rank = adapter.meta.get("rank") if isinstance(adapter.meta, dict) else None
            raise EndpointError(
                f"{self.role} endpoint {self.api_base} refused to load LoRA adapter {adapter.name!r} from "
                f"{path} (HTTP {response.status_code}: {_detail(response) or 'no detail'}); check that it "
                f"runs `vllm serve --enable-lora --max-lora-rank {rank or 'N'}` with "
                "VLLM_ALLOW_RUNTIME_LORA_UPDATING=True and can read that folder"
            )
        return AdapterRoute(model=adapter.name)

    def unload(self, adapter: Any) -> None:
        if adapter.path is None:
            return
        response = self._post("unload_lora_adapter", {"lora_name": adapter.name})
        detail = _detail(response)
        if response.status_code < 400 or response.status_code == 404 or "cannot be found" in detail:
            return  # unloaded now, or it was not loaded: either way it no longer answers
        raise EndpointError(
            f"{self.role} endpoint {self.api_base} refused to unload LoRA adapter {adapter.name!r} "
            f"(HTTP {response.status_code}: {detail or 'no detail'})"
        )
