"""DSPy's weight optimizers (BootstrapFinetune, BetterTogether) training through tutelage's provider:
the rows they upload, the adapter the compiled program answers with, and the same in the loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dspy
import pytest

import tutelage
from tests.conftest import TEACHER_REPLY, scripted_config
from tutelage.agents import StudentProgram
from tutelage.agents.adapter import PlainChatAdapter
from tutelage.agents.ledger import Ledger
from tutelage.backends.openai import HostedAdapterHost
from tutelage.config import TrainConfig
from tutelage.errors import ConfigError
from tutelage.evals.metrics import label_match
from tutelage.evals.suites import Task, load_suite
from tutelage.optimizers.base import dspy_examples, float_metric
from tutelage.optimizers.finetune import FinetuneChatAdapter
from tutelage.rundir import RunPaths
from tutelage.testing import ScriptedServer, last_demo_answer
from tutelage.train import trainer
from tutelage.train.dspy_provider import FinetuneProvider

GOLD = {f"message {n}": ("card_arrival" if n % 2 else "change_pin") for n in range(8)}
TASKS = [Task(f"t{n}", text, answer) for n, (text, answer) in enumerate(GOLD.items())]


def _base(request: dict[str, Any]) -> str:
    """The base model knows the first four items only."""
    text = request["messages"][-1]["content"]
    return GOLD[text] if text in list(GOLD)[:4] else "no_idea"


def _tuned(model: str, request: dict[str, Any]) -> str:
    return GOLD.get(request["messages"][-1]["content"], "no_idea")


def _provider(server: ScriptedServer, tmp_path: Path) -> FinetuneProvider:
    options = TrainConfig(trainer="openai", api_base=server.api_base, poll_seconds=0.01).model_dump()
    return FinetuneProvider(
        trainer("openai"),
        base="student",
        host=HostedAdapterHost("student"),
        out_dir=tmp_path,
        options=options,
    )


def test_bootstrap_finetune_trains_the_kept_traces_as_plain_chat_and_answers_with_the_adapter(
    tmp_path: Path,
) -> None:
    with ScriptedServer(_base, model="student", adapter_reply=_tuned, job_polls=1) as server:
        provider = _provider(server, tmp_path / "ft")
        lm = dspy.LM("openai/student", api_base=server.api_base, api_key="x", max_tokens=16, cache=False)
        program = StudentProgram("Name the intent.")
        program.set_lm(lm.copy(provider=provider))
        optimizer = dspy.BootstrapFinetune(metric=float_metric(label_match), adapter=FinetuneChatAdapter())
        with dspy.context(adapter=PlainChatAdapter()):
            compiled = optimizer.compile(program, trainset=dspy_examples(TASKS))
            answers = [compiled(task=t.input).answer for t in TASKS]
        # one job, on the four traces the metric kept, each the plain chat request the student sends
        assert len(server.job_creations()) == 1
        rows = [json.loads(line) for line in next(iter(server.uploads.values())).decode().splitlines()]
        assert sorted(r["messages"][1]["content"] for r in rows) == list(GOLD)[:4]
        assert all(
            [m["role"] for m in r["messages"]] == ["system", "user", "assistant"]
            and r["messages"][0]["content"] == "Name the intent."
            and r["messages"][2]["content"] == GOLD[r["messages"][1]["content"]]
            for r in rows
        )
        job = provider.jobs[0]
        assert job.status() == "done" and job.adapter is not None
        # the compiled program answers with the tuned model, which knows all eight
        assert answers == [t.answer for t in TASKS]
        assert {r["model"] for r in server.chat_requests()[-8:]} == {job.adapter.name}
        # the same rows again (a resumed run) find the finished adapter: no second job
        again = _provider(server, tmp_path / "ft")
        program.set_lm(lm.copy(provider=again))
        with dspy.context(adapter=PlainChatAdapter()):
            dspy.BootstrapFinetune(metric=float_metric(label_match), adapter=FinetuneChatAdapter()).compile(
                program, trainset=dspy_examples(TASKS)
            )
        assert len(server.job_creations()) == 1 and again.jobs[0].adapter == job.adapter


def _config(tmp_path: Path, student: ScriptedServer, teacher: ScriptedServer, *extra: str) -> Any:
    return scripted_config(
        tmp_path,
        student.api_base,
        teacher.api_base,
        "train.trainer=openai",
        f"train.api_base={student.api_base}",
        "train.poll_seconds=0.01",
        "memory.embedder.provider=openai",
        f"memory.embedder.api_base={student.api_base}",
        *extra,
    )


@pytest.mark.parametrize("optimizer", ["finetune", "better_together"])
def test_a_weight_optimizer_in_the_loop_names_its_adapter_and_dev_keeps_it(
    tmp_path: Path, student_server: ScriptedServer, optimizer: str
) -> None:
    cfg0 = _config(tmp_path, student_server, student_server)
    suite = load_suite(cfg0.suite)
    gold = {t.input: t.answer for t in [*suite.train, *suite.dev, *suite.test]}

    def tuned(model: str, body: dict[str, Any]) -> str:
        return gold.get(body["messages"][-1]["content"], "?")

    def teacher_reply(body: dict[str, Any]) -> str:  # it answers a task it is asked as the student
        return gold.get(body["messages"][-1]["content"]) or TEACHER_REPLY

    with (
        ScriptedServer(last_demo_answer, model="student", adapter_reply=tuned, job_polls=1) as student,
        ScriptedServer(teacher_reply, model="teacher") as teacher,
    ):
        cfg = _config(tmp_path, student, teacher, f"loop.optimizer={optimizer}", "loop.rounds=1")
        result = tutelage.run(cfg)
        row = result.metrics["rounds"][0]
        assert row["accepted"], row["decision"]
        assert row["train"]["adapter"].startswith("ft:student:") and row["train"]["data"]["dspy"] > 0
        kept = json.loads(RunPaths(result.run_dir).program(1).read_text())
        assert kept["adapter"]["name"] == row["train"]["adapter"]
        trial = kept["meta"]["trials"][0]
        assert kept["meta"]["optimizer"] == optimizer and trial["adapter"] and not trial.get("step_failed")
        if optimizer == "better_together":  # prompt, then weights, beat prompt alone on its valset
            assert trial["candidates"][0]["strategy"] == "p -> w"
        assert result.test_after == 1.0 > result.test_before
        tuned_calls = {r["model"] for r in student.chat_requests() if r["model"] != "student"}
        assert tuned_calls == {row["train"]["adapter"]}
        trained = [c for c in Ledger(result.run_dir / "ledger.jsonl").calls if c.role == "trainer"]
        assert [(c.round, c.phase) for c in trained] == [(1, "compile_program")]


def test_a_teacher_whose_traces_all_fail_trains_nothing_and_the_round_goes_on(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = _config(tmp_path, student_server, teacher_server, "loop.optimizer=finetune", "loop.rounds=1")
    result = tutelage.run(cfg)
    row = result.metrics["rounds"][0]
    trial = json.loads(RunPaths(result.run_dir).program(1).read_text())["meta"]["trials"][0]
    assert row["train"] is None and trial["adapter"] is None
    assert "no fine-tuning rows" in trial["skipped"] and student_server.job_creations() == []
    assert result.test_after is not None


def test_a_weight_optimizer_with_a_weights_schedule_or_an_unservable_backend_is_a_config_error() -> None:
    from tutelage.config import load_config

    with pytest.raises(ConfigError, match="loop.optimizer finetune trains the weights in compile"):
        load_config(None, ["loop.optimizer=finetune", "loop.schedule=[both]"])
    with pytest.raises(ConfigError, match="train.trainer peft makes adapters that student.provider openai"):
        load_config(
            None,
            ["loop.optimizer=better_together", "student.provider=openai", "student.api_base=http://x:1/v1"],
        )
