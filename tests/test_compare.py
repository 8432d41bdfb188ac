"""``tutelage compare`` and the score loaders behind it, on hand-written run directories and journals."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tutelage.cli.report import compare_command, report_command
from tutelage.errors import DataError, RunDirError
from tutelage.evals.compare import compare, load_scores
from tutelage.evals.harness import Attempt
from tutelage.evals.stats import bootstrap_ci, holm, paired_by_slice, paired_compare
from tutelage.evals.suites import Task, load_suite
from tutelage.rundir import RunPaths

from .conftest import scripted_config

runner = CliRunner()
app = typer.Typer()
app.command("compare")(compare_command)
app.command("report")(report_command)


def _journal(path: Path, scores: dict[str, float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [asdict(Attempt(task_id=i, answer="x", score=s)) for i, s in scores.items()]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _run_dir(root: Path, after: dict[str, float], *, dev: dict[str, float] | None = None) -> Path:
    """A run directory as the loop leaves it: config, test journals, a kept round's dev journal."""
    paths = RunPaths(root)
    paths.write_config(scripted_config(root, "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1"))
    _journal(paths.test_journal("after"), after)
    _journal(paths.test_journal("before"), dict.fromkeys(after, 0.0))
    if dev is not None:
        _journal(paths.journal(0, "dev"), dict.fromkeys(dev, 0.0))
        _journal(paths.journal(2, "dev"), dev)
        paths.metrics.write_text(json.dumps({"kept_round": 2, "rounds": []}))
    return root


@pytest.fixture(scope="module")
def test_items() -> list[Task]:
    cfg = scripted_config(Path("/nonexistent"), "http://x/v1", "http://x/v1")
    return load_suite(cfg.suite).test


def _two_runs(tmp_path: Path, tasks: list[Task]) -> tuple[Path, Path, dict[str, float], dict[str, float]]:
    """A gets the first 40% of the items right, B the first 70% but two of A's: B is clearly better."""
    ids = [t.id for t in tasks]
    a = {i: float(n < 16) for n, i in enumerate(ids)}
    b = {i: float(2 <= n < 28) for n, i in enumerate(ids)}
    return _run_dir(tmp_path / "a", a), _run_dir(tmp_path / "b", b), a, b


def test_compare_prints_what_the_statistics_say(tmp_path: Path, test_items: list[Task]) -> None:
    run_a, run_b, a, b = _two_runs(tmp_path, test_items)
    result = runner.invoke(app, ["compare", str(run_a), str(run_b)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    paired = paired_compare(a, b)
    assert paired.describe() in result.output
    assert "McNemar p=0.013" in result.output and "(n=40; 12 fixed, 2 broken" in result.output
    ids = sorted(a)
    assert f"A  {run_a}: {bootstrap_ci([a[i] for i in ids]).describe()}" in result.output
    assert f"B  {run_b}: {bootstrap_ci([b[i] for i in ids]).describe()}" in result.output
    assert "items: 40 shared, 0 only in A, 0 only in B (test split)" in result.output
    assert "per slice (intent)" in result.output  # Banking77 items carry an intent tag


def test_compare_json_matches_the_statistics_and_slices_by_the_suite_tags(
    tmp_path: Path, test_items: list[Task]
) -> None:
    run_a, run_b, a, b = _two_runs(tmp_path, test_items)
    result = runner.invoke(app, ["compare", str(run_a), str(run_b), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    paired = paired_compare(a, b)
    assert data["paired"] == pytest.approx(paired.as_dict())
    assert data["summary"] == paired.describe()
    assert data["items"] == {"shared": 40, "only_a": 0, "only_b": 0}
    tags = {t.id: t.tags["intent"] for t in test_items}
    per = paired_by_slice(a, b, tags)
    assert data["slice_key"] == "intent" and set(data["slices"]) == set(per)
    adjusted = dict(zip(per, holm([c.p_value for c in per.values()]), strict=True))
    for name, c in per.items():
        assert data["slices"][name]["diff"] == pytest.approx(c.diff)
        assert data["slices"][name]["p_holm"] == pytest.approx(adjusted[name])


def test_slicing_by_the_gold_answer_and_an_unknown_tag(tmp_path: Path, test_items: list[Task]) -> None:
    run_a, run_b, _, _ = _two_runs(tmp_path, test_items)
    by_answer = compare(run_a, run_b, slice_key="answer")
    assert by_answer.slice_key == "answer"
    assert set(by_answer.slices) == {t.answer for t in test_items}
    result = runner.invoke(app, ["compare", str(run_a), str(run_b), "--slice", "colour"])
    assert result.exit_code == 1
    assert "no item has a slice tag 'colour'" in result.stderr and "intent" in result.stderr


def test_partly_overlapping_runs_are_compared_on_their_shared_items(tmp_path: Path) -> None:
    a = _journal(tmp_path / "a.jsonl", {"t1": 1.0, "t2": 0.0, "t3": 0.0, "t4": 1.0})
    b = _journal(tmp_path / "b.jsonl", {"t2": 1.0, "t3": 1.0, "t4": 1.0, "t5": 0.0, "t6": 0.0})
    result = runner.invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 0, result.output
    assert "items: 3 shared, 1 only in A, 2 only in B" in result.output
    assert "over the shared items only" in result.output
    assert "no config.yaml or eval.json" in result.output  # a bare journal has no suite to slice by


def test_runs_sharing_no_item_exit_1_with_one_line(tmp_path: Path) -> None:
    a = _journal(tmp_path / "a.jsonl", {"t1": 1.0})
    b = _journal(tmp_path / "b.jsonl", {"t2": 1.0})
    result = runner.invoke(app, ["compare", str(a), str(b)])
    assert result.exit_code == 1
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "share no item ids" in lines[0] and "Traceback" not in result.output


def test_load_scores_reads_run_dirs_eval_folders_and_journals(tmp_path: Path) -> None:
    run = _run_dir(tmp_path / "run", {"test-1": 1.0, "test-2": 0.0}, dev={"train-1": 1.0})
    assert load_scores(run) == {"test-1": 1.0, "test-2": 0.0}
    assert load_scores(run, when="before") == {"test-1": 0.0, "test-2": 0.0}
    assert load_scores(run, split="dev") == {"train-1": 1.0}  # the kept round's (2) dev journal
    assert load_scores(run, split="dev", when="before") == {"train-1": 0.0}
    assert load_scores(run, round_no=2) == {"train-1": 1.0}
    folder = tmp_path / "eval"
    _journal(folder / "journal.jsonl", {"test-9": 0.5})
    (folder / "summary.json").write_text(json.dumps({"split": "test", "score": 0.5}))
    assert load_scores(folder) == {"test-9": 0.5}
    assert load_scores(folder / "journal.jsonl") == {"test-9": 0.5}
    with pytest.raises(DataError, match="holds a test evaluation, not dev"):
        load_scores(folder, split="dev")


def test_missing_or_empty_sources_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="does not exist"):
        load_scores(tmp_path / "nowhere")
    with pytest.raises(RunDirError, match="neither a run directory"):
        load_scores(tmp_path)
    run = _run_dir(tmp_path / "run", {"test-1": 1.0})
    (run / "evals" / "test_after.jsonl").unlink()
    with pytest.raises(RunDirError, match="has no evals/test_after.jsonl"):
        load_scores(run)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(DataError, match="holds no scored items"):
        load_scores(empty)
    result = runner.invoke(app, ["compare", str(empty), str(run)])
    assert result.exit_code == 1 and "holds no scored items" in result.stderr


def test_runs_of_different_suites_are_not_paired_even_when_their_ids_overlap(tmp_path: Path) -> None:
    folders = []
    for suite in ("banking77", "gsm8k"):
        folder = tmp_path / suite
        folder.mkdir()
        (folder / "eval.json").write_text(json.dumps({"suite": {"name": suite}, "split": "test"}))
        (folder / "journal.jsonl").write_text(
            "".join(
                json.dumps({"task_id": f"test-{i}", "answer": "x", "score": i % 2}) + "\n" for i in range(5)
            )
        )
        folders.append(folder)
    with pytest.raises(DataError, match="different suites"):
        compare(*folders)
