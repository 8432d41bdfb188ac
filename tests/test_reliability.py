"""Issue 13: a run cannot be lost. Kills at any moment of any node resume to the uninterrupted result."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

import tutelage
from tutelage.cli import app
from tutelage.memory.location import open_run_memory
from tutelage.rundir import RunPaths
from tutelage.testing import ChromaServer, HashEmbedder, ScriptedServer

from .conftest import scripted_config
from .test_loop import KillAt, _lessons


def test_a_node_saved_without_its_next_checkpoint_is_resumed_not_reported_finished(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    # Finding 1: a kill between a node's saved results (LangGraph's pending writes) and the checkpoint
    # after it left no task in `next`; resume said "already finished" and wrote metrics with no rounds.
    straight = tutelage.run(
        scripted_config(tmp_path / "a", student_server.api_base, teacher_server.api_base),
        embedder=HashEmbedder(),
    )
    cfg = scripted_config(tmp_path / "b", student_server.api_base, teacher_server.api_base)
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 1: teacher"), embedder=HashEmbedder())
    with sqlite3.connect(cfg.run_dir / "checkpoints.sqlite") as db:  # the last checkpoint never landed
        (last,) = db.execute("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1")
        db.execute("DELETE FROM checkpoints WHERE checkpoint_id = ?", last)
        db.execute("DELETE FROM writes WHERE checkpoint_id = ?", last)
        (parent,) = db.execute("SELECT checkpoint_id FROM checkpoints ORDER BY checkpoint_id DESC LIMIT 1")
        assert db.execute("SELECT count(*) FROM writes WHERE checkpoint_id = ?", parent).fetchone()[0] > 0
    resumed = tutelage.resume(cfg.run_dir, embedder=HashEmbedder())
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1, 2]
    assert resumed.metrics["test_accuracy"] == straight.metrics["test_accuracy"]
    assert _lessons(resumed.run_dir) == _lessons(straight.run_dir)


def test_a_run_killed_before_its_first_checkpoint_starts_over_on_resume(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base)
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 1: teacher"), embedder=HashEmbedder())
    with sqlite3.connect(cfg.run_dir / "checkpoints.sqlite") as db:
        db.execute("DELETE FROM checkpoints")
        db.execute("DELETE FROM writes")
    resumed = tutelage.resume(cfg.run_dir, embedder=HashEmbedder())
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1, 2]
    assert resumed.test_after is not None


def test_a_second_process_on_the_same_run_gets_one_clear_line_and_changes_nothing(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    # Finding 3: two `tutelage resume` of one run at once both ran, duplicated journal rows and
    # billed calls twice.
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base)
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 1: teacher"), embedder=HashEmbedder())
    ledger = (cfg.run_dir / "ledger.jsonl").read_text()
    calls = len(student_server.requests) + len(teacher_server.requests)
    with RunPaths(cfg.run_dir).lock():  # another process holds the run
        out = CliRunner().invoke(app, ["resume", str(cfg.run_dir)])
    assert out.exit_code == 1
    assert f"{cfg.run_dir} is in use by another tutelage process (pid {os.getpid()})" in out.output
    assert (cfg.run_dir / "ledger.jsonl").read_text() == ledger
    assert len(student_server.requests) + len(teacher_server.requests) == calls
    resumed = tutelage.resume(cfg.run_dir, embedder=HashEmbedder())  # released: the run goes on
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1, 2]


def _snapshot(run_dir: Path) -> dict[str, str]:
    paths = RunPaths(run_dir)
    store = open_run_memory(paths, tutelage.load_config(paths.config), HashEmbedder())
    return {x.id: x.status for x in store.all()}


def test_runs_sharing_a_chroma_server_keep_their_own_lessons_unless_they_share_on_purpose(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    # Finding 2: two runs on one Chroma server used one collection; B's rollbacks retired A's lessons.
    with ChromaServer(tmp_path / "chroma") as chroma:
        a = tutelage.run(
            scripted_config(
                tmp_path / "a", student_server.api_base, teacher_server.api_base, f"memory.url={chroma.url}"
            ),
            embedder=HashEmbedder(),
        )
        before = _snapshot(a.run_dir)
        b = tutelage.run(
            scripted_config(
                tmp_path / "b",
                student_server.api_base,
                teacher_server.api_base,
                f"memory.url={chroma.url}",
                "seed=7",
                "loop.rounds=3",
            ),
            embedder=HashEmbedder(),
        )
        assert _snapshot(a.run_dir) == before and before
        spaces = {tutelage.load_config(r / "config.yaml").memory.namespace for r in (a.run_dir, b.run_dir)}
        assert len(spaces) == 2 and None not in spaces
        shared = [
            tutelage.run(
                scripted_config(
                    tmp_path / name,
                    student_server.api_base,
                    teacher_server.api_base,
                    f"memory.url={chroma.url}",
                    "memory.namespace=team",
                    "loop.rounds=1",
                ),
                embedder=HashEmbedder(),
            )
            for name in ("c", "d")
        ]
        assert _snapshot(shared[0].run_dir) == _snapshot(shared[1].run_dir)
