"""Counting-process Cox fits (``cox(start=...)``, ``andersen_gill``) on the shapes real data have.

Real recurrent-event data (R's ``bladder2``, ``cgd``) have what generated data rarely have:
several rows of one person starting at one time, no interval starting between two event
times (so the start positions of consecutive event times repeat), zero-width gaps, events at
another row's start time, late entry, strata with one row or no events. A property test holds
the fit to lifelines' ``CoxTimeVaryingFitter`` (an independent implementation) on such data, and
to the ordinary right-censored fit when every start is 0.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lifelines import CoxTimeVaryingFitter

from rjtrial.survival import andersen_gill, cox
from rjtrial.survival._coxengine import _rev_cumsum_at


# ------------------------------------------------------------------ the helper that was wrong
def test_suffix_sums_with_repeated_positions():
    values = np.arange(1.0, 6.0)[:, None]
    at = np.array([0, 2, 2, 4, 5, 5])
    got = _rev_cumsum_at(values, at)[:, 0]
    assert got.tolist() == [15.0, 12.0, 12.0, 5.0, 0.0, 0.0]


def test_bladder_like_repeated_starts_agree_with_lifelines():
    # the shape that flipped the signs before: starts fall between event times, so many event
    # times share one start position
    rng = np.random.default_rng(1)
    rows = []
    for i in range(200):
        arm, x, t = int(rng.integers(0, 2)), float(rng.normal()), 0
        while True:
            gap = int(rng.exponential(200 * np.exp(0.5 * arm - 0.3 * x))) + 1
            if t + gap >= 720:
                rows.append((i, t, max(730, t + 1), 0, arm, x))
                break
            rows.append((i, t, t + gap, 1, arm, x))
            t += gap + int(rng.integers(0, 30))  # days in custody: not at risk
    df = pd.DataFrame(rows, columns=["id", "start", "stop", "event", "arm", "x"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = andersen_gill(df, "arm + x", start="start", stop="stop", event="event", id="id")
    ref = _lifelines(df, ["arm", "x"])
    assert fit.converged
    np.testing.assert_allclose(fit.params_.to_numpy(), ref.params_.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.naive_variance_)), ref.standard_errors_.to_numpy(), rtol=1e-6)


# ------------------------------------------------------------------ property test
def _lifelines(df: pd.DataFrame, covariates: list[str], strata: str | None = None) -> CoxTimeVaryingFitter:
    columns = ["start", "stop", "event", *covariates] + ([strata] if strata else [])
    fitter = CoxTimeVaryingFitter()
    fitter.fit(
        df[columns],
        event_col="event",
        start_col="start",
        stop_col="stop",
        strata=[strata] if strata else None,
        fit_options={"precision": 1e-12, "r_precision": 1e-14, "max_steps": 200},
    )
    return fitter


@st.composite
def counting_process_data(draw):
    n_people = draw(st.integers(8, 30))
    late_entry = draw(st.booleans())
    rows = []
    for person in range(n_people):
        x = draw(st.sampled_from([-1.0, 0.0, 0.5, 1.0, 2.0]))  # ties in the predictor
        g = draw(st.integers(0, 1))
        t = draw(st.integers(0, 4)) if late_entry else 0
        for _ in range(draw(st.integers(1, 4))):
            length = draw(st.integers(1, 6))
            event = draw(st.booleans())
            rows.append((person, t, t + length, int(event), x, g))
            t += length + draw(st.sampled_from([0, 0, 1, 3]))  # contiguous, or a gap
    df = pd.DataFrame(rows, columns=["id", "start", "stop", "event", "x", "g"]).astype({"start": float, "stop": float})
    n_strata = draw(st.integers(1, 3))
    df["site"] = [draw(st.integers(0, n_strata - 1)) for _ in range(len(df))]
    return df


def _well_posed(df: pd.DataFrame, covariates: list[str], strata: str | None):
    """lifelines' fit, or None when the data are degenerate for either implementation
    (too few events, separation, a covariate constant in every risk set)."""
    if df["event"].sum() < 4:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ref = _lifelines(df, covariates, strata)
        except Exception:  # lifelines' own convergence / singularity errors
            return None
    if caught or not np.all(np.isfinite(ref.standard_errors_)) or np.max(np.abs(ref.params_)) > 5:
        return None
    return ref


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(df=counting_process_data(), stratified=st.booleans(), ties=st.just("efron"))
def test_counting_process_fit_agrees_with_lifelines(df, stratified, ties):
    strata = "site" if stratified else None
    ref = _well_posed(df, ["x", "g"], strata)
    assume(ref is not None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # lifelines was happy: so must we be
        fit = cox(df, "x + g", time="stop", event="event", start="start", strata=strata, ties=ties)
        ag = andersen_gill(df, "x + g", start="start", stop="stop", event="event", id="id", strata=strata)
    assert fit.converged
    np.testing.assert_allclose(fit.params_[["x", "g"]].to_numpy(), ref.params_[["x", "g"]].to_numpy(), atol=1e-6)
    se = np.sqrt(np.diag(fit.naive_variance_.loc[["x", "g"], ["x", "g"]]))
    np.testing.assert_allclose(se, ref.standard_errors_[["x", "g"]].to_numpy(), rtol=1e-6)
    np.testing.assert_allclose(ag.params_.to_numpy(), fit.params_.to_numpy(), atol=1e-12)
    assert fit.log_likelihood_ == pytest.approx(ref.log_likelihood_, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(df=counting_process_data(), ties=st.sampled_from(["efron", "breslow"]))
def test_all_starts_zero_is_the_right_censored_fit(df, ties):
    first = df.groupby("id", sort=False).head(1).assign(start=0.0)
    assume(first["event"].sum() >= 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate draws may warn: both routes must still agree
        counting = cox(first, "x + g", time="stop", event="event", start="start", ties=ties, strata="site")
        right = cox(first, "x + g", time="stop", event="event", ties=ties, strata="site")
    np.testing.assert_allclose(counting.params_.to_numpy(), right.params_.to_numpy(), atol=1e-10, equal_nan=True)
    np.testing.assert_allclose(
        counting.naive_variance_.to_numpy(), right.naive_variance_.to_numpy(), rtol=1e-8, atol=1e-12, equal_nan=True
    )
    assert counting.log_likelihood_ == pytest.approx(right.log_likelihood_, rel=1e-12, abs=1e-12)
    assert counting.notes == right.notes


def test_single_row_and_all_censored_strata_contribute_nothing():
    rng = np.random.default_rng(7)
    n = 120
    df = pd.DataFrame({"start": np.floor(rng.uniform(0, 5, n)), "x": rng.normal(size=n), "site": "a"})
    df["stop"] = df["start"] + np.ceil(rng.exponential(5, n))
    df["event"] = (rng.random(n) < 0.6).astype(int)
    base = cox(df, "x", time="stop", event="event", start="start", strata="site")
    extra = pd.DataFrame(
        {
            "start": [0.0, 1.0, 2.0, 0.0],
            "stop": [3.0, 4.0, 6.0, 2.0],
            "x": [5.0, -2.0, 1.0, 0.3],
            "event": [1, 0, 0, 0],
            "site": ["single", "censored", "censored", "censored"],
        }
    )
    both = cox(pd.concat([df, extra], ignore_index=True), "x", time="stop", event="event", start="start", strata="site")
    assert both.params_["x"] == pytest.approx(base.params_["x"], abs=1e-12)
    assert both.log_likelihood_ == pytest.approx(base.log_likelihood_, abs=1e-10)
