"""reynolds.experiments.stats on known samples: the numbers are scipy's (and, here, checkable by hand)."""

from __future__ import annotations

import math

import pytest
from scipy import stats as sp

from reynolds.experiments import stats
from reynolds.experiments.scenario import Claim, Hypothesis

A = [1.1, 1.3, 0.9, 1.2, 1.0]  # mean 1.1, stdev sqrt(0.025)
B = [3.1, 2.9, 3.3, 3.0, 3.2]  # mean 3.1, same spread


def test_summary_gives_the_t_interval() -> None:
    s = stats.summary(A)
    assert s["n"] == 5 and s["mean"] == pytest.approx(1.1)
    assert s["stdev"] == pytest.approx(math.sqrt(0.025))
    # 1.1 +- t(0.975, 4) * sd / sqrt(5) = 1.1 +- 2.7764 * 0.070711
    assert s["ci95"] == pytest.approx([0.9036757, 1.2963243])
    assert s["ci95"] == pytest.approx(list(sp.t.interval(0.95, 4, loc=1.1, scale=sp.sem(A))))
    assert s["outliers"] == []


def test_summary_of_one_run_or_a_constant_sample() -> None:
    assert stats.summary([2.0]) == {"n": 1, "mean": 2.0, "stdev": None, "ci95": None, "outliers": []}
    assert stats.summary([1.0, 1.0, 1.0])["ci95"] == [1.0, 1.0]


def test_an_outlier_is_flagged_by_its_modified_z_score() -> None:
    assert stats.summary([1.0, 1.1, 0.9, 1.05, 0.95, 9.0])["outliers"] == [5]


def test_compare_matches_welch_and_mann_whitney() -> None:
    c = stats.compare(A, B)
    assert c["welch_t"] == pytest.approx(-20.0)
    assert c["welch_p"] == pytest.approx(sp.ttest_ind(A, B, equal_var=False).pvalue)
    assert c["cohens_d"] == pytest.approx(-2.0 / math.sqrt(0.025))
    assert c["mann_whitney_u"] == 0.0
    assert c["mann_whitney_p"] == pytest.approx(2 / 252)  # exact: 2 of the C(10, 5) rank orderings are this extreme
    assert c["rank_biserial"] == -1.0


def test_identical_constant_samples_have_no_p_value() -> None:
    c = stats.compare([1.0, 1.0, 1.0], [1.0, 1.0, 1.0])
    assert c["welch_p"] is None and c["cohens_d"] is None


def test_pairs_cover_every_pair_once() -> None:
    found = stats.pairs({"a": A, "b": B, "c": A})
    assert [(p["a"], p["b"]) for p in found] == [("a", "b"), ("a", "c"), ("b", "c")]


def test_a_lower_claim_is_supported_only_when_significant() -> None:
    samples = {"parallel": A, "sequential": B}
    plain = Claim(metric="makespan_s", strategy="parallel", direction="lower", than="sequential")
    assert stats.judge(plain, samples, 0.05)["verdict"] == "supported"
    # parallel below a third of sequential? 1.1 vs 1.033: no
    third = Claim(metric="makespan_s", strategy="parallel", direction="lower", than="sequential", ratio=1 / 3)
    judged = stats.judge(third, samples, 0.05)
    assert not judged["holds"] and judged["verdict"] == "not shown"
    assert judged["p"] == pytest.approx(sp.ttest_ind(A, [b / 3 for b in B], equal_var=False, alternative="less").pvalue)


def test_a_not_lower_claim_holds_unless_contradicted() -> None:
    claim = Claim(metric="success_rate", strategy="parallel", direction="not_lower", than="sequential")
    assert stats.judge(claim, {"parallel": [1.0] * 3, "sequential": [1.0] * 3}, 0.05)["holds"]
    judged = stats.judge(claim, {"parallel": [0.5] * 3, "sequential": [1.0] * 3}, 0.05)
    assert not judged["holds"] and judged["verdict"] == "contradicted" and "no spread" in judged["note"]


def test_verdict_needs_every_claim() -> None:
    h = Hypothesis(
        statement="parallel is faster and no less reliable",
        claims=[
            Claim(metric="makespan_s", strategy="parallel", direction="lower", than="sequential"),
            Claim(metric="success_rate", strategy="parallel", direction="not_lower", than="sequential"),
        ],
    )
    by_metric = {
        "makespan_s": {"parallel": A, "sequential": B},
        "success_rate": {"parallel": [1.0] * 5, "sequential": [1.0] * 5},
    }
    assert stats.verdict(h, by_metric, 0.05)["supported"]
    by_metric["success_rate"]["parallel"] = [0.0] * 5
    assert not stats.verdict(h, by_metric, 0.05)["supported"]


def test_too_few_repetitions_warn() -> None:
    assert stats.warnings({"a": A, "b": B}) == []
    (warning,) = stats.warnings({"a": A[:3], "b": B})
    assert "fewer than 5" in warning and "a" in warning
