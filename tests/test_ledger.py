"""The cost ledger, paired statistics, batch selection and round rollback, as units."""

import time
from pathlib import Path

import pytest

from tutelage.agents.ledger import Ledger
from tutelage.config import BudgetConfig
from tutelage.errors import BudgetExhausted
from tutelage.evals.harness import Attempt
from tutelage.evals.stats import paired_sign_test
from tutelage.evals.suites import Task
from tutelage.loop._batches import select_batch
from tutelage.memory._curate import rollback_round
from tutelage.memory._undo import UndoLog
from tutelage.memory.chroma import ChromaLessonStore
from tutelage.memory.lesson import Lesson
from tutelage.memory.query import LessonFilter
from tutelage.testing import HashEmbedder


def test_ledger_refuses_calls_past_a_budget_but_never_a_held_out_test_call(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl", budget=BudgetConfig(teacher_tokens=100))
    ledger.at(1, "diagnose")
    ledger.admit("teacher")
    ledger.record("teacher", {"prompt_tokens": 80, "completion_tokens": 30}, 0.5)
    with pytest.raises(BudgetExhausted, match=r"teacher token budget spent \(110 of 100 tokens\)"):
        ledger.admit("teacher")
    with pytest.raises(BudgetExhausted):  # any spent budget ends the run, for every role
        ledger.admit("student")
    ledger.at(1, "test")
    ledger.admit("teacher")  # held-out evaluation is recorded, never refused


def test_ledger_totals_continue_across_a_resume_and_price_each_role(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    first = Ledger(path, prices={"teacher": (2.0, 10.0)})
    first.at(1, "diagnose")
    first.record("teacher", {"prompt_tokens": 1000, "completion_tokens": 100}, 1.0)
    first.record("student", None, 0.2, error="Timeout")
    with path.open("a") as fh:
        fh.write('{"role": "teacher", "round"')  # a torn last line from a kill
    again = Ledger(path, prices={"teacher": (2.0, 10.0)})
    again.at(2, "diagnose")
    again.record("teacher", {"prompt_tokens": 500, "completion_tokens": 50}, 1.0)
    totals = again.totals()
    assert totals["teacher"]["calls"] == 2 and totals["teacher"]["tokens_in"] == 1500
    assert totals["teacher"]["usd"] == pytest.approx((1500 * 2.0 + 150 * 10.0) / 1e6)
    assert totals["student"] == {
        "calls": 1,
        "failures": 1,
        "retries": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "usd": 0.0,
        "seconds": 0.2,
    }
    assert again.round_totals(2)["teacher"]["tokens_in"] == 500


def test_ledger_admits_in_constant_time_with_the_same_budget_figures_as_the_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ledger.jsonl"
    budget = BudgetConfig(student_tokens=30_000, teacher_usd=0.05)
    first = Ledger(path, prices={"teacher": (3.0, 15.0)}, budget=budget)
    first.at(1, "attempt")
    for i in range(200):
        first.record("student", {"prompt_tokens": 60 + i % 7, "completion_tokens": 9}, 0.01)
        first.record("teacher", {"prompt_tokens": 40, "completion_tokens": 5}, 0.01)
    resumed = Ledger(path, prices={"teacher": (3.0, 15.0)}, budget=budget)  # totals rebuilt from the rows
    import tutelage.agents.ledger as ledger_module

    def resum(*_: object) -> None:
        raise AssertionError("admission re-summed the rows")

    monkeypatch.setattr(ledger_module, "summarize", resum)
    resumed.at(2, "attempt")
    spent = None
    while spent is None:  # spend until a budget stops it
        resumed.record("student", {"prompt_tokens": 70, "completion_tokens": 10}, 0.01)
        spent = resumed.exhausted()
    monkeypatch.undo()
    totals = resumed.totals()
    used = totals["student"]["tokens_in"] + totals["student"]["tokens_out"]
    assert spent == f"student token budget spent ({used:,} of 30,000 tokens)"
    assert used - 80 < 30_000 <= used  # the very call that crossed it, not one later
    assert totals["teacher"]["usd"] == pytest.approx(200 * (40 * 3.0 + 5 * 15.0) / 1e6)
    with pytest.raises(BudgetExhausted, match="student token budget"):
        resumed.admit("teacher")


def test_sign_test_counts_only_disagreements() -> None:
    a = {f"d{i}": 0.0 for i in range(20)}
    b = {**a, "d0": 1.0, "d1": 1.0, "d2": 1.0, "d3": 1.0}
    paired = paired_sign_test(a, b)
    assert (paired.wins, paired.losses, paired.gain) == (4, 0, 0.2)
    assert paired.p_value == pytest.approx(1 / 16)
    assert paired_sign_test(a, a).p_value == 1.0  # a tie is never "better"
    assert paired_sign_test(b, a).p_value == 1.0


def _tasks(n: int) -> list[Task]:
    return [Task(f"t{i}", " ".join(["word"] * (1 + (i * 7) % 13)) + f" item {i}", "x") for i in range(n)]


def test_batches_are_fresh_seeded_and_shaped_by_the_chosen_policy() -> None:
    pool, embed = _tasks(60), HashEmbedder().embed
    first = select_batch("uniform", pool=pool, seen={}, size=10, seed=1, embed=embed)
    assert first == pool[:10]
    seen = {t.id: Attempt(t.id, "y", 0.0 if n < 4 else 1.0) for n, t in enumerate(first)}
    second = select_batch("uniform", pool=pool, seen=seen, size=10, seed=1, embed=embed)
    assert not {t.id for t in second} & set(seen)
    hard = select_batch("hard", pool=pool, seen=seen, size=10, seed=1, embed=embed)
    assert {t.id for t in hard[:4]} == {"t0", "t1", "t2", "t3"}  # the failures come back
    assert not {t.id for t in hard[4:]} & set(seen)
    assert hard == select_batch("hard", pool=pool, seen=seen, size=10, seed=1, embed=embed)
    easy = select_batch("curriculum", pool=pool, seen={}, size=10, seed=1, embed=embed)
    lengths = [len(t.input.split()) for t in easy]
    assert lengths == sorted(lengths) and max(lengths) <= min(
        len(t.input.split()) for t in pool if t not in easy
    )


def test_rollback_undoes_exactly_the_rounds_status_changes(tmp_path: Path) -> None:
    store = ChromaLessonStore(tmp_path / "m", embedder=HashEmbedder())
    old = Lesson.make(kind="example", text="old lesson", answer="a", round=1)
    new = Lesson.make(kind="strategy", text="new lesson", round=2)
    store.add([old.with_status("active", "ok", round=1)])
    store.undo = log = UndoLog(tmp_path / "round_2" / "memory-undo.jsonl")
    store.add([new])
    store.set_status([new.id], "active", "ok", round=2)
    store.set_status([old.id], "retired", "merged into new", round=2)
    store.undo = None
    before = store.get([old.id])[0]
    assert rollback_round(store, log, "rolled back: round 2 not accepted", round=2) == 2
    restored, retired = store.get([old.id, new.id])
    assert restored.status == "active" and retired.status == "retired"
    assert restored.history == before.history[:-1]  # exactly the record round 2 found
    assert retired.reason == "rolled back: round 2 not accepted"
    assert [x.id for x in store.all(LessonFilter(as_of_round=2))] == [old.id]
    # Repeating the rollback (a crash halfway through) changes nothing more.
    assert rollback_round(store, log, "rolled back: round 2 not accepted", round=2) == 0


def test_wall_clock_budget_counts_earlier_sessions_of_a_resumed_run(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    first = Ledger(path)
    first.at(1, "attempt")
    time.sleep(0.3)
    first.record("student", {"prompt_tokens": 1, "completion_tokens": 1}, 0.1)
    resumed = Ledger(path, budget=BudgetConfig(seconds=0.25))
    resumed.at(1, "attempt")
    assert resumed.recorded_seconds() >= 0.3
    with pytest.raises(BudgetExhausted, match="wall-clock budget spent"):
        resumed.admit("student")
