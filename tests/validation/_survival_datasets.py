"""Checks of rjtrial.survival against R on datasets that ship with R's ``survival``.

``tests/reference/survival_datasets.R`` exports each dataset (``tests/reference/datasets/``)
and, for each case, R's numbers and the Python call that must reproduce them ("py"). The
per-dataset test files (``test_<dataset>_<source>_survival.py``) parametrize over the cases
of their dataset and over the quantities each case has, one assertion per quantity, so a
failure names the dataset, the R call and the number. Tolerances: ``TOL`` in
``_survival_reference.py``.
"""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from _survival_reference import REFERENCE_DIR, TOL, as_array, assert_close

from rjtrial.survival import cox, kaplan_meier, logrank, rmst


@lru_cache(maxsize=1)
def reference() -> dict:
    with open(REFERENCE_DIR / "survival_datasets.json") as handle:
        return json.load(handle)


@lru_cache(maxsize=None)
def dataset(name: str) -> pd.DataFrame:
    """The dataset as R has it: factor columns as pandas categoricals in R's level order."""
    info = reference()["datasets"][name]
    data = pd.read_csv(REFERENCE_DIR / info["file"])
    for column, levels in (info.get("levels") or {}).items():
        data[column] = pd.Categorical(data[column].map(lambda v: v if pd.isna(v) else str(v)), categories=levels)
    return data


def cases(prefix: str) -> dict[str, dict]:
    """Cases of one dataset, by kind: ``{"cox": [...], "km": [...], "logrank": [...], "rmst": [...]}``."""
    out: dict[str, list] = {"cox": [], "km": [], "logrank": [], "rmst": []}
    for name, case in reference()["cases"].items():
        if not name.startswith(prefix + "_"):
            continue
        kind = (
            next(k for k in ("km", "logrank", "rmst") if f"_{k}_" in name)
            if any(f"_{k}_" in name for k in ("km", "logrank", "rmst"))
            else "cox"
        )
        out[kind].append(name)
    return out


def _data_for(name: str) -> pd.DataFrame:
    data_name = name.split("_")[0] if not name.startswith("colon_death") else "colon_death"
    data = dataset(data_name)
    subset = reference()["cases"][name]["py"].get("subset")
    return data.query(subset) if subset else data


def _options(py: dict, allowed) -> dict:
    return {k: v for k, v in py.items() if k in allowed and v is not None}


@lru_cache(maxsize=None)
def fit_cox(name: str):
    py = reference()["cases"][name]["py"]
    return cox(
        _data_for(name),
        py["formula"],
        time=py["time"],
        event=py["event"],
        **_options(py, ("start", "strata", "cluster", "ties", "event_coding")),
    )


# ------------------------------------------------------------------ Cox quantities
COX_QUANTITIES = (
    "n",
    "coef",
    "coef_tight_refit",
    "se",
    "naive_se",
    "z",
    "p",
    "hazard_ratio_ci",
    "var",
    "loglik",
    "logtest",
    "waldtest",
    "sctest",
    "robscore",
    "concordance",
    "concordance_std",
    "zph_km",
    "zph_rank",
)


def cox_params(prefix: str):
    """(case, quantity) pairs for the Cox cases of a dataset, only quantities R reported."""
    pairs = []
    for name in cases(prefix)["cox"]:
        ref = reference()["cases"][name]
        for q in COX_QUANTITIES:
            key = {"hazard_ratio_ci": "hr_lower", "concordance_std": "concordance_std", "n": "n"}.get(q, q)
            if key in ref:
                pairs.append(pytest.param(name, q, id=f"{name}-{q}"))
    return pairs


def check_cox(name: str, quantity: str) -> None:
    ref = reference()["cases"][name]
    fit = fit_cox(name)
    table = fit.summary_frame()
    if quantity == "n":  # R: fit$n, fit$nevent, length(fit$na.action)
        assert (fit.n, fit.n_events, fit.n_omitted) == (ref["n"], ref["nevent"], ref["n_omitted"])
    elif quantity == "coef":  # R: coef(fit), R's default convergence (eps = 1e-9)
        assert_close(table["estimate"], ref["coef"], "coef")
    elif quantity == "coef_tight_refit":  # R: coef(update(fit, control = coxph.control(eps = 1e-14, ...)))
        assert_close(table["estimate"], ref["coef_tight_refit"], "coef")
    elif quantity == "se":  # R: sqrt(diag(fit$var)) (robust when cluster())
        assert_close(table["std_error"], ref["se"], "std_error")
    elif quantity == "naive_se":  # R: sqrt(diag(fit$naive.var))
        assert_close(np.sqrt(np.diag(fit.naive_variance_)), ref["naive_se"], "std_error")
    elif quantity == "z":  # R: summary(fit)$coefficients[, "z"]
        assert_close(table["statistic"], ref["z"], "statistic")
    elif quantity == "p":  # R: summary(fit)$coefficients[, "Pr(>|z|)"]
        assert_close(table["p_value"], ref["p"], "p_value")
    elif quantity == "hazard_ratio_ci":  # R: summary(fit)$conf.int
        assert_close(table["hazard_ratio"], ref["hazard_ratio"], "statistic")
        assert_close(table["ci_lower"], ref["hr_lower"], "statistic")
        assert_close(table["ci_upper"], ref["hr_upper"], "statistic")
    elif quantity == "var":  # R: fit$var
        np.testing.assert_allclose(fit.variance_.to_numpy(), np.array(ref["var"], dtype=float), rtol=1e-6, atol=1e-12)
    elif quantity == "loglik":  # R: fit$loglik
        assert_close([fit.log_likelihood_null_, fit.log_likelihood_], ref["loglik"], "loglik")
    elif quantity in ("logtest", "waldtest", "sctest", "robscore"):  # R: fit$logtest etc. (see cox_out)
        test = {
            "logtest": fit.likelihood_ratio_test_,
            "waldtest": fit.wald_test_,
            "sctest": fit.score_test_,
            "robscore": fit.robust_score_test_,
        }[quantity]
        assert test.statistic == pytest.approx(ref[quantity]["statistic"], **TOL["statistic"])
        assert test.df == ref[quantity]["df"]
        assert test.p_value == pytest.approx(ref[quantity]["p_value"], **TOL["p_value"])
    elif quantity == "concordance":  # R: fit$concordance[c("concordant", ..., "concordance")]
        c = fit.concordance()
        assert_close(
            [c.concordant, c.discordant, c.tied_risk, c.tied_time, c.tied_both], ref["concordance"][:5], "count"
        )
        assert c.concordance == pytest.approx(ref["concordance"][5], **TOL["concordance"])
    elif quantity == "concordance_std":  # R: fit$concordance["std"] = sqrt(concordance(fit)$var)
        assert fit.concordance().std_error == pytest.approx(ref["concordance_std"], **TOL["std_error"])
    elif quantity in ("zph_km", "zph_rank"):  # R: cox.zph(fit, transform = "km" / "rank")$table
        z = ref[quantity]
        out = fit.proportional_hazards_test(transform=quantity.split("_")[1])
        assert len(out) == len(z["terms"])
        assert_close(out["statistic"], z["chisq"], "statistic")
        assert_close(out["df"], z["df"], "count")
        assert_close(out["p_value"], z["p"], "p_value")
    else:  # pragma: no cover
        raise AssertionError(quantity)


# ------------------------------------------------------------------ KM, log-rank, RMST
def _group_labels(values) -> list[str]:
    return [
        "all"
        if v == "all"
        else (str(int(v)) if isinstance(v, (float, np.floating)) and float(v).is_integer() else str(v))
        for v in values
    ]


def check_km(name: str) -> None:
    ref = reference()["cases"][name]
    py = ref["py"]
    km = kaplan_meier(
        _data_for(name),
        time=py["time"],
        event=py["event"],
        group=py.get("group"),
        **_options(py, ("event_coding", "conf_type")),
    )
    table, t = km.table, ref["table"]
    # R: survfit(...): time, n.risk, n.event, n.censor, surv, std.err * surv, lower, upper
    assert _group_labels(table["group"]) == t["group"]
    assert_close(table["time"], t["time"], "time")
    assert_close(table["at_risk"], t["n_risk"], "count")
    assert_close(table["events"], t["n_event"], "count")
    assert_close(table["censored"], t["n_censor"], "count")
    assert_close(table["survival"], t["surv"], "survival")
    assert_close(table["std_error"], as_array(t["std_err_cumhaz"]) * as_array(t["surv"]), "std_error")
    assert_close(table["ci_lower"], t["lower"], "survival")
    assert_close(table["ci_upper"], t["upper"], "survival")
    # R: quantile(fit, 0.5)
    median = km.median()
    assert_close(median["estimate"], ref["median"]["quantile"], "time")
    assert_close(median["ci_lower"], ref["median"]["lower"], "time")
    assert_close(median["ci_upper"], ref["median"]["upper"], "time")
    # R: summary(fit, times = ...): rows after a group's last time are dropped by R
    at = km.survival_at(sorted(set(ref["at_times"]["time"])))
    at = at[at["survival"].notna()]
    assert_close(at["at_risk"], ref["at_times"]["n_risk"], "count")
    assert_close(at["survival"], ref["at_times"]["surv"], "survival")
    assert_close(at["std_error"], ref["at_times"]["std_err"], "std_error")
    assert_close(at["ci_lower"], ref["at_times"]["lower"], "survival")
    assert_close(at["ci_upper"], ref["at_times"]["upper"], "survival")


def check_logrank(name: str) -> None:
    ref = reference()["cases"][name]
    py = ref["py"]
    res = logrank(
        _data_for(name),
        time=py["time"],
        event=py["event"],
        group=py["group"],
        **_options(py, ("strata", "event_coding")),
    )
    # R: survdiff(...): chisq, n, obs, exp (summed over strata)
    assert res.statistic == pytest.approx(ref["chisq"], **TOL["statistic"])
    assert res.df == ref["df"]
    assert res.p_value == pytest.approx(ref["p"], **TOL["p_value"])
    assert_close(res.table["n"], ref["n"], "count")
    assert_close(res.table["observed"], ref["observed"], "count")
    assert_close(res.table["expected"], ref["expected"], "statistic")


def check_rmst(name: str) -> None:
    ref = reference()["cases"][name]
    py = ref["py"]
    res = rmst(
        _data_for(name),
        tau=ref["tau"],
        time=py["time"],
        event=py["event"],
        group=py["group"],
        **_options(py, ("event_coding",)),
    )
    # R: summary(survfit(...), rmean = tau)$table[, c("rmean", "se(rmean)")]
    assert_close(res.table["estimate"], ref["rmean"], "rmst")
    assert_close(res.table["std_error"], ref["se"], "rmst")
    diff = res.difference.iloc[0]
    assert diff["estimate"] == pytest.approx(ref["difference"], **TOL["rmst"])
    assert diff["std_error"] == pytest.approx(ref["difference_se"], **TOL["rmst"])
    assert diff["p_value"] == pytest.approx(ref["difference_p"], **TOL["p_value"])
