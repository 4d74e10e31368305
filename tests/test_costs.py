"""rjtrial.costs: crimes prevented, benefit-cost ratio and its bootstrap interval.

The unit costs used here are illustrative numbers, not estimates of anything.
"""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rjtrial.costs as costs_module
from rjtrial.costs import benefit_cost
from rjtrial.errors import DataError

TRIAL = pd.read_csv(Path(__file__).resolve().parent / "reference" / "frequency_trial.csv")
COLUMNS = {"reoffences_violence": "violence", "reoffences_property": "property", "reoffences_other": "other"}
ILLUSTRATIVE = {"violence": 10_000.0, "property": 3_000.0, "other": 1_000.0}
ARGS = dict(offence_counts=COLUMNS, costs=ILLUSTRATIVE, group="arm", programme_cost_per_participant=2_000.0)


def test_docstring_examples_run():
    result = doctest.testmod(costs_module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_point_estimate_by_hand():
    res = benefit_cost(TRIAL, rng=1, n_bootstrap=0, **ARGS)
    means = TRIAL.groupby("arm")[list(COLUMNS)].mean()
    prevented = 250 * (means.loc["control"] - means.loc["rj"])
    benefit = sum(prevented[c] * ILLUSTRATIVE[t] for c, t in COLUMNS.items())
    assert res.benefit_ == pytest.approx(benefit)
    assert res.programme_cost_ == 500_000
    assert res.ratio_ == pytest.approx(benefit / 500_000)
    table = res.prevented_frame()
    assert table["offence_type"].tolist() == ["violence", "property", "other"]
    assert table["prevented"].tolist() == pytest.approx(prevented.tolist())
    assert np.isnan(res.ci_lower) and res.bootstrap_ratios_.size == 0


def test_total_cost_equals_per_participant_cost():
    per = benefit_cost(TRIAL, rng=3, n_bootstrap=50, **ARGS)
    total = benefit_cost(
        TRIAL, rng=3, n_bootstrap=50, **{**ARGS, "programme_cost_per_participant": None}, programme_cost_total=500_000.0
    )
    assert total.ratio_ == per.ratio_
    np.testing.assert_array_equal(total.bootstrap_ratios_, per.bootstrap_ratios_)


def test_columns_sharing_a_type_are_added():
    mapping = {"reoffences_violence": "any", "reoffences_property": "any", "reoffences_other": "any"}
    res = benefit_cost(
        TRIAL, offence_counts=mapping, costs={"any": 1.0}, group="arm", programme_cost_total=1.0, rng=0, n_bootstrap=0
    )
    means = TRIAL.groupby("arm")["reoffences"].mean()
    assert res.ratio_ == pytest.approx(250 * (means["control"] - means["rj"]))


def test_list_of_columns_and_costs_dataframe():
    df = TRIAL.rename(columns={c: t for c, t in COLUMNS.items()})
    table = pd.DataFrame({"offence_type": list(ILLUSTRATIVE), "cost": list(ILLUSTRATIVE.values())})
    res = benefit_cost(
        df,
        offence_counts=list(ILLUSTRATIVE),
        costs=table,
        group="arm",
        programme_cost_per_participant=2_000.0,
        rng=0,
        n_bootstrap=0,
    )
    assert res.ratio_ == pytest.approx(benefit_cost(TRIAL, rng=0, n_bootstrap=0, **ARGS).ratio_)


def test_bootstrap_is_reproducible_and_records_the_seed():
    a = benefit_cost(TRIAL, rng=2024, n_bootstrap=300, **ARGS)
    b = benefit_cost(TRIAL, rng=2024, n_bootstrap=300, **ARGS)
    c = benefit_cost(TRIAL, rng=2025, n_bootstrap=300, **ARGS)
    np.testing.assert_array_equal(a.bootstrap_ratios_, b.bootstrap_ratios_)
    assert not np.array_equal(a.bootstrap_ratios_, c.bootstrap_ratios_)
    assert a.seed == 2024 and a.summary_frame().attrs["seed"] == 2024
    assert set(a.versions) == {"rjtrial", "numpy"}
    g = benefit_cost(TRIAL, rng=np.random.default_rng(2024), n_bootstrap=300, **ARGS)
    assert g.seed is None
    np.testing.assert_array_equal(g.bootstrap_ratios_, a.bootstrap_ratios_)


def test_percentile_interval_and_bootstrap_spread():
    res = benefit_cost(TRIAL, rng=7, n_bootstrap=2000, alpha=0.1, **ARGS)
    lower, upper = np.quantile(res.bootstrap_ratios_, [0.05, 0.95])
    assert (res.ci_lower, res.ci_upper) == (lower, upper)
    assert res.ci_lower < res.ratio_ < res.ci_upper
    # The ratio is linear in two arm means: its bootstrap SD is close to the analytic SE.
    value = sum(TRIAL[c] * ILLUSTRATIVE[t] for c, t in COLUMNS.items())
    by_arm = value.groupby(TRIAL["arm"])
    se = 250 / 500_000 * np.sqrt((by_arm.var(ddof=0) / by_arm.count()).sum())
    assert res.summary_frame().loc["benefit_cost_ratio", "std_error"] == pytest.approx(se, rel=0.08)
    summary = res.summary_frame()
    assert summary.index.tolist() == ["benefit_cost_ratio", "benefit", "programme_cost", "net_benefit"]
    assert summary.loc["net_benefit", "estimate"] == pytest.approx(res.benefit_ - res.programme_cost_)
    assert "benefit-cost ratio" in str(res)


def test_large_bootstrap_is_chunked(monkeypatch):
    monkeypatch.setattr(costs_module, "_CHUNK", 1000)
    small = benefit_cost(TRIAL, rng=5, n_bootstrap=40, **ARGS)
    monkeypatch.setattr(costs_module, "_CHUNK", 10**9)
    big = benefit_cost(TRIAL, rng=5, n_bootstrap=40, **ARGS)
    np.testing.assert_allclose(small.bootstrap_ratios_, big.bootstrap_ratios_)


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(costs={"violence": 1.0, "property": 2.0}), DataError, r"no cost for offence type\(s\) \['other'\]"),
        (dict(costs={**ILLUSTRATIVE, "other": -5.0}), DataError, "finite number >= 0"),
        (dict(costs=pd.DataFrame({"type": ["violence"], "cost": [1.0]})), ValueError, "'offence_type' and 'cost'"),
        (dict(programme_cost_total=1.0), ValueError, "exactly one"),
        (dict(programme_cost_per_participant=0.0), ValueError, "positive"),
        (dict(rng=None), ValueError, "rng"),
        (dict(n_bootstrap=-1), ValueError, "n_bootstrap"),
        (dict(offence_counts={"robbery": "robbery"}), DataError, "no column 'robbery'"),
    ],
)
def test_bad_arguments(kwargs, error, message):
    args = {**ARGS, "rng": 0, "n_bootstrap": 10, **kwargs}
    with pytest.raises(error, match=message):
        benefit_cost(TRIAL, **args)


@pytest.mark.parametrize(
    "change, column, message",
    [
        (lambda d: d.assign(reoffences_other=d["reoffences_other"].astype(str)), "reoffences_other", "numeric"),
        (lambda d: d.assign(reoffences_other=-d["reoffences_other"] - 1), "reoffences_other", "negative"),
        (lambda d: d.assign(arm="rj"), "arm", "two groups"),
    ],
)
def test_bad_data_names_the_column(change, column, message):
    with pytest.raises(DataError, match=message) as info:
        benefit_cost(change(TRIAL), rng=0, n_bootstrap=0, **ARGS)
    assert info.value.column == column


def test_result_follows_the_result_convention():
    # A frozen dataclass with format() and a JSON-ready to_dict() (CONTRIBUTING.md, "Result objects").
    import dataclasses
    import json

    res = benefit_cost(TRIAL, rng=1, n_bootstrap=20, **ARGS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.ratio_ = 0.0
    assert str(res) == res.format() and res.format().startswith("benefit-cost ratio")
    data = json.loads(json.dumps(res.to_dict(), allow_nan=False))
    assert data["ratio_"] == pytest.approx(res.ratio_) and data["n_bootstrap"] == 20
    assert [row["quantity"] for row in data["summary"]] == [
        "benefit_cost_ratio",
        "benefit",
        "programme_cost",
        "net_benefit",
    ]
    assert [row["offence_type"] for row in data["prevented"]] == ["violence", "property", "other"]
    assert "bootstrap_ratios_" not in data
