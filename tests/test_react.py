"""The tool-using student over the real client path (LiteLLM over HTTP) against a scripted server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tutelage.agents import StudentProgram, make_solver
from tutelage.agents.build import build_student
from tutelage.agents.ledger import Ledger
from tutelage.agents.react import ReActStudent, parse_step
from tutelage.backends import build_lm
from tutelage.config import RoleConfig, load_config
from tutelage.evals import Attempt, Task, label_match
from tutelage.memory import Lesson
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.testing import HashEmbedder, ScriptedServer

Script = Callable[[dict[str, Any]], str]


def last_user(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def observed(request: dict[str, Any]) -> str | None:
    """The observation this request ends with, if any."""
    text = last_user(request)
    return text.removeprefix("Observation: ") if text.startswith("Observation: ") else None


def solve(
    program: StudentProgram, script: Script, task: Task, *, ledger: Ledger | None = None, **role: Any
) -> tuple[Attempt, list[dict[str, Any]]]:
    with ScriptedServer(script) as server:
        config = RoleConfig(provider="openai", model="s", api_base=server.api_base, retries=0, **role)
        lm = build_lm(config, server.api_base, name="student", ledger=ledger)
        attempt = make_solver(program, lm=lm, metric=label_match)(task)
        return attempt, server.chat_requests()


MATH = Task("gsm-1", "A box holds 12 rows of 7 eggs. How many eggs?", "84")


def test_calculator_action_feeds_the_real_result_back_and_the_answer_is_graded() -> None:
    def script(request: dict[str, Any]) -> str:
        if (result := observed(request)) is not None:
            return f"Thought: that is the total.\nAnswer: {result}"
        # The model also invents a wrong observation; the real one must replace it.
        return "Thought: multiply rows by eggs.\nAction: calculator[12*7]\nObservation: 99\nAnswer: 99"

    ledger = Ledger()
    program = ReActStudent("Solve the math problem.", tools=("calculator",))
    attempt, requests = solve(program, script, MATH, ledger=ledger, max_tokens=40, stop=("\n",))
    assert attempt == Attempt(
        "gsm-1",
        "84",
        1.0,
        [],
        raw="Thought: multiply rows by eggs.\nAction: calculator[12*7]\nObservation: 84\n"
        "Thought: that is the total.\nAnswer: 84",
        steps=[  # what the teacher reads when an attempt fails: each step, the tool's real result
            {
                "kind": "prediction",
                "content": "Thought: multiply rows by eggs.\nAction: calculator[12*7]",
                "name": "",
                "error": False,
            },
            {"kind": "tool_result", "content": "84", "name": "calculator", "error": False},
            {
                "kind": "prediction",
                "content": "Thought: that is the total.\nAnswer: 84",
                "name": "",
                "error": False,
            },
        ],
    )
    assert len(requests) == 2 and ledger.totals()["student"]["calls"] == 2
    first, second = requests
    assert "calculator[expression]" in first["messages"][0]["content"]
    assert "Answer: <the final answer only>" in first["messages"][0]["content"]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"] == "Thought: multiply rows by eggs.\nAction: calculator[12*7]"
    assert last_user(second) == "Observation: 84"
    # Generation stays bounded; the one-line stop of a label task would cut a step, so it is replaced.
    assert second["max_tokens"] == 40 and second["stop"] == ["\nObservation:"]


def test_unknown_tool_is_an_error_observation_the_model_can_recover_from() -> None:
    def script(request: dict[str, Any]) -> str:
        result = observed(request)
        if result is None:
            return "Thought: search it.\nAction: search[12 times 7]"
        if result.startswith("Error"):
            return "Thought: use the calculator.\nAction: calculator[12 * 7]"
        return f"Answer: {result}"

    attempt, requests = solve(ReActStudent("Solve.", tools=("calculator",)), script, MATH)
    assert attempt.score == 1.0 and attempt.error is None
    error = observed(requests[1])
    assert error is not None and "unknown tool 'search'" in error and "calculator" in error
    assert observed(requests[2]) == "84"


def test_a_model_that_never_answers_stops_at_max_steps_as_a_recorded_failure() -> None:
    program = ReActStudent("Solve.", tools=("calculator",), max_steps=3)
    attempt, requests = solve(program, lambda request: "Thought: again.\nAction: calculator[1+1]", MATH)
    assert len(requests) == 3
    assert attempt.score == 0.0 and attempt.answer == ""
    assert attempt.error == "StepLimitError: no Answer after 3 steps"


def test_a_reply_without_action_or_answer_is_a_recorded_unparsable_failure() -> None:
    attempt, requests = solve(ReActStudent("Solve."), lambda request: "I think it is about 80 eggs.", MATH)
    assert len(requests) == 1 and attempt.score == 0.0
    assert attempt.error is not None and attempt.error.startswith("unparsable reply: 'I think it is")


def test_python_action_runs_in_the_sandbox() -> None:
    def script(request: dict[str, Any]) -> str:
        if (result := observed(request)) is not None:
            return f"Answer: {result}"
        code = "total = 0\nfor row in range(12):\n    total += [7][0]\nprint(total)"
        return f"Thought: loop it.\nAction: python[{code}]"

    attempt, requests = solve(ReActStudent("Solve.", tools=("python",)), script, MATH)
    assert observed(requests[1]) == "84" and attempt.score == 1.0


def _store(tmp_path: Path) -> ChromaLessonStore:
    store = ChromaLessonStore(tmp_path / "memory", embedder=HashEmbedder())
    lessons = [
        Lesson.make(
            kind="strategy",
            text="For eggs in rows, multiply the rows by the eggs per row.",
            round=1,
            source_task_id="train-1",
        ),
        Lesson.make(
            kind="example",
            text="A tray holds 3 rows of 4 eggs. How many eggs?",
            answer="12",
            round=1,
            source_task_id="train-1",
        ),
    ]
    store.add([x.with_status("active", "verified", round=1) for x in lessons])
    return store


def test_lessons_tool_reads_the_lesson_store(tmp_path: Path) -> None:
    store = _store(tmp_path)
    strategy = store.search("eggs rows multiply", kind="strategy", k=1)[0]

    def script(request: dict[str, Any]) -> str:
        if observed(request) is None:
            return "Thought: check my lessons.\nAction: lessons[eggs in rows]"
        return "Thought: the lesson says multiply.\nAnswer: 84"

    program = ReActStudent("Solve.", memory=store, k_examples=0, tools=("lessons",))
    attempt, requests = solve(program, script, MATH)
    lessons = observed(requests[1])
    assert lessons is not None
    assert "- strategy: For eggs in rows, multiply the rows by the eggs per row." in lessons
    assert "- example: A tray holds 3 rows of 4 eggs. How many eggs? -> 12" in lessons
    assert attempt.score == 1.0 and strategy.id in attempt.lesson_ids  # shown lessons are attributed
    assert "lessons[query]" in requests[0]["messages"][0]["content"]


def test_retrieved_examples_are_demo_turns_and_choices_snap_the_answer(tmp_path: Path) -> None:
    program = ReActStudent("Solve.", memory=_store(tmp_path), k_examples=1, choices=["84", "96"])
    attempt, requests = solve(program, lambda request: "Thought: count.\nAnswer: **84 eggs**", MATH)
    messages = requests[0]["messages"]
    assert messages[1:3] == [
        {"role": "user", "content": "A tray holds 3 rows of 4 eggs. How many eggs?"},
        {"role": "assistant", "content": "Answer: 12"},
    ]
    assert attempt.answer == "84" and attempt.score == 1.0 and len(attempt.lesson_ids) == 1


def test_saved_react_program_reloads_with_its_tools_in_a_fresh_process(tmp_path: Path) -> None:
    program = ReActStudent("Solve the math problem.", tools=("calculator",), max_steps=3, k_examples=2)
    program.save_json(tmp_path / "program.json", round=1)
    assert json.loads((tmp_path / "program.json").read_text())["format"] == "tutelage.react/1"

    def script(request: dict[str, Any]) -> str:
        if (result := observed(request)) is not None:
            return f"Answer: {result}"
        return "Thought: multiply.\nAction: calculator[12*7]"

    child = textwrap.dedent(
        """
        import json, sys
        from tutelage.agents import make_solver
        from tutelage.backends import build_lm
        from tutelage.agents.student import StudentProgram
        from tutelage.config import RoleConfig
        from tutelage.evals import Task, label_match

        path, base = sys.argv[1], sys.argv[2]
        program = StudentProgram.load_json(path, memory=None)
        lm = build_lm(RoleConfig(provider="openai", model="s", api_base=base, retries=0), base)
        attempt = make_solver(program, lm=lm, metric=label_match)(Task("t", "12 rows of 7?", "84"))
        print(json.dumps([type(program).__name__, program.tools, program.max_steps, program.k_examples,
                          program.predict.signature.instructions, attempt.score, attempt.raw]))
        """
    )
    with ScriptedServer(script) as server:
        done = subprocess.run(
            [sys.executable, "-c", child, str(tmp_path / "program.json"), server.api_base],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    kind, tools, max_steps, k, instructions, score, raw = json.loads(done.stdout.strip().splitlines()[-1])
    assert (kind, tools, max_steps, k) == ("ReActStudent", ["calculator"], 3, 2)
    assert instructions == "Solve the math problem." and score == 1.0 and "Observation: 84" in raw


def test_copies_stay_react_and_build_student_follows_the_config(tmp_path: Path) -> None:
    program = ReActStudent("Solve.", tools=("calculator", "python"), max_steps=4)
    copy = program.with_policy(k_examples=1)
    assert isinstance(copy, ReActStudent) and copy.tools == ("calculator", "python") and copy.max_steps == 4
    assert isinstance(program.reset_copy(), ReActStudent)

    plain = build_student(load_config(None), instructions="Classify.", memory=None, choices=["a"], scope="s")
    assert type(plain) is StudentProgram and plain.choices == ["a"] and plain.scope == "s"
    plain.save_json(tmp_path / "plain.json")
    assert type(StudentProgram.load_json(tmp_path / "plain.json", memory=None)) is StudentProgram
    cfg = load_config(
        None, ["agent.kind=react", "agent.tools=[calculator]", "agent.max_steps=2", "memory.k_examples=3"]
    )
    react = build_student(cfg, instructions="Solve.", memory=None, choices=None, scope=None)
    assert isinstance(react, ReActStudent)
    assert (react.tools, react.max_steps, react.k_examples) == (("calculator",), 2, 3)
    assert (
        react.python_timeout == cfg.agent.python_timeout
        and react.python_memory_mb == cfg.agent.python_memory_mb
    )


@pytest.mark.parametrize(
    ("reply", "tool", "tool_input", "answer"),
    [
        ("Thought: add\nAction: calculator[2 + 2]", "calculator", "2 + 2", None),
        ("Action: calculator\nAction Input: 2 + 2", "calculator", "2 + 2", None),
        ("Action: python[```python\nprint([1, 2][0])\n```]", "python", "print([1, 2][0])", None),
        ("Action: python[answer: int = 5\nprint(answer)]", "python", "answer: int = 5\nprint(answer)", None),
        ("**Thought:** done\n**Final Answer:** 42", None, "", "42"),
        ("Thought: done\nAnswer:\n42", None, "", "42"),
        ("Thought: guess\nObservation: 5\nAnswer: 5", None, "", None),
        ("Action: calculator(2 + 2)", "calculator(2 + 2)", "", None),
        ("The answer is 42.", None, "", None),
    ],
)
def test_parse_step_reads_the_first_action_or_answer(
    reply: str, tool: str | None, tool_input: str, answer: str | None
) -> None:
    step = parse_step(reply)
    if tool is None and answer is None:
        assert step is None
        return
    assert step is not None and (step.tool, step.tool_input, step.answer) == (tool, tool_input, answer)


def test_a_student_out_of_steps_keeps_its_steps_for_the_teacher() -> None:
    program = ReActStudent("Solve the math problem.", tools=("calculator",), max_steps=2)
    attempt, _ = solve(program, lambda r: "Action: calculator[1/0]", MATH, ledger=Ledger(), max_tokens=40)
    assert attempt.error is not None and attempt.error.startswith("StepLimitError")
    assert [(s["kind"], s["error"]) for s in attempt.steps or []] == [
        ("prediction", False),
        ("tool_result", True),
        ("prediction", False),
        ("tool_result", True),
    ]
