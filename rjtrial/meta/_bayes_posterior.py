"""The exact posterior of the normal-normal hierarchical model, by one-dimensional quadrature.

Model: ``y_i ~ N(theta_i, v_i)``, ``theta_i ~ N(mu, tau^2)``, priors ``p(tau)`` and ``mu``
uniform (improper) or ``N(m0, s0^2)``. Given tau, everything is normal and closed-form
(Röver 2020, section 2): the marginal likelihood of tau, and the conditional normals of mu,
of a new study's effect and of each study's effect. Every marginal posterior is therefore a
one-dimensional integral over tau of closed-form terms, computed here with composite
Gauss-Legendre quadrature on ``u = tau / (s + tau)`` (so that ``[0, inf)`` becomes ``[0, 1)``),
doubling the panels until the normalising constant and the first moments agree to 1e-13.
Quantiles solve ``F(x) = p`` by safeguarded Newton steps on the mixture CDF; shortest
intervals solve ``f(lower) = f(upper)``.

No MCMC and no discretisation of the posterior of mu (bayesmeta's DIRECT algorithm): the
accuracy is that of the quadrature, ~1e-12 for these smooth integrands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

GAUSS_NODES, GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(20)
FIRST_PANELS = 32
MAX_PANELS = 8192
TOLERANCE = 1e-13


@dataclass(frozen=True, eq=False)
class Model:
    """Data and priors: estimates ``y``, variances ``v``, ``log_prior(tau)`` and the prior of mu
    (``mu_mean``, ``mu_sd``; None for the improper uniform prior)."""

    y: np.ndarray
    v: np.ndarray
    log_prior: Callable[[np.ndarray], np.ndarray]
    mu_mean: float | None = None
    mu_sd: float | None = None

    def conditional(self, tau: np.ndarray):
        """``(log marginal likelihood, mean, variance)`` of mu given each tau (up to a constant).

        With a normal prior on mu, the prior enters as one more "study" with estimate ``mu_mean``
        and variance ``mu_sd^2`` (no tau added), as in bayesmeta's likelihood.
        """
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        out_ll = np.empty(tau.shape)
        out_mean = np.empty(tau.shape)
        out_var = np.empty(tau.shape)
        chunk = max(1, int(4_000_000 // max(self.y.size, 1)))
        for start in range(0, tau.size, chunk):
            t = tau[start : start + chunk, None]
            total = self.v[None, :] + t**2
            w = 1.0 / total
            sw = w.sum(axis=1)
            swy = (w * self.y[None, :]).sum(axis=1)
            logdet = np.log(total).sum(axis=1)
            if self.mu_sd is not None and self.mu_mean is not None:
                sw = sw + 1.0 / self.mu_sd**2
                swy = swy + self.mu_mean / self.mu_sd**2
                logdet = logdet + 2 * np.log(self.mu_sd)
            mean = swy / sw
            q = (w * (self.y[None, :] - mean[:, None]) ** 2).sum(axis=1)
            if self.mu_sd is not None and self.mu_mean is not None:
                q = q + (self.mu_mean - mean) ** 2 / self.mu_sd**2
            out_ll[start : start + chunk] = -0.5 * (logdet + q + np.log(sw))
            out_mean[start : start + chunk] = mean
            out_var[start : start + chunk] = 1.0 / sw
        return out_ll, out_mean, out_var

    def log_posterior(self, tau) -> np.ndarray:
        """Unnormalised log marginal posterior density of tau (``-inf`` for tau < 0)."""
        tau = np.atleast_1d(np.asarray(tau, dtype=float))
        ll, _, _ = self.conditional(np.maximum(tau, 0.0))
        with np.errstate(divide="ignore"):
            lp = np.asarray(self.log_prior(np.maximum(tau, 0.0)), dtype=np.float64) + ll
        return np.where(tau < 0, -np.inf, lp)


class PosteriorError(ValueError):
    """The posterior of tau cannot be normalised (an improper prior with too few studies)."""


class Posterior:
    """The marginal posterior of tau as quadrature nodes and weights, and every mixture over it."""

    def __init__(self, model: Model):
        self.model = model
        self.scale = self._scale()
        self.offset = self._offset()
        panels = FIRST_PANELS
        previous = self._rule(panels)
        while True:
            panels *= 2
            current = self._rule(panels)
            if _agree(previous, current) or panels >= MAX_PANELS:
                break
            previous = current
        self.converged = _agree(previous, current)
        self.panels = panels
        self.tau, self.weight, self.edges, self.panel_mass, self.normaliser = current[:5]
        self.weight = self.weight / self.normaliser
        self.panel_mass = self.panel_mass / self.normaliser
        _, self.mu_mean, self.mu_var = model.conditional(self.tau)

    # ---- construction --------------------------------------------------------------------------
    def _scale(self) -> float:
        """A typical tau of the posterior (the maximum of tau p(tau), on a log grid): the scale
        ``s`` of the map ``tau = s u / (1 - u)``, putting the bulk of the mass mid-interval."""
        typical = float(np.sqrt(np.median(self.model.v)))
        grid = typical * np.logspace(-6, 4, 401)
        lp = self.model.log_posterior(grid) + np.log(grid)
        if not np.isfinite(lp).any():
            raise PosteriorError("the posterior density of tau is zero or undefined everywhere")
        return float(grid[int(np.nanargmax(np.where(np.isfinite(lp), lp, -np.inf)))])

    def _offset(self) -> float:
        """The log density's maximum (subtracted before exponentiating)."""
        grid = self.scale * np.concatenate([[0.0], np.logspace(-8, 6, 1401)])
        lp = self.model.log_posterior(grid)
        best = float(np.max(lp[np.isfinite(lp)]))
        i = int(np.argmax(np.where(np.isfinite(lp), lp, -np.inf)))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
        if hi > lo:
            found = optimize.minimize_scalar(
                lambda t: -self.model.log_posterior(t)[0],
                bounds=(lo, hi),
                method="bounded",
                options={"xatol": 1e-12 * max(hi, 1e-300)},
            )
            best = max(best, -float(found.fun))
        return best

    def _rule(self, panels: int):
        """Nodes, weights (integrating the unnormalised density), panel edges (in u) and masses."""
        edges = np.linspace(0.0, 1.0, panels + 1)
        half = np.diff(edges) / 2
        mid = edges[:-1] + half
        u = (mid[:, None] + half[:, None] * GAUSS_NODES[None, :]).ravel()
        tau = self.scale * u / (1 - u)
        jacobian = self.scale / (1 - u) ** 2
        density = np.exp(self.model.log_posterior(tau) - self.offset)
        weight = (half[:, None] * GAUSS_WEIGHTS[None, :]).ravel() * jacobian * density
        if not np.all(np.isfinite(weight)):
            raise PosteriorError("the posterior density of tau is not finite")
        panel_mass = weight.reshape(panels, -1).sum(axis=1)
        normaliser = float(panel_mass.sum())
        if not np.isfinite(normaliser) or normaliser <= 0:
            raise PosteriorError("the posterior of tau cannot be normalised")
        first = float(np.sum(weight * u))  # E(u) (bounded: the mean of tau may not exist)
        return tau, weight, edges, panel_mass, normaliser, first

    def tail_exponent(self) -> float:
        """``d log p(tau | y) / d log tau`` far out in the tail: the posterior mean of tau exists
        if it is below -2, its variance if below -3 (a half-Cauchy or uniform prior with few
        studies has a tail as heavy as ``tau^-2``)."""
        far = self.scale * np.array([1e7, 1e8])
        lp = self.model.log_posterior(far)
        if not np.all(np.isfinite(lp)):
            return -np.inf
        return float((lp[1] - lp[0]) / np.log(10.0))

    # ---- tau -----------------------------------------------------------------------------------
    def tau_density(self, x) -> np.ndarray:
        """Normalised marginal posterior density of tau at ``x`` (0 at infinity)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        finite = np.isfinite(x)
        out = np.zeros(x.shape)
        out[finite] = np.exp(self.model.log_posterior(x[finite]) - self.offset) / self.normaliser
        return out

    def tau_cdf(self, x) -> np.ndarray:
        """P(tau <= x): whole panels summed, the last one integrated again up to ``x``."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        out = np.zeros(x.shape)
        for j, value in enumerate(x):
            if value <= 0:
                continue
            if not np.isfinite(value):
                out[j] = 1.0
                continue
            u = value / (self.scale + value)
            panel = min(int(np.searchsorted(self.edges, u, side="right")) - 1, self.panel_mass.size - 1)
            below = float(self.panel_mass[:panel].sum())
            a = self.edges[panel]
            half = (u - a) / 2
            nodes = a + half + half * GAUSS_NODES
            tau = self.scale * nodes / (1 - nodes)
            part = np.sum(half * GAUSS_WEIGHTS * self.scale / (1 - nodes) ** 2 * self.tau_density(tau))
            out[j] = min(below + part, 1.0)
        return out

    def tau_quantile(self, p: float) -> float:
        if p <= 0:
            return 0.0
        if p >= 1:
            return float("inf")
        cumulative = np.concatenate([[0.0], np.cumsum(self.panel_mass)])
        panel = min(int(np.searchsorted(cumulative, p, side="left")) - 1, self.panel_mass.size - 1)
        lo, hi = self.edges[max(panel, 0)], self.edges[panel + 1]

        def excess(u):
            return float(self.tau_cdf(self.scale * u / (1 - u))[0]) - p if u < 1 else 1.0 - p

        if excess(lo) > 0:
            lo = 0.0
        if excess(hi) < 0:
            hi = 1.0 - 1e-16
        u = optimize.brentq(excess, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
        return float(self.scale * u / (1 - u))

    # ---- mixtures over tau ---------------------------------------------------------------------
    def mixture(self, kind: str, study: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Conditional means and SDs (one per tau node) of ``"mu"``, ``"prediction"`` (a new
        study's effect) or ``"study"`` (study ``study``'s effect, shrunken)."""
        if kind == "mu":
            return self.mu_mean, np.sqrt(self.mu_var)
        if kind == "prediction":
            return self.mu_mean, np.sqrt(self.mu_var + self.tau**2)
        y, v = self.model.y[study], self.model.v[study]
        shrink = v / (v + self.tau**2)  # B_i: weight of mu in E(theta_i | mu, tau, y_i)
        mean = (1 - shrink) * y + shrink * self.mu_mean
        var = (1 - shrink) * v + shrink**2 * self.mu_var
        return mean, np.sqrt(var)

    def moments(self, means: np.ndarray, sds: np.ndarray):
        """Mixture mean and SD; ``means``, ``sds`` one per node, or one row of nodes per mixture."""
        first = np.sum(self.weight * means, axis=-1)
        second = np.sum(self.weight * (sds**2 + means**2), axis=-1)
        sd = np.sqrt(np.maximum(second - first**2, 0.0))
        return (float(first), float(sd)) if np.ndim(first) == 0 else (first, sd)

    def cdf(self, x, means, sds) -> np.ndarray:
        """Mixture CDF at ``x``: ``sum_j w_j Phi((x - m_j) / s_j)`` (one mixture for every x, or
        one row of ``means``, ``sds`` per x)."""
        x = np.atleast_1d(np.asarray(x, dtype=float))
        means, sds = np.atleast_2d(means), np.atleast_2d(sds)
        return (self.weight * special.ndtr((x[:, None] - means) / sds)).sum(axis=1)

    def density(self, x, means, sds) -> np.ndarray:
        x = np.atleast_1d(np.asarray(x, dtype=float))
        means, sds = np.atleast_2d(means), np.atleast_2d(sds)
        with np.errstate(invalid="ignore"):
            z = np.where(np.isfinite(x)[:, None], (x[:, None] - means) / sds, np.inf)
        return (self.weight * np.exp(-0.5 * z**2) / (np.sqrt(2 * np.pi) * sds)).sum(axis=1)

    def quantile(self, p, means, sds) -> np.ndarray:
        """Mixture quantiles: Newton on the CDF, kept inside a shrinking bracket (bisection if a
        step leaves it), each until its step is below 1e-14 relative (one mixture for every p,
        or one row of ``means``, ``sds`` per p)."""
        p = np.atleast_1d(np.asarray(p, dtype=float))
        edge = (p <= 0) | (p >= 1)
        if edge.all():
            return np.where(p <= 0, -np.inf, np.inf)
        means, sds = np.atleast_2d(means), np.atleast_2d(sds)
        rowwise = means.shape[0] > 1
        mean, sd = self.moments(means, sds)
        lo = np.broadcast_to(np.min(means - 40 * sds, axis=-1), p.shape).astype(float)
        hi = np.broadcast_to(np.max(means + 40 * sds, axis=-1), p.shape).astype(float)
        x = np.clip(
            np.broadcast_to(mean, p.shape) + np.broadcast_to(sd, p.shape) * special.ndtri(np.clip(p, 1e-300, 1)), lo, hi
        )
        active = ~edge
        for _ in range(300):
            idx = np.flatnonzero(active)
            if idx.size == 0:
                break
            m, s = (means[idx], sds[idx]) if rowwise else (means, sds)
            z = (x[idx, None] - m) / s
            f = (self.weight * special.ndtr(z)).sum(axis=1) - p[idx]
            d = (self.weight * np.exp(-0.5 * z**2) / (np.sqrt(2 * np.pi) * s)).sum(axis=1)
            lo[idx] = np.where(f < 0, x[idx], lo[idx])
            hi[idx] = np.where(f > 0, x[idx], hi[idx])
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                candidate = x[idx] - np.where(d > 0, f / d, np.inf)
            outside = ~np.isfinite(candidate) | (candidate <= lo[idx]) | (candidate >= hi[idx])
            new = np.where(f == 0, x[idx], np.where(outside, (lo[idx] + hi[idx]) / 2, candidate))
            done = (np.abs(new - x[idx]) <= 1e-14 * np.maximum(1.0, np.abs(x[idx]))) | (f == 0)
            x[idx] = new
            active[idx[done]] = False
        return np.where(p <= 0, -np.inf, np.where(p >= 1, np.inf, x))

    # ---- intervals -----------------------------------------------------------------------------
    def interval(self, alpha: float, how: str, *, means=None, sds=None) -> tuple[float, float]:
        """A (1 - alpha) credible interval of tau (``means is None``) or of a mixture:
        equal-tailed (``"central"``) or the shortest (``f(lower) = f(upper)``; for tau it may
        start at 0)."""
        if means is None:
            quantile, density = self.tau_quantile, lambda x: float(self.tau_density(x)[0])
        else:

            def quantile(q):
                return float(self.quantile(q, means, sds)[0])

            def density(x):
                return float(self.density(x, means, sds)[0])

        if how == "central":
            return quantile(alpha / 2), quantile(1 - alpha / 2)

        def gap(u):
            return density(quantile(u)) - density(quantile(u + 1 - alpha))

        if gap(0.0) >= 0:
            u = 0.0
        elif gap(alpha) <= 0:
            u = alpha
        else:
            u = optimize.brentq(gap, 0.0, alpha, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200)
        return quantile(u), quantile(u + 1 - alpha)


def _agree(previous, current) -> bool:
    """Normaliser and posterior mean of ``u = tau / (s + tau)`` unchanged (relative 1e-13) when
    the panels are doubled."""
    z0, z1 = previous[4], current[4]
    m0, m1 = previous[5] / z0, current[5] / z1
    return abs(z1 / z0 - 1) < TOLERANCE and abs(m1 - m0) <= TOLERANCE * max(abs(m1), 1e-300)
