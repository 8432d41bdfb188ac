"""Issue 13 (part): hostile input gets one clear line, a slow item is that item's failure, SIGTERM stops
a run as Ctrl-C does, and a budget spent while the starting program is scored still ends the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import tutelage
from tutelage.agents.student import StudentProgram, make_solver
from tutelage.backends import build_lm
from tutelage.cli import app
from tutelage.config import RoleConfig, load_config
from tutelage.errors import ConfigError, DataError
from tutelage.evals.suites import Task, load_suite
from tutelage.memory.playbook import read_jsonl
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer

from .conftest import scripted_config


@pytest.mark.parametrize(
    ("override", "says"),
    [
        ("name=../elsewhere", "name: must be a plain folder name"),
        ("name=/tmp/abs", "name: must be a plain folder name"),
        ('name="a\\0b"', "name: must be a plain folder name"),  # a NUL, YAML-escaped
        ("student.model=''", "student.model: String should have at least 1 character"),
        ("memory.collection=a..b", "memory.collection: a collection name may not contain '..'"),
        ("memory.collection=-lessons", "memory.collection: String should match pattern"),
        (f"memory.collection={'x' * 513}", "memory.collection: String should have at most 512 characters"),
        ("student.price_in=.inf", "student.price_in: Input should be a finite number"),
        (
            "loop.search_k=[-1]",
            "loop.search_k and loop.search_strategies hold lesson counts",
        ),
        ("loop.rounds=[unclosed", "the value is not valid YAML"),
        # a check across sections says which --set broke it, in its own words
        (
            "train.data=[gold,context]",
            "quickstart.yaml with --set train.data=[gold,context]: train.data context trains answers as "
            "targets of the prompt without lessons; it needs train.prompts: bare",
        ),
    ],
)
def test_a_bad_config_value_is_one_clear_line(override: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, [override])
    assert says in str(err.value) and "\n" not in str(err.value)


def test_a_config_that_is_not_utf8_is_one_clear_line(tmp_path: Path) -> None:
    bad = tmp_path / "c.yaml"
    bad.write_bytes(b"name: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"c.yaml: not UTF-8 text \(byte 9\)"):
        load_config(bad)


def test_suite_and_import_files_that_are_not_utf8_are_one_clear_line(tmp_path: Path) -> None:
    for suffix, body in (
        (".jsonl", b'{"input": "caf\xe9", "answer": "a"}\n'),
        (".csv", b"input,answer\ncaf\xe9,a\n"),
    ):
        path = tmp_path / f"s{suffix}"
        path.write_bytes(body)
        cfg = load_config(None, ["suite.name=file", f"suite.path={path}"])
        with pytest.raises(DataError, match="not UTF-8 text"):
            load_suite(cfg.suite)
    lessons = tmp_path / "l.jsonl"
    lessons.write_bytes(b"\xff\xfe{}\n")
    with pytest.raises(DataError, match="not UTF-8 text"):
        read_jsonl(lessons)


def test_a_byte_order_mark_is_read_past_in_jsonl_as_in_csv(tmp_path: Path) -> None:
    rows = "".join(
        json.dumps({"input": f"message {i}", "answer": "a" if i % 2 else "b"}) + "\n" for i in range(30)
    )
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + rows.encode())
    suite = load_suite(
        load_config(
            None, ["suite.name=file", f"suite.path={path}", "suite.dev_size=5", "suite.test_size=5"]
        ).suite
    )
    assert len(suite.train) + len(suite.dev) + len(suite.test) == 30


def test_an_item_that_times_out_on_every_retry_is_that_items_failure() -> None:
    with ScriptedServer(lambda r: "card_arrival", delay=1.5) as server:
        role = RoleConfig(provider="openai", model="s", api_base=server.api_base, timeout=0.3, retries=0)
        solve = make_solver(
            StudentProgram("Answer."), lm=build_lm(role, server.api_base), metric=lambda a, b: 1.0
        )
        attempt = solve(Task("t-1", "my card", "card_arrival"))
    assert attempt.score == 0.0 and attempt.error is not None and "Timeout" in attempt.error


def test_an_eval_whose_every_item_failed_says_so_and_exits_non_zero(tmp_path: Path) -> None:
    with ScriptedServer(lambda r: "", model="student") as server:  # an empty reply on every item
        overrides = [
            "student.provider=openai",
            f"student.api_base={server.api_base}",
            "student.model=student",
            f"runs_dir={tmp_path}",
        ]
        args = ["eval", "banking77", "--limit", "5", *sum((["--set", o] for o in overrides), [])]
        out = CliRunner().invoke(app, args)
    assert out.exit_code == 1 and "every one of the 5 items failed" in out.output


def test_a_budget_spent_while_the_starting_program_is_scored_still_ends_the_run(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(
        tmp_path, student_server.api_base, teacher_server.api_base, "loop.budget.student_tokens=50"
    )
    result = tutelage.run(cfg, embedder=HashEmbedder())  # was: KeyError 'program_path' in test_before
    assert "student token budget spent" in result.metrics["stop_reason"]
    assert result.metrics["rounds"] == [] and result.test_before is not None and result.test_after is not None


def _wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the run never got that far")
        time.sleep(0.05)


def test_sigterm_stops_a_run_like_ctrl_c_with_exit_143_and_it_resumes(tmp_path: Path) -> None:
    with ScriptedServer(last_demo_answer, delay=0.02) as s, ScriptedServer(lambda r: "DIAGNOSIS: d") as t:
        cfg = scripted_config(
            tmp_path,
            s.api_base,
            t.api_base,
            "memory.embedder.provider=openai",  # the scripted server embeds too: no model to load
            f"memory.embedder.api_base={s.api_base}",
            "loop.rounds=1",
        )
        path = tmp_path / "run.yaml"
        path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "tutelage.cli", "run", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        _wait_for(lambda: len(s.chat_requests()) > cfg.suite.dev_size + cfg.suite.test_size + 5)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert "terminated; continue with `tutelage resume" in err
        result = tutelage.resume(cfg.run_dir)
    assert [r["round"] for r in result.metrics["rounds"]] == [1] and result.test_after is not None
