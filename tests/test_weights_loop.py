"""Rounds that move the weights: the adapter a round trains is judged on dev with its program, kept
or rolled back with it, named in the kept program, and never served once rolled back."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tutelage
from tests.conftest import scripted_config
from tests.test_loop import KillAt
from tutelage.agents.ledger import Ledger
from tutelage.cli import app
from tutelage.evals.runner import evaluate
from tutelage.evals.suites import load_suite
from tutelage.evals.transfer import transfer
from tutelage.rundir import RunPaths
from tutelage.testing import ScriptedServer, last_demo_answer


def _gold(cfg: Any) -> dict[str, str]:
    suite = load_suite(cfg.suite)
    return {t.input: t.answer for t in [*suite.train, *suite.dev, *suite.test]}


def _weights_config(tmp_path: Path, student: ScriptedServer, teacher: ScriptedServer) -> Any:
    return scripted_config(
        tmp_path,
        student.api_base,
        teacher.api_base,
        "loop.schedule=[prompt, weights]",  # round 1 moves the prompt, round 2 the weights only
        "train.trainer=openai",
        f"train.api_base={student.api_base}",
        "train.poll_seconds=0.01",
        "memory.embedder.provider=openai",  # the scripted server embeds too: evals reopen the memory
        f"memory.embedder.api_base={student.api_base}",
    )


def _tuned_models(server: ScriptedServer) -> list[str]:
    return [r["model"] for r in server.chat_requests() if r["model"] != "student"]


def _run(tmp_path: Path, tuned: Callable[[dict[str, Any]], str], teacher: ScriptedServer) -> Any:
    def adapter_reply(model: str, body: dict[str, Any]) -> str:
        return tuned(body)

    with ScriptedServer(
        last_demo_answer, model="student", adapter_reply=adapter_reply, job_polls=2
    ) as student:
        result = tutelage.run(_weights_config(tmp_path, student, teacher))
        return result, student


def test_a_round_whose_adapter_wins_on_dev_is_kept_and_the_kept_program_answers_with_it(
    tmp_path: Path, teacher_server: ScriptedServer
) -> None:
    cfg = _weights_config(tmp_path, teacher_server, teacher_server)
    gold = _gold(cfg)

    def tuned(model: str, body: dict[str, Any]) -> str:
        return gold.get(body["messages"][-1]["content"], "?")

    with ScriptedServer(last_demo_answer, model="student", adapter_reply=tuned, job_polls=2) as student:
        cfg = _weights_config(tmp_path, student, teacher_server)
        result = tutelage.run(cfg)
        rounds = {r["round"]: r for r in result.metrics["rounds"]}
        assert rounds[1]["moved"] == "prompt" and rounds[1]["train"] is None
        trained = rounds[2]["train"]
        assert rounds[2]["moved"] == "weights" and rounds[2]["accepted"], rounds[2]["decision"]
        assert trained["examples"] > 0 and trained["adapter"].startswith("ft:student:")
        # the rows: round 1 was kept, so its sets and round 2's are the data; no held-out item is
        data = (result.run_dir / "rounds/round_2/train/data.jsonl").read_text().splitlines()
        rows = [json.loads(x) for x in data]
        suite = load_suite(cfg.suite)
        held = {t.input for t in [*suite.dev, *suite.test]}
        assert len(rows) == trained["examples"] and not {r["prompt"][-1]["content"] for r in rows} & held
        # train.prompts: retrieved (the default): each prompt is the program's request over the memory,
        # with retrieved demo turns, and never the lesson made from the row's own item
        assert sum(len(r["prompt"]) > 2 for r in rows) > len(rows) / 2
        for row in rows:
            demos = [m["content"] for m in row["prompt"][1:-1] if m["role"] == "user"]
            assert row["prompt"][-1]["content"] not in demos
        assert len(student.job_creations()) == 1  # one fine-tuning job, on the chat form of those rows
        # the kept program names its adapter, and the final test is answered by the tuned model
        kept = json.loads(RunPaths(result.run_dir).program(2).read_text())
        assert kept["adapter"]["name"] == trained["adapter"]
        assert result.test_after == 1.0 and result.test_after > result.test_before
        assert set(_tuned_models(student)) == {trained["adapter"]}
        # Student.load answers with the tuned weights
        before = len(student.chat_requests())
        with tutelage.Student.load(result.run_dir) as loaded:
            item = suite.test[0]
            assert loaded(item.input) == item.answer
        assert [r["model"] for r in student.chat_requests()[before:]] == [trained["adapter"]]
        # an eval of the run's memory does too, and its folder differs from the same program on base weights
        memory_eval = evaluate(cfg, run_dir=result.run_dir, limit=5)
        assert memory_eval.score == 1.0
        # another student gets the lessons and program, never the adapter (weights for this base only)
        with ScriptedServer(last_demo_answer, model="other") as other:
            moved = transfer(
                result.run_dir, ["student.model=other", f"student.api_base={other.api_base}"], limit=5
            )
            assert moved.adapter_left_out == trained["adapter"]
            assert {r["model"] for r in other.chat_requests()} == {"other"}
    # the kept adapter exports with its record; a hosted model has no weights to merge (one line, exit 1)
    out = tmp_path / "export"
    done = CliRunner().invoke(app, ["export-adapter", str(result.run_dir), "-o", str(out)])
    assert (
        done.exit_code == 0 and json.loads((out / "adapter.json").read_text())["name"] == trained["adapter"]
    )
    refused = CliRunner().invoke(app, ["export-adapter", str(result.run_dir), "-o", str(out), "--merge"])
    assert refused.exit_code == 1 and "has no GGUF file to merge" in refused.output


def test_a_rolled_back_adapter_is_never_served_again(tmp_path: Path, teacher_server: ScriptedServer) -> None:
    result, student = _run(tmp_path, lambda body: "not a label", teacher_server)
    round2 = {r["round"]: r for r in result.metrics["rounds"]}[2]
    assert not round2["accepted"] and round2["train"]["adapter"]
    # the tuned model answered the candidate's dev (20 items) and monitor (10) checks, nothing after
    assert _tuned_models(student) == [round2["train"]["adapter"]] * 30
    test_requests = student.chat_requests()[-40:]
    assert all(r["model"] == "student" for r in test_requests)
    # it stays on disk with its scores; the kept program is round 1's, with no adapter
    assert (result.run_dir / "rounds/round_2/train/adapter-record.json").is_file()
    assert json.loads(RunPaths(result.run_dir).program(1).read_text())["adapter"] is None
    # and the report says what was trained, at what cost, and that it was never served
    report = (result.run_dir / "report.md").read_text()
    assert f"| 2 | `{round2['train']['adapter']}` | {round2['train']['examples']} |" in report
    assert "no (never served)" in report


def test_a_run_killed_after_training_resumes_without_training_again(
    tmp_path: Path, teacher_server: ScriptedServer
) -> None:
    with ScriptedServer(
        last_demo_answer, model="student", adapter_reply=lambda m, b: "?", job_polls=2
    ) as student:
        cfg = _weights_config(tmp_path, student, teacher_server)
        with pytest.raises(KeyboardInterrupt):  # Ctrl-C as round 2's dev evaluation starts
            tutelage.run(cfg, reporter=KillAt("round 2: dev evaluation"))
        record = json.loads((cfg.run_dir / "rounds/round_2/train/adapter-record.json").read_text())
        done = CliRunner(env={"COLUMNS": "200"}).invoke(app, ["resume", str(cfg.run_dir)])
        assert done.exit_code == 0, done.output
        metrics = json.loads((cfg.run_dir / "metrics.json").read_text())
        round2 = {r["round"]: r for r in metrics["rounds"]}[2]
        assert round2["train"]["adapter"] == record["adapter"]["name"]
        assert len(student.job_creations()) == 1  # the finished training was not paid for twice
        # and the cost ledger has its one training row (tokens trained, seconds), not two
        trained = [c for c in Ledger(cfg.run_dir / "ledger.jsonl").calls if c.role == "trainer"]
        assert [(c.round, c.phase) for c in trained] == [(2, "train_weights")]
        assert trained[0].tokens_in == round2["train"]["tokens"] > 0
        assert "trainer 1 training(s)" in done.output  # a training, not a model call


def test_a_trainer_whose_adapters_the_student_backend_cannot_serve_fails_before_anything_runs() -> None:
    from tutelage.config import load_config
    from tutelage.errors import ConfigError

    remote = ["student.provider=openai", "student.api_base=http://127.0.0.1:9/v1"]
    with pytest.raises(ConfigError, match="train.trainer peft makes adapters that student.provider openai"):
        load_config(None, ["loop.schedule=[prompt, both]", *remote])
    with pytest.raises(ConfigError) as err:
        load_config(None, ["loop.schedule=[weights]", "train.trainer=openai"])
    assert str(err.value).endswith(
        "quickstart.yaml with --set train.trainer=openai: train.trainer openai makes adapters that "
        "student.provider local cannot serve (use openai)"
    )
    with pytest.raises(ConfigError, match="with --set agent.kind=react: train.prompts: retrieved renders"):
        load_config(None, ["loop.schedule=[both]", "agent.kind=react"])
    load_config(None, ["loop.schedule=[both]", "agent.kind=react", "train.prompts=bare"])
    load_config(None, ["loop.schedule=[prompt]", *remote])  # no round trains weights: nothing to serve
