"""``bayes``: Bayesian random-effects meta-analysis, computed exactly (Röver's bayesmeta approach).

With about ten trials -- a restorative-justice review's usual number -- the between-trial
standard deviation tau is poorly estimated, and the frequentist interval of the pooled effect
ignores that uncertainty (or, with Knapp-Hartung, can be wide and erratic). The Bayesian
normal-normal hierarchical model averages over tau instead, with a weakly informative prior
on it: ``y_i ~ N(theta_i, v_i)``, ``theta_i ~ N(mu, tau^2)``, ``tau ~ p(tau)``, ``mu`` uniform or
normal.

:func:`bayes` computes the posterior without MCMC: given tau everything is normal, so every
marginal posterior (of tau, of mu, of a new trial's effect, of each trial's own effect) is a
one-dimensional integral over tau, evaluated by adaptive Gauss-Legendre quadrature
(:mod:`rjtrial.meta._bayes_posterior`). Posterior medians, means, SDs and credible intervals
(central or shortest) follow; :meth:`BayesResult.plot` draws the joint and marginal posteriors.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from rjtrial._result import Result, jsonable
from rjtrial.errors import ConvergenceWarning, RjtrialWarning
from rjtrial.meta._bayes_posterior import Model, Posterior, PosteriorError
from rjtrial.meta._data import prepare

__all__ = ["INTERVALS", "TAU_PRIORS", "BayesResult", "bayes"]

#: Named priors of tau (each with the scale ``tau_scale``; ``"uniform"`` is improper and has none).
TAU_PRIORS = ("half-normal", "half-cauchy", "exponential", "uniform")
#: Credible intervals: equal-tailed, or the shortest (bayesmeta's default).
INTERVALS = ("central", "shortest")
PARAMETERS = ("mu", "tau", "prediction")


def _tau_prior(tau_prior, tau_scale):
    """(log density of tau on [0, inf), description, scale or None, proper or None if unknown)."""
    if callable(tau_prior):

        def log_density(t):
            values = np.broadcast_to(np.asarray(tau_prior(t), dtype=float), np.shape(t))
            if np.any(~np.isfinite(values) | (values < 0)):
                raise ValueError("tau_prior(tau) must return finite, non-negative densities")
            with np.errstate(divide="ignore"):
                return np.log(values)

        return log_density, f"{getattr(tau_prior, '__name__', 'user-supplied density')} (user-supplied)", None, None
    if tau_prior not in TAU_PRIORS:
        raise ValueError(
            f"tau_prior={tau_prior!r}: choose one of {', '.join(map(repr, TAU_PRIORS))}, or give a "
            "density function of tau"
        )
    if tau_prior == "uniform":
        return (lambda t: np.zeros(np.shape(t))), "uniform on [0, inf) (improper)", None, False
    if (
        isinstance(tau_scale, bool)
        or not isinstance(tau_scale, (int, float, np.integer, np.floating))
        or not math.isfinite(tau_scale)
        or tau_scale <= 0
    ):
        raise ValueError(f"tau_scale must be a positive number, got {tau_scale!r}")
    s = float(tau_scale)
    if tau_prior == "half-normal":

        def log_density(t):
            return math.log(2) - 0.5 * math.log(2 * math.pi) - math.log(s) - 0.5 * (np.asarray(t) / s) ** 2
    elif tau_prior == "half-cauchy":

        def log_density(t):
            return math.log(2 / (math.pi * s)) - np.log1p((np.asarray(t) / s) ** 2)
    else:

        def log_density(t):
            return -math.log(s) - np.asarray(t) / s

    return log_density, f"{tau_prior}(scale={s:g})", s, True


def _mu_prior(mu_prior):
    if mu_prior is None:
        return None, None, "uniform (improper)"
    try:
        mean, sd = (float(v) for v in mu_prior)
    except (TypeError, ValueError):
        raise ValueError(f"mu_prior must be None (uniform) or (mean, sd) of a normal prior, got {mu_prior!r}") from None
    if not (math.isfinite(mean) and math.isfinite(sd) and sd > 0):
        raise ValueError(f"mu_prior=(mean, sd) needs a finite mean and a positive sd, got {mu_prior!r}")
    return mean, sd, f"normal(mean={mean:g}, sd={sd:g})"


@dataclass(frozen=True, eq=False)
class BayesResult(Result):
    """Posterior summaries of a Bayesian random-effects meta-analysis (from :func:`bayes`).

    Attributes
    ----------
    estimate, mean, std_error : float
        Posterior median, mean and SD of the overall effect mu (on the scale of the effect
        sizes, e.g. log odds ratio).
    ci_lower, ci_upper : float
        (1 - alpha) credible interval of mu (``interval``: central or shortest).
    tau, tau_mean, tau_std_error, tau_ci_lower, tau_ci_upper : float
        Posterior median, mean, SD and credible interval of the between-study SD tau.
    prediction, prediction_mean, prediction_std_error, pi_lower, pi_upper : float
        The same for a new study's effect theta_new (the posterior predictive distribution):
        ``pi_lower, pi_upper`` is the (1 - alpha) prediction interval.
    k, n_omitted : int
        Studies used, and studies left out for a missing estimate or variance.
    measure : str or None
        ``effects.attrs["measure"]``.
    alpha : float
        1 - the credible level.
    interval : str
        ``"central"`` (equal-tailed) or ``"shortest"``.
    tau_prior, mu_prior : str
        The priors, described.
    tau_scale : float or None
        The scale of a named tau prior.
    shrinkage : pandas.DataFrame
        Per study used: ``observed`` (y_i), ``observed_std_error`` (sqrt(v_i)), ``estimate``
        (posterior median of the study's true effect theta_i), ``mean``, ``std_error``
        (posterior SD), ``ci_lower``, ``ci_upper``; indexed by study.
    converged : bool
        The quadrature met its tolerance (normalising constant and posterior mean of tau
        stable to 1e-13 when the rule is refined).
    n_nodes : int
        Quadrature nodes over tau.
    notes : tuple of str
        What the fit had to say (also issued as warnings).
    """

    estimate: float
    mean: float
    std_error: float
    ci_lower: float
    ci_upper: float
    tau: float
    tau_mean: float
    tau_std_error: float
    tau_ci_lower: float
    tau_ci_upper: float
    prediction: float
    prediction_mean: float
    prediction_std_error: float
    pi_lower: float
    pi_upper: float
    k: int
    n_omitted: int
    measure: str | None
    alpha: float
    interval: str
    tau_prior: str
    tau_scale: float | None
    mu_prior: str
    shrinkage: pd.DataFrame = field(repr=False)
    converged: bool = True
    n_nodes: int = 0
    notes: tuple = ()
    _posterior: Any = field(default=None, repr=False)  # the Posterior (None only before construction)

    # ---- tidy frames --------------------------------------------------------------------------
    def summary_frame(self) -> pd.DataFrame:
        """``term`` (mu, tau, prediction), ``estimate`` (posterior median), ``mean``,
        ``std_error`` (posterior SD), ``ci_lower``, ``ci_upper`` (credible / prediction interval);
        ``attrs``: ``alpha``, ``interval``, ``measure``."""
        frame = pd.DataFrame(
            {
                "term": list(PARAMETERS),
                "estimate": [self.estimate, self.tau, self.prediction],
                "mean": [self.mean, self.tau_mean, self.prediction_mean],
                "std_error": [self.std_error, self.tau_std_error, self.prediction_std_error],
                "ci_lower": [self.ci_lower, self.tau_ci_lower, self.pi_lower],
                "ci_upper": [self.ci_upper, self.tau_ci_upper, self.pi_upper],
            }
        )
        frame.attrs.update(alpha=self.alpha, interval=self.interval, measure=self.measure)
        return frame

    def study_frame(self) -> pd.DataFrame:
        """The shrunken study effects (:attr:`shrinkage`), a copy."""
        return self.shrinkage.copy()

    # ---- the posterior distributions ----------------------------------------------------------
    def _mixture(self, parameter):
        if parameter == "mu" or parameter == "prediction":
            return self._posterior.mixture(parameter)
        labels = list(self.shrinkage.index)
        if parameter not in labels:
            raise ValueError(
                f"parameter={parameter!r}: give 'mu', 'tau', 'prediction' or a study label "
                f"({', '.join(map(str, labels[:5]))}{'...' if len(labels) > 5 else ''})"
            )
        return self._posterior.mixture("study", labels.index(parameter))

    def cdf(self, parameter, x) -> np.ndarray:
        """Posterior probability that ``parameter`` (``"mu"``, ``"tau"``, ``"prediction"`` or a
        study label) is at most ``x``."""
        if parameter == "tau":
            return self._posterior.tau_cdf(x)
        return self._posterior.cdf(x, *self._mixture(parameter))

    def quantile(self, parameter, p) -> np.ndarray:
        """Posterior quantiles of ``parameter`` at probabilities ``p``."""
        p = np.atleast_1d(np.asarray(p, dtype=float))
        if np.any((p < 0) | (p > 1)):
            raise ValueError("probabilities must be in [0, 1]")
        if parameter == "tau":
            return np.array([self._posterior.tau_quantile(q) for q in p])
        return self._posterior.quantile(p, *self._mixture(parameter))

    def density(self, parameter, x) -> np.ndarray:
        """Posterior density of ``parameter`` at ``x``."""
        if parameter == "tau":
            return self._posterior.tau_density(x)
        return self._posterior.density(x, *self._mixture(parameter))

    def credible_interval(self, parameter, *, alpha: float | None = None, interval: str | None = None):
        """(lower, upper) credible interval of ``parameter``, by default at the fit's level and type."""
        alpha = self.alpha if alpha is None else _check_alpha(alpha)
        interval = self.interval if interval is None else _check_interval(interval)
        if parameter == "tau":
            return self._posterior.interval(alpha, interval)
        means, sds = self._mixture(parameter)
        return self._posterior.interval(alpha, interval, means=means, sds=sds)

    def joint_density(self, tau, mu) -> np.ndarray:
        """Joint posterior density of (tau, mu) at paired values: ``p(tau | y) N(mu; m(tau), V(tau))``."""
        tau, mu = np.broadcast_arrays(np.asarray(tau, dtype=float), np.asarray(mu, dtype=float))
        _, mean, var = self._posterior.model.conditional(tau.ravel())
        z = (mu.ravel() - mean) / np.sqrt(var)
        dens = self._posterior.tau_density(tau.ravel()) * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi * var)
        return dens.reshape(tau.shape)

    def plot(self, *, fig=None, exponentiate: bool = False):
        """The joint posterior of (tau, mu) and the marginal posteriors (see
        :func:`rjtrial.meta.bayesian_plots.plot_posterior`); returns the Figure."""
        from rjtrial.meta.bayesian_plots import plot_posterior

        return plot_posterior(self, fig=fig, exponentiate=exponentiate)

    def plot_forest(self, *, ax=None):
        """Forest plot of the observed and shrunken study effects, mu and the prediction interval
        (see :func:`rjtrial.meta.bayesian_plots.plot_forest`); returns the Figure."""
        from rjtrial.meta.bayesian_plots import plot_forest

        return plot_forest(self, ax=ax)

    # ---- people and programs ------------------------------------------------------------------
    def format(self, digits: int = 4) -> str:
        level = f"{100 * (1 - self.alpha):g}%"
        omitted = f" ({self.n_omitted} omitted for a missing value)" if self.n_omitted else ""
        lines = [
            "Bayesian random-effects meta-analysis (normal-normal hierarchical model, exact quadrature)",
            f"k = {self.k} {'study' if self.k == 1 else 'studies'}{omitted}"
            + (f"; measure {self.measure}" if self.measure else ""),
            f"Priors: tau ~ {self.tau_prior}; mu ~ {self.mu_prior}",
            f"{'':12s}{'median':>10s}{'mean':>10s}{'sd':>10s}   {level} {self.interval} interval",
        ]

        def row(name, median, mean, sd, lo, hi):
            return (
                f"{name:12s}{median:>10.{digits}f}{mean:>10.{digits}f}{sd:>10.{digits}f}   "
                f"[{lo:.{digits}f}, {hi:.{digits}f}]"
            )

        lines.append(row("mu", self.estimate, self.mean, self.std_error, self.ci_lower, self.ci_upper))
        lines.append(row("tau", self.tau, self.tau_mean, self.tau_std_error, self.tau_ci_lower, self.tau_ci_upper))
        lines.append(
            row(
                "prediction",
                self.prediction,
                self.prediction_mean,
                self.prediction_std_error,
                self.pi_lower,
                self.pi_upper,
            )
        )
        lines.append("Shrunken study effects (posterior median and interval; observed in parentheses):")
        for label, r in self.shrinkage.iterrows():
            lines.append(
                f"  {str(label):24.24s}{r.estimate:>10.{digits}f}   [{r.ci_lower:.{digits}f}, "
                f"{r.ci_upper:.{digits}f}]   ({r.observed:.{digits}f})"
            )
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["shrinkage"] = jsonable(self.shrinkage.reset_index())
        return out


def _check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    return float(alpha)


def _check_interval(interval) -> str:
    if interval not in INTERVALS:
        raise ValueError(f"interval={interval!r}: choose one of {', '.join(map(repr, INTERVALS))}")
    return interval


def bayes(
    effects: pd.DataFrame,
    *,
    tau_prior="half-normal",
    tau_scale: float = 0.5,
    mu_prior=None,
    alpha: float = 0.05,
    interval: str = "central",
    na_action: str = "omit",
) -> BayesResult:
    """Bayesian random-effects meta-analysis: the exact posterior of the normal-normal model.

    Parameters
    ----------
    effects : pandas.DataFrame
        One row per study with ``estimate`` and ``variance`` (from :mod:`rjtrial.effects`; its
        index labels the studies).
    tau_prior : {"half-normal", "half-cauchy", "exponential", "uniform"} or callable, default "half-normal"
        Prior of the between-study SD tau: half-normal, half-Cauchy or exponential with scale
        ``tau_scale``, the improper uniform on [0, inf) (needs 3 studies, or 2 with a normal
        ``mu_prior``), or a function returning the (possibly unnormalised) density at an array
        of tau values.
    tau_scale : float, default 0.5
        Scale of the named prior: the half-normal's sigma (0.5 puts 95% of the prior below
        tau = 0.98: "fairly extreme" heterogeneity of log odds ratios, Röver 2020, section
        3.3, after Spiegelhalter et al. 2004), the half-Cauchy's scale, the exponential's mean.
        Choose it on the scale of the effect sizes. Ignored by ``"uniform"`` and functions.
    mu_prior : (float, float) or None, default None
        ``(mean, sd)`` of a normal prior on mu; None for the improper uniform prior (the
        posterior of mu then tracks the likelihood).
    alpha : float, default 0.05
        Intervals are (1 - alpha) credible and prediction intervals.
    interval : {"central", "shortest"}, default "central"
        Equal-tailed intervals, or the shortest ones (bayesmeta's default; for tau they start
        at 0 when the posterior density is highest there).
    na_action : {"omit", "raise"}, default "omit"
        Rows with a missing estimate or variance are left out and counted in ``n_omitted``
        (with a warning), or raise a DataError naming the row.

    Returns
    -------
    BayesResult
        Posterior median, mean, SD and credible interval of mu (``estimate, mean, std_error,
        ci_lower, ci_upper``) and of tau (``tau, tau_mean, tau_std_error, tau_ci_lower,
        tau_ci_upper``), the posterior predictive median and interval of a new study's effect
        (``prediction, pi_lower, pi_upper``), each study's shrunken effect (``shrinkage``), the
        posterior's ``cdf``, ``quantile``, ``density``, ``joint_density`` and ``plot``.

    Raises
    ------
    ValueError
        An unknown prior or interval type, a non-positive scale, a malformed ``mu_prior``, an
        improper posterior (uniform priors on both tau and mu with fewer than 3 studies).
    rjtrial.errors.DataError
        A study with a non-positive variance, or a missing one with ``na_action="raise"``.

    Notes
    -----
    Given tau, mu has the normal posterior with mean ``m(tau) = sum(w y) / sum(w)`` and
    variance ``V(tau) = 1 / sum(w)``, ``w_i = 1 / (v_i + tau^2)`` (a normal prior on mu adds
    one term, ``mu_mean`` with variance ``mu_sd^2``), and the marginal posterior of tau is
    ``p(tau) prod(w_i)^(1/2) V(tau)^(1/2) exp(-sum(w_i (y_i - m)^2) / 2)`` up to a constant
    (Röver 2020, eq. 6-11). A new study's effect is ``N(m, V + tau^2)`` given tau; study i's
    effect ``N((1 - B_i) y_i + B_i m, (1 - B_i) v_i + B_i^2 V)`` with ``B_i = v_i / (v_i +
    tau^2)``. Each marginal is the mixture of these normals over the posterior of tau,
    integrated by Gauss-Legendre quadrature on ``u = tau / (s + tau)`` with panels doubled until
    the normalising constant and the posterior mean of tau are stable to 1e-13.

    This is the model and approach of R ``bayesmeta`` (Röver 2020), computed without its
    discretisation of the mixture (DIRECT algorithm; default accuracy ~1e-5 for mu and ~1e-3
    for shrinkage quantiles). Agreement: with an independent two-dimensional quadrature of
    the joint posterior to 1e-8 (tests/test_meta_bayesian.py); with ``bayesmeta`` 3.4 run at
    ``delta = 1e-6, epsilon = 1e-9`` to 6.3e-7 on Crins et al. (2014), dat.bcg and
    dat.hart1999 (tests/validation/test_crins2014_bayes.py, test_bcg_hart1999_bayes.py), except
    that bayesmeta's shortest intervals, whose ends it finds by ``optimize()`` at a tolerance of
    1.2e-4, lie up to 1.7e-5 from ours and are no narrower (to 3e-8); with the numbers published in
    Röver (2020), section 3.3, to their printed precision for tau and to bayesmeta's default
    accuracy (which reprints them exactly) for mu, the prediction and the shrunken effects.

    References
    ----------
    Röver, C. (2020). Bayesian random-effects meta-analysis using the bayesmeta R package.
    Journal of Statistical Software, 93(6), 1-51. doi:10.18637/jss.v093.i06

    Friede, T., Röver, C., Wandel, S., & Neuenschwander, B. (2017). Meta-analysis of few small
    studies in orphan diseases. Research Synthesis Methods, 8(1), 79-91. doi:10.1002/jrsm.1217

    Examples
    --------
    >>> import pandas as pd
    >>> es = pd.DataFrame({"estimate": [-2.3097, -0.4595, -2.3026, -1.7579, -1.2585, -2.4179],
    ...                    "variance": [0.3594, 0.3096, 0.7750, 0.2078, 0.4122, 2.3373]})
    >>> res = bayes(es, tau_prior="half-normal", tau_scale=0.5, mu_prior=(0, 4))
    >>> print(f"mu {res.estimate:.3f} [{res.ci_lower:.3f}, {res.ci_upper:.3f}], tau {res.tau:.3f}")
    mu -1.574 [-2.238, -0.934], tau 0.344
    """
    alpha = _check_alpha(alpha)
    interval = _check_interval(interval)
    log_prior, prior_text, scale, proper = _tau_prior(tau_prior, tau_scale)
    mu_mean, mu_sd, mu_text = _mu_prior(mu_prior)
    data = prepare(effects, na_action=na_action)
    rows = data.estimable
    if not rows.any():
        raise ValueError("no study has an estimate and a variance")
    y, v = data.yi[rows], data.vi[rows]
    k = int(rows.sum())
    notes = []
    if not rows.all():
        left_out = ", ".join(map(str, data.studies[~rows]))
        notes.append(f"studies left out (missing estimate or variance): {left_out}")
    if proper is False and k < (2 if mu_sd is not None else 3):
        raise ValueError(
            f"with the improper uniform prior on tau the posterior is improper for {k} "
            f"{'study' if k == 1 else 'studies'}: it needs at least {2 if mu_sd is not None else 3} "
            "(or a proper tau_prior)"
        )
    try:
        posterior = Posterior(Model(y, v, log_prior, mu_mean, mu_sd))
    except PosteriorError as exc:
        raise ValueError(f"{exc}: is the tau prior proper, or are there enough studies?") from None
    if not posterior.converged:
        notes.append(f"the quadrature over tau did not reach its tolerance with {posterior.tau.size} nodes")
    exponent = posterior.tail_exponent()
    mean_exists, variance_exists = exponent < -2, exponent < -3
    if not variance_exists:
        notes.append(
            f"the posterior of tau has a heavy tail (density ~ tau^{exponent:.0f}): its "
            f"{'mean and SD do' if not mean_exists else 'SD does'} not exist, nor those of "
            f"{'mu and ' if mu_sd is None else ''}a new study's effect (reported as NaN); medians and "
            "intervals are unaffected"
        )
    for note in notes:
        category = ConvergenceWarning if "quadrature" in note else RjtrialWarning
        warnings.warn(note, category, stacklevel=2)

    def moments(means, sds, *, bounded=False):
        mean, sd = posterior.moments(means, sds)
        return (mean if bounded or mean_exists else np.nan), (sd if bounded or variance_exists else np.nan)

    summaries = {}
    for name in ("mu", "prediction"):
        means, sds = posterior.mixture(name)
        median = float(posterior.quantile(0.5, means, sds)[0])
        summaries[name] = (
            median,
            *moments(means, sds, bounded=name == "mu" and mu_sd is not None),
            *posterior.interval(alpha, interval, means=means, sds=sds),
        )
    tau_mean, tau_sd = moments(posterior.tau, np.zeros_like(posterior.tau))
    tau_summary = (posterior.tau_quantile(0.5), tau_mean, tau_sd, *posterior.interval(alpha, interval))
    studies = data.studies[rows]
    shrinkage = _shrinkage(posterior, y, v, studies, alpha, interval)
    mu, pred = summaries["mu"], summaries["prediction"]
    return BayesResult(
        estimate=mu[0],
        mean=mu[1],
        std_error=mu[2],
        ci_lower=mu[3],
        ci_upper=mu[4],
        tau=tau_summary[0],
        tau_mean=tau_summary[1],
        tau_std_error=tau_summary[2],
        tau_ci_lower=tau_summary[3],
        tau_ci_upper=tau_summary[4],
        prediction=pred[0],
        prediction_mean=pred[1],
        prediction_std_error=pred[2],
        pi_lower=pred[3],
        pi_upper=pred[4],
        k=k,
        n_omitted=int(data.n_rows - k),
        measure=data.measure,
        alpha=alpha,
        interval=interval,
        tau_prior=prior_text,
        tau_scale=scale,
        mu_prior=mu_text,
        shrinkage=shrinkage,
        converged=bool(posterior.converged),
        n_nodes=int(posterior.tau.size),
        notes=tuple(notes),
        _posterior=posterior,
    )


def _shrinkage(posterior: Posterior, y, v, studies, alpha: float, interval: str) -> pd.DataFrame:
    """Each study's shrunken effect: quantiles of many studies solved together, in chunks."""
    k = len(y)
    median, mean, sd, lower, upper = (np.empty(k) for _ in range(5))
    chunk = max(1, int(2_000_000 // posterior.tau.size))
    for start in range(0, k, chunk):
        idx = np.arange(start, min(start + chunk, k))
        pairs = [posterior.mixture("study", int(i)) for i in idx]
        means, sds = np.array([m for m, _ in pairs]), np.array([s for _, s in pairs])
        mean[idx], sd[idx] = posterior.moments(means, sds)
        median[idx] = posterior.quantile(np.full(idx.size, 0.5), means, sds)
        if interval == "central":
            lower[idx] = posterior.quantile(np.full(idx.size, alpha / 2), means, sds)
            upper[idx] = posterior.quantile(np.full(idx.size, 1 - alpha / 2), means, sds)
        else:
            for j, i in enumerate(idx):
                lower[i], upper[i] = posterior.interval(alpha, interval, means=means[j], sds=sds[j])
    frame = pd.DataFrame(
        {
            "observed": y,
            "observed_std_error": np.sqrt(v),
            "estimate": median,
            "mean": mean,
            "std_error": sd,
            "ci_lower": lower,
            "ci_upper": upper,
        },
        index=studies,
    )
    frame.attrs.update(alpha=alpha, interval=interval)
    return frame
