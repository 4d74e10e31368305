"""rjtrial.survival.cox: the fit, its tables, agreement with lifelines, lifelines' tie problem, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi

from rjtrial.errors import CollinearityWarning, ConvergenceWarning, DataError
from rjtrial.survival import cox
from rjtrial.survival._coxengine import RiskSets

ROSSI_FORMULA = "fin + age + race + wexp + mar + paro + prio"


@pytest.fixture(scope="module")
def rossi():
    return load_rossi()


@pytest.fixture(scope="module")
def rossi_fit(rossi):
    return cox(rossi, ROSSI_FORMULA, time="week", event="arrest")


def _clustered(seed: int, *, tied: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    df = pd.DataFrame({"x": rng.normal(size=n), "z": rng.integers(0, 2, n), "cl": rng.integers(0, 60, n)})
    df["time"] = rng.exponential(np.exp(-0.5 * df["x"]))
    df["event"] = (rng.random(n) < 0.7).astype(int)
    if tied:
        df["time"] = np.ceil(df["time"] * 5)
    return df


# ------------------------------------------------------------------------- tables
def test_summary_frame_columns_and_attrs(rossi_fit):
    table = rossi_fit.summary_frame()
    assert list(table.columns) == [
        "term",
        "estimate",
        "std_error",
        "hazard_ratio",
        "ci_lower",
        "ci_upper",
        "statistic",
        "p_value",
    ]
    assert table.attrs == {
        "alpha": 0.05,
        "ci_scale": "hazard_ratio",
        "variance": "model-based",
        "ties": "efron",
        "converged": True,
        "n_iterations": rossi_fit.n_iterations,
        "notes": (),
    }
    np.testing.assert_allclose(table["hazard_ratio"], np.exp(table["estimate"]))
    assert (table["ci_lower"] < table["hazard_ratio"]).all() and (table["hazard_ratio"] < table["ci_upper"]).all()


def test_alpha_changes_interval_only(rossi):
    a = cox(rossi, "fin + prio", time="week", event="arrest").summary_frame()
    b = cox(rossi, "fin + prio", time="week", event="arrest", alpha=0.1).summary_frame()
    pd.testing.assert_series_equal(a["estimate"], b["estimate"])
    assert (b["ci_lower"] > a["ci_lower"]).all()
    assert b.attrs["alpha"] == 0.1


def test_tests_frame_and_convergence(rossi_fit):
    tests = rossi_fit.tests_frame()
    assert list(tests.index) == ["likelihood_ratio", "wald", "score"]
    assert list(tests.columns) == ["statistic", "df", "p_value"]
    assert rossi_fit.converged is True
    assert 1 <= rossi_fit.n_iterations <= 10
    assert rossi_fit.n == 432 and rossi_fit.n_events == 114
    assert "efron ties" in str(rossi_fit)


def test_score_is_zero_at_the_estimate(rossi_fit):
    # the score residuals add up to the score vector, zero at the maximum
    residuals = rossi_fit.score_residuals()
    assert residuals.shape == (432, 7)
    np.testing.assert_allclose(residuals.sum(), 0, atol=1e-8)
    assert rossi_fit.dfbeta().shape == (432, 7)


# ------------------------------------------------------------------------- two routes
def test_agrees_with_lifelines_coxph(rossi, rossi_fit):
    theirs = CoxPHFitter().fit(rossi, "week", "arrest")
    np.testing.assert_allclose(rossi_fit.params_, theirs.params_, atol=1e-6)
    np.testing.assert_allclose(rossi_fit.summary_frame()["std_error"], theirs.standard_errors_, rtol=1e-6)
    assert rossi_fit.log_likelihood_ == pytest.approx(theirs.log_likelihood_, abs=1e-6)
    lr = theirs.log_likelihood_ratio_test()
    assert rossi_fit.likelihood_ratio_test_.statistic == pytest.approx(lr.test_statistic, rel=1e-6)


def test_lifelines_cluster_se_agrees_without_ties():
    # without tied times Efron = Breslow and lifelines' score residuals are right
    df = _clustered(3, tied=False)
    ours = cox(df, "x + z", time="time", event="event", cluster="cl").summary_frame()["std_error"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = CoxPHFitter().fit(df[["time", "event", "x", "z", "cl"]], "time", "event", cluster_col="cl")
    np.testing.assert_allclose(ours, theirs.standard_errors_, rtol=1e-6)


def test_lifelines_cluster_se_is_wrong_with_ties():
    # lifelines' score residuals ignore ties ("TODO: doesn't handle ties" in its source), so its
    # robust SEs are off by ~1e-3..1e-2 relative on tied data; ours match R (tests/validation)
    df = _clustered(3, tied=True)
    ours = cox(df, "x + z", time="time", event="event", cluster="cl").summary_frame()["std_error"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = CoxPHFitter().fit(df[["time", "event", "x", "z", "cl"]], "time", "event", cluster_col="cl")
    assert np.max(np.abs(theirs.standard_errors_.to_numpy() / ours.to_numpy() - 1)) > 1e-3


def test_efron_equals_breslow_without_ties():
    df = _clustered(5, tied=False)
    a = cox(df, "x + z", time="time", event="event")
    b = cox(df, "x + z", time="time", event="event", ties="breslow")
    np.testing.assert_allclose(a.params_, b.params_, atol=1e-10)


def test_row_order_does_not_matter():
    df = _clustered(11, tied=True)
    a = cox(df, "x + z", time="time", event="event", cluster="cl")
    b = cox(df.sample(frac=1, random_state=2), "x + z", time="time", event="event", cluster="cl")
    np.testing.assert_allclose(a.params_, b.params_, atol=1e-12)
    np.testing.assert_allclose(a.variance_, b.variance_, rtol=1e-10)


def test_engine_information_matches_finite_differences():
    df = _clustered(4, tied=True)
    risk = RiskSets(df[["x", "z"]].to_numpy(float), df["time"].to_numpy(float), df["event"].to_numpy() == 1)
    beta = np.array([0.3, -0.2])
    for ties in ("efron", "breslow"):
        _, U, I = risk.loglik(beta, ties)
        h = 1e-6
        for j in range(2):
            step = np.eye(2)[j] * h
            up = risk.loglik(beta + step, ties, derivatives=False)
            down = risk.loglik(beta - step, ties, derivatives=False)
            assert (up - down) / (2 * h) == pytest.approx(U[j], rel=1e-6)
            _, U_up, _ = risk.loglik(beta + step, ties)
            _, U_down, _ = risk.loglik(beta - step, ties)
            np.testing.assert_allclose(-(U_up - U_down) / (2 * h), I[:, j], rtol=1e-5)


# ------------------------------------------------------------------------- options
def test_categorical_terms_and_strata_list():
    df = _clustered(8, tied=True)
    df["site"] = np.where(df["cl"] % 3 == 0, "a", np.where(df["cl"] % 3 == 1, "b", "c"))
    df["arm"] = np.where(df["z"] == 1, "rj", "control")
    df["band"] = np.arange(len(df)) % 2  # strata unrelated to arm (arm within z would be aliased)
    fit = cox(df, "arm + site + x", time="time", event="event", strata=["band"])
    assert fit.notes == ()
    assert list(fit.params_.index) == ["arm[T.rj]", "site[T.b]", "site[T.c]", "x"]
    assert fit.term_columns_ == {"arm": [0], "site": [1, 2], "x": [3]}
    table = fit.proportional_hazards_test()
    assert table.loc["site", "df"] == 2 and table.loc["GLOBAL", "df"] == 4


def test_formula_with_tilde(rossi):
    a = cox(rossi, "~ fin + prio", time="week", event="arrest")
    b = cox(rossi, "fin + prio", time="week", event="arrest")
    np.testing.assert_allclose(a.params_, b.params_)


def test_cluster_adds_robust_score_test():
    df = _clustered(3, tied=True)
    fit = cox(df, "x + z", time="time", event="event", cluster="cl")
    assert fit.robust_score_test_.method == "robust_score"
    assert fit.n_clusters == df["cl"].nunique()
    assert fit.summary_frame().attrs["variance"] == "cluster-robust (cl)"
    assert list(fit.tests_frame().index)[-1] == "robust_score"


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("ties", ["exact", "Efron", None])
def test_ties_option_is_checked(rossi, ties):
    with pytest.raises(ValueError, match="ties must be one of 'efron', 'breslow'"):
        cox(rossi, "fin", time="week", event="arrest", ties=ties)


def test_formula_with_outcome_is_rejected(rossi):
    with pytest.raises(ValueError, match="right-hand side only"):
        cox(rossi, "week ~ fin", time="week", event="arrest")


@pytest.mark.parametrize(
    "formula, kwargs, column",
    [
        ("fin + wealth", {}, "wealth"),
        ("fin", {"strata": "region"}, "region"),
        ("fin", {"cluster": "family"}, "family"),
        ("fin", {"start": "entry"}, "entry"),
    ],
)
def test_missing_columns_are_named(rossi, formula, kwargs, column):
    with pytest.raises(DataError, match=f"no column '{column}'") as info:
        cox(rossi, formula, time="week", event="arrest", **kwargs)
    assert info.value.column == column


def test_missing_covariate_value_names_row_and_column(rossi):
    bad = rossi.astype({"age": float})
    bad.loc[17, "age"] = np.nan
    with pytest.raises(DataError, match="missing value") as info:
        cox(bad, "fin + age", time="week", event="arrest", na_action="raise")
    assert (info.value.row, info.value.column) == (17, "age")


@pytest.mark.parametrize("column", ["age", "week", "arrest", "wexp"])
def test_missing_values_are_omitted_and_counted_as_r_does(rossi, column):
    # R: coxph(Surv(week, arrest) ~ fin + age, data = rossi, na.action = na.omit) (the default)
    bad = rossi.astype({column: float})
    bad.loc[[3, 17, 200], column] = np.nan
    fit = cox(bad, "fin + age", time="week", event="arrest", strata="wexp")
    complete = cox(rossi.drop(index=[3, 17, 200]), "fin + age", time="week", event="arrest", strata="wexp")
    assert fit.n_omitted == 3 and fit.n == len(rossi) - 3
    np.testing.assert_allclose(fit.params_, complete.params_, rtol=0, atol=0)
    assert "3 rows omitted for missing values" in fit.format()
    assert fit.to_dict()["n_omitted"] == 3


def test_a_missing_value_in_an_unused_column_is_ignored(rossi):
    bad = rossi.astype({"prio": float})
    bad.loc[5, "prio"] = np.nan
    assert cox(bad, "fin + age", time="week", event="arrest").n_omitted == 0


def test_na_action_is_checked(rossi):
    with pytest.raises(ValueError, match="na_action must be one of 'omit', 'raise'"):
        cox(rossi, "fin", time="week", event="arrest", na_action="exclude")


def test_r_event_coding_only_when_asked(rossi):
    coded = rossi.assign(status=rossi["arrest"] + 1)  # R's lung$status style: 1 censored, 2 event
    with pytest.raises(DataError, match="event_coding='r'") as info:
        cox(coded, "fin", time="week", event="status")
    assert info.value.column == "status"
    a = cox(coded, "fin", time="week", event="status", event_coding="r")
    b = cox(rossi, "fin", time="week", event="arrest")
    assert a.params_["fin"] == b.params_["fin"]
    with pytest.raises(DataError, match="1 \\(censored\\) or 2"):
        cox(rossi, "fin", time="week", event="arrest", event_coding="r")


@pytest.mark.parametrize(
    "formula",
    ['fin + Q("ph.ecog")', "fin + `ph.ecog`", "fin + ph.ecog", "fin * ph.ecog", "C(ph.ecog) + fin", "ph.ecog:fin"],
)
@pytest.mark.filterwarnings("ignore::rjtrial.errors.ConvergenceWarning")  # C(prio) has one-person levels
def test_column_names_that_are_not_identifiers(rossi, formula):
    data = rossi.rename(columns={"prio": "ph.ecog"})
    fit = cox(data, formula, time="week", event="arrest")
    reference = cox(
        rossi,
        formula.replace('Q("ph.ecog")', "prio").replace("`ph.ecog`", "prio").replace("ph.ecog", "prio"),
        time="week",
        event="arrest",
    )
    np.testing.assert_allclose(fit.params_.to_numpy(), reference.params_.to_numpy(), rtol=1e-12)


def test_unknown_name_in_formula_is_named(rossi):
    with pytest.raises(DataError, match="no column 'ph.ecg'") as info:
        cox(rossi.rename(columns={"prio": "ph.ecog"}), 'fin + Q("ph.ecg")', time="week", event="arrest")
    assert info.value.column == "ph.ecg"


@pytest.mark.parametrize(
    "column, value, message",
    [("week", -1, "negative"), ("arrest", 2, "0 \\(censored\\) or 1"), ("week", np.inf, "not finite")],
)
def test_bad_time_or_event(rossi, column, value, message):
    bad = rossi.astype({"week": float, "arrest": float})
    bad.loc[3, column] = value
    with pytest.raises(DataError, match=message) as info:
        cox(bad, "fin", time="week", event="arrest")
    assert info.value.column == column


def test_non_numeric_time(rossi):
    with pytest.raises(DataError, match="must be numeric") as info:
        cox(rossi.assign(week=rossi["week"].astype(str)), "fin", time="week", event="arrest")
    assert info.value.column == "week"


def test_no_events(rossi):
    with pytest.raises(DataError, match="no events"):
        cox(rossi.assign(arrest=0), "fin", time="week", event="arrest")


def test_interval_must_end_after_start(rossi):
    bad = rossi.assign(entry=0)
    bad.loc[4, "entry"] = 60
    with pytest.raises(DataError, match="must end after it starts") as info:
        cox(bad, "fin", time="week", event="arrest", start="entry")
    assert info.value.row == 4


def test_keyword_only(rossi):
    with pytest.raises(TypeError):
        cox(rossi, "fin", "week", "arrest")  # type: ignore[misc]


# ------------------------------------------------------------------------- fits that go wrong
def test_column_constant_within_strata_is_aliased_as_in_r():
    # R: coxph(Surv(time, event) ~ arm + x + strata(z)) with arm == z gives arm = NA and the
    # warning "X matrix deemed to be singular"; the fit of the other columns is unaffected.
    df = _clustered(8, tied=True)
    df["arm"] = np.where(df["z"] == 1, "rj", "control")
    with pytest.warns(CollinearityWarning, match=r"'arm\[T.rj\]'.*not estimable"):
        fit = cox(df, "arm + x", time="time", event="event", strata="z")
    alone = cox(df, "x", time="time", event="event", strata="z")
    assert np.isnan(fit.params_["arm[T.rj]"])
    assert fit.params_["x"] == pytest.approx(alone.params_["x"], abs=1e-12)
    assert fit.likelihood_ratio_test_.df == 1
    table = fit.summary_frame()
    assert np.isnan(table.loc[0, "std_error"]) and np.isfinite(table.loc[1, "std_error"])
    assert "not estimable" in fit.format()
    assert list(fit.score_residuals().columns) == ["x"]
    assert fit.proportional_hazards_test().loc["GLOBAL", "df"] == 1


def test_duplicated_column_is_aliased():
    df = _clustered(3, tied=False)
    df["x2"] = 2 * df["x"]
    with pytest.warns(CollinearityWarning, match="'x2'"):
        fit = cox(df, "x + x2", time="time", event="event")
    assert np.isnan(fit.params_["x2"]) and np.isfinite(fit.params_["x"])


def test_monotone_likelihood_warns_and_is_noted():
    # every event in one group: R warns "Loglik converged before variable 1; coefficient may be infinite"
    rng = np.random.default_rng(4)
    n = 80
    df = pd.DataFrame({"g": np.repeat([0, 1], n // 2), "time": rng.exponential(size=n)})
    df["event"] = (df["g"] == 1).astype(int)
    with pytest.warns(ConvergenceWarning, match="monotone in 'g'"):
        fit = cox(df, "g", time="time", event="event")
    assert fit.params_["g"] > 10
    assert any("monotone" in note for note in fit.notes)
    assert "monotone" in fit.format()


def test_non_convergence_is_reported(monkeypatch):
    import importlib

    cox_module = importlib.import_module("rjtrial.survival.cox")
    real = cox_module.newton
    monkeypatch.setattr(cox_module, "newton", lambda risk, beta0, ties: real(risk, beta0, ties, max_iter=1))
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 Newton iteration"):
        fit = cox(_clustered(1, tied=True), "x", time="time", event="event")
    assert fit.converged is False
    assert fit.summary_frame().attrs["converged"] is False
    assert "DID NOT CONVERGE" in fit.format()


def test_a_good_fit_warns_nothing(rossi):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = cox(rossi, "fin + age + prio", time="week", event="arrest")
    assert fit.notes == () and fit.converged


def test_times_within_floating_point_noise_tie_as_in_r():
    # R's coxph applies aeqSurv (timefix = TRUE): 0.1 + 0.2 and 0.3 are one time
    df = pd.DataFrame(
        {"time": [0.1 + 0.2, 0.3, 0.5, 0.7, 0.3, 0.9], "event": [1, 1, 1, 0, 1, 1], "x": [1.0, 0.0, 1.0, 0.0, 0.5, 0.2]}
    )
    exact = df.assign(time=[0.3, 0.3, 0.5, 0.7, 0.3, 0.9])
    a = cox(df, "x", time="time", event="event")
    b = cox(exact, "x", time="time", event="event")
    assert a.params_["x"] == b.params_["x"]


def test_text_cells_in_time_or_event_name_their_row(rossi):
    bad = rossi.astype({"week": object})
    bad.loc[12, "week"] = "two"
    with pytest.raises(DataError) as info:
        cox(bad, "fin", time="week", event="arrest")
    assert (info.value.row, info.value.column) == (12, "week")
    text = rossi.astype({"arrest": str})  # '0'/'1' read from a file as text: accepted
    assert cox(text, "fin", time="week", event="arrest").n_events == int(rossi["arrest"].sum())
    text.loc[7, "arrest"] = "yes"
    with pytest.raises(DataError) as info:
        cox(text, "fin", time="week", event="arrest")
    assert (info.value.row, info.value.column) == (7, "arrest")


# ------------------------------------------------------------------------- interaction test
def test_interaction_test_is_the_likelihood_ratio_of_two_fits(rossi):
    # R: anova(coxph(Surv(week, arrest) ~ fin + factor(wexp)), coxph(Surv(week, arrest) ~ fin * factor(wexp)))
    from rjtrial.survival import interaction_test

    res = interaction_test(rossi, time="week", event="arrest", group="fin", by="wexp")
    full = cox(rossi.assign(wexp=rossi["wexp"].astype(str)), "fin * C(wexp)", time="week", event="arrest")
    reduced = cox(rossi.assign(wexp=rossi["wexp"].astype(str)), "fin + C(wexp)", time="week", event="arrest")
    assert res.statistic == pytest.approx(2 * (full.log_likelihood_ - reduced.log_likelihood_), rel=1e-12)
    assert res.df == 1 and res.notes == ()
    assert "chi-square" in res.format()


def test_interaction_test_keeps_what_the_fits_said():
    rng = np.random.default_rng(3)
    n = 200
    df = pd.DataFrame(
        {"arm": rng.integers(0, 2, n), "site": rng.choice(["a", "b"], n), "time": rng.exponential(size=n)}
    )
    df["event"] = ((rng.random(n) < 0.6) & ~((df["site"] == "b") & (df["arm"] == 1))).astype(int)  # no event there
    from rjtrial.survival import interaction_test

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warnings are kept in notes, not raised at the caller
        res = interaction_test(df, time="time", event="event", group="arm", by="site")
    assert any("monotone" in note for note in res.notes)
    assert res.df == 1 and np.isfinite(res.statistic)
