"""rjtrial.meta.mantel_haenszel: Mantel-Haenszel and Peto pooling (R agreement: tests/validation/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import StratifiedTable

from rjtrial import effects
from rjtrial.meta import pool

REFERENCE = Path(__file__).parent / "reference"
BCG = pd.read_csv(REFERENCE / "metadat_bcg.csv")
COLLINS = pd.read_csv(REFERENCE / "metadat_collins1985a.csv").dropna(subset=["d.xti", "d.xci"])


def bcg(function):
    return function(
        BCG,
        events_treatment="tpos",
        n_treatment=BCG.tpos + BCG.tneg,
        events_control="cpos",
        n_control=BCG.cpos + BCG.cneg,
    )


def collins(function, **kwargs):
    return function(
        COLLINS, events_treatment="d.xti", n_treatment="nti", events_control="d.xci", n_control="nci", **kwargs
    )


def strata(es: pd.DataFrame) -> StratifiedTable:
    rows = es[["events_treatment", "n_treatment", "events_control", "n_control"]].to_numpy()
    return StratifiedTable([np.array([[a, n1 - a], [c, n2 - c]]) for a, n1, c, n2 in rows])


@pytest.mark.parametrize("es", [bcg(effects.log_odds_ratio), collins(effects.log_odds_ratio)], ids=["bcg", "collins"])
def test_mantel_haenszel_odds_ratio_agrees_with_statsmodels(es):
    ours = pool(es, method="MH")
    theirs = strata(es)
    assert ours.estimate == pytest.approx(theirs.logodds_pooled, abs=1e-13)
    assert ours.std_error == pytest.approx(theirs.logodds_pooled_se, abs=1e-13)  # Robins-Breslow-Greenland


def test_mantel_haenszel_risk_ratio_agrees_with_statsmodels():
    es = bcg(effects.log_risk_ratio)
    assert np.exp(pool(es, method="MH").estimate) == pytest.approx(strata(es).riskratio_pooled, rel=1e-13)


def test_mantel_haenszel_weights():
    es = bcg(effects.log_odds_ratio)
    b, c = es.n_treatment - es.events_treatment, es.events_control
    w = (b * c / (es.n_treatment + es.n_control)).to_numpy()
    np.testing.assert_allclose(pool(es, method="MH").weights, 100 * w / w.sum(), rtol=1e-13)


def test_peto_by_hand():
    es = effects.log_odds_ratio(
        events_treatment=[2, 5], n_treatment=[10, 20], events_control=[4, 5], n_control=[10, 20]
    )
    N, n1 = np.array([20, 40]), np.array([10, 20])
    events = np.array([6, 10])
    E = events * n1 / N
    V = events * (N - events) * n1 * (N - n1) / (N**2 * (N - 1))
    res = pool(es, method="Peto")
    assert res.estimate == pytest.approx(np.sum(np.array([2, 5]) - E) / V.sum(), rel=1e-14)
    assert res.std_error == pytest.approx(1 / np.sqrt(V.sum()), rel=1e-14)
    np.testing.assert_allclose(res.weights, 100 * V / V.sum())


def test_double_zero_tables_count_in_k_but_not_in_q():
    es = effects.log_odds_ratio(
        events_treatment=[2, 5, 0], n_treatment=[10, 20, 15], events_control=[4, 5, 0], n_control=[10, 20, 15]
    )
    for method in ("MH", "Peto"):
        res = pool(es, method=method)
        assert res.k == 3 and res.q_df == 1 and np.isnan(res.yi[2])
        assert res.weights[2] == 0  # no information about the odds ratio
    without = pool(es.iloc[:2], method="MH")
    assert pool(es, method="MH").estimate == pytest.approx(without.estimate, abs=1e-15)


def test_double_zero_tables_move_the_mantel_haenszel_risk_difference():
    es = effects.risk_difference(
        events_treatment=[2, 5, 0], n_treatment=[10, 20, 15], events_control=[4, 5, 0], n_control=[10, 20, 15]
    )
    with_zero, without = pool(es, method="MH"), pool(es.iloc[:2], method="MH")
    assert abs(with_zero.estimate) < abs(without.estimate)  # a zero difference with weight n1 n2 / N
    assert with_zero.weights[2] > 0


def test_undefined_mantel_haenszel_odds_ratio_is_an_error():
    es = effects.log_odds_ratio(
        events_treatment=[0, 0], n_treatment=[10, 20], events_control=[4, 5], n_control=[10, 20]
    )
    with pytest.raises(ValueError, match="odds ratio undefined"):
        pool(es, method="MH")


def test_mantel_haenszel_rate_ratio_by_hand():
    es = effects.log_incidence_rate_ratio(
        events_treatment=[9, 8],
        person_time_treatment=[413, 263],
        events_control=[19, 19],
        person_time_control=[398, 245],
    )
    T = np.array([811, 508])
    R = np.sum(np.array([9, 8]) * np.array([398, 245]) / T)
    S = np.sum(np.array([19, 19]) * np.array([413, 263]) / T)
    assert pool(es, method="MH").estimate == pytest.approx(np.log(R / S), rel=1e-14)
