"""The optimizer round on scripted endpoints: accept or roll back, stop rules, budgets, batches, guards."""

import json
from pathlib import Path
from typing import Any

import tutelage
from tutelage.evals.suites import load_suite
from tutelage.memory.location import open_run_memory
from tutelage.memory.query import LessonFilter
from tutelage.rundir import RunPaths
from tutelage.testing import HashEmbedder, ScriptedServer, last_demo_answer
from tutelage.train.datasets import export_finetune, validate_preference_row, validate_sft_row

from .conftest import scripted_config, teacher_reply

HARMFUL = "DIAGNOSIS: The student misread it.\nSTRATEGY: Always answer with the label cash_withdrawal_charge."


def _user(request: dict[str, Any]) -> str:
    return str(request["messages"][-1]["content"])


def _system(request: dict[str, Any]) -> str:
    return str(request["messages"][0]["content"])


def _metrics(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "metrics.json").read_text())  # type: ignore[no-any-return]


def test_harmful_lessons_are_rolled_back_and_the_run_never_ends_worse_than_it_started(tmp_path: Path) -> None:
    cfg_probe = scripted_config(tmp_path, "http://x/v1", "http://x/v1")
    gold = {t.input: t.answer for t in load_suite(cfg_probe.suite).dev}
    known = dict(list(gold.items())[::2])  # the student already knows half of the dev items

    def student(request: dict[str, Any]) -> str:
        if "Always answer with the label" in _system(request):  # it obeys the strategies it is shown
            return "cash_withdrawal_charge"
        return known.get(_user(request), "unknown")

    with ScriptedServer(student) as s, ScriptedServer(lambda r: HARMFUL) as t:
        cfg = scripted_config(tmp_path, s.api_base, t.api_base, "loop.search_strategies=[2]", "loop.rounds=2")
        result = tutelage.run(cfg, embedder=HashEmbedder())
    m = result.metrics
    assert m["dev_accuracy"]["start"] == 0.5
    assert [r["accepted"] for r in m["rounds"]] == [False, False]
    assert m["rounds"][0]["dev_accuracy"] == 0.0  # the harmful program really was worse
    assert m["dev_accuracy"]["kept"] == m["dev_accuracy"]["start"] and m["kept_round"] == 0
    assert m["test_accuracy"]["after"] == m["test_accuracy"]["before"]
    memory = open_run_memory(RunPaths(result.run_dir), cfg, HashEmbedder())
    assert memory.count(status="active") == 0
    strategy = memory.all(LessonFilter(kind="strategy", status=None))[0]
    assert strategy.status == "retired" and strategy.reason.startswith("rolled back: round 1 not accepted")
    # The next round's attempts saw none of the rolled-back lessons.
    attempts = (result.run_dir / "rounds" / "round_2" / "attempts.jsonl").read_text()
    assert strategy.id not in attempts
    assert "rolled back" in (result.run_dir / "report.md").read_text()


def test_a_round_that_helps_is_accepted_and_its_program_kept(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base)
    m = tutelage.run(cfg, embedder=HashEmbedder()).metrics
    first = m["rounds"][0]
    assert first["accepted"] and first["decision"].startswith("accepted: +")
    assert first["p_value"] < cfg.loop.accept.alpha
    assert m["dev_accuracy"]["kept"] > m["dev_accuracy"]["start"]


def test_patience_stops_after_rounds_in_a_row_are_rolled_back(tmp_path: Path) -> None:
    with ScriptedServer(lambda r: "unknown") as s, ScriptedServer(teacher_reply) as t:
        cfg = scripted_config(tmp_path, s.api_base, t.api_base, "loop.rounds=5", "loop.patience=2")
        m = tutelage.run(cfg, embedder=HashEmbedder()).metrics
    assert [r["round"] for r in m["rounds"]] == [1, 2]
    assert m["stop_reason"] == "patience: 2 round(s) in a row rolled back"


def test_a_token_budget_stops_the_run_and_the_ledger_adds_up(tmp_path: Path) -> None:
    with ScriptedServer(last_demo_answer) as s, ScriptedServer(teacher_reply) as t:
        cfg = scripted_config(
            tmp_path, s.api_base, t.api_base, "loop.rounds=5", "loop.budget.teacher_tokens=4000"
        )
        result = tutelage.run(cfg, embedder=HashEmbedder())
        student_requests, teacher_requests = len(s.chat_requests()), len(t.chat_requests())
    m = result.metrics
    assert m["stop_reason"].startswith("teacher token budget spent (")
    assert len(m["rounds"]) < 5 and m["test_accuracy"]["after"] is not None  # the final test still ran
    calls = [json.loads(line) for line in (result.run_dir / "ledger.jsonl").read_text().splitlines()]
    teacher = [c for c in calls if c["role"] == "teacher"]
    # Every request the servers saw is one ledger row, and the totals are the sums of the rows.
    assert len(teacher) == teacher_requests and len(calls) - len(teacher) == student_requests
    for role in ("student", "teacher"):
        rows = [c for c in calls if c["role"] == role]
        assert m["cost"][role]["calls"] == len(rows)
        assert m["cost"][role]["tokens_in"] == sum(c["tokens_in"] for c in rows)
        assert m["cost"][role]["tokens_out"] == sum(c["tokens_out"] for c in rows)
        by_round = sum(r["cost"].get(role, {}).get("tokens_in", 0) for r in m["rounds"])
        assert by_round == sum(c["tokens_in"] for c in rows if c["phase"] != "test" and c["round"] >= 1)
    used = sum(c["tokens_in"] + c["tokens_out"] for c in teacher)
    largest = max(c["tokens_in"] + c["tokens_out"] for c in teacher)
    # Calls stop once the budget is spent: at most the calls already in flight go over it.
    assert 4000 <= used <= 4000 + cfg.teacher.concurrency * largest
    assert m["dev_accuracy"]["kept"] >= m["dev_accuracy"]["start"]
    assert "teacher token budget spent" in (result.run_dir / "report.md").read_text()


def test_a_money_budget_prices_tokens_per_role(tmp_path: Path) -> None:
    with ScriptedServer(last_demo_answer) as s, ScriptedServer(teacher_reply) as t:
        cfg = scripted_config(
            tmp_path,
            s.api_base,
            t.api_base,
            "loop.rounds=4",
            "student.price_in=1000",
            "student.price_out=2000",
            "loop.budget.student_usd=20",
        )
        m = tutelage.run(cfg, embedder=HashEmbedder()).metrics
    cost = m["cost"]["student"]
    assert abs(cost["usd"] - (cost["tokens_in"] * 1000 + cost["tokens_out"] * 2000) / 1e6) < 1e-6
    assert m["stop_reason"].startswith("student money budget spent ($")
    assert m["cost"]["teacher"]["usd"] == 0.0


def test_samples_per_failure_are_fresh_and_pooled_without_near_duplicates(tmp_path: Path) -> None:
    replies = iter(
        [
            "DIAGNOSIS: a.\nSTRATEGY: Look at the action the customer asks for.",
            "DIAGNOSIS: b.\nSTRATEGY: Look at the action the customer asks for, always.",
            "DIAGNOSIS: c.\nSTRATEGY: Check whether the card has arrived before anything else.",
        ]
        * 1000
    )
    with ScriptedServer(last_demo_answer) as s, ScriptedServer(lambda r: next(replies)) as t:
        cfg = scripted_config(tmp_path, s.api_base, t.api_base, "loop.rounds=1", "guards.teacher_samples=3")
        result = tutelage.run(cfg, embedder=HashEmbedder())
        requests = t.chat_requests()
    diagnosed = result.metrics["rounds"][0]["diagnosed"]
    assert len(requests) == 3 * diagnosed
    assert {r["temperature"] for r in requests} == {0.7}
    journal = [
        json.loads(x) for x in (result.run_dir / "rounds/round_1/teacher.jsonl").read_text().splitlines()
    ]
    assert all(len(d["strategies"]) == 2 and d["samples"] == 3 for d in journal)


def test_hard_batches_retry_failures_and_the_teacher_diagnoses_them_afresh(tmp_path: Path) -> None:
    with ScriptedServer(lambda r: "unknown") as s, ScriptedServer(teacher_reply) as t:
        cfg = scripted_config(
            tmp_path, s.api_base, t.api_base, "loop.batch=hard", "loop.accept.alpha=1.0", "loop.rounds=2"
        )
        result = tutelage.run(cfg, embedder=HashEmbedder())
        teacher_inputs = [_user(r) for r in t.chat_requests()]
    rounds = [
        {
            row["task_id"]: row["score"]
            for row in map(json.loads, (result.run_dir / f"rounds/round_{r}/attempts.jsonl").open())
        }
        for r in (1, 2)
    ]
    retried = set(rounds[0]) & set(rounds[1])
    assert len(retried) == cfg.loop.batch_size // 2  # half of round 2 re-attempts round-1 failures
    failed_twice = [i for i in retried if rounds[0][i] == rounds[1][i] == 0.0]
    assert failed_twice
    tasks = load_suite(cfg.suite).by_id()
    # Each failure retried was sent to the teacher again in round 2: no old diagnosis is reused.
    for task_id in failed_twice:
        assert sum(tasks[task_id].input in text for text in teacher_inputs) == 2


def test_the_monitor_does_not_count_a_student_copying_its_own_gold_example(tmp_path: Path) -> None:
    # Finding 2: the monitor used to re-attempt each taught failure with its own gold example in
    # memory, so a student that only copies demos scored 100% there and was flagged every round.
    def memorizer(request: dict[str, Any]) -> str:  # right only on a task it was shown verbatim
        turns = request["messages"]
        for user, answer in zip(turns[1:-1:2], turns[2:-1:2], strict=False):
            if user["content"] == turns[-1]["content"]:
                return str(answer["content"])
        return "unknown"

    with ScriptedServer(memorizer) as s, ScriptedServer(teacher_reply) as t:
        cfg = scripted_config(tmp_path, s.api_base, t.api_base, "loop.rounds=1")
        m = tutelage.run(cfg, embedder=HashEmbedder()).metrics
    row = m["rounds"][0]
    assert row["monitor_fit"] == 0.0 and row["flag"] is None


def test_the_monitor_flags_a_student_that_fits_the_teachers_lessons_but_not_dev(tmp_path: Path) -> None:
    cfg_probe = scripted_config(tmp_path, "http://x/v1", "http://x/v1")
    train = {t.input: t.answer for t in load_suite(cfg_probe.suite).train}

    def fits_the_teacher(request: dict[str, Any]) -> str:  # any strategy "fixes" a train item, never dev
        if "Useful strategies:" in _system(request):
            return train.get(_user(request), "unknown")
        return "unknown"

    with ScriptedServer(fits_the_teacher) as s, ScriptedServer(teacher_reply) as t:
        cfg = scripted_config(tmp_path, s.api_base, t.api_base, "loop.rounds=1")
        m = tutelage.run(cfg, embedder=HashEmbedder()).metrics
    row = m["rounds"][0]
    # One strategy text for every failure is one lesson (its id is its content), made from one of
    # them: that failure has it hidden, so of the 10 monitored it alone stays wrong.
    assert cfg.guards.monitor_size == 10
    assert row["monitor_fit"] == 0.9 and row["dev_accuracy"] == 0.0
    assert row["flag"].startswith("possible teacher hacking: 90% of the failures")


def test_every_round_writes_fine_tune_sets_that_validate_and_hold_no_held_out_item(
    tmp_path: Path, student_server: ScriptedServer, teacher_server: ScriptedServer
) -> None:
    cfg = scripted_config(tmp_path, student_server.api_base, teacher_server.api_base)
    result = tutelage.run(cfg, embedder=HashEmbedder())
    suite = load_suite(cfg.suite)
    held = {t.input for t in [*suite.guarded(), *suite.dev]}
    for r, row in enumerate(result.metrics["rounds"], start=1):
        sft = (result.run_dir / f"finetune/round_{r}/sft.jsonl").read_text().splitlines()
        pref = (result.run_dir / f"finetune/round_{r}/preference.jsonl").read_text().splitlines()
        assert row["finetune_rows"] == {"sft": len(sft), "preference": len(pref)} and sft and pref
        for line in sft:
            validate_sft_row(json.loads(line))
            assert json.loads(line)["messages"][1]["content"] not in held
        for line in pref:
            validate_preference_row(json.loads(line))
            assert json.loads(line)["prompt"][-1]["content"] not in held
    counts = export_finetune(result.run_dir)
    assert counts["sft"] > 0 and (result.run_dir / "finetune/all/sft.jsonl").is_file()
