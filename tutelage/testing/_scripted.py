"""ScriptedServer: an OpenAI-compatible server on 127.0.0.1 whose replies come from a Python function."""

from __future__ import annotations

import json
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tutelage.testing._embedder import HashEmbedder
from tutelage.testing._hosted import Answer, _form, _Hosted, _vllm_error, structured_choice

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
        return 200, _completion(body, self.model, structured_choice(body, text), len(self.requests))

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
