"""Compiled kernels behind :mod:`rjtrial.survival.batched` (numba; each call fits a range of trials).

Every trial is reduced once to its *event table*: for each distinct time at which at
least one event happened, counted from the latest time down, the numbers at risk in the
control and treated arms and the numbers of events in each. With a single 0/1 covariate
the risk-set sums of the Cox partial likelihood are functions of these four counts and
of ``r = exp(beta)`` alone (``S0 = N0 + N1 r``, ``S1 = S2 = N1 r``), so each Newton
iteration costs one pass over the event table, and the log-rank test is one more pass.

Trial ``j`` is ``offsets[j]:offsets[j + 1]`` of a flat layout sorted by time within each
trial (NumPy sorts, several times faster than numba's), in one of three modes:

* ``INDEXED``: ``index[offsets[j]:offsets[j + 1]]`` lists the trial's rows of ``time,
  event, treatment`` in ascending order of time, as positions relative to ``offsets[j]``;
* ``PACKED``: whole-number times below 2**50, where ``time`` holds the sorted exact keys
  ``4 time + 2 treatment + event`` (one plain sort instead of an argsort, and no gather).

The kernels are serial and release the GIL (``nogil``): :mod:`rjtrial.survival.batched`
runs chunks of trials in a thread pool. (``parallel=True`` with ``prange`` nearly doubled
the first-use compile time, and numba's default threading layer must not be entered
from several Python threads at once.) Nothing here validates input:
:mod:`rjtrial.survival.batched` does.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Columns of the result matrix written by ``cox_trials``.
COX_COLUMNS = (
    "coef",
    "std_error",
    "loglik",
    "loglik_null",
    "score_null",
    "information_null",
    "iterations",
    "converged",
    "events",
)
# Columns of the result matrix written by ``logrank_trials``.
LOGRANK_COLUMNS = ("observed", "expected", "variance", "events")


def _jit(function):
    """``numba.njit(cache=True, nogil=True)``; without the on-disk cache if there is nowhere to write it.

    numba caches beside this file (``__pycache__``), else in ``NUMBA_CACHE_DIR`` or the
    user's cache directory; only when none is usable does it refuse, and then each process
    compiles on first use instead.
    """
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:
        return njit(nogil=True)(function)


INDEXED, PACKED = 0, 1
PACKED_LIMIT = 2.0**50  # 4 t + 3 is exact in float64 for whole t below this

_MAX_HALVINGS = 40
_MAX_ABS_COEF = 700.0  # exp(700) is still finite in float64


@_jit
def _event_table(time, event, treatment, index, start, stop, mode):
    """Event table of one trial, latest event time first.

    Rows ``start:stop`` of the layout (see the module docstring for ``mode``). Returns ``(at_risk0,
    at_risk1, events0, events1, m, n0, n1)``: the first ``m`` entries of the four arrays
    are used; ``n0``, ``n1`` are the arm sizes.

    Branch-free: arms, events and ties come in random order, so branches on them would be
    mispredicted often. Every row updates the slot of its time (a new slot when the time
    differs from the previous row's); slots without events are then squeezed out.
    """
    n = stop - start
    at_risk0 = np.empty(n, dtype=np.float64)
    at_risk1 = np.empty(n, dtype=np.float64)
    events0 = np.zeros(n, dtype=np.float64)
    events1 = np.zeros(n, dtype=np.float64)
    risk = 0
    risk1 = 0
    slot = -1
    previous = -1.0  # times are >= 0, so the first row opens a slot
    for i in range(stop - 1, start - 1, -1):
        if mode == PACKED:
            key = time[i]
            current = np.floor(key * 0.25)
            code = np.int64(key - 4.0 * current)
            x = code >> 1
            e = code & 1
        else:
            row = start + index[i]
            current = time[row]
            x = np.int64(treatment[row])
            e = np.int64(event[row])
        new = np.int64(current != previous)
        previous = current
        slot += new  # a new slot starts from zeros
        risk += 1
        risk1 += x
        events0[slot] += e - x * e
        events1[slot] += x * e
        at_risk0[slot] = risk - risk1
        at_risk1[slot] = risk1
    m = 0
    for k in range(slot + 1):
        at_risk0[m] = at_risk0[k]
        at_risk1[m] = at_risk1[k]
        events0[m] = events0[k]
        events1[m] = events1[k]
        m += 1 if events0[k] + events1[k] > 0.0 else 0
    return at_risk0, at_risk1, events0, events1, m, float(risk - risk1), float(risk1)


_PRODUCT_LIMIT = 1e200  # the product of denominators is logged whenever it leaves [1e-200, 1e200]


@_jit
def _partial_loglik(beta, at_risk0, at_risk1, events0, events1, m, efron, treated_events):
    """Log partial likelihood, score and information at ``beta`` (one 0/1 covariate).

    The log of the risk-set denominators is taken of their running product, once every
    few hundred event times rather than at each (a log costs as much as the rest of the
    pass); the product is kept within [1e-200, 1e200], and for ``|beta| >= 50`` (where
    one denominator could leave that range) it is logged at every event time.
    """
    r = math.exp(beta)
    high = _PRODUCT_LIMIT if abs(beta) < 50.0 else 1.0
    low = 1.0 / high
    log_denominators = 0.0
    product = 1.0
    score = treated_events
    information = 0.0
    for k in range(m):
        s1 = at_risk1[k] * r
        s0 = at_risk0[k] + s1
        d = events0[k] + events1[k]
        if d == 1.0:
            mean = s1 / s0
            product *= s0
            score -= mean
            information += mean * (1.0 - mean)
        elif efron:
            tied1 = events1[k] * r
            tied0 = events0[k] + tied1
            for q in range(int(d)):
                share = q / d
                denominator = s0 - share * tied0
                mean = (s1 - share * tied1) / denominator
                product *= denominator
                score -= mean
                information += mean * (1.0 - mean)
                if product > high or product < low:
                    log_denominators += math.log(product)
                    product = 1.0
        else:
            mean = s1 / s0
            for q in range(int(d)):
                product *= s0
                if product > high or product < low:
                    log_denominators += math.log(product)
                    product = 1.0
            score -= d * mean
            information += d * mean * (1.0 - mean)
        if product > high or product < low:
            log_denominators += math.log(product)
            product = 1.0
    loglik = treated_events * beta - log_denominators - math.log(product)
    return loglik, score, information


@_jit
def _newton(at_risk0, at_risk1, events0, events1, m, efron, tol, max_iterations, out):
    """Fit one trial from ``beta = 0``; fills ``out`` in the order of ``COX_COLUMNS``."""
    treated_events = 0.0
    for k in range(m):
        treated_events += events1[k]
    loglik, score, information = _partial_loglik(0.0, at_risk0, at_risk1, events0, events1, m, efron, treated_events)
    out[3] = loglik
    out[4] = score
    out[5] = information
    if not (information > 0.0):  # nobody of the other arm at risk at any event time
        return
    beta = 0.0
    converged = False
    iterations = 0
    for iterations in range(1, max_iterations + 1):
        step = score / information
        if not math.isfinite(step):
            break
        fraction = 1.0
        accepted = False
        for _ in range(_MAX_HALVINGS):
            candidate = beta + fraction * step
            if abs(candidate) <= _MAX_ABS_COEF:
                new_loglik, new_score, new_information = _partial_loglik(
                    candidate, at_risk0, at_risk1, events0, events1, m, efron, treated_events
                )
                if math.isfinite(new_loglik) and new_loglik >= loglik - 1e-12 * abs(loglik):
                    accepted = True
                    break
            fraction *= 0.5
        if not accepted:
            break
        change = abs(new_loglik - loglik)
        beta, loglik, score, information = candidate, new_loglik, new_score, new_information
        if change <= tol * abs(loglik) or abs(step) <= tol:
            converged = True
            break
    out[0] = beta
    out[1] = 1.0 / math.sqrt(information) if information > 0.0 else np.nan
    out[2] = loglik
    out[6] = iterations
    out[7] = 1.0 if converged else 0.0


@_jit
def cox_trials(time, event, treatment, index, offsets, mode, efron, tol, max_iterations, first, last, out):
    """Fit trials ``first:last`` into rows of ``out`` (``len(COX_COLUMNS)`` columns, nan where unfit)."""
    for j in range(first, last):
        row = out[j]
        row[:] = np.nan
        row[6] = 0.0
        row[7] = 0.0
        start = offsets[j]
        stop = offsets[j + 1]
        if stop == start:
            row[8] = 0.0
            continue
        at_risk0, at_risk1, events0, events1, m, n0, n1 = _event_table(time, event, treatment, index, start, stop, mode)
        total = 0.0
        for k in range(m):
            total += events0[k] + events1[k]
        row[8] = total
        if m == 0 or n0 == 0.0 or n1 == 0.0:
            continue
        _newton(at_risk0, at_risk1, events0, events1, m, efron, tol, max_iterations, row)


@_jit
def logrank_trials(time, event, treatment, index, offsets, mode, first, last, out):
    """Observed and expected treated events and the hypergeometric variance of trials ``first:last``."""
    for j in range(first, last):
        out[j, :] = 0.0
        start = offsets[j]
        stop = offsets[j + 1]
        if stop == start:
            continue
        at_risk0, at_risk1, events0, events1, m, n0, n1 = _event_table(time, event, treatment, index, start, stop, mode)
        observed = 0.0
        expected = 0.0
        variance = 0.0
        total = 0.0
        for k in range(m):
            n = at_risk0[k] + at_risk1[k]
            d = events0[k] + events1[k]
            share = at_risk1[k] / n
            observed += events1[k]
            expected += d * share
            total += d
            if n > 1.0:
                variance += d * (n - d) / (n - 1.0) * share * (1.0 - share)
        out[j, 0] = observed
        out[j, 1] = expected
        out[j, 2] = variance
        out[j, 3] = total


@_jit
def packed_keys(time, event, treatment, first, last, keys):
    """Fill ``keys[first:last]`` with ``4 time + 2 treatment + event``; are they exact (whole times below 2**50)?"""
    exact = True
    for i in range(first, last):
        t = time[i]
        exact &= (t < PACKED_LIMIT) & (t == np.floor(t))
        keys[i] = 4.0 * t + 2.0 * treatment[i] + event[i]
    return exact


@_jit
def group_rows(trial, n_trials):
    """Stable counting sort of row positions by trial label: ``(index, offsets)``."""
    counts = np.zeros(n_trials + 1, dtype=np.int64)
    for i in range(trial.size):
        counts[trial[i] + 1] += 1
    offsets = np.cumsum(counts)
    fill = offsets[:-1].copy()
    index = np.empty(trial.size, dtype=np.int64)
    for i in range(trial.size):
        label = trial[i]
        index[fill[label]] = i
        fill[label] += 1
    return index, offsets


# Columns of the result matrix written by ``rmst_trials`` (per arm: control 0, treated 1).
RMST_COLUMNS = ("rmst0", "variance0", "last0", "rmst1", "variance1", "last1")


@_jit
def rmst_trials(time, event, treatment, index, offsets, mode, tau, first, last, out):
    """Kaplan–Meier restricted mean up to ``tau`` of each arm, and its Greenwood-type variance.

    One ascending pass per trial; per arm, at each distinct time ``t <= tau`` the area so
    far and ``d / (n (n - d))`` are kept, and the variance ``sum A_i^2 d_i / (n_i (n_i - d_i))``
    (``A_i``: area from ``t_i`` to ``tau``) is summed in a second pass over them, as R
    ``survival:::survmean``. ``last0``/``last1``: the latest time observed in the arm.
    """
    for j in range(first, last):
        start = offsets[j]
        stop = offsets[j + 1]
        size = stop - start
        n = np.zeros(2)
        latest = np.full(2, -1.0)
        for i in range(start, stop):
            if mode == PACKED:
                key = time[i]
                t = np.floor(key * 0.25)
                x = (np.int64(key - 4.0 * t)) >> 1
            else:
                row = start + index[i]
                t = time[row]
                x = np.int64(treatment[row])
            n[x] += 1.0
            if t > latest[x]:
                latest[x] = t
        areas = np.empty((2, size))
        hazards = np.empty((2, size))
        m = np.zeros(2, dtype=np.int64)
        surv = np.ones(2)
        area = np.zeros(2)
        previous = 0.0
        i = start
        while i < stop:
            if mode == PACKED:
                t = np.floor(time[i] * 0.25)
            else:
                t = time[start + index[i]]
            if t > tau:
                break
            for g in range(2):
                area[g] += surv[g] * (t - previous)
            previous = t
            d = np.zeros(2)
            c = np.zeros(2)
            while i < stop:
                if mode == PACKED:
                    key = time[i]
                    ti = np.floor(key * 0.25)
                    code = np.int64(key - 4.0 * ti)
                    x = code >> 1
                    e = code & 1
                else:
                    row = start + index[i]
                    ti = time[row]
                    x = np.int64(treatment[row])
                    e = np.int64(event[row])
                if ti != t:
                    break
                d[x] += e
                c[x] += 1.0
                i += 1
            for g in range(2):
                if d[g] > 0.0:
                    areas[g, m[g]] = area[g]
                    hazards[g, m[g]] = 0.0 if n[g] == d[g] else d[g] / (n[g] * (n[g] - d[g]))
                    m[g] += 1
                    surv[g] *= 1.0 - d[g] / n[g]
                n[g] -= c[g]
        for g in range(2):
            area[g] += surv[g] * (tau - previous)
            variance = 0.0
            for k in range(m[g]):
                after = area[g] - areas[g, k]
                variance += after * after * hazards[g, k]
            out[j, 3 * g] = area[g]
            out[j, 3 * g + 1] = variance
            out[j, 3 * g + 2] = latest[g]


@_jit
def distinct_count_rows(key, span_x, span_y, n_trials):
    """The distinct rows of sorted keys ``((2 trial + arm) span_x + exposure) span_y + count``
    (whole days and counts): ``offsets`` (trial ``j``'s rows are ``offsets[j]:offsets[j + 1]``),
    ``arm``, ``exposure``, ``count`` and ``weight`` (the number of rows alike), in key order."""
    size = 0
    for i in range(key.size):
        if i == 0 or key[i] != key[i - 1]:
            size += 1
    offsets = np.zeros(n_trials + 1, dtype=np.int64)
    arm = np.empty(size, dtype=np.int64)
    exposure = np.empty(size, dtype=np.float64)
    count = np.empty(size, dtype=np.float64)
    weight = np.zeros(size, dtype=np.float64)
    k = -1
    for i in range(key.size):
        if i == 0 or key[i] != key[i - 1]:
            k += 1
            rest, y = divmod(key[i], span_y)
            arm_trial, x = divmod(rest, span_x)
            trial, g = divmod(arm_trial, 2)
            arm[k] = g
            exposure[k] = x
            count[k] = y
            offsets[trial + 1] = k + 1
        weight[k] += 1.0
    for j in range(n_trials):  # trials without rows end where the one before ends
        if offsets[j + 1] < offsets[j]:
            offsets[j + 1] = offsets[j]
    return offsets, arm, exposure, count, weight


# Columns of the result matrix written by ``negative_binomial_trials``.
NB_COLUMNS = ("estimate", "std_error", "p_value", "dispersion", "iterations", "converged")


@_jit
def _digamma(x):
    """psi(x) for x > 0: recurrence up to 10, then the asymptotic series (error below 1e-14)."""
    result = 0.0
    while x < 10.0:
        result -= 1.0 / x
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    return (
        result
        + math.log(x)
        - 0.5 * inv
        - inv2 * (1.0 / 12 - inv2 * (1.0 / 120 - inv2 * (1.0 / 252 - inv2 * (1.0 / 240 - inv2 * (1.0 / 132)))))
    )


@_jit
def _trigamma(x):
    """psi'(x) for x > 0: recurrence up to 10, then the asymptotic series (error below 1e-14)."""
    result = 0.0
    while x < 10.0:
        result += 1.0 / (x * x)
        x += 1.0
    inv = 1.0 / x
    inv2 = inv * inv
    return (
        result
        + inv
        + 0.5 * inv2
        + inv * inv2 * (1.0 / 6 - inv2 * (1.0 / 30 - inv2 * (1.0 / 42 - inv2 * (1.0 / 30 - inv2 * (5.0 / 66)))))
    )


@_jit
def _nb_group(arm, x, logx, w_sum, y_sum, lg_sum, d1_sum, d2_sum, a0, a1, theta, log_theta, alpha, e0, e1, order, sums):
    """The terms of the rows of one arm and exposure ``x`` at ``(a0, a1, log theta)``, from
    their weighted sums (``w_sum`` rows, ``y_sum`` counts; ``lg_sum``, ``d1_sum``, ``d2_sum``
    the gamma-function terms and their derivatives; ``alpha = 1 / theta``): a row's other
    terms are linear in its
    count, so ``mu``, ``log(1 + mu / theta)`` and ``1 / (theta + mu)`` are made once a group.
    Written without the differences of near-equal terms that large ``theta`` (near-Poisson
    counts) would make: ``log theta - log(theta + mu) = -log1p(mu / theta)``,
    ``1 - (theta + y) / (theta + mu) = (mu - y) / (theta + mu)`` and
    ``1 / theta - 1 / (theta + mu) = mu / (theta (theta + mu))``.
    Returns the log-likelihood; with ``order`` 2 adds the derivatives to ``sums``."""
    mu = x * (e1 if arm == 1 else e0)
    lp = math.log1p(mu * alpha)  # log(theta + mu) - log(theta)
    weighted = theta * w_sum + y_sum  # sum of w (theta + y)
    ll = lg_sum - weighted * lp + y_sum * (logx + (a1 if arm == 1 else a0) - log_theta)
    if order == 2:
        inv = 1.0 / (theta + mu)
        inv2 = inv * inv
        excess = y_sum - mu * w_sum  # sum of w (y - mu)
        d_theta = d1_sum - w_sum * lp - excess * inv
        h_theta = d2_sum + w_sum * mu * inv * alpha + excess * inv2
        sums[arm] += theta * excess * inv
        sums[2] += theta * d_theta
        sums[3 + arm] -= weighted * theta * mu * inv2
        sums[5 + arm] += theta * excess * mu * inv2
        sums[7] += theta * theta * h_theta + theta * d_theta
    return ll


@_jit
def _nb_pass(g, x, logx, y, w, lo, hi, a0, a1, omega, whole, tables, order, sums):
    """One pass over a trial's rows at ``(a0, a1, log theta)``.

    ``logx`` holds ``log(x)`` (computed once a fit). ``order`` 0 returns the log-likelihood;
    2 also fills ``sums`` with the gradient ``(d/da0, d/da1, d/dlog theta)`` and the Hessian
    entries ``(h00, h11, h02, h12, h22)``.
    For whole counts the gamma-function terms are the finite sums over ``j < y`` of
    ``log(theta + j)``, ``1/(theta + j)`` and ``-1/(theta + j)^2``, tabulated in ``tables``.
    Rows come sorted by (arm, exposure, count); the rows of one arm and exposure share
    ``mu`` and are summed first (:func:`_nb_group`).
    """
    theta = math.exp(omega)
    e0 = math.exp(a0)
    e1 = math.exp(a1)
    if whole:
        tables[0, 0] = 0.0
        tables[1, 0] = 0.0
        tables[2, 0] = 0.0
        for j in range(1, tables.shape[1]):
            shifted = theta + (j - 1)
            tables[0, j] = tables[0, j - 1] + math.log(shifted)
            tables[1, j] = tables[1, j - 1] + 1.0 / shifted
            tables[2, j] = tables[2, j - 1] - 1.0 / (shifted * shifted)
    log_theta = omega
    alpha = 1.0 / theta
    ll = 0.0
    for k in range(9):
        sums[k] = 0.0
    r = lo
    while r < hi:
        arm = g[r]
        xr = x[r]
        w_sum = y_sum = lg_sum = d1_sum = d2_sum = 0.0
        while r < hi and g[r] == arm and x[r] == xr:
            yr = y[r]
            wr = w[r]
            w_sum += wr
            y_sum += wr * yr
            if whole:
                count = np.int64(yr)
                lg_sum += wr * tables[0, count]
                if order == 2:
                    d1_sum += wr * tables[1, count]
                    d2_sum += wr * tables[2, count]
            else:
                lg_sum += wr * (math.lgamma(yr + theta) - math.lgamma(theta))
                if order == 2:
                    d1_sum += wr * (_digamma(yr + theta) - _digamma(theta))
                    d2_sum += wr * (_trigamma(yr + theta) - _trigamma(theta))
            r += 1
        ll += _nb_group(
            arm,
            xr,
            logx[r - 1],
            w_sum,
            y_sum,
            lg_sum,
            d1_sum,
            d2_sum,
            a0,
            a1,
            theta,
            log_theta,
            alpha,
            e0,
            e1,
            order,
            sums,
        )
    return ll


@_jit
def negative_binomial_trials(offsets, g, x, y, w, whole, tol, max_iterations, first, last, out):
    """NB2 fits of trials ``first:last`` (rows ``offsets[j]:offsets[j+1]``, weights ``w``) into ``out``.

    Newton-Raphson on ``(a0, a1, log theta)`` from the Poisson estimates and a moment estimate
    of the dispersion (clamped to [0.05, 20]); where the Hessian is not negative definite a
    step of 0.5 in ``log theta`` along the gradient; steps clipped to 5 and halved (up to 40
    times) until the log-likelihood does not fall; converged when a step is below ``tol``
    and ``log theta`` below 24. The standard error of ``a1 - a0`` is the GLM's with theta
    fixed, ``1/W0 + 1/W1``, ``W_g = sum w mu / (1 + mu / theta)`` over arm g.
    """
    sums = np.zeros(9)
    trial_sums = np.zeros(9)
    logx = np.empty(x.size)  # the offsets, once (each Newton step and step halving passes over them)
    for r in range(offsets[first], offsets[last]):
        logx[r] = math.log(x[r])
    for j in range(first, last):
        lo, hi = offsets[j], offsets[j + 1]
        row = out[j]
        row[:] = np.nan
        row[4] = 0.0
        row[5] = 0.0
        sy0 = sy1 = sx0 = sx1 = 0.0
        ymax = 0
        for r in range(lo, hi):
            if g[r] == 1:
                sy1 += w[r] * y[r]
                sx1 += w[r] * x[r]
            else:
                sy0 += w[r] * y[r]
                sx0 += w[r] * x[r]
            if whole and y[r] > ymax:
                ymax = np.int64(y[r])
        if not (sy0 > 0.0 and sy1 > 0.0):
            continue
        a0 = math.log(sy0 / sx0)
        a1 = math.log(sy1 / sx1)
        num = 0.0
        den = 0.0
        for r in range(lo, hi):
            mu = x[r] * math.exp(a1 if g[r] == 1 else a0)
            num += w[r] * ((y[r] - mu) * (y[r] - mu) - y[r])
            den += w[r] * mu * mu
        moment = num / den
        if math.isnan(moment):
            moment = 1.0
        omega = -math.log(min(max(moment, 0.05), 20.0))
        tables = np.empty((3, ymax + 1 if whole else 1))
        # each point is visited with its derivatives (``order`` 2): the accepted candidate's
        # are the next Newton step's, so a step costs one pass over the rows, not two
        current = _nb_pass(g, x, logx, y, w, lo, hi, a0, a1, omega, whole, tables, 2, sums)
        converged = False
        iterations = 0
        for _ in range(max_iterations):
            g0, g1, g2 = sums[0], sums[1], sums[2]
            h00, h11, h02, h12, h22 = sums[3], sums[4], sums[5], sums[6], sums[7]
            schur = h22 - h02 * h02 / h00 - h12 * h12 / h11
            if schur < 0.0 and math.isfinite(schur):
                s2 = (-g2 + h02 * g0 / h00 + h12 * g1 / h11) / schur
                s0 = (-g0 - h02 * s2) / h00
                s1 = (-g1 - h12 * s2) / h11
            else:
                s0 = 0.0
                s1 = 0.0
                s2 = 0.5 if g2 > 0 else (-0.5 if g2 < 0 else 0.0)
            s0 = min(max(s0, -5.0), 5.0)
            s1 = min(max(s1, -5.0), 5.0)
            s2 = min(max(s2, -5.0), 5.0)
            if max(abs(s0), abs(s1), abs(s2)) < tol:
                # the last step: below tol, it cannot lower the likelihood by the 1e-12 the
                # search tolerates, so it is taken without another pass over the rows
                a0, a1, omega = a0 + s0, a1 + s1, min(max(omega + s2, -25.0), 25.0)
                iterations += 1
                converged = True
                break
            scale = 1.0
            for _halving in range(40):
                t0 = a0 + scale * s0
                t1 = a1 + scale * s1
                t2 = min(max(omega + scale * s2, -25.0), 25.0)
                candidate = _nb_pass(g, x, logx, y, w, lo, hi, t0, t1, t2, whole, tables, 2, trial_sums)
                if candidate >= current - 1e-12 * abs(current):
                    break
                scale *= 0.5
            a0, a1, omega, current = t0, t1, t2, candidate
            sums[:] = trial_sums
            iterations += 1
            if max(abs(scale * s0), abs(scale * s1), abs(scale * s2)) < tol:
                converged = True
                break
        converged = converged and omega < 24.0 and math.isfinite(a0) and math.isfinite(a1)
        theta = math.exp(omega)
        e0 = math.exp(a0)
        e1 = math.exp(a1)
        weight0 = 0.0
        weight1 = 0.0
        for r in range(lo, hi):
            mu = x[r] * (e1 if g[r] == 1 else e0)
            if g[r] == 1:
                weight1 += w[r] * theta * mu / (theta + mu)
            else:
                weight0 += w[r] * theta * mu / (theta + mu)
        estimate = a1 - a0
        std_error = math.sqrt(1.0 / weight0 + 1.0 / weight1)
        row[0] = estimate
        row[1] = std_error
        row[2] = math.erfc(abs(estimate / std_error) / math.sqrt(2.0))
        row[3] = math.exp(-omega)
        row[4] = iterations
        row[5] = 1.0 if converged else 0.0
