"""rjtrial.meta.ipd: the two-stage route from follow-up tables to the pool.

Stage 1 and stage 2 are checked against R (tests/reference/meta_ipd.R: ``coxph``,
``glm.nb``, ``glm(family = poisson)``, ``escalc``, then ``rma`` and ``confint`` on R's own
per-trial yi, vi) on the follow-up tables of four simulated trials committed in
tests/reference/meta_ipd.csv; freshly simulated trials check that each trial's effect is
what rjtrial's survival / frequency function gives when called directly.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial import frequency, survival
from rjtrial.errors import DataError, FallbackWarning
from rjtrial.meta import pool, two_stage
from rjtrial.simulate import simulate_trial

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "tests" / "reference"
FOLLOWUP = pd.read_csv(REFERENCE / "meta_ipd.csv")
REF = json.loads((REFERENCE / "meta_ipd.json").read_text())

# R's name for the per-trial analysis -> two_stage options
CASES = {
    "log_hazard_ratio": dict(measure="log_hazard_ratio"),
    "log_hazard_ratio_adjusted": dict(measure="log_hazard_ratio", covariates=["age", "prior_offences"]),
    "log_rate_ratio": dict(measure="log_rate_ratio"),
    "log_rate_ratio_poisson": dict(measure="log_rate_ratio", count_model="poisson"),
    "log_rate_ratio_adjusted": dict(measure="log_rate_ratio", covariates=["age", "prior_offences"]),
    "log_risk_ratio": dict(measure="log_risk_ratio"),
    "log_odds_ratio": dict(measure="log_odds_ratio"),
    "risk_difference": dict(measure="risk_difference"),
}
# Agreement with R: models fitted by Newton to machine precision on both sides (coxph eps = 1e-14,
# glm.nb epsilon = 1e-12) agree to ~1e-10; escalc is closed form; pooled quantities as in
# tests/validation/_metafor_reference.py (1e-6).
STAGE1_TOL = {"model": 1e-8, "closed_form": 1e-12}
POOLED_TOL = 1e-6
POOLED = [
    ("estimate", "beta"),
    ("std_error", "se"),
    ("statistic", "zval"),
    ("p_value", "pval"),
    ("ci_lower", "ci_lb"),
    ("ci_upper", "ci_ub"),
    ("tau2", "tau2"),
    ("i2", "I2"),
    ("h2", "H2"),
    ("q", "QE"),
    ("q_p_value", "QEp"),
]
SCENARIOS = {"jrc-london-burglary": 5, "canberra-youth-violence": 6, "magistrates-property": 7}


@pytest.fixture(scope="module")
def reference_effects():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no per-trial fit may warn on the reference data
        return {case: two_stage(FOLLOWUP, treatment="conference", **options) for case, options in CASES.items()}


@pytest.fixture(scope="module")
def simulated():
    return {
        name: simulate_trial(ROOT / "synthetic" / f"{name}.toml", rng=seed, truth=False).followup()
        for name, seed in SCENARIOS.items()
    }


# ---- stage 1 against R -----------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_per_trial_effects_match_r(case, reference_effects):
    # R: coxph / glm.nb / glm / escalc per trial (tests/reference/meta_ipd.R)
    es = reference_effects[case]
    tol = STAGE1_TOL[
        "closed_form" if CASES[case]["measure"] in ("log_risk_ratio", "log_odds_ratio", "risk_difference") else "model"
    ]
    assert list(es.index) == REF["trials"]
    np.testing.assert_allclose(es["estimate"], REF["per_trial"][case]["yi"], rtol=0, atol=tol)
    np.testing.assert_allclose(es["variance"], REF["per_trial"][case]["vi"], rtol=tol, atol=0)


# ---- stage 2 against R -----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
@pytest.mark.parametrize("case", list(CASES))
def test_pooled_result_matches_metafor(case, method, reference_effects):
    # R: rma(yi, vi, method = method, control = CTRL) on R's per-trial yi, vi; confint(res)
    res = pool(reference_effects[case], method=method)
    ref = REF["pooled"][case][method]
    for ours, theirs in POOLED:
        assert getattr(res, ours) == pytest.approx(ref[theirs], abs=POOLED_TOL), ours
    if method != "FE":
        assert (res.tau2_ci_lower, res.tau2_ci_upper) == pytest.approx(tuple(ref["tau2_ci"]), abs=POOLED_TOL)
        assert (res.i2_ci_lower, res.i2_ci_upper) == pytest.approx(tuple(ref["I2_ci"]), abs=POOLED_TOL)


def test_effects_frame_has_the_shape_of_rjtrial_effects(reference_effects):
    es = reference_effects["log_risk_ratio"]
    assert es.index.name == "study"
    assert es.attrs["measure"] == "log_risk_ratio"
    assert list(es.columns[:6]) == [
        "estimate",
        "variance",
        "events_treatment",
        "n_treatment",
        "events_control",
        "n_control",
    ]
    counts = FOLLOWUP.assign(any=FOLLOWUP.event > 0).groupby(["trial", "arm"])["any"].agg(["sum", "size"])
    row = es.loc["canberra-violence"]
    assert (row.control, row.treatment) == ("court", "conference")
    assert (row.events_control, row.n_control) == tuple(counts.loc[("canberra-violence", "court")])
    assert (row.events_treatment, row.n_treatment) == tuple(counts.loc[("canberra-violence", "conference")])
    # the 2x2 counts make Mantel-Haenszel pooling possible, as for rjtrial.effects.log_risk_ratio
    assert np.isfinite(pool(es, method="MH").estimate)


def test_a_mapping_and_one_table_give_the_same_effects(reference_effects):
    tables = {name: group.drop(columns="trial") for name, group in FOLLOWUP.groupby("trial", sort=False)}
    controls = {name: ("court" if name == "canberra-violence" else "control") for name in tables}
    es = two_stage(tables, measure="log_hazard_ratio", control=controls)
    pd.testing.assert_frame_equal(es, reference_effects["log_hazard_ratio"], check_exact=False, rtol=1e-14)


# ---- stage 1 is rjtrial's own functions, called per trial -------------------------------------------------
def _coded(table: pd.DataFrame, control: str) -> pd.DataFrame:
    data = table.copy()
    data["arm"] = pd.Categorical(data["arm"], categories=[control, "conference"])
    data["event"] = data["event"].astype(int)
    return data


def _control(table) -> str:
    return "court" if "court" in set(table["arm"]) else "control"


def test_hazard_ratios_are_rjtrial_cox(simulated):
    es = two_stage(simulated, measure="log_hazard_ratio", treatment="conference")
    for name, table in simulated.items():
        fit = survival.cox(_coded(table, _control(table)), "arm", time="time_at_risk", event="event")
        assert es.loc[name, "estimate"] == pytest.approx(fit.params_["arm[T.conference]"], rel=1e-12, abs=1e-14)
        assert es.loc[name, "variance"] == pytest.approx(fit.variance_.iloc[0, 0], rel=1e-12)
        assert es.loc[name, "control"] == _control(table)


@pytest.mark.parametrize("count_model", ["negative_binomial", "poisson"])
def test_rate_ratios_are_rjtrial_rate_ratio(simulated, count_model):
    es = two_stage(
        simulated, measure="log_rate_ratio", treatment="conference", count_model=count_model, covariates=["age"]
    )
    for name, table in simulated.items():
        fit = frequency.rate_ratio(
            _coded(table, _control(table)),
            count="reoffences",
            exposure="exposure_days",
            group="arm",
            covariates=["age"],
            model=count_model,
        )
        term = "arm[T.conference]"
        assert es.loc[name, "estimate"] == pytest.approx(fit.params_[term], rel=1e-12, abs=1e-14)
        assert es.loc[name, "variance"] == pytest.approx(fit.variance_.loc[term, term], rel=1e-12)
        assert es.loc[name, "events_treatment"] == table.loc[table.arm == "conference", "reoffences"].sum()
        assert es.loc[name, "person_time_control"] == table.loc[table.arm != "conference", "exposure_days"].sum()


@pytest.mark.parametrize(
    "measure,function",
    [
        ("log_risk_ratio", frequency.risk_ratio),
        ("log_odds_ratio", frequency.odds_ratio),
        ("risk_difference", frequency.risk_difference),
    ],
)
def test_risk_measures_are_rjtrial_two_by_two(simulated, measure, function):
    es = two_stage(simulated, measure=measure, treatment="conference")
    for name, table in simulated.items():
        fit = function(_coded(table, _control(table)), outcome="event", group="arm", control=_control(table))
        expected = fit.estimate if measure == "risk_difference" else np.log(fit.estimate)
        assert es.loc[name, "estimate"] == pytest.approx(expected, rel=1e-13, abs=1e-15)
        assert es.loc[name, "variance"] == pytest.approx(fit.std_error**2, rel=1e-13)


def test_two_stage_then_pool_runs_end_to_end(simulated):
    es = two_stage(simulated, measure="log_hazard_ratio", treatment="conference")
    res = pool(es, method="REML")
    assert res.k == len(SCENARIOS) and res.measure == "log_hazard_ratio"
    assert list(res.study_frame().index) == list(SCENARIOS)


# ---- errors -----------------------------------------------------------------------------------------------
def _small():
    return FOLLOWUP[FOLLOWUP.trial == "london-burglary-1"].drop(columns="trial").reset_index(drop=True)


def test_a_trial_with_one_arm_is_named():
    table = _small()
    one_arm = table[table.arm == "control"]
    with pytest.raises(DataError, match="only one arm") as info:
        two_stage({"good": table, "lonely": one_arm}, treatment="conference")
    assert info.value.table == "lonely" and "table lonely" in str(info.value)


@pytest.mark.parametrize("measure", ["log_hazard_ratio", "log_rate_ratio", "log_risk_ratio", "risk_difference"])
def test_a_trial_without_events_is_named(measure):
    table = _small().assign(event=0, reoffences=0)
    with pytest.raises(DataError, match="no .* in either arm") as info:
        two_stage({"quiet": table}, measure=measure, treatment="conference")
    assert info.value.table == "quiet"


@pytest.mark.parametrize("measure", ["log_hazard_ratio", "log_rate_ratio"])
def test_no_events_in_one_arm_makes_the_ratio_infinite(measure):
    table = _small()
    table.loc[table.arm == "conference", ["event", "reoffences"]] = 0
    with pytest.raises(DataError, match="no .* in arm 'conference'") as info:
        two_stage({"half": table}, measure=measure, treatment="conference")
    assert info.value.table == "half"


def test_a_zero_cell_gets_the_half_correction_for_risk_measures():
    table = _small()
    table.loc[table.arm == "conference", "event"] = 0
    es = two_stage({"half": table}, measure="log_odds_ratio", treatment="conference")
    c = float((table.loc[table.arm == "control", "event"] > 0).sum())
    n1, n2 = (table.arm == "conference").sum(), (table.arm == "control").sum()
    a, b, d = 0.5, n1 + 0.5, n2 - c + 0.5  # metafor's add = 1/2, to = "only0"
    assert es.loc["half", "estimate"] == pytest.approx(np.log(a * d / (b * (c + 0.5))), rel=1e-13)


def test_errors_of_the_per_trial_analysis_name_the_trial():
    table = _small()
    table.loc[3, ["time_at_risk", "exposure_days"]] = 0  # rate_ratio refuses zero street time (custody throughout)
    with pytest.raises(DataError, match="exposure is 0") as info:
        two_stage({"custody": table}, measure="log_rate_ratio", treatment="conference")
    assert info.value.table == "custody" and info.value.column == "exposure_days"


def test_arms_must_be_said_when_no_arm_is_called_control():
    table = FOLLOWUP[FOLLOWUP.trial == "canberra-violence"]
    with pytest.raises(ValueError, match="'conference', 'court'.*control="):
        two_stage({"canberra": table}, measure="log_risk_ratio")
    with pytest.raises(ValueError, match="treatment='rj' is not an arm"):
        two_stage({"canberra": table}, treatment="rj")
    with pytest.raises(ValueError, match="without trial 'canberra'"):
        two_stage({"canberra": table}, control={"other": "court"})


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="measure='log_hr'"):
        two_stage(FOLLOWUP, measure="log_hr")
    with pytest.raises(ValueError, match="count_model='zip'"):
        two_stage(FOLLOWUP, measure="log_rate_ratio", count_model="zip")
    with pytest.raises(DataError, match="'trial' column"):
        two_stage(FOLLOWUP.drop(columns="trial"))
    with pytest.raises(DataError, match="missing column.*'reoffences'") as info:
        two_stage({"x": _small().drop(columns="reoffences")}, measure="log_rate_ratio", treatment="conference")
    assert info.value.table == "x"
    with pytest.raises(TypeError, match="mapping"):
        two_stage([_small()])
    with pytest.raises(ValueError, match="unadjusted"):
        two_stage({"x": _small()}, measure="log_risk_ratio", covariates=["age"])


def test_warnings_of_a_trial_fit_name_the_trial():
    # Underdispersed counts: the negative binomial likelihood is largest at no overdispersion and
    # rate_ratio reports the Poisson fit with a FallbackWarning
    table = pd.DataFrame(
        {
            "arm": ["control", "conference"] * 5,
            "reoffences": [1, 1, 1, 1, 2, 1, 1, 1, 2, 1],
            "exposure_days": [365] * 10,
        }
    )
    with pytest.warns(FallbackWarning, match="trial 'flat': .*no overdispersion"):
        two_stage({"flat": table}, measure="log_rate_ratio")


# ------------------------------------------------ careless codes: no silent wrong answer
@pytest.mark.parametrize(
    "measure, column, cell, message",
    [
        ("log_hazard_ratio", "event", "maybe", r"0 or 1 \(or False/True\)"),
        ("log_hazard_ratio", "event", 2, r"0 or 1 \(or False/True\)"),
        ("log_risk_ratio", "event", "yes", r"0 or 1 \(or False/True\)"),
        ("risk_difference", "event", None, "missing"),
        ("log_hazard_ratio", "time_at_risk", "long", "numeric"),
        ("log_rate_ratio", "reoffences", "three", "numeric"),
        ("log_rate_ratio", "reoffences", 1.5, "whole number"),
        ("log_rate_ratio", "exposure_days", -4, "negative"),
        ("log_odds_ratio", "arm", None, "missing"),
    ],
)
def test_a_bad_cell_of_a_trial_is_named_by_trial_row_and_column(measure, column, cell, message):
    # meta/ipd.py read event with astype(bool) ("maybe" and 2 were reoffences) and the counts
    # with to_numeric(errors="coerce") (a bad count was silently left out of the totals)
    table = _small().astype({column: object})
    table.loc[6, column] = cell
    with pytest.raises(DataError, match=message) as info:
        two_stage({"good": _small(), "careless": table}, measure=measure, treatment="conference")
    assert (info.value.table, info.value.row, info.value.column) == ("careless", 6, column)


def test_event_as_text_false_is_not_a_reoffence():
    table = _small()
    as_text = table.assign(event=table["event"].map({0: "False", 1: "True", False: "False", True: "True"}))
    expected = two_stage({"t": table}, measure="log_risk_ratio", treatment="conference")
    got = two_stage({"t": as_text}, measure="log_risk_ratio", treatment="conference")
    pd.testing.assert_frame_equal(got, expected)


def test_duplicate_participants_within_a_trial_are_refused():
    table = _small()
    table.loc[9, "id"] = table.loc[2, "id"]
    with pytest.raises(DataError, match="duplicate participant id") as info:
        two_stage({"twice": table}, treatment="conference")
    assert (info.value.table, info.value.row, info.value.column) == ("twice", 9, "id")
