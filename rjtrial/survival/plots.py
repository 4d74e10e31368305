"""Kaplan–Meier plot with a numbers-at-risk table (matplotlib)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from rjtrial.survival.kaplan_meier import KaplanMeierResult


def plot_kaplan_meier(
    km: "KaplanMeierResult",
    *,
    ax=None,
    ci: bool = True,
    censor_marks: bool = True,
    at_risk: bool = True,
    at_risk_times: Sequence[float] | None = None,
    control=None,
    xlabel: str | None = None,
):
    """Draw the Kaplan–Meier curves of ``km``; returns the matplotlib Axes.

    Parameters
    ----------
    km : KaplanMeierResult
    ax : matplotlib.axes.Axes, optional
        Axes to draw on; a new figure when None.
    ci : bool
        Shade the pointwise log-log confidence band.
    censor_marks : bool
        Mark censoring times with ``+``.
    at_risk : bool
        Write the numbers at risk per group under the x axis, at ``at_risk_times``
        (default: the x tick positions).
    at_risk_times : sequence of float, optional
    control : optional
        The group drawn first, in the first colour of the cycle (default: ``"control"`` when a
        group is so named, else the first group): arms keep the colours the trial report
        gives them whatever order their labels sort in.
    xlabel : str, optional
        Label of the time axis (default: the time column's name in words; the follow-up
        table's ``time_at_risk`` is "days at liberty since random assignment").

    Returns
    -------
    matplotlib.axes.Axes
        The axes; the numbers-at-risk table is made of text artists on it (one row per
        group, below the x axis); the number artists, group by group, are listed in
        ``ax._rjtrial_at_risk``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.5))
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0", "C1", "C2", "C3"])
    groups = list(km.groups)
    first = control if control is not None else ("control" if "control" in groups else groups[0])
    if first not in groups:
        raise ValueError(f"control must be one of the groups {groups!r}; got {first!r}")
    order = [first] + [g for g in groups if g != first]
    colours = {g: cycle[k % len(cycle)] for k, g in enumerate(order)}
    t_max = float(km.table["time"].max())
    for g in order:
        c = km.table[km.table["group"] == g]
        colour = colours[g]
        t = np.concatenate([[0.0], c["time"].to_numpy()])
        s = np.concatenate([[1.0], c["survival"].to_numpy()])
        ax.step(t, s, where="post", color=colour, label=str(g))
        if ci:
            lo = np.concatenate([[1.0], c["ci_lower"].fillna(c["survival"]).to_numpy()])
            hi = np.concatenate([[1.0], c["ci_upper"].fillna(c["survival"]).to_numpy()])
            ax.fill_between(t, lo, hi, step="post", color=colour, alpha=0.15, linewidth=0)
        if censor_marks:
            cens = c[c["censored"] > 0]
            ax.plot(cens["time"], cens["survival"], "+", color=colour, markersize=7)
    ax.set_xlim(0, t_max * 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(xlabel if xlabel is not None else _time_label(km.columns.get("time")))
    ax.set_ylabel("proportion without event")
    if len(km.groups) > 1 or km.groups != ["all"]:
        ax.legend(title=km.columns.get("group"), frameon=False)
    texts = []
    if at_risk:
        ticks = np.asarray(at_risk_times if at_risk_times is not None else ax.get_xticks(), dtype=float)
        ticks = ticks[(ticks >= 0) & (ticks <= t_max)]
        ax.set_xticks(ticks)
        table = km.survival_at(ticks)
        transform = ax.get_xaxis_transform()  # x in data, y in axes fraction
        ax.text(-0.06, -0.22, "At risk", transform=ax.transAxes, ha="right", va="top", fontsize=8, fontweight="bold")
        for k, g in enumerate(order):
            y = -0.30 - 0.07 * k
            ax.text(-0.06, y, str(g), transform=ax.transAxes, ha="right", va="top", fontsize=8, color=colours[g])
            rows = table[table["group"] == g]
            for when, n in zip(rows["time"], rows["at_risk"]):
                texts.append(ax.text(when, y, f"{int(n)}", transform=transform, ha="center", va="top", fontsize=8))
        ax.figure.subplots_adjust(bottom=0.22 + 0.07 * len(km.groups))
        _make_room_for_labels(ax)
    ax._rjtrial_at_risk = texts
    return ax


#: Follow-up columns whose meaning is known: the axis says it in words.
_TIME_LABELS = {
    "time_at_risk": "days at liberty since random assignment",
    "followup_days": "days since random assignment",
    "exposure_days": "days at liberty",
}


def _time_label(column: str | None) -> str:
    if not column:
        return "time"
    return _TIME_LABELS.get(column, str(column).replace("_", " "))


def _make_room_for_labels(ax) -> None:
    """Widen the left margin so that the at-risk row labels (drawn left of the axes) are
    inside the figure: a plain ``savefig`` then shows them whole."""
    figure = ax.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    left_most = min((t.get_window_extent(renderer).x0 for t in ax.texts), default=0.0)
    if left_most < 4:  # pixels
        width = figure.bbox.width
        shift = (4 - left_most) / width
        figure.subplots_adjust(left=min(figure.subplotpars.left + shift, 0.45))
