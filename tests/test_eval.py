"""``tutelage eval``: cached per item, a killed evaluation resumes to the same result, baselines, errors."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from tests.conftest import scripted_config
from tutelage.cli import app
from tutelage.config import load_config
from tutelage.evals.runner import eval_overrides, evaluate
from tutelage.testing import ScriptedServer

runner = CliRunner()


def _user_text(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def half_right(request: dict[str, Any]) -> str:
    """A deterministic student: right on about half the items, the same answer every time it is asked."""
    text = _user_text(request)
    gold = _GOLD.get(text)
    if gold is None:
        return "card_arrival"
    return gold if hashlib.sha256(text.encode()).digest()[0] % 2 else "card_arrival"


_GOLD: dict[str, str] = {}
_GOLD_BY_ID: dict[str, str] = {}


def _config_file(tmp_path: Path, api_base: str, *extra: str) -> Path:
    cfg = scripted_config(tmp_path, api_base, api_base, "suite.test_size=60", *extra)
    path = tmp_path / "student.yaml"
    path.write_text(yaml.safe_dump(cfg.model_dump(mode="json")))
    from tutelage.evals.suites import load_suite

    _GOLD.update({t.input: t.answer for t in load_suite(cfg.suite).test})
    _GOLD_BY_ID.update({t.id: t.answer for t in load_suite(cfg.suite).test})
    return path


def _eval_cmd(config: Path, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tutelage.cli", "eval", "--config", str(config), "--out", str(out), *args]


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_a_killed_eval_resumes_and_ends_with_the_uninterrupted_result(tmp_path: Path) -> None:
    with ScriptedServer(half_right, delay=0.05) as server:
        config = _config_file(tmp_path, server.api_base)
        whole = runner.invoke(app, ["eval", "--config", str(config), "--out", str(tmp_path / "whole")])
        assert whole.exit_code == 0, whole.output
        asked_whole = len(server.chat_requests())

        # The same evaluation in a child process, killed with SIGKILL once 15 items are journaled.
        out = tmp_path / "killed"
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        child = subprocess.Popen(
            _eval_cmd(config, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 120
        while _lines(out / "journal.jsonl") < 15 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        done_before = _lines(out / "journal.jsonl")
        assert 15 <= done_before < 60, "the kill must land mid-evaluation"
        asked_before = len(server.chat_requests())

        resumed = runner.invoke(app, ["eval", "--config", str(config), "--out", str(out)])
        assert resumed.exit_code == 0, resumed.output
        asked_after = len(server.chat_requests()) - asked_before

    first = json.loads((tmp_path / "whole" / "summary.json").read_text())
    second = json.loads((out / "summary.json").read_text())
    assert asked_whole == 60
    # Only the items missing from the journal were asked again, and the result is the same.
    assert asked_after == 60 - done_before
    assert f"{done_before} read back from the cache" in " ".join(resumed.output.split())
    for key in ("n", "score", "low", "high", "failures", "slices"):
        assert second[key] == first[key], key
    assert 0.2 < first["score"] < 0.8
    by_id = {
        json.loads(x)["task_id"]: json.loads(x)["score"]
        for x in (out / "journal.jsonl").read_text().splitlines()
    }
    whole_by_id = {
        json.loads(x)["task_id"]: json.loads(x)["score"]
        for x in (tmp_path / "whole" / "journal.jsonl").read_text().splitlines()
    }
    assert by_id == whole_by_id


def test_a_rerun_reads_every_item_back_and_another_evaluation_is_refused(tmp_path: Path) -> None:
    with ScriptedServer(half_right) as server:
        config = _config_file(tmp_path, server.api_base)
        out = tmp_path / "e"
        assert (
            runner.invoke(
                app, ["eval", "--config", str(config), "--out", str(out), "--limit", "10"]
            ).exit_code
            == 0
        )
        again = runner.invoke(app, ["eval", "--config", str(config), "--out", str(out), "--limit", "10"])
        assert again.exit_code == 0 and "10 read back from the cache" in " ".join(again.output.split())
        assert len(server.chat_requests()) == 10
        other = runner.invoke(
            app,
            [
                "eval",
                "--config",
                str(config),
                "--out",
                str(out),
                "--limit",
                "10",
                "--baseline",
                "fewshot-random",
            ],
        )
        assert other.exit_code == 1
        assert "holds another evaluation (differs in: baseline, k" in " ".join(other.output.split())
        fresh = runner.invoke(
            app,
            [
                "eval",
                "--config",
                str(config),
                "--out",
                str(out),
                "--limit",
                "10",
                "--baseline",
                "fewshot-random",
                "--fresh",
            ],
        )
        assert fresh.exit_code == 0, fresh.output


def test_baselines_show_the_student_the_demos_they_promise(tmp_path: Path) -> None:
    with ScriptedServer(half_right) as server:
        config = _config_file(
            tmp_path,
            server.api_base,
            "memory.embedder.provider=openai",
            f"memory.embedder.api_base={server.api_base}",
            "memory.embedder.model=hash",
        )
        cfg = load_config(config)
        shown = {}
        for name in ("zero-shot", "fewshot-random", "retrieval-train"):
            before = len(server.chat_requests())
            summary = evaluate(cfg, baseline=name, k=3, limit=4, out=tmp_path / name)
            request = server.chat_requests()[before]
            shown[name] = [m["content"] for m in request["messages"] if m["role"] == "assistant"]
            assert summary.n == 4
        assert shown["zero-shot"] == []
        assert len(shown["fewshot-random"]) == 3
        assert len(shown["retrieval-train"]) == 3
        retrieval = server.chat_requests()[-4:]
        random_demos = server.chat_requests()[-8:-4]
    users = [[m["content"] for m in r["messages"] if m["role"] == "user"] for r in retrieval]
    # The random demos are the same for every task; retrieved ones follow the task.
    assert len({tuple(r["messages"][1:-1].__repr__()) for r in random_demos}) == 1
    assert len({tuple(u[:-1]) for u in users}) == 4


def test_per_item_failures_are_recorded_and_a_dead_endpoint_stops_with_one_line(tmp_path: Path) -> None:
    server = ScriptedServer(half_right)
    with server:
        config = _config_file(tmp_path, server.api_base, "student.retries=0", "student.concurrency=1")
        server.fail_next(400, times=2)
        ok = runner.invoke(
            app, ["eval", "--config", str(config), "--out", str(tmp_path / "ok"), "--limit", "10"]
        )
        assert ok.exit_code == 0, ok.output
        assert "(2 per-item failures)" in " ".join(ok.output.split())
        before = len(server.chat_requests())
        retried = runner.invoke(
            app,
            ["eval", "--config", str(config), "--out", str(tmp_path / "ok"), "--limit=10", "--retry-failed"],
        )
        said = " ".join(retried.output.split())
        assert retried.exit_code == 0 and "(0 per-item failures, 8 read back" in said
        assert len(server.chat_requests()) - before == 2  # only the two failed items were asked again

        asked = len(server.chat_requests())

        def dies_after_five(request: dict[str, Any]) -> str:
            if len(server.chat_requests()) >= asked + 5:
                server.fail_next(401, times=100)  # a revoked key: every later item would fail alike
            return half_right(request)

        server.reply = dies_after_five
        out = tmp_path / "dead"
        dead = runner.invoke(app, ["eval", "--config", str(config), "--out", str(out), "--limit", "20"])
    assert dead.exit_code == 1
    errors = [line for line in dead.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "student endpoint" in errors[0], dead.output
    assert 5 <= _lines(out / "journal.jsonl") < 20  # what finished is kept for the rerun


def test_eval_overrides_give_chain_of_thought_suites_room_and_the_user_the_last_word() -> None:
    assert eval_overrides("gsm8k", None, []) == [
        "suite.name=gsm8k",
        "student.max_tokens=384",
        "student.stop=[]",
    ]
    assert eval_overrides("gsm8k", "/d", ["student.max_tokens=64"]) == [
        "suite.name=gsm8k",
        "suite.data_dir=/d",
        "student.max_tokens=64",
    ]
    assert eval_overrides("my.jsonl", None, []) == ["suite.name=file", "suite.path=my.jsonl"]
    assert eval_overrides(None, None, ["a=b"]) == ["a=b"]


def test_transfer_gives_a_runs_lessons_to_another_student_and_pairs_it_with_that_student_alone(
    tmp_path: Path,
) -> None:
    import tutelage

    with (
        ScriptedServer() as student,
        ScriptedServer(lambda r: "DIAGNOSIS: d\nSTRATEGY: look closer") as teacher,
        ScriptedServer(model="other") as other,
    ):
        cfg = scripted_config(
            tmp_path,
            student.api_base,
            teacher.api_base,
            "memory.embedder.provider=openai",
            f"memory.embedder.api_base={student.api_base}",
            "memory.embedder.model=hash",
        )
        run = tutelage.run(cfg)
        asked_a = len(student.chat_requests())
        result = runner.invoke(
            app,
            [
                "transfer",
                str(run.run_dir),
                "--set",
                f"student.api_base={other.api_base}",
                "--set",
                "student.model=other",
            ],
        )
        assert result.exit_code == 0, result.output
        # Every transferred answer came from the other student; run A's student was not asked again.
        assert len(student.chat_requests()) == asked_a
        assert len(other.chat_requests()) == 2 * 40
        same = runner.invoke(app, ["transfer", str(run.run_dir)])
    text = " ".join(result.output.split())
    assert "transfer of" in text and "to student other on 40 test items" in text
    assert "taught - alone: +" in text and "McNemar" in text
    # The other student copies the last demo: alone it never answers right, taught it does.
    assert "alone (zero-shot): 0.0%" in text
    assert f"the run's own student (student), same items: {100 * run.test_after:.1f}%" in text
    assert same.exit_code == 1 and "transfer needs another student" in same.output


def explodes_on_cash(prediction: str, gold: str) -> float:
    """A custom metric with a bug that only some items reach."""
    if "cash" in gold:
        raise ZeroDivisionError("division by zero")
    return float(prediction == gold)


def test_a_grader_that_fails_on_one_item_fails_that_item_only(tmp_path: Path) -> None:
    with ScriptedServer(half_right) as server:
        config = _config_file(tmp_path, server.api_base, "suite.metric=tests.test_eval:explodes_on_cash")
        result = runner.invoke(app, ["eval", "--config", str(config), "--out", str(tmp_path / "e")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "e" / "journal.jsonl").read_text().splitlines()]
    exploded = [r for r in rows if r["error"]]
    assert exploded and all(r["error"] == "grader: ZeroDivisionError: division by zero" for r in exploded)
    assert all("cash" in _GOLD_BY_ID[r["task_id"]] for r in exploded)
    assert len(exploded) < len(rows) == 60


def test_eval_with_a_runs_memory_uses_the_kept_program_not_a_rolled_back_one(tmp_path: Path) -> None:
    from tutelage.api import kept_program
    from tutelage.rundir import RunPaths

    paths = RunPaths(tmp_path / "run")
    for n in (0, 1, 2):
        paths.program(n).parent.mkdir(parents=True, exist_ok=True)
        paths.program(n).write_text("{}")
    # No metrics yet: no round has been decided, so the kept program is the starting one (finding 7).
    assert kept_program(paths) == paths.program(0)
    paths.metrics.write_text(json.dumps({"kept_round": 1, "rounds": []}))
    assert kept_program(paths) == paths.program(1)


def test_a_multi_label_score_and_its_interval_are_both_micro_f1() -> None:
    from tutelage.evals.graders import get_grader
    from tutelage.evals.runner import score_ci

    grader = get_grader("f1")
    pairs = [("none", "none")] * 50 + [("balance", "card")] * 50
    interval = score_ci(grader, pairs, [grader(p, g) for p, g in pairs])
    # The mean item F1 is 0.5 (the empty sets agree); micro-F1 has no true positive at all.
    assert (interval.mean, interval.low, interval.high) == (0.0, 0.0, 0.0)
    mixed = [("card, pin", "card"), ("card", "card, pin"), ("balance", "balance"), ("pin", "card")] * 10
    iv = score_ci(grader, mixed, [grader(p, g) for p, g in mixed])
    assert iv.mean == grader.aggregate(mixed) and iv.low < iv.mean < iv.high


def test_a_test_only_file_can_be_evaluated_but_not_trained_on(tmp_path: Path) -> None:
    rows = [{"q": f"what is {i} plus {i}?", "a": str(2 * i), "part": "test"} for i in range(6)]
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fields = ["suite.fields.input=q", "suite.fields.answer=a", "suite.fields.split=part"]
    with ScriptedServer(lambda r: "4") as server:
        sets = [
            "student.provider=openai",
            f"student.api_base={server.api_base}",
            "student.model=x",
            f"runs_dir={tmp_path / 'runs'}",
            *fields,
        ]
        args = [f"--set={s}" for s in sets]
        scored = runner.invoke(app, ["eval", str(data), *args])
        trained = runner.invoke(app, ["run", *args, "--set=suite.name=file", f"--set=suite.path={data}"])
    assert scored.exit_code == 0, scored.output
    assert "sums test: score 16.7%" in " ".join(scored.output.split())  # "4" is right for 2 + 2 only
    assert trained.exit_code == 1
    assert "has 0 train and 0 dev items; the loop needs both" in " ".join(trained.output.split())


def _judge(request: dict[str, Any]) -> str:
    """A scripted teacher: as judge, 1 when the graded reply names the gold number, else 0."""
    prompt = _user_text(request)
    if not prompt.startswith("You grade answers."):
        return "DIAGNOSIS: the sum was wrong.\nSTRATEGY: Add the two numbers."
    gold = prompt.split("Gold answer:\n")[1].split("\n")[0].strip()
    reply = prompt.split("Reply to grade:\n")[1].split("\n\nAnswer in exactly")[0]
    right = gold in re.findall(r"\d+", reply)
    return f"SCORE: {int(right)}\nFEEDBACK: {'same' if right else 'wrong'} sum"


def _sums(tmp_path: Path, n: int, *, splits: bool) -> Path:
    parts = ["train", "train", "train", "dev", "test", "test"] if splits else ["test"]
    rows = [{"q": f"what is {i} plus {i}?", "a": str(2 * i), "part": parts[i % len(parts)]} for i in range(n)]
    data = tmp_path / "sums.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


def _judged_sets(student: str, teacher: str, tmp_path: Path, *extra: str) -> list[str]:
    sets = [
        "student.provider=openai",
        f"student.api_base={student}",
        "student.model=s",
        "teacher.provider=openai",
        f"teacher.api_base={teacher}",
        "teacher.model=judge-1",
        f"runs_dir={tmp_path / 'runs'}",
        "suite.fields.input=q",
        "suite.fields.answer=a",
        "suite.fields.split=part",
        "suite.metric=judge",
        "suite.rubric=The reply states the same sum as the gold answer.",
        *extra,
    ]
    return [f"--set={s}" for s in sets]


def test_a_judged_suite_is_graded_by_the_teacher_against_the_rubric(tmp_path: Path) -> None:
    data = _sums(tmp_path, 6, splits=False)
    with ScriptedServer(lambda r: "The sum is 4.") as student, ScriptedServer(_judge) as teacher:
        args = _judged_sets(student.api_base, teacher.api_base, tmp_path)
        scored = runner.invoke(app, ["eval", str(data), *args])
        judged = [_user_text(r) for r in teacher.chat_requests()]
        again = runner.invoke(app, ["eval", str(data), *args])
        asked_again = len(teacher.chat_requests()) - len(judged)
        other_judge = runner.invoke(app, ["eval", str(data), *args, "--set=teacher.model=judge-2"])
    assert scored.exit_code == 0, scored.output
    assert "sums test: score 16.7%" in " ".join(scored.output.split())  # "4" is right for 2 + 2 only
    assert len(judged) == 6  # one judge call per item
    assert all("The reply states the same sum as the gold answer." in p for p in judged)
    folders = sorted((tmp_path / "runs" / "evals").iterdir(), key=lambda p: p.stat().st_mtime)
    ledger = [json.loads(x) for x in (folders[0] / "ledger.jsonl").read_text().splitlines()]
    assert sorted({row["role"] for row in ledger}) == ["student", "teacher"]
    # The same evaluation is read back; another judge is another evaluation (its grades differ).
    assert again.exit_code == 0 and asked_again == 0
    assert other_judge.exit_code == 0 and len(folders) == 2
    assert json.loads((folders[1] / "eval.json").read_text())["judge"]["model"] == "judge-2"


def test_a_judge_needs_a_rubric_and_a_rubric_needs_the_judge(tmp_path: Path) -> None:
    data = _sums(tmp_path, 6, splits=False)
    no_rubric = runner.invoke(app, ["eval", str(data), "--set=suite.metric=judge"])
    stray = runner.invoke(app, ["eval", str(data), "--set=suite.rubric=Same sum."])
    assert no_rubric.exit_code == 1 and "suite.metric: judge needs suite.rubric" in no_rubric.output
    assert stray.exit_code == 1 and "set suite.metric: judge" in stray.output


def test_the_loop_grades_train_dev_and_test_with_the_teachers_judge(tmp_path: Path) -> None:
    from tutelage.api import Student, read_metrics
    from tutelage.testing import HashEmbedder

    data = _sums(tmp_path, 60, splits=True)
    gold = {f"what is {i} plus {i}?": str(2 * i) for i in range(60)}

    def student(request: dict[str, Any]) -> str:  # right, in words, when the sum is a multiple of 4
        text = _user_text(request)
        return f"It is {gold.get(text, '0')}." if int(gold.get(text, "1")) % 4 == 0 else "It is 1."

    with ScriptedServer(student) as s, ScriptedServer(_judge) as t:
        from tutelage.api import run
        from tutelage.config import load_config as load

        sets = [x.removeprefix("--set=") for x in _judged_sets(s.api_base, t.api_base, tmp_path)]
        cfg = load(
            None,
            [
                *sets,
                "suite.name=file",
                f"suite.path={data}",
                "suite.dev_size=5",
                "loop.rounds=1",
                "loop.batch_size=10",
                "loop.search_size=4",
                "loop.search_k=[1]",
                "name=judged",
            ],
        )
        result = run(cfg, embedder=HashEmbedder())
        prompts = [_user_text(r) for r in t.chat_requests()]
        with Student.load(result.run_dir, embedder=HashEmbedder()) as trained:
            graded = trained.predict("what is 4 plus 4?", gold="8")
    metrics = read_metrics(result.run_dir)
    assert any(p.startswith("You grade answers.") for p in prompts)
    assert any(not p.startswith("You grade answers.") for p in prompts)  # and it still diagnoses
    before = [
        json.loads(x) for x in (result.run_dir / "evals" / "test_before.jsonl").read_text().splitlines()
    ]
    # "It is 8." is graded right for 4 + 4 although it is not the bare answer: the judge graded it.
    assert {r["score"] for r in before} == {0.0, 1.0}
    assert metrics["test_accuracy"]["before"] == sum(r["score"] for r in before) / len(before)
    assert graded["answer"] == "It is 8." and graded["score"] == 1.0 and graded["error"] is None
