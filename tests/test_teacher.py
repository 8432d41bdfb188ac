"""Issue 12: the teacher's knowledge reaches the student, the lesson lifecycle rolls back cleanly, and
the guards can fail. Each numbered finding of the issue has a test here (or in the file named)."""

from __future__ import annotations

import csv
import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import tutelage
from tutelage.backends import CallJournal, build_lm, replayed
from tutelage.cli import app
from tutelage.config import CurateConfig, RoleConfig, load_config
from tutelage.errors import ConfigError
from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Task, load_suite
from tutelage.loop._verify import check_candidates
from tutelage.memory import Lesson
from tutelage.memory._admit import Admission
from tutelage.memory._curate import curate, rollback_round
from tutelage.memory._leakage import LeakageGuard
from tutelage.memory._undo import UndoLog
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.memory.location import open_run_memory
from tutelage.memory.query import LessonFilter
from tutelage.optimizers import OPTIMIZERS, Compiled
from tutelage.rundir import RunPaths
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer

from .conftest import scripted_config


def _user(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def _system(request: dict[str, Any]) -> str:
    return str(request["messages"][0]["content"])


LABELS = ("card_arrival", "change_pin", "top_up_by_cash_or_cheque", "exchange_rate", "lost_or_stolen_card")


def _banking(split: str) -> dict[str, list[str]]:
    """Banking77 messages of one split by label."""
    folder = Path(str(resources.files("tutelage.evals").joinpath("data", "banking77")))
    by_label: dict[str, list[str]] = {}
    with (folder / f"{split}.csv").open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            by_label.setdefault(row["category"], []).append(row["text"])
    return by_label


def _small_suite(tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    """A five-label file suite from Banking77 (train 6, dev 4, test 8 per label), and what a strong
    teacher knows beyond it: other train messages of each label (never a test item)."""
    train, test = _banking("train"), _banking("test")
    rows, pool = [], {}
    for label in LABELS:
        texts = train[label]
        rows += [{"input": x, "answer": label, "split": "train"} for x in texts[:6]]
        rows += [{"input": x, "answer": label, "split": "dev"} for x in texts[6:10]]
        rows += [{"input": x, "answer": label, "split": "test"} for x in test[label][:8]]
        pool[label] = texts[10:]
    path = tmp_path / "small.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, pool


def _small_config(tmp_path: Path, suite: Path, student: str, teacher: str, *extra: str) -> Any:
    return scripted_config(
        tmp_path,
        student,
        teacher,
        "suite.name=file",
        f"suite.path={suite}",
        "suite.fields.split=split",
        f"suite.labels={json.dumps(list(LABELS))}",
        "suite.train_size=null",
        "suite.dev_size=20",
        "suite.test_size=40",
        "loop.rounds=1",
        "loop.batch_size=20",
        "loop.search_size=6",
        "memory.examples=failed",
        *extra,
    )


def _good_teacher(pool: dict[str, list[str]]) -> Any:
    """A deterministic strong teacher: a correct strategy, and as synthetic examples other customer
    messages with the failure's gold label."""

    def reply(request: dict[str, Any]) -> str:
        gold = _user(request).rsplit("Correct answer:", 1)[-1].strip()
        taken = reply.used.get(gold, 0)  # type: ignore[attr-defined]
        reply.used[gold] = taken + 2  # type: ignore[attr-defined]
        lines = [
            "DIAGNOSIS: The student chose a related intent.",
            f"STRATEGY: When the message is about {gold.replace('_', ' ')}, answer {gold}.",
            *(f"EXAMPLE: {text} => {gold}" for text in pool.get(gold, [])[taken : taken + 2]),
        ]
        return "\n".join(lines)

    reply.used = {}  # type: ignore[attr-defined]
    return reply


# -- finding 1: with the shipped defaults the teacher's lessons reach the student -------------------


def test_a_good_teachers_lessons_reach_the_prompt_and_fix_answers_with_the_default_config(
    tmp_path: Path,
) -> None:
    suite, pool = _small_suite(tmp_path)
    results = {}
    for mode in ("off", "on"):
        with ScriptedServer(last_demo_answer) as s, ScriptedServer(_good_teacher(pool)) as t:
            extra = ["teacher.provider=none"] if mode == "off" else []
            cfg = _small_config(tmp_path / mode, suite, s.api_base, t.api_base, *extra)
            results[mode] = (tutelage.run(cfg, embedder=HashEmbedder()), s.chat_requests(), t.chat_requests())
    (off, _, off_teacher), (on, student_requests, _) = results["off"], results["on"]
    assert not off_teacher  # teacher: off makes no teacher call
    memory = open_run_memory(RunPaths(on.run_dir), load_config(on.run_dir / "config.yaml"), HashEmbedder())
    synthetic = memory.all(LessonFilter(kind="synthetic"))
    strategies = memory.all(LessonFilter(kind="strategy", status=None))
    assert synthetic and strategies
    # Synthetic examples are demo turns of the student's prompts; the default search tries strategies.
    sent = json.dumps(student_requests)
    assert any(json.dumps(x.text)[1:-1] in sent for x in synthetic)
    assert any("Useful strategies:\n- When the message is about" in _system(r) for r in student_requests)
    # ... and they fix held-out answers that the gold examples alone did not.
    after_on = {json.loads(x)["task_id"]: json.loads(x)["score"] for x in _lines(on.run_dir)}
    after_off = {json.loads(x)["task_id"]: json.loads(x)["score"] for x in _lines(off.run_dir)}
    fixed = [i for i in after_on if after_on[i] > after_off[i]]
    broken = [i for i in after_on if after_on[i] < after_off[i]]
    assert len(fixed) > len(broken)
    assert on.test_after is not None and off.test_after is not None and on.test_after > off.test_after
    # The report says, per kind, how often the student was shown it and what it did.
    report = (on.run_dir / "report.md").read_text()
    assert "## Lessons by kind" in report
    row = next(line for line in report.splitlines() if line.startswith("| synthetic |"))
    assert int(row.split("|")[7].replace(",", "")) > 0  # test items shown a synthetic example


def _misleading_teacher(pool: dict[str, list[str]]) -> Any:
    """Synthetic examples that look like another intent's messages but carry the failure's label."""

    def reply(request: dict[str, Any]) -> str:
        gold = _user(request).rsplit("Correct answer:", 1)[-1].strip()
        other = LABELS[(LABELS.index(gold) + 1) % len(LABELS)] if gold in LABELS else LABELS[0]
        n = reply.used.get(other, 0)  # type: ignore[attr-defined]
        reply.used[other] = n + 2  # type: ignore[attr-defined]
        lines = [f"EXAMPLE: {text} => {gold}" for text in pool[other][n : n + 2]]
        return "\n".join(["DIAGNOSIS: d", "STRATEGY: Read the message.", *lines])

    reply.used = {}  # type: ignore[attr-defined]
    return reply


def test_the_policy_search_shows_the_teachers_lessons_only_when_they_score_better(tmp_path: Path) -> None:
    suite, pool = _small_suite(tmp_path)
    policies = (
        "loop.search_policies=[{k_examples: 2, teacher_examples: false}, "
        "{k_examples: 2, k_strategies: 1, teacher_examples: true}]"
    )
    chosen = {}
    for name, teacher in (("good", _good_teacher(pool)), ("misleading", _misleading_teacher(pool))):
        with ScriptedServer(last_demo_answer) as s, ScriptedServer(teacher) as t:
            cfg = _small_config(
                tmp_path / name, suite, s.api_base, t.api_base, policies, "loop.search_size=10"
            )
            result = tutelage.run(cfg, embedder=HashEmbedder())
        program = json.loads((result.run_dir / "programs" / "round_1.json").read_text())
        trials = {row["teacher_examples"]: row["score"] for row in program["meta"]["trials"]}
        chosen[name] = (program["teacher_examples"], trials)
    assert chosen["good"][0] is True and chosen["good"][1][True] > chosen["good"][1][False]
    # A tie goes to gold examples alone (the shorter prompt, no teacher in it).
    assert (
        chosen["misleading"][0] is False and chosen["misleading"][1][True] <= chosen["misleading"][1][False]
    )


def _lines(run_dir: Path) -> list[str]:
    return (run_dir / "evals" / "test_after.jsonl").read_text().splitlines()


def test_a_harmful_teachers_lessons_are_rejected_and_never_shown(tmp_path: Path) -> None:
    suite, _ = _small_suite(tmp_path)

    def student(request: dict[str, Any]) -> str:  # obeys any rule it is shown, else copies a demo
        if "Always answer with the label exchange_rate" in _system(request):
            return "exchange_rate"
        return last_demo_answer(request)

    def harmful(request: dict[str, Any]) -> str:
        return "DIAGNOSIS: d\nSTRATEGY: Always answer with the label exchange_rate."

    with ScriptedServer(student) as s, ScriptedServer(harmful) as t:
        cfg = _small_config(tmp_path, suite, s.api_base, t.api_base, "memory.verify=source")
        result = tutelage.run(cfg, embedder=HashEmbedder())
    memory = open_run_memory(RunPaths(result.run_dir), cfg, HashEmbedder())
    [strategy] = memory.all(LessonFilter(kind="strategy", status=None))  # one text: one lesson
    tasks = load_suite(cfg.suite).by_id()
    assert tasks[strategy.sources[0]].answer != "exchange_rate"
    assert strategy.status == "retired" and strategy.reason.startswith("rejected: source task")
    requests = [r for r in s.chat_requests() if "Always answer" in _system(r)]
    assert all(_user(r) in {tasks[i].input for i in strategy.sources} for r in requests)  # only its check
    m = result.metrics
    assert m["dev_accuracy"]["kept"] >= m["dev_accuracy"]["start"]


def test_teacher_off_is_a_config_value_and_refuses_optimizers_that_need_a_teacher(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("teacher: off\n")
    assert load_config(config).teacher.provider == "none"
    with pytest.raises(ConfigError, match="needs a teacher"):
        load_config(config, ["loop.optimizer=gepa"])


# -- finding 3: verification tests transfer, never copying ------------------------------------------


def test_source_verification_checks_an_example_on_similar_items_never_on_its_own_source() -> None:
    source = Task("train-1", "my card has not arrived yet", "card_arrival")
    near = [
        Task(f"train-{i}", f"my card has not arrived yet {w}", "card_arrival")
        for i, w in ((2, "a"), (3, "b"))
    ]
    far = Task("train-9", "how do I change my pin", "change_pin")
    batch = [source, *near, far]
    attempts = {t.id: Attempt(t.id, "unknown", 0.0) for t in batch}
    example = Lesson.make(kind="example", text=source.input, answer=source.answer, source_task_id=source.id)
    strategy = Lesson.make(kind="strategy", text="Late cards are card_arrival.", source_task_id=source.id)
    tried: list[tuple[str, str]] = []

    def copies(lesson: Lesson, task: Task) -> Attempt:  # a student that can only copy what it is shown
        tried.append((lesson.kind, task.id))
        right = lesson.answer == task.answer and lesson.text == task.input
        return Attempt(task.id, lesson.answer, float(right))

    verdicts = check_candidates(
        [example, strategy],
        mode="source",
        batch=batch,
        attempts=attempts,
        tasks={t.id: t for t in batch},
        embed=HashEmbedder().embed,
        probe_size=2,
        solve_with=copies,
        concurrency=1,
    )
    assert ("example", source.id) not in tried  # the old check re-asked the source: a copy test
    assert {t for k, t in tried if k == "example"} == {"train-2", "train-3"}
    assert ("strategy", source.id) in tried  # a strategy is tried on the failure it was written for
    by_id = {v.task_id: v for v in verdicts}
    assert (
        by_id[example.id].passed and "0/2 similar tasks pass with it, 0/2 without" in by_id[example.id].reason
    )
    assert not by_id[strategy.id].passed


# -- finding 4: one admission path for every writer ----------------------------------------------------


def test_gepas_proposer_writes_through_the_admission_path(tmp_path: Path) -> None:
    from tutelage.optimizers.gepa import LessonProposer

    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    leak = "please tell me why my card payment was declined at the shop today again"
    guard = LeakageGuard([("test-1", leak)], n=4)
    admission = Admission(guard, "source")

    def reply(request: dict[str, Any]) -> str:
        return f"DIAGNOSIS: d\nSTRATEGY: Remember: {leak}\nSTRATEGY: Read the whole message before answering."

    with ScriptedServer(reply) as teacher:
        lm = build_lm(RoleConfig(provider="openai", model="t", api_base=teacher.api_base), teacher.api_base)
        ctx = _compile_ctx(lm, store, admit=lambda xs: admission.admit(store, xs, round=1).active)
        proposer = LessonProposer(ctx, tasks=[])
        proposer._propose("Answer.", [{"Inputs": {"task": "x"}, "Generated Outputs": "y", "Feedback": "no"}])
    stored = store.all(LessonFilter(status=None))
    refused = [x for x in stored if x.status == "retired"]
    assert len(refused) == 1 and refused[0].reason.startswith("refused: leakage")
    # With memory.verify on and no student to check with, GEPA's strategy waits as a candidate.
    assert [x.status for x in stored if x.status != "retired"] == ["candidate"]


@pytest.fixture
def finished_run(
    tmp_path: Path,
    student_server: ScriptedServer,
    teacher_server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Any, Path, str]:
    """A one-round run, its memory opened by the CLI with the run's HashEmbedder, and a test item."""
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base, "loop.rounds=1")
    result = tutelage.run(cfg, embedder=HashEmbedder())
    monkeypatch.setattr("tutelage.memory.location.build_embedder", lambda _cfg: HashEmbedder())
    leak = next(t.input for t in load_suite(cfg.suite).held_out if len(t.input.split()) >= 12)
    return cfg, result.run_dir, leak


def test_memory_import_into_a_run_refuses_a_lesson_quoting_its_test_items(
    tmp_path: Path, finished_run: tuple[Any, Path, str]
) -> None:
    cfg, run_dir, leak = finished_run
    bad = Lesson.make(kind="example", text=leak, answer="x").with_status("active", "ok")
    fine = Lesson.make(kind="strategy", text="Read the whole message first.").with_status("active", "ok")
    (tmp_path / "in.jsonl").write_text(bad.model_dump_json() + "\n" + fine.model_dump_json() + "\n")
    out = CliRunner().invoke(app, ["memory", "import", str(run_dir), str(tmp_path / "in.jsonl")])
    assert out.exit_code == 0, out.output
    assert "added 1, already present 0, refused 1 (quote a held-out item)" in out.output
    memory = open_run_memory(RunPaths(run_dir), cfg, HashEmbedder())
    refused, kept = memory.get([bad.id, fine.id])
    assert refused.status == "retired" and refused.reason.startswith("refused: leakage")
    assert kept.status == "active" and kept.reason == "imported from in.jsonl"


# -- findings 5 and 6: a rolled-back lesson can come back; a rollback undoes merges and counters ------


def test_a_lesson_retired_by_a_rollback_is_revived_when_written_again(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    lesson = Lesson.make(kind="strategy", text="Read the whole message first.", round=2)
    store.undo = log = UndoLog(tmp_path / "r2.jsonl")
    assert store.add([lesson]) == [lesson.id]
    store.set_status([lesson.id], "active", "ok", round=2)
    store.undo = None
    rollback_round(store, log, "rolled back: round 2 not accepted", round=2)
    assert store.get([lesson.id])[0].status == "retired"
    again = Lesson.make(kind="strategy", text="Read the whole message first.", round=4)
    assert store.add([again]) == [lesson.id]  # before: [] (ids are content, and add skipped it)
    back = store.get([lesson.id])[0]
    assert back.status == "candidate" and back.reason.startswith("written again (was retired: rolled back")
    assert back.history[-1].round == 4


def test_a_rollback_undoes_a_merge_and_the_counters_of_the_rejected_round(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    keep = Lesson.make(
        kind="example", text="my card has not arrived", answer="card_arrival", source_task_id="train-1"
    )
    store.add([keep.with_status("active", "ok", round=1)])
    before = store.get([keep.id])[0]
    store.undo = log = UndoLog(tmp_path / "r2.jsonl")
    twin = Lesson.make(
        kind="example",
        text="my card has not arrived!",
        answer="card_arrival",
        round=2,
        source_task_id="train-2",
    )
    store.add([twin])
    store.set_status([twin.id], "active", "ok", round=2)
    store.put([store.get([twin.id])[0].with_counts(retrieved=5, helped=5, credited_round=2)])
    report = curate(store, CurateConfig(merge_threshold=0.9), round=2)
    store.undo = None
    survivor = store.get([keep.id, twin.id])
    assert report.merged and any(set(x.sources) == {"train-1", "train-2"} for x in survivor)
    rollback_round(store, log, "rolled back: round 2 not accepted", round=2)
    restored, gone = store.get([keep.id, twin.id])
    assert restored == before  # sources, counters and history exactly as round 2 found them
    assert gone.status == "retired" and gone.reason == "rolled back: round 2 not accepted"


# -- finding 7: an eval's identity is the exact lessons it was shown ----------------------------------


def test_eval_memory_identity_changes_when_a_lesson_is_retired(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    from tutelage.evals.runner import lessons_digest

    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base, "loop.rounds=1")
    result = tutelage.run(cfg, embedder=HashEmbedder())
    memory = open_run_memory(RunPaths(result.run_dir), cfg, HashEmbedder())
    first = lessons_digest(memory)
    count = memory.count()
    lesson = memory.all()[0]
    memory.set_status([lesson.id], "retired", "retired by a person", round=2)
    assert memory.count() == count  # what identified the memory before did not change
    assert lessons_digest(memory) != first


# -- finding 8: optimizers take their threads, settings and a distinct valset from the run ------------


class _Spy:
    name = "spy"
    seen: dict[str, Any] = {}

    def compile(self, student: Any, *, trainset: list[Task], valset: list[Task], ctx: Any) -> Compiled:
        type(self).seen = {
            "train": [t.id for t in trainset],
            "val": [t.id for t in valset],
            "threads": ctx.threads,
        }
        return Compiled(student.deepcopy())


def test_the_compile_gets_a_valset_distinct_from_its_trainset_and_the_students_concurrency(
    tmp_path: Path,
    student_server: ScriptedServer,
    teacher_server: ScriptedServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    monkeypatch.setitem(OPTIMIZERS, "none", f"{__name__}:_Spy")
    monkeypatch.setattr(sys.modules[__name__], "_Spy", _Spy, raising=False)
    cfg = scripted_config(
        tmp_path,
        student_server.api_base,
        teacher_server.api_base,
        "loop.rounds=1",
        "loop.optimizer=none",
        "loop.search_size=10",
        "loop.val_size=4",
        "student.concurrency=3",
    )
    tutelage.run(cfg, embedder=HashEmbedder())
    seen = _Spy.seen
    assert len(seen["train"]) == 6 and len(seen["val"]) == 4 and not set(seen["train"]) & set(seen["val"])
    assert seen["threads"] == 3


def test_the_teacher_diagnoses_at_most_diagnose_max_failures_a_round_and_all_become_examples(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(
        tmp_path, student_server.api_base, teacher_server.api_base, "loop.rounds=1", "loop.diagnose_max=3"
    )
    result = tutelage.run(cfg, embedder=HashEmbedder())
    assert len(teacher_server.chat_requests()) == 3
    row = result.metrics["rounds"][0]
    memory = open_run_memory(RunPaths(result.run_dir), cfg, HashEmbedder())
    gold = memory.all(LessonFilter(kind="example", status=None))
    assert row["diagnosed"] > 3 and len(gold) == cfg.loop.batch_size  # every attempted item is an example
    assert row["lessons_by_kind"]["example"] == memory.count(kind="example", status="active")


def test_mipro_and_gepa_settings_come_from_config() -> None:
    cfg = load_config(None, ["loop.mipro.candidates=3", "loop.gepa.k_rules=1", "loop.gepa.minibatch=2"])
    assert cfg.loop.mipro.candidates == 3 and cfg.loop.gepa.k_rules == 1 and cfg.loop.gepa.minibatch == 2
    with pytest.raises(ConfigError, match="loop.val_size"):
        load_config(None, ["loop.search_size=4", "loop.val_size=4"])


def test_compile_calls_are_journaled_and_a_resumed_compile_replays_them(tmp_path: Path) -> None:
    with ScriptedServer(lambda r: f"reply {len(r['messages'])}") as server:
        role = RoleConfig(provider="openai", model="t", api_base=server.api_base, temperature=0.7)
        journal = tmp_path / "compile-calls.jsonl"
        first = replayed(build_lm(role, server.api_base), CallJournal(journal))
        said = [first(messages=[{"role": "user", "content": "q"}]) for _ in range(2)]
        asked = len(server.chat_requests())
        # A new process after a kill: the same requests are answered from the journal, in order.
        again = replayed(build_lm(role, server.api_base), CallJournal(journal))
        assert [again(messages=[{"role": "user", "content": "q"}]) for _ in range(2)] == said
        assert len(server.chat_requests()) == asked == 2
        # A third occurrence was never answered: it is asked for real.
        again(messages=[{"role": "user", "content": "q"}])
        assert len(server.chat_requests()) == 3


def _compile_ctx(lm: Any, store: ChromaLessonStore, *, admit: Any) -> Any:
    from tutelage.optimizers import CompileContext

    return CompileContext(
        student_lm=lm,
        teacher_lm=lm,
        metric=lambda a, b: float(a == b),
        score=lambda p, t, tag: 0.0,
        feedback=lambda t, a: "",
        config=load_config(None).loop,
        memory=store,
        round=1,
        scope="s",
        admit=admit,
    )


def test_memory_edit_goes_through_the_leakage_guard(finished_run: tuple[Any, Path, str]) -> None:
    cfg, run_dir, leak = finished_run
    memory = open_run_memory(RunPaths(run_dir), cfg, HashEmbedder())
    lesson = memory.all(LessonFilter(kind="example"))[0]
    out = CliRunner().invoke(app, ["memory", "edit", str(run_dir), lesson.id, "--text", leak])
    assert out.exit_code == 1 and "refused: leakage" in out.output and "nothing changed" in out.output
    assert memory.get([lesson.id])[0].status == "active"


def test_a_worked_solution_is_kept_only_if_it_reaches_the_gold_answer_and_its_reasoning_is_the_demo(
    tmp_path: Path,
) -> None:
    from tutelage.agents.teacher import Diagnosis, lessons_from
    from tutelage.evals.graders import get_grader

    task = Task("train-3", "Pens cost $3; a notebook twice that. Two pens and a notebook?", "... #### 12")
    grader = get_grader("gsm8k")
    right = Diagnosis(task.id, "", True, "d", reasoning="Notebook 6, pens 2*3=6, total 12.\n#### 12")
    wrong = Diagnosis(task.id, "", True, "d", reasoning="Notebook 6, one pen 3, total 9.\n#### 9")
    kept, _ = lessons_from(right, task, round=1, teacher_model="t", metric=grader)
    dropped, why = lessons_from(wrong, task, round=1, teacher_model="t", metric=grader)
    [worked] = [x for x in kept if x.kind == "worked"]
    assert worked.rationale.endswith("#### 12") and not [x for x in dropped if x.kind == "worked"]
    assert why == ["worked solution does not reach the gold answer"]
    # The student's demo for a worked example replies with the teacher's reasoning.
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    store.add([worked.with_status("active", "ok", round=1)])
    with ScriptedServer(last_demo_answer) as server:
        lm = build_lm(RoleConfig(provider="openai", model="s", api_base=server.api_base), server.api_base)
        from tutelage.agents.student import StudentProgram, make_solver

        solve = make_solver(StudentProgram("Solve.", memory=store, k_examples=1), lm=lm, metric=grader)
        attempt = solve(Task("train-9", "Pens cost $3 and a notebook twice that?", "#### 12"))
        turns = server.chat_requests()[0]["messages"]
    assert turns[2] == {"role": "assistant", "content": worked.rationale}
    assert attempt.score == 1.0  # the copying student repeats the worked reply, whose answer is 12
