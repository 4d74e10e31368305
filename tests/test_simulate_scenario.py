"""Scenarios (rjtrial/simulate/scenario.py): the shipped files, provenance, overrides, validation."""

from __future__ import annotations

import copy
import datetime as dt
import sys
from pathlib import Path

import numpy as np
import pytest

from rjtrial.errors import RjtrialError
from rjtrial.simulate.scenario import Distribution, Scenario, ScenarioError, load_scenario

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "synthetic"
SHIPPED = sorted(SYNTHETIC.glob("*.toml"))
LONDON = SYNTHETIC / "jrc-london-burglary.toml"

# Trial sizes in shared/DOMAIN.md (Strang, Cambridge presentation) that scenarios reproduce.
DOMAIN_SIZES = {"jrc-london-burglary": 167, "canberra-youth-violence": 121, "magistrates-property": 63}


def raw(path=LONDON) -> dict:
    data = tomllib.loads(Path(path).read_text())
    data["protocol"]["path"] = str((Path(path).parent / data["protocol"]["path"]).resolve())
    return data


def problems_of(data) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data)
    return info.value.problems


# ----------------------------------------------------------------------------- shipped scenarios
def test_at_least_four_scenarios_are_shipped():
    assert len(SHIPPED) >= 4
    ids = {load_scenario(p).id for p in SHIPPED}
    assert {"jrc-london-burglary", "canberra-youth-violence", "jrc-multisite", "null-effect"} <= ids


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_scenario_loads_strictly_with_every_parameter_labelled(path):
    scenario = load_scenario(path, strict=True)
    assert scenario.unlabelled() == []
    frame = scenario.provenance_frame()
    assert set(frame["kind"]) <= {"source", "assumption", "not_needed"}
    assert scenario.id == path.stem


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_sourced_parameters_cite_a_domain_source(path):
    """A parameter that is not an assumption names one of shared/DOMAIN.md's sources."""
    frame = load_scenario(path).provenance_frame()
    sourced = frame[frame["kind"] == "source"]
    assert len(sourced) > 0
    known = ("Sherman", "Strang", "Shapland", "Angel", "Ministry of Justice")
    for label in sourced["provenance"]:
        assert any(name in label for name in known), label


@pytest.mark.parametrize("scenario_id, size", sorted(DOMAIN_SIZES.items()))
def test_trial_sizes_are_the_published_ones(scenario_id, size):
    scenario = load_scenario(SYNTHETIC / f"{scenario_id}.toml")
    assert scenario.referrals.randomised == size
    assert "Strang" in scenario.provenance["referrals.randomised"]


def test_published_victim_and_window_figures_are_used():
    scenario = load_scenario(LONDON)
    assert scenario.analysis.window_days == 730  # two years (Sherman et al. 2015)
    assert scenario.victims.satisfied_conference == 0.85  # Shapland et al. 2008
    assert scenario.victims.ies_r_threshold == 25 and scenario.victims.ies_r_risk_ratio_conference == 0.51  # Angel 2014
    assert scenario.victims.per_offender == pytest.approx(1179 / 2231, abs=5e-4)  # Sherman et al. 2015


def test_canberra_diverts_the_conference_arm_from_court():
    scenario = load_scenario(SYNTHETIC / "canberra-youth-violence.toml")
    assert scenario.index_offence.convicted == {"court": 1.0, "conference": 0.0}


def test_null_effect_is_the_multisite_scenario_with_one_line_changed():
    base = load_scenario(SYNTHETIC / "jrc-multisite.toml").to_dict()
    null = load_scenario(SYNTHETIC / "null-effect.toml").to_dict()
    assert null["reoffending"]["hazard_ratio_treated"] == 1.0
    assert base["reoffending"]["hazard_ratio_treated"] != 1.0
    for data in (base, null):
        data.pop("scenario")
        data["reoffending"].pop("hazard_ratio_treated")
        data["reoffending"]["provenance"].pop("hazard_ratio_treated")
    assert base == null


def test_null_is_one_call_or_one_override_away():
    scenario = load_scenario(LONDON)
    by_method = scenario.with_null()
    by_override = load_scenario(LONDON, overrides={"reoffending.hazard_ratio_treated": 1.0})
    assert by_method.reoffending.hazard_ratio_treated == by_override.reoffending.hazard_ratio_treated == 1.0
    assert by_method.fingerprint() == by_override.fingerprint() != scenario.fingerprint()
    assert by_method.provenance["reoffending.hazard_ratio_treated"] == "override"


def test_overrides_reach_the_protocol_and_revalidate():
    scenario = load_scenario(LONDON, overrides={"protocol.randomisation.capacity": 900})
    assert scenario.protocol.randomisation.capacity == 900
    with pytest.raises(ScenarioError, match="treatment.conference_held"):
        scenario.with_overrides({"treatment.conference_held": 1.5})
    with pytest.raises(ScenarioError, match="expected SECTION.KEY"):
        scenario.with_overrides({"nodots": 1})


def test_fingerprint_ignores_provenance_and_follows_values():
    data = raw()
    a = Scenario.from_dict(copy.deepcopy(data))
    data["reoffending"]["provenance"]["annual_rate"] = "assumption: reworded"
    b = Scenario.from_dict(copy.deepcopy(data))
    data["reoffending"]["annual_rate"] = 1.5
    c = Scenario.from_dict(data)
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_offence_types_put_index_types_first():
    scenario = load_scenario(LONDON)
    assert scenario.offence_types == ("burglary", "theft", "violence", "other")
    assert scenario.control_arm == "control" and scenario.conference_arm == "conference"


# ----------------------------------------------------------------------------- validation
def _set(data, dotted, value):
    *path, last = dotted.split(".")
    table = data
    for part in path:
        table = table.setdefault(part, {})
    if value is _DELETE:
        del table[last]
    else:
        table[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    "dotted, value, message",
    [
        ("surprise.x", 1, "surprise: unknown section"),
        ("reoffending.anual_rate", 1.0, "reoffending.anual_rate: unknown key"),
        ("reoffending.annual_rate", _DELETE, "reoffending.annual_rate: missing"),
        ("reoffending.annual_rate", -1.0, "reoffending.annual_rate: must be a number > 0"),
        ("reoffending.hazard_ratio_treated", 0, "reoffending.hazard_ratio_treated: must be a number > 0"),
        ("treatment.conference_held", 1.2, "treatment.conference_held: must be a number >= 0.0 and <= 1.0"),
        ("referrals.randomised", 10.5, "referrals.randomised: must be a whole number"),
        ("referrals.randomised", True, "referrals.randomised: must be a whole number"),
        ("referrals.offence_mix", {"burglary": 0.7}, "referrals.offence_mix: shares must add up to 1"),
        ("referrals.offence_mix", {"bur glary": 1.0}, "referrals.offence_mix: offence type 'bur glary'"),
        ("reoffending.offence_mix", {"offences": 1.0}, "not 'offences'"),
        ("eligibility.victim_consent", _DELETE, "eligibility.victim_consent: missing"),
        ("eligibility.unknown_question", 0.5, "eligibility.unknown_question: unknown key"),
        ("strata.offence", _DELETE, "strata.offence: missing"),
        ("strata.offence.map", {"burglary": "arson"}, "not levels of stratum 'offence'"),
        ("strata.colour", {"source": "site"}, "strata.colour: the protocol has no stratum"),
        ("strata.site.source", "postcode", "strata.site.source: must be one of"),
        (
            "custody.length_days",
            {"distribution": "weibull", "shape": 1},
            "custody.length_days.distribution: unknown 'weibull'",
        ),
        (
            "custody.length_days",
            {"distribution": "gamma", "mean": 10},
            "custody.length_days: gamma takes mean, shape; missing ['shape']",
        ),
        ("custody.probability", {"burglary": 0.5}, "custody.probability.theft: must be a probability"),
        (
            "conviction.lag_days",
            {"distribution": "uniform", "low": 5, "high": 1},
            "conviction.lag_days: low must not exceed high",
        ),
        ("extraction.date", "2999-01-01", "extraction.date: 2999-01-01 is in the future"),
        ("extraction.date", "yesterday", "extraction.date: must be a date"),
        ("referrals.start", "2001-01-01", "referrals.start: give either it or extraction.days_after_last_assignment"),
        (
            "extraction.days_after_last_assignment",
            _DELETE,
            "extraction.days_after_last_assignment: give it, or referrals.start",
        ),
        ("reoffending.provenance.anual_rate", "assumption", "reoffending.provenance.anual_rate: no parameter"),
        ("reoffending.log_rate_by_offence", {"arson": 0.1}, "reoffending.log_rate_by_offence: ['arson']"),
        ("victims.ies_r_threshold", 120, "victims.ies_r_threshold: must be a number >= 0 and <= 88"),
        ("index_offence.convicted", {"control": 1.0}, "index_offence.convicted.conference: must be a probability"),
        ("costs.currency", 5, "costs.currency: must be a currency code"),
        ("protocol.path", "protocols/nowhere.toml", "file not found"),
    ],
)
def test_a_bad_value_is_reported_with_its_key(dotted, value, message):
    data = raw()
    if dotted == "protocol.path":
        data["protocol"]["path"] = str(SYNTHETIC / value)
    else:
        _set(data, dotted, value)
    problems = problems_of(data)
    assert any(message in p for p in problems), problems


def test_every_problem_is_reported_at_once_and_the_error_is_a_value_error():
    data = raw()
    data["reoffending"]["annual_rate"] = -1
    data["treatment"]["conference_held"] = 2
    with pytest.raises(ScenarioError) as info:
        Scenario.from_dict(data, source="x.toml")
    assert len(info.value.problems) == 2
    assert isinstance(info.value, ValueError) and isinstance(info.value, RjtrialError)
    assert str(info.value).startswith("x.toml: invalid scenario (2 problems): ")


def test_a_three_arm_protocol_is_refused():
    data = raw()
    protocol = tomllib.loads(Path(data["protocol"]["path"]).read_text())
    protocol["trial"]["arms"] = ["control", "conference", "mediation"]
    protocol["trial"]["ratio"] = [1, 1, 1]
    protocol["randomisation"]["block_sizes"] = [3, 6]
    data["protocol"] = protocol
    assert any("two-arm trials" in p for p in problems_of(data))


def test_an_inline_protocol_is_accepted():
    data = raw()
    data["protocol"] = tomllib.loads(Path(data["protocol"]["path"]).read_text())
    assert Scenario.from_dict(data).protocol.id == "jrc-london-burglary"


def test_the_future_is_judged_against_today():
    data = raw()
    data["extraction"]["date"] = dt.date(2030, 1, 1)
    assert Scenario.from_dict(data, today=dt.date(2031, 1, 1)).extraction.date == dt.date(2030, 1, 1)


def test_strict_loading_refuses_unlabelled_parameters(tmp_path):
    text = LONDON.read_text().replace('annual_rate = "assumption"\n', "", 1)
    path = tmp_path / "s.toml"
    path.write_text(text.replace('path = "protocols/', f'path = "{SYNTHETIC}/protocols/'))
    scenario = load_scenario(path)
    assert scenario.unlabelled() == ["reoffending.annual_rate"]
    with pytest.raises(ScenarioError, match=r"reoffending.annual_rate: no provenance"):
        load_scenario(path, strict=True)


def test_a_base_scenario_is_amended_and_stale_labels_are_dropped(tmp_path):
    (tmp_path / "child.toml").write_text(
        f'[scenario]\nbase = "{SYNTHETIC / "jrc-multisite.toml"}"\nid = "child"\nname = "c"\n'
        "[reoffending]\nannual_rate = 2.0\n"
        '[custody]\nlength_days = { distribution = "fixed", value = 30 }\n'
        '[custody.provenance]\nlength_days = "assumption"\n'
    )
    child = load_scenario(tmp_path / "child.toml")
    assert child.reoffending.annual_rate == 2.0 and child.reoffending.frailty_variance == 1.5
    assert child.custody.length_days == Distribution("fixed", {"value": 30.0})  # replaced whole, not mixed
    assert child.unlabelled() == ["reoffending.annual_rate"]  # the base's label no longer applies
    assert child.id == "child" and child.protocol.id == "jrc-multisite-minimisation"


def test_a_circular_base_is_an_error(tmp_path):
    (tmp_path / "a.toml").write_text('[scenario]\nbase = "b.toml"\n')
    (tmp_path / "b.toml").write_text('[scenario]\nbase = "a.toml"\n')
    with pytest.raises(ScenarioError, match="circular"):
        load_scenario(tmp_path / "a.toml")


@pytest.mark.parametrize("text, message", [("not = [toml", "not valid TOML"), (None, "file not found")])
def test_unreadable_files_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "s.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ScenarioError, match=message):
        load_scenario(path)


# ----------------------------------------------------------------------------- distributions
@pytest.mark.parametrize(
    "name, params, mean",
    [
        ("fixed", {"value": 3.0}, 3.0),
        ("exponential", {"mean": 40.0}, 40.0),
        ("gamma", {"mean": 60.0, "shape": 2.0}, 60.0),
        ("lognormal", {"median": 100.0, "sigma": 0.5}, 100.0 * np.exp(0.125)),
        ("uniform", {"low": 2.0, "high": 8.0}, 5.0),
    ],
)
def test_distribution_means_and_samples(name, params, mean):
    d = Distribution(name, params)
    assert d.mean == pytest.approx(mean)
    draws = d.sample(np.random.default_rng(0), 200_000)
    assert draws.min() >= 0
    assert draws.mean() == pytest.approx(mean, rel=0.01)
    assert np.array_equal(d.sample(5, 10), d.sample(5, 10))


@pytest.mark.parametrize(
    "joins, problem",
    [
        ({"west_yorkshire": 6}, "referrals.joins.west_yorkshire: not one of referrals.sites"),
        ({"london": -1}, "referrals.joins.london: must be months from 0"),
        ({"london": 1, "northumbria": 2, "thames_valley": 3}, "every site joins late"),
    ],
)
def test_late_sites_are_checked(joins, problem):
    from rjtrial.simulate import load_scenario

    with pytest.raises(ScenarioError, match=problem):
        load_scenario("synthetic/jrc-multisite.toml").with_overrides({"referrals.joins": joins})
