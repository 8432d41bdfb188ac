"""Fine-tune sets: what each round writes from its own journals and lessons, and their exported union."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tutelage.agents.teacher import Diagnosis
from tutelage.cli import app
from tutelage.config import load_config
from tutelage.errors import DataError
from tutelage.evals.harness import Attempt
from tutelage.evals.suites import Suite, Task, load_suite
from tutelage.memory import Lesson
from tutelage.memory._leakage import LeakageGuard
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.rundir import RunPaths
from tutelage.testing import HashEmbedder
from tutelage.train.datasets import (
    export_finetune,
    finetune_dir,
    held_out,
    validate_preference_row,
    validate_sft_row,
    write_round_sets,
)

CFG = load_config(None, ["suite.test_size=40", "teacher.model=teacher-x"])
runner = CliRunner(env={"COLUMNS": "200"})


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_suite(CFG.suite)


@dataclass
class Run:
    """A hand-made run directory: two rounds of journals and lessons, and the loop's arguments."""

    paths: RunPaths
    memory: ChromaLessonStore
    suite: Suite
    tasks: dict[str, Task]
    guard: LeakageGuard
    held_out: set[str]
    train: list[Task]

    def write(self, round_no: int, *, verified: bool = True) -> dict[str, int]:
        return write_round_sets(
            self.paths,
            round_no,
            tasks=self.tasks,
            memory=self.memory,
            guard=self.guard,
            instructions=self.suite.instruction,
            held_out_ids=self.held_out,
            teacher_model=CFG.teacher.model,
            verified=verified,
        )

    def rows(self, round_no: int, name: str) -> list[dict[str, Any]]:
        text = (finetune_dir(self.paths, round_no) / f"{name}.jsonl").read_text(encoding="utf-8")
        return [json.loads(line) for line in text.splitlines()]


def _journal(path: Path, records: list[Any]) -> None:
    """Journals as the harness writes them: one ``asdict`` record per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))


def _example(task: Task, round_no: int, source: str, *, active: bool = True) -> Lesson:
    lesson = Lesson.make(
        kind="example",
        text=task.input,
        answer=task.answer,
        round=round_no,
        source_task_id=source,
        teacher_model="teacher-x",
        scope="banking77",
    )
    return lesson.with_status("active", "verified", round=round_no) if active else lesson


@pytest.fixture
def run(tmp_path: Path, suite: Suite) -> Run:
    paths = RunPaths(tmp_path / "run")
    paths.write_config(CFG)
    guard = LeakageGuard(
        ((t.id, t.input) for t in suite.guarded()),
        n=CFG.memory.leakage_ngram,
        threshold=CFG.memory.leakage_threshold,
    )
    train = [t for t in suite.train if guard.check(t.input) is None][:9]
    test = suite.test
    t = train
    dup = Task("train-dup", t[0].input, t[0].answer)  # same text and answer as train[0]
    tasks = {**suite.by_id(), dup.id: dup}
    memory = ChromaLessonStore(paths.memory, embedder=HashEmbedder())

    # Round 1: two correct answers (and a duplicate of one), failures with and without a usable
    # answer or diagnosis, and held-out items that must never come out.
    _journal(
        paths.journal(1, "attempts"),
        [
            Attempt(t[0].id, t[0].answer, 1.0),
            Attempt(t[1].id, t[1].answer, 1.0),
            Attempt(dup.id, dup.answer, 1.0),
            Attempt(t[2].id, "wrong_label", 0.0),
            Attempt(t[3].id, "", 0.0, error="TimeoutError: no reply"),
            Attempt(t[4].id, t[4].answer, 0.0),  # graded wrong, yet equal to the gold answer
            Attempt(t[5].id, "not_diagnosed", 0.0),
            Attempt(t[6].id, "teacher_failed", 0.0),
            Attempt(test[0].id, test[0].answer, 1.0),
            Attempt(suite.dev[0].id, suite.dev[0].answer, 1.0),  # held out by id, not by text
            Attempt(test[1].id, "wrong_label", 0.0),
        ],
    )
    _journal(
        paths.journal(1, "teacher"),
        [
            *(Diagnosis(x.id, "DIAGNOSIS: x", True, "x") for x in (t[2], t[3], t[4], test[1])),
            Diagnosis(t[6].id, "", False, error="APIError: down"),
        ],
    )
    # Round 2: one answer repeated from round 1, a new one, a failure the teacher was not asked about.
    _journal(
        paths.journal(2, "attempts"),
        [
            Attempt(t[0].id, t[0].answer, 1.0),
            Attempt(t[7].id, t[7].answer, 1.0),
            Attempt(t[8].id, "wrong_label", 0.0),
        ],
    )
    memory.add(
        [
            _example(t[2], 1, t[2].id),  # verified in round 1
            _example(test[2], 1, t[5].id),  # quotes a test item
            _example(t[6], 1, t[6].id, active=False),  # still a candidate
            Lesson.make(kind="strategy", text="Read the action asked for.", round=1).with_status(
                "active", "verified", round=1
            ),
            _example(t[8], 2, t[8].id),  # verified in round 2
            _example(t[1], 2, "train-elsewhere"),  # imported: its source was not attempted in round 2
        ]
    )
    return Run(paths, memory, suite, tasks, guard, set(held_out(suite)), train)


def test_round_one_writes_examples_traces_and_corrections_and_drops_the_rest(run: Run) -> None:
    t = run.train
    counts = run.write(1)
    assert counts == {"sft": 3, "preference": 1, "duplicates": 1, "leakage": 4, "skipped": 3}
    sft = run.rows(1, "sft")
    for row in sft:
        validate_sft_row(row)
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["messages"][0]["content"] == run.suite.instruction
    pairs = [(r["metadata"]["source"], r["metadata"]["task_id"], r["messages"][2]["content"]) for r in sft]
    traces = sorted([(t[0].id, t[0].answer), (t[1].id, t[1].answer)])  # in task id order
    assert pairs == [
        ("verified_example", t[2].id, t[2].answer),
        *(("student_trace", task_id, answer) for task_id, answer in traces),
    ]
    lesson_id = Lesson.make(kind="example", text=t[2].input, answer=t[2].answer).id
    assert sft[0]["metadata"] == {
        "source": "verified_example",
        "task_id": t[2].id,
        "round": "1",
        "lesson_id": lesson_id,
        "teacher_model": "teacher-x",
    }
    assert sft[1]["metadata"]["lesson_id"] == ""
    # Finding 3: with memory.verify off nothing checked the example, and its row does not claim it was.
    run.write(1, verified=False)
    assert run.rows(1, "sft")[0]["metadata"]["source"] == "gold_example"
    [pair] = run.rows(1, "preference")
    validate_preference_row(pair)
    assert pair["prompt"] == [
        {"role": "system", "content": run.suite.instruction},
        {"role": "user", "content": t[2].input},
    ]
    assert pair["chosen"] == [{"role": "assistant", "content": t[2].answer}]
    assert pair["rejected"] == [{"role": "assistant", "content": "wrong_label"}]
    assert pair["metadata"]["source"] == "teacher_correction"


def test_no_held_out_item_or_text_appears_in_any_file(run: Run) -> None:
    run.write(1)
    run.write(2)
    held_texts = {x.input for x in run.suite.guarded()}
    for round_no in (1, 2):
        for name in ("sft", "preference"):
            for row in run.rows(round_no, name):
                assert row["metadata"]["task_id"] not in run.held_out
                turns = row.get("messages", []) + row.get("prompt", [])
                assert not {m["content"] for m in turns} & held_texts


def test_a_rerun_rewrites_the_same_bytes_even_after_later_rounds_retire_a_lesson(run: Run) -> None:
    first = run.write(1)
    files = [finetune_dir(run.paths, 1) / f"{name}.jsonl" for name in ("sft", "preference")]
    before = [f.read_bytes() for f in files]
    [verified] = [x for x in run.memory.all() if x.provenance.source_task_ids == (run.train[2].id,)]
    run.memory.set_status([verified.id], "retired", "bad record: hurt 3", round=2)
    assert run.write(1) == first
    assert [f.read_bytes() for f in files] == before
    assert not list(finetune_dir(run.paths, 1).glob("*.tmp"))


def test_round_two_uses_only_its_own_journals_and_lessons(run: Run) -> None:
    t = run.train
    run.write(1)
    assert run.write(2) == {"sft": 3, "preference": 0, "duplicates": 0, "leakage": 0, "skipped": 0}
    sft = run.rows(2, "sft")
    assert [(r["metadata"]["source"], r["metadata"]["task_id"]) for r in sft] == [
        ("verified_example", t[8].id),
        *(("student_trace", task_id) for task_id in sorted([t[0].id, t[7].id])),
    ]
    assert {r["metadata"]["round"] for r in sft} == {"2"}
    assert run.rows(2, "preference") == []  # round 1's diagnoses are not reused


def test_export_writes_the_union_once_per_row_with_first_provenance(run: Run) -> None:
    run.write(1)
    run.write(2)
    counts = export_finetune(run.paths.root)
    assert counts == {"rounds": 2, "sft": 5, "preference": 1, "duplicates": 1}
    out = run.paths.root / "finetune" / "all"
    sft = [json.loads(x) for x in (out / "sft.jsonl").read_text().splitlines()]
    keys = [json.dumps(r["messages"]) for r in sft]
    assert len(keys) == len(set(keys)) == 5
    repeated = [r for r in sft if r["metadata"]["task_id"] == run.train[0].id]
    assert [r["metadata"]["round"] for r in repeated] == ["1"]
    bare = export_finetune(run.paths.root, run.paths.root / "bare", metadata=False)
    assert bare == counts
    for line in (run.paths.root / "bare" / "preference.jsonl").read_text().splitlines():
        assert set(json.loads(line)) == {"prompt", "chosen", "rejected"}


def test_line_separators_inside_a_text_survive_the_round_trip(run: Run) -> None:
    odd = Task("train-odd", "my card\u2028is late\u0085again – où est-elle?", "card_arrival")
    run.tasks[odd.id] = odd
    _journal(run.paths.journal(3, "attempts"), [Attempt(odd.id, odd.answer, 1.0)])
    assert run.write(3)["sft"] == 1
    assert export_finetune(run.paths.root)["sft"] == 1
    [row] = [
        json.loads(x)
        for x in (run.paths.root / "finetune" / "all" / "sft.jsonl").read_text().split("\n")[:-1]
    ]
    assert row["messages"][1]["content"] == odd.input


def test_export_refuses_a_corrupted_or_leaking_file_by_line_and_writes_nothing(run: Run) -> None:
    run.write(1)
    run.write(2)
    path = finetune_dir(run.paths, 2) / "sft.jsonl"
    good = path.read_text()
    bad = json.loads(good.splitlines()[0])
    bad["messages"] = bad["messages"][:2]
    path.write_text(good + json.dumps(bad) + "\n")
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:4: messages: the last message must be"):
        export_finetune(run.paths.root)
    leak = json.loads(good.splitlines()[0])
    leak["messages"][1]["content"] = run.suite.test[5].input
    path.write_text(json.dumps(leak) + "\n" + good)
    with pytest.raises(DataError, match=rf"{re.escape(str(path))}:1: the row quotes held-out item test-"):
        export_finetune(run.paths.root)
    assert not (run.paths.root / "finetune" / "all").exists()


def _cli(*args: str | Path) -> Any:
    return runner.invoke(app, ["export-finetune", *map(str, args)])


def test_cli_prints_the_counts_and_fails_clearly_on_a_bad_directory(run: Run, tmp_path: Path) -> None:
    result = _cli(run.paths.root)
    assert result.exit_code == 1 and "has no fine-tune sets yet" in result.stderr
    run.write(1)
    run.write(2)
    result = _cli(run.paths.root, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stdout.split())
    assert "exported 5 SFT rows and 1 preference rows from 2 rounds" in said
    assert "(1 duplicates across rounds dropped)" in said
    assert (tmp_path / "out" / "sft.jsonl").is_file()
    (tmp_path / "notes").mkdir()
    for where, message in ((tmp_path / "nowhere", "does not exist"), (tmp_path / "notes", "no config.yaml")):
        result = _cli(where)
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert result.exit_code == 1 and len(lines) == 1 and message in lines[0], result.output
        assert "Traceback" not in result.output


SYSTEM = {"role": "system", "content": "Classify."}
USER = {"role": "user", "content": "my card is late"}
GOLD = {"role": "assistant", "content": "card_arrival"}
WRONG = {"role": "assistant", "content": "card_linking"}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"messages": [SYSTEM, USER]}, "the last message must be the assistant's"),
        ({"messages": [USER, SYSTEM, GOLD]}, r"messages\[1\].role: expected 'assistant', got 'system'"),
        ({"messages": [SYSTEM, GOLD]}, r"messages\[1\].role: expected 'user'"),
        (
            {"messages": [SYSTEM, USER, {"role": "assistant", "content": " "}]},
            "content: expected a non-empty",
        ),
        ({"messages": [SYSTEM, {**USER, "weight": 1}, GOLD]}, "exactly the keys role and content"),
        ({"messages": [SYSTEM, USER, GOLD], "id": 3}, "unexpected key 'id'"),
        ({"messages": [SYSTEM, USER, GOLD], "metadata": {"source": "x"}}, "metadata: expected exactly"),
        ({"messages": []}, "non-empty list"),
        ([], "expected a JSON object"),
    ],
)
def test_sft_validator_refuses_malformed_rows(row: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_sft_row(row)


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ({"prompt": [SYSTEM, USER], "chosen": [GOLD]}, "missing key 'rejected'"),
        ({"prompt": [SYSTEM, USER, GOLD], "chosen": [GOLD], "rejected": [WRONG]}, "must be the user's"),
        ({"prompt": [SYSTEM, USER], "chosen": [GOLD, GOLD], "rejected": [WRONG]}, "exactly one assistant"),
        ({"prompt": [SYSTEM, USER], "chosen": [GOLD], "rejected": [USER]}, r"rejected\[0\].role"),
        ({"prompt": [SYSTEM, USER], "chosen": [GOLD], "rejected": [GOLD]}, "the same answer"),
    ],
)
def test_preference_validator_refuses_malformed_rows(row: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_preference_row(row)


def test_validators_accept_the_formats_trl_and_openai_read() -> None:
    validate_sft_row({"messages": [USER, GOLD]})
    validate_sft_row({"messages": [SYSTEM, USER, GOLD, USER, WRONG]})
    validate_preference_row({"prompt": [USER], "chosen": [GOLD], "rejected": [WRONG]})


def test_preference_training_rows_are_the_round_pairs_under_the_students_own_prompt(run: Run) -> None:
    from tutelage.train.datasets import training_rows

    t = run.train
    run.write(1)
    seen: list[tuple[str, str]] = []

    def rendered(task: str, task_id: str) -> list[dict[str, Any]]:
        seen.append((task, task_id))
        return [{"role": "system", "content": "rendered"}, {"role": "user", "content": task}]

    rows, counts = training_rows(run.paths, [1], kinds=("preference",), instructions="I", prompt=rendered)
    assert counts == {"preference": 1} and seen == [(t[2].input, t[2].id)]
    assert rows == [
        {
            "prompt": [{"role": "system", "content": "rendered"}, {"role": "user", "content": t[2].input}],
            "chosen": [{"role": "assistant", "content": t[2].answer}],
            "rejected": [{"role": "assistant", "content": "wrong_label"}],
        }
    ]
    with pytest.raises(ValueError, match="do not mix"):
        training_rows(run.paths, [1], kinds=("gold", "preference"), instructions="I")
    with pytest.raises(Exception, match="train.data preference trains with DPO"):
        load_config(None, ["train.data=[gold, preference]"])
