"""rjtrial.meta.sensitivity: leave-one-out (fast path = refit loop), cumulative, influence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial import datasets, effects
from rjtrial.meta import pool
from rjtrial.meta.sensitivity import INFLUENCE_COLUMNS, LOO_COLUMNS, leave_one_out


def simulated(k, seed, *, tau=0.3):
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.5, k)
    yi = rng.normal(0.2, np.sqrt(vi + tau**2))
    return pd.DataFrame({"estimate": yi, "variance": vi}, index=[f"study {i}" for i in range(k)])


@pytest.fixture(scope="module")
def bcg():
    data = datasets.load_bcg()
    return effects.log_risk_ratio(
        data,
        events_treatment="tpos",
        n_treatment=data.tpos + data.tneg,
        events_control="cpos",
        n_control=data.cpos + data.cneg,
        study="author",
    )


@pytest.mark.parametrize("method", ["FE", "DL", "ML", "REML"])
@pytest.mark.parametrize("test", ["z", "knha"])
@pytest.mark.parametrize("case", [(40, 1, 0.3), (25, 2, 0.0), (60, 3, 0.05)], ids=["tau0.3", "tau0", "tau0.05"])
def test_fast_leave_one_out_agrees_with_the_refit_loop(method, test, case):
    k, seed, tau = case
    res = pool(simulated(k, seed, tau=tau), method=method, test=test)
    fast, loop = leave_one_out(res, fast=True), leave_one_out(res, fast=False)
    assert list(fast.columns) == list(LOO_COLUMNS)
    np.testing.assert_allclose(fast.to_numpy(), loop.to_numpy(), atol=1e-9, rtol=0)


def test_leave_one_out_method(bcg):
    res = pool(bcg, method="REML")
    frame = res.leave_one_out()
    assert frame.index.equals(res.studies) and frame.attrs["alpha"] == 0.05
    assert (frame["tau2"] >= 0).all()


@pytest.mark.parametrize("method", ["PM", "SJ", "HE"])
def test_other_estimators_use_the_refit_loop(bcg, method):
    res = pool(bcg, method=method)
    np.testing.assert_allclose(res.leave_one_out().to_numpy(), leave_one_out(res, fast=False).to_numpy())


def test_cumulative_ends_at_the_full_fit(bcg):
    res = pool(bcg, method="REML")
    cum = res.cumulative()
    assert list(cum["k"]) == list(range(1, 14))
    last = cum.iloc[-1]
    assert last["estimate"] == pytest.approx(res.estimate, abs=1e-12)
    assert last["tau2"] == pytest.approx(res.tau2, abs=1e-12)


def test_cumulative_order_by_year(bcg):
    data = datasets.load_bcg()
    res = pool(bcg, method="REML")
    cum = res.cumulative(order=data.year.to_numpy())
    assert cum.index[0] == "Aronson" and cum.index[-1] == "TPT Madras"


def test_cumulative_order_of_wrong_length(bcg):
    with pytest.raises(ValueError, match="one label or sort key per study"):
        pool(bcg, method="REML").cumulative(order=[1, 2])


def test_influence_columns_and_hat_values(bcg):
    res = pool(bcg, method="REML")
    inf = res.influence()
    assert list(inf.columns) == list(INFLUENCE_COLUMNS)
    assert inf["hat"].sum() == pytest.approx(1.0)  # trace of the hat matrix = p
    assert inf["weight"].sum() == pytest.approx(100.0)
    np.testing.assert_allclose(inf["tau2_deleted"], res.leave_one_out()["tau2"], atol=1e-9)


def test_docstring_examples_run():
    import doctest

    import rjtrial.meta.sensitivity as module

    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0
