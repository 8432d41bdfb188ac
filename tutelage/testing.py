"""Test doubles shipped to users: a scripted OpenAI-compatible server and a deterministic embedder.

Example:
    >>> from tutelage.testing import ScriptedServer
    >>> with ScriptedServer(reply=lambda request: "card_arrival") as server:
    ...     base = server.api_base  # point a RoleConfig(provider="openai", api_base=base) at it
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

__all__ = [
    "FAULTS",
    "ChromaServer",
    "HashEmbedder",
    "ScriptedServer",
    "last_demo_answer",
    "run_cli",
    "run_fingerprint",
]

Reply = Callable[[dict[str, Any]], str]


def last_demo_answer(request: dict[str, Any]) -> str:
    """A reply rule that imitates a retrieval student: repeat the last assistant turn, else 'unknown'."""
    turns = [m["content"] for m in request.get("messages", []) if m.get("role") == "assistant"]
    return turns[-1] if turns else "unknown"


Fault = int | str
# What ``ScriptedServer.fail_next``/``fail_when`` can inject besides an HTTP status.
FAULTS = ("disconnect", "hang", "not_json", "empty_choices", "null_content", "huge")
HANG_SECONDS = 30.0


def _completion(body: dict[str, Any], model: str, text: str, n: int) -> dict[str, Any]:
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
    return {
        "id": f"chatcmpl-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", model),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(text.split()),
            "total_tokens": prompt_tokens + len(text.split()),
        },
    }


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the standard library's 5 resets connections under concurrent load

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up (a timeout)
            super().handle_error(request, client_address)


class ScriptedServer:
    """An OpenAI-compatible server on 127.0.0.1 whose replies come from a Python function.

    Records every request (``requests``); can answer with errors (``fail_next``) or after a ``delay``.
    Serves ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/embeddings``.
    """

    def __init__(
        self, reply: Reply = last_demo_answer, *, delay: float = 0.0, model: str = "scripted", port: int = 0
    ) -> None:
        self.reply = reply
        self.port = port  # 0: any free port; set it to bring a stopped endpoint back at the same address
        self.delay = delay
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._failures: list[Fault] = []
        self._rules: list[tuple[Callable[[dict[str, Any]], bool], Fault]] = []
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def api_base(self) -> str:
        if self._httpd is None:
            raise RuntimeError("start the ScriptedServer first (use it in a `with` block)")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def fail_next(self, status: Fault = 500, times: int = 1) -> None:
        """Answer the next ``times`` requests with a fault: an HTTP status, or one of ``FAULTS``."""
        with self._lock:
            self._failures.extend([status] * times)

    def fail_when(self, test: Callable[[dict[str, Any]], bool], fault: Fault) -> None:
        """Answer every request for which ``test(body)`` holds with ``fault`` (a persistent fault)."""
        with self._lock:
            self._rules.append((test, fault))

    def _fault(self, body: dict[str, Any]) -> Fault:
        with self._lock:
            self.requests.append(body)
            if self._failures:
                return self._failures.pop(0)
            return next((fault for test, fault in self._rules if test(body)), 200)

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if "messages" in r]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model"}]})
                elif self.path.rstrip("/").endswith("/health"):
                    self._send(200, {"status": "ok"})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                status = server._fault(body)
                if server.delay:
                    time.sleep(server.delay)
                if status == "disconnect":  # drop the connection without a reply
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif status == "hang":  # answer long after any sensible timeout
                    time.sleep(HANG_SECONDS)
                    self._send(200, {"error": {"message": "too late"}})
                elif status == "not_json":
                    page = b"<html>502 Bad Gateway</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                elif status in ("empty_choices", "null_content"):
                    empty = status == "empty_choices"
                    message = {"role": "assistant", "content": None}
                    choices = [] if empty else [{"index": 0, "message": message, "finish_reason": "stop"}]
                    self._send(
                        200,
                        {
                            "id": "x",
                            "object": "chat.completion",
                            "created": 0,
                            "model": server.model,
                            "choices": choices,
                            "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1},
                        },
                    )
                elif status == "huge":  # a 1 MB reply
                    self._send(200, _completion(body, server.model, "x" * 2**20, len(server.requests)))
                elif isinstance(status, str):
                    raise ValueError(f"unknown fault {status!r}; known: {', '.join(FAULTS)}")
                elif status != 200:
                    self._send(
                        status, {"error": {"message": f"scripted failure {status}", "type": "server_error"}}
                    )
                elif self.path.rstrip("/").endswith("/embeddings"):
                    texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
                    vecs = HashEmbedder().embed(texts)
                    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vecs)]
                    self._send(
                        200, {"object": "list", "data": data, "model": body.get("model", server.model)}
                    )
                elif self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(200, _completion(body, server.model, server.reply(body), len(server.requests)))
                else:
                    self._send(404, {"error": {"message": "not found"}})

        return Handler

    def start(self) -> ScriptedServer:
        self._httpd = _Httpd(("127.0.0.1", self.port), self._handler())
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> ScriptedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class HashEmbedder:
    """Deterministic bag-of-words hashing embedder: texts sharing words land close together."""

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self.model_id = f"hash-{dim}"

    def embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            vec = [0.0] * self.dim
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                vec[h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = math.sqrt(sum(v * v for v in vec)) or 1.0
            out.append([v / norm for v in vec] if any(vec) else [1.0 / math.sqrt(self.dim)] * self.dim)
        return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ChromaServer:
    """A real ``chroma run`` on 127.0.0.1 with its data under ``path``; stopped on exit.

    Example:
        >>> with ChromaServer(tmp_path / "chroma") as server:  # doctest: +SKIP
        ...     store = open_store(MemoryConfig(url=server.url), path=None, embedder=HashEmbedder())
    """

    def __init__(self, path: str | Path, *, port: int | None = None, startup_timeout: float = 30.0) -> None:
        self.path = Path(path)
        self.port = port or _free_port()
        self.startup_timeout = startup_timeout
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ChromaServer:
        exe = Path(sys.executable).with_name("chroma")
        command = str(exe) if exe.exists() else shutil.which("chroma")
        if command is None:
            raise RuntimeError("the `chroma` command (from the chromadb package) is not installed")
        self.path.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [command, "run", "--path", str(self.path), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"chroma run exited with {self._proc.returncode}")
            try:
                if httpx.get(f"{self.url}/api/v2/heartbeat", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"chroma run did not answer on {self.url} within {self.startup_timeout:.0f}s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> ChromaServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def run_fingerprint(run_dir: str | Path, embedder: Any = None) -> dict[str, Any]:
    """What a run ended with, to compare a killed-and-resumed run with an uninterrupted one: the test
    and dev scores, each round's decision and lesson count, and every lesson's id and status."""
    from tutelage.config import load_config
    from tutelage.memory.location import open_run_memory
    from tutelage.rundir import RunPaths

    paths = RunPaths(Path(run_dir))
    metrics = json.loads(paths.metrics.read_text())
    memory = open_run_memory(paths, load_config(paths.config), embedder)
    return {
        "test": metrics["test_accuracy"],
        "dev": metrics["dev_accuracy"],
        "rounds": [
            (r["round"], r.get("dev_accuracy"), r.get("decision"), r["lessons"]) for r in metrics["rounds"]
        ],
        "lessons": sorted((x.id, x.status) for x in memory.all()),
    }


def run_cli(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    kill_after: float | None = None,
    timeout: float = 600.0,
) -> int:
    """Run ``python -m tutelage.cli ARGS`` in a child process; with ``kill_after``, SIGKILL it after
    that many seconds. Returns its exit status (``-9`` when it was killed)."""
    import os
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "tutelage.cli", *args],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        proc.wait(timeout=kill_after if kill_after is not None else timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode
