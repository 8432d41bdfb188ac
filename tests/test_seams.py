"""Each backend seam takes a new implementation as one file plus one registry line, and the loop uses it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.memory import InMemorySaver

import tutelage
from tests.conftest import scripted_config
from tests.test_loop import KillAt
from tutelage import checkpoints, train
from tutelage.agents import base as students
from tutelage.agents.student import StudentProgram
from tutelage.errors import ConfigError, DataError
from tutelage.rundir import RunPaths
from tutelage.testing import HashEmbedder, ScriptedServer, run_fingerprint


def test_the_jsonl_store_runs_the_loop_and_resumes_to_the_same_lessons_as_an_uninterrupted_run(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    # The toy store is one file and one registry line; the whole loop, kill and resume included, runs on it.
    base = (student_server.api_base, teacher_server.api_base)
    whole = tutelage.run(
        scripted_config(tmp_path / "a", *base, "memory.store=jsonl"), embedder=HashEmbedder()
    )
    assert (whole.run_dir / "memory" / "lessons.jsonl").is_file()
    assert not (whole.run_dir / "memory" / "chroma.sqlite3").exists()
    cfg = scripted_config(tmp_path / "b", *base, "memory.store=jsonl")
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 2: teacher"), embedder=HashEmbedder())
    resumed = tutelage.resume(cfg.run_dir, embedder=HashEmbedder())
    expected = run_fingerprint(whole.run_dir, HashEmbedder())
    assert expected["lessons"] and run_fingerprint(resumed.run_dir, HashEmbedder()) == expected
    # and the same seed on Chroma ends the same: the store changes nothing the student sees
    chroma = tutelage.run(scripted_config(tmp_path / "c", *base), embedder=HashEmbedder())
    assert run_fingerprint(chroma.run_dir, HashEmbedder()) == expected


def test_runs_sharing_one_checkpoint_database_keep_apart_by_run_id(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    shared = tmp_path / "checkpoints.sqlite"
    base = (student_server.api_base, teacher_server.api_base)
    first = scripted_config(tmp_path / "a", *base, f"checkpoints.url=sqlite://{shared}")
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(first, reporter=KillAt("round 1: teacher"), embedder=HashEmbedder())
    second = tutelage.run(
        scripted_config(tmp_path / "b", *base, f"checkpoints.url=sqlite://{shared}"), embedder=HashEmbedder()
    )
    resumed = tutelage.resume(first.run_dir, embedder=HashEmbedder())
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1, 2]
    # same config, same seed: the resumed run ends as the other did
    assert run_fingerprint(resumed.run_dir, HashEmbedder()) == run_fingerprint(second.run_dir, HashEmbedder())
    assert not (first.run_dir / "checkpoints.sqlite").exists()
    with sqlite3.connect(shared) as db:
        threads = {row[0] for row in db.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert threads == {RunPaths(first.run_dir).thread_id, RunPaths(second.run_dir).thread_id}
    assert all(t.startswith("scripted-") for t in threads)


def test_a_run_folder_from_before_run_ids_still_resumes(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base)
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 2: teacher"), embedder=HashEmbedder())
    # what an older tutelage left: no run_id file, every checkpoint under the thread "loop"
    (cfg.run_dir / "run_id").unlink()
    with sqlite3.connect(cfg.run_dir / "checkpoints.sqlite") as db:
        db.execute("UPDATE checkpoints SET thread_id = 'loop'")
        db.execute("UPDATE writes SET thread_id = 'loop'")
    resumed = tutelage.resume(cfg.run_dir, embedder=HashEmbedder())
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1, 2]
    assert resumed.metrics["rounds"][0]["round"] == 1 and resumed.test_after is not None


def test_a_checkpoint_url_nobody_serves_is_one_line_and_leaves_no_run_folder(tmp_path: Path) -> None:
    cfg = tutelage.load_config(
        None, [f"runs_dir={tmp_path / 'runs'}", "checkpoints.url=mysql://db.example/tutelage"]
    )
    with pytest.raises(
        ConfigError, match=r"no checkpointer for 'mysql' \(known: postgres://, postgresql://, sqlite://\)"
    ):
        tutelage.run(cfg)
    assert not (tmp_path / "runs" / cfg.name).exists()


_SAVERS: dict[str, InMemorySaver] = {}


class _MemoryCheckpoints:
    """A checkpointer a test registers for ``memory://NAME``: LangGraph's in-memory saver, kept by name."""

    def __init__(self, url: str | None, *, paths: RunPaths) -> None:
        self.saver = _SAVERS.setdefault(str(url), InMemorySaver())
        self.thread_id = paths.thread_id

    def exists(self) -> bool:
        return self.saver.get_tuple({"configurable": {"thread_id": self.thread_id}}) is not None

    @contextlib.contextmanager
    def open(self) -> Iterator[InMemorySaver]:
        yield self.saver


def test_a_checkpointer_registered_in_one_line_carries_a_killed_run_to_its_end(
    tmp_path: Path,
    student_server: ScriptedServer,
    teacher_server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(checkpoints.CHECKPOINTERS, "memory", f"{__name__}:_MemoryCheckpoints")
    cfg = scripted_config(
        tmp_path, student_server.api_base, teacher_server.api_base, "checkpoints.url=memory://t"
    )
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 2: teacher"), embedder=HashEmbedder())
    assert not (cfg.run_dir / "checkpoints.sqlite").exists()
    resumed = tutelage.resume(cfg.run_dir, embedder=HashEmbedder())
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1, 2]
    assert resumed.test_after is not None


class _EchoTrainer:
    """A trainer a test registers: it 'trains' by copying its rows, to show the slot takes one."""

    def train(
        self, base: str, *, data: Path, out_dir: Path, seed: int, options: dict[str, Any]
    ) -> train.Adapter:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "rows.jsonl").write_text(data.read_text())
        return train.Adapter(name=f"{base}-echo", base=base, path=out_dir, trainer="echo")


def test_the_trainer_slot_takes_a_registered_trainer_and_refuses_an_unknown_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match="trainer 'no-such' is not registered .known: openai, peft"):
        train.trainer("no-such")
    monkeypatch.setitem(train.TRAINERS, "echo", f"{__name__}:_EchoTrainer")
    rows = tmp_path / "sft.jsonl"
    rows.write_text('{"messages": []}\n')
    adapter = train.trainer("echo").train("smollm2", data=rows, out_dir=tmp_path / "out", seed=0, options={})
    assert (
        adapter.name == "smollm2-echo" and (tmp_path / "out" / "rows.jsonl").read_text() == rows.read_text()
    )


class _ShoutingStudent(StudentProgram):
    """A student kind a test registers under its own saved format."""

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "format": "test.shouting/1"}


def test_a_saved_student_reloads_through_the_format_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "program.json"
    _ShoutingStudent("Answer loudly.", k_examples=2).save_json(path)
    with pytest.raises(DataError, match="not a saved tutelage student"):
        StudentProgram.load_json(path, memory=None)
    monkeypatch.setitem(students.STUDENT_FORMATS, "test.shouting/1", f"{__name__}:_ShoutingStudent")
    loaded = StudentProgram.load_json(path, memory=None)
    assert type(loaded) is _ShoutingStudent and loaded.k_examples == 2
    assert isinstance(loaded, students.StudentProtocol)
