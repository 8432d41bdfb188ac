"""Test doubles shipped to users: a scripted OpenAI-compatible server and a deterministic embedder.

The scripted server also plays OpenAI's fine-tuning API (files, jobs, events) and vLLM's runtime LoRA
API (``load_lora_adapter``, ``unload_lora_adapter``), so trainers and adapter hosts run offline.

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
from urllib.parse import parse_qs, urlsplit

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
# adapter_reply(model, request): how a tuned model or a loaded LoRA adapter answers
AdapterReply = Callable[[str, dict[str, Any]], str]


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


Answer = tuple[int, dict[str, Any] | str]


def _openai_error(status: int, message: str, param: str | None = None) -> Answer:
    return status, {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    }


def _vllm_error(status: int, message: str, kind: str) -> Answer:
    return status, {"object": "error", "message": message, "type": kind, "param": None, "code": status}


def _form(content_type: str, raw: bytes) -> dict[str, Any]:
    """The fields of a ``multipart/form-data`` body (a file field's name is kept as ``filename``)."""
    boundary = re.search(r'boundary="?([^";]+)"?', content_type)
    if boundary is None:
        return {}
    fields: dict[str, Any] = {}
    for chunk in raw.split(b"--" + boundary.group(1).encode())[1:-1]:
        head, _, value = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        filename = re.search(rb'filename="([^"]*)"', head)
        if name is not None:
            fields[name.group(1).decode()] = value.removesuffix(b"\r\n").decode("utf-8", "replace")
        if filename is not None:
            fields["filename"] = filename.group(1).decode()
    return fields


def _chat_file_problem(text: str) -> str | None:
    """Why a fine-tuning file is not in OpenAI's chat format (None: it is)."""
    for line_no, line in enumerate(text.splitlines(), start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            return f"line {line_no} is not JSON"
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not all(
            isinstance(m, dict)
            and m.get("role") in ("system", "user", "assistant")
            and isinstance(m.get("content"), str)
            for m in messages
        ):
            return f"line {line_no} has no valid 'messages' list"
        if not any(m["role"] == "assistant" for m in messages):
            return f"line {line_no} has no assistant message"
    return None if text.strip() else "the file has no examples"


class _Hosted:
    """What the scripted server serves besides its base model: OpenAI fine-tuning jobs and vLLM's
    runtime LoRA adapters. Callers hold the server's lock."""

    def __init__(self, job_polls: int) -> None:
        self.job_polls = max(1, job_polls)
        self.files: dict[str, bytes] = {}
        self.jobs: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []  # every job-creation request body
        self.events: dict[str, list[dict[str, Any]]] = {}
        self.polls: dict[str, int] = {}
        self.doomed: dict[str, str] = {}  # job id -> the error message it will fail with
        self.fail_jobs: list[str] = []
        self.tuned: set[str] = set()
        self.loras: dict[str, str] = {}  # adapter name -> path
        self.unloaded: set[str] = set()

    def upload(self, fields: dict[str, Any]) -> Answer:
        if fields.get("purpose") != "fine-tune" or "file" not in fields:
            return _openai_error(400, "expected multipart fields 'purpose' (fine-tune) and 'file'", "file")
        content = str(fields["file"]).encode()
        file_id = f"file-{len(self.files) + 1:04d}"
        self.files[file_id] = content
        card = {"id": file_id, "object": "file", "bytes": len(content), "created_at": int(time.time())}
        return 200, {**card, "filename": fields.get("filename", "upload"), "purpose": "fine-tune"}

    def create_job(self, body: dict[str, Any]) -> Answer:
        self.created.append(body)
        model, training_file = body.get("model"), body.get("training_file")
        if not model:
            return _openai_error(400, "Missing required parameter: 'model'.", "model")
        if training_file not in self.files:
            return _openai_error(400, f"invalid training_file: {training_file}", "training_file")
        suffix = body.get("suffix") or ""
        if len(suffix) > 64:
            return _openai_error(400, "suffix must be at most 64 characters", "suffix")
        job_id = f"ftjob-{len(self.jobs) + 1:04d}"
        problem = _chat_file_problem(self.files[training_file].decode("utf-8", "replace"))
        if self.fail_jobs:
            self.doomed[job_id] = self.fail_jobs.pop(0)
        elif problem is not None:
            self.doomed[job_id] = f"The job failed due to an invalid training file: {problem}."
        method = body.get("method") or {"type": "supervised", "supervised": {"hyperparameters": {}}}
        settings = (method.get(method.get("type", "supervised")) or {}).get("hyperparameters") or {}
        self.jobs[job_id] = {
            "object": "fine_tuning.job",
            "id": job_id,
            "model": model,
            "created_at": int(time.time()),
            "finished_at": None,
            "fine_tuned_model": None,
            "organization_id": "org-scripted",
            "result_files": [],
            "status": "queued",
            "training_file": training_file,
            "validation_file": body.get("validation_file"),
            "hyperparameters": settings,
            "method": method,
            "seed": body.get("seed"),
            "suffix": suffix or None,
            "metadata": body.get("metadata"),
            "trained_tokens": None,
            "error": None,
        }
        self.events[job_id] = []
        self.polls[job_id] = 0
        self._event(job_id, f"Created fine-tuning job: {job_id}")
        return 200, self.jobs[job_id]

    def _event(self, job_id: str, message: str, data: dict[str, Any] | None = None) -> None:
        events = self.events[job_id]
        events.append(
            {
                "object": "fine_tuning.job.event",
                "id": f"ftevent-{job_id}-{len(events) + 1}",
                "created_at": int(time.time()),
                "level": "error" if "failed" in message else "info",
                "message": message,
                "data": data or {},
                "type": "metrics" if data else "message",
            }
        )

    def poll(self, job_id: str) -> Answer:
        """The job, one step further on: queued, running for ``job_polls`` polls, then done."""
        job = self.jobs.get(job_id)
        if job is None:
            return _openai_error(404, f"No such fine-tuning job: {job_id}.", "fine_tuning_job_id")
        if job["status"] not in ("queued", "running"):
            return 200, job
        step = self.polls[job_id] = self.polls[job_id] + 1
        total = self.job_polls
        if step == 1:
            job["status"] = "running"
            self._event(job_id, "Fine-tuning job started")
        loss = round(2.0 / step, 4)
        self._event(
            job_id,
            f"Step {step}/{total}: training loss={loss}",
            {"step": step, "total_steps": total, "train_loss": loss},
        )
        if step < total:
            return 200, job
        job["finished_at"] = int(time.time())
        if job_id in self.doomed:
            job["status"] = "failed"
            job["error"] = {
                "code": "invalid_training_file",
                "message": self.doomed[job_id],
                "param": "training_file",
            }
            self._event(job_id, f"Fine-tuning job failed: {self.doomed[job_id]}")
            return 200, job
        text = self.files[job["training_file"]].decode("utf-8", "replace")
        epochs = job["hyperparameters"].get("n_epochs", 1)
        tokens = sum(
            len(str(m["content"]).split()) for line in text.splitlines() for m in json.loads(line)["messages"]
        )
        short = job_id.removeprefix("ftjob-")
        job["fine_tuned_model"] = f"ft:{job['model']}:{job['suffix'] or ''}:{short}"
        job["trained_tokens"] = tokens * (epochs if isinstance(epochs, int) else 1)
        job["status"] = "succeeded"
        self.tuned.add(job["fine_tuned_model"])
        self._event(job_id, "The job has successfully completed")
        return 200, job

    def job_events(self, job_id: str, limit: int) -> Answer:
        if job_id not in self.jobs:
            return _openai_error(404, f"No such fine-tuning job: {job_id}.", "fine_tuning_job_id")
        newest_first = list(reversed(self.events[job_id]))
        return 200, {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}

    def list_jobs(self, limit: int) -> Answer:
        newest_first = list(reversed(self.jobs.values()))
        return 200, {"object": "list", "data": newest_first[:limit], "has_more": len(newest_first) > limit}

    def load_lora(self, body: dict[str, Any]) -> Answer:
        name, path = body.get("lora_name"), body.get("lora_path")
        if not name or not path:
            return _vllm_error(400, "Both 'lora_name' and 'lora_path' must be provided.", "InvalidUserInput")
        if name in self.loras:
            return _vllm_error(400, f"The lora adapter '{name}' has already been loaded.", "InvalidUserInput")
        if not Path(path).is_dir():
            return _vllm_error(
                404, f"Loading lora {name} failed: No adapter found for {path}", "NotFoundError"
            )
        self.loras[name] = path
        self.unloaded.discard(name)
        return 200, f"Success: LoRA adapter '{name}' added successfully."

    def unload_lora(self, body: dict[str, Any]) -> Answer:
        name = body.get("lora_name")
        if name not in self.loras:
            return _vllm_error(404, f"The lora adapter '{name}' cannot be found.", "NotFoundError")
        del self.loras[name]
        self.unloaded.add(name)
        return 200, f"Success: LoRA adapter '{name}' removed successfully."

    def model_cards(self, base: str) -> list[dict[str, Any]]:
        """``GET /models``: the base, loaded adapters (vLLM names their ``parent``), tuned models."""
        cards: list[dict[str, Any]] = [{"id": base, "object": "model", "owned_by": "scripted"}]
        cards += [
            {"id": name, "object": "model", "owned_by": "vllm", "root": path, "parent": base}
            for name, path in self.loras.items()
        ]
        return cards + [{"id": name, "object": "model", "owned_by": "user"} for name in sorted(self.tuned)]

    def serves(self, model: str) -> str:
        """``adapter`` (a loaded LoRA or a tuned model), ``gone`` (an unloaded adapter) or ``base``."""
        if model in self.loras or model in self.tuned:
            return "adapter"
        return "gone" if model in self.unloaded else "base"


class _Httpd(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the standard library's 5 resets connections under concurrent load

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that gave up (a timeout)
            super().handle_error(request, client_address)


class ScriptedServer:
    """An OpenAI-compatible server on 127.0.0.1 whose replies come from a Python function.

    Records every POST body (``requests``); can answer with errors (``fail_next``) or after a ``delay``.
    Serves ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/embeddings``; OpenAI's
    fine-tuning API (``POST /v1/files``, ``POST /v1/fine_tuning/jobs``, ``GET /v1/fine_tuning/jobs[/ID
    [/events]]``: a job is queued, runs for ``job_polls`` polls of it, then succeeds, or fails after
    ``fail_next_job``); and vLLM's runtime LoRA API (``POST /v1/load_lora_adapter``,
    ``/v1/unload_lora_adapter``; an unloaded adapter's chat requests get vLLM's 404). A tuned model or
    a loaded adapter answers with ``adapter_reply(model, request)`` (default: ``reply(request)``).
    """

    def __init__(
        self,
        reply: Reply = last_demo_answer,
        *,
        delay: float = 0.0,
        model: str = "scripted",
        port: int = 0,
        adapter_reply: AdapterReply | None = None,
        job_polls: int = 2,
    ) -> None:
        self.reply = reply
        self.adapter_reply = adapter_reply
        self.port = port  # 0: any free port; set it to bring a stopped endpoint back at the same address
        self.delay = delay
        self.model = model
        self.requests: list[dict[str, Any]] = []
        self._hosted = _Hosted(job_polls)
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

    def fail_next_job(self, message: str = "scripted fine-tuning failure") -> None:
        """Make the next fine-tuning job created fail, with ``message`` as its error."""
        with self._lock:
            self._hosted.fail_jobs.append(message)

    def job_creations(self) -> list[dict[str, Any]]:
        """The body of every ``POST /v1/fine_tuning/jobs`` (a job paid for, when it was accepted)."""
        with self._lock:
            return list(self._hosted.created)

    @property
    def uploads(self) -> dict[str, bytes]:
        """Uploaded fine-tuning files by id."""
        with self._lock:
            return dict(self._hosted.files)

    @property
    def jobs(self) -> dict[str, dict[str, Any]]:
        """Fine-tuning jobs by id, as the API shows them."""
        with self._lock:
            return {k: dict(v) for k, v in self._hosted.jobs.items()}

    @property
    def loras(self) -> dict[str, str]:
        """LoRA adapters loaded now: name -> path."""
        with self._lock:
            return dict(self._hosted.loras)

    def _answer_chat(self, body: dict[str, Any]) -> Answer:
        model = str(body.get("model", ""))
        with self._lock:
            serves = self._hosted.serves(model)
        if serves == "gone":
            return _vllm_error(404, f"The model `{model}` does not exist.", "NotFoundError")
        if serves == "adapter" and self.adapter_reply is not None:
            text = self.adapter_reply(model, body)
        else:
            text = self.reply(body)
        return 200, _completion(body, self.model, text, len(self.requests))

    def _route(self, method: str, url: str, body: dict[str, Any]) -> Answer:
        """Answer a request that no fault was injected into."""
        parts = urlsplit(url)
        path = parts.path.rstrip("/")
        limit = int(parse_qs(parts.query).get("limit", ["20"])[0])
        hosted = self._hosted
        if method == "POST" and path.endswith("/chat/completions"):
            return self._answer_chat(body)
        with self._lock:
            if method == "GET":
                if path.endswith("/models"):
                    return 200, {"object": "list", "data": hosted.model_cards(self.model)}
                if path.endswith("/health"):
                    return 200, {"status": "ok"}
                if path.endswith("/fine_tuning/jobs"):
                    return hosted.list_jobs(limit)
                found = re.search(r"/fine_tuning/jobs/([^/]+)(/events)?$", path)
                if found and found.group(2):
                    return hosted.job_events(found.group(1), limit)
                if found:
                    return hosted.poll(found.group(1))
            elif path.endswith("/files"):
                return hosted.upload(body)
            elif path.endswith("/fine_tuning/jobs"):
                return hosted.create_job(body)
            elif path.endswith("/load_lora_adapter"):
                return hosted.load_lora(body)
            elif path.endswith("/unload_lora_adapter"):
                return hosted.unload_lora(body)
        return 404, {"error": {"message": "not found"}}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def _send(self, status: int, body: dict[str, Any] | str) -> None:
                text = isinstance(body, str)  # vLLM answers a LoRA load or unload in plain text
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if text else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                self._send(*server._route("GET", self.path, {}))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                content_type = self.headers.get("Content-Type", "")
                if content_type.startswith("multipart/form-data"):
                    body = _form(content_type, raw)
                else:
                    body = json.loads(raw or b"{}")
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
                else:
                    self._send(*server._route("POST", self.path, body))

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
