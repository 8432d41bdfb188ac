"""MIPROv2 and GEPA: scripted endpoints for behaviour, the embedded SmolLM2 for the real thing (slow)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dspy
import pytest

from tutelage.agents import StudentProgram, Teacher
from tutelage.backends import build_lm
from tutelage.backends.local import LocalServer
from tutelage.config import LoopConfig, RoleConfig, SuiteConfig, load_config
from tutelage.errors import EndpointError
from tutelage.evals import Attempt, Task
from tutelage.evals.suites import Suite, load_suite
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.optimizers import CompileContext, Compiled, build_optimizer
from tutelage.optimizers.gepa import CORRECT, LessonProposer, compose, feedback_metric, split_rules
from tutelage.testing import HashEmbedder, ScriptedServer

Reply = Callable[[dict[str, Any]], str]

RULE = "Say the label of the intent, keeping the MARKER in mind."
REFLECTION = "DIAGNOSIS: The student ignores the marker.\nSTRATEGY: " + RULE


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(SuiteConfig(train_size=24, dev_size=4, test_size=4))


def obeys(marker: str, suite: Suite) -> Reply:
    """A student that is right exactly when its system message contains ``marker``."""
    gold = {t.input: t.answer for t in suite.train}

    def reply(request: dict[str, Any]) -> str:
        messages = request["messages"]
        return gold.get(messages[-1]["content"], "unknown") if marker in messages[0]["content"] else "unknown"

    return reply


def make_ctx(
    student: ScriptedServer | str,
    teacher: ScriptedServer | str,
    suite: Suite,
    *,
    memory: ChromaLessonStore | None = None,
    work_dir: Path | None = None,
    **loop: Any,
) -> CompileContext:
    def lm(server: ScriptedServer | str, name: str, max_tokens: int) -> dspy.LM:
        base = server if isinstance(server, str) else server.api_base
        return build_lm(RoleConfig(provider="openai", model=name, retries=0, max_tokens=max_tokens), base)

    return context(lm(student, "student", 24), lm(teacher, "teacher", 96), suite, memory, work_dir, **loop)


def context(
    student_lm: dspy.LM,
    teacher_lm: dspy.LM,
    suite: Suite,
    memory: ChromaLessonStore | None = None,
    work_dir: Path | None = None,
    **loop: Any,
) -> CompileContext:
    """A compile context wired like the loop's: the teacher's diagnosis is the feedback."""
    teacher = Teacher(suite.teacher_demo)

    def feedback(task: Task, attempt: Attempt) -> str:
        diag = teacher.diagnose(task, attempt, lm=teacher_lm)
        return diag.diagnosis or diag.raw or (diag.error or "")

    return CompileContext(
        student_lm=student_lm,
        teacher_lm=teacher_lm,
        metric=suite.metric,
        score=lambda program, tasks, tag: 0.0,
        feedback=feedback,
        config=LoopConfig(**loop),
        memory=memory,
        seed=3,
        round=2,
        scope=suite.name,
        teacher_model="teacher-model",
        work_dir=work_dir,
    )


def compile_with(name: str, ctx: CompileContext, suite: Suite, instruction: str = "Classify.") -> Compiled:
    program = StudentProgram(instruction, memory=ctx.memory, k_examples=0, scope=suite.name)
    return build_optimizer(name).compile(program, trainset=suite.train[:8], valset=suite.train[8:16], ctx=ctx)


def instruction(compiled: Compiled) -> str:
    text: str = compiled.program.predict.signature.instructions
    return text


def reload_in_fresh_process(paths: list[Path]) -> list[str]:
    """The instructions of saved programs as a new Python process reads them back."""
    code = (
        "import json, sys\n"
        "from pathlib import Path\n"
        "from tutelage.agents import StudentProgram\n"
        "print(json.dumps([StudentProgram.load_json(Path(p), memory=None).predict.signature.instructions"
        " for p in sys.argv[1:]]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *map(str, paths)],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    texts: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return texts


def summary(compiled: Compiled) -> dict[str, Any]:
    return next(t for t in compiled.trials if t["kind"] == "summary")


# -- MIPROv2 -------------------------------------------------------------------------------------


def test_mipro_picks_the_teacher_instruction_the_student_obeys(suite: Suite, tmp_path: Path) -> None:
    proposal = "Classify the message; the MARKER says how."
    with ScriptedServer(obeys("MARKER", suite)) as student, ScriptedServer(lambda r: proposal) as teacher:
        compiled = compile_with(
            "mipro", make_ctx(student, teacher, suite, work_dir=tmp_path, trials=4), suite
        )
    assert instruction(compiled) == compiled.program.instructions == proposal
    candidates = {t["instruction"]: t for t in compiled.trials if t["kind"] == "candidate"}
    assert set(candidates) == {"Classify.", proposal}
    assert max(candidates[proposal]["full_scores"]) == 1.0
    assert max(candidates["Classify."]["full_scores"]) == 0.0
    assert summary(compiled)["chosen"] == 1 and summary(compiled)["metric_calls"] > 0
    assert list((tmp_path / "mipro" / "evaluated_programs").glob("*.json"))  # JSON, never pickle
    json.dumps(compiled.trials)  # the trials go into the program's JSON


@pytest.mark.parametrize("reply", ["", "ok", "zz qq ww ee", "HTTP 500"])
def test_mipro_with_a_garbage_teacher_completes_and_keeps_the_incumbent(suite: Suite, reply: str) -> None:
    with ScriptedServer(obeys("Classify", suite)) as student, ScriptedServer(lambda r: reply) as teacher:
        if reply == "HTTP 500":
            teacher.fail_next(500, times=1000)
        compiled = compile_with("mipro", make_ctx(student, teacher, suite, trials=3), suite)
    assert instruction(compiled) == "Classify."
    proposals = [t for t in compiled.trials if t["kind"] == "proposal"]
    assert proposals
    if reply == "zz qq ww ee":  # a well-formed bad proposal is searched, and loses
        assert all(p["fallback"] is None for p in proposals) and summary(compiled)["trials"] == 3
    else:  # a failed proposal falls back to the incumbent; with nothing else to try, nothing is run
        assert all(p["fallback"] and p["candidate"] == 0 for p in proposals)
        assert summary(compiled)["fallbacks"] == len(proposals) and summary(compiled)["trials"] == 0
        assert not student.chat_requests()


@pytest.mark.parametrize("down", ["student", "teacher"])
def test_mipro_raises_when_an_endpoint_is_down(suite: Suite, down: str) -> None:
    with (
        ScriptedServer(obeys("MARKER", suite)) as student,
        ScriptedServer(lambda r: "A MARKER rule.") as teacher,
    ):
        ctx = make_ctx(student, teacher, suite, trials=3)
        (student if down == "student" else teacher).stop()
        with pytest.raises(EndpointError, match=f"{down} endpoint failed"):
            compile_with("mipro", ctx, suite)


# -- GEPA ----------------------------------------------------------------------------------------


def test_gepa_metric_feedback_is_the_teachers_diagnosis_of_a_wrong_answer(suite: Suite) -> None:
    diagnosis = "DIAGNOSIS: The customer wants to change the PIN, not unblock it.\nSTRATEGY: Read the verb."
    task = suite.train[0]
    gold = dspy.Example(task=task.input, answer=task.answer, task_id=task.id).with_inputs("task")
    with ScriptedServer(lambda r: "x") as student, ScriptedServer(lambda r: diagnosis) as teacher:
        metric = feedback_metric(make_ctx(student, teacher, suite))
        right = metric(gold, dspy.Prediction(answer=task.answer), None, "program.predict", None)
        scored = metric(gold, dspy.Prediction(answer="pin_blocked"), None, None, None)
        assert not teacher.chat_requests()  # right answers and plain scoring never ask the teacher
        wrong = metric(gold, dspy.Prediction(answer="pin_blocked"), None, "program.predict", None)
        again = metric(gold, dspy.Prediction(answer="pin_blocked"), None, "program.predict", None)
        asked = teacher.chat_requests()
    assert (right.score, right.feedback) == (1.0, CORRECT)
    assert scored.score == 0.0
    assert wrong.score == 0.0 and "not unblock it" in wrong.feedback
    # The grader's own words come first: what it read and what was expected.
    assert wrong.feedback.startswith(f"Grader: answered 'pin_blocked'; the correct label is '{task.answer}'")
    assert again.feedback == wrong.feedback and len(asked) == 1  # one diagnosis per (task, answer)
    assert "pin_blocked" in asked[0]["messages"][-1]["content"]


def test_gepa_writes_the_teachers_strategies_into_memory_and_the_instruction(
    suite: Suite, tmp_path: Path
) -> None:
    memory = ChromaLessonStore(tmp_path / "memory", embedder=HashEmbedder())
    with ScriptedServer(obeys("MARKER", suite)) as student, ScriptedServer(lambda r: REFLECTION) as teacher:
        ctx = make_ctx(student, teacher, suite, memory=memory, metric_calls=30)
        compiled = compile_with("gepa", ctx, suite)
    (lesson,) = memory.all()
    assert (lesson.kind, lesson.text, lesson.status, lesson.tags) == ("strategy", RULE, "active", ("gepa",))
    assert (lesson.round, lesson.scope, lesson.provenance.teacher_model) == (2, suite.name, "teacher-model")
    assert lesson.provenance.diagnosis == "The student ignores the marker."
    assert set(lesson.provenance.source_task_ids) <= {t.id for t in suite.train[:16]}
    assert lesson.provenance.source_task_ids and lesson.provenance.prompt_hash
    assert instruction(compiled) == compose("Classify.", [RULE])
    proposal = next(t for t in compiled.trials if t["kind"] == "proposal")
    assert proposal["lessons_added"] == [lesson.id] and proposal["fallback"] is None
    assert summary(compiled)["metric_calls"] <= 30 + 8 and summary(compiled)["chosen"] == 1


def test_lesson_proposer_is_deterministic_and_appends_without_memory(suite: Suite, tmp_path: Path) -> None:
    rows = [
        {"Inputs": {"task": t.input}, "Generated Outputs": {"answer": "unknown"}, "Feedback": "wrong"}
        for t in suite.train[:3]
    ]
    dataset = {
        "p": [*rows, {"Inputs": {"task": "x"}, "Generated Outputs": {"answer": "y"}, "Feedback": CORRECT}]
    }
    incumbent = compose("Classify.", ["An older rule."])
    with ScriptedServer(lambda r: REFLECTION) as teacher:
        outs, ids = [], []
        for run in ("a", "b"):
            memory = ChromaLessonStore(tmp_path / run, embedder=HashEmbedder())
            proposer = LessonProposer(
                make_ctx("http://unused", teacher, suite, memory=memory), tasks=suite.train
            )
            outs.append(proposer({"p": incumbent}, dataset, ["p"]))
            ids.append([x.id for x in memory.all()])
        bare = LessonProposer(make_ctx("http://unused", teacher, suite), k=2)(
            {"p": incumbent}, dataset, ["p"]
        )
        sent = teacher.chat_requests()[-1]["messages"][-1]["content"]
    assert outs[0] == outs[1] and ids[0] == ids[1] and len(ids[0]) == 1
    assert split_rules(outs[0]["p"]) == ("Classify.", [RULE])  # memory holds only the new rule
    assert split_rules(bare["p"]) == ("Classify.", ["An older rule.", RULE])
    assert sent.count("Task:") == 3 and "Student answer: unknown" in sent  # failures only


@pytest.mark.parametrize("reply", ["", "I do not know what you mean.", "HTTP 500"])
def test_gepa_with_a_garbage_teacher_completes_and_keeps_the_incumbent(
    suite: Suite, tmp_path: Path, reply: str
) -> None:
    memory = ChromaLessonStore(tmp_path / "memory", embedder=HashEmbedder())
    with ScriptedServer(obeys("MARKER", suite)) as student, ScriptedServer(lambda r: reply) as teacher:
        if reply == "HTTP 500":
            teacher.fail_next(500, times=1000)
        compiled = compile_with(
            "gepa", make_ctx(student, teacher, suite, memory=memory, metric_calls=20), suite
        )
    assert instruction(compiled) == "Classify." and memory.count() == 0
    proposals = [t for t in compiled.trials if t["kind"] == "proposal"]
    assert proposals and all(p["fallback"] and p["unchanged"] for p in proposals)


@pytest.mark.parametrize("down", ["student", "teacher"])
def test_gepa_raises_when_an_endpoint_is_down(suite: Suite, down: str) -> None:
    with ScriptedServer(obeys("MARKER", suite)) as student, ScriptedServer(lambda r: REFLECTION) as teacher:
        ctx = make_ctx(student, teacher, suite, metric_calls=20)
        (student if down == "student" else teacher).stop()
        with pytest.raises(EndpointError, match=f"{down} endpoint failed"):
            compile_with("gepa", ctx, suite)


def test_compiled_programs_reload_with_their_instruction_in_a_fresh_process(
    suite: Suite, tmp_path: Path
) -> None:
    teacher_reply = "Classify the message; mind the MARKER.\n" + REFLECTION
    paths, expected = [], []
    with (
        ScriptedServer(obeys("MARKER", suite)) as student,
        ScriptedServer(lambda r: teacher_reply) as teacher,
    ):
        for name in ("mipro", "gepa"):
            compiled = compile_with(name, make_ctx(student, teacher, suite, trials=3, metric_calls=30), suite)
            assert instruction(compiled) != "Classify."
            paths.append(tmp_path / f"{name}.json")
            compiled.program.save_json(paths[-1], optimizer=name, trials=compiled.trials)
            expected.append(instruction(compiled))
    assert reload_in_fresh_process(paths) == expected


# -- the embedded SmolLM2 as student and teacher -------------------------------------------------


@pytest.fixture(scope="module")
def embedded() -> Iterator[tuple[dspy.LM, dspy.LM]]:
    cfg = load_config(None)
    with LocalServer(parallel=1) as server:
        yield build_lm(cfg.student, server.api_base), build_lm(cfg.teacher, server.api_base)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mipro", "gepa"])
def test_compiles_on_the_embedded_model_and_reloads(
    embedded: tuple[dspy.LM, dspy.LM], suite: Suite, tmp_path: Path, name: str
) -> None:
    student_lm, teacher_lm = embedded
    memory = ChromaLessonStore(tmp_path / "memory", embedder=HashEmbedder())
    ctx = context(student_lm, teacher_lm, suite, memory, tmp_path / "work", trials=3, metric_calls=14)
    program = StudentProgram(
        suite.instruction, memory=memory, k_examples=0, choices=suite.labels, scope=suite.name
    )
    began = time.perf_counter()
    compiled = build_optimizer(name).compile(
        program, trainset=suite.train[:6], valset=suite.train[6:12], ctx=ctx
    )
    seconds = time.perf_counter() - began
    path = tmp_path / "program.json"
    compiled.program.save_json(path, optimizer=name, trials=compiled.trials)
    # What a human reads in the log of a slow run (pytest -s): wall time and the instruction found.
    print(json.dumps({"optimizer": name, "seconds": round(seconds, 1), "instruction": instruction(compiled)}))
    print(json.dumps(compiled.trials))
    if name == "mipro":
        assert [t for t in compiled.trials if t["kind"] == "proposal"]
    else:
        assert summary(compiled)["metric_calls"] > 0
    assert reload_in_fresh_process([path]) == [instruction(compiled)]
