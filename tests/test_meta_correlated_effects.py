"""rjtrial.meta.correlated_effects: rve() (agreement with robumeta is in tests/validation/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rjtrial import datasets
from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.meta import rve


@pytest.fixture(scope="module")
def assink():
    return datasets.load_assink2016()


def test_weights_are_equal_within_a_study(assink):
    res = rve(assink, cluster="study")
    w = res.weights
    per_study = assink.assign(w=w).groupby("study").w.nunique()
    assert (per_study == 1).all()
    k = assink.groupby("study").size()
    vbar = assink.groupby("study").variance.mean()
    expected = 1 / (k * (vbar + res.tau2))
    np.testing.assert_allclose(assink.assign(w=w).groupby("study").w.first(), expected, rtol=1e-12)


def test_the_estimate_is_the_weighted_mean(assink):
    res = rve(assink, cluster="study")
    assert res.estimate == pytest.approx(np.sum(res.weights * assink.estimate) / np.sum(res.weights), rel=1e-12)


def test_frames_format_json(assink):
    res = rve(assink, cluster="study", moderators="deltype")
    frame = res.summary_frame()
    assert list(frame.term) == ["intercept", "deltype[general]", "deltype[overt]"]
    assert frame.attrs["rho"] == 0.8 and frame.attrs["small"] is True
    text = res.format()
    assert "correlated effects" in text and "HTZ" in text
    json.dumps(res.to_dict())
    assert res.wald_test().df_numerator == 2


def test_large_sample_fit_has_no_htz(assink):
    res = rve(assink, cluster="study", small=False)
    assert res.robust.df[0] == 17 - 1
    with pytest.raises(ValueError, match="CR2"):
        res.wald_test(constraints=[[1.0]])


def test_omitted_rows_are_counted(assink):
    holed = assink.copy()
    holed.loc[0, ["estimate", "variance"]] = np.nan
    with pytest.warns(RjtrialWarning):
        res = rve(holed, cluster="study")
    assert res.n_omitted == 1 and res.k == 99 and np.isnan(res.weights[0])


@pytest.mark.parametrize(
    "kwargs,message", [({"rho": 1.5}, "rho"), ({"cluster": "nope"}, "nope"), ({"alpha": 2}, "alpha")]
)
def test_bad_arguments(assink, kwargs, message):
    with pytest.raises(ValueError, match=message):
        rve(assink, **{"cluster": "study", **kwargs})


def test_missing_cluster_label(assink):
    bad = assink.astype({"study": float})
    bad.loc[4, "study"] = np.nan
    with pytest.raises(DataError, match="row 4.*'study'"):
        rve(bad, cluster="study")
