"""fine_gray: the subdistribution-hazards model, its two R routes and the result object."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjtrial.errors import CollinearityWarning, ConvergenceWarning, DataError
from rjtrial.survival import FineGrayResult, cox, fine_gray
from rjtrial.survival._coxengine import newton
from rjtrial.survival._finegray_engine import SubdistributionRiskSets, censoring_survival

COLUMNS = [
    "term",
    "estimate",
    "std_error",
    "subdistribution_hazard_ratio",
    "ci_lower",
    "ci_upper",
    "statistic",
    "p_value",
]


def trial(seed: int = 5, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "rj"], n)
    age = rng.integers(16, 60, n)
    site = rng.choice(["north", "south", "west"], n)
    latent = np.column_stack(
        [
            rng.exponential(600, n) * np.where(arm == "rj", 1.3, 1.0) * np.exp(0.01 * (age - 30)),
            rng.exponential(2500, n) * np.exp(-0.03 * (age - 30)),
        ]
    )
    censor = np.where(rng.random(n) < 0.25, rng.uniform(0, 730, n), 730)
    first = latent.min(axis=1)
    return pd.DataFrame(
        {
            "days": np.floor(np.minimum(first, censor)),
            "outcome": np.where(first <= censor, latent.argmin(axis=1) + 1, 0),
            "arm": arm,
            "age": age,
            "site": site,
            "case_id": rng.integers(0, n // 2, n),
        }
    )


@pytest.fixture(scope="module")
def fit() -> FineGrayResult:
    return fine_gray(trial(), "arm + age + site", time="days", event="outcome", cause=1)


def test_summary_frame_columns_and_attrs(fit):
    table = fit.summary_frame()
    assert list(table.columns) == COLUMNS
    assert list(table["term"]) == ["arm[T.rj]", "age", "site[T.south]", "site[T.west]"]
    assert table.attrs["ci_scale"] == "subdistribution_hazard_ratio" and table.attrs["method"] == "crr"
    assert table.attrs["ties"] == "breslow" and table.attrs["cause"] == 1 and table.attrs["converged"]
    np.testing.assert_allclose(table["subdistribution_hazard_ratio"], np.exp(table["estimate"]))
    assert (table["ci_lower"] < table["subdistribution_hazard_ratio"]).all()


def test_counts_tests_format_and_json(fit):
    df = trial()
    assert (fit.n, fit.events, fit.competing_events, fit.censored) == (
        len(df),
        int((df.outcome == 1).sum()),
        int((df.outcome == 2).sum()),
        int((df.outcome == 0).sum()),
    )
    tests = fit.tests_frame()
    assert list(tests.index) == ["pseudo_likelihood_ratio", "wald"] and (tests["df"] == 4).all()
    text = fit.format()
    assert "Fine-Gray model for cause 1 (R crr, breslow ties)" in text and "converged" in text
    data = fit.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["tests"][0]["test"] == "pseudo_likelihood_ratio" and len(data["summary"]) == 4


def test_result_is_frozen(fit):
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.cause = 2


# --------------------------------------------------------------------------- agreement
@pytest.mark.parametrize("method, ties", [("crr", "breslow"), ("finegray", "breslow"), ("finegray", "efron")])
def test_without_competing_events_it_is_the_cox_model_with_robust_variance(method, ties):
    # Nobody fails from another cause: every weight is 1, the risk sets are Cox's, crr's
    # censoring term vanishes, and the variances are the Cox model's naive and robust ones.
    df = trial()
    df = df[df["outcome"] != 2].assign(row=lambda d: np.arange(len(d)), reoffended=lambda d: d["outcome"])
    fg = fine_gray(df, "arm + age + site", time="days", event="outcome", method=method, ties=ties)
    cx = cox(df, "arm + age + site", time="days", event="reoffended", ties=ties, cluster="row")
    np.testing.assert_allclose(fg.params_, cx.params_, atol=1e-10)
    np.testing.assert_allclose(fg.naive_variance_, cx.naive_variance_, rtol=1e-8)
    np.testing.assert_allclose(fg.variance_, cx.variance_, rtol=1e-8)
    assert fg.log_likelihood_ == pytest.approx(cx.log_likelihood_, abs=1e-9)


def test_cluster_of_one_row_each_is_no_cluster():
    df = trial().assign(row=lambda d: np.arange(len(d)))
    a = fine_gray(df, "arm + age", time="days", event="outcome", method="finegray")
    b = fine_gray(df, "arm + age", time="days", event="outcome", method="finegray", cluster="row")
    np.testing.assert_allclose(a.variance_, b.variance_, rtol=1e-12)
    c = fine_gray(df, "arm + age", time="days", event="outcome", method="finegray", cluster="case_id")
    assert not np.allclose(a.variance_, c.variance_) and "case_id" in c.variance_kind


def test_row_order_does_not_matter(fit):
    shuffled = trial().sample(frac=1.0, random_state=2)
    again = fine_gray(shuffled, "arm + age + site", time="days", event="outcome", cause=1)
    np.testing.assert_allclose(again.params_, fit.params_, atol=1e-12)
    np.testing.assert_allclose(again.variance_, fit.variance_, rtol=1e-10)


def test_the_other_cause_is_modelled_on_request():
    two = fine_gray(trial(), "arm + age", time="days", event="outcome", cause=2)
    assert two.cause == 2 and two.params_["age"] > 0  # generated: the old die sooner


def test_strata_predict_and_baseline():
    df = trial()
    fit = fine_gray(df, "arm + age", time="days", event="outcome", method="finegray", strata="site")
    base = fit.baseline_hazard_
    assert set(base["stratum"]) == {"north", "south", "west"}
    profiles = pd.DataFrame({"arm": ["rj", "rj"], "age": [30, 30], "site": ["north", "west"]})
    pred = fit.predict(profiles, times=[100, 730])
    west = base[base["stratum"] == "west"]
    beta = fit.params_.to_numpy()
    expected = 1 - np.exp(-np.exp(beta @ [1, 30]) * west.loc[west["time"] <= 730, "hazard"].sum())
    assert pred.iloc[3]["estimate"] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="stratum 'east'"):
        fit.predict(profiles.assign(site="east"))
    with pytest.raises(DataError, match="no column 'age'"):
        fit.predict(profiles.drop(columns="age"))
    with pytest.raises(DataError, match=r"row 1, column 'arm': 'rj-plus' is not a level the model was fitted to"):
        fit.predict(profiles.assign(arm=["rj", "rj-plus"]))
    with pytest.raises(DataError, match="row 0: a covariate value is missing"):
        fit.predict(profiles.assign(age=[np.nan, 30]))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "fg"}, "method must be one of"),
        ({"ties": "exact"}, "ties must be one of"),
        ({"ties": "efron"}, "Breslow ties only"),
        ({"strata": "site"}, "strata= needs method='finegray'"),
        ({"cluster": "case_id"}, "cluster= needs method='finegray'"),
        ({"cause": [1, 2]}, "one positive whole number"),
        ({"cause": 0}, "one positive whole number"),
        ({"alpha": 0}, "alpha must be"),
    ],
)
def test_bad_arguments_name_the_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fine_gray(trial(), "arm", time="days", event="outcome", **kwargs)


def test_formula_with_an_outcome_is_refused():
    with pytest.raises(ValueError, match="right-hand side only"):
        fine_gray(trial(), "outcome ~ arm", time="days", event="outcome")


def test_aliased_column_is_nan_with_a_warning():
    df = trial().assign(age2=lambda d: 2 * d["age"])
    with pytest.warns(CollinearityWarning, match="'age2'"):
        fit = fine_gray(df, "arm + age + age2", time="days", event="outcome")
    assert np.isnan(fit.params_["age2"]) and np.isfinite(fit.params_["age"])
    assert "age2" in fit.format() and fit.summary_frame().attrs["notes"]


def test_monotone_likelihood_is_said():
    df = trial()
    df["marker"] = (df["outcome"] == 1).astype(int)  # only those who reoffend carry it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fine_gray(df, "arm + marker", time="days", event="outcome")
    assert any(issubclass(w.category, ConvergenceWarning) and "monotone" in str(w.message) for w in caught)
    assert any("marker" in note for note in fit.notes)


# --------------------------------------------------------------------------- crr's own loops
def crr_loops(t, ici, X, b):
    """cmprsk's Fortran (crrf, crrvv), statement by statement: loglik, information, sandwich.
    Data sorted by time; ici 0 censored, 1 cause, 2 other."""
    n, p = X.shape
    G = censoring_survival(t, ici, "crr")
    xb = X @ b
    lik = 0.0
    info = np.zeros((p, p))
    S0 = np.zeros(n)
    S1 = np.zeros((n, p))
    for i in range(n):  # risk-set sums at each type-1 failure row
        if ici[i] != 1:
            continue
        for j in range(n):
            if t[j] < t[i]:
                if ici[j] <= 1:
                    continue
                w = np.exp(xb[j]) * G[i] / G[j]
            else:
                w = np.exp(xb[j])
            S0[i] += w
            S1[i] += w * X[j]
        lik += xb[i] - np.log(S0[i])
        xbar = S1[i] / S0[i]
        for j in range(n):
            if t[j] < t[i]:
                if ici[j] <= 1:
                    continue
                w = np.exp(xb[j]) * G[i] / G[j]
            else:
                w = np.exp(xb[j])
            info += w * np.outer(X[j] - xbar, X[j] - xbar) / S0[i]
    infl = np.zeros((n, p))
    icrsk = n - np.searchsorted(t, t, side="left")  # number with time >= t_i
    ss2 = np.zeros(p)
    qu = np.zeros(p)
    for i in range(n):
        eta = np.zeros(p)
        for j in range(n):
            if ici[j] != 1:
                continue
            if t[j] <= t[i]:
                w = np.exp(xb[i])
            elif ici[i] > 1:
                w = np.exp(xb[i]) * G[j] / G[i]
            else:
                continue
            eta -= (X[i] - S1[j] / S0[j]) * w / S0[j]
        if ici[i] == 1:
            eta += X[i] - S1[i] / S0[i]
        if i == 0 or t[i] > t[i - 1]:
            block = t == t[i]
            if (ici[block] == 0).any():
                qu = np.zeros(p)
                for j1 in range(i, n):
                    if ici[j1] != 1:
                        continue
                    ss3, ss4 = np.zeros(p), 0.0
                    for j2 in range(n):
                        if t[j2] >= t[i]:
                            break
                        if ici[j2] <= 1:
                            continue
                        w = np.exp(xb[j2]) * G[j1] / G[j2]
                        ss4 += w
                        ss3 += w * X[j2]
                    qu += (ss3 - S1[j1] * ss4 / S0[j1]) / S0[j1]
                ss2 -= qu * (block & (ici == 0)).sum() / icrsk[i] ** 2
        psi = ss2.copy()
        if ici[i] == 0:
            psi += qu / icrsk[i]
        infl[i] = eta + psi
    H = np.linalg.inv(info)
    return lik, info, H @ infl.T @ infl @ H


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 8), st.sampled_from([0, 1, 1, 2]), st.floats(-1, 1), st.integers(0, 1)),
        min_size=6,
        max_size=30,
    )
)
def test_running_sums_equal_crrs_loops(rows):
    rows = sorted(rows, key=lambda r: r[0])
    t = np.array([r[0] for r in rows], dtype=float)
    ici = np.array([r[1] for r in rows])
    X = np.array([[r[2], r[3]] for r in rows])
    if (ici == 1).sum() < 2:
        return
    risk = SubdistributionRiskSets(X, t, ici, convention="crr")
    b = np.array([0.3, -0.4])
    ll, _, info = risk.loglik(b, "breslow")
    if np.linalg.cond(info) > 1e8:
        return
    lik_loop, info_loop, var_loop = crr_loops(t, ici, X, b)
    infl = risk.score_residuals(b, "breslow") + risk.censoring_residuals(b)
    H = np.linalg.inv(info)
    assert ll == pytest.approx(lik_loop, abs=1e-10)
    np.testing.assert_allclose(info, info_loop, atol=1e-10, rtol=1e-9)
    np.testing.assert_allclose(H @ infl.T @ infl @ H, var_loop, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize(
    "convention, expected",
    [
        # The example of survival's finegray.Rnw: cause-1 failures at 1, 4, 5, 10, other causes at
        # 2, 5, 8, censorings at 3, 4, 4, 6, 8, 9, 12. On day 4 the failure leaves the censoring
        # risk set before the two censorings under finegray's rule (8/10) and stays in it under
        # crr's ordinary Kaplan-Meier (9/11); likewise on day 8 (3/4 against 4/5).
        ("finegray", {5: 11 / 12 * 8 / 10, 10: 11 / 12 * 8 / 10 * 5 / 6 * 3 / 4 * 2 / 3}),
        ("crr", {5: 11 / 12 * 9 / 11, 10: 11 / 12 * 9 / 11 * 5 / 6 * 4 / 5 * 2 / 3}),
    ],
)
def test_censoring_weights_follow_each_r_convention(convention, expected):
    t = np.array([1, 4, 5, 10, 2, 5, 8, 3, 4, 4, 6, 8, 9, 12], dtype=float)
    status = np.array([1, 1, 1, 1, 2, 2, 2, 0, 0, 0, 0, 0, 0, 0])
    G = censoring_survival(t, status, convention)
    for day, value in expected.items():
        assert G[np.flatnonzero(t == day)[0]] == pytest.approx(value, rel=1e-14)


def test_newton_reaches_the_optimum_of_the_weighted_likelihood():
    df = trial()
    X = np.column_stack([(df["arm"] == "rj").astype(float), df["age"]])
    risk = SubdistributionRiskSets(
        X, df["days"].to_numpy(float), np.where(df.outcome == 0, 0, df.outcome), convention="crr"
    )
    beta, ll, U, _, converged, _ = newton(risk, np.zeros(2), "breslow")
    assert converged and np.max(np.abs(U)) < 1e-8
    for step in (1e-4, -1e-4):
        assert risk.loglik(beta + step, "breslow", derivatives=False) < ll


def test_crr_variance_scales_exactly_when_every_row_is_repeated_beyond_46340_at_risk():
    # Every row repeated k times: same estimate, information x k, every influence term the
    # same, so the sandwich divides by k. With 300 x 200 = 60,000 rows more than 46,340 are at
    # risk at early censorings, where R crr's 32-bit icrsk**2 overflows; ours must not.
    base = trial(n=300)
    k = 200
    repeated = base.loc[base.index.repeat(k)].reset_index(drop=True)
    one = fine_gray(base, "arm + age", time="days", event="outcome")
    many = fine_gray(repeated, "arm + age", time="days", event="outcome")
    np.testing.assert_allclose(many.params_, one.params_, atol=1e-10)
    np.testing.assert_allclose(many.variance_.to_numpy() * k, one.variance_.to_numpy(), rtol=1e-8)
    # and the overflow, emulated, would break it
    risk = SubdistributionRiskSets(
        np.column_stack([(repeated["arm"] == "rj"), repeated["age"]]).astype(float),
        repeated["days"].to_numpy(float),
        repeated["outcome"].to_numpy(),
        convention="crr",
    )
    beta = many.params_.to_numpy()
    wrapped = risk.censoring_residuals(beta, square=lambda y: (y.astype(np.int64) ** 2).astype(np.int32).astype(float))
    assert not np.allclose(wrapped, risk.censoring_residuals(beta), rtol=1e-6)
