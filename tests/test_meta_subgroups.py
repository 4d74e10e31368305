"""rjtrial.meta.subgroups: subgroup table and test of subgroup differences (R agreement: tests/validation/)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial import effects
from rjtrial.errors import DataError
from rjtrial.meta import pool

BCG = pd.read_csv(Path(__file__).parent / "reference" / "metadat_bcg.csv")


@pytest.fixture(scope="module")
def log_rr() -> pd.DataFrame:
    es = effects.log_risk_ratio(
        BCG,
        events_treatment="tpos",
        n_treatment=BCG.tpos + BCG.tneg,
        events_control="cpos",
        n_control=BCG.cpos + BCG.cneg,
        study="author",
    )
    return es.assign(alloc=BCG.alloc.to_numpy(), ablat=BCG.ablat.to_numpy())


@pytest.mark.parametrize("method", ["REML", "DL", "FE"])
def test_separate_subgroups_are_separate_pools(log_rr, method):
    res = pool(log_rr, method=method, subgroup="alloc")
    for level, row in res.subgroups.iterrows():
        alone = pool(log_rr[log_rr.alloc == level], method=method)
        assert row["estimate"] == pytest.approx(alone.estimate, abs=1e-14)
        assert row["tau2"] == pytest.approx(alone.tau2, abs=1e-14)
        assert res.subgroup_results[level].k == row["k"]
    assert res.subgroups.attrs["subgroup_tau2"] == "separate"
    assert res.subgroup_test.df == 2 and res.subgroup_test.distribution == "chi2"


@pytest.mark.parametrize("test", ["z", "knha"])
def test_common_tau2_test_is_the_meta_regression_omnibus_test(log_rr, test):
    grouped = pool(log_rr, subgroup="alloc", subgroup_tau2="common", test=test)
    regression = pool(log_rr, moderators="alloc", test=test)
    assert grouped.subgroup_test.statistic == pytest.approx(regression.moderator_test.statistic, rel=1e-10)
    assert grouped.subgroup_test.p_value == pytest.approx(regression.moderator_test.p_value, rel=1e-9)
    assert grouped.subgroup_test.distribution == ("F" if test == "knha" else "chi2")
    assert grouped.subgroups["tau2"].iloc[0] == pytest.approx(regression.tau2, abs=1e-12)
    # the cell means are intercept + dummy coefficients of the meta-regression
    b = regression.coefficients
    np.testing.assert_allclose(grouped.subgroups["estimate"], [b[0], b[0] + b[1], b[0] + b[2]], rtol=1e-10)
    assert grouped.subgroup_results is None


def test_labels_may_be_an_array_or_series(log_rr):
    by_column = pool(log_rr, subgroup="alloc")
    by_array = pool(log_rr, subgroup=log_rr.alloc.to_numpy())
    by_series = pool(log_rr, subgroup=log_rr.alloc)
    assert by_array.subgroup_test.statistic == by_column.subgroup_test.statistic
    assert by_series.subgroup_test.statistic == by_column.subgroup_test.statistic


def test_one_subgroup_is_refused(log_rr):
    with pytest.raises(ValueError, match="at least two subgroups"):
        pool(log_rr, subgroup=np.repeat("all", 13))


def test_missing_label_names_the_study(log_rr):
    labels = log_rr.alloc.where(log_rr.index != "Aronson")
    with pytest.raises(DataError, match="missing subgroup label") as info:
        pool(log_rr, subgroup=labels)
    assert info.value.row == "Aronson"


def test_mantel_haenszel_subgroups_are_separate_only(log_rr):
    res = pool(log_rr, method="MH", subgroup="alloc")
    alone = pool(log_rr[log_rr.alloc == "random"], method="MH")
    assert res.subgroups.loc["random", "estimate"] == pytest.approx(alone.estimate, abs=1e-14)
    with pytest.raises(ValueError, match="needs an inverse-variance method"):
        pool(log_rr, method="MH", subgroup="alloc", subgroup_tau2="common")


def test_a_single_study_subgroup_with_knapp_hartung_has_no_test(log_rr):
    labels = np.where(np.arange(13) == 0, "first", "rest")
    res = pool(log_rr, subgroup=labels, test="knha")
    assert res.subgroups.loc["first", "k"] == 1 and np.isnan(res.subgroups.loc["first", "std_error"])
    assert np.isnan(res.subgroup_test.statistic)
    z = pool(log_rr, subgroup=labels)  # with z the single study has its own SE and the test exists
    assert np.isfinite(z.subgroup_test.statistic)
