"""rjtrial.survival.ph_test: R cox.zph's test; why lifelines' proportional_hazard_test is not used."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi
from lifelines.statistics import proportional_hazard_test

from rjtrial.survival import cox, proportional_hazards_test

FORMULA = "fin + age + race + wexp + mar + paro + prio"


@pytest.fixture(scope="module")
def fit():
    return cox(load_rossi(), FORMULA, time="week", event="arrest")


def test_table_shape(fit):
    table = proportional_hazards_test(fit)
    assert list(table.index) == ["fin", "age", "race", "wexp", "mar", "paro", "prio", "GLOBAL"]
    assert list(table.columns) == ["statistic", "df", "p_value"]
    assert table.attrs["transform"] == "km"
    assert table.loc["GLOBAL", "df"] == 7
    assert ((table["p_value"] > 0) & (table["p_value"] <= 1)).all()


@pytest.mark.parametrize("transform", ["km", "rank", "identity", "log"])
def test_transforms_run(fit, transform):
    table = fit.proportional_hazards_test(transform=transform)
    assert np.isfinite(table["statistic"]).all()


def test_bad_transform(fit):
    with pytest.raises(ValueError, match="transform must be one of 'km', 'rank', 'identity', 'log'"):
        fit.proportional_hazards_test(transform="spline")


def test_identity_transform_is_invariant_to_shifting_time():
    # g(t) is centred, so adding a constant to every time changes nothing
    rossi = load_rossi()
    a = cox(rossi, "fin + age", time="week", event="arrest").proportional_hazards_test(transform="identity")
    b = cox(rossi.assign(week=rossi["week"] + 100), "fin + age", time="week", event="arrest")
    pd.testing.assert_frame_equal(a, b.proportional_hazards_test(transform="identity"), rtol=1e-9)


def test_lifelines_test_is_the_pre_3_0_approximation(fit):
    # lifelines' proportional_hazard_test implements the approximate test of survival < 3.0;
    # on Rossi its age statistic is 11.03 where R survival 3.x cox.zph (and we) give 5.97,
    # so rjtrial computes the test itself (agreement with R: tests/validation)
    rossi = load_rossi()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lifelines_fit = CoxPHFitter().fit(rossi, "week", "arrest")
        theirs = proportional_hazard_test(lifelines_fit, rossi, time_transform="km").summary
    lifelines_age = float(theirs.filter(like="age", axis=0)["test_statistic"].iloc[0])
    ours = proportional_hazards_test(fit)["statistic"]
    assert lifelines_age == pytest.approx(11.03, abs=0.01)
    assert ours["age"] == pytest.approx(5.974, abs=0.001)
