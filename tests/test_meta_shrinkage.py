"""rjtrial.meta.shrinkage: blup() and ranef() (agreement with metafor is in tests/validation/)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from rjtrial import datasets, effects
from rjtrial.meta import blup, pool, pool_multilevel, ranef


@pytest.fixture(scope="module")
def es():
    bcg = datasets.load_bcg()
    return effects.log_risk_ratio(
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
        study="author",
    )


def test_blup_is_the_fit_plus_ranef(es):
    res = pool(es)
    np.testing.assert_allclose(blup(res).estimate, res.estimate + ranef(res).estimate, atol=1e-14)


def test_shrinkage_is_towards_the_mean(es):
    res = pool(es)
    b = blup(res).estimate.to_numpy()
    assert np.all(np.abs(b - res.estimate) <= np.abs(res.yi - res.estimate) + 1e-15)


def test_fixed_effect_random_effects_are_zero(es):
    r = ranef(pool(es, method="FE"))
    assert (r.estimate == 0).all() and (r.std_error == 0).all()


def test_refusals(es):
    with pytest.raises(ValueError, match="inverse-variance"):
        blup(pool(es, method="MH"))
    with pytest.raises(ValueError, match="user weights"):
        blup(pool(es, weights=np.arange(1.0, 14.0)))
    with pytest.raises(TypeError):
        blup(es)


def test_multilevel_ranef_sums_to_the_blup_of_each_effect():
    """sigma_1^2-level and sigma_2^2-level predictions add up to M^-1-weighted residual shares."""
    dat = datasets.load_konstantopoulos2011()
    res = pool_multilevel(dat, levels=["district", "school"], profile=False)
    re = ranef(res)
    assert list(re) == ["district", "district/school"]
    assert len(re["district"]) == 11 and len(re["district/school"]) == 56
    # with a tiny district variance the district effects vanish
    assert isinstance(re["district/school"].index, pd.MultiIndex)
    assert np.all(re["district"].std_error < np.sqrt(res.sigma2[0]))
