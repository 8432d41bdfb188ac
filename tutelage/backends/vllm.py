"""The ``vllm`` backend: a vLLM server a role names, or one tutelage starts; LoRA adapters load at runtime.

A role with an ``api_base`` (one URL or a list of replicas) attaches as for ``openai``. A role without
one starts ``vllm serve MODEL`` on 127.0.0.1 (``serve``: port, GPU memory fraction, maximum model
length, LoRA limits, extra arguments), waits for its ``/health``, and stops it, with every process it
started, when the run ends, fails, is interrupted or is killed (``tutelage.backends._child``).

Adapters go through vLLM's runtime LoRA API (``POST /v1/load_lora_adapter`` and
``/v1/unload_lora_adapter``), which the server offers only when started with ``--enable-lora`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` (as a started server is); a request then picks an adapter by
naming it as its ``model``, and requests naming the base model stay on the base weights.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import httpx

from tutelage import runfiles
from tutelage.backends import AdapterRoute
from tutelage.backends._lm import check_endpoint, resolve_api_key
from tutelage.backends._process import free_port, stop_process, wait_healthy
from tutelage.backends.openai import OpenAIBackend
from tutelage.config import RoleConfig
from tutelage.errors import ConfigError, EndpointError, LocalServerError

__all__ = ["VLLMAdapterHost", "VLLMBackend", "VLLMServer"]

log = logging.getLogger(__name__)

TIMEOUT = 120.0  # seconds: loading an adapter reads its weights


class VLLMServer:
    """``vllm serve MODEL`` as a child of this run, on 127.0.0.1, with runtime LoRA loading on.

    Example:
        >>> serve = ServeConfig(max_model_len=4096)
        >>> with VLLMServer("Qwen/Qwen2.5-0.5B-Instruct", serve) as server:  # doctest: +SKIP
        ...     print(server.api_base)  # http://127.0.0.1:PORT/v1
    """

    def __init__(
        self, model: str, serve: Any, *, role: str = "student", log_path: Path | None = None
    ) -> None:
        self.model, self.serve, self.role, self.log_path = model, serve, role, log_path
        self.port = serve.port
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """The ``vllm serve`` command line (``vllm`` from PATH, as the ``vllm`` extra installs it)."""
        exe = shutil.which("vllm")
        if exe is None:
            raise ConfigError(
                f"{self.role}.provider vllm with no {self.role}.api_base starts `vllm serve`, but no `vllm` "
                "command is installed: `pip install 'tutelage[vllm]'` on a GPU machine, or set "
                f"{self.role}.api_base to a running server"
            )
        s = self.serve
        cmd = [exe, "serve", self.model, "--host", "127.0.0.1", "--port", str(self.port)]
        cmd += ["--enable-lora", "--max-lora-rank", str(s.max_lora_rank), "--max-loras", str(s.max_loras)]
        cmd += ["--gpu-memory-utilization", str(s.gpu_memory_utilization)]
        if s.max_model_len is not None:
            cmd += ["--max-model-len", str(s.max_model_len)]
        return [*cmd, *s.args]

    def start(self) -> VLLMServer:
        self.port = self.port or free_port()
        watch = [sys.executable, "-m", "tutelage.backends._child", "--parent", str(os.getpid())]
        if threading.current_thread() is threading.main_thread():
            watch.append("--deathsig")  # tied by the kernel to the forking thread
        env = {**os.environ, "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}
        sink = runfiles.child_log(self.log_path) if self.log_path else subprocess.DEVNULL
        try:
            self._proc = subprocess.Popen(
                [*watch, "--", *self.command()],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # Ctrl-C reaches the run, which stops the server
            )
        finally:
            if self.log_path:
                sink.close()  # type: ignore[union-attr]
        self._wait_ready()
        log.info("vllm serve %s on %s", self.model, self.api_base)
        return self

    def _wait_ready(self) -> None:
        try:
            wait_healthy(
                self._proc,  # type: ignore[arg-type]
                f"http://127.0.0.1:{self.port}/health",
                timeout=self.serve.start_timeout,
                what=f"`vllm serve {self.model}`",
                log_path=self.log_path,
                interval=0.5,
            )
        except LocalServerError:
            self.stop()
            raise

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc, grace=40.0)  # the watcher stops vLLM's whole process group, then exits

    def __enter__(self) -> VLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class VLLMBackend(OpenAIBackend):
    """Attach to each role's vLLM ``api_base``, or start ``vllm serve`` for a role that names none;
    serve trained LoRA adapters on the student's."""

    starts_servers: ClassVar[bool] = True  # opened after the attach-only backends: a typo fails fast

    @contextlib.contextmanager
    def open(
        self, *, roles: Mapping[str, RoleConfig], log_dir: Path | None = None
    ) -> Iterator[dict[str, str]]:
        attached = {name: role for name, role in roles.items() if role.replicas}
        with contextlib.ExitStack() as stack:
            bases = dict(stack.enter_context(super().open(roles=attached, log_dir=log_dir)))
            served: dict[tuple[str, Any], str] = {}  # roles naming the same model share a server
            for name, role in roles.items():
                if name in attached:
                    continue
                key = (role.model, role.serve)
                if key not in served:
                    log_path = log_dir / f"vllm-{name}.log" if log_dir else None
                    server = stack.enter_context(
                        VLLMServer(role.model, role.serve, role=name, log_path=log_path)
                    )
                    served[key] = server.api_base
                bases[name] = served[key]
                self._keys[name] = resolve_api_key(role.api_key_env)
                check_endpoint(bases[name], role=name, api_key=self._keys[name])
            self._bases = bases
            yield bases

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
