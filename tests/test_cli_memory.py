"""`tutelage memory` as a person curating lessons meets it: what each command prints and changes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from tutelage.cli import app
from tutelage.memory import Lesson, location
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.testing import HashEmbedder, ScriptedServer

runner = CliRunner(env={"COLUMNS": "200"})  # a wide terminal: table cells stay on one line

CARD = Lesson.make(
    kind="example",
    text="my card has not arrived yet",
    answer="card_arrival",
    round=1,
    source_task_id="train-7",
    teacher_model="teacher-model",
    diagnosis="The student confused arrival with delivery.",
    prompt_hash="p123",
    scope="banking77",
    tags=("cards",),
).with_status("active", "verified: source task now passes", round=1)
ACTION = Lesson.make(
    kind="strategy", text="Look at the action the customer asks for.", round=2, scope="banking77"
).with_status("active", "verified: source task now passes", round=2)
PIN = Lesson.make(
    kind="example", text="how do I change my pin", answer="change_pin", round=2, scope="banking77"
)
CLOSE = (
    Lesson.make(
        kind="example",
        text="I want to close my account",
        answer="terminate_account",
        round=1,
        scope="banking77",
    )
    .with_status("active", "ok", round=1)
    .with_status("retired", "bad record: helped 0, hurt 3", round=2)
)


@pytest.fixture(autouse=True)
def _hash_embedder(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bare stores open with the packaged MiniLM; these tests never load it."""
    monkeypatch.setattr(location, "default_embedder", HashEmbedder)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    path = tmp_path / "store"
    ChromaLessonStore(path, embedder=HashEmbedder()).add([CARD, ACTION, PIN, CLOSE])
    return path


def memory(*args: str | Path) -> Result:
    return runner.invoke(app, ["memory", *map(str, args)])


def ok(*args: str | Path) -> str:
    """The command's stdout, its whitespace collapsed."""
    result = memory(*args)
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())


def one_line_error(*args: str | Path) -> str:
    result = memory(*args)
    assert result.exit_code == 1, result.output
    lines = [ln for ln in result.stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def ids(text: str) -> list[str]:
    return re.findall(r"\b(?:ex|st)-[0-9a-f]{16}\b", text)


def test_list_shows_counts_per_status_and_filters_by_kind_status_and_round(store_dir: Path) -> None:
    everything = ok("list", store_dir)
    assert "4 lessons in" in everything and "(2 active, 1 candidate, 1 retired)" in everything
    assert sorted(ids(everything)) == sorted(x.id for x in (CARD, ACTION, PIN, CLOSE))
    assert "card_arrival" in everything and "0/0/0" in everything
    assert set(ids(ok("list", store_dir, "--status", "active"))) == {CARD.id, ACTION.id}
    narrowed = ok("list", store_dir, "--kind", "example", "--round", "2")
    assert ids(narrowed) == [PIN.id] and "1 lessons in" in narrowed


def test_a_run_directory_opens_with_its_own_embedder(tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "scripted"
    with ScriptedServer() as server:  # serves the HashEmbedder's vectors on /v1/embeddings
        run_dir.mkdir(parents=True)
        (run_dir / "config.yaml").write_text(
            "memory:\n  embedder: {provider: openai, api_base: '" + server.api_base + "', model: hash-128}\n"
        )
        ChromaLessonStore(run_dir / "memory", embedder=HashEmbedder()).add([CARD, ACTION])
        assert set(ids(ok("list", run_dir))) == {CARD.id, ACTION.id}
        assert set(ids(ok("list", run_dir / "memory"))) == {CARD.id, ACTION.id}
        assert ids(ok("search", run_dir, "where is my card", "-k", "1")) == [CARD.id]


def test_show_prints_the_whole_record_with_its_history_and_provenance(store_dir: Path) -> None:
    shown = ok("show", store_dir, CARD.id[:8])  # a unique prefix is enough
    for fact in (
        CARD.id,
        "my card has not arrived yet",
        "card_arrival",
        "banking77",
        "cards",
        "train-7",
        "teacher-model",
        "The student confused arrival with delivery.",
        "p123",
        "hash-128",
        "helped 0 · hurt 0 · shown 0",
        "history (2 steps)",
        "written by the teacher",
        "verified: source task now passes",
    ):
        assert fact in shown, fact
    retired = ok("show", store_dir, CLOSE.id)
    assert "retired (bad record: helped 0, hurt 3)" in retired and "history (3 steps)" in retired


def test_unknown_ids_and_locations_fail_with_one_line_and_exit_1(store_dir: Path, tmp_path: Path) -> None:
    assert "no lesson 'ex-0000' in" in one_line_error("show", store_dir, "ex-0000")
    assert "'ex-' matches 3 lessons" in one_line_error("retire", store_dir, "ex-")
    assert "does not exist" in one_line_error("list", tmp_path / "nowhere")
    assert not (tmp_path / "nowhere").exists()
    dump = tmp_path / "lessons.jsonl"
    ok("export", store_dir, "-o", dump)
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("x")
    assert "neither a run directory" in one_line_error("import", tmp_path / "notes", dump)


def test_search_ranks_the_matching_lesson_first_among_active_lessons(store_dir: Path) -> None:
    hits = ok("search", store_dir, "my card has not arrived")
    assert ids(hits)[0] == CARD.id and "2 active lessons nearest" in hits
    assert PIN.id not in ids(hits) and CLOSE.id not in ids(hits)
    assert ids(ok("search", store_dir, "change my pin", "--all", "-k", "1")) == [PIN.id]
    assert ids(ok("search", store_dir, "card", "--kind", "strategy")) == [ACTION.id]


def test_retire_records_the_reason_and_the_lesson_leaves_search(store_dir: Path) -> None:
    said = ok("retire", store_dir, CARD.id, "--reason", "labels changed upstream")
    assert f"{CARD.id}: active -> retired from round 3 (labels changed upstream)" in said
    assert "retired (labels changed upstream)" in ok("show", store_dir, CARD.id)
    assert CARD.id not in ids(ok("search", store_dir, "my card has not arrived"))
    assert "already retired" in ok("retire", store_dir, CARD.id)
    assert "retired by a person" in ok("retire", store_dir, ACTION.id)


def test_edit_writes_a_new_active_lesson_and_retires_the_old_with_reasons_both_ways(store_dir: Path) -> None:
    said = ok("edit", store_dir, CARD.id, "--answer", "card_delivery_estimate")
    new_id = next(i for i in ids(said) if i != CARD.id)
    assert f"new {new_id} (active from round 3): edited from {CARD.id}" in said
    new = ok("show", store_dir, new_id)
    assert "active (edited from " + CARD.id + ")" in new and "card_delivery_estimate" in new
    assert "helped 0 · hurt 0 · shown 0" in new and "train-7" in new and "teacher-model" in new
    assert f"retired (edited into {new_id})" in ok("show", store_dir, CARD.id)
    assert ids(ok("search", store_dir, "my card has not arrived", "-k", "1")) == [new_id]
    assert "nothing to change" in one_line_error(
        "edit", store_dir, new_id, "--text", "my card has not arrived yet "
    )
    assert "a strategy has no answer" in one_line_error("edit", store_dir, ACTION.id, "--answer", "x")


def test_jsonl_export_then_import_into_a_new_folder_keeps_every_lesson_and_says_how_it_was_admitted(
    store_dir: Path, tmp_path: Path
) -> None:
    first = memory("export", store_dir)
    assert first.exit_code == 0 and len(first.stdout.splitlines()) == 4
    dump = tmp_path / "lessons.jsonl"
    assert "wrote 4 lessons (jsonl)" in ok("export", store_dir, "-o", dump)
    assert dump.read_bytes() == first.stdout_bytes
    copy = tmp_path / "shared" / "lessons"
    said = ok("import", copy, dump)
    assert "added 4, already present 0" in said and "no leakage guard: a bare store" in said
    before = [json.loads(x) for x in first.stdout.splitlines()]
    after = {x["id"]: x for x in map(json.loads, memory("export", copy).stdout.splitlines())}
    for old in before:  # content, provenance and counters kept; the import is one more history step
        new = after[old["id"]]
        assert {k: new[k] for k in ("text", "answer", "provenance", "helped", "hurt")} == {
            k: old[k] for k in ("text", "answer", "provenance", "helped", "hurt")
        }
        assert new["status"] == old["status"]
        if old["status"] == "active":
            assert new["history"][-1]["reason"] == "imported from lessons.jsonl"
    assert "added 0, already present 4" in ok("import", copy, dump)


def test_markdown_export_is_a_playbook_by_scope_and_kind(store_dir: Path) -> None:
    playbook = memory("export", store_dir, "--format", "markdown").stdout
    for heading in (
        "# Playbook: store",
        "## Scope: banking77",
        "### Strategies (1)",
        "### Worked examples (1), by answer",
        "#### `card_arrival`",
        "## Retired, rejected and pending",
    ):
        assert heading in playbook.splitlines(), heading
    assert f"`{CLOSE.id}` (example, retired)" in playbook


def test_a_bad_import_row_names_its_line_and_writes_nothing(store_dir: Path, tmp_path: Path) -> None:
    good = memory("export", store_dir).stdout.splitlines()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(good[0] + "\n" + good[1].replace('"kind":"', '"kind":"x') + "\n")
    target = tmp_path / "new-store"
    error = one_line_error("import", target, bad)
    assert f"{bad}:2: kind" in error
    assert not target.exists()
