"""Best linear unbiased predictions: each study's true effect (``blup``) and its random effect
(``ranef``), as metafor's ``blup()`` and ``ranef()``.

A random-effects model shrinks each study's estimate towards the fitted mean by
``lambda_i = tau^2 / (tau^2 + v_i)``: precise studies keep their own estimate, imprecise ones
are pulled in. For a small RJ review this is the "what did this trial probably achieve" table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.meta.result import MetaResult

COLUMNS = ("estimate", "std_error", "pi_lower", "pi_upper")


def _critical(alpha: float, df) -> float:
    return float(stats.norm.isf(alpha / 2) if df is None else stats.t.isf(alpha / 2, df))


def _check(result: MetaResult, verb: str) -> None:
    if not isinstance(result, MetaResult):
        raise TypeError(f"{verb} needs a MetaResult from rjtrial.meta.pool, not {type(result).__name__}")
    if result.method in ("MH", "Peto"):
        raise ValueError(f"{verb} needs an inverse-variance model, not method={result.method!r}")
    if result.data_.weights is not None:
        raise ValueError(f"{verb} is not available for models with user weights (as metafor)")


def _frame(result, pred, se, crit) -> pd.DataFrame:
    frame = pd.DataFrame(
        {"estimate": pred, "std_error": se, "pi_lower": pred - crit * se, "pi_upper": pred + crit * se},
        index=result.studies,
    )
    frame.attrs.update(alpha=result.alpha, method=result.method, test=result.test)
    return frame


def blup(result: MetaResult) -> pd.DataFrame:
    """Best linear unbiased predictions of each study's true effect.

    Parameters
    ----------
    result : MetaResult
        A random- or mixed-effects fit from :func:`rjtrial.meta.pool`.

    Returns
    -------
    pandas.DataFrame
        One row per study (NaN for studies left out): ``estimate`` (``lambda y_i + (1 -
        lambda) x_i' b``), ``std_error`` (``sqrt(lambda v_i + (1 - lambda)^2 x_i' V_b x_i)``),
        ``pi_lower, pi_upper`` (z, or t on the model's df). ``attrs["alpha"]``.

    Notes
    -----
    Agrees with R ``metafor::blup(res)`` (pred, se, pi.lb, pi.ub) to 1e-9 on dat.bcg
    (tests/validation/test_metafor_options_bcg.py).

    References
    ----------
    Raudenbush, S. W., & Bryk, A. S. (1985). Empirical Bayes meta-analysis. Journal of
    Educational Statistics, 10(2), 75-98. doi:10.3102/10769986010002075

    Examples
    --------
    >>> from rjtrial import datasets, effects, meta
    >>> bcg = datasets.load_bcg()
    >>> es = effects.log_risk_ratio(bcg, events_treatment="tpos", n_treatment=bcg.tpos + bcg.tneg,
    ...                             events_control="cpos", n_control=bcg.cpos + bcg.cneg, study="author")
    >>> print(f"{meta.blup(meta.pool(es)).estimate.iloc[0]:.4f}")
    -0.8002
    """
    _check(result, "blup")
    lam = result.tau2 / (result.tau2 + result.vi)
    xb = result.X @ result.coefficients
    xvx = np.einsum("ij,jk,ik->i", result.X, result.vcov, result.X)
    pred = lam * result.yi + (1 - lam) * xb
    se = np.sqrt(lam * result.vi + (1 - lam) ** 2 * xvx)
    return _frame(result, pred, se, _critical(result.alpha, result.df))


def ranef(result) -> pd.DataFrame | dict[str, pd.DataFrame]:
    """Best linear unbiased predictions of the random effects (metafor's ``ranef``).

    Parameters
    ----------
    result : MetaResult or MultilevelResult

    Returns
    -------
    pandas.DataFrame or dict of DataFrame
        For :func:`rjtrial.meta.pool` fits, one row per study: ``estimate`` (``lambda (y_i -
        x_i' b)``), ``std_error`` (``sqrt(lambda v_i + lambda^2 x_i' V_b x_i)``), ``pi_lower,
        pi_upper``. For multilevel fits, one such frame per level (keyed ``"study"``,
        ``"study/es_id"``), one row per group, the prediction ``sigma^2 Z' M^-1 e`` with
        variance ``sigma^2 - sigma^4 Z' P Z``.

    Notes
    -----
    Agrees with R ``metafor::ranef(res)`` on ``rma.uni`` fits (dat.bcg) and on ``rma.mv`` fits
    (dat.konstantopoulos2011, a generated set) to 1e-6 (tests/validation/).

    Examples
    --------
    >>> from rjtrial import datasets, meta
    >>> res = meta.pool_multilevel(datasets.load_konstantopoulos2011(), levels=["district", "school"],
    ...                            profile=False)
    >>> print(f"{meta.ranef(res)['district'].estimate.iloc[0]:.4f}")
    -0.1900
    """
    from rjtrial.meta.multilevel import MultilevelResult

    if isinstance(result, MultilevelResult):
        return _ranef_multilevel(result)
    _check(result, "ranef")
    lam = result.tau2 / (result.tau2 + result.vi)
    resid = result.yi - result.X @ result.coefficients
    xvx = np.einsum("ij,jk,ik->i", result.X, result.vcov, result.X)
    pred = lam * resid
    se = np.sqrt(lam * result.vi + lam**2 * xvx)
    if result.is_fixed_effect:
        pred, se = np.where(np.isfinite(pred), 0.0, np.nan), np.where(np.isfinite(se), 0.0, np.nan)
    return _frame(result, pred, se, _critical(result.alpha, result.df))


def _ranef_multilevel(result) -> dict[str, pd.DataFrame]:
    from rjtrial.meta._blocks import Blocks

    blocks: Blocks = result.model_.blocks
    M = result.marginal_blocks(blocks)
    A = [np.linalg.inv(m) for m in M]
    X_b = blocks.gather(result.X_)
    e_b = blocks.gather(result.yi_ - result.X_ @ result.coefficients)
    C = result.vcov
    crit = _critical(result.alpha, result.df)
    out = {}
    frame_rows = result.frame_
    for level, s2 in enumerate(result.sigma2):
        codes = result.level_codes_[level]
        n_groups = int(codes.max()) + 1
        pred = np.zeros(n_groups)
        zaz = np.zeros(n_groups)
        zax = np.zeros((n_groups, len(C)))
        for batch, Ab, Xb, eb in zip(blocks.batches, A, X_b, e_b):
            g = codes[batch.rows]
            same = (g[:, :, None] == g[:, None, :]).astype(float)
            Ae = np.einsum("cij,cj->ci", Ab, eb)
            AX = Ab @ Xb
            # per row i: sum over its group's rows of (A e), of (A)_jl, and of (A X)_j
            group_ae = np.einsum("cij,cj->ci", same, Ae)
            group_aga = np.einsum("cij,cjl,cli->ci", same, Ab, same)
            group_ax = np.einsum("cij,cjp->cip", same, AX)
            first: dict[int, tuple[int, int]] = {}
            for c in range(g.shape[0]):
                for i in range(g.shape[1]):
                    first.setdefault(g[c, i], (c, i))
            for code, (c, i) in first.items():
                pred[code] = s2 * group_ae[c, i]
                zaz[code] = group_aga[c, i]
                zax[code] = group_ax[c, i]
        var = s2 - s2**2 * (zaz - np.einsum("gp,pq,gq->g", zax, C, zax))
        pred[np.abs(pred) < 100 * np.finfo(float).eps] = 0.0
        se = np.sqrt(np.maximum(var, 0.0))
        label = "/".join(result.levels[: level + 1])
        first_rows = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
        names = frame_rows[list(result.levels[: level + 1])].iloc[first_rows]
        index = names.iloc[:, 0] if level == 0 else pd.MultiIndex.from_frame(names)
        frame = pd.DataFrame(
            {"estimate": pred, "std_error": se, "pi_lower": pred - crit * se, "pi_upper": pred + crit * se},
            index=pd.Index(index) if level == 0 else index,
        )
        frame.attrs.update(alpha=result.alpha, level=label, sigma2=float(s2))
        out[label] = frame
    return out
