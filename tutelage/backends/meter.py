"""A metering proxy: an OpenAI-compatible base URL on 127.0.0.1 that forwards to a role's endpoint and
records every request in the run's cost ledger.

It is for agents that bring their own client (the OpenAI SDK, langchain's ``ChatOpenAI``, plain
httpx): point the client at ``tutelage.agent_base_url()`` and its calls are the run's student calls,
tokens and budgets included, exactly as calls through ``tutelage.agent_lm()`` are. The request's
``model`` is replaced by the role's model, so any name will do. Streamed replies pass through and are
counted as calls with the usage the endpoint reports in them (``stream_options.include_usage``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tutelage.backends._lm import CallLedger
from tutelage.errors import TutelageError

__all__ = ["MeterProxy", "meter_for", "metered_elsewhere"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # an agent's concurrent calls must not be reset at the listen backlog


class MeterProxy:
    """Forward ``/v1/...`` to ``upstream`` (``.../v1``); each request is a ``role`` row in ``ledger``."""

    def __init__(
        self,
        upstream: str,
        *,
        model: str,
        ledger: CallLedger | None,
        role: str = "student",
        api_key: str = "not-needed",
        timeout: float = 600.0,
    ) -> None:
        self.upstream = upstream.rstrip("/")
        self.model = model
        self.ledger = ledger
        self.role = role
        self.calls = 0
        self._client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {api_key}"})
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name="tutelage-meter", daemon=True)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._client.close()

    def forward(self, method: str, path: str, raw: bytes) -> tuple[int, bytes, str]:
        """One request through: its status, body and content type (a model call is a ledger row)."""
        metered = path.endswith(("/chat/completions", "/completions"))
        body = raw
        if metered and raw:
            payload = json.loads(raw)
            payload["model"] = self.model
            body = json.dumps(payload).encode()
        if metered:
            with self._lock:
                self.calls += 1
            if self.ledger is not None:
                self.ledger.admit(self.role)  # a spent budget refuses the call, as for agent_lm()
        url = self.upstream + path.removeprefix("/v1")
        began = time.perf_counter()
        try:
            reply = self._client.request(
                method, url, content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:
            if metered and self.ledger is not None:
                self.ledger.record(self.role, None, time.perf_counter() - began, error=exc.__class__.__name__)
            return (
                502,
                json.dumps({"error": {"message": f"upstream: {exc.__class__.__name__}"}}).encode(),
                "application/json",
            )
        if metered and self.ledger is not None:
            error = None if reply.status_code < 400 else f"HTTP {reply.status_code}"
            self.ledger.record(self.role, _usage(reply), time.perf_counter() - began, error=error)
        return reply.status_code, reply.content, reply.headers.get("content-type", "application/json")

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _relay(self, method: str) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    status, body, kind = proxy.forward(method, self.path, raw)
                except TutelageError as exc:  # a spent budget: the agent's client sees a refusal
                    status, kind = 429, "application/json"
                    body = json.dumps({"error": {"message": str(exc), "type": "budget_exhausted"}}).encode()
                except ValueError:
                    status, kind = 400, "application/json"
                    body = json.dumps({"error": {"message": "the request body is not JSON"}}).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._relay("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._relay("POST")

        return Handler


def _usage(reply: httpx.Response) -> dict[str, Any] | None:
    """The reply's token usage: its ``usage`` field, or the last one in a streamed reply."""
    if "text/event-stream" in reply.headers.get("content-type", ""):
        usage = None
        for line in reply.text.splitlines():
            if line.startswith("data:") and '"usage"' in line:
                try:
                    usage = json.loads(line[5:]).get("usage") or usage
                except ValueError:
                    continue
        return usage
    try:
        found = reply.json().get("usage")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, dict) else None


_PROXIES: dict[tuple[str, str, int], MeterProxy] = {}
_PROXIES_LOCK = threading.Lock()


def _key(lm: Any) -> tuple[str, str, int] | None:
    upstream = (getattr(lm, "kwargs", {}) or {}).get("api_base")
    if not upstream:
        return None
    return str(upstream), str(lm.model).split("/", 1)[-1], id(getattr(lm, "ledger", None))


def meter_for(lm: Any) -> MeterProxy:
    """The metering proxy in front of ``lm``'s endpoint, recording into ``lm``'s ledger (started once
    per endpoint and ledger, and kept for the life of the process)."""
    key = _key(lm)
    if key is None:
        raise TutelageError(f"the student LM {getattr(lm, 'model', lm)!r} has no api_base to meter")
    with _PROXIES_LOCK:
        if key not in _PROXIES:
            _PROXIES[key] = MeterProxy(
                key[0],
                model=key[1],
                ledger=getattr(lm, "ledger", None),
                role=getattr(lm, "role", "") or "student",
                api_key=str(lm.kwargs.get("api_key") or "not-needed"),
            )
        return _PROXIES[key]


def metered_elsewhere(lm: Any) -> int:
    """Calls made so far through the metering proxy in front of ``lm`` (0 when it has none)."""
    key = _key(lm)
    with _PROXIES_LOCK:
        proxy = _PROXIES.get(key) if key is not None else None
        return proxy.calls if proxy is not None else 0
