"""The evaluation harness: run a solver over tasks concurrently, grade, journal every item to disk.

A journal (JSONL, one line per finished item) makes a killed evaluation resume without redoing
finished items. Per-item failures are recorded, never raised; systemic ones (endpoint down) raise.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

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
    if on_progress:
        on_progress(finished, total)
    if journal is not None:
        journal.parent.mkdir(parents=True, exist_ok=True)
    sink = journal.open("a", encoding="utf-8") if journal is not None else None
    if sink is not None and journal is not None and journal.stat().st_size:
        with journal.open("rb") as fh:
            fh.seek(-1, 2)
            if fh.read(1) != b"\n":  # a line torn by a kill: the next record must not be glued onto it
                sink.write("\n")

    def one(task: ItemT) -> None:
        nonlocal finished
        attempt = solve(task)
        with lock:
            done[task.id] = attempt
            if sink is not None:
                sink.write(json.dumps(asdict(attempt)) + "\n")  # type: ignore[call-overload]
                sink.flush()
            finished += 1
            if on_progress:
                on_progress(finished, total)

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
        if sink is not None:
            sink.close()
    return [done[t.id] for t in tasks]
