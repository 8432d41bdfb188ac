"""The evaluation harness: run a solver over tasks concurrently, grade, journal every item to disk.

A journal (JSONL, one line per finished item) makes a killed evaluation resume without redoing
finished items. Per-item failures are recorded, never raised; systemic ones (endpoint down) raise.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from tutelage import runfiles
from tutelage.evals.suites import Task

__all__ = ["Attempt", "EvalResult", "Solver", "accuracy", "load_journal", "run_tasks"]


@dataclass(frozen=True)
class Attempt:
    """What the student did on one task: its answer, the lessons it was shown, its score or failure."""

    task_id: str
    answer: str
    score: float
    lesson_ids: list[str] = field(default_factory=list)
    error: str | None = None
    raw: str | None = None  # the model's own reply, when it differs from the answer read from it
    # An agent's steps (``tutelage.evals.trajectory.Step.to_json()`` rows), when it reports them.
    steps: list[dict[str, Any]] | None = None


Solver = Callable[[Task], Attempt]


@dataclass(frozen=True)
class EvalResult:
    accuracy: float
    n: int
    failures: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


R = TypeVar("R")

# Journaled failures that are redone on resume: the item's request never reached the model
# (``tutelage.backends.ItemConnectionError``), so its failure says nothing about the item.
RETRY_PREFIX = "ItemConnectionError:"


class Item(Protocol):
    """Anything with a stable id (a Task, a Lesson being verified)."""

    @property
    def id(self) -> str: ...


ItemT = TypeVar("ItemT", bound=Item)


def load_journal(path: Path | None, record: type[R] = Attempt) -> dict[str, R]:  # type: ignore[assignment]
    """Records already journaled at ``path`` (a torn last line from a kill is ignored)."""
    if path is None or not path.is_file():
        return {}
    done: dict[str, R] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            done[row["task_id"]] = record(**row)
        except (ValueError, TypeError, KeyError):
            continue
    return done


def accuracy(attempts: Iterable[Attempt]) -> EvalResult:
    rows = list(attempts)
    n = len(rows)
    return EvalResult(
        accuracy=sum(a.score for a in rows) / n if n else 0.0,
        n=n,
        failures=sum(1 for a in rows if a.error),
    )


def _progress(
    on_progress: Callable[[int, int], None] | None,
) -> Callable[[int, int, float | None], None] | None:
    """``on_progress(done, total)``, also given ``correct=`` when it takes that keyword (a reporter that
    shows the score so far); callbacks written for two arguments keep working."""
    if on_progress is None:
        return None
    try:
        params = list(inspect.signature(on_progress).parameters.values())
    except (TypeError, ValueError):  # a callable without a signature
        params = []
    if any(p.name == "correct" or p.kind is p.VAR_KEYWORD for p in params):
        scored: Callable[..., None] = on_progress
        return lambda done, total, correct: scored(done, total, correct=correct)
    return lambda done, total, correct: on_progress(done, total)


def run_tasks(
    solve: Callable[[ItemT], R],
    tasks: list[ItemT],
    *,
    concurrency: int = 4,
    journal: Path | None = None,
    record: type[R] = Attempt,  # type: ignore[assignment]
    on_progress: Callable[[int, int], None] | None = None,
) -> list[R]:
    """Run ``solve`` on every task (records already in ``journal`` are reused), in the order of ``tasks``.

    ``record`` is the dataclass ``solve`` returns (it has a ``task_id``); it is what the journal holds.
    ``on_progress(done, total)`` is called as items finish; one that takes a ``correct`` keyword also
    gets the summed ``score`` of the finished items (``None`` when ``record`` has no score).
    """
    # An item whose request could not connect is redone: the endpoint was down, not the item wrong.
    done = {
        i: r
        for i, r in load_journal(journal, record).items()
        if not str(getattr(r, "error", None) or "").startswith(RETRY_PREFIX)
    }
    todo = [t for t in tasks if t.id not in done]
    lock = threading.Lock()
    total = len(tasks)
    finished = total - len(todo)
    progress = _progress(on_progress)
    correct: float | None = None
    if progress and "score" in getattr(record, "__dataclass_fields__", {}):
        correct = sum(float(getattr(done[t.id], "score", 0.0)) for t in tasks if t.id in done)
    if progress:
        progress(finished, total, correct)
    sink: runfiles.Appender | None = None

    def one(task: ItemT) -> None:
        nonlocal finished, correct
        attempt = solve(task)
        with lock:
            done[task.id] = attempt
            if sink is not None:
                sink.line(json.dumps(asdict(attempt)))  # type: ignore[call-overload]
            finished += 1
            if progress:
                if correct is not None:
                    correct += float(getattr(attempt, "score", 0.0))
                progress(finished, total, correct)

    with contextlib.ExitStack() as stack:
        if journal is not None:
            sink = stack.enter_context(runfiles.appending(journal))
        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        try:
            futures = [pool.submit(one, t) for t in todo]
            finished_set, _ = wait(futures, return_when=FIRST_EXCEPTION)
            for fut in finished_set:
                if (exc := fut.exception()) is not None:
                    raise exc
        finally:
            # On Ctrl-C or a systemic error, drop what has not started; finished items are journaled.
            pool.shutdown(wait=True, cancel_futures=True)
    return [done[t.id] for t in tasks]
