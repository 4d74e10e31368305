"""The report's figures, drawn with matplotlib (Agg, no pyplot state) and embedded as PNG.

Each function returns a ``data:image/png;base64,...`` URI ready for an ``<img src>``:
:func:`consort_figure` (the CONSORT flow diagram from the registry's counts),
:func:`kaplan_meier_figure` (curves with numbers at risk, from
:meth:`rjtrial.survival.KaplanMeierResult.plot`) and :func:`forest_figure` (hazard ratios
in subgroups).
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from typing import Sequence

import numpy as np

__all__ = ["consort_figure", "forest_figure", "kaplan_meier_figure", "png_uri"]

DPI = 130
FONT = 10


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def png_uri(figure, *, tight: bool = True) -> str:
    """The figure as a base64 PNG data URI, white background; ``tight`` crops to what is drawn
    (one more drawing pass: not needed when the layout is computed, as in the CONSORT diagram)."""
    buffer = io.BytesIO()
    options = {"bbox_inches": "tight", "pad_inches": 0.15} if tight else {}
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white", **options)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


# --------------------------------------------------------------------- CONSORT
def _box(ax, x, y, width, lines: Sequence[str], *, bold_first=True, wrap=34, face="#f4f6f8", extents=None):
    """A box centred at (x, y) in axes data units, widened to fit its text; returns (top, bottom, left)."""
    text_lines = []
    for i, line in enumerate(lines):
        text_lines.extend(textwrap.wrap(line, wrap) or [""])
    width = max(width, 0.16 * max(len(line) for line in text_lines) + 0.5)  # ~0.16 units per character
    height = 0.32 * len(text_lines) + 0.3
    if extents is not None:
        extents.append(x + width / 2)
    ax.add_patch(_rectangle(x - width / 2, y - height / 2, width, height, face))
    top = y + height / 2 - 0.2
    first = len(textwrap.wrap(lines[0], wrap)) if lines else 0
    for i, line in enumerate(text_lines):
        ax.text(
            x,
            top - 0.32 * i,
            line,
            ha="center",
            va="top",
            fontsize=FONT,
            fontweight="bold" if bold_first and i < first else "normal",
        )
    return y + height / 2, y - height / 2, x - width / 2


def _rectangle(x, y, width, height, face):
    from matplotlib.patches import FancyBboxPatch

    return FancyBboxPatch(
        (x, y),
        width,
        height,
        boxstyle="round,pad=0.02,rounding_size=0.08",
        facecolor=face,
        edgecolor="#44546a",
        linewidth=1.1,
    )


def _arrow(ax, start, end):
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle="-|>", color="#44546a", linewidth=1.1))


def consort_figure(consort: dict, analysed: dict) -> str:
    """The CONSORT flow diagram.

    Parameters
    ----------
    consort : dict
        :meth:`rjtrial.registry.reports.ConsortCounts.to_dict`; with ``blinded`` True the arms are
        codes and the conference records are not drawn.
    analysed : dict
        Arm -> number analysed (rows of the follow-up table).
    """
    arms = list(consort["arms"])
    n_arms = len(arms)
    width_units = max(11.0, 5.2 * n_arms)
    unit_inches = 0.55
    reasons = sorted(consort["screened_out_by_reason"].items(), key=lambda kv: (-kv[1], kv[0]))
    reason_lines = [f"{reason.replace('=', ': ')}  {n}" for reason, n in reasons]
    height_units = 40.0  # drawn top-down on a tall canvas, then cut to what was used
    figure = _figure(width_units * unit_inches, height_units * unit_inches)
    ax = figure.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width_units)
    ax.axis("off")
    main_x = width_units * 0.3
    side_x = width_units * 0.75
    _, bottom, _ = _box(ax, main_x, height_units - 0.8, 4.0, ["Referred", f"n = {consort['referred']}"])
    screen_lines = [f"Screened out  n = {consort['screened_out']}", *(reason_lines or ["none"])]
    box_height = 0.32 * len(screen_lines) + 0.3
    screen_y = bottom - 0.5 - box_height / 2
    extents: list[float] = []
    _, bottom_s, left_s = _box(ax, side_x, screen_y, 4.6, screen_lines, wrap=40, extents=extents)
    _arrow(ax, (main_x, screen_y), (left_s, screen_y))
    top_r, bottom_r, _ = _box(ax, main_x, bottom_s - 0.8, 4.0, ["Randomised", f"n = {consort['randomised']}"])
    _arrow(ax, (main_x, bottom), (main_x, top_r))
    arm_width = width_units / n_arms
    alloc_top = bottom_r - 0.9
    lowest = alloc_top
    for k, arm in enumerate(arms):
        x = arm_width * (k + 0.5)
        lines = [f"Allocated to {arm}", f"n = {consort['randomised_by_arm'].get(arm, 0)}"]
        if consort.get("blinded"):  # conference records would show which code is the programme's arm
            lines.append("conference records withheld (blinded)")
        else:
            lines += [
                f"conference held: {consort['treatment_received_by_arm'].get(arm, 0)}",
                f"not held: {consort['treatment_not_received_by_arm'].get(arm, 0)}",
                f"not recorded: {consort['treatment_unknown_by_arm'].get(arm, 0)}",
            ]
        withdrawn = consort["withdrawn_by_arm"].get(arm, 0)
        if withdrawn:
            lines.append(f"withdrawn: {withdrawn}")
        box_height = 0.32 * len(lines) + 0.3
        box_width = min(arm_width - 0.6, 4.6)
        top_a, bottom_a, _ = _box(ax, x, alloc_top - box_height / 2, box_width, lines, extents=extents)
        _arrow(ax, (main_x, bottom_r), (x, top_a))
        n_randomised = consort["randomised_by_arm"].get(arm, 0)
        n_analysed = analysed.get(arm, 0)
        analysed_lines = ["Analysed", "by intention to treat", f"n = {n_analysed}"]
        if n_randomised != n_analysed:
            analysed_lines.append(f"no follow-up: {n_randomised - n_analysed}")
        box_height = 0.32 * len(analysed_lines) + 0.3
        top_n, bottom_n, _ = _box(ax, x, bottom_a - 0.7 - box_height / 2, box_width, analysed_lines)
        _arrow(ax, (x, bottom_a), (x, top_n))
        lowest = min(lowest, bottom_n)
    used_bottom = lowest - 0.3
    used_right = max([width_units, *(e + 0.2 for e in extents)])
    ax.set_xlim(0, used_right)
    ax.set_ylim(used_bottom, height_units)
    figure.set_size_inches(used_right * unit_inches, (height_units - used_bottom) * unit_inches)
    return png_uri(figure, tight=False)


# ---------------------------------------------------------------- Kaplan–Meier
def kaplan_meier_figure(km, *, at_risk_times: Sequence[float], time_label: str = "days since random assignment") -> str:
    """Kaplan–Meier curves by arm with numbers at risk (``rjtrial.survival`` plot)."""
    figure = _figure(7.0, 4.6)
    ax = figure.add_subplot(1, 1, 1)
    km.plot(ax=ax, at_risk_times=list(at_risk_times))
    ax.set_xlabel(time_label)
    ax.set_ylabel("proportion not reoffended")
    ax.grid(alpha=0.3)
    return png_uri(figure)


# ------------------------------------------------------------------- forest
def forest_figure(
    rows: list[dict],
    *,
    null: float = 1.0,
    label: str = "hazard ratio (log scale)",
    left: str = "favours treatment",
    right: str = "favours control",
    level: str = "95%",
) -> str:
    """A forest plot of hazard ratios in subgroups.

    ``rows``: dicts with ``label``, ``n``, ``estimate``, ``ci_lower``, ``ci_upper`` (NaN when
    not estimable) and ``heading`` (True for a subgroup's title row, drawn in bold, no
    estimate) and ``overall`` (drawn as a diamond).
    """
    n_rows = len(rows)
    figure = _figure(8.6, 0.34 * n_rows + 1.3)
    ax = figure.add_axes((0.36, 0.9 / (0.34 * n_rows + 1.3), 0.40, 1 - 1.2 / (0.34 * n_rows + 1.3)))
    values = [
        v
        for r in rows
        if not r.get("heading")
        for v in (r["ci_lower"], r["ci_upper"])
        if v is not None and np.isfinite(v) and v > 0
    ]
    low = min(values + [null]) if values else 0.5
    high = max(values + [null]) if values else 2.0
    low, high = max(low / 1.15, 0.02), min(high * 1.15, 50.0)
    ax.set_xscale("log")
    ax.set_xlim(low, high)
    ax.set_ylim(-0.7, n_rows - 0.3)
    ax.axvline(null, color="#666666", linewidth=1)
    ax.set_yticks([])
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    transform = ax.get_yaxis_transform()  # x in axes fraction, y in data
    for i, row in enumerate(rows):
        y = n_rows - 1 - i
        if row.get("heading"):
            ax.text(
                -0.85, y, row["label"], transform=transform, ha="left", va="center", fontsize=FONT, fontweight="bold"
            )
            continue
        ax.text(-0.82, y, row["label"], transform=transform, ha="left", va="center", fontsize=FONT)
        ax.text(-0.08, y, f"{row['n']}", transform=transform, ha="right", va="center", fontsize=FONT)
        est, lo, hi = row["estimate"], row["ci_lower"], row["ci_upper"]
        finite = all(v is not None and np.isfinite(v) and v > 0 for v in (est, lo, hi))
        if finite:
            text = f"{est:.2f} ({lo:.2f} to {hi:.2f})"
            if row.get("overall"):
                ax.fill([lo, est, hi, est], [y, y + 0.3, y, y - 0.3], color="#1f3b73")
            else:
                ax.plot([max(lo, low), min(hi, high)], [y, y], color="#1f3b73", linewidth=1.4)
                ax.plot(
                    [est],
                    [y],
                    "s",
                    color="#1f3b73",
                    markersize=5 + 5 * math.sqrt(row["n"] / max(r.get("n", 1) or 1 for r in rows)),
                )
        else:
            text = "not estimable"
        ax.text(1.04, y, text, transform=transform, ha="left", va="center", fontsize=FONT)
    ax.text(
        -0.82, n_rows - 0.2, "subgroup", transform=transform, ha="left", va="bottom", fontsize=FONT, color="#555555"
    )
    ax.text(-0.08, n_rows - 0.2, "n", transform=transform, ha="right", va="bottom", fontsize=FONT, color="#555555")
    ax.text(
        1.04,
        n_rows - 0.2,
        f"HR ({level} CI)",
        transform=transform,
        ha="left",
        va="bottom",
        fontsize=FONT,
        color="#555555",
    )
    ax.set_xlabel(f"{label}\n\u2190 {left}        {right} \u2192", fontsize=FONT)
    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10) if low <= t <= high]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.minorticks_off()
    return png_uri(figure)
