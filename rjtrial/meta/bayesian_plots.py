"""The joint and marginal posteriors of a Bayesian meta-analysis (matplotlib), as bayesmeta's ``plot``."""

from __future__ import annotations

import numpy as np

from rjtrial.meta.plots import MEASURE_LABELS

#: Probability contents of the joint credible regions drawn (highest posterior density regions).
REGIONS = (0.5, 0.9, 0.95, 0.99)


def plot_posterior(result, *, fig=None, exponentiate: bool = False, regions=REGIONS, points: int = 160):
    """Three panels: the joint posterior of (tau, mu), and the marginal posteriors of mu and tau.

    Parameters
    ----------
    result : BayesResult
        From :func:`rjtrial.meta.bayes`.
    fig : matplotlib.figure.Figure, optional
        Figure to draw on (cleared first); by default a new 10 x 7.5 inch figure.
    exponentiate : bool, default False
        Label the mu axes on the ratio scale (``exp(mu)``) for log ratios; the densities stay
        on the log scale.
    regions : sequence of float, default (0.5, 0.9, 0.95, 0.99)
        Probability contents of the joint credible regions outlined (highest density).
    points : int, default 160
        Grid points along each axis of the joint density.

    Returns
    -------
    matplotlib.figure.Figure
        Top: the joint density's credible regions over (tau, mu), with the conditional
        posterior mean of mu given tau and its 95% band (blue) and the marginal medians and
        intervals (green). Bottom left: the marginal posterior of mu (solid) and the
        posterior predictive of a new study's effect (dashed), the credible interval shaded.
        Bottom right: the marginal posterior of tau and its prior (dotted).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from rjtrial.meta import bayes
    >>> es = pd.DataFrame({"estimate": [-0.9, -1.6, -0.2, -0.4], "variance": [0.36, 0.44, 0.05, 0.02]})
    >>> fig = plot_posterior(bayes(es))
    >>> len(fig.axes)
    3
    """
    import matplotlib.pyplot as plt

    if fig is None:
        fig = plt.figure(figsize=(10, 7.5))
    else:
        fig.clear()
    grid = fig.add_gridspec(2, 2, height_ratios=(1.3, 1))
    joint_ax, mu_ax, tau_ax = fig.add_subplot(grid[0, :]), fig.add_subplot(grid[1, 0]), fig.add_subplot(grid[1, 1])
    level = f"{100 * (1 - result.alpha):g}%"
    label = MEASURE_LABELS.get(result.measure or "", result.measure or "effect")

    tau_hi = float(result.quantile("tau", 0.995)[0]) * 1.15
    mu_lo, mu_hi = (float(x) for x in result.quantile("prediction", [0.002, 0.998]))
    taus = np.linspace(0.0, tau_hi, points)
    mus = np.linspace(mu_lo, mu_hi, points)
    T, M = np.meshgrid(taus, mus)
    density = result.joint_density(T, M)
    levels = _region_levels(density, regions)
    if levels:
        joint_ax.contour(T, M, density, levels=levels, colors="red", linewidths=0.8)
    _, mean, var = result._posterior.model.conditional(taus)
    joint_ax.plot(taus, mean, color="blue", lw=1)
    for sign in (-1, 1):
        joint_ax.plot(taus, mean + sign * 1.959963984540054 * np.sqrt(var), color="blue", lw=0.8, ls="--")
    for value, style in ((result.tau, "-"), (result.tau_ci_lower, ":"), (result.tau_ci_upper, ":")):
        joint_ax.axvline(value, color="green", ls=style, lw=1)
    for value, style in ((result.estimate, "-"), (result.ci_lower, ":"), (result.ci_upper, ":")):
        joint_ax.axhline(value, color="green", ls=style, lw=1)
    joint_ax.set_xlim(0, tau_hi)
    joint_ax.set_ylim(mu_lo, mu_hi)
    joint_ax.set_xlabel("heterogeneity tau")
    joint_ax.set_ylabel(f"effect mu ({label})")
    joint_ax.set_title(f"joint posterior: {', '.join(f'{100 * r:g}%' for r in regions)} credible regions")

    xs = np.linspace(mu_lo, mu_hi, 4 * points)
    mu_ax.plot(xs, result.density("mu", xs), color="red", label="mu")
    mu_ax.plot(xs, result.density("prediction", xs), color="blue", ls="--", label="new study")
    inside = (xs >= result.ci_lower) & (xs <= result.ci_upper)
    mu_ax.fill_between(xs[inside], result.density("mu", xs[inside]), color="red", alpha=0.2)
    mu_ax.axvline(result.estimate, color="red", lw=1)
    mu_ax.set_xlabel(f"effect mu ({label})")
    mu_ax.set_ylabel("posterior density")
    mu_ax.set_title(f"marginal posterior of mu, {level} {result.interval} interval")
    mu_ax.legend(frameon=False, fontsize="small")
    if exponentiate:
        mu_ax.set_xticks(mu_ax.get_xticks())
        mu_ax.set_xticklabels([f"{np.exp(t):.2g}" for t in mu_ax.get_xticks()])
        mu_ax.set_xlim(mu_lo, mu_hi)
        mu_ax.set_xlabel(f"exp(mu) ({label[4:] if label.startswith('log ') else label})")

    ts = np.linspace(0.0, tau_hi, 4 * points)
    tau_ax.plot(ts, result.density("tau", ts), color="red", label="posterior")
    prior = result._posterior.model.log_prior(ts)
    if result.tau_scale is not None:  # a named proper prior: its density is normalised
        tau_ax.plot(ts, np.exp(prior), color="grey", ls=":", label="prior")
    inside = (ts >= result.tau_ci_lower) & (ts <= result.tau_ci_upper)
    tau_ax.fill_between(ts[inside], result.density("tau", ts[inside]), color="red", alpha=0.2)
    tau_ax.axvline(result.tau, color="red", lw=1)
    tau_ax.set_xlim(0, tau_hi)
    tau_ax.set_xlabel("heterogeneity tau")
    tau_ax.set_ylabel("posterior density")
    tau_ax.set_title(f"marginal posterior of tau, {level} {result.interval} interval")
    tau_ax.legend(frameon=False, fontsize="small")
    fig.tight_layout()
    return fig


def plot_forest(result, *, ax=None):
    """Forest plot of a Bayesian meta-analysis, as bayesmeta's ``forestplot``: each study's
    observed effect with its 95% interval (black), its shrunken effect -- posterior median and
    credible interval of its true effect -- below it (grey), and the posterior of mu and the
    prediction interval at the bottom.

    Parameters
    ----------
    result : BayesResult
        From :func:`rjtrial.meta.bayes`.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure's.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn on.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from rjtrial.meta import bayes
    >>> es = pd.DataFrame({"estimate": [-0.9, -1.6, -0.2, -0.4], "variance": [0.36, 0.44, 0.05, 0.02]})
    >>> fig = plot_forest(bayes(es))
    >>> len(fig.axes[0].get_yticklabels())
    6
    """
    import matplotlib.pyplot as plt

    studies = result.shrinkage
    k = len(studies)
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 1.2 + 0.45 * (k + 2)))
    z = 1.959963984540054
    rows = np.arange(k + 2)[::-1]
    for y, (_, r) in zip(rows[:k], studies.iterrows()):
        ax.plot(
            [r.observed - z * r.observed_std_error, r.observed + z * r.observed_std_error],
            [y + 0.12] * 2,
            color="black",
            lw=1,
        )
        ax.plot(r.observed, y + 0.12, "s", color="black", ms=4)
        ax.plot([r.ci_lower, r.ci_upper], [y - 0.12] * 2, color="grey", lw=1)
        ax.plot(r.estimate, y - 0.12, "o", color="grey", ms=4)
    y_mu, y_new = rows[k], rows[k + 1]
    ax.fill(
        [result.ci_lower, result.estimate, result.ci_upper, result.estimate],
        [y_mu, y_mu + 0.25, y_mu, y_mu - 0.25],
        color="red",
    )
    ax.fill(
        [result.pi_lower, result.pi_upper, result.pi_upper, result.pi_lower],
        [y_new - 0.1, y_new - 0.1, y_new + 0.1, y_new + 0.1],
        color="blue",
        alpha=0.5,
    )
    ax.axvline(result.estimate, color="red", lw=0.6, ls=":")
    ax.set_yticks(rows)
    ax.set_yticklabels([*map(str, studies.index), "mu", "new study"])
    label = MEASURE_LABELS.get(result.measure or "", result.measure or "effect")
    level = f"{100 * (1 - result.alpha):g}%"
    ax.set_xlabel(f"{label}: observed with 95% CI (black), shrunken with {level} {result.interval} interval (grey)")
    ax.figure.tight_layout()
    return ax.figure


def _region_levels(density: np.ndarray, regions) -> list[float]:
    """Density thresholds whose upper level sets hold the given probabilities (on the grid)."""
    values = np.sort(density.ravel())[::-1]
    cumulative = np.cumsum(values)
    if cumulative[-1] <= 0:
        return []
    cumulative /= cumulative[-1]
    levels = sorted({float(values[min(np.searchsorted(cumulative, r), values.size - 1)]) for r in regions})
    return [lv for lv in levels if lv > 0]
