"""rjtrial.meta.plots: forest and funnel plots render to PNG (Agg)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from rjtrial import datasets, effects  # noqa: E402
from rjtrial.meta import pool, trim_and_fill  # noqa: E402


@pytest.fixture(scope="module")
def bcg():
    data = datasets.load_bcg()
    return effects.log_risk_ratio(
        data,
        events_treatment="tpos",
        n_treatment=data.tpos + data.tneg,
        events_control="cpos",
        n_control=data.cpos + data.cneg,
        study="author",
    ).assign(alloc=data.alloc.values)


def save(ax, path):
    assert isinstance(ax, matplotlib.axes.Axes)
    ax.figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.close(ax.figure)
    assert path.stat().st_size > 5000


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"exponentiate": True}, {"show_weights": False, "prediction_interval": False}],
    ids=["plain", "exp", "bare"],
)
def test_forest_renders(bcg, tmp_path, kwargs):
    save(pool(bcg, method="REML").plot_forest(**kwargs), tmp_path / "forest.png")


def test_forest_with_subgroups_has_headings(bcg, tmp_path):
    ax = pool(bcg, method="REML", subgroup="alloc").plot_forest(exponentiate=True)
    texts = {t.get_text() for t in ax.texts}
    assert {"random", "alternate", "systematic"} <= texts
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert sum(label.startswith("Subgroup") for label in labels) == 3
    assert "95% prediction interval" in labels
    save(ax, tmp_path / "forest_subgroups.png")


def test_forest_on_given_axes_and_fixed_effect(bcg, tmp_path):
    fig, ax = plt.subplots(figsize=(8, 6))
    out = pool(bcg, method="FE").plot_forest(ax=ax, title="fixed effect")
    assert out is ax
    assert "95% prediction interval" not in [t.get_text() for t in ax.get_yticklabels()]
    save(ax, tmp_path / "forest_fe.png")


def test_funnel_renders_with_imputed_studies(bcg, tmp_path):
    res = pool(bcg, method="REML")
    ax = res.plot_funnel(trim_and_fill=True)
    assert any("imputed" in t.get_text() for t in ax.get_legend().get_texts())
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # standard error 0 at the top
    save(ax, tmp_path / "funnel.png")
    save(res.plot_funnel(trim_and_fill=trim_and_fill(res), levels=(0.95,)), tmp_path / "funnel2.png")


def test_funnel_bad_levels(bcg):
    with pytest.raises(ValueError, match="levels"):
        pool(bcg, method="REML").plot_funnel(levels=(95,))


def test_forest_refuses_meta_regression(bcg):
    es = bcg.assign(x=range(len(bcg)))
    with pytest.raises(ValueError, match="intercept-only"):
        pool(es, method="REML", moderators="x").plot_forest()
