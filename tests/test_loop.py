"""The whole loop against scripted endpoints: metrics, leakage, checkpoints and resume."""

import json
from pathlib import Path
from typing import Any

import pytest

import tutelage
from tutelage.agents.student import StudentProgram
from tutelage.loop import LogReporter
from tutelage.memory.location import open_run_memory
from tutelage.rundir import RunPaths
from tutelage.testing import HashEmbedder, ScriptedServer

from .conftest import scripted_config


class KillAt(LogReporter):
    """Simulates Ctrl-C/kill at the start of a named phase."""

    def __init__(self, label: str) -> None:
        self.label = label

    def phase(self, label: str, total: int) -> None:
        if label.startswith(self.label):
            raise KeyboardInterrupt


def _lessons(run_dir: Path) -> list[str]:
    paths = RunPaths(run_dir)
    return sorted(
        x.id for x in open_run_memory(paths, tutelage.load_config(paths.config), HashEmbedder()).all()
    )


def test_two_round_loop_writes_metrics_programs_and_report(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base)
    result = tutelage.run(cfg, embedder=HashEmbedder())
    metrics = json.loads((result.run_dir / "metrics.json").read_text())
    assert [r["round"] for r in metrics["rounds"]] == [1, 2]
    assert set(metrics["rounds"][0]) >= {"round", "dev_accuracy", "lessons", "seconds"}
    assert metrics["test_accuracy"]["before"] == 0.0  # no lessons yet: the scripted student says "unknown"
    assert metrics["test_accuracy"]["after"] > 0.0  # retrieved gold examples now answer some test items
    assert metrics["rounds"][1]["lessons"] >= metrics["rounds"][0]["lessons"] > 0
    for name in ("config.yaml", "versions.json", "report.md", "checkpoints.sqlite", "programs/round_2.json"):
        assert (result.run_dir / name).exists(), name
    assert "Held-out test accuracy" in (result.run_dir / "report.md").read_text()


def test_teacher_never_sees_a_test_item(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base)
    tutelage.run(cfg, embedder=HashEmbedder())
    suite = tutelage.evals.load_suite(cfg.suite)
    sent = json.dumps(teacher_server.requests)
    assert teacher_server.chat_requests()
    assert not [t.input for t in suite.test if json.dumps(t.input)[1:-1] in sent]


def test_killed_run_resumes_to_the_same_lessons_without_redoing_round_one(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    straight = tutelage.run(
        scripted_config(tmp_path / "a", student_server.api_base, teacher_server.api_base),
        embedder=HashEmbedder(),
    )
    cfg = scripted_config(tmp_path / "b", student_server.api_base, teacher_server.api_base)
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 2: teacher"), embedder=HashEmbedder())
    run_dir = tmp_path / "b" / "runs" / "scripted"
    calls_before_resume = len(student_server.chat_requests())
    resumed = tutelage.resume(run_dir, embedder=HashEmbedder())
    resumed_calls = student_server.chat_requests()[calls_before_resume:]
    assert _lessons(resumed.run_dir) == _lessons(straight.run_dir)
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1, 2]
    assert resumed.metrics["test_accuracy"] == straight.metrics["test_accuracy"]
    # Round 1 and round 2's attempts were journaled: the resumed run only compiles, evaluates, monitors
    # and tests.
    cfg_loop = cfg.loop
    grid = len(cfg_loop.search_k) * len(cfg_loop.search_strategies)
    bound = grid * cfg_loop.search_size + cfg.suite.dev_size + cfg.guards.monitor_size + 40
    assert len(resumed_calls) <= bound


def test_resume_of_a_finished_run_changes_nothing(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    result = tutelage.run(
        scripted_config(tmp_path, student_server.api_base, teacher_server.api_base), embedder=HashEmbedder()
    )
    calls = len(student_server.requests)
    again = tutelage.resume(result.run_dir, embedder=HashEmbedder())
    assert again.metrics == result.metrics and len(student_server.requests) == calls


def test_student_load_answers_with_the_runs_program_and_memory(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    result = tutelage.run(
        scripted_config(tmp_path, student_server.api_base, teacher_server.api_base), embedder=HashEmbedder()
    )
    lesson = open_run_memory(
        RunPaths(result.run_dir), tutelage.load_config(result.run_dir / "config.yaml"), HashEmbedder()
    ).all()[0]
    with tutelage.Student.load(result.run_dir, embedder=HashEmbedder()) as student:
        out: dict[str, Any] = student.predict(lesson.text, gold=lesson.answer)
        assert student(lesson.text) == lesson.answer
    assert out["score"] == 1.0 and lesson.id in out["lesson_ids"]


@pytest.mark.parametrize("optimizer", ["bootstrap", "none", "mipro", "gepa"])
def test_other_optimizers_compile_a_reloadable_program(tmp_path: Path, optimizer: str) -> None:
    suite_cfg = scripted_config(tmp_path, "http://x", "http://x").suite
    gold = {t.input: t.answer for t in tutelage.evals.load_suite(suite_cfg).by_id().values()}

    def oracle(request: dict[str, Any]) -> str:  # a student that is always right
        return gold.get(request["messages"][-1]["content"], "unknown")

    with ScriptedServer(oracle) as student, ScriptedServer(lambda r: "DIAGNOSIS: d") as teacher:
        cfg = scripted_config(
            tmp_path,
            student.api_base,
            teacher.api_base,
            f"loop.optimizer={optimizer}",
            "loop.rounds=1",
            "loop.trials=2",
            "loop.metric_calls=12",
        )
        result = tutelage.run(cfg, embedder=HashEmbedder())
    path = result.run_dir / "programs" / "round_1.json"
    program = json.loads(path.read_text())
    assert program["meta"]["optimizer"] == optimizer and "trials" in program["meta"]
    reloaded = StudentProgram.load_json(path, memory=None)
    assert reloaded.predict.signature.instructions == program["instructions"]
    assert len(program["predict"]["demos"]) == (2 if optimizer == "bootstrap" else 0)
    assert result.metrics["rounds"][0]["dev_accuracy"] == 1.0


def test_metrics_record_where_the_time_went(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base, "loop.rounds=1")
    metrics = tutelage.run(cfg, embedder=HashEmbedder()).metrics
    assert set(metrics["test_seconds"]) == {"before", "after"}
    phases = metrics["rounds"][0]["phase_seconds"]
    assert set(phases) >= {"attempt", "diagnose", "write_lessons", "compile_program", "evaluate_dev"}
    assert metrics["rounds"][0]["seconds"] >= sum(phases.values()) - 0.5


class StopServerAt(LogReporter):
    """The student endpoint goes away when a named phase starts."""

    def __init__(self, label: str, server: ScriptedServer) -> None:
        self.label, self.server = label, server

    def phase(self, label: str, total: int) -> None:
        if label.startswith(self.label):
            self.server.stop()


def test_an_endpoint_lost_mid_run_fails_cleanly_and_the_run_resumes_when_it_is_back(
    tmp_path: Path, teacher_server: ScriptedServer
) -> None:
    with ScriptedServer() as student:
        straight = tutelage.run(
            scripted_config(tmp_path / "a", student.api_base, teacher_server.api_base),
            embedder=HashEmbedder(),
        )
    student = ScriptedServer().start()
    cfg = scripted_config(tmp_path / "b", student.api_base, teacher_server.api_base, "student.retries=0")
    with pytest.raises(tutelage.TutelageError, match="student endpoint failed"):
        tutelage.run(
            cfg, reporter=StopServerAt("round 2: student attempts", student), embedder=HashEmbedder()
        )
    run_dir = tmp_path / "b" / "runs" / "scripted"
    assert len(RunPaths(run_dir).journal(1, "attempts").read_text().splitlines()) == cfg.loop.batch_size
    with ScriptedServer(port=student.port):  # the endpoint is back at the same address
        resumed = tutelage.resume(run_dir, embedder=HashEmbedder())
    assert _lessons(resumed.run_dir) == _lessons(straight.run_dir)
    assert resumed.metrics["test_accuracy"] == straight.metrics["test_accuracy"]


@pytest.mark.parametrize("examples", ["attempted", "failed"])
def test_solved_items_become_examples_only_when_memory_examples_is_attempted(
    tmp_path: Path, teacher_server: ScriptedServer, examples: str
) -> None:
    suite_cfg = scripted_config(tmp_path, "http://x", "http://x").suite
    gold = {t.input: t.answer for t in tutelage.evals.load_suite(suite_cfg).by_id().values()}

    def half_right(request: dict[str, Any]) -> str:  # right on inputs of even length, else lost
        task = request["messages"][-1]["content"]
        return gold.get(task, "unknown") if len(task) % 2 == 0 else "unknown"

    with ScriptedServer(half_right) as student:
        cfg = scripted_config(
            tmp_path,
            student.api_base,
            teacher_server.api_base,
            "loop.rounds=1",
            f"memory.examples={examples}",
        )
        result = tutelage.run(cfg, embedder=HashEmbedder())
    paths = RunPaths(result.run_dir)
    attempts = [json.loads(line) for line in paths.journal(1, "attempts").read_text().splitlines()]
    solved = {a["task_id"] for a in attempts if a["score"] == 1.0}
    failed = {a["task_id"] for a in attempts} - solved
    assert solved and failed
    stored = [
        x
        for x in open_run_memory(paths, tutelage.load_config(paths.config), HashEmbedder()).all()
        if x.kind == "example"
    ]
    sources = {x.provenance.source_task_ids[0] for x in stored}
    assert sources >= failed  # failures always get their gold example
    if examples == "attempted":
        assert sources >= solved
        from_solved = [x for x in stored if x.provenance.source_task_ids[0] in solved]
        assert all(x.provenance.teacher_model == "" for x in from_solved)
        assert all("correctly" in x.history[0].reason for x in from_solved)
    else:
        assert not sources & solved
