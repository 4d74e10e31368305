"""The generator's compiled kernels (rjtrial/simulate/_kernels.py): the street clock.

The follow-up kernel is held to :func:`rjtrial.followup.build` on whole generated trials in
tests/test_simulate_replicates.py; here the street clock is held to a per-person reference.
"""

from __future__ import annotations

import numpy as np
import pytest

from rjtrial.simulate import _kernels


@pytest.mark.parametrize("seed", [3, 4])
def test_the_street_clock_matches_a_per_person_reference(seed):
    gen = np.random.default_rng(seed)
    n, history = 50, 400.0
    person = gen.integers(0, n, 300)
    point = gen.uniform(-history, 900, 300)
    point[:20] = point[20:40]  # ties between pauses
    length = gen.integers(1, 200, 300).astype(float)
    offsets, s, w, before0 = _kernels.sort_pauses(person, point, length, n)
    who = gen.integers(0, n, 2000)
    u = gen.uniform(-history, 1000, 2000)
    u[:50] = point[:50]  # at a pause: the pause itself is not before it

    def reference(p, x):
        mine = person == p
        return x + length[mine & (point < x)].sum() - length[mine & (point < 0)].sum()

    expected = np.array(
        [reference(p, x) for p, x in zip(who[:50], u[:50])] + [reference(p, x) for p, x in zip(who[50:], u[50:])]
    )
    got = _kernels.calendar(offsets, s, w, before0, np.concatenate([person[:50], who[50:]]), u)
    expected[:50] = [reference(p, x) for p, x in zip(person[:50], u[:50])]
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    for p in range(n):
        mine = slice(offsets[p], offsets[p + 1])
        assert (np.diff(s[mine]) >= 0).all()
        assert sorted(zip(point[person == p], length[person == p])) == sorted(zip(s[mine], w[mine]))


def test_latest_conviction_ignores_the_never_convicted():
    count = np.array([2, 0, 3])
    sigma = np.array([5.0, np.nan, np.nan, 9.0, 2.0])
    out = _kernels.latest_conviction(count, sigma, np.array([1.0, 7.0, 3.0]))
    assert out.tolist() == [5.0, 7.0, 9.0]


@pytest.mark.parametrize("mean", [0.0, 0.01, 0.7, 3.0, 29.9, 30.0, 45.5, 300.0, 2500.0])
def test_poisson_counts_invert_the_cdf_at_their_uniform(mean):
    """Exact inversion: each count x from uniform u has F(x - 1) <= u < F(x) (scipy's CDF)."""
    from scipy import stats

    u = np.random.default_rng(1).random(20_000)
    x = _kernels.poisson(np.full(u.size, mean), u)
    assert (stats.poisson.cdf(x - 1, mean) <= u + 1e-12).all() and (u < stats.poisson.cdf(x, mean) + 1e-12).all()
    assert (np.diff(_kernels.poisson(np.full(50, mean), np.linspace(0, 0.999, 50))) >= 0).all()  # monotone in u
