"""rjtrial.monitor.design: the group-sequential design, its checks, its file, and its accuracy.

R rpact is the reference (tests/validation/test_rpact_group_sequential.py); here: the settings'
checks, a single look being the fixed design, a file round trip, the numerical integration
converged (refining its grid changes nothing), and the design's level and power checked by
simulating the sequential statistics themselves.
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from scipy import stats

from rjtrial.errors import RjtrialError
from rjtrial.monitor import SequentialDesign, _integration, design


@pytest.fixture(scope="module")
def standard():
    return design(3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.8)


@pytest.fixture(scope="module")
def futility():
    return design(4, spending="hsd:-4", alpha=0.025, alternative="less", futility="obrien-fleming")


# ------------------------------------------------------------------------------ settings
@pytest.mark.parametrize(
    "settings, message",
    [
        ({"looks": 0}, "looks must be a whole number from 1 to 20"),
        ({"looks": 2.5}, "looks must be a whole number"),
        ({"looks": True}, "looks must be a whole number"),
        ({"alpha": 0}, "alpha must lie strictly between 0 and 1"),
        ({"alpha": 0.6, "alternative": "less"}, "alpha must lie strictly between 0 and 0.5"),
        ({"power": 1.0}, "power must lie strictly between 0 and 1"),
        ({"power": 0.01}, "power .* must exceed the one-sided level"),
        ({"hazard_ratio": 1}, "hazard_ratio must be a positive number other than 1"),
        ({"hazard_ratio": -0.8}, "hazard_ratio must be a positive number"),
        ({"hazard_ratio": 1.2, "alternative": "less"}, "alternative='less' tests a hazard ratio below 1"),
        ({"alternative": "one-sided"}, "alternative must be one of two-sided, less, greater"),
        ({"binding": True}, "binding=True needs a futility spending function"),
        ({"binding": "yes", "futility": "pocock", "alternative": "less"}, "binding must be True or False"),
        ({"futility": "pocock"}, "a futility boundary needs a one-sided design: alternative='less'"),
        ({"allocation": 1}, "allocation must lie strictly between 0 and 1"),
        ({"information": [0.5, 1]}, "one fraction per look"),
        ({"information": [0.5, 0.4, 1]}, "increasing fractions"),
        ({"information": [0.2, 0.6, 0.9]}, "must end at 1"),
        ({"information": "half"}, "information must be"),
        ({"spending": "linear"}, "^spending must be one of"),
        ({"futility": "hsd", "alternative": "less"}, "^futility: hsd needs its GAMMA"),
    ],
)
def test_bad_settings_are_one_clear_error(settings, message):
    with pytest.raises(ValueError, match=message):
        design(**{"looks": 3, **settings})


def test_one_look_is_the_fixed_design():
    d = design(1, alpha=0.05, power=0.9, hazard_ratio=0.7, allocation=2 / 3)
    z = stats.norm.isf(0.025)
    assert d.critical_values[0] == pytest.approx(z, abs=1e-12)
    assert d.inflation_factor == pytest.approx(1.0, abs=1e-12)
    schoenfeld = (z + stats.norm.isf(0.1)) ** 2 / (2 / 3 * 1 / 3 * math.log(0.7) ** 2)
    assert d.max_events == pytest.approx(schoenfeld, rel=1e-12)


def test_a_hazard_ratio_above_one_mirrors_one_below(standard):
    harm = design(3, hazard_ratio=1 / 0.8)
    np.testing.assert_allclose(harm.critical_values, standard.critical_values, rtol=1e-14)
    assert harm.max_events == pytest.approx(standard.max_events, rel=1e-12)
    np.testing.assert_allclose(
        harm.summary_frame()["efficacy_hazard_ratio"], 1 / standard.summary_frame()["efficacy_hazard_ratio"], rtol=1e-12
    )


def test_summary_frame(standard, futility):
    frame = standard.summary_frame()
    assert list(frame.columns) == [
        "look",
        "information_fraction",
        "events",
        "critical_value",
        "efficacy_hazard_ratio",
        "harm_hazard_ratio",
        "futility_bound",
        "futility_hazard_ratio",
        "nominal_p",
        "alpha_spent",
        "beta_spent",
        "power",
        "futility_stop",
    ]
    assert frame["look"].tolist() == [1, 2, 3]
    assert frame["events"].iloc[-1] == pytest.approx(standard.max_events)
    assert frame["efficacy_hazard_ratio"].lt(1).all() and frame["harm_hazard_ratio"].gt(1).all()
    assert frame["futility_bound"].isna().all() and frame["beta_spent"].isna().all()
    assert frame.attrs["max_events"] == standard.max_events
    fut = futility.summary_frame()
    assert fut["harm_hazard_ratio"].isna().all()
    assert fut["futility_bound"].iloc[:-1].notna().all() and np.isnan(fut["futility_bound"].iloc[-1])
    assert (fut["futility_bound"].iloc[:-1] < fut["critical_value"].iloc[:-1]).all()


def test_format_names_what_a_committee_needs(standard, futility):
    text = standard.format()
    assert "3 looks, obrien-fleming alpha spending, two-sided alpha 0.05, power 0.8 at hazard ratio 0.8" in text
    assert "maximum events 638.59 (round up: 639)" in text and "harm HR" in text
    assert "fut. z" not in text
    text = futility.format()
    assert "futility: obrien-fleming (non-binding)" in text and "fut. z" in text


# ----------------------------------------------------------------------------------- files
def test_a_design_file_round_trips(futility, tmp_path):
    path = tmp_path / "design.json"
    path.write_text(json.dumps(futility.to_dict()))
    again = SequentialDesign.from_dict(json.loads(path.read_text()), source=str(path))
    assert again == futility
    assert again.fingerprint == futility.fingerprint


def test_a_file_of_settings_alone_is_a_design(standard):
    assert SequentialDesign.from_dict({"settings": {"looks": 3}}) == standard


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["looks"][1].update(critical_value=2.2), "its boundaries are not those of its settings"),
        (lambda d: d["looks"].pop(), "its boundaries are not those of its settings"),
        (lambda d: d["settings"].update(colour="blue"), "unknown setting"),
        (lambda d: d["settings"].update(looks=0), "looks must be a whole number"),
        (lambda d: d.pop("settings"), "not a design"),
        (lambda d: d["looks"][0].pop("critical_value"), "must list each look's critical_value"),
    ],
)
def test_an_edited_design_file_is_refused(standard, edit, message):
    data = json.loads(json.dumps(standard.to_dict()))
    edit(data)
    with pytest.raises(RjtrialError, match=f"^DESIGN.json: .*{message}"):
        SequentialDesign.from_dict(data, source="DESIGN.json")


def test_to_dict_is_json(standard):
    data = standard.to_dict()
    json.dumps(data, allow_nan=False)
    assert data["settings"]["spending"] == "obrien-fleming" and len(data["looks"]) == 3


# ------------------------------------------------------------------------------ accuracy
def test_the_integration_is_converged(monkeypatch):
    """Twice the points, narrower panels, wider tails: nothing moves beyond 1e-12."""
    settings = dict(
        looks=5,
        spending="hsd:-2",
        alpha=0.025,
        alternative="less",
        futility="pocock",
        information=[0.2, 0.35, 0.6, 0.8, 1],
        hazard_ratio=0.75,
    )
    base = design(**settings)
    monkeypatch.setattr(_integration, "POINTS", 20)
    monkeypatch.setattr(_integration, "PANEL", 0.2)
    monkeypatch.setattr(_integration, "TAIL", 12.0)
    nodes, weights = np.polynomial.legendre.leggauss(20)
    monkeypatch.setattr(_integration, "_NODES", nodes)
    monkeypatch.setattr(_integration, "_WEIGHTS", weights)
    fine = design(**settings)
    np.testing.assert_allclose(fine.critical_values, base.critical_values, atol=1e-12)
    np.testing.assert_allclose(fine.futility_bounds, base.futility_bounds, atol=1e-12)
    assert fine.max_events == pytest.approx(base.max_events, rel=1e-12)


def _paths(d, drift, n, seed):
    """Simulated oriented statistics Z_1..Z_K of ``n`` trials: Brownian motion with ``drift``."""
    rng = np.random.default_rng(seed)
    t = np.asarray(d.information)
    increments = rng.standard_normal((n, len(t))) * np.sqrt(np.diff(np.concatenate([[0], t])))
    score = np.cumsum(increments + drift * np.diff(np.concatenate([[0], t])), axis=1)
    return score / np.sqrt(t)


def _decisions(d, z, *, futility_obeyed):
    """Per simulated trial: +1 stopped for efficacy, -1 for harm (two-sided), 0 neither."""
    c = np.asarray(d.critical_values)
    out = np.zeros(len(z), dtype=int)
    stopped = np.zeros(len(z), dtype=bool)
    for k in range(d.looks):
        up = ~stopped & (z[:, k] >= c[k])
        down = ~stopped & (z[:, k] <= -c[k]) if d.sides == 2 else np.zeros(len(z), dtype=bool)
        out[up], out[down] = 1, -1
        stopped |= up | down
        if futility_obeyed and d.futility_bounds is not None and k < d.looks - 1:
            stopped |= z[:, k] <= d.futility_bounds[k]
    return out


# 400,000 simulated trials: Monte Carlo standard error sqrt(a (1 - a) / n); a correct design fails
# these checks with probability 1e-5 (4.42 standard errors, two-sided), per check.
N_PATHS = 400_000
Z_FALSE_ALARM = stats.norm.isf(0.5e-5)


@pytest.mark.parametrize("name", ["standard", "futility"])
def test_level_and_power_by_simulating_the_statistics(name, request):
    d = request.getfixturevalue(name)
    rejected = (_decisions(d, _paths(d, 0.0, N_PATHS, seed=1), futility_obeyed=False) != 0).mean()
    assert abs(rejected - d.alpha) < Z_FALSE_ALARM * math.sqrt(d.alpha * (1 - d.alpha) / N_PATHS)
    power = (_decisions(d, _paths(d, d.drift, N_PATHS, seed=2), futility_obeyed=True) == 1).mean()
    assert abs(power - d.power) < Z_FALSE_ALARM * math.sqrt(d.power * (1 - d.power) / N_PATHS)


def test_looking_three_times_at_a_fixed_level_would_not_keep_it(standard):
    """The check above can fail: boundaries of 1.96 at each look reject 10.7% of null trials."""
    naive = SequentialDesign(**{**standard.__dict__, "critical_values": (1.96, 1.96, 1.96)})
    rate = (_decisions(naive, _paths(naive, 0.0, N_PATHS, seed=1), futility_obeyed=False) != 0).mean()
    assert rate > 0.1


def test_notes_are_warned_and_kept():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        d = design(10, spending="obrien-fleming", alpha=0.05, information=[0.01 * k for k in range(1, 10)] + [1])
    assert any("capped at 8" in note for note in d.notes)
    assert any("capped at 8" in str(w.message) for w in caught)
