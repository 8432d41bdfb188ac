"""The command line as a user meets it: one clear line and a non-zero exit on bad input."""

from pathlib import Path

import yaml
from click.testing import Result
from typer.testing import CliRunner

import tutelage
from tutelage.cli import app
from tutelage.testing import ScriptedServer

from .conftest import scripted_config

runner = CliRunner()


def _one_line_error(result: Result) -> str:
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


def test_missing_config_file_is_one_line_and_exit_1() -> None:
    result = runner.invoke(app, ["run", "missing.yaml"])
    assert result.exit_code == 1
    assert "config file not found: missing.yaml" in _one_line_error(result)


def test_unknown_key_is_one_line_and_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("student:\n  modle: x\n")
    result = runner.invoke(app, ["run", str(bad)])
    assert result.exit_code == 1
    assert "unknown key 'student.modle'" in _one_line_error(result)


def test_refused_student_endpoint_is_one_line_exit_1_and_leaves_no_run_directory(tmp_path: Path) -> None:
    cfg = tmp_path / "remote.yaml"
    cfg.write_text(
        f"runs_dir: {tmp_path / 'runs'}\n"
        "student: {provider: openai, api_base: 'http://127.0.0.1:9/v1', model: m}\n"
        "teacher: {provider: openai, api_base: 'http://127.0.0.1:9/v1', model: m}\n"
        "memory: {embedder: {provider: openai, api_base: 'http://127.0.0.1:9/v1'}}\n"
    )
    result = runner.invoke(app, ["run", str(cfg)])
    assert result.exit_code == 1
    assert "student endpoint http://127.0.0.1:9/v1 refused the connection" in _one_line_error(result)
    assert not (tmp_path / "runs" / "quickstart").exists()


def test_resume_of_a_directory_that_is_not_a_run_fails_cleanly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a tutelage run directory" in _one_line_error(result)


def test_memory_list_and_eval_read_a_finished_run(tmp_path: Path) -> None:
    with (
        ScriptedServer() as student,
        ScriptedServer(lambda r: "DIAGNOSIS: d\nSTRATEGY: look closer") as teacher,
    ):
        cfg = scripted_config(
            tmp_path,
            student.api_base,
            teacher.api_base,
            "memory.embedder.provider=openai",
            f"memory.embedder.api_base={student.api_base}",
            "memory.embedder.model=hash",
        )
        run = tutelage.run(cfg)
        listed = runner.invoke(app, ["memory", "list", str(run.run_dir)])
        assert listed.exit_code == 0, listed.output
        assert f"{run.metrics['rounds'][-1]['lessons_stored']} lessons" in listed.output
        scored = runner.invoke(app, ["eval", "--memory", str(run.run_dir), "--limit", "5"])
        assert scored.exit_code == 0, scored.output
        said = " ".join(scored.output.split())
        assert "banking77 test: score" in said and "on 5 of 3,080 items (a seeded sample" in said


def test_a_bad_override_is_blamed_on_the_override() -> None:
    result = runner.invoke(app, ["run", "--set", "loop.rounds=zero"])
    assert result.exit_code == 1
    assert "with --set loop.rounds=zero: loop.rounds" in _one_line_error(result)


def test_run_prints_why_it_stopped_what_it_cost_and_which_program_it_kept(tmp_path: Path) -> None:
    with (
        ScriptedServer() as student,
        ScriptedServer(lambda r: "DIAGNOSIS: d\nSTRATEGY: look closer") as teacher,
    ):
        cfg = scripted_config(tmp_path, student.api_base, teacher.api_base)
        config = tmp_path / "run.yaml"
        config.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        result = runner.invoke(
            app,
            [
                "run",
                str(config),
                "--set",
                "loop.rounds=4",
                "--set",
                "loop.budget.teacher_tokens=1500",
                "--set",
                "memory.embedder.provider=openai",
                "--set",
                f"memory.embedder.api_base={student.api_base}",
                "--set",
                "memory.embedder.model=hash",
            ],
            env={"COLUMNS": "80"},
        )
    assert result.exit_code == 0, result.output
    assert "stopped: teacher token budget spent (" in result.output
    assert "cost: student " in result.output and "teacher " in result.output
    assert "at the start ->" in result.output and "kept" in result.output
    assert max(len(line) for line in result.output.splitlines()) <= 80
