"""The statistics of an experiment, all from scipy: per-strategy summaries with t confidence intervals,
Welch's t-test and Mann-Whitney U for every pair with effect sizes, outlier flags, and the hypothesis verdict.

Samples with no spread (every run took the same, every run succeeded) make the tests undefined; then the
p-value is reported as ``None`` and claims are decided on the means, with a note saying so."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats

from reynolds.experiments.scenario import Claim, Hypothesis

MIN_REPETITIONS = 5  # below this per strategy, intervals are wide and tests weak: the report warns
OUTLIER_Z = 3.5  # modified z-score (median and MAD) beyond which a run is flagged

Samples = Mapping[str, Sequence[float]]  # strategy -> one value per run


def summary(values: Sequence[float], confidence: float = 0.95) -> dict[str, Any]:
    x = np.asarray(values, dtype=float)
    n = len(x)
    mean = float(np.mean(x)) if n else None
    sd = float(np.std(x, ddof=1)) if n > 1 else None
    ci = None
    if n > 1 and sd:
        low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=stats.sem(x))
        ci = [float(low), float(high)]
    elif n > 1:
        ci = [mean, mean]
    return {"n": n, "mean": mean, "stdev": sd, "ci95": ci, "outliers": outliers(x)}


def outliers(x: np.ndarray) -> list[int]:
    """Indices whose modified z-score (|x - median| / scaled MAD) exceeds OUTLIER_Z."""
    if len(x) < 3:
        return []
    mad = stats.median_abs_deviation(x, scale="normal")
    if mad == 0:
        return []
    z = np.abs(x - np.median(x)) / mad
    return [int(i) for i in np.flatnonzero(z > OUTLIER_Z)]


def compare(a: Sequence[float], b: Sequence[float]) -> dict[str, Any]:
    """Welch's t (with Cohen's d) and Mann-Whitney U (with rank-biserial r), two-sided, a against b."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    welch = None if _flat(x, y) else stats.ttest_ind(x, y, equal_var=False)
    mw = stats.mannwhitneyu(x, y, alternative="two-sided")
    pooled = math.sqrt((np.var(x, ddof=1) + np.var(y, ddof=1)) / 2) if len(x) > 1 and len(y) > 1 else 0.0
    return {
        "welch_t": _num(welch.statistic) if welch else None,
        "welch_p": _num(welch.pvalue) if welch else None,
        "cohens_d": _num((np.mean(x) - np.mean(y)) / pooled) if pooled else None,
        "mann_whitney_u": _num(mw.statistic),
        "mann_whitney_p": _num(mw.pvalue),
        "rank_biserial": _num(2 * mw.statistic / (len(x) * len(y)) - 1),
    }


def pairs(samples: Samples) -> list[dict[str, Any]]:
    return [{"a": a, "b": b, **compare(samples[a], samples[b])} for a, b in itertools.combinations(samples, 2)]


def judge(claim: Claim, samples: Samples, alpha: float) -> dict[str, Any]:
    """One claim's verdict: a one-sided Welch test of ``strategy`` against ``ratio`` x ``than``."""
    a = np.asarray(samples[claim.strategy], dtype=float)
    b = np.asarray(samples[claim.than], dtype=float) * claim.ratio
    # lower/higher: H1 is the claim. not_lower/not_higher: H1 is the opposite, and the claim holds unless shown.
    alternative = "less" if claim.direction in ("lower", "not_lower") else "greater"
    p = None if _flat(a, b) else _num(stats.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)
    note = None
    if p is None:
        shown = np.mean(a) < np.mean(b) if alternative == "less" else np.mean(a) > np.mean(b)
        p, note = (0.0 if shown else 1.0), "no spread in the samples: decided on the means"
    significant = p < alpha
    holds = significant if claim.direction in ("lower", "higher") else not significant
    return {
        **claim.model_dump(),
        "mean": float(np.mean(a)),
        "compared_to": float(np.mean(b)),
        "p": p,
        "holds": bool(holds),
        "verdict": _verdict(claim.direction, significant),
        "note": note,
    }


def verdict(hypothesis: Hypothesis, by_metric: Mapping[str, Samples], alpha: float) -> dict[str, Any]:
    claims = [judge(c, by_metric[c.metric], alpha) for c in hypothesis.claims]
    return {"statement": hypothesis.statement, "supported": all(c["holds"] for c in claims), "claims": claims}


def warnings(samples: Samples) -> list[str]:
    few = [name for name, values in samples.items() if len(values) < MIN_REPETITIONS]
    if not few:
        return []
    return [
        f"fewer than {MIN_REPETITIONS} successful measurements for {', '.join(few)}: confidence intervals are "
        "wide and the tests have little power; add repetitions before trusting a verdict"
    ]


def _verdict(direction: str, significant: bool) -> str:
    if direction in ("lower", "higher"):
        return "supported" if significant else "not shown"
    return "contradicted" if significant else "holds (no significant evidence against)"


def _flat(x: np.ndarray, y: np.ndarray) -> bool:
    """Neither sample varies (or one is too small to): a t statistic is undefined."""
    return len(x) < 2 or len(y) < 2 or (np.ptp(x) == 0 and np.ptp(y) == 0)


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value
