"""LM clients: every call goes through DSPy's LM over HTTP, metered into a cost ledger.

One code path whether the endpoint is vLLM, llama.cpp, OpenAI or any OpenAI-compatible server.
Secrets are read here and nowhere else.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn, Protocol

import dspy
import httpx
from dspy.utils.exceptions import LMTimeoutError, LMTransportError

from tutelage import runfiles
from tutelage.backends._errors import (
    DOWN_AFTER,
    ItemConnectionError,
    connection_failure,
    error_kind,
    error_name,
    systemic_error,
    transient,
)
from tutelage.errors import ConfigError, EndpointError

__all__ = [
    "RETRIED",
    "CallJournal",
    "CallLedger",
    "ItemConnectionError",
    "MeteredLM",
    "check_endpoint",
    "label_constraint",
    "replayed",
    "resolve_api_key",
    "systemic_error",
]

RETRIED = "(retried)"  # the end of a ledger row's error for a failed request that was tried again


class CallLedger(Protocol):
    """Where a ``MeteredLM`` records its calls (the run's cost ledger): one row per request."""

    def admit(self, role: str) -> None:
        """Refuse the call (raise) when the role's budget is spent."""

    def record(
        self,
        role: str,
        usage: dict[str, Any] | None,
        seconds: float,
        error: str | None = None,
        replica: str = "",
    ) -> object:
        """One request: its token usage, how long it took, its error (None: a reply), and the replica
        that answered (one of a role's several ``api_base``; '' for a role with one endpoint)."""

    def connection_streak(self, role: str, *, failed: bool) -> int:
        """The role's requests that could not connect, in a row, counting this one."""


def resolve_api_key(env_name: str | None) -> str:
    """Read a role's key from the environment variable it names; local servers need none."""
    if env_name is None:
        return "not-needed"
    value = os.environ.get(env_name)
    if not value:
        raise ConfigError(f"environment variable {env_name} (api_key_env) is not set")
    return value


_usage = threading.local()


class CallJournal:
    """Model replies by request, on disk: a resumed compile gets the replies it got before, in the
    same order, without paying for them again (so it makes the same choices).

    A request is its model, messages (or prompt) and generation settings; the n-th time the same
    request is made it gets the n-th reply recorded for it.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._replies: dict[str, dict[int, Any]] = {}
        self._asked: dict[str, int] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self._replies.setdefault(row["key"], {})[int(row["n"])] = row["outputs"]
                except (ValueError, KeyError, TypeError):
                    continue  # a line torn by a kill: that call is simply made again

    @staticmethod
    def key(model: str, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> str:
        settings = {k: v for k, v in kwargs.items() if not k.startswith("api_")}
        blob = json.dumps([model, prompt, messages, settings], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def lookup(self, key: str) -> tuple[Any, int]:
        """The recorded reply for this occurrence of ``key`` (None if there is none) and its number."""
        with self._lock:
            n = self._asked.get(key, 0)
            self._asked[key] = n + 1
            return self._replies.get(key, {}).get(n), n

    def record(self, key: str, n: int, outputs: Any) -> None:
        try:
            line = json.dumps({"key": key, "n": n, "outputs": outputs})
        except (TypeError, ValueError):
            return  # not plain JSON (tool calls, logprobs objects): not replayable, asked again
        with self._lock:
            self._replies.setdefault(key, {})[n] = outputs
            runfiles.append_lines(self.path, [line])


def replayed(lm: dspy.LM, journal: CallJournal) -> dspy.LM:
    """A copy of ``lm`` (same ledger and role) whose calls are recorded in, and replayed from, ``journal``."""
    copy = lm.copy()
    copy.replay = journal
    return copy


# Calls made through any MeteredLM in this context (``counting_calls``): tells whether a user's agent
# called its model through the client tutelage gave it, i.e. whether the ledger can see its calls.
_SEEN: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar("tutelage_seen_calls", default=None)


@contextlib.contextmanager
def counting_calls() -> Iterator[list[int]]:
    """Count the metered LM calls made in this context (and in threads that copy it): ``[n]``."""
    seen = [0]
    token = _SEEN.set(seen)
    try:
        yield seen
    finally:
        _SEEN.reset(token)


class MeteredLM(dspy.LM):
    """A DSPy LM whose every call lands in a cost ledger, and is refused once a budget is spent.

    Copies (``lm.copy(...)``, which DSPy optimizers make) share the ledger, the role and the replay
    journal. With ``replay`` set, a request already answered in the journal is answered from it (no
    call, no ledger row: the original call is in the ledger already).
    """

    role: str = ""
    ledger: CallLedger | None = None
    replay: CallJournal | None = None
    retries: int = 0  # tutelage retries transient failures itself, so each request is a ledger row
    constrains: bool = False  # the endpoint takes vLLM's structured outputs (``label_constraint``)

    def update_history(self, entry: dict[str, Any]) -> None:
        _usage.value = entry.get("usage") or {}
        super().update_history(entry)

    def __call__(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        if (seen := _SEEN.get()) is not None:
            seen[0] += 1
        journal = self.replay
        if journal is None:
            return self._metered(prompt, messages=messages, **kwargs)
        key = journal.key(self.model, prompt, messages, {**self.kwargs, **kwargs})
        recorded, n = journal.lookup(key)
        if recorded is not None:
            return recorded
        out = self._metered(prompt, messages=messages, **kwargs)
        journal.record(key, n, out)
        return out

    def _metered(self, prompt: Any = None, *, messages: Any = None, **kwargs: Any) -> Any:
        ledger = self.ledger
        if ledger is None:
            return self._send(prompt, messages, kwargs)
        ledger.admit(self.role)
        for attempt in range(self.retries + 1):
            _usage.value, _usage.replica = {}, ""
            start = time.perf_counter()
            try:
                out = self._send(prompt, messages, kwargs)
            except Exception as exc:
                if attempt < self.retries and transient(exc):  # every request is a ledger row
                    seconds = time.perf_counter() - start
                    ledger.record(self.role, _usage.value, seconds, error=f"{error_name(exc)} {RETRIED}")
                    time.sleep(min(8.0, RETRY_BASE * 2**attempt))
                    continue
                self._failed(exc, ledger, start)
            ledger.connection_streak(self.role, failed=False)
            error = "EmptyReply" if _empty(out) else None
            ledger.record(
                self.role, _usage.value, time.perf_counter() - start, error=error, replica=_usage.replica
            )
            return self._bounded(out)
        raise AssertionError("unreachable")

    def _send(self, prompt: Any, messages: Any, kwargs: dict[str, Any]) -> Any:
        """One request. DSPy's native engine cannot carry ``extra_body`` (vLLM's structured outputs,
        llama.cpp's per-request LoRA): such a request goes through LiteLLM, to the same address."""
        wire: dspy.LM = self
        native = self._engine_spec == "auto" and type(self).forward is dspy.LM.forward
        if native and ("extra_body" in kwargs or "extra_body" in self.kwargs):
            wire = self.copy(engine="litellm")  # a shallow copy: same ledger, role and connection pools
        try:
            return dspy.LM.__call__(wire, prompt, messages=messages, **kwargs)
        except LMTransportError as exc:  # the native engine's read timeout: say it is one
            if error_kind(exc) != "timeout":
                raise
            raise LMTimeoutError(exc.message, model=exc.model, provider=exc.provider) from exc

    def _bounded(self, outputs: Any) -> Any:
        """Replies cut to what ``max_tokens`` allows (8 characters a token): an endpoint that ignores
        the bound cannot fill the journals (a 1 MB reply is stored as its first characters)."""
        cap = max(4096, 8 * int(self.kwargs.get("max_tokens") or 512))
        if not isinstance(outputs, list):
            return outputs
        return [o[:cap] + " ...(cut)" if isinstance(o, str) and len(o) > cap else o for o in outputs]

    def _failed(self, exc: Exception, ledger: CallLedger, start: float) -> NoReturn:
        """Record a request that failed for good, and raise what it means for the item or the run."""
        ledger.record(self.role, _usage.value, time.perf_counter() - start, error=error_name(exc))
        if connection_failure(exc):
            streak = ledger.connection_streak(self.role, failed=True)
            if streak < DOWN_AFTER:
                detail = str(exc).splitlines()[0][:120] if str(exc) else ""
                raise ItemConnectionError(
                    f"connection failed ({streak} of {DOWN_AFTER} failures in a row before the "
                    f"{self.role} endpoint counts as down): {detail}"
                ) from exc
        raise exc


def _empty(outputs: Any) -> bool:
    """A 200 that carries no reply: no choices, or a choice whose content is null or blank."""
    if not outputs:
        return True
    texts = [o.get("text") if isinstance(o, dict) else o for o in outputs]
    return any(t is None or (isinstance(t, str) and not t.strip()) for t in texts)


RETRY_BASE = 0.25  # seconds before the first retry; doubled for each next one, at most 8 s


def label_constraint(lm: Any, choices: list[str]) -> dict[str, Any]:
    """The request settings that make ``lm``'s endpoint reply with exactly one of ``choices`` (vLLM's
    structured outputs, ``{"structured_outputs": {"choice": [...]}}``), or {} when it cannot."""
    if not choices or not getattr(lm, "constrains", False):
        return {}
    extra = dict(lm.kwargs.get("extra_body") or {})
    return {"extra_body": {**extra, "structured_outputs": {"choice": list(choices)}}}


def check_endpoint(api_base: str, *, role: str, api_key: str = "not-needed", timeout: float = 5.0) -> None:
    """Fail fast with one clear line when an endpoint cannot be reached."""
    try:
        response = httpx.get(
            f"{api_base.rstrip('/')}/models", headers={"Authorization": f"Bearer {api_key}"}, timeout=timeout
        )
    except httpx.ConnectError:
        raise EndpointError(f"{role} endpoint {api_base} refused the connection") from None
    except httpx.TimeoutException:
        raise EndpointError(f"{role} endpoint {api_base} did not answer within {timeout:.0f}s") from None
    except httpx.HTTPError as exc:
        raise EndpointError(f"{role} endpoint {api_base} failed: {exc.__class__.__name__}") from None
    if response.status_code in (401, 403):
        raise EndpointError(f"{role} endpoint {api_base} rejected the API key (HTTP {response.status_code})")
    if response.status_code >= 500:
        raise EndpointError(f"{role} endpoint {api_base} answered HTTP {response.status_code}")
