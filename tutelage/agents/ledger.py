"""The cost ledger: every LM call of a run, with tokens, money, time and failures, per role and round.

Each call is one JSONL row in ``ledger.jsonl`` (appended as it finishes, so a resumed run continues
the totals); every total the loop reports is a sum over those rows. The ledger also enforces the
budgets in ``loop.budget``: once a role's tokens or money, or the loop's wall time, is spent, the
next call of the loop is refused with ``BudgetExhausted`` (calls of the held-out test evaluation are
recorded but never refused).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tutelage import failpoints, runfiles
from tutelage.backends import RETRIED  # the end of ``Call.error`` for a request tried again
from tutelage.config import BudgetConfig, RunConfig
from tutelage.errors import BudgetExhausted

__all__ = ["Call", "Ledger", "summarize"]

UNMETERED_PHASES = ("test",)


@dataclass(frozen=True)
class Call:
    """One LM call: who made it, when in the run, what it cost."""

    role: str
    round: int
    phase: str
    tokens_in: int
    tokens_out: int
    usd: float
    seconds: float
    ok: bool
    error: str | None = None
    session: str = ""
    t: float = 0.0  # seconds since this session of the run started
    replica: str = ""  # the endpoint that answered, when the role has several (``api_base`` list)


def summarize(calls: Iterable[Call]) -> dict[str, dict[str, Any]]:
    """Totals per role: requests, final failures, retries, tokens in and out, money, seconds."""
    out: dict[str, dict[str, Any]] = {}
    for c in calls:
        row = out.setdefault(
            c.role,
            {
                "calls": 0,
                "failures": 0,
                "retries": 0,
                "tokens_in": 0,
                "tokens_out": 0,
                "usd": 0.0,
                "seconds": 0.0,
            },
        )
        row["calls"] += 1  # every request sent, retries included
        retried = (c.error or "").endswith(RETRIED)
        row["retries"] += 1 if retried else 0
        row["failures"] += 0 if c.ok or retried else 1  # requests that failed for good (or came back empty)
        row["tokens_in"] += c.tokens_in
        row["tokens_out"] += c.tokens_out
        row["usd"] += c.usd
        row["seconds"] += c.seconds
    for row in out.values():
        row["usd"], row["seconds"] = round(row["usd"], 6), round(row["seconds"], 2)
    return out


class Ledger:
    """Thread-safe record of LM calls; ``at(round, phase)`` says what the next calls belong to."""

    def __init__(
        self,
        path: Path | None = None,
        *,
        prices: dict[str, tuple[float, float]] | None = None,
        budget: BudgetConfig | None = None,
    ) -> None:
        self.path = path
        self.prices = prices or {}
        self.budget = budget or BudgetConfig()
        self.session = uuid.uuid4().hex[:8]
        self._start = time.monotonic()
        self._lock = threading.Lock()
        self.calls: list[Call] = self._read() if path is not None else []
        sessions: dict[str, float] = {}
        for c in self.calls:
            sessions[c.session] = max(sessions.get(c.session, 0.0), c.t)
        self._seconds_before = sum(sessions.values())
        self.round, self.phase = 0, ""
        self._streaks: dict[str, int] = {}
        # role -> [tokens, usd]: running sums, so admitting a call costs the same however long the run
        self._spent: dict[str, list[float]] = {}
        for c in self.calls:
            self._add(c)

    def _add(self, call: Call) -> None:
        spent = self._spent.setdefault(call.role, [0, 0.0])
        spent[0] += call.tokens_in + call.tokens_out
        spent[1] += call.usd

    @classmethod
    def for_run(cls, cfg: RunConfig, path: Path | None) -> Ledger:
        prices = {
            "student": (cfg.student.price_in, cfg.student.price_out),
            "teacher": (cfg.teacher.price_in, cfg.teacher.price_out),
        }
        return cls(path, prices=prices, budget=cfg.loop.budget)

    def _read(self) -> list[Call]:
        if self.path is None or not self.path.is_file():
            return []
        calls = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                calls.append(Call(**json.loads(line)))
            except (ValueError, TypeError):
                continue  # a torn last line from a kill
        return calls

    def at(self, round: int, phase: str) -> None:
        self.round, self.phase = round, phase

    def seconds(self) -> float:
        """The run's wall time so far, summed across resumed sessions."""
        return self._seconds_before + (time.monotonic() - self._start)

    def recorded_seconds(self) -> float:
        """The wall time up to the last recorded call, summed across sessions (stable on re-reads)."""
        with self._lock:
            sessions: dict[str, float] = {}
            for c in self.calls:
                sessions[c.session] = max(sessions.get(c.session, 0.0), c.t)
        return sum(sessions.values())

    def exhausted(self) -> str | None:
        """Why the loop must stop now (the first budget spent), or None (constant time: running sums)."""
        b = self.budget
        for role in ("student", "teacher"):
            tokens, usd = self._spent.get(role, (0, 0.0))
            used = int(tokens)
            limit = getattr(b, f"{role}_tokens")
            if limit is not None and used >= limit:
                return f"{role} token budget spent ({used:,} of {limit:,} tokens)"
            usd, limit_usd = round(usd, 6), getattr(b, f"{role}_usd")  # as ``summarize`` rounds it
            if limit_usd is not None and usd >= limit_usd:
                return f"{role} money budget spent (${usd:.4f} of ${limit_usd:.4f})"
        if b.seconds is not None and self.seconds() >= b.seconds:
            return f"wall-clock budget spent ({self.seconds():.0f} s of {b.seconds:.0f} s)"
        return None

    def admit(self, role: str) -> None:
        """Refuse the call when a budget is spent (held-out test calls are always admitted)."""
        if self.phase in UNMETERED_PHASES:
            return
        with self._lock:
            reason = self.exhausted()
        if reason is not None:
            raise BudgetExhausted(reason)

    def record(
        self,
        role: str,
        usage: dict[str, Any] | None,
        seconds: float,
        error: str | None = None,
        replica: str = "",
    ) -> Call:
        usage = usage or {}
        tin, tout = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        price_in, price_out = self.prices.get(role, (0.0, 0.0))
        call = Call(
            role=role,
            round=self.round,
            phase=self.phase,
            tokens_in=tin,
            tokens_out=tout,
            usd=(tin * price_in + tout * price_out) / 1e6,
            seconds=round(seconds, 4),
            ok=error is None,
            error=error,
            session=self.session,
            t=round(time.monotonic() - self._start, 3),
            replica=replica,
        )
        with self._lock:
            self.calls.append(call)
            self._add(call)
            if self.path is not None:
                runfiles.append_lines(self.path, [json.dumps(asdict(call))])
        failpoints.step()
        return call

    def connection_streak(self, role: str, *, failed: bool) -> int:
        """Count ``role``'s calls that could not connect, in a row (a call that got through resets it)."""
        with self._lock:
            self._streaks[role] = self._streaks.get(role, 0) + 1 if failed else 0
            return self._streaks[role]

    def totals(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return summarize(self.calls)

    def round_totals(self, round: int) -> dict[str, dict[str, Any]]:
        with self._lock:
            return summarize(c for c in self.calls if c.round == round and c.phase != "test")
