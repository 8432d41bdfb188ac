"""How the loop tells the outside world what it is doing: a small Reporter protocol."""

from __future__ import annotations

import logging
from typing import Any, Protocol

__all__ = ["LogReporter", "Reporter"]

log = logging.getLogger("tutelage")


class Reporter(Protocol):
    """What the loop and ``evaluate`` report: a phase starts (``total`` items; 0 when not known yet), its
    items finish, a round ends, a message.

    ``update`` may also take a ``correct`` keyword, ``update(done, total, correct=None)``: where the
    items are scored, it then gets the summed score of the ``done`` items (the score so far is
    ``correct / done``); ``None`` for phases without a score. Reporters without it get ``(done, total)``.
    """

    def phase(self, label: str, total: int) -> None: ...

    def update(self, done: int, total: int) -> None: ...

    def round_done(self, row: dict[str, Any]) -> None: ...

    def message(self, text: str) -> None: ...


class LogReporter:
    """The default for API use: one log line per phase and per round."""

    def phase(self, label: str, total: int) -> None:
        log.info("%s (%d items)", label, total)

    def update(self, done: int, total: int) -> None:
        return None

    def round_done(self, row: dict[str, Any]) -> None:
        dev = "-" if row.get("dev_accuracy") is None else f"{100 * row['dev_accuracy']:.1f}%"
        log.info("round %s: dev %s, %s, %s lessons", row["round"], dev, row.get("decision"), row["lessons"])

    def message(self, text: str) -> None:
        log.info("%s", text)
