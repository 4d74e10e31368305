"""rjtrial.frequency.rate_ratio on count data that ship with R's MASS, held to R.

* quine: days absent from school of 146 children in New South Wales (Quine 1975), the
  negative-binomial example of Venables & Ripley (2002), Modern Applied Statistics with S,
  4th ed., section 7.4: ``glm.nb(Days ~ Eth + Sex + Age + Lrn, quine)``; and its Poisson fit.
* Insurance: car insurance claims (Baxter, Coutts & Ross 1980), Venables & Ripley section
  7.1: ``glm(Claims ~ District + Group + Age + offset(log(Holders)), poisson)`` with Group and
  Age unordered (treatment contrasts). Counts without overdispersion: R's ``glm.nb`` fails on
  them; rjtrial's negative binomial must fall back to the Poisson fit and say so.

Reference numbers: ``tests/reference/frequency_datasets.R`` -> ``frequency_datasets.json``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
from _survival_reference import REFERENCE_DIR, TOL, assert_close

from rjtrial.frequency import rate_ratio

with open(REFERENCE_DIR / "frequency_datasets.json") as handle:
    REF = json.load(handle)

CASES = ["quine_nb", "quine_poisson", "insurance_poisson"]


def _data(case: str) -> pd.DataFrame:
    ref = REF[case]
    data = pd.read_csv(REFERENCE_DIR / ref["py"]["file"], dtype={"District": str})
    for column, levels in ref["levels"].items():
        data[column] = pd.Categorical(data[column].astype(str), categories=levels)
    if "exposure" not in ref["py"]:
        data["one"] = 1.0
    return data


def _fit(case: str, model: str | None = None):
    py = REF[case]["py"]
    return rate_ratio(
        _data(case),
        count=py["count"],
        exposure=py.get("exposure", "one"),
        group=py["group"],
        covariates=py["covariates"],
        model=model or py["model"],
    )


@pytest.mark.parametrize("case", CASES)
def test_coefficients(case):
    # R: summary(fit)$coefficients[, "Estimate"] (glm.control(epsilon = 1e-14))
    assert_close(_fit(case).summary_frame()["estimate"], REF[case]["coef"], "coef")


@pytest.mark.parametrize("case", CASES)
def test_standard_errors_and_z(case):
    # R: summary(fit)$coefficients[, c("Std. Error", "z value", "Pr(>|z|)")]
    table = _fit(case).summary_frame()
    assert_close(table["std_error"], REF[case]["se"], "std_error")
    assert_close(table["statistic"], REF[case]["z"], "statistic")
    assert_close(table["p_value"], REF[case]["p"], "p_value")


@pytest.mark.parametrize("case", CASES)
def test_log_likelihood(case):
    # R: logLik(fit)
    assert _fit(case).log_likelihood_ == pytest.approx(REF[case]["loglik"], **TOL["loglik"])


def test_quine_theta():
    # R: glm.nb(...)$theta; attr(theta.ml(y, fitted(fit), limit = 100, eps = 1e-14), "SE")
    fit = _fit("quine_nb")
    assert fit.theta_ == pytest.approx(REF["quine_nb"]["theta"], rel=1e-6)
    assert fit.theta_std_error_ == pytest.approx(REF["quine_nb"]["theta_tight_se"], rel=1e-6)


def test_insurance_negative_binomial_falls_back_to_poisson_and_says_so():
    # R: glm.nb(Claims ~ District + Group + Age + offset(log(Holders)), Insurance) stops with
    # an error (theta -> infinity). rjtrial reports the Poisson fit, with a warning.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nb = _fit("insurance_poisson", model="negative_binomial")
    assert caught, "the fallback to Poisson must be announced"
    np.testing.assert_allclose(nb.summary_frame()["estimate"], REF["insurance_poisson"]["coef"], atol=1e-6)
    assert nb.converged is False and np.isinf(nb.theta_)
