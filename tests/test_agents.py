"""The student and teacher over the real client path (LiteLLM over HTTP) against a scripted server."""

from pathlib import Path

import dspy
import pytest

from tutelage.agents import (
    PlainChatAdapter,
    StudentProgram,
    Teacher,
    lessons_from,
    make_solver,
    parse_reply,
)
from tutelage.agents.signatures import Solve
from tutelage.backends import build_lm
from tutelage.config import RoleConfig
from tutelage.errors import EndpointError
from tutelage.evals import Attempt, Task, label_match
from tutelage.memory import Lesson
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.testing import HashEmbedder, ScriptedServer


def test_plain_chat_adapter_puts_demos_in_turns_and_strategies_in_system() -> None:
    messages = PlainChatAdapter().format(
        Solve.with_instructions("Classify."),
        [{"task": "where is my card", "answer": "card_arrival"}],
        {"task": "I lost my card", "strategies": "- look at the action"},
    )
    assert messages == [
        {"role": "system", "content": "Classify.\n\nUseful strategies:\n- look at the action"},
        {"role": "user", "content": "where is my card"},
        {"role": "assistant", "content": "card_arrival"},
        {"role": "user", "content": "I lost my card"},
    ]


def _store(tmp_path: Path) -> ChromaLessonStore:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    store.add(
        [
            Lesson.make(
                kind="example", text=t, answer=a, round=1, source_task_id=f"train-{i}", teacher_model="t"
            ).with_status("active", "verified", round=1)
            for i, (t, a) in enumerate(
                [("my card has not arrived", "card_arrival"), ("change my pin", "change_pin")]
            )
        ]
    )
    return store


def test_student_sends_retrieved_lessons_as_chat_turns_with_bounded_generation(tmp_path: Path) -> None:
    with ScriptedServer() as server:
        lm = build_lm(
            RoleConfig(provider="openai", model="s", api_base=server.api_base, max_tokens=17), server.api_base
        )
        program = StudentProgram("Classify.", memory=_store(tmp_path), k_examples=2)
        attempt = make_solver(program, lm=lm, metric=label_match)(
            Task("t1", "my card never arrived", "card_arrival")
        )
        request = server.chat_requests()[0]
    assert attempt.score == 1.0 and attempt.answer == "card_arrival" and len(attempt.lesson_ids) == 2
    assert request["max_tokens"] == 17
    roles = [m["role"] for m in request["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user"]
    assert request["messages"][-2]["content"] == "card_arrival"  # nearest example sits next to the question


def test_request_is_exactly_what_the_student_sends_and_can_hide_a_tasks_own_lessons(tmp_path: Path) -> None:
    # Weights trained on ``request`` prompts learn the very request the served student gets at test
    # time; a training row must not see the lesson made from its own item (a test item never does).
    with ScriptedServer() as server:
        lm = build_lm(
            RoleConfig(provider="openai", model="s", api_base=server.api_base, max_tokens=17), server.api_base
        )
        program = StudentProgram("Classify.", memory=_store(tmp_path), k_examples=2)
        program.predict.demos = [dspy.Example(task="fixed demo", answer="card_linking")]
        make_solver(program, lm=lm, metric=label_match)(Task("t1", "my card never arrived", "card_arrival"))
        sent = server.chat_requests()[0]["messages"]
    assert program.request("my card never arrived") == sent
    assert [m["content"] for m in sent[1:-1:2]] == ["fixed demo", "change my pin", "my card has not arrived"]
    hidden = program.request("my card never arrived", hide="train-0")
    assert [m["content"] for m in hidden[1:-1:2]] == ["fixed demo", "change my pin"]


def test_malformed_reply_is_a_recorded_failure_and_refused_connection_is_systemic(tmp_path: Path) -> None:
    with ScriptedServer(lambda req: "   ") as server:
        lm = build_lm(
            RoleConfig(provider="openai", model="s", api_base=server.api_base, retries=0), server.api_base
        )
        attempt = make_solver(StudentProgram("Classify."), lm=lm, metric=label_match)(Task("t", "x", "y"))
    assert attempt.score == 0.0 and attempt.error and "unparsable" in attempt.error
    dead = "http://127.0.0.1:9/v1"
    lm = build_lm(RoleConfig(provider="openai", model="s", api_base=dead, retries=0), dead)
    with pytest.raises(EndpointError, match="student endpoint"):
        make_solver(StudentProgram("Classify."), lm=lm, metric=label_match)(Task("t", "x", "y"))


def test_program_round_trips_through_json(tmp_path: Path) -> None:
    program = StudentProgram("Classify carefully.", k_examples=3, k_strategies=1)
    program.predict.demos = [dspy.Example(task="a", answer="b")]
    program.save_json(tmp_path / "p.json", round=1)
    loaded = StudentProgram.load_json(tmp_path / "p.json", memory=None)
    assert (loaded.instructions, loaded.k_examples, loaded.k_strategies) == ("Classify carefully.", 3, 1)
    assert loaded.predict.demos[0]["answer"] == "b"
    assert loaded.predict.signature.instructions == "Classify carefully."


def test_parse_reply_reads_labelled_lines_and_flags_free_text() -> None:
    assert parse_reply("DIAGNOSIS: wrong intent.\nSTRATEGY: Look at the verb first.") == (
        True,
        "wrong intent.",
        ["Look at the verb first."],
    )
    assert parse_reply("The correct answer is card_arrival.") == (False, "", [])


def test_unparsable_teacher_reply_is_recorded_and_gold_example_still_written() -> None:
    with ScriptedServer(lambda req: "The correct answer is no.") as server:
        lm = build_lm(RoleConfig(provider="openai", model="t", api_base=server.api_base), server.api_base)
        task = Task("train-7", "I want a new PIN", "change_pin")
        diag = Teacher().diagnose(task, Attempt("train-7", "pin_blocked", 0.0), lm=lm)
        sent = server.chat_requests()[0]["messages"][-1]["content"]
    assert not diag.parsed and diag.raw == "The correct answer is no."
    assert "Correct answer: change_pin" in sent and "Student answer: pin_blocked" in sent
    lessons, _ = lessons_from(diag, task, round=1, teacher_model="t")
    assert [(x.kind, x.text, x.answer) for x in lessons] == [("example", "I want a new PIN", "change_pin")]


def test_a_transient_server_error_is_retried(tmp_path: Path) -> None:
    with ScriptedServer(lambda req: "card_arrival") as server:
        server.fail_next(503, times=1)
        role = RoleConfig(provider="openai", model="s", api_base=server.api_base, retries=2)
        attempt = make_solver(
            StudentProgram("Classify."), lm=build_lm(role, server.api_base), metric=label_match
        )(Task("t", "where is my card", "card_arrival"))
        assert attempt.score == 1.0 and attempt.error is None
        assert len(server.chat_requests()) == 2
