"""R metafor reference numbers for rjtrial.effects / rjtrial.meta and the tolerances they are held to.

The numbers come from ``tests/reference/metafor_reference.R`` (R 4.2.2, metafor 3.8-1,
metadat 1.2-0), stored in ``tests/reference/metafor_reference.json`` (15 significant digits;
``null`` is R's ``NA``); the input datasets are metadat's, exported by the same script to
``tests/reference/metadat_*.csv``. Every R model was fitted with
``control = list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)`` and every Q-profile
interval with ``confint(res, control = list(tol = 1e-12, maxiter = 10000))``.

``CTRL`` below is that control list, written out once so that the R calls beside the
assertions can say ``control = CTRL``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial import effects
from rjtrial.meta import pool

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
CTRL = "list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)"

# Agreement required with R, by kind of quantity (numpy assert_allclose atol / rtol). The issue
# asks for 1e-6 everywhere; effect sizes are closed-form and held to 1e-10. Observed
# differences are listed in each test module's docstring.
TOL = {
    "effect_size": {"abs": 1e-10, "rel": 0},  # escalc yi, vi: closed form
    "escalc": {"abs": 1e-13, "rel": 1e-12},  # escalc yi, vi of every measure of metafor_escalc.R (15 digits)
    "coef": {"abs": 1e-6, "rel": 0},  # pooled estimates, coefficients, CI / PI limits
    "std_error": {"abs": 1e-6, "rel": 0},
    "statistic": {"abs": 1e-6, "rel": 0},  # z, t, Q, QM, F
    "p_value": {"abs": 1e-6, "rel": 0},
    "tau2": {"abs": 1e-6, "rel": 0},  # tau^2, its SE and Q-profile limits
    "percent": {"abs": 1e-6, "rel": 0},  # I^2, R^2, weights (all in percent)
    "ratio": {"abs": 1e-6, "rel": 0},  # H^2
    "count": {"abs": 0, "rel": 0},  # k, degrees of freedom
}

# The quantities of one rma() fit: (our attribute, reference key, kind, R expression on `res`).
RMA_QUANTITIES = [
    ("estimate", "beta", "coef", "coef(res)"),
    ("std_error", "se", "std_error", "res$se"),
    ("statistic", "zval", "statistic", "res$zval"),
    ("p_value", "pval", "p_value", "res$pval"),
    ("ci_lower", "ci_lb", "coef", "res$ci.lb"),
    ("ci_upper", "ci_ub", "coef", "res$ci.ub"),
    ("pi_lower", "pi_lb", "coef", "predict(res)$pi.lb"),
    ("pi_upper", "pi_ub", "coef", "predict(res)$pi.ub"),
    ("tau2", "tau2", "tau2", "res$tau2"),
    ("tau2_std_error", "se_tau2", "tau2", "res$se.tau2"),
    ("tau2_ci_lower", ("tau2_ci", 0), "tau2", "confint(res)$random['tau^2', 'ci.lb']"),
    ("tau2_ci_upper", ("tau2_ci", 1), "tau2", "confint(res)$random['tau^2', 'ci.ub']"),
    ("i2", "I2", "percent", "res$I2"),
    ("i2_ci_lower", ("I2_ci", 0), "percent", "confint(res)$random['I^2(%)', 'ci.lb']"),
    ("i2_ci_upper", ("I2_ci", 1), "percent", "confint(res)$random['I^2(%)', 'ci.ub']"),
    ("h2", "H2", "ratio", "res$H2"),
    ("h2_ci_lower", ("H2_ci", 0), "ratio", "confint(res)$random['H^2', 'ci.lb']"),
    ("h2_ci_upper", ("H2_ci", 1), "ratio", "confint(res)$random['H^2', 'ci.ub']"),
    ("q", "QE", "statistic", "res$QE"),
    ("q_p_value", "QEp", "p_value", "res$QEp"),
    ("q_df", "QE_df", "count", "res$k - res$p"),
    ("k", "k", "count", "res$k"),
    ("weights", "weights", "percent", "weights(res)"),
]

# The coefficients of a meta-regression: (column of coefficients_frame(), key, kind, R expression).
COEFFICIENT_QUANTITIES = [
    ("estimate", "beta", "coef", "coef(res)"),
    ("std_error", "se", "std_error", "res$se"),
    ("statistic", "zval", "statistic", "res$zval"),
    ("p_value", "pval", "p_value", "res$pval"),
    ("ci_lower", "ci_lb", "coef", "res$ci.lb"),
    ("ci_upper", "ci_ub", "coef", "res$ci.ub"),
]

# A Mantel-Haenszel or Peto fit: (our attribute, key, kind, R expression on `res`).
TABLE_QUANTITIES = [
    ("estimate", "beta", "coef", "coef(res)"),
    ("std_error", "se", "std_error", "res$se"),
    ("statistic", "zval", "statistic", "res$zval"),
    ("p_value", "pval", "p_value", "res$pval"),
    ("ci_lower", "ci_lb", "coef", "res$ci.lb"),
    ("ci_upper", "ci_ub", "coef", "res$ci.ub"),
    ("q", "QE", "statistic", "res$QE"),
    ("q_p_value", "QEp", "p_value", "res$QEp"),
    ("q_df", "QE_df", "count", "res$k.yi - 1"),
    ("i2", "I2", "percent", "res$I2"),
    ("h2", "H2", "ratio", "res$H2"),
    ("k", "k", "count", "res$k"),
    ("weights", "weights", "percent", "weights(res)"),
    ("yi", "yi", "effect_size", "res$yi.f"),
    ("vi", "vi", "effect_size", "res$vi.f"),
]


@lru_cache(maxsize=1)
def load_reference() -> dict:
    with open(REFERENCE_DIR / "metafor_reference.json") as handle:
        return json.load(handle)


@lru_cache(maxsize=None)
def read_dataset(name: str) -> pd.DataFrame:
    """A metadat dataset as exported by the R script (``metadat_<name>.csv``)."""
    return pd.read_csv(REFERENCE_DIR / f"metadat_{name}.csv")


def as_array(values) -> np.ndarray:
    """JSON list (or scalar) from R to a float array: null -> NaN."""
    if not isinstance(values, list):
        values = [values]
    return np.array([np.nan if v is None else float(v) for v in values], dtype=float)


def reference_value(ref: dict, key):
    """``ref[key]`` or, for a (key, position) pair, one element of ``ref[key]``."""
    if isinstance(key, tuple):
        return ref[key[0]][key[1]]
    return ref[key]


def assert_close(actual, expected, kind: str) -> None:
    """Element-wise agreement within ``TOL[kind]``; NaN must match NaN (R's NA)."""
    actual = np.atleast_1d(np.asarray(actual, dtype=float))
    np.testing.assert_allclose(
        actual, as_array(expected), equal_nan=True, err_msg=kind, atol=TOL[kind]["abs"], rtol=TOL[kind]["rel"]
    )


def split_key(key: str) -> tuple[str, str]:
    """``"REML_knha"`` -> ``("REML", "knha")``."""
    method, test = key.rsplit("_", 1)
    return method, test


def check_rma_quantity(result, ref: dict, attribute: str, key, kind: str) -> None:
    """One quantity of an intercept-only fit against its R value.

    Fixed-effect fits have no tau^2 interval in R (``confint`` refuses) and no separate
    prediction interval (``predict`` returns the CI); tau^2 has no SE there.
    """
    name = key[0] if isinstance(key, tuple) else key
    if name not in ref or (isinstance(ref[name], list) and len(ref[name]) == 0):
        if result.method == "FE":
            if attribute.startswith(("tau2_ci", "i2_ci", "h2_ci", "tau2_std_error")):
                assert np.isnan(getattr(result, attribute))
                return
            if attribute.startswith("pi_"):  # R: predict(res) for an FE model gives the CI only
                assert getattr(result, attribute) == getattr(result, attribute.replace("pi_", "ci_"))
                return
        raise AssertionError(f"reference lacks {name}")
    actual = getattr(result, attribute)
    if attribute == "weights":
        actual = np.asarray(actual)[np.isfinite(actual)]
    assert_close(actual, reference_value(ref, key), kind)


# ---- effect-size frames of the datasets, built with rjtrial.effects ----------------------------
BINARY = {
    "log_risk_ratio": effects.log_risk_ratio,
    "log_odds_ratio": effects.log_odds_ratio,
    "risk_difference": effects.risk_difference,
    "peto_log_odds_ratio": effects.peto_log_odds_ratio,
}


@lru_cache(maxsize=None)
def bcg_effects(measure: str) -> pd.DataFrame:
    """dat.bcg: tpos/tneg vaccinated with/without TB, cpos/cneg controls; with ablat, year, alloc."""
    bcg = read_dataset("bcg")
    es = BINARY[measure](
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
        study="author",
    )
    return es.assign(ablat=bcg.ablat.to_numpy(), year=bcg.year.to_numpy(), alloc=bcg.alloc.to_numpy())


SMD_COLUMNS = dict(
    mean_treatment="m1i",
    sd_treatment="sd1i",
    n_treatment="n1i",
    mean_control="m2i",
    sd_control="sd2i",
    n_control="n2i",
    study="source",
)


@lru_cache(maxsize=None)
def normand_effects(measure: str) -> pd.DataFrame:
    """dat.normand1999: length of stay, specialist (1) vs routine (2) stroke care; g or d."""
    function = {"hedges_g": effects.hedges_g, "cohens_d": effects.cohens_d}[measure]
    return function(read_dataset("normand1999"), **SMD_COLUMNS)


COLLINS_OUTCOMES = {"bleeding": ("b.xti", "b.xci"), "operation": ("o.xti", "o.xci"), "death": ("d.xti", "d.xci")}


@lru_cache(maxsize=None)
def collins_effects(outcome: str, measure: str) -> pd.DataFrame:
    """dat.collins1985a, trials reporting the outcome (R: the rows with non-missing counts)."""
    treated, control = COLLINS_OUTCOMES[outcome]
    data = read_dataset("collins1985a").dropna(subset=[treated, control])
    return BINARY[measure](
        data, events_treatment=treated, n_treatment="nti", events_control=control, n_control="nci", study="trial"
    )


@lru_cache(maxsize=None)
def pignon_effects(measure: str = "log_hazard_ratio") -> pd.DataFrame:
    """dat.pignon2000: log hazard ratios from log-rank O - E and V; timing group ``grp``."""
    data = read_dataset("pignon2000")
    es = effects.log_hazard_ratio_logrank(data, observed_minus_expected="OmE", logrank_variance="V", study="trial")
    return es.assign(grp=data.grp.to_numpy())


@lru_cache(maxsize=None)
def hart_effects(measure: str = "log_incidence_rate_ratio") -> pd.DataFrame:
    """dat.hart1999: strokes per patient-year, warfarin (1) vs placebo or control (2)."""
    return effects.log_incidence_rate_ratio(
        read_dataset("hart1999"),
        events_treatment="x1i",
        person_time_treatment="t1i",
        events_control="x2i",
        person_time_control="t2i",
        study="study",
    )


def effects_of(dataset: str, measure: str) -> pd.DataFrame:
    if dataset.startswith("collins1985a:"):
        return collins_effects(dataset.split(":", 1)[1], measure)
    builders = {
        "bcg": bcg_effects,
        "normand1999": normand_effects,
        "pignon2000": pignon_effects,
        "hart1999": hart_effects,
    }
    return builders[dataset](measure)


@lru_cache(maxsize=None)
def fit(dataset: str, measure: str, method: str, test: str, **kwargs):
    """Cached pool() of a dataset's effects (kwargs must be hashable: tuples for moderators)."""
    return pool(effects_of(dataset, measure), method=method, test=test, **kwargs)


def rma_cases(ref: dict) -> list:
    """pytest params (fit key x quantity) for every rma fit in ``ref``, named e.g. REML_knha-tau2."""
    return [
        pytest.param(key, attribute, rkey, kind, r_call, id=f"{key}-{attribute}")
        for key in ref
        for attribute, rkey, kind, r_call in RMA_QUANTITIES
    ]


def table_cases(refs: dict) -> list:
    return [
        pytest.param(name, attribute, rkey, kind, r_call, id=f"{name}-{attribute}")
        for name in refs
        for attribute, rkey, kind, r_call in TABLE_QUANTITIES
    ]
