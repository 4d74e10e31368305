"""Negative binomial (NB2) rate ratios of many two-arm trials at once (Newton-Raphson, numpy).

The work behind :func:`rjtrial.survival.batched.negative_binomial_batch`, which validates
its input and documents the method; nothing here checks input.
"""

from __future__ import annotations

import numpy as np
from scipy import special


def fit(count, exposure, treatment, trial, n_trials: int, tol: float, max_iterations: int) -> dict[str, np.ndarray]:
    """Per trial: ``estimate, std_error, p_value, dispersion, n_iterations, converged``."""
    y = np.asarray(count, dtype=float)
    x = np.asarray(exposure, dtype=float)
    g = np.asarray(treatment, dtype=np.int64)
    t = np.asarray(trial, dtype=np.int64)
    T = int(n_trials)
    # rows alike in (trial, arm, exposure, count) contribute alike: fit the distinct ones, weighted
    # (most participants have the whole window at liberty and few reoffences)
    span_x, span_y = (float(v.max()) + 1.0 if v.size else 1.0 for v in (x, y))
    if (np.all(x == np.floor(x)) and np.all(y == np.floor(y)) and x.min(initial=0) >= 0 and y.min(initial=0) >= 0
            and 2.0 * T * span_x * span_y < 2.0**62):  # whole days and counts: one integer key sorts faster
        key = ((2 * t + g) * int(span_x) + x.astype(np.int64)) * int(span_y) + y.astype(np.int64)
        order = np.argsort(key, kind="stable")
    else:
        order = np.lexsort((y, x, g, t))
    t, g, x, y = t[order], g[order], x[order], y[order]
    first = np.ones(t.size, dtype=bool)
    first[1:] = (np.diff(t) != 0) | (np.diff(g) != 0) | (np.diff(x) != 0) | (np.diff(y) != 0)
    starts = np.flatnonzero(first)
    w = np.diff(np.append(starts, t.size)).astype(float)
    t, g, x, y = t[starts], g[starts], x[starts], y[starts]
    cell = 2 * t + g
    sum_y = np.bincount(cell, weights=w * y, minlength=2 * T).reshape(T, 2)
    sum_x = np.bincount(cell, weights=w * x, minlength=2 * T).reshape(T, 2)
    ok = np.all(sum_y > 0, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.where(ok[:, None], np.log(sum_y / sum_x), 0.0)  # Poisson estimates
    log_x = np.log(x)
    # moment estimate of alpha at the Poisson fit, clamped to a sensible start
    mu = x * np.exp(a[t, g])
    moment = np.bincount(t, weights=w * ((y - mu) ** 2 - y), minlength=T) / np.bincount(t, weights=w * mu * mu, minlength=T)
    omega = -np.log(np.clip(np.nan_to_num(moment, nan=1.0), 0.05, 20.0))  # log theta

    whole = bool(np.all(y == np.floor(y))) and y.size > 0 and y.max() <= 10_000
    k = y.astype(np.int64) if whole else None

    def gamma_terms(omega, order):
        """``lgamma(y + theta) - lgamma(theta)`` and its first ``order`` derivatives in theta, per row.

        For whole counts these are finite sums over ``j < y`` of ``log(theta + j)``,
        ``1/(theta + j)`` and ``-1/(theta + j)^2``, tabulated per trial by cumulative sums:
        exact, and far cheaper than digamma/trigamma (and stable as theta grows).
        """
        if not whole:
            theta = np.exp(omega)[t]
            out = [special.gammaln(y + theta) - special.gammaln(theta)]
            if order >= 1:
                out.append(special.digamma(y + theta) - special.digamma(theta))
            if order >= 2:
                out.append(special.polygamma(1, y + theta) - special.polygamma(1, theta))
            return out
        shifted = np.exp(omega)[:, None] + np.arange(int(k.max()), dtype=float)[None, :]
        pieces = [np.log(shifted), 1.0 / shifted, -1.0 / (shifted * shifted)][: order + 1]
        out = []
        for piece in pieces:
            table = np.zeros((T, piece.shape[1] + 1))
            np.cumsum(piece, axis=1, out=table[:, 1:])
            out.append(table[t, k])
        return out

    def loglik(a, omega):
        theta = np.exp(omega)[t]
        eta = log_x + a[t, g]
        mu = np.exp(eta)
        (lgamma_diff,) = gamma_terms(omega, 0)
        ll = lgamma_diff + theta * np.log(theta) - (theta + y) * np.log(theta + mu) + y * eta
        return np.bincount(t, weights=w * ll, minlength=T)

    active = ok.copy()
    converged = np.zeros(T, dtype=bool)
    iterations = np.zeros(T, dtype=np.int64)
    current = loglik(a, omega)
    for _ in range(max_iterations):
        if not active.any():
            break
        theta = np.exp(omega)[t]
        mu = x * np.exp(a[t, g])
        tm = theta + mu
        d_eta = theta * (y - mu) / tm
        h_eta = -(theta + y) * theta * mu / (tm * tm)
        _, digamma_diff, trigamma_diff = gamma_terms(omega, 2)
        d_theta = digamma_diff + np.log(theta) + 1.0 - np.log(tm) - (theta + y) / tm
        h_theta = trigamma_diff + 1.0 / theta - 1.0 / tm - (mu - y) / (tm * tm)
        h_cross = theta * (y - mu) * mu / (tm * tm)  # d2 ll / d eta d omega
        grad = np.zeros((T, 3))
        grad[:, :2] = np.bincount(cell, weights=w * d_eta, minlength=2 * T).reshape(T, 2)
        grad[:, 2] = np.bincount(t, weights=w * theta * d_theta, minlength=T)
        hess = np.zeros((T, 3, 3))
        hess[:, 0, 0], hess[:, 1, 1] = np.bincount(cell, weights=w * h_eta, minlength=2 * T).reshape(T, 2).T
        hess[:, 0, 2], hess[:, 1, 2] = np.bincount(cell, weights=w * h_cross, minlength=2 * T).reshape(T, 2).T
        hess[:, 2, 0], hess[:, 2, 1] = hess[:, 0, 2], hess[:, 1, 2]
        hess[:, 2, 2] = np.bincount(t, weights=w * (theta * theta * h_theta + theta * d_theta), minlength=T)
        # Newton where the Hessian is negative definite, else a gradient step in omega
        # (the intercepts' block is always negative definite)
        schur = hess[:, 2, 2] - hess[:, 0, 2] ** 2 / hess[:, 0, 0] - hess[:, 1, 2] ** 2 / hess[:, 1, 1]
        concave = active & (schur < 0) & np.all(np.isfinite(hess.reshape(T, 9)), axis=1)
        step = np.zeros((T, 3))
        if concave.any():
            step[concave] = -np.linalg.solve(hess[concave], grad[concave][:, :, None])[:, :, 0]
        other = active & ~concave
        step[other, 2] = np.sign(grad[other, 2]) * 0.5
        step = np.clip(step, -5.0, 5.0)
        scale = np.ones(T)
        for _halving in range(40):
            trial_a = a + scale[:, None] * step[:, :2]
            trial_omega = np.clip(omega + scale * step[:, 2], -25.0, 25.0)
            candidate = loglik(trial_a, trial_omega)
            worse = active & ~(candidate >= current - 1e-12 * np.abs(current))
            if not worse.any():
                break
            scale[worse] *= 0.5
        a = np.where(active[:, None], trial_a, a)
        omega = np.where(active, trial_omega, omega)
        current = np.where(active, candidate, current)
        iterations[active] += 1
        done = active & (np.max(np.abs(scale[:, None] * step), axis=1) < tol)
        converged |= done
        active &= ~done
    converged &= (omega < 24.0) & np.all(np.isfinite(a), axis=1)
    theta = np.exp(omega)[t]
    mu = x * np.exp(a[t, g])
    weight = np.bincount(cell, weights=w * theta * mu / (theta + mu), minlength=2 * T).reshape(T, 2)
    estimate = np.where(ok, a[:, 1] - a[:, 0], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        std_error = np.where(ok, np.sqrt(1.0 / weight[:, 0] + 1.0 / weight[:, 1]), np.nan)
        p_value = 2.0 * special.ndtr(-np.abs(estimate / std_error))
    return {"estimate": estimate, "std_error": std_error, "p_value": p_value, "dispersion": np.exp(-omega),
            "n_iterations": iterations, "converged": converged}
