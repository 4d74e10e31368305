"""Figures of power by simulation: power curves with Monte Carlo bands and Schoenfeld's curve."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["plot_power"]


def plot_power(result, ax=None, *, target: float | None = 0.8):
    """Power against the number randomised, one curve per effect.

    Each effect's simulated power is drawn as points joined by a line, inside its Monte
    Carlo interval (shaded band, the Wilson interval of ``summary_frame()``); beside it,
    dashed in the same colour, Schoenfeld's power with the intention-to-treat hazard ratio
    of the truth and its events per participant (when the result has them: cox or
    logrank with ``schoenfeld=True``), as a smooth curve over the range of sizes.

    Parameters
    ----------
    result : rjtrial.simulate.power.PowerResult
    ax : matplotlib Axes, optional
        Drawn on a new figure's Axes if not given.
    target : float or None
        A horizontal reference line (e.g. 80% power); None for none.

    Returns
    -------
    matplotlib.axes.Axes
    """
    import matplotlib

    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.0, 4.5))
    from rjtrial.survival.sample_size import schoenfeld_power

    settings = result.settings
    frame = result.summary_frame()
    colours = matplotlib.colormaps["tab10"]
    sizes = np.asarray(sorted(frame["n"].unique()), dtype=float)
    grid = np.linspace(max(2.0, sizes.min() * 0.9), sizes.max() * 1.05, 200) if sizes.size else np.array([])
    for k, (hr, rows) in enumerate(frame.groupby("hazard_ratio", sort=False)):
        rows = rows.sort_values("n")
        colour = colours(k % 10)
        itt = rows["itt_hazard_ratio"].iloc[0]
        label = f"HR {hr:g} among the treated" + (f" (ITT {itt:.3f})" if np.isfinite(itt) else "")
        ax.fill_between(rows["n"], rows["ci_lower"], rows["ci_upper"], color=colour, alpha=0.2, linewidth=0)
        ax.plot(rows["n"], rows["power"], "o-", color=colour, label=label)
        truth = (settings.get("truths") or {}).get(repr(float(hr)))
        if truth is not None and settings["analysis"] in ("cox", "logrank"):
            curve = [
                schoenfeld_power(
                    truth["itt_hazard_ratio"],
                    truth["events_per_participant"] * m,
                    allocation=settings["allocation"],
                    alpha=settings["alpha"],
                )
                for m in grid
            ]
            ax.plot(grid, curve, "--", color=colour, linewidth=1.2)
    if target is not None:
        ax.axhline(target, color="0.5", linewidth=0.8, linestyle=":")
    if settings["analysis"] in ("cox", "logrank") and settings.get("truths"):
        ax.plot([], [], "--", color="0.3", label="Schoenfeld, ITT hazard ratio")
    ax.set_xlabel("participants randomised")
    ax.set_ylabel(f"power (two-sided alpha {settings['alpha']:g})")
    ax.set_ylim(0.0, 1.0)
    level = int(round(100 * settings["ci_level"]))
    ax.set_title(
        f"{settings['scenario']}: {settings['analysis']}, {settings['reps']:,} trials per point "
        f"({level}% Monte Carlo bands)",
        fontsize=10,
    )
    ax.legend(fontsize=8, loc="upper left")
    ax.grid(True, alpha=0.3)
    if math.isfinite(float(grid.max() if grid.size else math.nan)):
        ax.set_xlim(grid.min(), grid.max())
    return ax
