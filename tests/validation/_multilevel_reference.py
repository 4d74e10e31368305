"""R reference numbers for dependent-effects meta-analysis and the tolerances they are held to.

The numbers come from ``tests/reference/metafor_multilevel.R`` (R 4.2.2, metafor 3.8-1,
metadat 1.2-0, clubSandwich 0.5.8, robumeta 2.0), stored in
``tests/reference/metafor_multilevel.json``; the datasets are metadat's (and one generated in
that script), exported beside it as CSV. ``rma.mv`` was fitted with ``control = CTRL``
(nlminb, ``rel.tol = 1e-12``; BFGS at ``reltol = 1e-14`` where nlminb stops early, listed in
the JSON's ``meta.bfgs_fits``) and its profile intervals found with ``confint(res, control =
list(tol = 1e-12, maxiter = 10000))``.

R optimises log sigma^2 numerically and stops within ~1e-8 of the maximum; rjtrial's
Fisher scoring reaches it to 1e-12. Differences are therefore R's, and largest (~5e-6) for I^2
in percent: I^2 is compared as a proportion (``i2 / 100``) to 1e-6.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_DIR = Path(__file__).resolve().parents[1] / "reference"
CTRL = "list(rel.tol = 1e-12, iter.max = 10000, eval.max = 10000)"

TOL = {
    "coef": 1e-6,  # fixed effects, CI / PI limits, predictions
    "std_error": 1e-6,
    "statistic": 1e-6,  # z, t, QE, QM, F
    "p_value": 1e-6,
    "sigma2": 1e-6,  # variance components, their profile limits, tau^2
    "proportion": 1e-6,  # I^2 / 100
    "df": 1e-6,  # Satterthwaite and HTZ degrees of freedom
    "log_likelihood": 1e-6,
    "exact": 1e-9,  # closed-form quantities (robumeta: no optimisation on either side)
}


@lru_cache(maxsize=None)
def load_reference() -> dict:
    return json.loads((REFERENCE_DIR / "metafor_multilevel.json").read_text())


def read_dataset(name: str) -> pd.DataFrame:
    """A dataset as exported by the R script, ``yi``/``vi`` renamed ``estimate``/``variance``."""
    frame = pd.read_csv(REFERENCE_DIR / f"{name}.csv")
    return frame.rename(columns={"yi": "estimate", "vi": "variance"})


def assert_close(ours, theirs, kind: str) -> None:
    ours = np.asarray(ours, dtype=float)
    theirs = np.asarray(theirs, dtype=float)
    if ours.size == 1 and theirs.size == 1:  # jsonlite writes length-1 vectors as scalars
        ours, theirs = ours.ravel(), theirs.ravel()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=TOL[kind])


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# quantities of one rma.mv fit: (name, R expression, kind, how to read ours, how to read R's)
MV_QUANTITIES = {
    "coefficients": ("coef(res)", "coef", lambda r: r.coefficients, lambda R: R["beta"]),
    "std_errors": ("res$se", "std_error", lambda r: r.summary_frame().std_error, lambda R: R["se"]),
    "statistics": ("res$zval", "statistic", lambda r: r.summary_frame().statistic, lambda R: R["zval"]),
    "p_values": ("res$pval", "p_value", lambda r: r.summary_frame().p_value, lambda R: R["pval"]),
    "ci_lower": ("res$ci.lb", "coef", lambda r: r.summary_frame().ci_lower, lambda R: R["ci_lb"]),
    "ci_upper": ("res$ci.ub", "coef", lambda r: r.summary_frame().ci_upper, lambda R: R["ci_ub"]),
    "sigma2": ("res$sigma2", "sigma2", lambda r: r.sigma2, lambda R: R["sigma2"]),
    "n_groups": ("res$s.nlevels", "exact", lambda r: r.n_groups, lambda R: R["s_nlevels"]),
    "q": ("res$QE", "statistic", lambda r: r.q, lambda R: R["QE"]),
    "q_p_value": ("res$QEp", "p_value", lambda r: r.q_p_value, lambda R: R["QEp"]),
    "log_likelihood": ("logLik(res)", "log_likelihood", lambda r: r.log_likelihood, lambda R: R["logLik"]),
    "i2_total": (
        "FAQ: 100 * sum(sigma2) / (sum(sigma2) + (k - p) / tr(P))",
        "proportion",
        lambda r: r.i2 / 100,
        lambda R: R["I2"]["total"] / 100,
    ),
    "i2_levels": (
        "FAQ: 100 * sigma2 / (sum(sigma2) + (k - p) / tr(P))",
        "proportion",
        lambda r: r.i2_levels / 100,
        lambda R: np.asarray(R["I2"]["levels"]) / 100,
    ),
    "vcov": ("vcov(res)", "std_error", lambda r: r.vcov, lambda R: R["vb"]),
}


def check_mv_quantity(res, R: dict, quantity: str) -> None:
    _, kind, ours, theirs = MV_QUANTITIES[quantity]
    assert_close(ours(res), theirs(R), kind)


def check_profile(res, R: dict) -> None:
    """confint(res): estimate, ci.lb, ci.ub of each sigma^2."""
    limits = np.asarray(R["sigma2_ci"], dtype=float)
    assert_close(res.sigma2_ci_lower, limits[:, 1], "sigma2")
    assert_close(res.sigma2_ci_upper, limits[:, 2], "sigma2")


def check_moderator_test(res, R: dict) -> None:
    """res$QM (F with test = "t"), res$QMdf, res$QMp."""
    t = res.moderator_test
    assert_close(t.statistic, R["QM"], "statistic")
    assert_close(t.p_value, R["QMp"], "p_value")
    assert t.df == R["QMdf"][0]
    if R["QMdf"][1] is not None:
        assert t.df_denominator == R["QMdf"][1]


def check_prediction(res, R: dict) -> None:
    """predict(res[, newmods]): pred, se, ci.lb, ci.ub, pi.lb, pi.ub."""
    frame = res.predict(None if "newmods" not in R or R["newmods"] is None else [as_list(R["newmods"])])
    for column, key in [
        ("estimate", "pred"),
        ("std_error", "pred_se"),
        ("ci_lower", "pred_ci_lb"),
        ("ci_upper", "pred_ci_ub"),
        ("pi_lower", "pi_lb"),
        ("pi_upper", "pi_ub"),
    ]:
        assert_close(frame[column].to_numpy(), as_list(R[key]), "coef")


def check_cr2(rob, R: dict) -> None:
    """clubSandwich coef_test(res, vcov = "CR2", cluster = ...): beta, SE, tstat, df_Satt, p_Satt."""
    frame = rob.summary_frame()
    assert_close(frame.estimate, as_list(R["beta"]), "coef")
    assert_close(frame.std_error, as_list(R["se"]), "std_error")
    assert_close(frame.statistic, as_list(R["tstat"]), "statistic")
    assert_close(frame.df, as_list(R["df"]), "df")
    assert_close(frame.p_value, as_list(R["pval"]), "p_value")
    assert_close(frame[["ci_lower", "ci_upper"]].to_numpy(), np.atleast_2d(R["ci"]), "coef")
    assert_close(rob.vcov, np.atleast_2d(R["vcov"]), "std_error")


def check_htz(rob, R: dict) -> None:
    """clubSandwich Wald_test(res, constrain_zero(...), vcov = "CR2", test = "HTZ")."""
    coefs = [c - 1 for c in as_list(R["wald_coefs"])]
    w = rob.wald_test(coefs)
    ref = R["wald"]["HTZ"]
    assert_close(w.statistic, ref["Fstat"], "statistic")
    assert_close(w.delta, ref["delta"], "statistic")
    assert w.df_numerator == ref["df_num"]
    assert_close(w.df_denominator, ref["df_denom"], "df")
    assert_close(w.p_value, ref["p_val"], "p_value")
    # Wald_test(..., test = "chi-sq")$Fstat is Q / q
    assert_close(w.q_statistic / ref["df_num"], R["wald"]["chi-sq"]["Fstat"], "statistic")


def check_robu(res, R: dict) -> None:
    """robumeta robu(..., modelweights = "CORR"): reg_table (b.r, SE, t, dfs, prob, CI.L, CI.U),
    mod_info$tau.sq and $I.2, VR.r."""
    frame = res.summary_frame()
    for column, key in [
        ("estimate", "b"),
        ("std_error", "se"),
        ("statistic", "t"),
        ("df", "df"),
        ("p_value", "pval"),
        ("ci_lower", "ci_lb"),
        ("ci_upper", "ci_ub"),
    ]:
        assert_close(frame[column], as_list(R[key]), "exact")
    assert_close(res.tau2, R["tau2"], "exact")
    assert_close(res.i2 / 100, R["I2"] / 100, "exact")
    # robu's VR.r leaves out the J / (J - p) of small = FALSE, which its SEs (and ours, vcov included) carry
    scale = 1.0 if res.small else R["N"] / (R["N"] - len(frame))
    assert_close(res.robust.vcov, np.atleast_2d(R["vcov"]) * scale, "exact")
    assert res.n_clusters == R["N"] and res.k == R["M"]
