"""Lesson admission and upkeep in the loop: verified writes, leakage guard, credit, curation, replay."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import tutelage
from tutelage.config import CurateConfig
from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task
from tutelage.loop import LogReporter
from tutelage.loop._verify import verify_lesson
from tutelage.memory import Lesson
from tutelage.memory._curate import Outcome, apply_credit, curate
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.testing import HashEmbedder, ScriptedServer

from .conftest import TEACHER_REPLY, scripted_config


def _active(lesson: Lesson, round_no: int = 1) -> Lesson:
    return lesson.with_status("active", "test", round=round_no)


def _example(text: str, answer: str, round_no: int = 1) -> Lesson:
    lesson = Lesson.make(kind="example", text=text, answer=answer, round=round_no, scope="s")
    return _active(lesson, round_no)


class KillAfter(LogReporter):
    """Simulates a kill after ``n`` finished items of a named phase."""

    def __init__(self, label: str, n: int) -> None:
        self.label, self.n, self.current = label, n, ""

    def phase(self, label: str, total: int) -> None:
        self.current = label

    def update(self, done: int, total: int) -> None:
        if self.current.startswith(self.label) and done >= self.n:
            raise KeyboardInterrupt


def _store(run_dir: Path) -> ChromaLessonStore:
    return tutelage.load_memory(run_dir, embedder=HashEmbedder())


def test_source_verification_activates_examples_and_rejects_a_strategy_that_does_not_help(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base, "memory.verify=source")
    result = tutelage.run(cfg, embedder=HashEmbedder())
    lessons = _store(result.run_dir).all()
    strategy = next(x for x in lessons if x.kind == "strategy")
    # The scripted student copies the nearest example: the teacher's strategy alone cannot fix round 1.
    assert strategy.status == "retired" and "still fails with it" in strategy.reason
    assert all(
        x.status == "active" for x in lessons if x.kind == "example" and x.reason.startswith("verified")
    )
    assert result.metrics["rounds"][0]["lessons_rejected"] >= 1
    assert result.metrics["rounds"][-1]["lessons"] < len(lessons)  # active < stored
    report = (result.run_dir / "report.md").read_text()
    assert "rejected: source task … still fails with it" in report
    assert "## Scope: banking77" in (result.run_dir / "playbook.md").read_text()


def test_probe_rejects_a_lesson_that_makes_similar_tasks_worse() -> None:
    lesson = _example("card not here", "card_arrival")
    source, a, b = (
        Task("train-1", "card not here", "card_arrival"),
        Task("t-a", "pin", "change_pin"),
        Task("t-b", "x", "y"),
    )

    def copies_the_lesson(shown: Lesson, task: Task) -> Attempt:
        return Attempt(task.id, shown.answer, float(shown.answer == task.answer))

    before = [(a, Attempt("t-a", "change_pin", 1.0)), (b, Attempt("t-b", "z", 0.0))]
    verdict = verify_lesson(lesson, mode="source", solve_with=copies_the_lesson, source=source, probes=before)
    assert not verdict.passed and verdict.reason.startswith("rejected: similar tasks got worse (0/2")
    fine = verify_lesson(
        lesson, mode="source", solve_with=copies_the_lesson, source=source, probes=before[1:]
    )
    assert fine.passed and "0/1 similar tasks pass with it, 0/1 without" in fine.reason


def test_a_lesson_quoting_a_test_item_is_refused_at_write_time(
    tmp_path: Path, student_server: ScriptedServer
) -> None:
    suite = tutelage.evals.load_suite(scripted_config(tmp_path, "http://x", "http://x").suite)
    leak = next(t.input for t in suite.held_out if len(t.input.split()) >= 12)

    def leaky(request: dict[str, Any]) -> str:
        return f"DIAGNOSIS: confused.\nSTRATEGY: Remember: {leak}"

    with ScriptedServer(leaky, model="teacher") as teacher:
        cfg = scripted_config(tmp_path, student_server.api_base, teacher.api_base, "loop.rounds=1")
        result = tutelage.run(cfg, embedder=HashEmbedder())
    strategy = next(x for x in _store(result.run_dir).all() if x.kind == "strategy")
    assert strategy.status == "retired" and strategy.reason.startswith("refused: leakage")
    assert "test item test-" in strategy.reason
    assert result.metrics["rounds"][0]["lessons_refused"] >= 1


def test_a_crash_during_verification_resumes_without_duplicates_or_rechecks(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    extra = ("memory.verify=probe", "memory.probe_size=2")
    straight = tutelage.run(
        scripted_config(tmp_path / "a", student_server.api_base, teacher_server.api_base, *extra),
        embedder=HashEmbedder(),
    )
    cfg = scripted_config(tmp_path / "b", student_server.api_base, teacher_server.api_base, *extra)
    with pytest.raises(KeyboardInterrupt):
        tutelage.run(cfg, reporter=KillAfter("round 1: verify", 5), embedder=HashEmbedder())
    resumed = tutelage.resume(tmp_path / "b" / "runs" / "scripted", embedder=HashEmbedder())

    def states(run_dir: Path) -> list[tuple[str, str, str]]:
        return [(x.id, x.status, x.reason) for x in _store(run_dir).all()]

    assert states(resumed.run_dir) == states(straight.run_dir)
    journal = (resumed.run_dir / "rounds" / "round_1" / "verify.jsonl").read_text().splitlines()
    ids = [json.loads(line)["task_id"] for line in journal]
    assert len(ids) == len(set(ids))  # no candidate was checked twice


def test_credit_counts_each_round_once_and_blames_the_example_that_was_copied(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    right, wrong = _example("card late", "card_arrival"), _example("card pin", "pin_blocked")
    store.add([right, wrong])
    outcomes = [
        Outcome([right.id, wrong.id], "card_arrival", "card_arrival", 1.0),
        Outcome([right.id, wrong.id], "pin_blocked", "card_arrival", 0.0),
    ]
    assert apply_credit(store, outcomes, round=1) == 2
    assert apply_credit(store, outcomes, round=1) == 0  # a re-graded round after a crash
    got = {x.id: (x.retrieved, x.helped, x.hurt) for x in store.all()}
    assert got == {right.id: (2, 1, 0), wrong.id: (2, 0, 1)}


def test_curation_retires_bad_records_merges_duplicates_and_keeps_the_budget(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    bad = _example("my pin is blocked", "pin_blocked")
    old, dup = (
        _example("card has not arrived", "card_arrival"),
        _example("card has not arrived!", "card_arrival", 2),
    )
    others = [_example(f"question number {i} about fees", "card_fees", 2) for i in range(4)]
    store.add([bad, old, dup, *others])
    store.put([store.get([bad.id])[0].with_counts(retrieved=4, helped=0, hurt=4, credited_round=1)])
    store.put([store.get([old.id])[0].with_counts(retrieved=2, helped=2, hurt=0, credited_round=1)])

    report = curate(store, CurateConfig(merge_threshold=0.95, max_active=4), round=2)
    by_id = {x.id: x for x in store.all()}
    assert report.bad_record == [bad.id] and by_id[bad.id].reason == "bad record (helped 0, hurt 4)"
    assert report.merged == [dup.id] and by_id[dup.id].reason.startswith(f"merged into {old.id}")
    assert by_id[old.id].provenance.source_task_ids == dup.provenance.source_task_ids  # both had none
    assert len(report.over_budget) == 1 and store.count(status="active") == 4
    assert Counter(x.status for x in by_id.values()) == {"active": 4, "retired": 3}
    assert by_id[old.id].status == "active"  # the proven lesson survives the budget


def test_student_load_replays_a_past_round_with_the_lessons_active_then(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    result = tutelage.run(
        scripted_config(tmp_path, student_server.api_base, teacher_server.api_base), embedder=HashEmbedder()
    )
    lessons = _store(result.run_dir).all()
    late = next(x for x in lessons if x.kind == "example" and x.round == 2)
    with tutelage.Student.load(result.run_dir, embedder=HashEmbedder(), round=1) as student:
        assert late.id not in student.predict(late.text)["lesson_ids"]
    with tutelage.Student.load(result.run_dir, embedder=HashEmbedder()) as student:
        assert late.id in student.predict(late.text)["lesson_ids"]
    assert TEACHER_REPLY  # the scripted teacher wrote the strategy these runs share


def test_an_unreachable_memory_server_fails_before_anything_starts(tmp_path: Path) -> None:
    cfg = scripted_config(
        tmp_path, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1", "memory.url=http://127.0.0.1:9"
    )
    with pytest.raises(tutelage.TutelageError, match="Chroma server at http://127.0.0.1:9 is unreachable"):
        tutelage.run(cfg, embedder=HashEmbedder())
    assert not (tmp_path / "runs" / "scripted").exists()  # no half-made run directory to trip a resume
