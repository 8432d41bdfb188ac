"""Checkpoints in PostgreSQL: a killed run resumes as it does on SQLite, runs sharing one database keep
apart by run id, and a database out of reach (or a missing driver) is one clear line."""

from __future__ import annotations

import itertools
import socket
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

import tutelage
from tutelage.checkpoints import checkpoints_for
from tutelage.cli import app
from tutelage.errors import ConfigError, EndpointError
from tutelage.failpoints import ENV
from tutelage.rundir import RunPaths
from tutelage.testing import (
    PostgresServer,
    PostgresUnavailable,
    ScriptedServer,
    last_demo_answer,
    run_cli,
    run_fingerprint,
)

from .conftest import scripted_config, teacher_reply
from .test_loop import KillAt

SMALL = ("suite.train_size=40", "suite.dev_size=10", "suite.test_size=12", "loop.rounds=1")
SMALL += ("loop.batch_size=12", "loop.search_size=4", "loop.search_k=[1, 2]", "loop.search_strategies=[0]")
MID_ROUND = "diagnose:middle:2"  # the teacher has answered once: round 1 has checkpoints behind it
_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the session; each test takes a database of its own on it."""
    try:
        server = PostgresServer().start()
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra is not installed")
    name = f"test_{next(_databases)}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return postgres.url.rpartition("/")[0] + f"/{name}"


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[ScriptedServer, ScriptedServer]]:
    with ScriptedServer(last_demo_answer) as student, ScriptedServer(teacher_reply) as teacher:
        yield student, teacher


def _config(tmp_path: Path, servers: tuple[ScriptedServer, ScriptedServer], *extra: str) -> Path:
    """A one-round run as a YAML file, for a child process; the scripted server also embeds."""
    student, teacher = servers
    cfg = scripted_config(
        tmp_path,
        student.api_base,
        teacher.api_base,
        *SMALL,
        "memory.embedder.provider=openai",
        f"memory.embedder.api_base={student.api_base}",
        *extra,
    )
    path = tmp_path / "run.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return path


def _threads(url: str) -> set[str]:
    import psycopg

    with psycopg.connect(url) as conn:
        return {row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _one_line(output: str) -> str:
    lines = [ln for ln in output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    return lines[0]


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_a_run_killed_mid_round_resumes_to_the_uninterrupted_result(
    backend: str, tmp_path: Path, servers: Any, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("postgres_url") if backend == "postgres" else None
    extra = [f"checkpoints.url={url}"] if url else []
    straight = tutelage.run(tutelage.load_config(_config(tmp_path / "straight", servers, *extra)))
    path = _config(tmp_path / "killed", servers, *extra)
    assert run_cli(["run", str(path)], env={ENV: MID_ROUND}) == -9, "the failpoint never fired"
    cfg = tutelage.load_config(path)
    assert checkpoints_for(cfg, RunPaths(cfg.run_dir)).exists()  # a resume, not a start over
    tutelage.resume(cfg.run_dir)
    assert run_fingerprint(cfg.run_dir) == run_fingerprint(straight.run_dir)

    # each run's checkpoints are filed under its run id, and two runs in one database keep apart
    run_ids = [(d / "run_id").read_text().strip() for d in (straight.run_dir, cfg.run_dir)]
    assert run_ids == [RunPaths(d).thread_id for d in (straight.run_dir, cfg.run_dir)]
    assert len(set(run_ids)) == 2 and all(r.startswith("scripted-") for r in run_ids)
    if url is not None:
        assert _threads(url) == set(run_ids)
        assert not (cfg.run_dir / "checkpoints.sqlite").exists()
    else:
        for run_dir, run_id in zip((straight.run_dir, cfg.run_dir), run_ids, strict=True):
            with sqlite3.connect(run_dir / "checkpoints.sqlite") as db:
                assert {r[0] for r in db.execute("SELECT DISTINCT thread_id FROM checkpoints")} == {run_id}


def test_an_unreachable_database_is_one_line_exit_1_and_leaves_no_run_folder(
    tmp_path: Path, servers: Any
) -> None:
    port = _closed_port()
    path = _config(tmp_path, servers, f"checkpoints.url=postgresql://tutelage:s3cret@127.0.0.1:{port}/runs")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert f"checkpoint database postgresql://tutelage@127.0.0.1:{port}/runs cannot be reached" in line
    assert "s3cret" not in result.output
    assert not tutelage.load_config(path).run_dir.exists()


def test_a_run_whose_database_is_down_says_so_on_resume_and_resumes_once_it_is_back(
    tmp_path: Path, servers: Any, postgres_url: str
) -> None:
    cfg = tutelage.load_config(_config(tmp_path, servers, f"checkpoints.url={postgres_url}"))
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAt("round 1: teacher"))
    saved = RunPaths(cfg.run_dir).config
    good = saved.read_text()
    down = f"postgresql://tutelage:s3cret@127.0.0.1:{_closed_port()}/gone"
    saved.write_text(good.replace(postgres_url, down))  # the database moved away
    result = CliRunner().invoke(app, ["resume", str(cfg.run_dir)])
    assert result.exit_code == 1
    line = _one_line(result.stderr)
    assert "cannot be reached" in line and "s3cret" not in result.output  # not "no checkpoints"
    assert saved.is_file()
    saved.write_text(good)  # and back
    resumed = tutelage.resume(cfg.run_dir)
    assert [r["round"] for r in resumed.metrics["rounds"]] == [1] and resumed.test_after is not None


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_without_the_postgres_extra_a_postgres_url_is_one_line_naming_it(
    scheme: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "tutelage.checkpoints.postgres", raising=False)
    cfg = tutelage.load_config(None, [f"runs_dir={tmp_path / 'runs'}", f"checkpoints.url={scheme}://db/t"])
    with pytest.raises(ConfigError, match=r"needs the postgres extra: pip install 'tutelage\[postgres\]'$"):
        tutelage.run(cfg)
    assert not (tmp_path / "runs" / cfg.name).exists()


def test_a_database_lost_while_a_run_holds_its_saver_is_one_line(tmp_path: Path) -> None:
    try:
        server = PostgresServer().start()  # its own server: this test stops it
    except PostgresUnavailable as exc:
        pytest.skip(str(exc))
    cfg = tutelage.load_config(None, [f"checkpoints.url={server.url}"])
    checkpoints = checkpoints_for(cfg, RunPaths(tmp_path))
    try:
        assert not checkpoints.exists()  # no tables yet
        lost = r"checkpoint database postgresql://\S+ was lost: "
        with pytest.raises(EndpointError, match=lost), checkpoints.open() as saver:
            server.stop()
            saver.get_tuple({"configurable": {"thread_id": checkpoints.thread_id}})
    finally:
        server.stop()
    # the run had opened its saver: out of reach now means unknown, not empty
    with pytest.raises(EndpointError, match="cannot be reached"):
        checkpoints.exists()
