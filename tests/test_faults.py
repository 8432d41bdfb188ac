"""Issue 13: the fault-injection matrix. Each fault the scripted endpoint can inject, on each role,
once (transient) and on a fixed fifth of the requests (persistent): the run finishes, every request
the endpoint saw is a ledger row, a fault that a retry cures leaves the results of a clean run, and a
fault that persists is a recorded per-item failure, never a crash or a silent success."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

import tutelage
from tutelage.agents.ledger import Ledger
from tutelage.evals.harness import Attempt, load_journal
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer

from .conftest import scripted_config, teacher_reply

RETRIED_AWAY = (500, 429, 503, "disconnect", "not_json", "hang")  # a retry gets a good reply
NOT_RETRIED = ("empty_choices", "null_content", "huge")  # a 200: the reply is what it is
SMALL = ("suite.train_size=40", "suite.dev_size=10", "suite.test_size=12", "loop.rounds=1")
SMALL += ("loop.batch_size=12", "loop.search_size=4", "loop.search_k=[1]", "loop.search_strategies=[0]")
SMALL += ("student.timeout=1", "teacher.timeout=1", "student.retries=1", "teacher.retries=1")


def _a_fifth(body: dict[str, Any]) -> bool:
    """A fixed fifth of the requests, chosen by content (the same whatever the thread order)."""
    text = json.dumps(body.get("messages", []), sort_keys=True)
    return hashlib.sha256(text.encode()).digest()[0] % 5 == 0


def _run(tmp_path: Path, role: str | None, fault: Any, persistent: bool) -> tuple[Any, dict[str, int]]:
    with (
        ScriptedServer(last_demo_answer, model="student") as student,
        ScriptedServer(teacher_reply, model="teacher") as teacher,
    ):
        target = {"student": student, "teacher": teacher}.get(role or "")
        if target is not None:
            if persistent:
                target.fail_when(_a_fifth, fault)
            else:
                target.fail_next(fault)
        cfg = scripted_config(tmp_path, student.api_base, teacher.api_base, *SMALL)
        result = tutelage.run(cfg, embedder=HashEmbedder())
        seen = {"student": len(student.chat_requests()), "teacher": len(teacher.chat_requests())}
    return result, seen


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return _run(tmp_path_factory.mktemp("clean"), None, None, False)[0]


def _item_failures(run_dir: Path) -> int:
    return sum(
        1
        for path in run_dir.rglob("*.jsonl")
        if path.parent.name.startswith("round_") or path.parent.name == "evals"
        for a in load_journal(path, Attempt).values()
        if path.stem in ("attempts", "dev", "test_before", "test_after") and a.error
    )


@pytest.mark.parametrize("role", ["student", "teacher"])
@pytest.mark.parametrize("fault", [*RETRIED_AWAY, *NOT_RETRIED])
@pytest.mark.parametrize("persistent", [False, True], ids=["transient", "persistent"])
def test_a_fault_on_either_role_is_retried_or_recorded_and_every_request_is_a_ledger_row(
    tmp_path: Path, clean: Any, role: str, fault: Any, persistent: bool
) -> None:
    result, seen = _run(tmp_path, role, fault, persistent)
    assert result.test_after is not None and [r["round"] for r in result.metrics["rounds"]] == [1]
    calls = Ledger(result.run_dir / "ledger.jsonl").calls
    for name in ("student", "teacher"):  # every request the endpoint saw, retries and empties included
        assert sum(1 for c in calls if c.role == name) == seen[name], name
    if fault == "huge":  # a 1 MB reply is cut where it is received: no journal stores it whole
        longest = max(len(line) for p in result.run_dir.rglob("*.jsonl") for line in p.open())
        assert longest < 100_000
        return
    assert any(not c.ok for c in calls if c.role == role), "the fault is in the ledger"
    if not persistent and fault in RETRIED_AWAY:  # cured by the retry: the clean run's results
        assert result.metrics["test_accuracy"] == clean.metrics["test_accuracy"]
        assert result.metrics["rounds"][0]["dev_accuracy"] == clean.metrics["rounds"][0]["dev_accuracy"]
    if persistent and role == "student":  # those items failed, and say so
        assert _item_failures(result.run_dir) > 0
        assert result.metrics["cost"]["student"]["failures"] > 0


def broken_grader(prediction: str, gold: str) -> float:
    raise KeyError("label_map")


def test_a_grader_that_fails_on_every_item_stops_the_run_with_one_line_not_a_silent_zero(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    # Finding 4: a grader failing on every item finished with 0% and no warning.
    cfg = scripted_config(
        tmp_path,
        student_server.api_base,
        teacher_server.api_base,
        *SMALL,
        "suite.metric=tests.test_faults:broken_grader",
    )
    with pytest.raises(
        tutelage.TutelageError,
        match=r"the grader failed on all 10 items of dev \(starting program\): grader: KeyError",
    ):
        tutelage.run(cfg, embedder=HashEmbedder())
