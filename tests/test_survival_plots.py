"""rjtrial.survival.plots: the Kaplan-Meier plot returns its Axes with numbers at risk."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from lifelines.datasets import load_rossi  # noqa: E402

from rjtrial.survival import kaplan_meier  # noqa: E402


@pytest.fixture
def km():
    return kaplan_meier(load_rossi(), time="week", event="arrest", group="fin")


def test_returns_axes_with_one_curve_per_group(km):
    ax = km.plot()
    assert isinstance(ax, matplotlib.axes.Axes)
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["0", "1"]
    plt.close(ax.figure)


def test_numbers_at_risk_match_survival_at(km):
    fig, ax = plt.subplots()
    out = km.plot(ax=ax, at_risk_times=[0, 13, 26, 39, 52])
    assert out is ax
    numbers = [t.get_text() for t in ax._rjtrial_at_risk if t.get_text().isdigit()]
    expected = km.survival_at([0, 13, 26, 39, 52])["at_risk"].astype(str).tolist()
    assert numbers == expected
    plt.close(fig)


def test_plot_without_extras(km):
    ax = km.plot(ci=False, censor_marks=False, at_risk=False)
    assert ax._rjtrial_at_risk == []
    plt.close(ax.figure)


def test_plain_savefig_shows_every_at_risk_label_with_words_and_report_colours(tmp_path):
    # issue: the axis said "time_at_risk", the arms' colours were the other way round from the
    # report (labels sort "conference" < "control"), and a plain savefig clipped the labels
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    import pandas as pd

    from rjtrial.survival import kaplan_meier

    rng = np.random.default_rng(1)
    n = 200
    df = pd.DataFrame(
        {
            "arm": rng.choice(["control", "conference"], n),
            "time_at_risk": rng.integers(1, 730, n),
            "event": rng.integers(0, 2, n),
        }
    )
    ax = kaplan_meier(df, time="time_at_risk", event="event", group="arm").plot()
    figure = ax.figure
    figure.savefig(tmp_path / "km.png")  # plain: no bbox_inches="tight"
    renderer = figure.canvas.get_renderer()
    for text in ax.texts:
        box = text.get_window_extent(renderer)
        assert box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.width, text.get_text()
    assert ax.get_xlabel() == "days at liberty since random assignment"
    colours = {line.get_label(): line.get_color() for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert colours["control"] == matplotlib.rcParams["axes.prop_cycle"].by_key()["color"][0]
