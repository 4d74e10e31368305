"""Power by simulation: how often a trial of a scenario's design finds its effect.

For each sample size ``n``, :func:`power` draws ``reps`` whole trials of the scenario
with ``n`` participants randomised (:func:`rjtrial.simulate._replicates.sized_scenario`:
the referral rate scales with the size, so the intake period and follow-up are the
scenario's), each allocated by the protocol's own engine and analysed by the
scenario's analysis plan, and counts the trials whose two-sided test rejects "no
effect" at level ``alpha``. The analyses:

* ``"cox"``: Cox model of ``time_at_risk`` (street days to the first reoffence) on the
  arm, Efron ties, Wald test; estimate the hazard ratio;
* ``"logrank"``: the log-rank test; estimate Peto's hazard ratio ``exp((O - E) / V)``
  of the conference arm;
* ``"rate_ratio"``: negative binomial (NB2) rate ratio of ``reoffences`` with
  ``exposure_days`` as offset, participants with some street time, Wald test
  (:func:`rjtrial.frequency.rate_ratio`'s model; see :func:`negative_binomial_batch`).

The fits do not loop over trials in Python: the replicates of a chunk are stacked and
fitted at once by :func:`rjtrial.survival.batched.cox_batch` /
:func:`~rjtrial.survival.batched.logrank_batch`, or :func:`negative_binomial_batch`.

Beside the simulated power stands Schoenfeld's approximation (:func:`schoenfeld_power`)
for the log-rank/Cox test, evaluated twice with the expected number of events at that
size (the events per participant of the scenario's Monte Carlo truth,
:func:`rjtrial.simulate.truth.compute_truth`, times ``n``): with the **intention-to-treat**
hazard ratio of the truth (what the trial estimates: diluted by conferences not held,
frailty and custody), and with the **naive** one, ``reoffending.hazard_ratio_treated``
(the effect among those who had a conference), which overstates power.

Reproducibility: the seed is split by :class:`numpy.random.SeedSequence` into one child
per sample size and one grandchild per replicate: trial ``k`` at the ``i``-th size is
``generate(sized, rng=SeedSequence(seed).spawn(len(n))[i].spawn(reps)[k], lean=True)``.
Replicates are grouped in chunks, and each replicate's fit depends on its own data only
(every trial stops its Newton iterations on its own), so the result is the same, to the
last bit, whatever the chunk size, the number of workers or the backend (in-process,
process pool, Dask).
"""

from __future__ import annotations

import math
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special

from rjtrial.errors import RjtrialError
from rjtrial.simulate.scenario import Scenario

__all__ = ["ANALYSES", "PowerResult", "power", "schoenfeld_power", "schoenfeld_events", "negative_binomial_batch"]

ANALYSES = ("cox", "logrank", "rate_ratio")
#: Replicates per task. Fixed (not derived from the number of workers) so results never depend on it.
CHUNK_SIZE = 50
CI_LEVEL = 0.95
#: What a worker process needs, imported once by the fork server rather than by each worker.
_WORKER_MODULES = ("rjtrial.simulate.power", "rjtrial.simulate._replicates", "rjtrial.simulate.generator",
                   "rjtrial.followup", "rjtrial.randomise", "rjtrial.frequency", "rjtrial.survival.batched")


# ----------------------------------------------------------------------------- Schoenfeld
def _check_alpha(alpha: float, name: str = "alpha") -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {alpha!r}")
    return alpha


def schoenfeld_power(hazard_ratio: float, events: float, *, allocation: float = 0.5, alpha: float = 0.05) -> float:
    """Power of the two-sided log-rank (or Cox) test by Schoenfeld's approximation.

    Parameters
    ----------
    hazard_ratio : float
        The hazard ratio to detect (> 0).
    events : float
        Expected number of events in the trial (>= 0).
    allocation : float
        Share of participants in one arm (0.5 for 1:1; 2/3 for 1:2).
    alpha : float
        Two-sided significance level.

    Returns
    -------
    float
        ``Phi(|log HR| sqrt(D p (1 - p)) - z_{1 - alpha/2})``, the usual one-tail form (the
        other tail adds at most ``alpha / 2``); ``alpha / 2`` when the hazard ratio is 1.

    Notes
    -----
    Schoenfeld (1983): the log-rank statistic is approximately normal with mean
    ``log(HR) sqrt(D p (1 - p))`` and variance 1, for D events and allocation share p.
    It assumes proportional hazards and ignores how the arms' risk sets drift apart
    over follow-up; :func:`power` shows where that misleads.

    References
    ----------
    Schoenfeld, D. A. (1983). Sample-size formula for the proportional-hazards regression
    model. *Biometrics*, 39(2), 499-503. https://doi.org/10.2307/2531021

    Examples
    --------
    >>> round(schoenfeld_power(0.7, 247), 3)
    0.8
    """
    hazard_ratio, events, allocation = float(hazard_ratio), float(events), float(allocation)
    if not hazard_ratio > 0 or not math.isfinite(hazard_ratio):
        raise ValueError(f"hazard_ratio must be positive, got {hazard_ratio!r}")
    if not events >= 0:
        raise ValueError(f"events must be non-negative, got {events!r}")
    _check_alpha(allocation, "allocation")
    alpha = _check_alpha(alpha)
    shift = abs(math.log(hazard_ratio)) * math.sqrt(events * allocation * (1.0 - allocation))
    return float(special.ndtr(shift - special.ndtri(1.0 - alpha / 2.0)))


def schoenfeld_events(hazard_ratio: float, power: float, *, allocation: float = 0.5, alpha: float = 0.05) -> float:
    """Events needed for ``power`` by Schoenfeld's formula (not rounded).

    ``D = (z_{1 - alpha/2} + z_{power})^2 / (p (1 - p) log(HR)^2)``; round up to plan a trial.

    Examples
    --------
    >>> math.ceil(schoenfeld_events(0.7, 0.8))    # HR 0.7, 80% power, 5% two-sided, 1:1
    247
    """
    hazard_ratio = float(hazard_ratio)
    if not hazard_ratio > 0 or hazard_ratio == 1.0 or not math.isfinite(hazard_ratio):
        raise ValueError(f"hazard_ratio must be positive and not 1, got {hazard_ratio!r}")
    power = _check_alpha(power, "power")
    allocation = _check_alpha(allocation, "allocation")
    alpha = _check_alpha(alpha)
    z = special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power)
    return float(z * z / (allocation * (1.0 - allocation) * math.log(hazard_ratio) ** 2))


# ----------------------------------------------------------------------------- NB2, batched
def negative_binomial_batch(count, exposure, treatment, trial, *, n_trials: int | None = None, tol: float = 1e-10,
                            max_iterations: int = 100) -> dict[str, np.ndarray]:
    """NB2 rate ratio of ``treatment`` 1 vs 0 in many trials at once, by Newton-Raphson.

    Parameters
    ----------
    count, exposure, treatment, trial : 1-D arrays
        Counts, positive exposures (offset ``log(exposure)``), 0/1 arm and the trial label
        (0..T-1) of every row.
    n_trials : int, optional
        T (default ``trial.max() + 1``).

    Returns
    -------
    dict of 1-D arrays (one entry per trial)
        ``estimate`` (log rate ratio), ``std_error``, ``p_value`` (Wald, two-sided),
        ``alpha`` (dispersion, ``Var Y = mu + alpha mu^2``), ``n_iterations``, ``converged``.

    Notes
    -----
    The model of :func:`rjtrial.frequency.rate_ratio` (``model="negative_binomial"``):
    ``log E[Y] = log(exposure) + a_arm``, ``(a_0, a_1, log theta)`` by joint maximum
    likelihood, ``theta = 1 / alpha``, with every trial's Newton step (analytic 3x3
    Hessian, step halving) taken at once; the standard error of ``a_1 - a_0`` is the
    inverse expected information with theta fixed, ``1/W_0 + 1/W_1`` with
    ``W_g = sum mu / (1 + alpha mu)`` over arm g (the GLM's, as R's ``glm.nb`` reports).
    Rows alike in (trial, arm, exposure, count) are fitted once, weighted by their number,
    and for whole counts the gamma-function terms are the exact finite sums
    ``sum_{j<y} log(theta + j)`` (and their derivatives) tabulated per trial. Each trial
    stops on its own (step below ``tol``), so its result depends on its rows only. Trials whose fit fails (no event in an arm, no over-dispersion: theta beyond
    e^25) come back with ``converged`` False; :func:`power` refits those one by one with
    :func:`rjtrial.frequency.rate_ratio`. Agreement with it is tested to 1e-6.
    """
    y = np.asarray(count, dtype=float)
    x = np.asarray(exposure, dtype=float)
    g = np.asarray(treatment, dtype=np.int64)
    t = np.asarray(trial, dtype=np.int64)
    T = int(t.max()) + 1 if n_trials is None else int(n_trials)
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
    return {"estimate": estimate, "std_error": std_error, "p_value": p_value, "alpha": np.exp(-omega),
            "n_iterations": iterations, "converged": converged}


def _rate_ratio_one(rows: pd.DataFrame) -> tuple[float, float, float]:
    """Log rate ratio, standard error and p-value of one trial by :func:`rjtrial.frequency.rate_ratio`."""
    from rjtrial.frequency import rate_ratio

    try:
        fit = rate_ratio(rows, count="reoffences", exposure="exposure_days", group="treatment", control=0)
        row = fit.summary_frame().iloc[-1]
        return float(row["estimate"]), float(row["std_error"]), float(row["p_value"])
    except (ValueError, RjtrialError, np.linalg.LinAlgError):
        return math.nan, math.nan, math.nan


# ----------------------------------------------------------------------------- one chunk
def _fit(table: pd.DataFrame, analysis: str, n_trials: int, threads: int | None) -> dict[str, np.ndarray]:
    """Per-replicate estimate (log scale), std_error, p_value and events of a stacked table."""
    trial = table["replicate"].to_numpy()
    treatment = table["treatment"].to_numpy()
    events = np.bincount(trial, weights=table["event"].to_numpy(dtype=float), minlength=n_trials)
    if analysis == "cox":
        from rjtrial.survival.batched import cox_batch

        res = cox_batch(table["time_at_risk"].to_numpy(dtype=float), table["event"].to_numpy(dtype=np.int64),
                        treatment, trial=trial, ties="efron", threads=threads)
        return {"estimate": np.asarray(res.estimate, dtype=float), "std_error": np.asarray(res.std_error, dtype=float),
                "p_value": np.asarray(res.p_value, dtype=float), "events": events,
                "converged": np.asarray(res.converged, dtype=bool)}
    if analysis == "logrank":
        from rjtrial.survival.batched import logrank_batch

        res = logrank_batch(table["time_at_risk"].to_numpy(dtype=float), table["event"].to_numpy(dtype=np.int64),
                            treatment, trial=trial, threads=threads)
        observed, expected, variance = (np.asarray(v, dtype=float) for v in (res.observed, res.expected, res.variance))
        with np.errstate(divide="ignore", invalid="ignore"):
            estimate = (observed - expected) / variance  # Peto's log hazard ratio of the treated arm
        p = np.asarray(res.p_value, dtype=float)
        return {"estimate": estimate, "std_error": 1.0 / np.sqrt(variance), "p_value": p, "events": events,
                "converged": np.isfinite(p)}
    keep = table["exposure_days"].to_numpy() > 0
    rows = table[keep]
    fit = negative_binomial_batch(rows["reoffences"].to_numpy(), rows["exposure_days"].to_numpy(),
                                  rows["treatment"].to_numpy(), rows["replicate"].to_numpy(), n_trials=n_trials)
    out = {k: fit[k].copy() for k in ("estimate", "std_error", "p_value")}
    out["events"] = np.bincount(rows["replicate"].to_numpy(), weights=rows["reoffences"].to_numpy(dtype=float),
                                minlength=n_trials)
    converged = fit["converged"].copy()
    for k in np.flatnonzero(~converged):  # the few the batch could not fit: the reference, one by one
        estimate, std_error, p_value = _rate_ratio_one(rows[rows["replicate"].to_numpy() == k])
        out["estimate"][k], out["std_error"][k], out["p_value"][k] = estimate, std_error, p_value
        converged[k] = math.isfinite(p_value)
    out["converged"] = converged
    return out


def run_chunk(task: Mapping[str, Any]) -> dict[str, Any]:
    """Simulate and analyse one chunk of replicates (the unit of work sent to a worker).

    ``task``: ``scenario`` (sized), ``seeds`` (SeedSequences), ``analysis``, ``size_index``,
    ``chunk_index``, ``threads``. Returns the per-replicate results and the CPU seconds spent.
    """
    from rjtrial.simulate._replicates import replicate_followup

    table, seconds = replicate_followup(task["scenario"], task["seeds"])
    started = time.process_time()
    result = _fit(table, task["analysis"], len(task["seeds"]), task.get("threads"))
    seconds["fitting"] = time.process_time() - started
    return {"size_index": task["size_index"], "chunk_index": task["chunk_index"], "seconds": seconds,
            "participants": int(len(table)), **result}


# ----------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class PowerResult:
    """Result of :func:`power`.

    Attributes
    ----------
    replicates : DataFrame
        One row per simulated trial: ``n, replicate, estimate`` (hazard or rate ratio),
        ``log_estimate, std_error, p_value, reject, events, converged``.
    settings : dict
        ``scenario, analysis, alpha, seed, reps, n, ci_level``, the truth plugged into
        Schoenfeld (``itt_hazard_ratio, hazard_ratio_treated, events_per_participant,
        allocation``), ``truth_population``, ``backend``, ``workers``, ``chunk_size``,
        ``seconds`` (``total``: wall time; ``generation, followup, fitting``: CPU seconds
        summed over the chunks, whichever worker ran them), versions.
    """

    replicates: pd.DataFrame = field(repr=False)
    settings: Mapping[str, Any]

    def frame(self) -> pd.DataFrame:
        """One row per sample size.

        Columns ``n, reps, power, mc_std_error`` (``sqrt(p (1 - p) / reps)``),
        ``ci_lower, ci_upper`` (Wilson interval, level ``attrs["ci_level"]``),
        ``mean_events`` (events per trial: first reoffences for cox/logrank, reoffences
        for rate_ratio), ``mean_estimate`` (geometric mean of the hazard or rate ratio),
        ``failed`` (trials with no estimate: counted as not rejecting),
        ``expected_events`` (from the truth), ``schoenfeld_power`` (ITT hazard ratio)
        and ``schoenfeld_power_naive`` (``hazard_ratio_treated``); the last three are NaN
        for ``rate_ratio``. ``attrs`` holds :attr:`settings`.
        """
        s = self.settings
        z = special.ndtri(0.5 + s["ci_level"] / 2.0)
        rows = []
        for n, group in self.replicates.groupby("n", sort=True):
            reps = len(group)
            p = float(group["reject"].mean())
            centre = (p + z * z / (2 * reps)) / (1 + z * z / reps)
            half = z / (1 + z * z / reps) * math.sqrt(p * (1 - p) / reps + z * z / (4 * reps * reps))
            log_estimate = group["log_estimate"].to_numpy()
            log_estimate = log_estimate[np.isfinite(log_estimate)]
            expected = math.nan
            itt = naive = math.nan
            if s["analysis"] in ("cox", "logrank") and s.get("events_per_participant") is not None:
                expected = s["events_per_participant"] * n
                itt = schoenfeld_power(s["itt_hazard_ratio"], expected, allocation=s["allocation"], alpha=s["alpha"])
                naive = schoenfeld_power(s["hazard_ratio_treated"], expected, allocation=s["allocation"],
                                         alpha=s["alpha"])
            rows.append({
                "n": int(n), "reps": reps, "power": p, "mc_std_error": math.sqrt(p * (1 - p) / reps),
                "ci_lower": max(0.0, centre - half), "ci_upper": min(1.0, centre + half),
                "mean_events": float(group["events"].mean()),
                "mean_estimate": float(np.exp(log_estimate.mean())) if log_estimate.size else math.nan,
                "failed": int((~group["converged"]).sum()),
                "expected_events": expected, "schoenfeld_power": itt, "schoenfeld_power_naive": naive,
            })
        frame = pd.DataFrame(rows)
        frame.attrs.update(dict(s))
        return frame

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready): ``settings`` and ``rows`` (:meth:`frame`'s rows; NaN -> None)."""
        rows = []
        for record in self.frame().to_dict(orient="records"):
            rows.append({k: (None if isinstance(v, float) and not math.isfinite(v) else
                             (int(v) if isinstance(v, np.integer) else v)) for k, v in record.items()})
        return {"settings": _plain(self.settings), "rows": rows}

    def format(self) -> str:
        """The table as text, with the settings and the hazard ratios used by Schoenfeld."""
        s = self.settings
        frame = self.frame()
        what = {"cox": "Cox (Efron) Wald test", "logrank": "log-rank test",
                "rate_ratio": "negative binomial rate ratio, Wald test"}[s["analysis"]]
        ratio = "RR" if s["analysis"] == "rate_ratio" else "HR"
        lines = [f"power by simulation: {s['scenario']} — {what}, two-sided alpha {s['alpha']:g}, "
                 f"{s['reps']} trials per size, seed {s['seed']}"]
        header = f"{'n':>6} {'power':>7} {'MC s.e.':>8} {'95% interval':>15} {'events':>8} {'mean ' + ratio:>8}"
        survival = s["analysis"] in ("cox", "logrank") and s.get("events_per_participant") is not None
        if survival:
            header += f" {'Schoenfeld ITT':>15} {'naive':>7}"
        lines.append(header)
        for r in frame.itertuples(index=False):
            line = (f"{r.n:>6} {r.power:>7.3f} {r.mc_std_error:>8.4f} {f'{r.ci_lower:.3f}-{r.ci_upper:.3f}':>15} "
                    f"{r.mean_events:>8.1f} {r.mean_estimate:>8.3f}")
            if survival:
                line += f" {r.schoenfeld_power:>15.3f} {r.schoenfeld_power_naive:>7.3f}"
            if r.failed:
                line += f"  ({r.failed} fits failed)"
            lines.append(line)
        if survival:
            lines.append(f"Schoenfeld ITT: intention-to-treat hazard ratio {s['itt_hazard_ratio']:.4f} (Monte Carlo truth, "
                         f"{s['truth_population']:,} people); naive: hazard_ratio_treated {s['hazard_ratio_treated']:g} "
                         f"(as if every conference were held and frailty did nothing); events expected "
                         f"{s['events_per_participant']:.4f} per participant.")
        seconds = s["seconds"]
        where = s["backend"] if s["workers"] is None else f"{s['backend']} ({s['workers']} workers)"
        lines.append(f"{seconds['total']:.1f} s on {where}; CPU seconds: generation "
                     f"{seconds['generation']:.1f} s, follow-up {seconds['followup']:.1f} s, fitting {seconds['fitting']:.1f} s")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _plain(value):
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        value = float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------- entry point
def _seed_sequence(rng) -> tuple[np.random.SeedSequence, str]:
    if isinstance(rng, np.random.SeedSequence):  # a fresh copy: spawning changes the object
        copy = np.random.SeedSequence(rng.entropy, spawn_key=rng.spawn_key, pool_size=rng.pool_size)
        return copy, str(rng.entropy) + ("" if not rng.spawn_key else f" (spawn key {tuple(rng.spawn_key)})")
    if isinstance(rng, np.random.Generator):
        entropy = int(rng.integers(0, 2**63))
        return np.random.SeedSequence(entropy), str(entropy)
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and int(rng) >= 0:
        return np.random.SeedSequence(int(rng)), str(int(rng))
    raise ValueError(f"rng must be a non-negative int seed, a numpy SeedSequence or a Generator, got {rng!r}")


def _sizes(n) -> list[int]:
    values = [n] if isinstance(n, (int, np.integer)) else list(n)
    if not values:
        raise ValueError("n must name at least one sample size")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 2:
            raise ValueError(f"n: every sample size must be a whole number of at least 2, got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ValueError(f"n: sample sizes must be distinct, got {values!r}")
    return out


def power(
    scenario: Scenario | str | os.PathLike,
    *,
    n: int | Sequence[int] = (200, 400, 800),
    reps: int = 2000,
    analysis: str = "cox",
    alpha: float = 0.05,
    rng,
    workers: int | None = None,
    scheduler=None,
    progress: bool = False,
    schoenfeld: bool = True,
    truth_population: int = 2_000_000,
    truth_cache_dir: str | os.PathLike | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> PowerResult:
    """Power of a trial of ``scenario``'s design at each size in ``n``, by simulation.

    Parameters
    ----------
    scenario : Scenario or path to a scenario TOML
    n : int or sequence of int
        Numbers randomised (each >= 2).
    reps : int
        Simulated trials per size (>= 1).
    analysis : {"cox", "logrank", "rate_ratio"}
        The test (see the module notes).
    alpha : float
        Two-sided significance level, in (0, 1).
    rng : int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of every trial (see the module notes on reproducibility).
    workers : int, optional
        Processes of the local pool (default ``os.cpu_count()``); 1 runs in this process.
    scheduler : str or distributed.Client, optional
        Run the chunks on a Dask cluster instead: a scheduler address
        (``"tcp://host:8786"``) or a connected ``distributed.Client``.
    progress : bool
        Show a progress bar (tqdm) on standard error.
    schoenfeld : bool
        Compute the truth (:func:`~rjtrial.simulate.truth.compute_truth`) for the
        Schoenfeld columns (cox/logrank); False leaves them NaN.
    truth_population, truth_cache_dir
        Passed to :func:`~rjtrial.simulate.truth.compute_truth`.
    chunk_size : int
        Replicates per task (each fit depends on its own trial only, so the result does
        not depend on it; it trades scheduling overhead against balance).

    Returns
    -------
    PowerResult
        ``frame()``: one row per size (power, Monte Carlo standard error, interval,
        events, mean estimate, Schoenfeld's power with the ITT and the naive hazard ratio).

    Examples
    --------
    >>> res = power("synthetic/jrc-london-burglary.toml", n=[60, 120], reps=10, rng=1, workers=1,
    ...             schoenfeld=False)
    >>> res.frame()[["n", "reps"]].to_dict(orient="records")
    [{'n': 60, 'reps': 10}, {'n': 120, 'reps': 10}]
    >>> bool(res.frame()["power"].between(0.0, 1.0).all())
    True

    From a script, call it under ``if __name__ == "__main__":`` (the process pool starts
    its workers with ``forkserver``/``spawn``, which re-import the main module).
    """
    from rjtrial.simulate.scenario import load_scenario
    from rjtrial.simulate._replicates import sized_scenario
    from rjtrial._version import __version__

    if analysis not in ANALYSES:
        raise ValueError(f"analysis must be one of {', '.join(ANALYSES)}; got {analysis!r}")
    alpha = _check_alpha(alpha)
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps must be a whole number of at least 1, got {reps!r}")
    sizes = _sizes(n)
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1):
        raise ValueError(f"workers must be a whole number of at least 1, got {workers!r}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a whole number of at least 1, got {chunk_size!r}")
    if schoenfeld and (isinstance(truth_population, bool) or not isinstance(truth_population, (int, np.integer))
                       or truth_population < 1):
        raise ValueError(f"truth_population must be a whole number of at least 1, got {truth_population!r}")
    seed, seed_text = _seed_sequence(rng)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    started = time.perf_counter()

    backend, n_workers = _backend(scheduler, workers)
    threads = None if backend == "in-process" else 1  # one thread per worker process
    tasks = []
    for i, (size, child) in enumerate(zip(sizes, seed.spawn(len(sizes)))):
        sized = sized_scenario(scenario, size)
        seeds = child.spawn(int(reps))
        for j, lo in enumerate(range(0, int(reps), chunk_size)):
            tasks.append({"scenario": sized, "seeds": seeds[lo:lo + chunk_size], "analysis": analysis,
                          "size_index": i, "chunk_index": j, "threads": threads})

    results = list(_execute(tasks, backend, n_workers, scheduler, progress=progress, total=len(sizes) * int(reps)))
    results.sort(key=lambda r: (r["size_index"], r["chunk_index"]))

    frames = []
    seconds = {"generation": 0.0, "followup": 0.0, "fitting": 0.0}
    for r in results:
        for key in seconds:
            seconds[key] += r["seconds"][key]
        m = len(r["p_value"])
        log_estimate = np.asarray(r["estimate"], dtype=float)
        p = np.asarray(r["p_value"], dtype=float)
        frames.append(pd.DataFrame({
            "n": sizes[r["size_index"]],
            "replicate": r["chunk_index"] * chunk_size + np.arange(m),
            "estimate": np.exp(log_estimate), "log_estimate": log_estimate,
            "std_error": np.asarray(r["std_error"], dtype=float), "p_value": p,
            "reject": np.nan_to_num(p, nan=1.0) < alpha,
            "events": np.asarray(r["events"], dtype=float), "converged": np.asarray(r["converged"], dtype=bool),
        }))
    replicates = pd.concat(frames, ignore_index=True)

    truth: dict[str, Any] = {"itt_hazard_ratio": None, "itt_rate_ratio": None, "events_per_participant": None}
    if schoenfeld:
        from rjtrial.simulate.truth import compute_truth

        record = compute_truth(scenario, population=int(truth_population), cache_dir=truth_cache_dir)
        truth = {"itt_hazard_ratio": record["hazard_ratio"], "itt_rate_ratio": record["rate_ratio"],
                 "events_per_participant": sum(record["events"].values()) / record["population"]}
    ratio = scenario.protocol.ratio
    seconds["total"] = time.perf_counter() - started
    settings = {
        "scenario": scenario.id, "scenario_fingerprint": scenario.fingerprint(), "analysis": analysis,
        "alpha": alpha, "seed": seed_text, "reps": int(reps), "n": sizes, "ci_level": CI_LEVEL,
        "hazard_ratio_treated": scenario.reoffending.hazard_ratio_treated, **truth,
        "allocation": ratio[1] / sum(ratio), "truth_population": int(truth_population) if schoenfeld else None,
        "backend": backend, "workers": n_workers, "chunk_size": int(chunk_size), "seconds": seconds,
        "versions": {"rjtrial": __version__, "numpy": np.__version__},
    }
    return PowerResult(replicates, settings)


# ----------------------------------------------------------------------------- execution
def _backend(scheduler, workers) -> tuple[str, int | None]:
    if scheduler is not None:
        return "dask", None  # the cluster's workers
    n_workers = int(workers) if workers else (os.cpu_count() or 1)
    return ("in-process" if n_workers == 1 else "process pool"), n_workers


def _execute(tasks: list[dict], backend: str, workers: int, scheduler, *, progress: bool, total: int) -> Iterable[dict]:
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="trial", desc="power", file=__import__("sys").stderr, dynamic_ncols=True)
    try:
        for result in _results(tasks, backend, workers, scheduler):
            if bar is not None:
                bar.update(len(result["p_value"]))
            yield result
    finally:
        if bar is not None:
            bar.close()


def _results(tasks, backend, workers, scheduler):
    if backend == "in-process":
        for task in tasks:
            yield run_chunk(task)
        return
    if backend == "process pool":
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        # forkserver: workers never inherit threads (numba, Dask) of this process
        if "forkserver" in methods:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(list(_WORKER_MODULES))  # imported once, in the server
        else:  # pragma: no cover - Windows
            context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=context) as pool:
            futures = [pool.submit(run_chunk, task) for task in tasks]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return
    try:
        import distributed
    except ImportError:  # pragma: no cover - dask is a dependency
        raise RjtrialError("scheduler: running on a Dask cluster needs dask[distributed] installed") from None
    own = not isinstance(scheduler, distributed.Client)
    client = distributed.Client(scheduler, timeout="30s") if own else scheduler
    try:
        futures = [client.submit(run_chunk, task, pure=False) for task in tasks]
        try:
            for future in distributed.as_completed(futures):
                yield future.result()
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        if own:
            client.close()
