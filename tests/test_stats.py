"""Statistics on per-item scores: bootstrap intervals, paired comparisons, slices, multiple testing."""

import math
from math import comb

import pytest

from tutelage.errors import DataError
from tutelage.evals.stats import (
    bootstrap_ci,
    by_slice,
    format_p,
    holm,
    paired_by_slice,
    paired_compare,
    paired_sign_test,
)


def _binary(n: int, right: int) -> list[float]:
    return [1.0] * right + [0.0] * (n - right)


def _pairs(
    fixed: int, broken: int, both_right: int, both_wrong: int
) -> tuple[dict[str, float], dict[str, float]]:
    """A and B over the same items with the given discordant and concordant counts."""
    rows = (
        [(0.0, 1.0)] * fixed + [(1.0, 0.0)] * broken + [(1.0, 1.0)] * both_right + [(0.0, 0.0)] * both_wrong
    )
    return {f"t{i}": a for i, (a, _) in enumerate(rows)}, {f"t{i}": b for i, (_, b) in enumerate(rows)}


def test_the_interval_covers_the_mean_and_narrows_as_items_grow() -> None:
    small, large = bootstrap_ci(_binary(40, 24)), bootstrap_ci(_binary(400, 240))
    for iv in (small, large):
        assert iv.low <= iv.mean <= iv.high and iv.mean == pytest.approx(0.6)
    assert (large.high - large.low) < 0.6 * (small.high - small.low)
    assert small.n == 40 and small.level == 0.95
    # About the normal-approximation width for a proportion: 2 * 1.96 * sqrt(p(1-p)/n).
    assert large.high - large.low == pytest.approx(2 * 1.96 * math.sqrt(0.24 / 400), rel=0.2)


def test_a_wider_level_gives_a_wider_interval_and_nothing_scored_gives_n_zero() -> None:
    scores = _binary(100, 30)
    assert bootstrap_ci(scores, level=0.99).low < bootstrap_ci(scores, level=0.8).low
    assert bootstrap_ci([]).n == 0


def test_the_same_seed_reproduces_every_draw() -> None:
    scores = [0.1, 0.9, 0.4, 0.7, 0.3, 1.0, 0.0, 0.55]
    assert bootstrap_ci(scores, seed=3) == bootstrap_ci(scores, seed=3)
    a = {str(i): s for i, s in enumerate(scores)}
    b = {str(i): min(1.0, s + 0.1 * (i % 3)) for i, s in enumerate(scores)}
    assert paired_compare(a, b, seed=7) == paired_compare(a, b, seed=7)
    draws = {bootstrap_ci(scores * 5, seed=s).low for s in range(6)}
    assert len(draws) > 1  # the seed really drives the resampling


def test_identical_runs_differ_by_zero_with_p_one() -> None:
    a, _ = _pairs(0, 0, 60, 40)
    same = paired_compare(a, dict(a))
    assert (same.diff, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert (same.wins, same.losses, same.effect_size, same.test) == (0, 0, 0.0, "mcnemar")
    graded = {f"t{i}": i / 10 for i in range(10)}
    flat = paired_compare(graded, dict(graded))
    assert (flat.diff, flat.p_value, flat.test, flat.effect) == (0.0, 1.0, "permutation", "d_z")


def test_mcnemar_on_15_fixed_and_3_broken() -> None:
    a, b = _pairs(fixed=15, broken=3, both_right=50, both_wrong=32)
    c = paired_compare(a, b)
    exact = 2 * sum(comb(18, i) for i in range(4)) / 2**18  # 0.00754
    assert c.p_value == pytest.approx(exact) and c.p_value == pytest.approx(0.0075378, abs=1e-6)
    assert (c.n, c.wins, c.losses, c.test, c.effect) == (100, 15, 3, "mcnemar", "cohen_h")
    assert c.diff == pytest.approx(0.12) and c.low < 0.12 < c.high and c.low > 0
    assert c.effect_size == pytest.approx(2 * math.asin(math.sqrt(0.65)) - 2 * math.asin(math.sqrt(0.53)))
    assert c.describe() == (
        f"B − A = +12.0 pts [95% CI {100 * c.low:+.1f}, {100 * c.high:+.1f}], McNemar p=0.008 "
        f"(n=100; 15 fixed, 3 broken; Cohen's h={c.effect_size:.2f})"
    )
    swapped = paired_compare(b, a)
    assert swapped.p_value == c.p_value and swapped.diff == pytest.approx(-0.12)


def test_mcnemar_agrees_with_scipy_when_scipy_is_there() -> None:
    stats = pytest.importorskip("scipy.stats")
    for fixed, broken in ((15, 3), (10, 11), (0, 4), (30, 12)):
        a, b = _pairs(fixed, broken, 10, 10)
        assert paired_compare(a, b).p_value == pytest.approx(stats.binomtest(broken, fixed + broken).pvalue)


def test_continuous_scores_use_a_paired_permutation_test_and_d_z() -> None:
    a = {"x": 0.5, "y": 0.2, "z": 0.9}
    b = {"x": 0.6, "y": 0.4, "z": 1.2}
    c = paired_compare(a, b)
    assert (c.test, c.effect) == ("permutation", "d_z")
    assert c.p_value == pytest.approx(2 / 8)  # exact: only all-plus and all-minus signs are as extreme
    diffs = [0.1, 0.2, 0.3]
    sd = math.sqrt(sum((d - 0.2) ** 2 for d in diffs) / 2)
    assert c.effect_size == pytest.approx(0.2 / sd)
    assert "permutation p=0.250" in c.describe() and "d_z=" in c.describe()
    many_a = {str(i): 0.3 + 0.01 * (i % 7) for i in range(60)}
    many_b = {i: s + 0.05 for i, s in many_a.items()}
    assert paired_compare(many_a, many_b, n_boot=500).p_value < 0.01  # Monte Carlo past 16 differences


def test_a_constant_difference_has_an_infinite_effect_size_that_json_reports_as_none() -> None:
    c = paired_compare({"x": 0.2, "y": 0.4}, {"x": 0.3, "y": 0.5})
    assert math.isinf(c.effect_size) and c.as_dict()["effect_size"] is None


def test_runs_without_a_shared_item_cannot_be_compared() -> None:
    with pytest.raises(DataError, match="share no item"):
        paired_compare({"a": 1.0}, {"b": 1.0})


def test_only_shared_items_are_paired() -> None:
    a, b = {"x": 0.0, "y": 1.0, "only-a": 1.0}, {"x": 1.0, "y": 1.0, "only-b": 0.0}
    c = paired_compare(a, b)
    assert (c.n, c.mean_a, c.mean_b, c.wins) == (2, 0.5, 1.0, 1)


def test_slices_group_by_tag_and_pair_within_each_slice() -> None:
    scores = {"a1": 1.0, "a2": 0.0, "b1": 1.0, "untagged": 0.0}
    tags = {"a1": "a", "a2": "a", "b1": "b", "absent": "c"}
    slices = by_slice(scores, tags)
    assert list(slices) == ["a", "b"]
    assert (slices["a"].mean, slices["a"].n, slices["b"].n) == (0.5, 2, 1)
    after = {"a1": 1.0, "a2": 1.0, "b1": 0.0}
    per = paired_by_slice(scores, after, tags)
    assert per["a"].diff == 0.5 and per["b"].diff == -1.0 and per["a"].wins == 1


def test_holm_adjusts_in_step_down_order() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([]) == []


def test_p_values_print_with_three_decimals_or_as_a_bound() -> None:
    assert (format_p(0.0042), format_p(0.0004), format_p(1.0)) == ("p=0.004", "p<0.001", "p=1.000")


def test_the_loop_sign_test_is_unchanged() -> None:
    a, b = _pairs(fixed=49, broken=10, both_right=11, both_wrong=30)
    paired = paired_sign_test(a, b)
    assert (paired.n, paired.wins, paired.losses) == (100, 49, 10)
    assert paired.gain == pytest.approx(0.39) and paired.p_value < 1e-6
    assert paired.describe().startswith("+39.0 pts on 100 dev items (49 fixed, 10 broken")
