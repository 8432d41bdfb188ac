"""What a failed model request means: read once here, whichever client raised it.

A request fails through DSPy's native engine (``dspy.utils.exceptions.LM*Error`` over lm15's errors),
through LiteLLM (its exceptions, over the OpenAI SDK's and httpx's), or through tutelage itself. Each
failure is one ``kind``, and the three questions the rest of tutelage asks are answered from it:
is it worth another try (``transient``), did the connection fail (``connection_failure``), and does
it stop the run or only the item (``systemic_error``).
"""

from __future__ import annotations

import json
from typing import Literal

import httpx

from tutelage.errors import EndpointError, TutelageError

__all__ = [
    "DOWN_AFTER",
    "ItemConnectionError",
    "chain",
    "connection_failure",
    "error_kind",
    "error_name",
    "systemic_error",
    "transient",
]

Kind = Literal[
    "timeout", "connection", "rate_limit", "server", "bad_reply", "auth", "unknown_model", "config", "other"
]

# Items whose requests all failed to connect, in a row across items, before the endpoint counts as
# down: a dead endpoint fails every in-flight item at once; one that drops a fifth of its connections
# fails 8 in a row about once in 400,000 items.
DOWN_AFTER = 8


class ItemConnectionError(RuntimeError):
    """One item's request could not connect after its retries, while other items still get through:
    that item's failure (redone on resume), not a dead endpoint."""


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and what caused it, outermost first."""
    seen: list[BaseException] = []
    node: BaseException | None = exc
    while node is not None and node not in seen:
        seen.append(node)
        node = node.__cause__ or node.__context__
    return seen


def _status(err: BaseException) -> int | None:
    status = getattr(err, "status_code", None) or getattr(err, "status", None)  # LiteLLM's or DSPy's
    return status if isinstance(status, int) else None


def error_kind(exc: BaseException) -> Kind:
    """What went wrong with a request, whichever client raised ``exc``."""
    import openai
    from dspy.utils import exceptions as dx
    from litellm import exceptions as lx

    errors = chain(exc)
    # First: LiteLLM's Timeout subclasses its APIConnectionError, and DSPy's native engine reports a
    # read timeout as a transport error over the builtin TimeoutError.
    timeouts = (TimeoutError, lx.Timeout, openai.APITimeoutError, httpx.TimeoutException, dx.LMTimeoutError)
    if any(isinstance(err, timeouts) for err in errors):
        return "timeout"
    # Next: a connection that failed or dropped, which LiteLLM may report as a server error.
    connection = (
        lx.APIConnectionError,
        openai.APIConnectionError,
        httpx.TransportError,  # its timeouts were caught above
        dx.LMTransportError,
    )
    if any(isinstance(err, connection) or "connection error" in str(err).lower() for err in errors):
        return "connection"
    statuses = [s for s in map(_status, errors) if s is not None]
    kinds: list[tuple[Kind, tuple[type[BaseException], ...]]] = [
        ("auth", (lx.AuthenticationError, openai.AuthenticationError, dx.LMAuthError)),
        ("unknown_model", (lx.NotFoundError, dx.LMUnsupportedModelError)),
        ("rate_limit", (lx.RateLimitError, openai.RateLimitError, dx.LMRateLimitError)),
        (
            "server",
            (
                lx.InternalServerError,
                lx.ServiceUnavailableError,
                openai.InternalServerError,
                dx.LMServerError,
            ),
        ),
        ("config", (dx.LMConfigurationError,)),
    ]
    for kind, types in kinds:
        if any(isinstance(err, types) for err in errors):
            return kind
    if any(s in (401, 403) for s in statuses):
        return "auth"
    if 404 in statuses:
        return "unknown_model"
    if 429 in statuses:
        return "rate_limit"
    if any(s >= 500 for s in statuses):
        return "server"
    if any(isinstance(err, json.JSONDecodeError) for err in errors):
        return "bad_reply"  # a 200 whose body is not JSON (a proxy's error page, a reply cut short)
    return "other"


def error_name(exc: BaseException) -> str:
    """A short name for a ledger row: the exception's class, and its HTTP status when it has one."""
    status = _status(exc)
    return f"{exc.__class__.__name__} {status}" if status else exc.__class__.__name__


def transient(exc: BaseException) -> bool:
    """Worth another try: no connection, a timeout, rate limiting, a server-side error, or a reply
    that was not JSON."""
    return error_kind(exc) in ("timeout", "connection", "rate_limit", "server", "bad_reply")


def connection_failure(exc: BaseException) -> bool:
    """A refused or dropped connection (not a timeout, not a rejected key or an unknown model)."""
    return error_kind(exc) == "connection"


def systemic_error(exc: BaseException, *, role: str) -> TutelageError | None:
    """The error an LM exception stands for, or None when it is a per-task failure.

    Unreachable endpoints, rejected keys and unknown models are systemic (every task would fail the
    same way), and so is a spent budget; a bad request, a timeout (after the role's retries) or a
    server error on one item is that item's failure.
    """
    errors = chain(exc)
    own = next((err for err in errors if isinstance(err, TutelageError)), None)
    if own is not None:
        return own
    if any(isinstance(err, ItemConnectionError) for err in errors):
        return None  # other items still connect: this item's failure
    if error_kind(exc) in ("connection", "auth", "unknown_model", "config"):
        detail = str(exc).splitlines()[0][:160] if str(exc) else exc.__class__.__name__
        return EndpointError(f"{role} endpoint failed after retries: {detail}")
    return None
