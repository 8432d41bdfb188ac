"""Issue 16: your own agent as the student (a plain function, a DSPy module, a LangGraph graph).

The examples in ``examples/`` run end to end against scripted endpoints whose student is right only
when the lessons tutelage passed the agent hold what it needs; the teacher reads the agent's steps
and names the first wrong one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openai
import pytest

import tutelage
from examples import dspy_cot, langgraph_react, plain_function
from examples.word_problems import splits
from tutelage.agents.agent import AgentStudent
from tutelage.agents.base import load_student
from tutelage.agents.teacher import Teacher, TeacherAsk, lessons_from
from tutelage.backends import build_lm
from tutelage.config import RoleConfig
from tutelage.errors import ConfigError, DataError
from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task
from tutelage.evals.trajectory import Step, render_steps
from tutelage.failpoints import ENV
from tutelage.improve import improve_config
from tutelage.memory.location import open_run_memory
from tutelage.rundir import RunPaths
from tutelage.testing import HashEmbedder, ScriptedServer, run_cli, run_fingerprint

TRAIN, DEV, TEST = splits()
GOLD = {x["input"]: x["answer"] for x in [*TRAIN, *DEV, *TEST]}
STRATEGY = "Write the whole sum into the calculator, never divide by zero."
SMALL = ["loop.search_size=4", "loop.search_k=[2]", "loop.search_strategies=[1]", "memory.k_strategies=1"]


def _roles(student: ScriptedServer, teacher: ScriptedServer) -> dict[str, Any]:
    return {
        "model": {"provider": "openai", "api_base": student.api_base, "model": "student"},
        "teacher": {
            "provider": "openai",
            "api_base": teacher.api_base,
            "model": "teacher",
            "max_tokens": 160,
        },
    }


def _question(text: str) -> str:
    return next(q for q in GOLD if q in text)


def plain_student(request: dict[str, Any]) -> str:
    """Right only when the system message holds solved examples (the lessons reached the agent)."""
    messages = request["messages"]
    return GOLD[messages[-1]["content"]] if "Solved examples:" in messages[0]["content"] else "0"


def test_a_plain_function_improves_and_writes_a_normal_run_directory(tmp_path: Path) -> None:
    with (
        ScriptedServer(plain_student, model="student") as student,
        ScriptedServer(
            lambda r: "DIAGNOSIS: wrong sum.\nSTRATEGY: Add the numbers.", model="teacher"
        ) as teacher,
    ):
        result = plain_function.main(
            runs_dir=str(tmp_path / "runs"),
            rounds=1,
            embedder=HashEmbedder(),
            settings=SMALL,
            **_roles(student, teacher),
        )
        asked = student.chat_requests()
        # The kept agent, loaded as any trained student is, answers with the run's lessons.
        with tutelage.Student.load(result.run_dir, embedder=HashEmbedder()) as trained:
            answered = trained.predict(TEST[0]["input"], gold=TEST[0]["answer"])
    assert answered["score"] == 1.0 and answered["lesson_ids"]
    assert (result.test_before, result.test_after) == (0.0, 1.0)
    paths = RunPaths(result.run_dir)
    assert (paths.root / "report.md").is_file() and paths.metrics.is_file()
    assert tutelage.load_config(paths.config).student.program == "examples.plain_function:solve"
    ledger = [json.loads(x) for x in (paths.root / "ledger.jsonl").read_text().splitlines()]
    assert sum(1 for x in ledger if x["role"] == "student") == len(asked)  # every agent call is metered
    kept = load_student(paths.program(1), memory=None)
    assert isinstance(kept, AgentStudent) and kept.program == "examples.plain_function:solve"


def react_student(request: dict[str, Any]) -> str:
    """A tool-using student: it divides by zero unless the teacher's strategy is in its system message."""
    messages = request["messages"]
    if messages[-1]["content"].startswith("Observation:"):
        observation = messages[-1]["content"].removeprefix("Observation:").strip()
        return f"Answer: {observation if not observation.startswith('Error') else 0}"
    question = _question(messages[-1]["content"])
    return (
        f"Action: calculator[{GOLD[question]}+0]"
        if STRATEGY in messages[0]["content"]
        else "Action: calculator[1/0]"
    )


def react_teacher(request: dict[str, Any]) -> str:
    return f"DIAGNOSIS: The student divided by zero.\nSTEP: 2\nSTRATEGY: {STRATEGY}"


def test_the_teacher_reads_the_graphs_steps_and_its_lesson_reaches_the_next_attempt(tmp_path: Path) -> None:
    with (
        ScriptedServer(react_student, model="student") as student,
        ScriptedServer(react_teacher, model="teacher") as teacher,
    ):
        result = langgraph_react.main(
            runs_dir=str(tmp_path / "runs"),
            rounds=1,
            embedder=HashEmbedder(),
            settings=SMALL,
            **_roles(student, teacher),
        )
        taught = [r["messages"][-1]["content"] for r in teacher.chat_requests()]
        asked = student.chat_requests()
    assert taught, "the teacher was never asked"
    prompt = taught[0]
    assert "Student steps:" in prompt
    assert re.search(r"\d\. \[tool_call calculator\] \{\"expression\": \"1/0\"\}", prompt)
    assert re.search(r"\d\. \[tool_result calculator ERROR\] .*zero", prompt, re.IGNORECASE)
    # The strategy is written with the step it is about, and the same graph's next attempts see it.
    memory = open_run_memory(
        RunPaths(result.run_dir), tutelage.load_config(result.run_dir / "config.yaml"), HashEmbedder()
    )
    strategies = [x for x in memory.all() if x.kind == "strategy"]
    assert strategies and {x.provenance.step for x in strategies} == {2}
    assert any(STRATEGY in r["messages"][0]["content"] for r in asked)
    assert (result.test_before, result.test_after) == (0.0, 1.0)
    attempts = (RunPaths(result.run_dir).journal(1, "attempts")).read_text().splitlines()
    failed = json.loads(attempts[0])
    assert [s["kind"] for s in failed["steps"]][:3] == ["prediction", "tool_call", "tool_result"]


def dspy_student(request: dict[str, Any]) -> str:
    """DSPy's ChatAdapter format; right only when demos (earlier user turns) were shown."""
    messages = request["messages"]
    question = _question(messages[-1]["content"])
    answer = GOLD[question] if len(messages) > 2 else "0"
    return f"[[ ## reasoning ## ]]\nAdd them up.\n\n[[ ## answer ## ]]\n{answer}\n\n[[ ## completed ## ]]"


def test_a_dspy_program_gets_lessons_as_demos_and_saves_its_state(tmp_path: Path) -> None:
    with (
        ScriptedServer(dspy_student, model="student") as student,
        ScriptedServer(
            lambda r: "DIAGNOSIS: wrong.\nSTRATEGY: Add every number given.", model="teacher"
        ) as teacher,
    ):
        result = dspy_cot.main(
            runs_dir=str(tmp_path / "runs"),
            rounds=1,
            embedder=HashEmbedder(),
            settings=SMALL,
            **_roles(student, teacher),
        )
    assert (result.test_before, result.test_after) == (0.0, 1.0)
    saved = json.loads(RunPaths(result.run_dir).program(1).read_text())
    assert saved["format"] == "tutelage.agent/1" and saved["program"] == "examples.dspy_cot:program"
    assert "predict" in saved["agent_state"]  # the module's own state (its demos, its instructions)
    steps = json.loads((RunPaths(result.run_dir).journal(1, "attempts")).read_text().splitlines()[0])["steps"]
    assert steps[0]["kind"] == "prediction" and "reasoning: Add them up." in steps[0]["content"]


def test_the_first_failing_step_stays_whole_when_steps_are_cut_to_the_budget() -> None:
    steps = [
        Step("prediction", "think " * 200),
        Step("tool_result", "Error: " + "x" * 400, name="python", error=True),
    ]
    steps += [Step("prediction", "more " * 200) for _ in range(6)]
    shown = render_steps(steps, budget=300, focus=1)
    assert "2. [tool_result python ERROR] Error: " + "x" * 400 in shown
    assert len(shown) < 4 * 300 + 4 * 110 + 200
    assert "…(cut)" in shown or "left out" in shown


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["student.program=examples.nowhere:agent"], "cannot be imported"),
        (
            ["student.program=examples.plain_function:solve", "loop.optimizer=mipro"],
            "a student.program agent takes fewshot or none",
        ),
        (["teacher.program=examples.plain_function:solve"], "only the student"),
        (["student.program=examples.word_problems:TEMPLATES"], "is not an agent"),
    ],
)
def test_a_bad_student_program_is_one_line(overrides: list[str], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        cfg = tutelage.load_config(None, [f"runs_dir={tmp_path}", *overrides])
        from tutelage.agents.build import build_student

        build_student(cfg, instructions="x", memory=None, choices=None, scope=None)


def test_an_agent_with_no_import_path_is_refused_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no import path"):
        tutelage.improve(
            lambda task, lessons: "1", train=TRAIN, dev=DEV, metric="gsm8k", runs_dir=str(tmp_path)
        )
    assert not (tmp_path / "improve").exists()


@pytest.mark.parametrize("point", ["attempt:middle:3", "diagnose:middle:2"])
def test_a_killed_own_agent_run_resumes_from_its_yaml_with_the_same_lessons(
    tmp_path: Path, point: str
) -> None:
    with (
        ScriptedServer(plain_student, model="student") as student,
        ScriptedServer(
            lambda r: "DIAGNOSIS: wrong sum.\nSTRATEGY: Add the numbers.", model="teacher"
        ) as teacher,
    ):
        source = improve_config(
            "examples.plain_function:solve", train=TRAIN, dev=DEV, test=TEST, metric="gsm8k", rounds=1,
            runs_dir=str(tmp_path / "runs"), **_roles(student, teacher),
        )  # fmt: skip
        embed = ["memory.embedder.provider=openai", f"memory.embedder.api_base={student.api_base}", *SMALL]
        straight = tutelage.run(tutelage.load_config(source, ["name=straight", *embed]))
        killed = ["run", str(source), *(f"--set={x}" for x in ["name=killed", *embed])]
        assert run_cli(killed, env={ENV: point}) == -9, "the failpoint never fired"
        run_dir = tutelage.load_config(source, ["name=killed"]).run_dir
        assert not RunPaths(run_dir).metrics.is_file()  # it died mid-round
        tutelage.resume(run_dir)
    assert run_fingerprint(run_dir) == run_fingerprint(straight.run_dir)
    assert run_fingerprint(run_dir)["lessons"]


def offline_agent(task: str, lessons: tutelage.Lessons) -> str:
    return "1"  # answers without calling the model tutelage gave it


def test_an_agent_whose_calls_the_ledger_cannot_see_is_told_so(caplog: pytest.LogCaptureFixture) -> None:
    program = AgentStudent("Solve it.", program="tests.test_own_agent:offline_agent")
    with caplog.at_level("WARNING"):
        out = program(task="What is 1 + 0?")
        program(task="What is 2 - 1?")
    assert out.answer == "1" and out.metered_calls == 0
    warned = [r.getMessage() for r in caplog.records if "cannot see its calls" in r.getMessage()]
    assert warned == [
        "student.program tests.test_own_agent:offline_agent made no model call through "
        "tutelage.agent_lm() or tutelage.agent_base_url(): the cost ledger cannot see its calls"
    ]  # once, not once an item


@pytest.mark.slow
def test_the_langgraph_example_runs_on_the_embedded_model(tmp_path: Path) -> None:
    """The real SmolLM2-135M drives the graph: its tool calls run, the teacher reads them, the run
    directory and report are the usual ones. (Whether it learns is measured in the README.)"""
    quick = ["loop.search_size=4", "loop.search_k=[2]", "loop.search_strategies=[0]", "loop.diagnose_max=3"]
    result = langgraph_react.main(
        sizes=(12, 6, 6), runs_dir=str(tmp_path / "runs"), rounds=1, settings=quick, embedder=HashEmbedder()
    )
    paths = RunPaths(result.run_dir)
    assert (paths.root / "report.md").is_file() and result.test_before is not None
    attempts = [json.loads(x) for x in paths.journal(1, "attempts").read_text().splitlines()]
    journals = [*paths.root.glob("rounds/*/*.jsonl"), *paths.root.glob("evals/*.jsonl")]
    done = [json.loads(x) for j in journals if "teacher" not in j.name for x in j.read_text().splitlines()]
    results = [s for a in done for s in a.get("steps") or [] if s["kind"] == "tool_result"]
    assert results, "the model never called a tool"  # it does on about one item in six
    assert all(s["name"] in ("calculator", "python") for s in results)
    ledger = [json.loads(x) for x in (paths.root / "ledger.jsonl").read_text().splitlines()]
    assert sum(x["role"] == "teacher" for x in ledger) >= 1
    assert sum(x["role"] == "student" for x in ledger) > len(attempts)  # several model steps an item


def sdk_agent(task: str, lessons: tutelage.Lessons) -> str:
    """An agent with its own client (the OpenAI SDK), pointed at the base URL tutelage gives it."""
    client = openai.OpenAI(base_url=tutelage.agent_base_url(), api_key="unused", max_retries=0)
    system = "Reply with the number only.\n\n" + lessons.as_text()
    reply = client.chat.completions.create(
        model="whatever-the-agent-calls-it",
        messages=[{"role": "system", "content": system}, {"role": "user", "content": task}],
        max_tokens=8,
    )
    return reply.choices[0].message.content or ""


def test_an_agent_with_its_own_client_is_metered_through_the_base_url_tutelage_gives_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        ScriptedServer(plain_student, model="student") as student,
        ScriptedServer(
            lambda r: "DIAGNOSIS: wrong sum.\nSTRATEGY: Add the numbers.", model="teacher"
        ) as teacher,
    ):
        result = tutelage.improve(
            "tests.test_own_agent:sdk_agent", train=TRAIN, dev=DEV, test=TEST, metric="gsm8k", rounds=1,
            runs_dir=str(tmp_path / "runs"), embedder=HashEmbedder(), settings=SMALL,
            **_roles(student, teacher),
        )  # fmt: skip
        asked = student.chat_requests()
    assert (result.test_before, result.test_after) == (0.0, 1.0)  # the lessons reached it too
    assert {r["model"] for r in asked} == {"student"}  # the run's model, whatever name the agent used
    ledger = [json.loads(x) for x in (result.run_dir / "ledger.jsonl").read_text().splitlines()]
    rows = [x for x in ledger if x["role"] == "student"]
    assert len(rows) == len(asked) and all(x["tokens_in"] > 0 and x["ok"] for x in rows)
    assert not [r for r in caplog.records if "cannot see its calls" in r.getMessage()]


@pytest.mark.parametrize(
    ("named", "kept"), [("STEP: 2", 2), ("STEP: step 3 (the tool call)", None), ("", None)]
)
def test_the_teacher_keeps_the_step_it_names_only_when_the_attempt_has_it(
    named: str, kept: int | None
) -> None:
    steps = [
        Step("prediction", "Action: calculator[1/0]"),
        Step("tool_result", "Error: division by zero", error=True),
    ]
    attempt = Attempt("t-1", "0", 0.0, steps=[s.to_json() for s in steps])
    reply = f"DIAGNOSIS: It divided by zero.\n{named}\nSTRATEGY: Never divide by zero in the calculator."
    with ScriptedServer(lambda r: reply) as server:
        lm = build_lm(
            RoleConfig(provider="openai", model="t", api_base=server.api_base, retries=0), server.api_base
        )
        diagnosis = Teacher(ask=TeacherAsk(steps=True)).diagnose(
            Task("t-1", "What is 3 + 4?", "7"), attempt, lm=lm
        )
        prompt = server.chat_requests()[0]["messages"]
    assert diagnosis.step == kept  # step 3 does not exist: the lesson is not pinned to a made-up step
    assert "STEP: <the number of the student's first wrong step" in prompt[0]["content"]
    assert "2. [tool_result ERROR] Error: division by zero" in prompt[-1]["content"]
    lessons, _ = lessons_from(diagnosis, Task("t-1", "What is 3 + 4?", "7"), round=1, teacher_model="t")
    assert [x.provenance.step for x in lessons] == [None, kept]  # the gold example is no step's lesson


def test_a_task_without_an_answer_is_one_line_naming_the_item(tmp_path: Path) -> None:
    bad = [*TRAIN[:3], {"input": "What is 2 + 2?"}]
    with pytest.raises(
        DataError, match=r"^train item 3: a task needs 'input' and 'answer' keys, got \['input'\]$"
    ):
        tutelage.improve(plain_function.solve, train=bad, dev=DEV, metric="gsm8k", runs_dir=str(tmp_path))


def half_solving_student(request: dict[str, Any]) -> str:
    """Solves (with the calculator) the problems whose answer is even; divides by zero on the rest."""
    messages = request["messages"]
    if messages[-1]["content"].startswith("Observation:"):
        observation = messages[-1]["content"].removeprefix("Observation:").strip()
        return f"Answer: {observation if not observation.startswith('Error') else 0}"
    gold = GOLD[_question(messages[-1]["content"])]
    return f"Action: calculator[{gold}+0]" if int(gold) % 2 == 0 else "Action: calculator[1/0]"


@pytest.mark.parametrize("trajectories", [True, False])
def test_a_problem_the_agent_solved_with_a_tool_is_kept_with_its_own_steps(
    tmp_path: Path, trajectories: bool
) -> None:
    with (
        ScriptedServer(half_solving_student, model="student") as student,
        ScriptedServer(react_teacher, model="teacher") as teacher,
    ):
        result = langgraph_react.main(
            runs_dir=str(tmp_path / "runs"), rounds=1, embedder=HashEmbedder(),
            settings=[*SMALL, f"memory.trajectories={trajectories}"], **_roles(student, teacher),
        )  # fmt: skip
    memory = open_run_memory(
        RunPaths(result.run_dir), tutelage.load_config(result.run_dir / "config.yaml"), HashEmbedder()
    )
    solved = [x for x in memory.all() if x.history[0].reason.startswith("the student") and x.round == 1]
    assert solved and all(int(x.answer) % 2 == 0 for x in solved)
    if not trajectories:
        assert {x.kind for x in solved} == {"example"}
        return
    assert {x.kind for x in solved} == {"worked"}
    one = solved[0]
    assert (
        one.rationale
        == f"Action: calculator[{one.answer}+0]\nObservation: {one.answer}\nAnswer: {one.answer}"
    )
