"""The sample-size search by simulation (rjtrial/simulate/sample_size.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rjtrial.simulate import power as P
from rjtrial.simulate.sample_size import _bracket, _smallest, sample_size
from rjtrial.simulate.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
LONDON = ROOT / "synthetic" / "jrc-london-burglary.toml"
SEARCH = {"power": 0.5, "hazard_ratio": 0.5, "reps": 60, "rng": 3, "workers": 1, "truth_population": 20_000}


@pytest.fixture(scope="module")
def london():
    return load_scenario(LONDON)


@pytest.fixture(scope="module")
def found(london, tmp_path_factory):
    return sample_size(london, resolution=0.0, truth_cache_dir=tmp_path_factory.mktemp("truth"), **SEARCH)


def test_the_answer_is_the_smallest_size_reaching_the_target(found):
    rows = found.evaluations.set_index("n")
    assert found.power >= 0.5 and rows.loc[found.n, "power"] == found.power
    assert rows.loc[found.n - 1, "power"] < 0.5  # resolution 0: bisected to one participant
    assert found.summary_frame()["chosen"].sum() == 1


def test_the_answer_is_powers_own_estimate_at_that_size(london, found):
    """Every evaluation is power() from the same seed: common random numbers."""
    frame = (
        P.power(london, n=[found.n, found.n - 1], hazard_ratio=0.5, reps=60, rng=3, workers=1, schoenfeld=False)
        .summary_frame()
        .set_index("n")
    )
    assert frame.loc[found.n, "power"] == found.power and frame.loc[found.n - 1, "power"] < 0.5


def test_the_monte_carlo_uncertainty_brackets_the_answer(found):
    rows = found.evaluations.set_index("n")
    assert found.n_lower <= found.n <= found.n_upper
    assert rows.loc[found.n_lower, "ci_upper"] >= 0.5 and rows.loc[found.n_upper, "ci_lower"] >= 0.5
    assert rows.loc[found.n_lower - 1, "ci_upper"] < 0.5 and rows.loc[found.n_upper - 1, "ci_lower"] < 0.5


def test_schoenfeld_answers_use_the_truth(found):
    truth = found.settings["truths"]["0.5"]
    assert found.itt_hazard_ratio == truth["itt_hazard_ratio"] > 0.5  # diluted by conferences not held
    per = truth["events_per_participant"]
    assert found.schoenfeld_n == P.schoenfeld_sample_size(found.itt_hazard_ratio, 0.5, per)
    assert found.schoenfeld_n_naive == P.schoenfeld_sample_size(0.5, 0.5, per) < found.schoenfeld_n
    text = found.format()
    assert f"n = {found.n:,} randomised" in text and "Schoenfeld" in text
    data = found.to_dict()
    assert data["n"] == found.n and len(data["evaluations"]) == len(found.evaluations)


def test_a_coarser_resolution_needs_fewer_evaluations_and_lands_near(london, found, tmp_path):
    coarse = sample_size(london, resolution=0.1, truth_cache_dir=tmp_path, **SEARCH)
    assert len(coarse.evaluations) < len(found.evaluations)
    assert found.n <= coarse.n <= found.n * 1.1 + 1


def test_the_same_seed_gives_the_same_answer_on_a_pool(london, found, tmp_path):
    pooled = sample_size(london, resolution=0.0, truth_cache_dir=tmp_path, **{**SEARCH, "workers": 2})
    assert (pooled.n, pooled.n_lower, pooled.n_upper) == (found.n, found.n_lower, found.n_upper)


def test_without_the_truth_the_search_starts_from_200(london):
    res = sample_size(
        london, resolution=0.2, schoenfeld=False, **{k: v for k, v in SEARCH.items() if k != "truth_population"}
    )
    assert res.evaluations["n"].iloc[0] == 200 and math.isnan(res.schoenfeld_n)


def test_bisection_helpers():
    reaches = lambda m: m >= 137  # noqa: E731
    assert _smallest(reaches, 100, 200, 0.0) == 137
    assert 137 <= _smallest(reaches, 100, 200, 0.05) <= 137 + 10
    assert _bracket(reaches, 50, [], floor=20, ceiling=10_000, growth=2.0) == (100, 200)
    assert _bracket(reaches, 1000, [], floor=20, ceiling=10_000, growth=2.0) == (125, 250)
    assert _bracket(reaches, 1000, [], floor=20, ceiling=10_000, growth=1.25) == (132, 166)
    assert _bracket(lambda m: True, 100, [], floor=20, ceiling=10_000, growth=2.0) == (19, 20)
    with pytest.raises(ValueError, match="n_max"):
        _bracket(lambda m: False, 100, [], floor=20, ceiling=1000, growth=2.0)


@pytest.mark.parametrize(
    "options, name",
    [
        ({"power": 1.0}, "power"),
        ({"power": 0}, "power"),
        ({"hazard_ratio": [0.5, 0.6]}, "hazard_ratio"),
        ({"hazard_ratio": 1.0}, "hazard_ratio"),
        ({"resolution": -0.1}, "resolution"),
        ({"resolution": 1}, "resolution"),
        ({"n_min": 1}, "n_min"),
        ({"n_max": 20}, "n_max"),
        ({"reps": 0}, "reps"),
        ({"analysis": "x"}, "analysis"),
    ],
)
def test_bad_input_names_the_option(london, options, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        sample_size(london, **{**SEARCH, "schoenfeld": False, **options})


def test_an_effect_too_small_for_n_max_is_an_error(london):
    with pytest.raises(ValueError, match="n_max"):
        sample_size(london, power=0.9, hazard_ratio=0.95, reps=20, rng=1, workers=1, schoenfeld=False, n_max=400)
