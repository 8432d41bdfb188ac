"""Progress where no one watches a terminal (CI, nohup, a cluster job): plain or JSON lines per phase."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml
from rich.console import Console
from typer.testing import CliRunner

from tutelage.cli import app
from tutelage.cli._common import console
from tutelage.cli._progress import JsonReporter, PlainReporter
from tutelage.evals import Attempt, Task, run_tasks
from tutelage.testing import ScriptedServer

from .conftest import scripted_config

runner = CliRunner()
LINE = re.compile(
    r"^(?P<phase>.+?)  (?P<done>\d+)/(?P<total>\d+)  score (?P<score>\S+)  "
    r"elapsed (?P<elapsed>[\d:]+)  eta (?P<eta>\S+)$"
)
PHASES = {
    "dev (starting program)",
    "test (before round 1)",
    "round 1: student attempts",
    "round 1: teacher diagnoses",
    "round 1: dev evaluation",
    "round 1: monitor",
    "test (after last round)",
}


def _config(tmp_path: Path, student: ScriptedServer, teacher: ScriptedServer) -> Path:
    cfg = scripted_config(
        tmp_path,
        student.api_base,
        teacher.api_base,
        "loop.rounds=1",
        "memory.embedder.provider=openai",  # the scripted server embeds: no model to load in the child
        f"memory.embedder.api_base={student.api_base}",
        "memory.embedder.model=hash",
    )
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    return path


def test_a_run_with_stdout_to_a_file_shows_each_phase_with_done_score_elapsed_and_eta(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    config = _config(tmp_path, student_server, teacher_server)
    log = tmp_path / "run.log"
    with log.open("w") as out:  # as `nohup tutelage run ... > run.log` would
        subprocess.run(
            [sys.executable, "-m", "tutelage.cli", "run", str(config)],
            stdout=out,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "80"},
            check=True,
            timeout=600,
        )
    text = log.read_text()
    lines = [m for line in text.splitlines() if (m := LINE.match(line))]
    seen = {m["phase"] for m in lines}
    assert seen >= PHASES, text
    for phase in PHASES:
        rows = [m for m in lines if m["phase"] == phase]
        first, last = rows[0], rows[-1]
        assert first["done"] == "0" and first["score"] == "-", text
        assert last["done"] == last["total"] and last["eta"] == "0:00", text
    attempts = [m for m in lines if m["phase"] == "round 1: student attempts"][-1]
    assert attempts["total"] == "30" and attempts["score"].endswith("%")
    assert "round 1  train " in text  # the round line, as before


def test_json_lines_parse_one_by_one_and_hold_the_same_phases(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    config = _config(tmp_path, student_server, teacher_server)
    result = runner.invoke(app, ["run", str(config), "--log-format", "json"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["phase"] for e in events if e["event"] == "phase"} >= PHASES
    done = [e for e in events if e["event"] == "progress" and e["phase"] == "round 1: student attempts"][-1]
    assert done["done"] == done["total"] == 30 and 0 <= done["score"] <= 1 and done["eta_s"] == 0
    assert set(done) == {"event", "phase", "done", "total", "score", "elapsed_s", "eta_s"}
    (row,) = [e["row"] for e in events if e["event"] == "round"]
    assert row["round"] == 1 and "dev_accuracy" in row
    assert any(e["event"] == "message" and "run directory:" in e["text"] for e in events)
    # The header and the summary table go to stderr, where they do not break a JSON reader.
    assert "held-out test accuracy" in result.stderr
    assert console.file is sys.stdout  # and the next command in this process writes to stdout again


def test_a_bad_log_format_is_one_line_and_exit_1() -> None:
    result = runner.invoke(app, ["eval", "banking77", "--log-format", "xml"])
    assert result.exit_code == 1
    assert result.stderr.strip() == "error: --log-format must be 'auto', 'plain' or 'json', not 'xml'"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _lines(items: int, seconds: float) -> list[str]:
    """The plain lines of one phase of ``items`` items finishing evenly over ``seconds``."""
    clock, out = Clock(), io.StringIO()
    reporter = PlainReporter(out=Console(file=out, width=80), clock=clock)
    reporter.phase("eval banking77 test", items)
    for done in range(items + 1):
        clock.now = seconds * done / items
        reporter.update(done, items, correct=done / 2)
    return out.getvalue().splitlines()


def test_a_ten_thousand_item_phase_prints_a_few_lines_not_ten_thousand() -> None:
    fast = _lines(10_000, 3.0)
    assert fast == [
        "eval banking77 test  0/10000  score -  elapsed 0:00  eta -",
        "eval banking77 test  10000/10000  score 50.0%  elapsed 0:03  eta 0:00",
    ]
    minutes = _lines(10_000, 600.0)
    assert 20 <= len(minutes) <= 40
    assert minutes[1] == "eval banking77 test  167/10000  score 50.0%  elapsed 0:10  eta 9:50"
    hours = _lines(10_000, 10 * 3600.0)
    assert 60 <= len(hours) <= 200 and hours[-1].endswith("elapsed 10:00:00  eta 0:00")
    # However long the phase, a line at least every five minutes (here an item ends every 3.6 s).
    seconds = [_seconds(m["elapsed"]) for line in hours if (m := LINE.match(line))]
    assert len(seconds) == len(hours)
    assert max(b - a for a, b in itertools.pairwise(seconds)) < 300 + 3.6 + 1


def _seconds(clock: str) -> int:
    return sum(int(part) * 60**n for n, part in enumerate(reversed(clock.split(":"))))


def test_json_events_are_flushed_lines_with_the_same_fields() -> None:
    clock, out = Clock(), io.StringIO()
    reporter = JsonReporter(out=out, clock=clock)
    reporter.phase("round 1: student attempts", 4)
    for done in range(1, 5):
        clock.now += 20
        reporter.update(done, 4, correct=done - 1)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [e["event"] for e in events] == ["phase", "progress", "progress", "progress", "progress"]
    assert events[-1] == {
        "event": "progress",
        "phase": "round 1: student attempts",
        "done": 4,
        "total": 4,
        "score": 0.75,
        "elapsed_s": 80.0,
        "eta_s": 0.0,
    }


def test_the_harness_gives_the_score_so_far_to_a_reporter_that_takes_it(tmp_path: Path) -> None:
    tasks = [Task(id=str(i), input="x", answer="a") for i in range(4)]
    journal = tmp_path / "journal.jsonl"
    run_tasks(lambda t: Attempt(t.id, "a", 1.0), tasks[:1], journal=journal)  # one item read back
    seen: list[tuple[int, int, float | None]] = []
    plain: list[tuple[int, int]] = []

    def score(done: int, total: int, correct: float | None = None) -> None:
        seen.append((done, total, correct))

    solve = lambda t: Attempt(t.id, "a", float(t.id != "2"))  # noqa: E731
    run_tasks(solve, tasks, concurrency=1, journal=journal, on_progress=score)
    assert seen == [(1, 4, 1.0), (2, 4, 2.0), (3, 4, 2.0), (4, 4, 3.0)]
    # A callback written for (done, total) keeps working.
    run_tasks(solve, tasks, concurrency=1, on_progress=lambda done, total: plain.append((done, total)))
    assert plain[-1] == (4, 4)
