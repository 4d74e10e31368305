"""gray_test: Gray's k-sample test, vectorised, against a line-by-line port of cmprsk's loop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.survival import gray_test
from rjtrial.survival.gray_test import _stratum_score


def trial(seed: int = 3, n: int = 240) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "rj", "rj-plus"], n)
    latent = np.column_stack([rng.exponential(500, n) * np.where(arm == "control", 1.0, 1.4), rng.exponential(2500, n)])
    censor = np.where(rng.random(n) < 0.2, rng.uniform(0, 730, n), 730)
    first = latent.min(axis=1)
    return pd.DataFrame(
        {
            "days": np.floor(np.minimum(first, censor)),
            "outcome": np.where(first <= censor, latent.argmin(axis=1) + 1, 0),
            "arm": arm,
            "site": rng.choice(["north", "south"], n),
        }
    )


def crst_loop(y, m, ig, ng, rho):
    """cmprsk 2.2-11's Fortran ``crst``, statement by statement (0-based groups)."""
    ng1 = ng - 1
    rs = np.bincount(ig, minlength=ng).astype(float)
    s = np.zeros(ng1)
    v = np.zeros((ng1, ng1))
    f1m, f1, skmm, skm = np.zeros(ng), np.zeros(ng), np.ones(ng), np.ones(ng)
    v3, v2, c = np.zeros(ng), np.zeros((ng1, ng)), np.zeros((ng, ng))
    fm = f = 0.0
    order = np.argsort(y, kind="stable")
    y, m, ig = y[order], m[order], ig[order]
    n = len(y)
    ll = 0
    while ll < n:
        lu = ll
        while lu + 1 < n and y[lu + 1] == y[ll]:
            lu += 1
        d = np.zeros((3, ng))
        for i in range(ll, lu + 1):
            d[m[i], ig[i]] += 1
        nd1, nd2 = d[1].sum(), d[2].sum()
        if nd1 > 0 or nd2 > 0:
            tr = tq = 0.0
            for i in range(ng):
                if rs[i] <= 0:
                    continue
                td = d[1, i] + d[2, i]
                skm[i] = skmm[i] * (rs[i] - td) / rs[i]
                f1[i] = f1m[i] + skmm[i] * d[1, i] / rs[i]
                tr += rs[i] / skmm[i]
                tq += rs[i] * (1 - f1m[i]) / skmm[i]
            f = fm + nd1 / tr
            fb = (1 - fm) ** rho
            a = np.zeros((ng, ng))
            for i in range(ng):
                if rs[i] <= 0:
                    continue
                t1 = rs[i] / skmm[i]
                a[i, i] = fb * t1 * (1 - t1 / tr)
                if a[i, i] != 0:
                    c[i, i] += a[i, i] * nd1 / (tr * (1 - fm))
                for j in range(i + 1, ng):
                    if rs[j] <= 0:
                        continue
                    a[i, j] = -fb * t1 * rs[j] / (skmm[j] * tr)
                    if a[i, j] != 0:
                        c[i, j] += a[i, j] * nd1 / (tr * (1 - fm))
            for i in range(1, ng):
                for j in range(i):
                    a[i, j] = a[j, i]
                    c[i, j] = c[j, i]
            for i in range(ng1):
                if rs[i] > 0:
                    s[i] += fb * (d[1, i] - nd1 * rs[i] * (1 - f1m[i]) / (skmm[i] * tq))
            if nd1 > 0:
                for k in range(ng):
                    if rs[k] <= 0:
                        continue
                    t4 = 1 - (1 - f) / skm[k] if skm[k] > 0 else 1.0
                    t5 = 1 - (nd1 - 1) / (tr * skmm[k] - 1) if nd1 > 1 else 1.0
                    t3 = t5 * skmm[k] * nd1 / (tr * rs[k])
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = a[i, k] - t4 * c[i, k]
                        v2[i, k] += t1 * t4 * t3
                        for j in range(i + 1):
                            v[i, j] += t1 * (a[j, k] - t4 * c[j, k]) * t3
            if nd2 > 0:
                for k in range(ng):
                    if skm[k] <= 0 or d[2, k] <= 0:
                        continue
                    t4 = (1 - f) / skm[k]
                    t5 = 1 - (d[2, k] - 1) / (rs[k] - 1) if d[2, k] > 1 else 1.0
                    t3 = t5 * skmm[k] ** 2 * d[2, k] / rs[k] ** 2
                    v3[k] += t4 * t4 * t3
                    for i in range(ng1):
                        t1 = t4 * c[i, k]
                        v2[i, k] -= t1 * t4 * t3
                        for j in range(i + 1):
                            v[i, j] += t1 * t4 * c[j, k] * t3
        if lu + 1 >= n:
            break
        for i in range(ll, lu + 1):
            rs[ig[i]] -= 1
        fm = f
        f1m, skmm = f1.copy(), skm.copy()
        ll = lu + 1
    for i in range(ng1):
        for j in range(i + 1):
            for k in range(ng):
                v[i, j] += c[i, k] * c[j, k] * v3[k] + c[i, k] * v2[j, k] + c[j, k] * v2[i, k]
    v = np.tril(v) + np.tril(v, -1).T
    return s, v


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 10), st.integers(0, 2), st.integers(0, 2)), min_size=2, max_size=45),
    st.sampled_from([0.0, 1.0, 0.5]),
)
def test_vectorised_score_and_variance_equal_the_loop(rows, rho):
    # ties, groups that empty early or never have events, everyone failing, day 0
    y = np.array([r[0] for r in rows], dtype=float)
    m = np.array([r[1] for r in rows])
    ig = np.array([r[2] for r in rows])
    with np.errstate(divide="ignore", invalid="ignore"):
        s_loop, v_loop = crst_loop(y, m, ig, 3, rho)
    s, v = _stratum_score(y, m, ig, 3, rho)
    np.testing.assert_allclose(s, s_loop, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(v, v_loop, atol=1e-12, rtol=1e-10)


def test_groups_out_of_risk_once_the_incidence_passes_one():
    # everyone fails of the cause tested, the last group alone at risk: Gray's F sums past 1
    # there, (1 - F)^rho is NaN, and crst never uses it (the groups it would weight are out of risk)
    y, m, ig = np.array([0.0, 1, 2, 3]), np.array([1, 1, 1, 1]), np.array([0, 1, 2, 2])
    with np.errstate(divide="ignore", invalid="ignore"):
        s_loop, v_loop = crst_loop(y, m, ig, 3, 0.5)
    s, v = _stratum_score(y, m, ig, 3, 0.5)
    assert np.all(np.isfinite(s_loop)) and np.all(np.isfinite(v_loop))
    np.testing.assert_allclose(s, s_loop, atol=1e-12, rtol=1e-10)
    np.testing.assert_allclose(v, v_loop, atol=1e-12, rtol=1e-10)


def test_statistic_does_not_depend_on_the_order_of_groups():
    df = trial()
    a = gray_test(df, time="days", event="outcome", group="arm", cause=None).summary_frame()
    relabelled = df.assign(arm=pd.Categorical(df["arm"], categories=["rj-plus", "control", "rj"]))
    b = gray_test(relabelled, time="days", event="outcome", group="arm", cause=None).summary_frame()
    np.testing.assert_allclose(a["statistic"], b["statistic"], rtol=1e-10)
    assert (a["df"] == 2).all()


def test_one_stratum_is_the_unstratified_test():
    df = trial().assign(one="all")
    a = gray_test(df, time="days", event="outcome", group="arm").summary_frame()
    b = gray_test(df, time="days", event="outcome", group="arm", strata="one").summary_frame()
    np.testing.assert_allclose(a["statistic"], b["statistic"], rtol=1e-14)


def test_one_group_is_an_error_naming_the_column():
    with pytest.raises(DataError, match=r"column 'arm': needs at least two groups"):
        gray_test(trial().assign(arm="rj"), time="days", event="outcome", group="arm")


def test_singular_variance_is_said_not_hidden():
    # the second group is all censored before the first event: nothing to compare
    df = pd.DataFrame({"t": [1.0, 2, 3, 4, 0.5, 0.5], "e": [1, 2, 1, 0, 0, 0], "g": ["a"] * 4 + ["b"] * 2})
    with pytest.warns(RjtrialWarning, match="singular"):
        res = gray_test(df, time="t", event="e", group="g")
    assert np.isnan(res.summary_frame()["statistic"].iloc[0]) and "singular" in res.format()


def test_result_shape_format_and_json():
    res = gray_test(trial(), time="days", event="outcome", group="arm", cause=[1, 2], strata="site", rho=1)
    table = res.summary_frame()
    assert list(table.columns) == ["cause", "statistic", "df", "p_value"]
    assert table.attrs["rho"] == 1 and table.attrs["strata"] == "site"
    assert "stratified by site" in res.format() and "rho = 1" in res.format()
    json.dumps(res.to_dict(), allow_nan=False)


@pytest.mark.parametrize("rho", ["1", float("nan"), True])
def test_rho_must_be_a_number(rho):
    with pytest.raises(ValueError, match="rho"):
        gray_test(trial(), time="days", event="outcome", group="arm", rho=rho)
