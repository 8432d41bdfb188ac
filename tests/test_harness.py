"""The harness: journaled, resumable, and interruptible without losing finished items."""

import json
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pytest

from tutelage.evals import Attempt, Task, load_journal, run_tasks

TASKS = [Task(f"t{i}", f"input {i}", "gold") for i in range(40)]


def test_journal_lets_a_rerun_skip_finished_items(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    seen: list[str] = []

    def solve(task: Task) -> Attempt:
        seen.append(task.id)
        return Attempt(task.id, "gold", 1.0)

    run_tasks(solve, TASKS[:10], journal=journal)
    first = len(seen)
    results = run_tasks(solve, TASKS[:15], journal=journal)
    assert first == 10 and len(seen) == 15
    assert [a.task_id for a in results] == [t.id for t in TASKS[:15]]


def test_ctrl_c_stops_promptly_and_keeps_what_finished(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    lock = threading.Lock()
    calls = 0

    def solve(task: Task) -> Attempt:
        nonlocal calls
        with lock:
            calls += 1
            n = calls
        if n == 5:
            raise KeyboardInterrupt
        time.sleep(0.01)
        return Attempt(task.id, "gold", 1.0)

    with pytest.raises(KeyboardInterrupt):
        run_tasks(solve, TASKS, concurrency=2, journal=journal)
    kept = load_journal(journal)
    assert 3 <= len(kept) < 10
    assert calls < len(TASKS)


def test_a_torn_last_line_from_a_kill_is_ignored(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    run_tasks(lambda t: Attempt(t.id, "gold", 1.0), TASKS[:3], journal=journal)
    with journal.open("a") as fh:
        fh.write('{"task_id": "t3", "answ')
    assert sorted(load_journal(journal)) == ["t0", "t1", "t2"]


def test_a_record_after_a_torn_line_is_not_glued_onto_it(tmp_path: Path) -> None:
    journal = tmp_path / "j.jsonl"
    tasks = [Task(f"t{i}", f"q{i}", "a") for i in range(3)]
    journal.write_text(json.dumps(asdict(Attempt("t0", "a", 1.0))) + "\n" + '{"task_id": "t1", "ans')
    run_tasks(lambda t: Attempt(t.id, "a", 1.0), tasks, concurrency=1, journal=journal)
    assert set(load_journal(journal)) == {"t0", "t1", "t2"}
