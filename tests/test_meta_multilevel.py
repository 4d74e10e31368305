"""rjtrial.meta.multilevel: pool_multilevel (agreement with R is in tests/validation/)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rjtrial import datasets
from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.meta import MultilevelResult, pool, pool_multilevel
from rjtrial.meta._blocks import Blocks
from rjtrial.meta._multilevel_fit import MultilevelModel


@pytest.fixture(scope="module")
def assink():
    return datasets.load_assink2016()


@pytest.fixture(scope="module")
def fitted(assink):
    return pool_multilevel(assink, levels=["study", "esid"])


def test_one_level_is_the_random_effects_model():
    # one level with a group per row: M = V + sigma^2 I, i.e. rma.uni's model, so sigma^2 = tau^2
    bcg = datasets.load_bcg()
    es = pd.DataFrame(
        {
            "estimate": np.log((bcg.tpos / (bcg.tpos + bcg.tneg)) / (bcg.cpos / (bcg.cpos + bcg.cneg))),
            "variance": 1 / bcg.tpos - 1 / (bcg.tpos + bcg.tneg) + 1 / bcg.cpos - 1 / (bcg.cpos + bcg.cneg),
            "trial": bcg.trial,
            "ablat": bcg.ablat,
        }
    )
    for method in ("REML", "ML"):
        uni = pool(es, method=method, moderators="ablat")
        ml = pool_multilevel(es, levels=["trial"], method=method, moderators="ablat", profile=False)
        assert ml.sigma2[0] == pytest.approx(uni.tau2, abs=1e-10)
        np.testing.assert_allclose(ml.coefficients, uni.coefficients, atol=1e-10)
        np.testing.assert_allclose(ml.vcov, uni.vcov, atol=1e-10)
        assert ml.q == pytest.approx(uni.q, abs=1e-9)


def _dense_log_likelihood(res: MultilevelResult, sigma2, reml: bool) -> float:
    """The log-likelihood from the dense k x k matrices (a check on the block algebra)."""
    k, p = res.X_.shape
    top = res.level_codes_[0]
    M = np.diag(res.vi_).astype(float)
    for level, s in enumerate(sigma2):
        codes = res.level_codes_[level]
        M += s * (codes[:, None] == codes[None, :])
    if res.rho is not None:
        s = np.sqrt(res.vi_)
        M += np.where((top[:, None] == top[None, :]) & ~np.eye(k, dtype=bool), res.rho * np.outer(s, s), 0.0)
    A = np.linalg.inv(M)
    XtAX = res.X_.T @ A @ res.X_
    beta = np.linalg.solve(XtAX, res.X_.T @ A @ res.yi_)
    e = res.yi_ - res.X_ @ beta
    ll = -0.5 * (np.linalg.slogdet(M)[1] + e @ A @ e)
    if reml:
        return (
            ll
            - 0.5 * (k - p) * np.log(2 * np.pi)
            - 0.5 * np.linalg.slogdet(XtAX)[1]
            + 0.5 * np.linalg.slogdet(res.X_.T @ res.X_)[1]
        )
    return ll - 0.5 * k * np.log(2 * np.pi)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("rho", [None, 0.5])
def test_block_likelihood_equals_the_dense_one(assink, method, rho):
    res = pool_multilevel(assink, levels=["study", "esid"], method=method, moderators="deltype", rho=rho, profile=False)
    for sigma2 in ([0.1, 0.05], [0.0, 0.2], list(res.sigma2)):
        ours = res.model_.evaluate(np.array(sigma2)).log_likelihood
        assert ours == pytest.approx(_dense_log_likelihood(res, sigma2, method == "REML"), abs=1e-9)


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_score_is_the_gradient_of_the_log_likelihood(assink, method):
    res = pool_multilevel(assink, levels=["study", "esid"], method=method, profile=False)
    model: MultilevelModel = res.model_
    at = np.array([0.15, 0.08])
    score = model.evaluate(at, derivatives=True).score
    h = 1e-6
    for i in range(2):
        step = np.zeros(2)
        step[i] = h
        numeric = (model.evaluate(at + step).log_likelihood - model.evaluate(at - step).log_likelihood) / (2 * h)
        assert score[i] == pytest.approx(numeric, rel=1e-6)


def test_the_fit_is_a_maximum(fitted):
    ll = fitted.log_likelihood
    for delta in ([1e-4, 0], [-1e-4, 0], [0, 1e-4], [0, -1e-4]):
        assert fitted.model_.evaluate(fitted.sigma2 + np.array(delta)).log_likelihood < ll


def test_profile_limits_sit_on_the_chi_square_contour(fitted):
    from scipy import stats

    from rjtrial.meta._multilevel_fit import fit_components

    crit = stats.chi2.ppf(0.95, 1)
    for level in range(2):
        for limit in (fitted.sigma2_ci_lower[level], fitted.sigma2_ci_upper[level]):
            start = fitted.sigma2.copy()
            start[level] = limit
            prof = fit_components(fitted.model_, start, fixed={level: limit})
            assert 2 * (fitted.log_likelihood - prof.log_likelihood) == pytest.approx(crit, abs=1e-7)


def test_confint_on_demand_equals_the_fit_time_interval(assink, fitted):
    lazy = pool_multilevel(assink, levels=["study", "esid"], profile=False)
    assert np.isnan(lazy.sigma2_ci_lower).all()
    frame = lazy.confint()
    np.testing.assert_allclose(frame.ci_lower, fitted.sigma2_ci_lower, atol=1e-10)
    np.testing.assert_allclose(frame.ci_upper, fitted.sigma2_ci_upper, atol=1e-10)


def test_frames_format_and_json(fitted):
    frame = fitted.summary_frame()
    assert list(frame.columns) == ["term", "estimate", "std_error", "statistic", "p_value", "ci_lower", "ci_upper"]
    assert frame.attrs["alpha"] == 0.05
    vc = fitted.variance_components_frame()
    assert list(vc.level) == ["study", "study/esid"] and list(vc.n_groups) == [17, 100]
    text = fitted.format()
    assert "sigma^2 study" in text and "I^2 total" in text and "PI [" in text
    data = json.loads(json.dumps(fitted.to_dict()))
    assert data["variance_components"][0]["sigma2"] == pytest.approx(fitted.sigma2[0])
    assert str(fitted) == text


def test_inner_labels_need_only_be_unique_within_their_study(assink):
    renumbered = assink.assign(esid=assink.groupby("study").cumcount())  # 0, 1, ... in every study
    a = pool_multilevel(assink, levels=["study", "esid"], profile=False)
    b = pool_multilevel(renumbered, levels=["study", "esid"], profile=False)
    np.testing.assert_allclose(a.sigma2, b.sigma2, atol=1e-12)


def test_rows_without_an_estimate_are_omitted_and_counted(assink):
    holed = assink.copy()
    holed.loc[[3, 7], ["estimate", "variance"]] = np.nan
    with pytest.warns(RjtrialWarning, match="2 row"):
        res = pool_multilevel(holed, levels=["study", "esid"], profile=False)
    full = pool_multilevel(assink.drop(index=[3, 7]), levels=["study", "esid"], profile=False)
    assert res.k == 98 and res.n_omitted == 2
    assert "2 row(s) omitted" in res.format()
    np.testing.assert_allclose(res.sigma2, full.sigma2, atol=1e-12)


def test_a_component_at_zero():
    rng = np.random.default_rng(3)
    study = np.repeat(np.arange(30), 3)
    es = pd.DataFrame(
        {
            "study": study,
            "es": np.tile(np.arange(3), 30),
            "variance": 0.05,
            "estimate": rng.normal(0.2, np.sqrt(0.05), 90),
        }
    )  # no heterogeneity at all
    res = pool_multilevel(es, levels=["study", "es"])
    assert res.converged
    assert np.all(res.sigma2 >= 0)
    assert res.sigma2_ci_lower.min() == 0.0
    # the maximum is a boundary one: moving any zero component up lowers the likelihood
    for i in np.flatnonzero(res.sigma2 == 0):
        step = np.zeros(2)
        step[i] = 1e-5
        assert res.model_.evaluate(res.sigma2 + step).log_likelihood <= res.log_likelihood


def test_missing_level_label_names_the_row(assink):
    bad = assink.copy()
    bad.loc[5, "study"] = np.nan
    with pytest.raises(DataError, match="row 5.*'study'"):
        pool_multilevel(bad, levels=["study", "esid"])


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"method": "DL"}, "method='DL'"),
        ({"test": "knha"}, "test='knha'"),
        ({"levels": ["study", "nope"]}, "nope"),
        ({"levels": []}, "at least one"),
        ({"rho": 1.0}, "rho"),
        ({"alpha": 0}, "alpha"),
    ],
)
def test_bad_arguments(assink, kwargs, message):
    base = {"levels": ["study", "esid"]}
    with pytest.raises(ValueError, match=message):
        pool_multilevel(assink, **{**base, **kwargs})


def _three_per_study(variance: float) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame(
        {
            "study": np.repeat(np.arange(6), 3),
            "es": np.tile(np.arange(3), 6),
            "variance": variance,
            "estimate": rng.normal(0.0, np.sqrt(variance), 18),
        }
    )


def test_a_negative_rho_impossible_for_the_group_size_is_named():
    # A constant correlation among m effects must exceed -1/(m - 1): with rho = -0.9 and three
    # effects a study, V is not positive definite (this was a TypeError from the scoring loop).
    with pytest.raises(ValueError, match=r"rho=-0\.9.*3 effects of study 0.*-0\.5"):
        pool_multilevel(_three_per_study(100.0), levels=["study", "es"], rho=-0.9)
    res = pool_multilevel(_three_per_study(100.0), levels=["study", "es"], rho=-0.4, profile=False)
    assert res.converged


def test_scoring_from_a_start_without_a_likelihood_says_so():
    # The guard behind the check above: a model with no positive definite M at the start
    from rjtrial.meta._multilevel_fit import fit_components

    res = pool_multilevel(_three_per_study(100.0), levels=["study", "es"], rho=-0.4, profile=False)
    model: MultilevelModel = res.model_
    model.V = [block * np.where(np.eye(3, dtype=bool), 1.0, 3.0) for block in model.V]  # rho -1.2
    with pytest.raises(ValueError, match="not positive definite"):
        fit_components(model, np.array([0.0, 0.0]))


def test_rank_deficient_design(assink):
    with pytest.raises(ValueError, match="rank deficient"):
        pool_multilevel(assink.assign(one=1.0), levels=["study", "esid"], moderators="one")


def test_factor_reference_follows_a_categorical_order(assink):
    cat = assink.assign(deltype=pd.Categorical(assink.deltype, categories=["general", "covert", "overt"]))
    res = pool_multilevel(cat, levels=["study", "esid"], moderators="deltype", profile=False)
    assert res.coefficient_names == ("intercept", "deltype[covert]", "deltype[overt]")


def test_blocks_group_rows_by_cluster_in_data_order():
    blocks = Blocks(np.array([2, 0, 2, 1, 0, 2]))
    rows = {tuple(r) for b in blocks.batches for r in b.rows.tolist()}
    assert rows == {(1, 4), (3,), (0, 2, 5)}


def test_missing_moderator_is_omitted_or_raises(assink):
    holed = assink.astype({"year": float})
    holed.loc[10, "year"] = np.nan
    with pytest.warns(RjtrialWarning, match="1 row"):
        res = pool_multilevel(holed, levels=["study", "esid"], moderators="year", profile=False)
    assert res.k == 99 and res.n_omitted == 1
    with pytest.raises(DataError, match="row 10.*'year'"):
        pool_multilevel(holed, levels=["study", "esid"], moderators="year", na_action="raise")
