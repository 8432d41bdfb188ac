"""Graders against the published data and grading of each benchmark (GSM8K, BBH, MATH-500, NLU++)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import shared_benchmarks
from tutelage.backends import build_lm
from tutelage.config import RoleConfig
from tutelage.evals.graders import (
    GRADERS,
    BBHGrader,
    Grade,
    Grader,
    GSM8KGrader,
    JudgeGrader,
    MathGrader,
    MultiLabelF1Grader,
    feedback_for,
    get_grader,
)
from tutelage.evals.metrics import label_match
from tutelage.testing import ScriptedServer

BENCHMARKS = shared_benchmarks()
BBH_OUTPUTS = BENCHMARKS / "bbh" / "code-davinci-002-outputs"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        pytest.skip(f"{path} is missing: the shared benchmark data lives in ../shared/benchmarks")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


# --- registry -------------------------------------------------------------------------------------


def test_every_named_grader_is_built_by_name_and_is_a_plain_metric() -> None:
    options: dict[str, dict[str, Any]] = {"judge": {"lm": object(), "rubric": "Same meaning."}}
    for name in GRADERS:
        grader = get_grader(name, **options.get(name, {}))
        assert isinstance(grader, Grader) and grader.name == name
    assert GRADERS == ("label", "gsm8k", "bbh", "math", "f1", "judge")
    assert get_grader("label")("Card Arrival", "card_arrival") == 1.0


def test_an_unknown_name_or_option_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="gsm8k, bbh, math, f1, judge"):
        get_grader("gsm8")
    with pytest.raises(TypeError, match="has no option stlye; it takes style"):
        get_grader("bbh", stlye="cot")
    with pytest.raises(ValueError, match="'cot' or 'direct'"):
        get_grader("bbh", style="fewshot")
    with pytest.raises(ValueError, match="needs a rubric"):
        get_grader("judge", lm=object(), rubric=" ")
    with pytest.raises(ValueError, match="needs lm="):
        get_grader("judge", rubric="Same meaning.")


def test_feedback_for_uses_a_graders_words_and_a_generic_sentence_for_plain_metrics() -> None:
    assert (
        feedback_for(GSM8KGrader(), "so 12", "#### 18")
        == "no '####' line; last number read was 12; expected 18"
    )
    assert (
        feedback_for(label_match, "card_arrival", "change_pin")
        == "scored 0.00; the expected answer is 'change_pin'"
    )


# --- gsm8k ----------------------------------------------------------------------------------------


def test_gsm8k_reads_the_hash_line_and_falls_back_to_the_last_number() -> None:
    grader = GSM8KGrader()
    assert grader("She makes 9 * 2 = $<<9*2=18>>18.\n#### 18", "#### 18") == 1.0
    assert grader("#### 18.00", "18") == 1.0
    assert grader("The total is $1,000.", "#### 1,000") == 1.0
    assert grader("#### 17", "18") == 0.0
    lenient = grader.grade("I think 7 + 5 = 12 apples", "#### 18")
    assert (lenient.score, lenient.extracted) == (0.0, "12")
    assert lenient.feedback == "no '####' line; last number read was 12; expected 18"
    strict = GSM8KGrader(strict=True).grade("so the answer is 18", "#### 18")
    assert strict.score == 0.0 and "strict" in strict.feedback and "expected 18" in strict.feedback
    assert grader.grade("I cannot tell.", "18").feedback.startswith("no number in the reply")


def test_gsm8k_every_published_solution_matches_itself_and_its_bare_answer() -> None:
    rows = _jsonl(BENCHMARKS / "gsm8k" / "test.jsonl") + _jsonl(BENCHMARKS / "gsm8k" / "train.jsonl")
    assert len(rows) == 1319 + 7473
    strict, lenient = GSM8KGrader(strict=True), GSM8KGrader()
    wrong = []
    for row in rows:
        solution = row["answer"]
        bare = solution.rsplit("####", 1)[1].strip()
        shifted = str(int(bare.replace(",", "")) + 1)
        scores = (
            strict(solution, bare),
            strict(solution, solution),
            lenient(bare, solution),  # a reply that is just the number
            strict(bare, solution),  # ... has no '####' line, which strict grading requires
            lenient(solution, shifted),
        )
        if scores != (1.0, 1.0, 1.0, 0.0, 0.0):
            wrong.append((bare, scores))
    assert wrong == []


# --- bbh ------------------------------------------------------------------------------------------


def _published(style: str, task: str) -> list[tuple[str, str]]:
    data = json.loads(
        (BBH_OUTPUTS / f"code-davinci-002-{style}" / f"{task}_few_shot_template_0-255000.json").read_text()
    )
    return [(out["prediction"], out["target"]) for out in data["outputs"]]


def test_bbh_reproduces_all_54_published_codex_accuracies() -> None:
    reference_file = BENCHMARKS / "bbh" / "codex_reference_accuracy.json"
    if not reference_file.exists() or not BBH_OUTPUTS.is_dir():
        pytest.skip(
            f"{BENCHMARKS / 'bbh'} is missing: the published BBH outputs live in ../shared/benchmarks"
        )
    reference = json.loads(reference_file.read_text())["tasks"]
    assert len(reference) == 27
    off = {}
    for style in ("cot", "direct"):
        grader = get_grader("bbh", style=style)
        for task, accuracy in reference.items():
            ours = 100 * grader.aggregate(_published(style, task))
            if abs(ours - accuracy[f"codex_{style}_acc"]) > 0.1:
                off[f"{style}/{task}"] = (round(ours, 2), accuracy[f"codex_{style}_acc"])
    assert off == {}


def test_bbh_reads_the_answer_the_way_the_published_grading_does() -> None:
    cot = BBHGrader(style="cot")
    # the answer's own line only: Codex went on with the next few-shot question
    assert cot("... So the answer is (A).\n\nQ: Which of the following ...", "(A)") == 1.0
    assert cot("So the answer is Yes. Then later, so the answer is No.", "No") == 1.0
    assert cot("So the answer is **(C) The Matrix**.", "(C)") == 1.0
    assert cot("So the answer is C.", "(C)") == 1.0
    hedge = cot.grade("So the answer is (A) or (B).", "(A)")
    assert hedge.score == 0.0 and "more than one option" in hedge.feedback
    missing = cot.grade("Bob tells the truth, so Ka lies", "No")
    assert missing.score == 0.0 and "never says 'So the answer is" in missing.feedback
    direct = BBHGrader(style="direct")
    assert direct("(D)\n\nQ: next question", "(D)") == 1.0
    assert direct("] ] >", "] ] >") == 1.0 and direct("] ]", "] ] >") == 0.0
    # a target written as option text is compared as text: a letter does not match it
    assert direct("(B)", "Monsters, Inc") == 0.0
    assert direct("Monsters, Inc", "Monsters, Inc") == 1.0
    assert direct.grade("(B)", "(A)").feedback == "answered (B); expected (A)"


# --- math -----------------------------------------------------------------------------------------


def test_math500_every_solution_grades_correct_against_its_own_answer() -> None:
    rows = _jsonl(BENCHMARKS / "math500" / "test.jsonl")
    assert len(rows) == 500
    grader = MathGrader()
    wrong = [row["unique_id"] for row in rows if grader(row["solution"], row["answer"]) != 1.0]
    assert wrong == []
    assert grader.aggregate([(row["answer"], row["solution"]) for row in rows]) == 1.0


def test_math500_a_solution_graded_against_the_next_items_answer_is_wrong() -> None:
    rows = _jsonl(BENCHMARKS / "math500" / "test.jsonl")[:200]
    grader = MathGrader()
    accepted = [
        (row["answer"], following["answer"])
        for row, following in zip(rows, rows[1:], strict=False)
        if grader(row["solution"], following["answer"]) == 1.0
    ]
    # only true coincidences: the same number twice, and "x=5" read as "5" by the MATH normalisation
    assert accepted == [("5", "x=5"), ("7", "7")]


@pytest.mark.parametrize(
    ("reply", "gold"),
    [
        ("so $x = \\boxed{0.5}$", "\\frac{1}{2}"),
        ("\\boxed{\\dfrac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "(3,\\frac{\\pi}{2})"),
        ("\\boxed{[2, 5)}", "The set is $\\boxed{[2,5)}$."),
        ("\\boxed{\\sqrt{8}}", "2\\sqrt{2}"),
        ("\\fbox{10^\\circ}", "10"),
        ("Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "\\boxed{0.75}"),
        ("\\boxed{x = 5}", "5"),
    ],
)
def test_math_accepts_equivalent_forms(reply: str, gold: str) -> None:
    assert MathGrader()(reply, gold) == 1.0


@pytest.mark.parametrize(
    ("reply", "gold"),
    [
        ("\\boxed{19}", "18"),
        ("\\boxed{\\frac{2}{3}}", "\\frac{1}{3}"),
        ("\\boxed{(2, 5)}", "[2,5)"),
        ("\\boxed{(3, \\frac{\\pi}{3})}", "(3, \\frac{\\pi}{2})"),
        ("\\boxed{\\text{(D)}}", "\\text{(C)}"),
    ],
)
def test_math_rejects_wrong_answers(reply: str, gold: str) -> None:
    assert MathGrader()(reply, gold) == 0.0


def test_math_feedback_names_what_was_read_and_what_was_expected() -> None:
    grade = MathGrader().grade("We get $\\boxed{\\frac{2}{3}}$.", "\\frac{1}{3}")
    assert grade.extracted == "\\frac{2}{3}"
    assert (
        grade.feedback
        == "read \\frac{2}{3} from the last \\boxed{}; it is not equal to the expected \\frac{1}{3}"
    )
    missing = MathGrader().grade("First, we expand.\nThen we simplify.", "\\boxed{7}")
    assert missing.score == 0.0 and missing.feedback == "no \\boxed{} answer in the reply; expected 7"


def test_a_reply_cannot_run_code_through_the_sympy_fallback() -> None:
    from tutelage.evals.graders._symbolic import _sympy_unbounded

    assert _sympy_unbounded("eval(chr(49))", "1") is None  # refused before sympy's eval() sees it
    assert _sympy_unbounded("\\dfrac12", "0.5") is True
    assert MathGrader()("\\boxed{eval(chr(49))}", "1") == 0.0


def test_math_symbolic_check_works_in_worker_threads() -> None:
    # math-verify's own timeouts use signal.alarm, which raises outside the main thread
    scores: list[float] = []
    threads = [threading.Thread(target=lambda: scores.append(MathGrader()("\\boxed{0.75}", "\\frac{3}{4}")))]
    threads += [threading.Thread(target=lambda: scores.append(MathGrader()("\\boxed{\\sqrt{8}}", "3")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(scores) == [0.0, 1.0]


# --- f1 (NLU++) -----------------------------------------------------------------------------------


def test_f1_reads_label_sets_written_many_ways() -> None:
    grader = MultiLabelF1Grader()
    gold = "how_long, pin, arrival"
    assert grader('["how long", "PIN", "arrival"]', gold) == 1.0
    assert grader("- pin\n- arrival\n- how_long", gold) == 1.0
    assert grader("pin and arrival", gold) == 0.8
    assert grader("", "") == 1.0 and grader("none", "") == 1.0
    assert grader("pin", "") == 0.0
    grade = grader.grade("pin, card", gold)
    assert grade.feedback == (
        "read {card, pin}; expected {arrival, how_long, pin}; missing arrival, how_long; "
        "wrongly added card (F1 0.40)"
    )


def test_f1_snaps_near_misses_to_known_labels_only_when_close() -> None:
    labels = ["how_long", "pin", "arrival", "card", "new"]
    snapping = MultiLabelF1Grader(labels=labels)
    assert snapping("pins, arival, how long", "how_long, pin, arrival") == 1.0
    assert MultiLabelF1Grader()("pins, arival, how long", "how_long, pin, arrival") < 1.0
    far = snapping.grade("pin, mortgage", "pin")
    assert far.score == pytest.approx(2 / 3) and "mortgage not a known label" in far.feedback


def test_f1_suite_score_is_micro_f1_not_the_mean_of_item_f1() -> None:
    grader = get_grader("f1")
    pairs = [("a, b, c, d", "a, b, c, d"), ("", "e"), ("", "")]
    # micro: TP 4, FN 1 -> 8/9; the mean of item F1 would be (1 + 0 + 1) / 3
    assert grader.aggregate(pairs) == pytest.approx(8 / 9)
    assert grader.aggregate([("", ""), ("none", "")]) == 1.0


def test_f1_scores_the_published_nluplusplus_gold_as_perfect() -> None:
    fold = BENCHMARKS / "nlupp" / "banking" / "fold0.json"
    if not fold.exists():
        pytest.skip(f"{fold} is missing: the shared benchmark data lives in ../shared/benchmarks")
    labels = list(json.loads((BENCHMARKS / "nlupp" / "ontology.json").read_text())["intents"])
    grader = MultiLabelF1Grader(labels=labels)
    pairs = [(", ".join(row.get("intents", [])),) * 2 for row in json.loads(fold.read_text())]
    assert grader.aggregate(pairs) == 1.0
    assert grader.aggregate([("", gold) for _, gold in pairs]) == 0.0


# --- custom ---------------------------------------------------------------------------------------


def starts_with_gold(prediction: str, gold: str) -> tuple[float, str]:
    ok = prediction.strip().startswith(gold)
    return (1.0, "ok") if ok else (0.0, f"does not start with {gold!r}")


def half_credit(prediction: str, gold: str, *, credit: float = 0.5) -> float:
    return 1.0 if prediction == gold else credit


class LengthGrader(Grader):
    name = "length"

    def __init__(self, *, limit: int = 3) -> None:
        self.limit = limit

    def grade(self, prediction: str, gold: str) -> Grade:
        ok = len(prediction) <= self.limit
        return Grade(float(ok), prediction, "short enough" if ok else "too long")


NOT_CALLABLE = 42


def test_custom_graders_are_imported_by_path() -> None:
    here = __name__
    tupled = get_grader(f"{here}:starts_with_gold")
    assert tupled.grade("Paris, France", "Paris") == Grade(1.0, "Paris, France", "ok")
    assert tupled.grade("Lyon", "Paris").feedback == "does not start with 'Paris'"
    assert get_grader(f"{here}:half_credit", credit=0.25)("x", "y") == 0.25
    assert get_grader(f"{here}:LengthGrader", limit=2).grade("abc", "").feedback == "too long"
    assert get_grader("tutelage.evals.metrics:label_match")("Card Arrival", "card_arrival") == 1.0


def test_a_bad_custom_path_fails_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="cannot import module 'no_such_pkg.mod'"):
        get_grader("no_such_pkg.mod:fn")
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        get_grader("tutelage.evals.metrics:nope")
    with pytest.raises(TypeError, match="not a callable"):
        get_grader(f"{__name__}:NOT_CALLABLE")
    with pytest.raises(TypeError, match="cannot be built with options"):
        get_grader(f"{__name__}:LengthGrader", size=2)


# --- judge ----------------------------------------------------------------------------------------


def _judge(
    reply: str, *, rubric: str = "Full marks only if the city is right."
) -> tuple[JudgeGrader, ScriptedServer]:
    server = ScriptedServer(lambda request: reply, model="teacher").start()
    role = RoleConfig(provider="openai", model="teacher", api_base=server.api_base, max_tokens=40, retries=0)
    return JudgeGrader(lm=build_lm(role, server.api_base), rubric=rubric), server


def test_judge_sends_rubric_gold_and_reply_and_reads_the_score() -> None:
    grader, server = _judge("SCORE: 7/10\nFEEDBACK: Right city, but the country is missing.")
    try:
        grade = grader.grade("It is Paris.", "Paris, France")
        assert grader("It is Paris.", "Paris, France") == pytest.approx(0.7)  # remembered: no second call
        requests = server.chat_requests()
    finally:
        server.stop()
    assert grade.score == pytest.approx(0.7)
    assert grade.feedback == "judge scored 0.70: Right city, but the country is missing."
    assert len(requests) == 1 and requests[0]["max_tokens"] == 40
    assert len(requests[0]["messages"]) == 1
    prompt = requests[0]["messages"][0]["content"]
    assert "Full marks only if the city is right." in prompt
    assert "Paris, France" in prompt and "It is Paris." in prompt and "SCORE:" in prompt


@pytest.mark.parametrize(
    ("reply", "score"),
    [("**SCORE:** 1\n**FEEDBACK:** exact", 1.0), ("Score = 0.25. Feedback: partly", 0.25), ("SCORE: 8", 0.8)],
)
def test_judge_reads_scores_written_loosely(reply: str, score: float) -> None:
    grader, server = _judge(reply)
    try:
        assert grader("x", "y") == pytest.approx(score)
    finally:
        server.stop()


@pytest.mark.parametrize("reply", ["I think it is mostly right.", "SCORE: 42", ""])
def test_an_unparsable_judge_reply_is_a_zero_with_feedback_not_an_error(reply: str) -> None:
    grader, server = _judge(reply)
    try:
        grade = grader.grade("It is Paris.", "Paris")
    finally:
        server.stop()
    assert grade.score == 0.0
    assert grade.feedback.startswith("the judge's reply did not parse")
