"""dat.bcg (13 BCG vaccine trials, log risk ratios) and dat.hart1999 (6 warfarin trials, log
incidence rate ratios): ``rjtrial.meta.bayes`` against R ``bayesmeta`` 3.4 under half-Cauchy,
uniform and exponential priors on tau with a uniform prior on mu.

bayesmeta was run by tests/reference/bayesmeta_reference.R at ``delta = 1e-6, epsilon = 1e-9``
(its defaults are 0.01 and 1e-4), so that its normal-mixture approximation of the posteriors of
mu, of a new study's effect and of each study's effect is finer than the tolerance
(``TOL["bayesmeta"]`` in _bayesmeta_reference.py); tau is integrated exactly by both.

bayesmeta finds the left end of a shortest interval with R's ``optimize()`` at its default
tolerance on a flat interval width, so its ends carry ~1e-5 of that search: shortest intervals
are held by width (ours no wider) and coverage (bayesmeta's holds 95% under our posterior).

Observed agreement (largest absolute difference): medians, means, SDs and central interval ends
of mu, tau, a new study's effect and every study's shrunken effect 3.0e-7 (dat.bcg) and 6.3e-7
(dat.hart1999, a shrunken median); shortest intervals (dat.bcg, uniform prior): ends 1.7e-5
apart, ours no wider, bayesmeta's holding 95% under our posterior to 1e-6.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from _bayesmeta_reference import TOL, assert_shortest, load_bayesmeta
from _metafor_reference import REFERENCE_DIR

from rjtrial import effects
from rjtrial.meta import bayes

SUMMARY = {"median": "", "mean": "mean", "sd": "std_error", "lower": "ci_lower", "upper": "ci_upper"}
PARAMETERS = {"mu": "", "tau": "tau", "prediction": "prediction"}


def bcg():
    data = pd.read_csv(REFERENCE_DIR / "metadat_bcg.csv")
    # R: escalc("RR", ai = tpos, bi = tneg, ci = cpos, di = cneg, data = dat.bcg)
    return effects.log_risk_ratio(
        data,
        events_treatment="tpos",
        n_treatment=data.tpos + data.tneg,
        events_control="cpos",
        n_control=data.cpos + data.cneg,
    )


def hart1999():
    data = pd.read_csv(REFERENCE_DIR / "metadat_hart1999.csv")
    # R: escalc("IRR", x1i = x1i, t1i = t1i, x2i = x2i, t2i = t2i, data = dat.hart1999)
    return effects.log_incidence_rate_ratio(
        data, events_treatment="x1i", person_time_treatment="t1i", events_control="x2i", person_time_control="t2i"
    )


CASES = {  # (dataset, case): (effects, bayes options)
    # R: bayesmeta(y, sigma, tau.prior = function(t) dhalfcauchy(t, scale = 0.5), interval.type = "central",
    #              delta = 1e-6, epsilon = 1e-9)
    ("bcg", "half_cauchy"): (bcg, {"tau_prior": "half-cauchy", "tau_scale": 0.5, "interval": "central"}),
    # R: bayesmeta(y, sigma, tau.prior = "uniform", interval.type = "central", delta = 1e-6, epsilon = 1e-9)
    ("bcg", "uniform"): (bcg, {"tau_prior": "uniform", "interval": "central"}),
    # R: bayesmeta(y, sigma, tau.prior = "uniform", interval.type = "shortest", delta = 1e-6, epsilon = 1e-9)
    ("bcg", "uniform_shortest"): (bcg, {"tau_prior": "uniform", "interval": "shortest"}),
    # R: bayesmeta(y, sigma, tau.prior = function(t) dexp(t, rate = 2), interval.type = "central",
    #              delta = 1e-6, epsilon = 1e-9)
    ("hart1999", "exponential"): (hart1999, {"tau_prior": "exponential", "tau_scale": 0.5, "interval": "central"}),
}


def _attribute(parameter: str, statistic: str) -> str:
    prefix = PARAMETERS[parameter]
    if parameter == "mu":
        return {"median": "estimate"}.get(statistic, SUMMARY[statistic])
    if parameter == "prediction" and statistic in ("lower", "upper"):
        return f"pi_{statistic}"
    return prefix if statistic == "median" else f"{prefix}_{SUMMARY[statistic]}"


@pytest.fixture(scope="module", params=list(CASES), ids=["-".join(case) for case in CASES])
def fit(request):
    make, options = CASES[request.param]
    dataset, case = request.param
    return bayes(make(), **options), load_bayesmeta()[dataset][case]


@pytest.mark.parametrize("parameter", list(PARAMETERS))
@pytest.mark.parametrize("statistic", list(SUMMARY))
def test_posterior_summaries_match_bayesmeta(fit, parameter, statistic):
    # R: ma$summary[c("median", "mean", "sd", "95% lower", "95% upper"), c("mu", "tau", "theta")]
    res, ref = fit
    expected = ref[parameter][statistic]
    ours = getattr(res, _attribute(parameter, statistic))
    if res.interval == "shortest" and statistic in ("lower", "upper"):
        ends = [getattr(res, _attribute(parameter, s)) for s in ("lower", "upper")]
        assert_shortest(res, parameter, ends, [ref[parameter]["lower"], ref[parameter]["upper"]])
    elif expected is None:  # bayesmeta's NA: a moment that does not exist
        assert np.isnan(ours)
    else:
        assert ours == pytest.approx(expected, abs=TOL["bayesmeta"]["abs"])


@pytest.mark.parametrize("statistic", list(SUMMARY))
def test_shrunken_study_effects_match_bayesmeta(fit, statistic):
    # R: ma$theta[c("median", "mean", "sd", "95% lower", "95% upper"), ]
    res, ref = fit
    column = "estimate" if statistic == "median" else SUMMARY[statistic]
    if res.interval == "shortest" and statistic in ("lower", "upper"):
        for i, label in enumerate(res.shrinkage.index):
            ours = res.shrinkage.loc[label, ["ci_lower", "ci_upper"]].tolist()
            assert_shortest(res, label, ours, [ref["theta"]["lower"][i], ref["theta"]["upper"][i]])
        return
    np.testing.assert_allclose(
        res.shrinkage[column].to_numpy(),
        np.asarray(ref["theta"][statistic], dtype=float),
        atol=TOL["bayesmeta"]["abs"],
        rtol=0,
    )
