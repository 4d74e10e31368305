"""rjtrial.effects: effect sizes from summary data (agreement with R is in tests/validation/)."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special, stats

from rjtrial import effects
from rjtrial.errors import DataError, RjtrialWarning

TWO_BY_TWO = [effects.log_odds_ratio, effects.log_risk_ratio, effects.risk_difference, effects.peto_log_odds_ratio]
COUNTS = dict(
    events_treatment=[4, 6, 3], n_treatment=[123, 306, 231], events_control=[11, 29, 11], n_control=[139, 303, 220]
)


def trials() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "name": ["Aronson", "Ferguson", "Rosenthal"],
            "a": [4, 6, 3],
            "n1": [123, 306, 231],
            "c": [11, 29, 11],
            "n2": [139, 303, 220],
        },
        index=[10, 20, 30],
    )


# --------------------------------------------------------------------------- inputs and output frame
@pytest.mark.parametrize("function", TWO_BY_TWO)
def test_binary_frame_has_estimate_variance_counts_and_measure(function):
    es = function(**COUNTS)
    assert list(es.columns) == [
        "estimate",
        "variance",
        "events_treatment",
        "n_treatment",
        "events_control",
        "n_control",
    ]
    assert es.attrs["measure"] == function.__name__
    assert isinstance(es.index, pd.RangeIndex)
    assert (es["variance"] > 0).all()


@pytest.mark.parametrize("function", TWO_BY_TWO)
def test_column_names_arrays_and_series_give_the_same_numbers(function):
    df = trials()
    by_name = function(df, events_treatment="a", n_treatment="n1", events_control="c", n_control="n2")
    by_series = function(events_treatment=df.a, n_treatment=df.n1, events_control=df.c, n_control=df.n2)
    by_list = function(**COUNTS)
    np.testing.assert_array_equal(by_name.estimate.to_numpy(), by_list.estimate.to_numpy())
    np.testing.assert_array_equal(by_series.variance.to_numpy(), by_list.variance.to_numpy())
    assert list(by_name.index) == [10, 20, 30]  # the data's index
    assert list(by_series.index) == [10, 20, 30]  # the Series' index


def test_study_labels_become_the_index():
    es = effects.log_odds_ratio(
        trials(), events_treatment="a", n_treatment="n1", events_control="c", n_control="n2", study="name"
    )
    assert list(es.index) == ["Aronson", "Ferguson", "Rosenthal"] and es.index.name == "study"


def test_scalars_broadcast():
    es = effects.hedges_g(
        mean_treatment=[1.0, 2.0], sd_treatment=1.0, n_treatment=20, mean_control=0.0, sd_control=1.0, n_control=20
    )
    assert len(es) == 2 and es.estimate[1] > es.estimate[0]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(events_treatment="nope"), "no such column"),
        (dict(events_treatment=[1, 2]), "has 2 values"),
    ],
)
def test_bad_inputs_raise_value_error(kwargs, match):
    args = {**dict(events_treatment="a", n_treatment="n1", events_control="c", n_control="n2"), **kwargs}
    with pytest.raises(ValueError, match=match):
        effects.log_odds_ratio(trials(), **args)


def test_column_name_without_data_is_an_error():
    with pytest.raises(ValueError, match="no data frame"):
        effects.log_odds_ratio(events_treatment="a", n_treatment=10, events_control=1, n_control=10)


# --------------------------------------------------------------------------- bad data names the row
def _counts(**changes):
    base = dict(
        events_treatment=[4, 6, 3],
        n_treatment=[123, 306, 231],
        events_control=[11, 29, 11],
        n_control=[139, 303, 220],
        study=["Aronson", "Ferguson", "Rosenthal"],
    )
    for key, (position, value) in changes.items():
        base[key] = list(base[key])
        base[key][position] = value
    return base


@pytest.mark.parametrize("function", TWO_BY_TWO)
@pytest.mark.parametrize(
    "changes,column,text",
    [
        (dict(events_treatment=(1, -2)), "events_treatment", "negative count"),
        (dict(events_control=(2, 300)), "events_control", "exceed n_control"),
        (dict(n_treatment=(1, 0), events_treatment=(1, 0)), "n_treatment", "group size must be positive"),
        (dict(events_control=(1, np.nan)), "events_control", "missing value"),
    ],
)
def test_bad_counts_name_the_study_row_and_column(function, changes, column, text):
    with pytest.raises(DataError, match=text) as info:
        function(**_counts(**changes), na_action="raise")
    position = next(iter(changes.values()))[0]
    assert info.value.row == ["Aronson", "Ferguson", "Rosenthal"][position]
    assert info.value.column == column and info.value.table == "effects"
    assert str(info.value).startswith(f"table effects, row {info.value.row}")


def test_zero_variance_names_the_row():
    # no events in either arm and no correction: the risk difference has variance 0
    with pytest.raises(DataError, match="sampling variance is 0") as info:
        effects.risk_difference(**_counts(events_treatment=(2, 0), events_control=(2, 0)), to="none")
    assert info.value.row == "Rosenthal"


def test_zero_cell_without_correction_is_an_error_naming_the_row():
    with pytest.raises(DataError, match="undefined without a correction") as info:
        effects.log_odds_ratio(**_counts(events_treatment=(0, 0)), to="none")
    assert info.value.row == "Aronson"


def test_peto_double_zero_is_missing_by_default_and_an_error_on_request():
    counts = _counts(events_treatment=(1, 0), events_control=(1, 0))
    es = effects.peto_log_odds_ratio(**counts)
    assert np.isnan(es.estimate["Ferguson"]) and np.isnan(es.variance["Ferguson"])
    with pytest.raises(DataError, match="Peto's variance is 0") as info:
        effects.peto_log_odds_ratio(**counts, drop_double_zero=False)
    assert info.value.row == "Ferguson"


@pytest.mark.parametrize("to", ["sometimes", "only0"])
def test_unknown_correction_target_lists_the_options(to):
    with pytest.raises(ValueError, match="'only_zero', 'all', 'if_any_zero', 'none'"):
        effects.log_odds_ratio(**COUNTS, to=to)


# --------------------------------------------------------------------------- zero-cell correction
def test_correction_goes_only_to_tables_with_a_zero_cell():
    es = effects.log_odds_ratio(
        events_treatment=[0, 5], n_treatment=[10, 10], events_control=[3, 3], n_control=[10, 10]
    )
    assert es.estimate[0] == pytest.approx(math.log(0.5 * 7.5 / (10.5 * 3.5)))
    assert es.variance[0] == pytest.approx(1 / 0.5 + 1 / 10.5 + 1 / 3.5 + 1 / 7.5)
    assert es.estimate[1] == pytest.approx(math.log(5 * 7 / (5 * 3)))  # untouched
    assert es.attrs["zero_cell_correction"] == {"add": 0.5, "to": "only_zero", "drop_double_zero": False}


def test_correction_to_all_and_if_any_zero():
    args = dict(events_treatment=[0, 5], n_treatment=[10, 10], events_control=[3, 3], n_control=[10, 10])
    every = effects.log_odds_ratio(**args, to="all")
    assert every.estimate[1] == pytest.approx(math.log(5.5 * 7.5 / (5.5 * 3.5)))
    if_any = effects.log_odds_ratio(**args, to="if_any_zero")
    np.testing.assert_allclose(if_any.estimate, every.estimate)
    none_zero = effects.log_odds_ratio(
        events_treatment=[1, 5], n_treatment=[10, 10], events_control=[3, 3], n_control=[10, 10], to="if_any_zero"
    )
    assert none_zero.estimate[0] == pytest.approx(math.log(1 * 7 / (9 * 3)))


def test_double_zero_tables_can_be_dropped():
    args = dict(events_treatment=[0, 5], n_treatment=[10, 10], events_control=[0, 3], n_control=[10, 10])
    kept = effects.log_risk_ratio(**args)
    assert kept.estimate[0] == pytest.approx(0.0)  # 0.5/10.5 vs 0.5/10.5
    dropped = effects.log_risk_ratio(**args, drop_double_zero=True)
    assert np.isnan(dropped.estimate[0]) and np.isnan(dropped.variance[0])
    assert dropped.estimate[1] == kept.estimate[1]
    assert dropped.n_treatment[0] == 10  # counts are kept for Mantel-Haenszel pooling


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(0, 40), st.integers(1, 40), st.integers(0, 40))
def test_swapping_arms_negates_the_effect_and_keeps_the_variance(a, b, c, d):
    forward = dict(events_treatment=[a], n_treatment=[a + b], events_control=[c], n_control=[c + d])
    backward = dict(events_treatment=[c], n_treatment=[c + d], events_control=[a], n_control=[a + b])
    for function in (effects.log_odds_ratio, effects.log_risk_ratio, effects.risk_difference):
        one, other = function(**forward), function(**backward)
        assert one.estimate[0] == pytest.approx(-other.estimate[0], abs=1e-12)
        assert one.variance[0] == pytest.approx(other.variance[0], rel=1e-12)


# --------------------------------------------------------------------------- standardised mean differences
SMD = dict(
    mean_treatment=[55, 27],
    sd_treatment=[47, 7],
    n_treatment=[155, 31],
    mean_control=[75, 29],
    sd_control=[64, 4],
    n_control=[156, 32],
)


@pytest.mark.parametrize("m", [2, 5, 10, 38, 100, 1000])
def test_exact_correction_factor(m):
    exact = special.gamma(m / 2) / (math.sqrt(m / 2) * special.gamma((m - 1) / 2)) if m < 300 else None
    j = float(effects.correction_factor(m))
    if exact is not None:
        assert j == pytest.approx(exact, rel=1e-12)
    assert j == pytest.approx(1 - 3 / (4 * m - 1), abs=0.05 / m**2)  # Hedges' approximation


def test_hedges_g_is_corrected_cohens_d():
    g, d = effects.hedges_g(**SMD), effects.cohens_d(**SMD)
    m = np.array([155 + 156 - 2, 31 + 32 - 2])
    np.testing.assert_allclose(g.estimate, effects.correction_factor(m) * d.estimate, rtol=1e-14)
    n = np.array([311, 63])
    np.testing.assert_allclose(
        g.variance, 1 / np.array([155, 31]) + 1 / np.array([156, 32]) + g.estimate**2 / (2 * n), rtol=1e-14
    )
    assert g.attrs["measure"] == "hedges_g" and d.attrs["measure"] == "cohens_d"


def test_smd_from_t_and_p_agree_with_means():
    d = effects.cohens_d(**SMD)
    n1, n2 = np.array(SMD["n_treatment"]), np.array(SMD["n_control"])
    t = d.estimate.to_numpy() / np.sqrt(1 / n1 + 1 / n2)
    from_t = effects.smd_from_t(t_statistic=t, n_treatment=n1, n_control=n2)
    np.testing.assert_allclose(from_t.estimate, effects.hedges_g(**SMD).estimate, rtol=1e-12)
    p = 2 * stats.t.sf(np.abs(t), n1 + n2 - 2)
    from_p = effects.smd_from_p(p_value=p, sign=np.sign(t), n_treatment=n1, n_control=n2)
    np.testing.assert_allclose(from_p.estimate, from_t.estimate, rtol=1e-9)
    greater = effects.smd_from_p(
        p_value=stats.t.sf(t, n1 + n2 - 2), n_treatment=n1, n_control=n2, alternative="greater"
    )
    less = effects.smd_from_p(p_value=stats.t.cdf(t, n1 + n2 - 2), n_treatment=n1, n_control=n2, alternative="less")
    np.testing.assert_allclose(greater.estimate, from_t.estimate, rtol=1e-9)
    np.testing.assert_allclose(less.estimate, from_t.estimate, rtol=1e-9)


def test_two_sided_p_needs_a_sign():
    with pytest.raises(ValueError, match="give sign"):
        effects.smd_from_p(p_value=[0.03], n_treatment=[20], n_control=[20])
    with pytest.raises(ValueError, match="'two-sided', 'greater', 'less'"):
        effects.smd_from_p(p_value=[0.03], n_treatment=[20], n_control=[20], alternative="bigger")


@pytest.mark.parametrize(
    "changes,column,text",
    [
        (dict(sd_control=[64, -1]), "sd_control", "negative standard deviation"),
        (dict(sd_treatment=[47, 0], sd_control=[64, 0]), "sd_treatment", "both standard deviations are 0"),
        (dict(n_treatment=[155, 1], n_control=[156, 1]), "n_control", "at least 4 participants"),
        (dict(mean_control=[75, np.nan]), "mean_control", "missing value"),
    ],
)
def test_bad_smd_inputs_name_the_row(changes, column, text):
    with pytest.raises(DataError, match=text) as info:
        effects.hedges_g(**{**SMD, **changes}, study=["Edinburgh", "Orpington"], na_action="raise")
    assert info.value.row == "Orpington" and info.value.column == column


def test_bad_p_value_names_the_row():
    with pytest.raises(DataError, match="not in \\(0, 1\\]") as info:
        effects.smd_from_p(p_value=[0.2, 0.0], sign=[1, 1], n_treatment=[20, 20], n_control=[20, 20])
    assert info.value.row == 1 and info.value.column == "p_value"


# --------------------------------------------------------------------------- hazard ratios
def test_log_hazard_ratio_from_confidence_interval_round_trips():
    log_hr = np.array([-0.3, 0.1, 0.7])
    se = np.array([0.12, 0.3, 0.05])
    z = stats.norm.isf(0.025)
    es = effects.log_hazard_ratio(
        hazard_ratio=np.exp(log_hr), ci_lower=np.exp(log_hr - z * se), ci_upper=np.exp(log_hr + z * se)
    )
    np.testing.assert_allclose(es.estimate, log_hr, rtol=1e-14)
    np.testing.assert_allclose(es.variance, se**2, rtol=1e-12)
    z90 = stats.norm.isf(0.05)
    es90 = effects.log_hazard_ratio(
        hazard_ratio=np.exp(log_hr), ci_lower=np.exp(log_hr - z90 * se), ci_upper=np.exp(log_hr + z90 * se), alpha=0.10
    )
    np.testing.assert_allclose(es90.variance, se**2, rtol=1e-12)


@pytest.mark.parametrize(
    "hr,lower,upper,text,column",
    [
        (0.5, 0.6, 0.9, "does not contain the hazard ratio", "hazard_ratio"),
        (0.95, 0.6, 0.9, "does not contain the hazard ratio", "hazard_ratio"),
        (0.7, 0.9, 0.6, "is not below ci_upper", "ci_lower"),
        (0.7, 0.0, 0.9, "must be positive", "ci_lower"),
        (-0.7, 0.5, 0.9, "must be positive", "hazard_ratio"),
    ],
)
def test_bad_hazard_ratio_inputs_name_the_row(hr, lower, upper, text, column):
    with pytest.raises(DataError, match=text) as info:
        effects.log_hazard_ratio(
            hazard_ratio=[0.8, hr], ci_lower=[0.7, lower], ci_upper=[0.9, upper], study=["RISE", "JRC London"]
        )
    assert info.value.row == "JRC London" and info.value.column == column


def test_log_hazard_ratio_from_logrank():
    es = effects.log_hazard_ratio_logrank(observed_minus_expected=[-4.0, 2.0], logrank_variance=[16.0, 8.0])
    np.testing.assert_allclose(es.estimate, [-0.25, 0.25])
    np.testing.assert_allclose(es.variance, [1 / 16, 1 / 8])
    with pytest.raises(DataError, match="must be positive") as info:
        effects.log_hazard_ratio_logrank(observed_minus_expected=[-4.0, 2.0], logrank_variance=[16.0, 0.0])
    assert info.value.row == 1 and info.value.column == "logrank_variance"


# --------------------------------------------------------------------------- rates
def test_log_incidence_rate_ratio_and_its_checks():
    es = effects.log_incidence_rate_ratio(
        events_treatment=[9, 0],
        person_time_treatment=[413, 200],
        events_control=[19, 4],
        person_time_control=[398, 210],
    )
    assert es.estimate[0] == pytest.approx(math.log(9 / 413) - math.log(19 / 398))
    assert es.variance[1] == pytest.approx(1 / 0.5 + 1 / 4.5)  # zero count corrected
    with pytest.raises(DataError, match="person-time must be positive") as info:
        effects.log_incidence_rate_ratio(
            events_treatment=[9, 1],
            person_time_treatment=[413, 0],
            events_control=[19, 4],
            person_time_control=[398, 210],
        )
    assert info.value.row == 1 and info.value.column == "person_time_treatment"


# --------------------------------------------------------------------------- conversions
@pytest.mark.parametrize("method,factor", [("logistic", math.pi / math.sqrt(3)), ("cox", 1.65)])
def test_d_and_log_odds_ratio_conversions_round_trip(method, factor):
    d = effects.cohens_d(**SMD)
    lor = effects.d_to_log_odds_ratio(d, method=method)
    np.testing.assert_allclose(lor.estimate, factor * d.estimate)
    np.testing.assert_allclose(lor.variance, factor**2 * d.variance)
    back = effects.log_odds_ratio_to_d(lor, method=method)
    np.testing.assert_allclose(back.estimate, d.estimate, rtol=1e-14)
    assert lor.attrs["measure"] == "log_odds_ratio" and back.attrs["measure"] == "cohens_d"


def test_conversion_checks_measure_and_method():
    with pytest.raises(ValueError, match="needs one of hedges_g, cohens_d"):
        effects.d_to_log_odds_ratio(effects.log_odds_ratio(**COUNTS))
    with pytest.raises(ValueError, match="'logistic', 'cox'"):
        effects.d_to_log_odds_ratio(effects.cohens_d(**SMD), method="probit")


# --------------------------------------------------------------------------- doctests
@pytest.mark.parametrize("name", ["binary", "continuous", "time_to_event", "rates", "conversions"])
def test_docstring_examples_run(name):
    module = importlib.import_module(f"rjtrial.effects.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("events_treatment", 2.5, "whole number"),
        ("n_control", 40.5, "whole number"),
        ("events_control", "4", "must be numeric, found '4'"),
        ("events_treatment", True, "must be numeric, found True"),
    ],
)
def test_counts_must_be_whole_numbers_and_numbers(column, value, message):
    # a fractional count was pooled as given, text was coerced, True counted as 1 event
    table = pd.DataFrame(
        {
            "events_treatment": [3, 2, 6],
            "n_treatment": [50, 40, 60],
            "events_control": [5, 4, 9],
            "n_control": [50, 40, 60],
        },
        index=["A", "B", "C"],
        dtype=object,
    )
    table.loc["B", column] = value
    with pytest.raises(DataError, match=message) as info:
        effects.log_risk_ratio(
            table,
            events_treatment="events_treatment",
            n_treatment="n_treatment",
            events_control="events_control",
            n_control="n_control",
        )
    assert (info.value.table, info.value.row, info.value.column) == ("effects", "B", column)


def test_rate_events_must_be_whole_numbers():
    with pytest.raises(DataError, match="whole number") as info:
        effects.log_incidence_rate_ratio(
            events_treatment=[3, 1.5],
            person_time_treatment=[100.5, 80.25],
            events_control=[4, 2],
            person_time_control=[90, 70],
        )
    assert (info.value.row, info.value.column) == (1, "events_treatment")


# --------------------------------------------------------------------------- na_action
@pytest.mark.parametrize("function", TWO_BY_TWO)
def test_a_missing_count_is_omitted_counted_and_warned_by_default(function):
    with pytest.warns(RjtrialWarning, match=r"1 of 3 studies omitted .*Ferguson \(events_control\)"):
        es = function(**_counts(events_control=(1, np.nan)))
    assert np.isnan(es.loc["Ferguson", "estimate"]) and np.isnan(es.loc["Ferguson", "variance"])
    assert es[["estimate", "variance"]].drop(index="Ferguson").notna().all().all()
    assert es.attrs["n_omitted"] == 1
    assert es.attrs["omitted"] == [{"study": "Ferguson", "column": "events_control"}]


def test_omitted_studies_are_counted_again_by_pool():
    from rjtrial.meta import pool

    with pytest.warns(RjtrialWarning):
        es = effects.hedges_g(**{**SMD, "mean_control": [75, np.nan]}, study=["Edinburgh", "Orpington"])
    with pytest.warns(RjtrialWarning, match="Orpington"):
        res = pool(es, method="FE")
    assert res.k == 1 and res.n_omitted == 1


def test_nothing_missing_records_zero_omitted():
    es = effects.log_odds_ratio(**COUNTS)
    assert es.attrs["n_omitted"] == 0 and es.attrs["omitted"] == []


def test_unknown_na_action_lists_the_options():
    with pytest.raises(ValueError, match="'omit', 'raise'"):
        effects.log_odds_ratio(**COUNTS, na_action="drop")
