from pathlib import Path

import pytest

from tutelage.config import SuiteConfig
from tutelage.errors import DataError
from tutelage.evals.metrics import normalize_label
from tutelage.evals.suites import load_suite


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
