"""rjtrial.meta.permutation (exact agreement with metafor's permutest is in tests/validation/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rjtrial import datasets, effects
from rjtrial.meta import permutation_test, pool
from rjtrial.meta.permutation import _distinct_permutations, _sign_flip_statistics


@pytest.fixture(scope="module")
def es():
    bcg = datasets.load_bcg()
    out = effects.log_risk_ratio(
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
    )
    return out.assign(ablat=bcg.ablat.to_numpy())


@pytest.mark.parametrize("method", ["FE", "DL", "ML", "REML"])
@pytest.mark.parametrize("test", ["z", "knha", "adhoc", "t"])
def test_vectorised_sign_flips_equal_refits(es, method, test):
    res = pool(es.iloc[:8], method=method, test=test)
    rng = np.random.default_rng(1)
    signs = rng.choice([-1.0, 1.0], size=(40, 8))
    fast = _sign_flip_statistics(signs * res.yi[None, :], res.vi, res.options_)[:, 0]
    slow = [pool(es.iloc[:8].assign(estimate=s * res.yi), method=method, test=test).statistic for s in signs]
    np.testing.assert_allclose(fast, slow, rtol=1e-9, atol=1e-12)


def test_seeded_random_tests_repeat(es):
    res = pool(es, moderators="ablat")
    a = permutation_test(res, reps=200, rng=7)
    b = permutation_test(res, reps=200, rng=7)
    assert not a.exact and a.n_permutations == 200
    np.testing.assert_array_equal(a.p_values, b.p_values)
    assert a.moderator_p_value == b.moderator_p_value
    assert 0 < a.p_values[1] <= 1


def test_default_is_exact_when_small(es):
    perm = permutation_test(pool(es.iloc[:6]))
    assert perm.exact and perm.n_permutations == 64


def test_distinct_permutations_count():
    perms = list(_distinct_permutations(np.array([0, 0, 1, 2])))
    assert len(perms) == 12 and len({tuple(p) for p in perms}) == 12


def test_frames_format_json(es):
    perm = permutation_test(pool(es, moderators="ablat"), reps=50, rng=1)
    frame = perm.summary_frame()
    assert list(frame.columns) == ["term", "estimate", "statistic", "p_value", "model_p_value"]
    assert "approximate" in perm.format()
    json.dumps(perm.to_dict())


def test_bad_input(es):
    with pytest.raises(ValueError, match="reps"):
        permutation_test(pool(es), reps=1)
    with pytest.raises(TypeError):
        permutation_test(es)
    big = es.sample(n=26, replace=True, random_state=0).reset_index(drop=True)
    with pytest.raises(ValueError, match="too many"):
        permutation_test(pool(big), exact=True)
    with pytest.raises(ValueError, match="inverse-variance"):
        permutation_test(pool(es.assign(events_treatment=datasets.load_bcg().tpos.to_numpy()), method="MH"))
