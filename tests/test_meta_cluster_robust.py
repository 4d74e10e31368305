"""rjtrial.meta.cluster_robust: robust() (agreement with clubSandwich is in tests/validation/)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from rjtrial import datasets
from rjtrial.meta import pool, pool_multilevel, robust


@pytest.fixture(scope="module")
def assink():
    return datasets.load_assink2016()


@pytest.fixture(scope="module")
def model(assink):
    return pool_multilevel(assink, levels=["study", "esid"], moderators=["deltype", "year"], profile=False)


def _dense_sandwich(y, X, Phi, clusters, beta, adjust):
    """Textbook CR0/CR1/CR2 from dense matrices (Pustejovsky & Tipton 2018, eq. 5-6)."""
    W = np.linalg.inv(Phi)
    B = np.linalg.inv(X.T @ W @ X)
    e = y - X @ beta
    meat = np.zeros((X.shape[1],) * 2)
    labels = np.unique(clusters)
    for c in labels:
        j = clusters == c
        Xj, Wj, Pj, ej = X[j], W[np.ix_(j, j)], Phi[np.ix_(j, j)], e[j]
        if adjust == "CR2":
            U = np.linalg.cholesky(Pj).T
            G = U @ (Pj - Xj @ B @ Xj.T) @ U.T
            vals, vecs = np.linalg.eigh(G)
            inv_sqrt = np.where(vals > 1e-12, 1 / np.sqrt(np.where(vals > 1e-12, vals, 1)), 0.0)  # as clubSandwich
            A = U.T @ vecs @ np.diag(inv_sqrt) @ vecs.T @ U
        elif adjust == "CR1":
            A = np.sqrt(len(labels) / (len(labels) - 1)) * np.eye(j.sum())
        else:
            A = np.eye(j.sum())
        u = Xj.T @ Wj @ A @ ej
        meat += np.outer(u, u)
    return B @ meat @ B


@pytest.mark.parametrize("adjust", ["CR0", "CR1", "CR2"])
def test_block_sandwich_equals_the_dense_formula(model, adjust):
    k = model.k
    Phi = np.zeros((k, k))
    for level, s2 in enumerate(model.sigma2):
        codes = model.level_codes_[level]
        Phi += s2 * (codes[:, None] == codes[None, :])
    Phi += np.diag(model.vi_)
    rob = robust(model, adjust=adjust)
    dense = _dense_sandwich(model.yi_, model.X_, Phi, model.level_codes_[0], model.coefficients, adjust)
    np.testing.assert_allclose(rob.vcov, dense, rtol=1e-10, atol=1e-14)


def test_satterthwaite_df_from_the_dense_p_matrices(model):
    """df = tr(P)^2 / ||P||^2 with P formed explicitly (clubSandwich's get_P_array)."""
    rob = robust(model)
    fit = rob.sandwich_
    p = len(rob.coefficients)
    for i in range(p):
        C = np.zeros((1, p))
        C[0, i] = 1
        D, H = fit._pieces(C)
        P = np.diag(D[0, 0]) - H[0] @ H[0].T
        assert rob.df[i] == pytest.approx(np.trace(P) ** 2 / np.sum(P * P), rel=1e-10)


def test_frames_and_json(model):
    rob = robust(model)
    frame = rob.summary_frame()
    assert list(frame.columns) == [
        "term",
        "estimate",
        "std_error",
        "statistic",
        "df",
        "p_value",
        "ci_lower",
        "ci_upper",
    ]
    assert frame.attrs["cluster"] == "study" and frame.attrs["n_clusters"] == 17
    assert rob.moderator_test is not None and rob.moderator_test.df_numerator == 3
    assert "HTZ" in rob.format()
    json.dumps(rob.to_dict())


def test_wald_test_by_name_position_or_contrast(model):
    rob = robust(model)
    by_name = rob.wald_test(["deltype[general]", "deltype[overt]"])
    by_position = rob.wald_test([1, 2])
    C = np.zeros((2, 4))
    C[0, 1] = C[1, 2] = 1
    by_contrast = rob.wald_test(constraints=C)
    assert by_name.statistic == pytest.approx(by_position.statistic) == pytest.approx(by_contrast.statistic)
    one = rob.wald_test("year")  # one constraint: F = t^2, df as Satterthwaite's
    row = rob.summary_frame().set_index("term").loc["year"]
    assert one.statistic == pytest.approx(row.statistic**2, rel=1e-10)
    assert one.df_denominator == pytest.approx(row.df, rel=1e-10)


def test_pool_needs_a_cluster(assink):
    res = pool(assink)
    with pytest.raises(ValueError, match="give cluster"):
        robust(res)
    rob = robust(res, cluster=assink.study.to_numpy())
    assert rob.n_clusters == 17
    assert rob.summary_frame().estimate[0] == pytest.approx(res.estimate)


@pytest.mark.parametrize("cluster,message", [("nope", "not a column"), ("esid", "not nested")])
def test_bad_clusters(model, cluster, message):
    with pytest.raises(ValueError, match=message):
        robust(model, cluster=cluster)


def test_one_cluster_is_refused():
    es = pd.DataFrame(
        {"estimate": [0.1, 0.3, 0.2], "variance": [0.01, 0.02, 0.03], "study": ["a", "a", "a"], "es": [1, 2, 3]}
    )
    res = pool(es)
    with pytest.raises(ValueError, match="at least 2 clusters"):
        robust(res, cluster="study")


def test_mantel_haenszel_fits_are_refused():
    bcg = datasets.load_bcg()
    from rjtrial import effects

    es = effects.log_risk_ratio(
        bcg,
        events_treatment="tpos",
        n_treatment=bcg.tpos + bcg.tneg,
        events_control="cpos",
        n_control=bcg.cpos + bcg.cneg,
    )
    with pytest.raises(ValueError, match="inverse-variance"):
        robust(pool(es, method="MH"), cluster=bcg.alloc.to_numpy())


def test_unknown_adjustment(model):
    with pytest.raises(ValueError, match="adjust='CR3'"):
        robust(model, adjust="CR3")
