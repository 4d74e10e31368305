"""rjtrial.survival.concordance: the fast pair counts against a brute-force count and lifelines."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from lifelines.utils import concordance_index

from rjtrial.survival.concordance import _count_lower_before, concordance_counts


def brute_force(stop, event, score, start=None, strata=None):
    """R concordancefit's definition, pair by pair."""
    n = len(stop)
    start = np.full(n, -np.inf) if start is None else start
    strata = np.zeros(n) if strata is None else strata
    concordant = discordant = tied_risk = tied_time = tied_both = 0
    for i in range(n):
        if not event[i]:
            continue
        t = stop[i]
        for j in range(n):
            if j == i or strata[j] != strata[i] or not (start[j] < t <= stop[j]):
                continue
            if event[j] and stop[j] == t:
                if j > i:  # each tied pair once
                    tied_both += score[j] == score[i]
                    tied_time += score[j] != score[i]
                continue
            if score[i] > score[j]:
                concordant += 1
            elif score[i] < score[j]:
                discordant += 1
            else:
                tied_risk += 1
    return concordant, discordant, tied_risk, tied_time, tied_both


def _data(seed, counting=False, strata=False):
    rng = np.random.default_rng(seed)
    n = 90
    stop = rng.integers(1, 15, n).astype(float)
    start = None
    if counting:
        start = np.floor(stop * rng.random(n))
        start[rng.random(n) < 0.5] = 0.0
    event = rng.random(n) < 0.6
    score = rng.integers(0, 6, n).astype(float)  # ties in the score
    groups = rng.integers(0, 3, n) if strata else None
    return stop, event, score, start, groups


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("counting", [False, True])
@pytest.mark.parametrize("strata", [False, True])
def test_matches_brute_force(seed, counting, strata):
    stop, event, score, start, groups = _data(seed, counting, strata)
    res = concordance_counts(stop, event, score, start=start, strata=groups)
    expected = brute_force(stop, event, score, start, groups)
    assert (res.concordant, res.discordant, res.tied_risk, res.tied_time, res.tied_both) == expected
    c, d, tx = expected[:3]
    assert res.concordance == pytest.approx((c + tx / 2) / (c + d + tx))


def test_agrees_with_lifelines_concordance_index():
    rng = np.random.default_rng(9)
    stop = rng.integers(1, 30, 300).astype(float)
    event = rng.random(300) < 0.7
    score = rng.normal(size=300)
    ours = concordance_counts(stop, event, score).concordance
    # lifelines: higher predicted value = longer survival
    assert ours == pytest.approx(concordance_index(stop, -score, event), rel=1e-12)


def test_count_lower_before_small_case():
    # points at positions 0..4 with values 3, 1, 4, 1, 5
    lt, le = _count_lower_before(
        np.arange(5), np.array([3, 1, 4, 1, 5]), np.array([0, 3, 5, 5]), np.array([9, 3, 1, 4])
    )
    assert lt.tolist() == [0, 1, 0, 3]
    assert le.tolist() == [0, 2, 2, 4]


def test_result_is_frozen():
    res = concordance_counts(np.array([1.0, 2.0]), np.array([True, True]), np.array([1.0, 0.0]))
    assert res.concordance == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.concordance = 0.5  # type: ignore[misc]


def test_equal_covariates_are_tied_whatever_the_blas():
    # Nine covariates, forty distinct rows repeated: through BLAS, X @ beta gives some equal
    # rows linear predictors that differ in the last bit, and they were counted as concordant or
    # discordant where R counts them tied (tied.x). Brute force with ties decided on the rows.
    import warnings

    import pandas as pd

    from rjtrial.survival import cox

    rng = np.random.default_rng(1)
    p, n = 9, 1001
    X = rng.integers(0, 3, size=(40, p)).astype(float)[rng.integers(0, 40, n)]
    df = pd.DataFrame(X, columns=[f"x{j}" for j in range(p)])
    df["time"] = rng.integers(1, 50, n)
    df["event"] = (rng.random(n) < 0.7).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = cox(df, " + ".join(df.columns[:p]), time="time", event="event")
    _, pattern = np.unique(X, axis=0, return_inverse=True)
    pattern = np.ravel(pattern)
    lp_of_pattern = np.zeros(pattern.max() + 1)
    lp_of_pattern[pattern] = X @ fit.params_.to_numpy()  # any one row's value per pattern
    score = lp_of_pattern[pattern]  # equal rows, equal scores, by construction
    expected = brute_force(df["time"].to_numpy(float), df["event"].to_numpy(bool), score)
    got = fit.concordance()
    assert (got.concordant, got.discordant, got.tied_risk, got.tied_time, got.tied_both) == expected
