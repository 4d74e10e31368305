"""metafor's options beyond rma()'s defaults, on dat.bcg (and dat.normand1999 for the tests):
``test = "t" / "adhoc"``, the estimators HSk, PMM and GENQ (with weights), exact
``permutest``, ``blup`` / ``ranef``, ``regtest`` with every predictor and model, and
``na.action`` (metafor omits studies with missing values).

Expected values: R 4.2.2 / metafor 3.8-1 from tests/reference/metafor_options.R (every fit with
``control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)``). Observed agreement:
below 1e-12 for the tests and estimators, 1e-14 for BLUPs, exact permutation p values.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial import effects
from rjtrial.meta import blup, egger, permutation_test, pool, ranef

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
REF = json.loads((REFERENCE / "metafor_options.json").read_text())
TOL = 1e-9  # closed-form or tightly converged on both sides
BCG = pd.read_csv(REFERENCE / "metadat_bcg.csv")
NORMAND = pd.read_csv(REFERENCE / "metadat_normand1999.csv")


def bcg_effects() -> pd.DataFrame:
    es = effects.log_risk_ratio(
        BCG,
        events_treatment="tpos",
        n_treatment=BCG.tpos + BCG.tneg,
        events_control="cpos",
        n_control=BCG.cpos + BCG.cneg,
    )
    return es.assign(ablat=BCG.ablat.to_numpy(), ni=(BCG.tpos + BCG.tneg + BCG.cpos + BCG.cneg).to_numpy())


def normand_effects() -> pd.DataFrame:
    return effects.hedges_g(
        NORMAND,
        mean_treatment="m1i",
        sd_treatment="sd1i",
        n_treatment="n1i",
        mean_control="m2i",
        sd_control="sd2i",
        n_control="n2i",
    )


DATA = {"bcg": bcg_effects(), "normand1999": normand_effects()}


def close(ours, theirs, tol=TOL):
    np.testing.assert_allclose(np.ravel(np.asarray(ours, float)), np.ravel(np.asarray(theirs, float)), rtol=0, atol=tol)


def check_fit(res, R):
    close(res.coefficients, R["beta"])  # coef(res)
    close(res.coefficient_std_errors, R["se"])  # res$se
    close(res.coefficient_statistics, R["zval"])  # res$zval (t with test = "t", "knha", "adhoc")
    close(res.coefficient_p_values, R["pval"])  # res$pval
    close(res.coefficient_ci_lower, R["ci_lb"])  # res$ci.lb
    close(res.coefficient_ci_upper, R["ci_ub"])  # res$ci.ub
    close(res.tau2, R["tau2"])  # res$tau2
    close(res.i2, R["I2"])  # res$I2
    if "weights" in R:
        close(res.weights, R["weights"])  # weights(res)
    if "QMp" in R:
        close(res.moderator_test.p_value, R["QMp"])  # res$QMp
    if np.size(R.get("pi_lb", [])):  # predict(res) of intercept-only models (empty for FE)
        close([res.pi_lower, res.pi_upper], [R["pi_lb"], R["pi_ub"]])  # predict(res)$pi.lb, $pi.ub


def _test_cases():
    for key in REF["tests"]:
        parts = key.split("_")
        data, rest = parts[0], parts[1:]
        mods = None
        if rest[0] == "ablat":
            mods, rest = "ablat", rest[1:]
        yield pytest.param(key, data, rest[0], rest[1], mods, id=key)


@pytest.mark.parametrize("key,data,method,test,mods", list(_test_cases()))
def test_tests_t_adhoc_knha(key, data, method, test, mods):
    # R: rma(yi, vi, [mods = ~ ablat,] method = method, test = test, control = CTRL)
    res = pool(DATA[data], method=method, test=test, moderators=mods)
    R = REF["tests"][key]
    check_fit(res, R)
    assert res.df == R["ddf"]  # res$ddf: k - p
    if test in ("knha", "adhoc"):
        close(res.knha_factor, R["s2w"])  # res$s2w (truncated at 1 with "adhoc")


def test_adhoc_truncation_binds_somewhere():
    # the SJ and HE fits of dat.bcg have a Knapp-Hartung factor below 1: adhoc and knha differ there
    assert REF["tests"]["bcg_SJ_knha"]["s2w"] < 1 == REF["tests"]["bcg_SJ_adhoc"]["s2w"]


ESTIMATORS = {
    "bcg_HSk": ("HSk", {}),
    "bcg_PMM": ("PMM", {}),
    "normand1999_HSk": ("HSk", {}),
    "normand1999_PMM": ("PMM", {}),
    "bcg_ablat_HSk": ("HSk", {"moderators": "ablat"}),
    "bcg_ablat_PMM": ("PMM", {"moderators": "ablat"}),
    "bcg_GENQ_ni": ("GENQ", {"weights": "ni"}),
    "bcg_GENQ_ni_knha": ("GENQ", {"weights": "ni", "test": "knha"}),
    "bcg_GENQ_inv": ("GENQ", {"weights": 1 / DATA["bcg"].variance.to_numpy()}),
    "bcg_ablat_GENQ_ni": ("GENQ", {"weights": "ni", "moderators": "ablat"}),
}


@pytest.mark.parametrize("key", sorted(ESTIMATORS))
def test_estimators(key):
    # R: rma(yi, vi, [mods = ~ ablat,] [weights = ni,] method = "HSk" | "PMM" | "GENQ", control = CTRL)
    method, kwargs = ESTIMATORS[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # GENQ: the tau^2 interval is not computed
        res = pool(DATA[key.split("_")[0]], method=method, **kwargs)
    R = REF["estimators"][key]
    check_fit(res, R)
    close(res.tau2_std_error, R["se_tau2"])  # res$se.tau2


def test_genq_with_inverse_variance_weights_is_dersimonian_laird():
    dl = pool(DATA["bcg"], method="DL")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        genq = pool(DATA["bcg"], method="GENQ", weights=1 / DATA["bcg"].variance.to_numpy())
    assert genq.tau2 == pytest.approx(dl.tau2, abs=1e-12)


@pytest.mark.parametrize(
    "key,kwargs,rows",
    [("bcg_REML", {}, 13), ("bcg_REML_knha", {"test": "knha"}, 13), ("bcg7_ablat_REML", {"moderators": "ablat"}, 7)],
)
def test_exact_permutation_test(key, kwargs, rows):
    # R: permutest(rma(yi, vi, ...), exact = TRUE)$pval, $QMp
    res = pool(DATA["bcg"].iloc[:rows], **kwargs)
    perm = permutation_test(res, exact=True)
    R = REF["permutest"][key]
    assert perm.exact and perm.n_permutations == R["n"]
    close(perm.statistics, R["zval"])
    close(perm.p_values, R["pval"], 1e-15)
    if "QMp" in R:
        close(perm.moderator_p_value, R["QMp"], 1e-15)


@pytest.mark.parametrize(
    "key,kwargs", [("bcg_REML", {}), ("bcg_REML_knha", {"test": "knha"}), ("bcg_ablat_REML", {"moderators": "ablat"})]
)
def test_blup_and_ranef(key, kwargs):
    # R: blup(res), ranef(res): pred, se, pi.lb, pi.ub
    res = pool(DATA["bcg"], **kwargs)
    R = REF["blup"][key]
    for frame, ref in ((blup(res), R["blup"]), (ranef(res), R["ranef"])):
        close(frame.estimate, ref["pred"])
        close(frame.std_error, ref["se"])
        close(frame.pi_lower, ref["pi_lb"])
        close(frame.pi_upper, ref["pi_ub"])


@pytest.mark.parametrize("key", sorted(REF["regtest"]))
def test_regtest(key):
    # R: regtest(rma(yi, vi, [mods = ~ ablat,] ni = ni), model = model, predictor = predictor)
    model, predictor, *mods = key.split("_")
    res = pool(DATA["bcg"], moderators="ablat" if mods else None)
    test = egger(res, predictor=predictor, model=model)
    R = REF["regtest"][key]
    close(test.statistic, R["zval"])  # $zval
    close(test.p_value, R["pval"])  # $pval
    if R["dfs"] is not None and not (isinstance(R["dfs"], list) and not R["dfs"]):
        assert test.df == R["dfs"]  # $dfs
    if R["est"] is not None and not (isinstance(R["est"], list) and not R["est"]):
        close([test.limit_estimate, test.limit_ci_lower, test.limit_ci_upper], [R["est"], R["ci_lb"], R["ci_ub"]])
    else:
        assert np.isnan(test.limit_estimate)


@pytest.mark.parametrize("key,mods", [("int", None), ("ablat", "ablat")])
def test_missing_values_are_omitted_as_metafor_does(key, mods):
    # R: rma(yi, vi, [mods = ~ ablat,] data = holed): "Studies with NAs omitted from model fitting."
    holed = DATA["bcg"].copy()
    holed.iloc[2, holed.columns.get_loc("estimate")] = np.nan
    holed.iloc[6, holed.columns.get_loc("ablat")] = np.nan
    with pytest.warns(UserWarning, match="left out of pooling"):
        res = pool(holed, moderators=mods)
    R = REF["na_omit"][key]
    assert res.k == R["k"] and res.n_omitted == 13 - R["k"]
    check_fit(res, {k: v for k, v in R.items() if k != "weights"})
    close(res.weights[np.isfinite(res.weights)], R["weights"])
    assert f"{13 - R['k']} stud" in res.format_summary()
