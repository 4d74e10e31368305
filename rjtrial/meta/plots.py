"""Forest and funnel plots of a meta-analysis (matplotlib); each returns the Axes it drew on."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.meta.result import MetaResult

MEASURE_LABELS = {
    "log_risk_ratio": "log risk ratio",
    "log_odds_ratio": "log odds ratio",
    "risk_difference": "risk difference",
    "hedges_g": "Hedges' g",
    "cohens_d": "Cohen's d",
    "log_hazard_ratio": "log hazard ratio",
    "log_incidence_rate_ratio": "log incidence rate ratio",
    "peto_log_odds_ratio": "Peto log odds ratio",
}


def _label(result: MetaResult, exponentiate: bool) -> str:
    name = MEASURE_LABELS.get(result.measure or "", result.measure or "effect size")
    if exponentiate and name.startswith("log "):
        return name[4:]
    return name


def _subgroup_of(result: MetaResult, subgroup) -> pd.Series | None:
    if subgroup is not None:
        values = subgroup.to_numpy() if isinstance(subgroup, pd.Series) else np.asarray(subgroup)
        if values.shape != (len(result.studies),):
            raise ValueError(
                f"subgroup must have one label per study ({len(result.studies)}), got shape {values.shape}"
            )
        return pd.Series(values, index=result.studies)
    if result.subgroup_results:
        # each subgroup fit holds its studies in the original order: match them by position
        labels = np.full(len(result.studies), None, dtype=object)
        for level, fit in result.subgroup_results.items():
            wanted = list(zip(fit.studies, fit.yi, fit.vi))
            j = 0
            for i, key in enumerate(zip(result.studies, result.yi, result.vi)):
                if (
                    j < len(wanted)
                    and labels[i] is None
                    and key[0] == wanted[j][0]
                    and np.array_equal(key[1:], wanted[j][1:], equal_nan=True)
                ):
                    labels[i] = level
                    j += 1
        return pd.Series(labels, index=result.studies)
    return None


def forest(
    result: MetaResult,
    *,
    ax=None,
    subgroup=None,
    exponentiate: bool = False,
    show_weights: bool = True,
    prediction_interval: bool = True,
    title: str | None = None,
):
    """Forest plot: one row per study (estimate, confidence interval, square sized by weight),
    the weight and the estimate with its interval written on the right, the pooled diamond,
    the prediction interval and, with subgroups, a heading and a diamond per subgroup.

    Parameters
    ----------
    result : MetaResult
        An intercept-only fit.
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; by default a new figure sized to the number of rows.
    subgroup : array-like, optional
        One label per study; by default the subgroups of ``pool(..., subgroup=...,
        subgroup_tau2="separate")``.
    exponentiate : bool, default False
        Plot exp(estimate) on a log axis (risk, odds, hazard ratios from their logs).
    show_weights, prediction_interval : bool
        Write the weights column; draw the prediction interval under the pooled diamond.
    title : str, optional

    Returns
    -------
    matplotlib.axes.Axes
        Text columns lie outside the axes on the right: save with ``bbox_inches="tight"``.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Polygon

    if result.has_moderators:
        raise ValueError("a forest plot needs an intercept-only model (no moderators)")
    rows = np.isfinite(result.yi) & np.isfinite(result.vi)
    frame = result.study_frame()[rows]
    labels = _subgroup_of(result, subgroup)
    f = np.exp if exponentiate else (lambda x: x)

    # the layout: a list of (kind, payload) from top to bottom
    layout: list[tuple[str, object]] = []
    if labels is not None:
        labels = labels[rows]
        for level in pd.unique(labels):
            layout.append(("heading", level))
            layout.extend(("study", j) for j in np.flatnonzero((labels == level).to_numpy()))
            if result.subgroup_results and level in result.subgroup_results:
                layout.append(("subgroup", level))
            layout.append(("gap", None))
    else:
        layout.extend(("study", j) for j in range(len(frame)))
        layout.append(("gap", None))
    layout.append(("overall", None))
    if prediction_interval and not result.is_fixed_effect and np.isfinite(result.pi_lower):
        layout.append(("pi", None))
    n = len(layout)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 1.2 + 0.28 * n))
    y_of = {i: n - i for i in range(n)}
    ticks, ticklabels = [], []
    max_weight = float(np.nanmax(frame["weight"]))
    text_x = 1.02
    level_pct = f"{100 * (1 - result.alpha):g}%"
    yaxis = ax.get_yaxis_transform()
    ax.text(
        text_x,
        n + 1,
        "Weight" if show_weights else "",
        transform=yaxis,
        ha="left",
        va="center",
        fontsize=8,
        fontweight="bold",
    )
    ax.text(
        text_x + (0.16 if show_weights else 0),
        n + 1,
        f"Estimate [{level_pct} CI]",
        transform=yaxis,
        ha="left",
        va="center",
        fontsize=8,
        fontweight="bold",
    )

    def right_text(y, weight, est, lo, hi, bold=False):
        style = dict(transform=yaxis, va="center", fontsize=8, fontweight="bold" if bold else "normal")
        if show_weights and weight is not None:
            ax.text(text_x, y, f"{weight:.1f}%", ha="left", **style)
        ax.text(text_x + (0.16 if show_weights else 0), y, f"{est:.2f} [{lo:.2f}, {hi:.2f}]", ha="left", **style)

    def diamond(y, est, lo, hi, colour):
        ax.add_patch(
            Polygon(
                [(f(lo), y), (f(est), y + 0.35), (f(hi), y), (f(est), y - 0.35)],
                closed=True,
                facecolor=colour,
                edgecolor="black",
                linewidth=0.8,
                zorder=3,
            )
        )

    subgroup_results = result.subgroup_results or {}  # "subgroup" rows are laid out only from these
    for i, (kind, payload) in enumerate(layout):
        y = y_of[i]
        if kind == "study":
            r = frame.iloc[payload]
            ax.plot([f(r["ci_lower"]), f(r["ci_upper"])], [y, y], color="black", linewidth=0.9, zorder=2)
            size = 3 + 9 * np.sqrt(r["weight"] / max_weight)
            ax.plot([f(r["estimate"])], [y], marker="s", markersize=size, color="0.25", zorder=3)
            ticks.append(y)
            ticklabels.append(str(frame.index[payload]))
            right_text(y, r["weight"], f(r["estimate"]), f(r["ci_lower"]), f(r["ci_upper"]))
        elif kind == "heading":
            ax.text(-0.02, y, str(payload), transform=yaxis, ha="right", va="center", fontsize=9, fontweight="bold")
        elif kind == "subgroup":
            sub = subgroup_results[payload]
            diamond(y, sub.estimate, sub.ci_lower, sub.ci_upper, "0.6")
            ticks.append(y)
            ticklabels.append(f"Subgroup (k = {sub.k}, I\u00b2 = {sub.i2:.0f}%)")
            right_text(y, None, f(sub.estimate), f(sub.ci_lower), f(sub.ci_upper))
        elif kind == "overall":
            diamond(y, result.estimate, result.ci_lower, result.ci_upper, "black")
            ticks.append(y)
            model = "Fixed effect" if result.is_fixed_effect else f"Random effects ({result.method})"
            ticklabels.append(f"{model}, k = {result.k}")
            right_text(y, 100.0, f(result.estimate), f(result.ci_lower), f(result.ci_upper), bold=True)
        elif kind == "pi":
            ax.plot([f(result.pi_lower), f(result.pi_upper)], [y, y], color="black", linewidth=1.5)
            for x in (result.pi_lower, result.pi_upper):
                ax.plot([f(x), f(x)], [y - 0.2, y + 0.2], color="black", linewidth=1.5)
            ticks.append(y)
            ticklabels.append(f"{level_pct} prediction interval")
            right_text(y, None, f(result.estimate), f(result.pi_lower), f(result.pi_upper))
    null = 1.0 if exponentiate else 0.0
    ax.axvline(null, color="0.5", linewidth=0.8, linestyle="-", zorder=1)
    ax.axvline(f(result.estimate), color="0.3", linewidth=0.8, linestyle=":", zorder=1)
    if exponentiate:
        from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

        ax.set_xscale("log")
        lo, hi = ax.get_xlim()
        marks = [m for m in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if lo <= m <= hi]
        if len(marks) > 8:  # a wide range: decades, and 0.5 and 2 about the null
            marks = [m for m in marks if m in (0.01, 0.1, 0.5, 1, 2, 10, 100)]
        ax.xaxis.set_major_locator(FixedLocator(marks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xticklabels([f"{m:g}" for m in marks])
    ax.set_yticks(ticks)
    ax.set_yticklabels(ticklabels, fontsize=8)
    ax.tick_params(axis="y", length=0)
    ax.set_ylim(0.3, n + 1.6)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(_label(result, exponentiate))
    p_text = "p < .0001" if result.q_p_value < 1e-4 else f"p = {result.q_p_value:.4f}"
    summary = f"tau\u00b2 = {result.tau2:.3g}, I\u00b2 = {result.i2:.1f}%, Q({result.q_df}) = {result.q:.2f}, {p_text}"
    ax.set_title(title if title is not None else summary, fontsize=9, loc="left")
    return ax


def funnel(result: MetaResult, *, ax=None, levels=(0.90, 0.95, 0.99), trim_and_fill=None, centre: float | None = None):
    """Funnel plot: each study's estimate against its standard error (0 at the top), with
    contour-enhanced pseudo-confidence regions about ``centre`` and, optionally, the studies
    imputed by trim-and-fill (open circles).

    Parameters
    ----------
    result : MetaResult
    ax : matplotlib.axes.Axes, optional
    levels : sequence of float, default (0.90, 0.95, 0.99)
        Pseudo-confidence levels: the regions ``centre -/+ z_{(1+level)/2} SE`` are shaded.
    trim_and_fill : bool or TrimFillResult, optional
        ``True`` runs :func:`rjtrial.meta.bias.trim_and_fill`; a result is drawn as it is.
    centre : float, optional
        Centre of the contours; default the pooled estimate (the trim-and-fill estimate
        when imputed studies are drawn).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib.pyplot as plt

    from rjtrial.meta.bias import TrimFillResult
    from rjtrial.meta.bias import trim_and_fill as run_trim_and_fill

    levels = sorted(float(v) for v in levels)
    if any(not 0 < v < 1 for v in levels):
        raise ValueError(f"levels must lie in (0, 1), got {levels}")
    rows = np.isfinite(result.yi) & np.isfinite(result.vi)
    yi, se = result.yi[rows], np.sqrt(result.vi[rows])
    if trim_and_fill is True:
        trim_and_fill = run_trim_and_fill(result)
    elif trim_and_fill is not None and trim_and_fill is not False and not isinstance(trim_and_fill, TrimFillResult):
        raise ValueError("trim_and_fill must be True, False/None or a TrimFillResult")
    tf = trim_and_fill if isinstance(trim_and_fill, TrimFillResult) else None
    if centre is None:
        centre = tf.estimate if tf is not None and tf.k0 > 0 else result.estimate
    if ax is None:
        _, ax = plt.subplots(figsize=(7.5, 4.8), layout="constrained")
    se_all = se if tf is None else np.concatenate([se, np.sqrt(tf.imputed["variance"].to_numpy())])
    top = float(np.max(se_all)) * 1.08
    grid = np.linspace(0, top, 100)
    shades = ["0.93", "0.82", "0.7", "0.6", "0.5"]
    for j, level in enumerate(reversed(levels)):
        z = stats.norm.isf((1 - level) / 2)
        ax.fill_betweenx(
            grid,
            centre - z * grid,
            centre + z * grid,
            color=shades[j % len(shades)],
            linewidth=0,
            zorder=0,
            label=f"{100 * level:g}% pseudo-CI",
        )
    z95 = stats.norm.isf(0.025)
    for sign in (-1, 1):
        ax.plot(centre + sign * z95 * grid, grid, color="0.4", linewidth=0.6, linestyle="--", zorder=1)
    ax.axvline(centre, color="black", linewidth=0.9, zorder=1)
    ax.scatter(yi, se, s=28, color="black", zorder=3, label="studies")
    if tf is not None and tf.k0 > 0:
        ax.scatter(
            tf.imputed["estimate"],
            np.sqrt(tf.imputed["variance"]),
            s=28,
            facecolors="white",
            edgecolors="black",
            zorder=3,
            label=f"imputed (trim-and-fill, k0 = {tf.k0})",
        )
    ax.set_ylim(top, 0)
    half = max(float(np.max(np.abs(np.concatenate([yi, [centre]]) - centre))), z95 * top) * 1.05
    if tf is not None and tf.k0 > 0:
        half = max(half, float(np.max(np.abs(tf.imputed["estimate"] - centre))) * 1.05)
    ax.set_xlim(centre - half, centre + half)
    ax.set_xlabel(_label(result, False))
    ax.set_ylabel("standard error")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, frameon=False)
    return ax
