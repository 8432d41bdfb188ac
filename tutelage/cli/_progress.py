"""How a command shows a run's progress: bars on a terminal, plain or JSON lines in a log or a pipe."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from tutelage.cli._common import console
from tutelage.errors import ConfigError

if TYPE_CHECKING:
    from tutelage.loop.progress import Reporter

__all__ = ["JsonReporter", "PlainReporter", "RichReporter", "log_format", "reporting"]

FORMATS = ("auto", "plain", "json")
# While a phase runs, a line at most every tenth of its elapsed time, bounded: a minutes-long phase
# shows a line every 10 s, an hours-long one every 5 min, and a fast one only its first and last.
MIN_INTERVAL, MAX_INTERVAL = 10.0, 300.0


def log_format(value: str, *, terminal: bool) -> str:
    """The display ``--log-format`` asks for: ``auto`` is ``rich`` bars on a terminal, ``plain`` lines
    otherwise (CI, nohup, a cluster job); ``json`` is one JSON object a line."""
    if value not in FORMATS:
        raise ConfigError(f"--log-format must be 'auto', 'plain' or 'json', not {value!r}")
    return ("rich" if terminal else "plain") if value == "auto" else value


@contextmanager
def reporting(fmt: str) -> Iterator[Reporter]:
    """The reporter for a format ``log_format`` returned, live for the ``with`` block."""
    if fmt == "rich":
        with RichReporter() as reporter:
            yield reporter
    else:
        yield JsonReporter() if fmt == "json" else PlainReporter()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _dropped(row: dict[str, Any]) -> int:
    """Lessons of the round that are not active: refused (leakage), rejected (verify), retired (curation)."""
    return int(row.get("lessons_refused", 0) + row.get("lessons_rejected", 0) + row.get("lessons_retired", 0))


def _kilo(n: int) -> str:
    return f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def _tokens(cost: dict[str, Any]) -> str:
    """Tokens in+out per role, student/teacher: '31.2k/5.0k'."""
    used = [cost.get(role, {}) for role in ("student", "teacher")]
    return "/".join(_kilo(int(c.get("tokens_in", 0) + c.get("tokens_out", 0))) for c in used)


def _round_lines(row: dict[str, Any]) -> list[str]:
    """A finished round as console markup: its scores and lessons, then its weights and flag if any."""
    lines = [
        f"[bold]round {row['round']}[/]  train {_pct(row.get('train_accuracy'))}  "
        f"failed {row.get('diagnosed', 0)}  "
        f"lessons +{row.get('lessons_added', 0)} -{_dropped(row)} = {row['lessons']}  "
        f"k={row.get('k_examples')}  [bold]dev {_pct(row.get('dev_accuracy'))}[/] "
        f"{'kept' if row.get('accepted') else 'rolled back'}  tokens {_tokens(row.get('cost', {}))}  "
        f"{row['seconds']:.0f}s"
    ]
    if (train := row.get("train")) and train.get("adapter"):
        lines.append(
            f"  weights: {train['examples']} rows, {train['steps']} steps, {train['seconds']:.0f}s "
            f"-> {'served' if row.get('accepted') else 'rolled back, never served'}"
        )
    if row.get("flag"):
        lines.append(f"[yellow]  {row['flag']}[/]")
    return lines


class RateColumn(ProgressColumn):
    """Items per second over the recent finishes (rich's own speed estimate)."""

    def render(self, task: Any) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:.2f} it/s" if speed >= 1 else f"{1 / speed:.1f} s/it")


class RichReporter:
    """Progress bars per phase (done/total, rate, elapsed, ETA) and a row per finished round."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            RateColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._task: Any = None

    def __enter__(self) -> RichReporter:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def phase(self, label: str, total: int) -> None:
        if self._task is not None:
            self.progress.remove_task(self._task)
        self._task = self.progress.add_task(label, total=total)

    def update(self, done: int, total: int) -> None:
        if self._task is not None:
            self.progress.update(self._task, completed=done, total=total)

    def round_done(self, row: dict[str, Any]) -> None:
        for line in _round_lines(row):
            self.progress.console.print(line)

    def message(self, text: str) -> None:
        self.progress.console.print(text)


class _Phase:
    """One phase's clock: when its next line is due, and its score, elapsed time and ETA."""

    def __init__(self, label: str, total: int, now: float) -> None:
        self.label, self.total, self.start = label, total, now
        self.shown, self.shown_at = (0, total), now
        # The rate counts from the first update: items read back from a journal took no time.
        self.first: tuple[int, float] | None = None

    def due(self, done: int, total: int, now: float) -> bool:
        """The last line always; between the first and the last, at most one per interval."""
        if self.first is None:
            self.first = (done, now)
        if (done, total) == self.shown:
            return False
        if done >= total:
            return True
        interval = min(MAX_INTERVAL, max(MIN_INTERVAL, (now - self.start) / 10))
        return now - self.shown_at >= interval

    def fields(self, done: int, total: int, correct: float | None, now: float) -> dict[str, Any]:
        self.shown, self.shown_at = (done, total), now
        since, t0 = self.first or (done, now)
        rate = (done - since) / (now - t0) if done > since and now > t0 else None
        eta = 0.0 if done >= total else None if rate is None else (total - done) / rate
        return {
            "phase": self.label,
            "done": done,
            "total": total,
            "score": None if correct is None or not done else round(correct / done, 4),
            "elapsed_s": round(now - self.start, 1),
            "eta_s": None if eta is None else round(eta, 1),
        }


class _Lines:
    """A reporter for logs: a line when a phase starts, a few while it runs, one when it ends."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._phase: _Phase | None = None

    def phase(self, label: str, total: int) -> None:
        now = self._clock()
        self._phase = _Phase(label, total, now)
        self._event("phase", self._phase.fields(0, total, None, now))

    def update(self, done: int, total: int, correct: float | None = None) -> None:
        now = self._clock()
        if self._phase is not None and self._phase.due(done, total, now):
            self._event("progress", self._phase.fields(done, total, correct, now))

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(round(seconds), 60)
    return f"{m // 60}:{m % 60:02d}:{s:02d}" if m >= 60 else f"{m}:{s:02d}"


class PlainReporter(_Lines):
    """Plain lines for a log: per phase its first and last line and a few between (done/total, score
    so far, elapsed, ETA); a line per finished round and per message, as on a terminal."""

    def __init__(self, *, out: Console | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock=clock)
        self._console = out or console

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        line = (
            f"{fields['phase']}  {fields['done']}/{fields['total']}  score {_pct(fields['score'])}  "
            f"elapsed {_clock(fields['elapsed_s'])}  eta {_clock(fields['eta_s'])}"
        )
        # One line per event, however long: a log is read with grep, not at 80 columns.
        self._console.print(line, markup=False, highlight=False, soft_wrap=True)

    def round_done(self, row: dict[str, Any]) -> None:
        for line in _round_lines(row):
            self._console.print(line)

    def message(self, text: str) -> None:
        self._console.print(text)


class JsonReporter(_Lines):
    """One JSON object a line, flushed: ``phase`` and ``progress`` events (phase, done, total, score,
    elapsed_s, eta_s), ``round`` (the round's metrics ``row``) and ``message`` (``text``)."""

    def __init__(self, *, out: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(clock=clock)
        self._out = out

    def _event(self, event: str, fields: dict[str, Any]) -> None:
        out = self._out or sys.stdout
        out.write(json.dumps({"event": event, **fields}, default=str) + "\n")
        out.flush()

    def round_done(self, row: dict[str, Any]) -> None:
        self._event("round", {"row": row})

    def message(self, text: str) -> None:
        self._event("message", {"text": text})
