"""A role served by several replicas: requests spread over them, and a replica that dies mid-round is
taken out while the run goes on with the same results."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import tutelage
from tutelage.agents.ledger import Ledger
from tutelage.config import load_config
from tutelage.errors import ConfigError
from tutelage.rundir import RunPaths
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer

from .conftest import scripted_config


def _journal_answers(run_dir: Path) -> dict[str, Any]:
    paths = RunPaths(run_dir)
    out = {}
    for name in ("dev", "attempts"):
        for line in paths.journal(1, name).read_text().splitlines():
            row = json.loads(line)
            out[f"{name}:{row['task_id']}"] = (row.get("answer"), row.get("error"))
    return out


def test_one_of_three_replicas_dies_mid_round_and_the_run_goes_on_unchanged(
    tmp_path: Path, teacher_server: ScriptedServer
) -> None:
    with ScriptedServer(last_demo_answer, model="student") as single:
        straight = tutelage.run(
            scripted_config(tmp_path / "a", single.api_base, teacher_server.api_base), embedder=HashEmbedder()
        )
    replicas = [ScriptedServer(last_demo_answer, model="student", delay=0.01).start() for _ in range(3)]
    doomed = replicas[1]
    seen = {"n": 0}
    lock = threading.Lock()

    def kill_midway(request: dict[str, Any]) -> str:
        with lock:
            seen["n"] += 1
            if seen["n"] == 10:  # mid round 1: drop what is in flight on it, then stop listening
                doomed.fail_when(lambda _: True, "disconnect")
                threading.Thread(target=doomed.stop).start()
        return last_demo_answer(request)

    doomed.reply = kill_midway
    urls = [r.api_base for r in replicas]
    bases = "[" + ", ".join(urls) + "]"
    try:
        cfg = scripted_config(
            tmp_path / "b", replicas[0].api_base, teacher_server.api_base, f"student.api_base={bases}"
        )
        assert cfg.student.replicas == tuple(urls)
        spread = tutelage.run(cfg, embedder=HashEmbedder())
    finally:
        for r in replicas:
            r.stop()
    assert seen["n"] >= 10  # the replica did die mid-run
    assert spread.metrics["test_accuracy"] == straight.metrics["test_accuracy"]
    assert spread.metrics["dev_accuracy"] == straight.metrics["dev_accuracy"]
    assert _journal_answers(spread.run_dir) == _journal_answers(straight.run_dir)  # no item lost or failed
    rows = [c for c in Ledger(spread.run_dir / "ledger.jsonl").calls if c.role == "student"]
    assert all(c.ok for c in rows)
    named = [c.replica for c in rows]
    assert set(named) == set(urls)  # each answered, and each row says which
    last_doomed = max(i for i, n in enumerate(named) if n == urls[1])
    after = set(named[last_doomed + 1 :])
    assert after == {urls[0], urls[2]}  # the survivors carried the rest
    assert len(named) - last_doomed > 100


def test_a_replica_list_is_checked_at_the_start(tmp_path: Path, teacher_server: ScriptedServer) -> None:
    with ScriptedServer(model="student") as alive:
        dead = "http://127.0.0.1:9/v1"
        cfg = scripted_config(
            tmp_path, alive.api_base, teacher_server.api_base, f"student.api_base=[{alive.api_base}, {dead}]"
        )
        try:
            tutelage.run(cfg, embedder=HashEmbedder())
        except tutelage.TutelageError as exc:
            assert str(exc) == f"student endpoint {dead} refused the connection"
        else:
            raise AssertionError("a dead replica at the start was not reported")
    for bad, why in (("[]", "at least one"), ("[http://a/v1, http://a/v1]", "listed twice")):
        try:
            load_config(None, [f"student.api_base={bad}"])
        except ConfigError as exc:
            assert why in str(exc)
        else:
            raise AssertionError(bad)
