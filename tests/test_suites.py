"""Suites: seeded leak-free splits per benchmark, BBH's published prompts, file and hf loaders."""

import dataclasses
import json
import pickle
import sys
from pathlib import Path
from typing import get_args

import pytest

from tests.conftest import shared_benchmarks
from tutelage.config import SuiteConfig, SuiteName, load_config
from tutelage.errors import ConfigError, DataError
from tutelage.evals.metrics import normalize_label
from tutelage.evals.suites import SUITES, Suite, Task, load_suite
from tutelage.evals.suites.bbh import TASKS

BENCH = shared_benchmarks()
needs_bench = pytest.mark.skipif(not BENCH.is_dir(), reason=f"benchmark data not at {BENCH}")
DATA_SUITES = ["gsm8k", "bbh", "math500", "nlupp"]


def bench(name: str, **kw: object) -> Suite:
    return load_suite(SuiteConfig(name=name, data_dir=str(BENCH), **kw))  # type: ignore[arg-type]


def norm(text: str) -> str:
    return " ".join(text.lower().split())


# --- Banking77 (packaged) -------------------------------------------------------------------------


def test_banking77_splits_are_seeded_disjoint_and_leak_free() -> None:
    a = load_suite(SuiteConfig(dev_size=40, test_size=100, seed=3))
    b = load_suite(SuiteConfig(dev_size=40, test_size=100, seed=3))
    assert [t.id for t in a.dev] == [t.id for t in b.dev]
    assert len(a.dev) == 40 and len(a.test) == 100 and len(a.labels) == 77
    train_ids, dev_ids = {t.id for t in a.train}, {t.id for t in a.dev}
    assert not train_ids & dev_ids
    full = load_suite(SuiteConfig(dev_size=40, test_size=None, seed=3))
    test_texts = {normalize_label(t.input) for t in full.test}
    assert not any(normalize_label(t.input) in test_texts for t in [*full.train, *full.dev])
    assert {t.answer for t in a.test} <= set(a.labels)


def test_other_seed_gives_other_dev_split() -> None:
    assert load_suite(SuiteConfig(seed=0)).dev != load_suite(SuiteConfig(seed=1)).dev


def test_data_dir_with_a_bad_row_is_a_clear_data_error(tmp_path: Path) -> None:
    (tmp_path / "categories.json").write_text('["card_arrival"]')
    (tmp_path / "train.csv").write_text("text,category\nwhere is my card,card_arrival\n,card_arrival\n")
    (tmp_path / "test.csv").write_text("text,category\nmy card?,card_arrival\n")
    with pytest.raises(DataError, match=r"train\.csv:3: empty text"):
        load_suite(SuiteConfig(data_dir=str(tmp_path)))


def test_banking77_ids_splits_and_grader_are_what_runs_depend_on() -> None:
    suite = load_suite(SuiteConfig())
    assert (len(suite.train), len(suite.dev), len(suite.test), len(suite.held_out)) == (9939, 40, 100, 3080)
    # Pinned from the single-module loader: past runs and stores were built on exactly these splits.
    assert [t.id for t in suite.dev[:3]] == ["train-8906", "train-915", "train-1028"]
    assert [t.id for t in suite.test[:3]] == ["test-1703", "test-3026", "test-1527"]
    assert suite.dev[0].tags == {"intent": suite.dev[0].answer}
    assert suite.metric("Card arrival", "card_arrival") == 1.0 and suite.slice_keys == ("intent",)


def test_task_is_hashable_json_friendly_and_its_tags_read_only() -> None:
    task = Task("t1", "Q: 2+2?\nA:", "4", tags={"level": 3}, prefix="Add.")  # type: ignore[dict-item]
    assert task.tags == {"level": "3"} and task.prompt == "Add.\n\nQ: 2+2?\nA:"
    assert hash(task) == hash(Task("t1", "Q: 2+2?\nA:", "4", tags={"level": "3"}, prefix="Add."))
    assert json.loads(json.dumps(dataclasses.asdict(task)))["tags"] == {"level": "3"}
    assert pickle.loads(pickle.dumps(task)) == task
    with pytest.raises(TypeError, match="read-only"):
        task.tags["level"] = "4"  # type: ignore[index]
    assert Task("t", "x", "y").prompt == "x" and Task("t", "x", "y").tags == {}


def test_every_configurable_suite_name_has_a_loader() -> None:
    assert set(SUITES) == set(get_args(SuiteName))


def test_unknown_suite_name_is_one_line_naming_the_allowed_ones() -> None:
    with pytest.raises(ConfigError, match=r"suite\.name: .*'banking77'.*'gsm8k'.*'hf'") as err:
        load_config(None, ["suite.name=gsm9k"])
    assert "\n" not in str(err.value)


# --- every benchmark on disk ----------------------------------------------------------------------


@needs_bench
@pytest.mark.parametrize(
    ("name", "sizes"),
    [
        ("gsm8k", (7433, 40, 100, 1319)),
        ("bbh", (1307, 40, 100, 5161)),
        ("math500", (160, 40, 100, 300)),
        ("nlupp", (984, 40, 100, 1032)),
    ],
)
def test_default_splits_are_sized_disjoint_and_leak_free(name: str, sizes: tuple[int, ...]) -> None:
    suite = bench(name)
    assert (len(suite.train), len(suite.dev), len(suite.test), len(suite.held_out)) == sizes
    train, dev, test = ({t.id for t in split} for split in (suite.train, suite.dev, suite.test))
    held = {t.id for t in suite.held_out}
    assert len(train) == len(suite.train) and not train & dev and test <= held
    assert not (train | dev) & held
    held_texts = {norm(t.input) for t in suite.held_out}
    assert not any(norm(t.input) in held_texts for t in [*suite.train, *suite.dev])
    assert (
        suite.teacher_demo and "DIAGNOSIS:" in suite.teacher_demo[1] and "STRATEGY:" in suite.teacher_demo[1]
    )
    assert suite.slice_keys and all(k in t.tags for t in suite.test for k in suite.slice_keys)


@needs_bench
@pytest.mark.parametrize("name", DATA_SUITES)
def test_same_seed_same_split_other_seed_other_split(name: str) -> None:
    a, b, c = bench(name, seed=5), bench(name, seed=5), bench(name, seed=6)
    assert [t.id for t in a.dev] == [t.id for t in b.dev] and [t.id for t in a.test] == [t.id for t in b.test]
    assert [t.id for t in a.dev] != [t.id for t in c.dev] and [t.id for t in a.test] != [t.id for t in c.test]


@needs_bench
@pytest.mark.parametrize("name", DATA_SUITES)
def test_gold_answers_grade_as_correct(name: str) -> None:
    suite = bench(name)
    for task in suite.test[:30]:
        reply = f"Let me see. So the answer is {task.answer}." if name == "bbh" else task.answer
        assert suite.metric(reply, task.answer) == 1.0, task.id


@pytest.mark.parametrize("name", DATA_SUITES)
def test_missing_data_dir_says_which_key_to_set_and_what_it_holds(name: str) -> None:
    with pytest.raises(DataError, match=rf"set suite\.data_dir to a folder holding {name}/"):
        load_suite(SuiteConfig(name=name))  # type: ignore[arg-type]


def test_data_dir_without_the_files_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"does not hold gsm8k/train\.jsonl"):
        load_suite(SuiteConfig(name="gsm8k", data_dir=str(tmp_path)))


# --- per benchmark --------------------------------------------------------------------------------


@needs_bench
def test_gsm8k_answers_are_worked_solutions_without_calculator_marks() -> None:
    suite = bench("gsm8k", test_size=None)
    assert not any("<<" in t.answer or ">>" in t.answer for t in [*suite.train, *suite.dev, *suite.test])
    first = next(t for t in suite.held_out if t.id == "test-0")
    assert first.answer.endswith("#### 18") and "16 - 3 - 4 = 9 duck eggs" in first.answer
    assert "#### <number>" in suite.instruction


@needs_bench
def test_bbh_all_27_tasks_load_with_their_published_cot_prompts() -> None:
    suite = bench("bbh", test_size=None)
    items = [*suite.train, *suite.dev, *suite.held_out]
    kinds = {t.tags["task"]: t.tags["kind"] for t in items}
    assert sorted(kinds) == sorted(TASKS) and len(TASKS) == 27
    assert sorted(kinds.values()).count("multiple_choice") == 17
    assert [list(kinds.values()).count(k) for k in ("binary", "free_form")] == [6, 4]
    mismatched = []
    for task in TASKS:
        path = (
            BENCH
            / "bbh/code-davinci-002-outputs/code-davinci-002-cot"
            / f"{task}_few_shot_template_0-255000.json"
        )
        published = {o["input"] for o in json.loads(path.read_text())["outputs"]}
        mismatched += [t.id for t in items if t.tags["task"] == task and t.prompt not in published]
    # snarks-88 is cut short in the released task file ("(A) The NB"); every other prompt is exact.
    assert mismatched == ["snarks-88"]
    sample = next(t for t in suite.test if t.tags["task"] == "date_understanding")
    assert sample.input.endswith("\nA: Let's think step by step.") and sample.input.startswith("Q: ")
    assert sample.prefix.startswith("Infer the date from context.\n\nQ: ") and "canary" not in sample.prefix


@needs_bench
def test_bbh_direct_prompts_keep_the_exemplars_without_reasoning() -> None:
    suite = bench("bbh", style="direct", tasks=["boolean_expressions", "sports_understanding"])
    for task in [*suite.train, *suite.test]:
        assert "think step by step" not in task.prompt and "So the answer is" not in task.prompt
        assert task.input.endswith("\nA:") and task.prefix.count("\nA: ") == 3
    path = BENCH / "bbh/code-davinci-002-outputs/code-davinci-002-direct"
    outputs = json.loads((path / "sports_understanding_few_shot_template_0-255000.json").read_text())[
        "outputs"
    ]
    published = {o["input"] for o in outputs}
    assert all(t.prompt in published for t in suite.test if t.tags["task"] == "sports_understanding")
    assert "answer only" in suite.instruction


@needs_bench
def test_bbh_task_subset_spreads_dev_and_caps_test_per_task() -> None:
    suite = bench("bbh", tasks=["navigate", "word_sorting", "snarks"], dev_size=7, test_size=30)
    per_task = {
        name: sum(t.tags["task"] == name for t in suite.test)
        for name in ("navigate", "snarks", "word_sorting")
    }
    assert per_task == {"navigate": 10, "snarks": 10, "word_sorting": 10}
    assert sorted(sum(t.tags["task"] == n for t in suite.dev) for n in per_task) == [2, 2, 3]
    assert {t.tags["task"] for t in suite.held_out} == set(per_task)


@needs_bench
def test_bbh_unknown_task_is_a_config_error_listing_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown BBH task\(s\) date_understandin; valid: boolean_expressions"
    ):
        bench("bbh", tasks=["date_understandin"])
    with pytest.raises(ConfigError, match="needs name: bbh"):
        load_config(None, ["suite.name=gsm8k", "suite.tasks=[navigate]"])


@needs_bench
def test_math500_partition_does_not_move_when_sizes_change() -> None:
    small, big = bench("math500", dev_size=10, test_size=50), bench("math500", dev_size=60, test_size=None)
    assert [t.id for t in small.held_out] == [t.id for t in big.held_out]
    assert {t.id for t in small.test} <= {t.id for t in big.test} and len(big.test) == 300
    task = small.test[0]
    assert (
        "\\boxed" in task.answer and set(task.tags) == {"subject", "level"} and task.tags["level"] in "12345"
    )


@needs_bench
def test_nlupp_answers_are_intent_sets_graded_by_f1() -> None:
    suite = bench("nlupp", test_size=None)
    answers = [t.answer for t in [*suite.train, *suite.held_out]]
    assert any(a.count(", ") >= 2 for a in answers) and "none" in answers
    multi = next(t for t in suite.test if t.tags["n_intents"] == "2")
    first, second = multi.answer.split(", ")
    assert suite.metric(f"{second}, {first}", multi.answer) == 1.0
    assert 0.0 < suite.metric(first, multi.answer) < 1.0
    assert suite.labels == [] and "wrong_notworking_notshowing" in suite.instruction


def _hotels_data(root: Path, extra: str | None = None) -> Path:
    """An NLU++ folder with the published ontology and small hotels folds (the shared copy has none)."""
    (root / "nlupp" / "hotels").mkdir(parents=True)
    (root / "nlupp" / "ontology.json").write_bytes((BENCH / "nlupp" / "ontology.json").read_bytes())
    for k in range(20):
        rows: list[dict[str, object]] = [
            {"text": f"can I book the spa for {k} people", "intents": ["spa", "booking"]},
            {"text": f"is breakfast served in room {k}", "intents": ["room_service", "request_info"]},
            {"text": f"we arrive on the {k + 1}th"},
        ]
        if extra and k == 12:
            rows.append({"text": "where is my card", "intents": [extra]})
        (root / "nlupp" / "hotels" / f"fold{k}.json").write_text(json.dumps(rows))
    return root


@needs_bench
def test_nlupp_hotels_domain_loads_hotel_items_with_the_hotels_intents(tmp_path: Path) -> None:
    data = _hotels_data(tmp_path)
    suite = load_suite(SuiteConfig(name="nlupp", domain="hotels", data_dir=str(data), dev_size=5))
    assert suite.name == "nlupp-hotels" and len(suite.held_out) == 30
    assert (len(suite.train), len(suite.dev)) == (25, 5)
    assert {t.answer for t in suite.held_out} == {"booking, spa", "request_info, room_service", "none"}
    assert (
        "hotel guest" in suite.instruction and "spa" in suite.instruction and "card" not in suite.instruction
    )
    labels = set(suite.metric.labels)  # type: ignore[attr-defined]
    assert len(labels) == 40 and {"spa", "check_in", "thank"} <= labels and "card" not in labels
    assert suite.metric("spa, booking", "booking, spa") == 1.0


@needs_bench
def test_nlupp_hotels_item_with_a_banking_intent_is_outside_its_label_set(tmp_path: Path) -> None:
    data = _hotels_data(tmp_path, extra="card")
    with pytest.raises(DataError, match=r"fold12\.json: item 3 has intents outside the ontology: card"):
        load_suite(SuiteConfig(name="nlupp", domain="hotels", data_dir=str(data), dev_size=5))


@needs_bench
def test_nlupp_hotels_without_its_folds_names_the_missing_folder() -> None:
    with pytest.raises(DataError, match=r"does not hold nlupp/hotels/fold0\.\.19\.json"):
        bench("nlupp", domain="hotels")


@needs_bench
def test_nlupp_banking_is_the_default_domain() -> None:
    default, banking = bench("nlupp"), bench("nlupp", domain="banking")
    assert default.name == banking.name == "nlupp" and default.instruction == banking.instruction
    assert [t.id for t in default.test] == [t.id for t in banking.test]
    assert "banking customer" in default.instruction and "card" in default.instruction
    assert "spa" not in default.instruction and len(default.metric.labels) == 48  # type: ignore[attr-defined]


def test_domain_on_a_suite_other_than_nlupp_is_a_one_line_config_error() -> None:
    with pytest.raises(ConfigError, match=r"suite\.domain .*needs name: nlupp") as err:
        load_config(None, ["suite.name=gsm8k", "suite.domain=hotels"])
    assert "\n" not in str(err.value)
    assert load_config(None, ["suite.name=nlupp", "suite.domain=hotels"]).suite.domain == "hotels"
    with pytest.raises(ConfigError, match="suite.domain"):
        load_config(None, ["suite.name=nlupp", "suite.domain=airlines"])


# --- your own data --------------------------------------------------------------------------------


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {"q": f"question number {i}", "a": "yes" if i % 2 else "no", "topic": f"t{i % 3}"} for i in range(n)
    ]


def test_file_suite_from_jsonl_with_a_mapping_and_seeded_splits(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _rows(50)) + "\n")
    fields = {"input": "q", "answer": "a", "tags": ["topic"]}
    cfg = SuiteConfig(
        name="file", path=str(path), fields=fields, labels=["yes", "no"], dev_size=5, test_size=10
    )
    suite, again = load_suite(cfg), load_suite(cfg)
    assert (len(suite.train), len(suite.dev), len(suite.test)) == (35, 5, 10)
    assert [t.id for t in suite.test] == [t.id for t in again.test]
    assert not {t.id for t in suite.test} & {t.id for t in [*suite.train, *suite.dev]}
    assert suite.name == "qa" and suite.labels == ["yes", "no"] and "yes, no" in suite.instruction
    assert suite.test[0].tags.keys() == {"topic"} and suite.metric("Yes", "yes") == 1.0


def test_file_suite_from_csv_honours_the_split_column(tmp_path: Path) -> None:
    path = tmp_path / "qa.csv"
    lines = ["id,q,a,part"] + [
        f"x{i},question {i},ans {i},{('train', 'test', 'dev')[i % 3]}" for i in range(30)
    ]
    path.write_text("\n".join(lines) + "\n")
    fields = {"input": "q", "answer": "a", "id": "id", "split": "part"}
    suite = load_suite(SuiteConfig(name="file", path=str(path), fields=fields, dev_size=4, test_size=None))
    assert {t.id for t in suite.test} == {f"x{i}" for i in range(1, 30, 3)}
    assert len(suite.dev) == 4 and {t.id for t in suite.dev} <= {f"x{i}" for i in range(2, 30, 3)}
    assert {t.id for t in suite.train} == {f"x{i}" for i in range(0, 30, 3)}


@pytest.mark.parametrize(
    ("suffix", "text", "where"),
    [
        (".jsonl", '{"q": "a", "a": "b"}\n\n{"q": "", "a": "b"}\n', r"bad\.jsonl:3: missing or empty 'q'"),
        (".csv", "q,a\nfirst,b\nsecond,\n", r"bad\.csv:3: missing or empty 'a'"),
        (".csv", "question,a\nfirst,b\n", r"bad\.csv:1: no column 'q'"),
    ],
)
def test_file_suite_bad_row_names_file_and_line(tmp_path: Path, suffix: str, text: str, where: str) -> None:
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    with pytest.raises(DataError, match=where):
        load_suite(SuiteConfig(name="file", path=str(path), fields={"input": "q", "answer": "a"}))


def _multi_rows() -> list[dict[str, object]]:
    answers: list[object] = [["billing", "refund"], "late; billing", "Other", [], "refund,late"]
    return [{"q": f"message {i}", "a": answers[i % len(answers)]} for i in range(30)]


def test_multi_label_file_suite_declares_its_labels_and_shows_them(tmp_path: Path) -> None:
    path = tmp_path / "tickets.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in _multi_rows()) + "\n")
    labels = ["billing", "refund", "late", "other"]
    fields = {"input": "q", "answer": "a"}
    cfg = SuiteConfig(
        name="file", path=str(path), fields=fields, labels=labels, metric="f1", test_size=6, dev_size=4
    )
    suite = load_suite(cfg)
    assert (len(suite.train), len(suite.dev), len(suite.test)) == (20, 4, 6)
    assert "Choose from: billing, refund, late, other." in suite.instruction
    assert "every label that applies" in suite.instruction
    answers = {t.answer for t in [*suite.train, *suite.dev, *suite.test]}
    assert answers == {"billing, refund", "late; billing", "Other", "none", "refund,late"}
    # No snapping to one label (it would drop the rest); the f1 grader knows the set instead.
    assert suite.labels == []
    assert suite.metric("refunds, billing", "billing, refund") == 1.0
    hidden = load_suite(cfg.model_copy(update={"show_labels": False}))
    assert "billing" not in hidden.instruction


@pytest.mark.parametrize(
    ("suffix", "text", "where"),
    [
        (
            ".csv",
            "q,a\nfirst,billing\nsecond,billing; refnud\n",
            r"multi\.csv:3: .*not in suite\.labels: refnud",
        ),
        (
            ".jsonl",
            '{"q": "x", "a": ["late"]}\n{"q": "y", "a": ["late", "lost"]}\n',
            r"multi\.jsonl:2: .*: lost",
        ),
    ],
)
def test_multi_label_file_suite_gold_label_outside_the_set_names_file_and_line(
    tmp_path: Path, suffix: str, text: str, where: str
) -> None:
    path = tmp_path / f"multi{suffix}"
    path.write_text(text)
    cfg = SuiteConfig(
        name="file",
        path=str(path),
        fields={"input": "q", "answer": "a"},
        labels=["billing", "late"],
        metric="f1",
    )
    with pytest.raises(DataError, match=where) as err:
        load_suite(cfg)
    assert "\n" not in str(err.value)


def test_single_label_file_suite_still_rejects_a_set_of_labels(tmp_path: Path) -> None:
    path = tmp_path / "single.csv"
    path.write_text("q,a\nfirst,billing\nsecond,billing; late\n")
    cfg = SuiteConfig(
        name="file", path=str(path), fields={"input": "q", "answer": "a"}, labels=["billing", "late"]
    )
    with pytest.raises(DataError, match=r"single\.csv:3: .*not one of suite\.labels \(.*suite\.metric: f1\)"):
        load_suite(cfg)


def test_grader_override_by_import_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_grading.py").write_text("def lenient(pred, gold):\n    return float(gold in pred)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    suite = load_suite(SuiteConfig(metric="my_grading:lenient"))
    assert suite.metric("I think card_arrival", "card_arrival") == 1.0
    assert load_suite(SuiteConfig()).metric("I think card_arrival", "card_arrival") == 0.0
    with pytest.raises(ConfigError, match="suite.metric 'no_such_grader'"):
        load_suite(SuiteConfig(metric="no_such_grader"))


def test_hf_suite_without_datasets_tells_you_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ConfigError, match="pip install datasets"):
        load_suite(SuiteConfig(name="hf", hf={"path": "openai/gsm8k", "name": "main"}))  # type: ignore[arg-type]


def test_file_and_hf_suites_need_their_source_in_the_config() -> None:
    with pytest.raises(ConfigError, match=r"suite: .*needs suite\.path"):
        load_config(None, ["suite.name=file"])
    with pytest.raises(ConfigError, match=r"suite: .*needs suite\.hf\.path"):
        load_config(None, ["suite.name=hf"])
    with pytest.raises(ConfigError, match=r"\.jsonl or \.csv"):
        load_config(None, ["suite.name=file", "suite.path=data.parquet"])
