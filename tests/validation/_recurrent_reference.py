"""R reference numbers for rjtrial's recurrent-event models (PWP, Andersen–Gill, the shared
gamma frailty model) and for ``split_followup``, and the checks the validation tests share.

The numbers come from ``tests/reference/survival_recurrent.R`` (R 4.2, survival 3.5-3),
stored in ``tests/reference/survival_recurrent.json`` with 17 significant digits; the
counting-process tables R's ``tmerge`` built are in ``tests/reference/datasets/*_tmerge.csv``.
Every case records the Python call that must reproduce it ("py"). Tolerances are
``_survival_reference.TOL`` by kind of quantity, plus the kinds below.

Frailty cases have four R fits (see the R script): ``default`` (R's default call, whose
search for theta stops early), ``tight`` (the same with eps = 1e-14), and at the tight
theta ``exact`` (``sparse = FALSE``) and ``sparse`` (R's default information), plus
``optimize``: theta maximising R's integrated likelihood by ``optimize()``.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from _survival_reference import REFERENCE_DIR, TOL, as_array  # noqa: F401

from rjtrial.survival import (
    andersen_gill,
    covariate,
    cox,
    cumulative_covariate,
    cumulative_event,
    event,
    frailty_cox,
    pwp,
    split_followup,
)

TOL = {
    **TOL,
    "theta": {"abs": 1e-7, "rel": 0},  # frailty variance: R's search is precise to its last step (<= 6e-7)
    "frailty": {"abs": 1e-6, "rel": 0},  # log frailties b_i (R fit$frail)
    "variance": {"rel": 1e-6, "abs": 1e-10},  # var, var2 and the frailties' variances, element-wise
    "degrees_of_freedom": {"abs": 1e-6, "rel": 0},  # effective df of each term (R fit$df)
    "table": {"abs": 0, "rel": 0},  # tmerge's tables: times, counts and copied values, exactly
}


@lru_cache(maxsize=1)
def reference() -> dict:
    with open(REFERENCE_DIR / "survival_recurrent.json") as handle:
        return json.load(handle)


@lru_cache(maxsize=1)
def _levels() -> dict:
    with open(REFERENCE_DIR / "survival_datasets.json") as handle:
        return {name: info.get("levels") or {} for name, info in json.load(handle)["datasets"].items()}


@lru_cache(maxsize=None)
def dataset(name: str) -> pd.DataFrame:
    """A dataset as the R script used it; factors as categoricals in R's level order."""
    if name in ("trial", "rec"):
        return pd.read_csv(REFERENCE_DIR / "survival_trial_recurrent.csv")
    if name.endswith("_tmerge"):  # our table, with the columns the R script derived for its model
        table = ours_split(name.removesuffix("_tmerge")).copy()
        if name == "jasa_tmerge":  # R: sdata$age - 48; as.numeric(sdata$accept.dt - as.Date("1967-10-01")) / 365.25
            table["age"] = table["age"] - 48
            table["year"] = (pd.to_datetime(table["accept.dt"]) - pd.Timestamp("1967-10-01")).dt.days / 365.25
        if name == "pbc_tmerge":  # R: death == 2
            table["died"] = (table["death"] == 2).astype(int)
        return table
    data = pd.read_csv(REFERENCE_DIR / "datasets" / f"{name}.csv")
    for column, levels in _levels().get(name, {}).items():
        data[column] = pd.Categorical(data[column], categories=levels)
    return data


def case(name: str) -> dict:
    return reference()["cases"][name]


def cases(prefix: str, model: str) -> list[str]:
    return [
        name for name, c in reference()["cases"].items() if name.startswith(prefix + "_") and c["py"]["model"] == model
    ]


def vector(values) -> np.ndarray:
    """A JSON number, list or named object from R as a float array (null -> NaN)."""
    if isinstance(values, dict):
        values = list(values.values())
    return as_array(values)


def matrix(values) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in values], dtype=float)


def close(actual, expected, kind: str) -> None:
    """Element-wise agreement within ``TOL[kind]``; NaN must match NaN (R's NA)."""
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float),
        np.asarray(expected, dtype=float),
        equal_nan=True,
        err_msg=kind,
        atol=TOL[kind]["abs"],
        rtol=TOL[kind]["rel"],
    )


# ------------------------------------------------------------------ Cox, AG and PWP fits
@lru_cache(maxsize=None)
def fit_counting(name: str):
    """Our fit of a ``cox``/``andersen_gill``/``pwp`` case, by its "py" record."""
    py = case(name)["py"]
    data = dataset(py["data"])
    options = {k: py[k] for k in ("strata", "ties", "max_event_number") if k in py}
    if py["model"] == "pwp":
        return pwp(
            data,
            py["formula"],
            start=py["start"],
            stop=py["stop"],
            event=py["event"],
            id=py["id"],
            timescale=py["timescale"],
            **options,
        )
    if py["model"] == "andersen_gill":
        return andersen_gill(
            data, py["formula"], start=py["start"], stop=py["stop"], event=py["event"], id=py["id"], **options
        )
    return cox(data, py["formula"], time=py["time"], event=py["event"], start=py.get("start"), **options)


COUNTING_QUANTITIES = (
    "n",
    "coef",
    "se",
    "naive_se",
    "z",
    "p",
    "var",
    "loglik",
    "logtest",
    "waldtest",
    "sctest",
    "robscore",
)


def counting_params(prefix: str, models=("pwp", "andersen_gill", "cox"), *, data: str | None = None):
    """(case, quantity) pairs of the Cox/AG/PWP cases named ``<prefix>_...`` (fitted to ``data`` when given)."""
    return [
        pytest.param(name, q, id=f"{name}-{q}")
        for model in models
        for name in cases(prefix, model)
        if data is None or case(name)["py"]["data"] == data
        for q in COUNTING_QUANTITIES
        if q in case(name)
    ]


def check_counting(name: str, quantity: str) -> None:
    """One quantity of a Cox/AG/PWP fit against R's ``coxph`` (the R call is the case's ``r_call``)."""
    ref = case(name)
    fit = fit_counting(name)
    table = fit.summary_frame()
    if quantity == "n":  # R: fit$n, fit$nevent
        assert (fit.n, fit.n_events, fit.n_omitted) == (ref["n"], ref["nevent"], ref["n_omitted"])
    elif quantity == "coef":  # R: coef(fit)
        close(table["estimate"], vector(ref["coef"]), "coef")
    elif quantity == "se":  # R: sqrt(diag(fit$var)), robust (clustered on the person)
        close(table["std_error"], vector(ref["se"]), "std_error")
    elif quantity == "naive_se":  # R: sqrt(diag(fit$naive.var))
        close(np.sqrt(np.diag(fit.naive_variance_)), vector(ref["naive_se"]), "std_error")
    elif quantity == "z":  # R: summary(fit)$coefficients[, "z"]
        close(table["statistic"], vector(ref["z"]), "statistic")
    elif quantity == "p":  # R: summary(fit)$coefficients[, "Pr(>|z|)"]
        close(table["p_value"], vector(ref["p"]), "p_value")
    elif quantity == "var":  # R: fit$var
        close(fit.variance_.to_numpy(), matrix(ref["var"]), "variance")
    elif quantity == "loglik":  # R: fit$loglik
        close([fit.log_likelihood_null_, fit.log_likelihood_], vector(ref["loglik"]), "loglik")
    else:  # R: 2 * diff(fit$loglik), fit$wald.test, fit$score, fit$rscore
        test = {
            "logtest": fit.likelihood_ratio_test_,
            "waldtest": fit.wald_test_,
            "sctest": fit.score_test_,
            "robscore": fit.robust_score_test_,
        }[quantity]
        assert test.statistic == pytest.approx(ref[quantity]["statistic"], **TOL["statistic"])
        assert test.df == ref[quantity]["df"]
        assert test.p_value == pytest.approx(ref[quantity]["p_value"], **TOL["p_value"])


# ------------------------------------------------------------------ the gamma frailty model
@lru_cache(maxsize=None)
def fit_frailty(name: str, theta: str | None = None, information: str = "exact"):
    """Our fit of a frailty case: at the maximum (``theta=None``) or at R's tight theta."""
    ref = case(name)
    py = ref["py"]
    options = {k: py[k] for k in ("start", "strata", "ties") if k in py}
    fixed = None if theta is None else ref["tight"]["theta"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a theta on the boundary (0) is warned of; the tests check the value
        return frailty_cox(
            dataset(py["data"]),
            py["formula"],
            time=py["time"],
            event=py["event"],
            frailty=py["frailty"],
            theta=fixed,
            information=information,
            **options,
        )


FRAILTY_QUANTITIES = (
    "coef",
    "se",
    "se2",
    "var",
    "var2",
    "frail",
    "frail_var",
    "df",
    "loglik",
    "penalty",
    "penalized_loglik",
    "integrated_loglik",
    "logtest",
    "frailty_test",
)


#: R's sparse fit (an approximate Newton, converging linearly) stops about 1e-7 from the maximum, which
#: moves the partial likelihood and the penalty (neither at its own extremum) by up to 1.5e-6; the
#: maximum is the exact fit's, to which they are held. The sparse information changes the variances.
SPARSE_ONLY_TO_R_PRECISION = ("loglik", "penalty")


def frailty_params(prefix: str):
    return [
        pytest.param(name, fit, q, id=f"{name}-{fit}-{q}")
        for name in cases(prefix, "frailty")
        for fit in ("exact", "sparse")
        for q in FRAILTY_QUANTITIES
        if not (fit == "sparse" and q in SPARSE_ONLY_TO_R_PRECISION)
    ]


def check_frailty_at_theta(name: str, which: str, quantity: str) -> None:
    """One quantity at R's tight theta: ``which="exact"`` against ``frailty(id, theta, sparse = FALSE)``,
    ``"sparse"`` (``information="sparse"``) against ``frailty(id, theta)``."""
    ref = case(name)[which]
    fit = fit_frailty(name, "tight", information=which)
    if quantity == "coef":  # R: coef(fit)[1:p]
        close(fit.params_, vector(ref["coef"]), "coef")
    elif quantity == "se":  # R: sqrt(diag(fit$var))[1:p], printed se(coef)
        close(fit.summary_frame()["std_error"], vector(ref["se"]), "std_error")
    elif quantity == "se2":  # R: sqrt(diag(fit$var2))[1:p], printed se2
        close(fit.summary_frame()["std_error2"], vector(ref["se2"]), "std_error")
    elif quantity == "var":  # R: fit$var[1:p, 1:p]
        close(fit.variance_, matrix(ref["var"]), "variance")
    elif quantity == "var2":  # R: fit$var2[1:p, 1:p]
        close(fit.variance2_, matrix(ref["var2"]), "variance")
    elif quantity == "frail":  # R: fit$frail (sparse), coef(fit)[-(1:p)] (sparse = FALSE)
        close(fit.frailty_, vector(ref["frail"]), "frailty")
    elif quantity == "frail_var":  # R: fit$fvar (sparse), diag(fit$var)[-(1:p)] (sparse = FALSE)
        close(fit.frailty_variance_, vector(ref["frail_var"]), "variance")
    elif quantity == "df":  # R: fit$df
        close(fit.degrees_of_freedom_, vector(ref["df"]), "degrees_of_freedom")
    elif quantity == "loglik":  # R: fit$loglik
        close([fit.log_likelihood_null_, fit.log_likelihood_], vector(ref["loglik"]), "loglik")
    elif quantity == "penalty":  # R: fit$penalty[2]
        close(fit.penalty_, ref["penalty"], "loglik")
    elif quantity == "penalized_loglik":  # R: fit$loglik[2] - fit$penalty[2]
        close(fit.penalized_log_likelihood_, ref["penalized_loglik"], "loglik")
    elif quantity == "integrated_loglik":  # R: fit$history[[1]]$c.loglik
        close(fit.integrated_log_likelihood_, ref["integrated_loglik"], "loglik")
    elif quantity == "logtest":  # R: 2 * diff(fit$loglik) on sum(fit$df), as print.coxph.penal
        test = fit.likelihood_ratio_test_
        assert test.statistic == pytest.approx(ref["logtest"], **TOL["statistic"])
        close(test.df, ref["logtest_df"], "degrees_of_freedom")
        assert test.p_value == pytest.approx(ref["logtest_p"], **TOL["p_value"])
    elif quantity == "frailty_test":  # R: the frailty term's printed Chisq and p
        test = fit.frailty_test_
        assert test.statistic == pytest.approx(ref["frailty_chisq"], **TOL["statistic"])
        assert test.p_value == pytest.approx(ref["frailty_p"], **TOL["p_value"])
    else:  # pragma: no cover
        raise AssertionError(quantity)


def check_frailty_theta(name: str) -> None:
    """theta at the maximum: within R's own precision of R's tight search (its last step) and
    of R's optimize(); the integrated likelihood there at least R's; coefficients to 1e-6."""
    ref = case(name)
    fit = fit_frailty(name)
    tight = ref["tight"]
    # R: coxph(... + frailty(id, eps = 1e-14), control = coxph.control(eps = 1e-14, ...))
    assert abs(fit.theta_ - tight["theta"]) <= max(tight["theta_last_step"], TOL["theta"]["abs"])
    # R: optimize(function(t) coxph(... + frailty(id, theta = t, sparse = FALSE))$history[[1]]$c.loglik, ...)
    assert fit.theta_ == pytest.approx(ref["optimize"]["theta"], abs=TOL["theta"]["abs"])
    assert fit.integrated_log_likelihood_ >= ref["optimize"]["integrated_loglik"] - 1e-12 * abs(
        ref["optimize"]["integrated_loglik"]
    )
    close(fit.params_, vector(tight["coef"]), "coef")
    assert fit.converged and fit.theta_converged


def default_difference(name: str) -> dict:
    """How far R's default call is from the maximum: theta and coefficients, ours minus R's."""
    ref = case(name)["default"]
    fit = fit_frailty(name)
    return {"theta": fit.theta_ - ref["theta"], "coef": np.max(np.abs(fit.params_.to_numpy() - vector(ref["coef"])))}


# ------------------------------------------------------------------ split_followup against tmerge
@lru_cache(maxsize=None)
def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / name)


@lru_cache(maxsize=None)
def ours_split(name: str) -> pd.DataFrame:
    """Our counting-process table for one of the R script's tmerge calls (``split[name]["r_call"]``)."""
    read = lambda n: pd.read_csv(REFERENCE_DIR / "datasets" / f"{n}.csv")  # noqa: E731
    if name == "cgd0":
        cgd0 = read("cgd0")
        table = split_followup(
            cgd0.iloc[:, :13],
            cgd0,
            id="id",
            stop="futime",
            variables=[("infect", event(f"etime{k}")) for k in range(1, 8)],
        )
        return split_followup(table, table, id="id", variables={"enum": cumulative_covariate("tstart")})
    if name == "jasa":
        jasa, times = read("jasa"), read("jasa_times")
        # R takes the follow-up from data2 (tdata$futime); here the table carries it
        table = split_followup(
            jasa.assign(followup=times["futime"]),
            times,
            id="subject",
            stop="followup",
            variables={"death": event("futime", "fustat"), "trt": covariate("txtime")},
        )
        return table.drop(columns="followup")
    if name == "pbc":
        table = split_followup(read("pbc_baseline"), id="id", stop="time", variables={"death": event("time", "status")})
        return split_followup(
            table,
            read("pbcseq"),
            id="id",
            variables={v: covariate("day", v) for v in ("ascites", "bili", "albumin", "protime", "alk.phos")},
        )
    if name == "trial":
        fu, off = _csv("recurrent_split_followup.csv"), _csv("recurrent_split_offences.csv")
        table = split_followup(fu, id="id", stop="followup_days")
        table = split_followup(
            table, off, id="id", variables={"reoffence": event("day"), "offences": cumulative_event("day")}
        )
        table = split_followup(table, off, id="id", variables={"seriousness": event("day", "seriousness")})
        table = split_followup(
            table,
            _csv("recurrent_split_custody.csv"),
            id="id",
            variables={"custody": covariate("day", "in_custody", initial=0)},
        )
        table = split_followup(table, fu, id="id", variables={"programme": covariate("programme_day")})
        table = split_followup(
            table,
            _csv("recurrent_split_conferences.csv"),
            id="id",
            variables={"conferences": cumulative_covariate("day")},
        )
        return split_followup(
            table, off, id="id", variables={"harm": cumulative_covariate("day", "seriousness", initial=0)}
        )
    raise KeyError(name)  # pragma: no cover


def r_split(name: str) -> pd.DataFrame:
    return pd.read_csv(REFERENCE_DIR / reference()["split"][name]["output"])


def check_split_column(name: str, column: str) -> None:
    """One column of our table against tmerge's, row for row (numbers exactly, text as text)."""
    ours, theirs = ours_split(name), r_split(name)
    assert len(ours) == len(theirs)
    a, b = ours[column], theirs[column]
    if pd.api.types.is_numeric_dtype(b) and not pd.api.types.is_bool_dtype(b):
        close(a.to_numpy(dtype=float), b.to_numpy(dtype=float), "table")
    else:
        text = lambda s: s.astype(object).where(s.notna(), None).map(lambda v: None if v is None else str(v))  # noqa: E731
        assert text(a).tolist() == text(b).tolist(), column


def check_split_counts(name: str, key: str = "tcount") -> None:
    """R's attr(x, "tcount"): early, late, gap, within, boundary, leading, trailing, tied, missid."""
    ref = reference()["split"][name][key]
    counts = ours_split(name).attrs["counts"]
    assert list(counts.columns) == ref["columns"]
    assert list(counts.index) == ref["variables"]
    close(counts.to_numpy(), matrix(ref["counts"]), "table")
