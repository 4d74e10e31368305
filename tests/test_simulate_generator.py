"""The generator (rjtrial/simulate/generator.py) and ``rjtrial simulate`` (rjtrial/cli/simulate.py).

Agreement tests: the registry path and the in-memory path give the same referrals and a
valid allocation; the follow-up builder and ``rjtrial followup`` run unchanged on the
tables. Invariants of the records (custody never overlaps offences or other spells, nothing
after death or extraction, prior counts).
Distributional checks of the reoffending process (frailty overdispersion, the effect
among the treated, compliance, victims' calibration).
"""

from __future__ import annotations

import argparse
import doctest
import importlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial import followup
from rjtrial.cli.simulate import add_commands as add_parser
from rjtrial.cli.simulate import cmd_simulate, parse_overrides
from rjtrial.registry import Registry
from rjtrial.simulate import load_scenario, simulate_trial
from rjtrial.simulate.generator import TABLES, generate
from rjtrial.simulate.scenario import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = ROOT / "synthetic"
LONDON = SYNTHETIC / "jrc-london-burglary.toml"
EXPORT_COLUMNS = ["id", "arm", "sequence_number", "randomised_at", "randomised_on"]


def small(name: str, n: int = 40, **more):
    """A shipped scenario shrunk to ``n`` randomised (the referral rate scaled alike)."""
    scenario = load_scenario(SYNTHETIC / f"{name}.toml")
    rate = scenario.referrals.rate_per_month * n / scenario.referrals.randomised
    return scenario.with_overrides({"referrals.randomised": n, "referrals.rate_per_month": rate, **more})


@pytest.fixture(scope="module")
def london():
    return generate(load_scenario(LONDON), rng=11)


@pytest.fixture(scope="module")
def large():
    """A big multi-site trial (blocks of records to check invariants on)."""
    return generate(small("jrc-multisite", 4000), rng=5)


# ----------------------------------------------------------------------------- reproducibility
def test_same_seed_same_trial_and_another_seed_another():
    a, b = generate(small("jrc-london-burglary"), rng=3), generate(small("jrc-london-burglary"), rng=3)
    c = generate(small("jrc-london-burglary"), rng=4)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.offences.equals(c.offences)


def test_a_generator_is_accepted_as_rng():
    a = generate(small("jrc-london-burglary"), rng=np.random.default_rng(8))
    b = generate(small("jrc-london-burglary"), rng=8)
    pd.testing.assert_frame_equal(a.offences, b.offences)


# ----------------------------------------------------------------------------- registry agreement
@pytest.mark.parametrize(
    "name", ["jrc-london-burglary", "jrc-multisite", "magistrates-property", "canberra-youth-violence"]
)
def test_registry_and_in_memory_paths_randomise_the_same_referrals(name, tmp_path):
    """The registry allocates from its own sealed sequence, the in-memory path by the protocol's law
    from the trial's streams: the same referrals, screened alike, each path a valid allocation, and
    the registry's export is the in-memory participants table's shape."""
    scenario = small(name, 36)
    memory = generate(scenario, rng=21)
    registered = generate(scenario, rng=21, registry=tmp_path)
    same = [c for c in memory.referrals.columns if c not in ("arm",)]
    pd.testing.assert_frame_equal(registered.referrals[same], memory.referrals[same])
    assert registered.participants["receipt"].str.startswith("RJ-").all()
    assert memory.participants["receipt"].isna().all()
    keep = ["id", "sequence_number", "randomised_at", "randomised_on", *scenario.protocol.strata]
    pd.testing.assert_frame_equal(registered.participants[keep], memory.participants[keep])
    with Registry.open(tmp_path / "trial.db") as reg:
        assert reg.verify().ok
        consort = reg.consort()
        export = reg.export()
    assert list(export["arm"]) == list(registered.participants["arm"])
    assert consort.referred == len(memory.referrals)
    assert consort.randomised == len(memory.participants)
    assert consort.treatment_received_by_arm[scenario.conference_arm] == int(registered.costs["conference_held"].sum())
    assert list(export.columns) == list(memory.participants.columns[: len(export.columns)])
    assert export.dtypes.equals(memory.participants[export.columns].dtypes)


def test_registry_path_refuses_a_trial_larger_than_the_sealed_sequence(tmp_path):
    scenario = small("canberra-youth-violence", 301)  # capacity 300 in one block sequence
    with pytest.raises(ScenarioError, match="capacity 300 is too small"):
        generate(scenario, rng=1, registry=tmp_path)
    assert not (tmp_path / "trial.db").exists()


# ----------------------------------------------------------------------------- table shapes
def test_tables_have_the_documented_columns(london):
    scenario = london.scenario
    strata = list(scenario.protocol.strata)
    assert list(london.participants.columns) == (
        EXPORT_COLUMNS
        + strata
        + ["treatment_received", "conference_held", "withdrawn", "receipt", "age", "sex"]
        + [f"prior_{t}" for t in scenario.offence_types]
        + ["died_on"]
    )
    assert list(london.offences.columns) == ["id", "offence_date", "conviction_date", "offence_type"]
    assert list(london.custody.columns) == ["id", "start", "end"]
    assert list(london.victims.columns) == [
        "victim_id",
        "id",
        "arm",
        "conference_held",
        "satisfied",
        "would_recommend",
        "ies_r_baseline",
        "ies_r_followup",
    ]
    assert list(london.costs.columns) == ["id", "arm", "conference_held", "programme_cost"]
    assert list(london.referrals.columns) == (
        ["id", "referred_at"]
        + strata
        + [f"answer_{q.id}" for q in scenario.protocol.eligibility]
        + ["status", "reasons", "arm", "sequence_number"]
    )


def test_referrals_screening_matches_the_protocol(london):
    scenario, referrals = london.scenario, london.referrals
    answers = {q.id: referrals[f"answer_{q.id}"].astype(str) for q in scenario.protocol.eligibility}
    eligible = np.logical_and.reduce([answers[q.id].isin(q.eligible_if) for q in scenario.protocol.eligibility])
    assert np.array_equal(eligible, (referrals["status"] == "randomised").to_numpy())
    assert int(eligible.sum()) == scenario.referrals.randomised
    assert referrals["status"].iloc[-1] == "randomised"  # the stream stops when the trial is full
    assert referrals["referred_at"].is_monotonic_increasing
    assert (referrals.loc[~eligible, "reasons"] != "").all() and (referrals.loc[eligible, "reasons"] == "").all()
    hours = referrals["referred_at"].dt.hour
    assert hours.between(9, 16).all()


def test_the_trial_is_placed_by_counting_back_from_the_extraction_date(london):
    scenario = london.scenario
    last = london.participants["randomised_on"].max()
    assert last == pd.Timestamp(scenario.extraction.date) - pd.Timedelta(
        days=scenario.extraction.days_after_last_assignment
    )


def test_a_fixed_start_places_the_first_referral():
    def starting(start):
        return small("magistrates-property").with_overrides(
            {"referrals.start": start, "extraction.days_after_last_assignment": None}
        )

    trial = generate(starting("2003-01-06"), rng=2)
    assert trial.referrals["referred_at"].iloc[0].date().isoformat() == "2003-01-06"
    with pytest.raises(ScenarioError, match="still be randomising"):
        generate(starting("2007-06-01"), rng=2)


# ----------------------------------------------------------------------------- follow-up runs unchanged
def test_followup_builder_and_cli_run_unchanged_on_the_written_tables(london, tmp_path, capsys):
    from rjtrial.cli import main

    london.write(tmp_path)
    api = london.followup()
    read = {
        name: pd.read_csv(tmp_path / f"{name}.csv", dtype={"id": str})
        for name in ("participants", "offences", "custody")
    }
    plan = london.scenario.analysis
    from_csv = followup.build(
        read["participants"],
        read["offences"],
        custody=read["custody"],
        extraction_date=str(london.scenario.extraction.date),
        conviction_lag_days=plan.conviction_lag_days,
    )
    code = main(
        [
            "followup",
            "--participants",
            str(tmp_path / "participants.csv"),
            "--offences",
            str(tmp_path / "offences.csv"),
            "--custody",
            str(tmp_path / "custody.csv"),
            "--extraction-date",
            str(london.scenario.extraction.date),
            "--conviction-lag",
            str(plan.conviction_lag_days),
            "-o",
            str(tmp_path / "followup.csv"),
        ]
    )
    assert code == 0
    cli = pd.read_csv(tmp_path / "followup.csv")
    for column in ("time_at_risk", "event", "reoffences", "prior_offences", "exposure_days", "days_in_custody"):
        assert api[column].tolist() == from_csv[column].tolist() == cli[column].tolist(), column
    assert api["event"].any() and api["days_in_custody"].any()


def test_truth_json_is_written_with_the_parameters(london, tmp_path):
    trial = simulate_trial(small("jrc-london-burglary"), rng=1, truth=False)
    trial.write(tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert truth["hazard_ratio_treated"] == 0.82 and truth["itt"] is None and truth["null"] is False
    assert truth["parameters"]["protocol"]["trial"]["id"] == "jrc-london-burglary"
    assert truth["parameters"]["reoffending"]["frailty_variance"] == 1.5
    assert truth["provenance"]["analysis.window_days"].startswith("Sherman")
    assert truth["provenance"]["referrals.randomised"] == "override"
    assert truth["realised"]["randomised"] == 40


# ----------------------------------------------------------------------------- record invariants
def _days(series) -> np.ndarray:
    return series.to_numpy().astype("datetime64[D]").astype(np.int64)


def test_nothing_is_committed_in_custody_and_spells_never_overlap(large):
    off, cus = large.offences, large.custody
    assert (cus["end"] >= cus["start"]).all()
    spells = cus.sort_values(["id", "start"])
    same = spells["id"].to_numpy()[1:] == spells["id"].to_numpy()[:-1]
    assert (_days(spells["start"])[1:][same] > _days(spells["end"])[:-1][same]).all()
    merged = off.merge(cus, on="id")
    inside = (merged["offence_date"] > merged["start"]) & (merged["offence_date"] <= merged["end"])
    long = (merged["end"] - merged["start"]).dt.days >= 1
    assert not (inside & long).any()  # the start day may hold an offence committed before the sentence


def test_custody_starts_on_a_conviction_date(large):
    convictions = set(zip(large.offences["id"], large.offences["conviction_date"]))
    assert all(key in convictions for key in zip(large.custody["id"], large.custody["start"]))


def test_records_respect_extraction_death_and_order(large):
    off = large.offences.merge(large.participants[["id", "died_on"]], on="id")
    extraction = pd.Timestamp(large.scenario.extraction.date)
    assert (off["conviction_date"] < extraction).all()  # the extract holds convictions known by then
    assert off["conviction_date"].notna().all()  # include_unconvicted = false
    assert (off["conviction_date"] >= off["offence_date"]).all()
    died = off["died_on"].notna()
    assert (off.loc[died, "offence_date"] <= off.loc[died, "died_on"]).all()
    assert (off.loc[died, "conviction_date"] <= off.loc[died, "died_on"]).all()
    assert large.participants["died_on"].notna().sum() > 0
    assert (large.participants["died_on"].dropna() < extraction).all()


def test_unconvicted_offences_can_be_included():
    trial = generate(small("jrc-london-burglary", 200, **{"extraction.include_unconvicted": True}), rng=4)
    assert trial.offences["conviction_date"].isna().mean() > 0.15  # never_convicted = 0.25, plus pending


def test_prior_counts_are_the_convictions_known_at_assignment(large):
    window = large.scenario.analysis.prior_window_days
    off = large.offences.merge(large.participants[["id", "randomised_on"]], on="id")
    known = (
        (off["offence_date"] >= off["randomised_on"] - pd.Timedelta(days=window))
        & (off["offence_date"] < off["randomised_on"])
        & (off["conviction_date"] < off["randomised_on"])
    )
    counts = off[known].groupby(["id", "offence_type"], observed=False).size().unstack(fill_value=0)
    for t in large.scenario.offence_types:
        expected = large.participants["id"].map(counts[t]).fillna(0).astype(int)
        assert large.participants[f"prior_{t}"].tolist() == expected.tolist(), t


def test_every_participant_has_an_index_offence_before_assignment(large):
    """convicted = 1 in this scenario: the index offence is on record unless the offender died
    before being sentenced for it (within weeks of assignment)."""
    off = large.offences.merge(large.participants[["id", "randomised_on", "offence"]], on="id")
    on_record = set(off.loc[off["offence_date"] < off["randomised_on"], "id"])
    missing = large.participants[~large.participants["id"].isin(on_record)]
    assert len(missing) < 0.01 * len(large.participants)
    assert missing["died_on"].notna().all()
    assert ((missing["died_on"] - missing["randomised_on"]).dt.days < 365).all()


# ----------------------------------------------------------------------------- the process
def test_counts_are_negative_binomial_with_the_frailty_variance():
    """With no custody, no lag, no censoring and no covariate effects, reoffences in the window
    are Poisson(Z * rate * 2 years), Z ~ Gamma(mean 1, variance v): mean m, variance m + v m^2."""
    v, rate = 1.5, 1.4
    plain = {
        "custody.probability": 0.0,
        "index_offence.custody": 0.0,
        "conviction.never_convicted": 0.0,
        "conviction.lag_days": {"distribution": "fixed", "value": 0.0},
        "censoring.annual_rate": 0.0,
        "reoffending.log_rate_per_year_of_age": 0.0,
        "reoffending.log_rate_male": 0.0,
        "reoffending.hazard_ratio_treated": 1.0,
        "analysis.conviction_lag_days": 0,
    }
    trial = generate(small("jrc-london-burglary", 20000, **plain), rng=9, lean=True)
    counts = trial.followup()["reoffences"].to_numpy()
    m = rate * 730 / 365.25
    assert counts.mean() == pytest.approx(m, rel=0.03)
    assert counts.var() == pytest.approx(m + v * m**2, rel=0.08)


def test_the_effect_applies_to_those_who_had_a_conference():
    """Observed reoffences over those expected from each person's own latent rate: about 1 in
    every group when the hazard ratio is applied to the treated only (and to no one else)."""
    hr = 0.5
    plain = {
        "reoffending.hazard_ratio_treated": hr,
        "custody.probability": 0.0,
        "index_offence.custody": 0.0,
        "conviction.never_convicted": 0.0,
        "conviction.lag_days": {"distribution": "fixed", "value": 0.0},
        "analysis.conviction_lag_days": 0,
    }
    trial = generate(small("jrc-london-burglary", 6000, **plain), rng=2)
    table = trial.followup().merge(trial.latent[["id", "treated", "annual_rate"]], on="id")
    expected = table["annual_rate"] * table["exposure_days"] / 365.25 * np.where(table["treated"], hr, 1.0)
    conference = table["arm"] == "conference"
    groups = {"treated": table["treated"], "assigned, not held": conference & ~table["treated"], "control": ~conference}
    for name, group in groups.items():
        ratio = table.loc[group, "reoffences"].sum() / expected[group].sum()
        assert ratio == pytest.approx(1.0, abs=0.05), name


def test_compliance_and_treatment_events(london):
    p = london.participants
    control = p["arm"] == london.scenario.control_arm
    assert p.loc[control, "treatment_received"].isna().all()
    assert p.loc[~control, "treatment_received"].notna().all()
    held = p.loc[~control, "treatment_received"].astype(bool)
    assert 0.5 < held.mean() < 1.0  # conference_held = 0.8
    costs = london.costs.set_index("id")
    assert (costs.loc[p.loc[~control, "id"][held.to_numpy()], "programme_cost"] == 700).all()
    assert (costs.loc[p.loc[control, "id"], "programme_cost"] == 0).all()


def test_victims_calibration_matches_the_published_risk_ratio():
    """IES-R >= 25 among victims whose conference was held is 0.51 of the rate among the others."""
    trial = generate(small("jrc-london-burglary", 400, **{"victims.per_offender": 100.0}), rng=6)
    v = trial.victims
    above = v["ies_r_followup"] >= 25
    ratio = above[v["conference_held"]].mean() / above[~v["conference_held"]].mean()
    assert ratio == pytest.approx(0.51, abs=0.03)
    assert v["satisfied"][v["conference_held"]].mean() == pytest.approx(0.85, abs=0.02)
    assert v["ies_r_baseline"].between(0, 88).all() and v["ies_r_followup"].between(0, 88).all()
    assert len(v) == pytest.approx(400 * 100, rel=0.05)


def test_diversion_leaves_the_conference_arm_without_an_index_conviction():
    trial = generate(small("canberra-youth-violence", 300), rng=1)
    off = trial.offences.merge(trial.participants[["id", "arm", "randomised_on"]], on="id")
    index_like = off[(off["conviction_date"] >= off["randomised_on"]) & (off["offence_date"] < off["randomised_on"])]
    share = index_like.groupby("arm")["id"].nunique() / trial.participants["arm"].value_counts()
    assert share["court"] > 0.9 and share["conference"] < 0.5


def test_a_million_dates_fit_in_pandas_range_for_long_intakes():
    trial = generate(small("magistrates-property", 3000), rng=1, lean=True)  # 50 years of intake at 5 a month
    assert trial.participants["randomised_on"].min().year > 1900


# ----------------------------------------------------------------------------- command line
def run_cli(*argv):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["simulate", *map(str, argv)])
    return cmd_simulate(args)


def test_cli_writes_tables_registry_and_truth(tmp_path, capsys):
    out = tmp_path / "out"
    code = run_cli(
        LONDON,
        "--seed",
        3,
        "-o",
        out,
        "--set",
        "referrals.randomised=30",
        "--set",
        "referrals.rate_per_month=3.0",
        "--truth-population",
        20000,
        "--truth-cache",
        "none",
        "--json",
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert sum(data["randomised_by_arm"].values()) == 30 and data["itt"]["hazard_ratio"] > 0
    for name in TABLES:
        assert (out / f"{name}.csv").exists()
    truth = json.loads((out / "truth.json").read_text())
    assert truth["itt"]["population"] == 20000
    assert json.loads((out / "consort.json").read_text())["randomised"] == 30
    with Registry.open(out / "trial.db") as reg:
        assert reg.verify().ok
    api = simulate_trial(
        LONDON,
        rng=3,
        overrides={"referrals.randomised": 30, "referrals.rate_per_month": 3.0},
        truth=False,
        registry=tmp_path / "api",
    )
    written = pd.read_csv(out / "offences.csv")
    assert len(written) == len(api.offences)
    assert written["id"].tolist() == api.offences["id"].tolist()
    # a re-run replaces the previous simulation; --null makes the effect vanish
    assert (
        run_cli(
            LONDON, "--seed", 3, "-o", out, "--null", "--no-truth", "--no-registry", "--set", "referrals.randomised=30"
        )
        == 0
    )
    assert json.loads((out / "truth.json").read_text())["null"] is True
    assert not (out / "trial.db").exists()


def test_cli_refuses_a_folder_it_did_not_write(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    from rjtrial.errors import RjtrialError

    with pytest.raises(RjtrialError, match="holds no simulation"):
        run_cli(LONDON, "--seed", 1, "-o", tmp_path, "--no-truth")


def test_cli_parquet_needs_pyarrow(tmp_path):
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="needs pyarrow"):
            run_cli(LONDON, "--seed", 1, "-o", tmp_path / "o", "--format", "parquet", "--no-truth")
    else:  # pragma: no cover - pyarrow is not a dependency
        assert run_cli(LONDON, "--seed", 1, "-o", tmp_path / "o", "--format", "parquet", "--no-truth") == 0


def test_overrides_are_read_as_toml_values():
    assert parse_overrides(
        ["a.b=1.0", "a.c=12", "a.d=true", "a.e=text", 'a.f={ distribution = "fixed", value = 3 }']
    ) == {"a.b": 1.0, "a.c": 12, "a.d": True, "a.e": "text", "a.f": {"distribution": "fixed", "value": 3}}
    with pytest.raises(ScenarioError, match="expected SECTION.KEY=VALUE"):
        parse_overrides(["nothing"])


def test_rjtrial_main_runs_simulate(tmp_path):
    from rjtrial.cli import main

    assert main(["simulate", str(LONDON), "--seed", "1", "-o", str(tmp_path / "o"), "--no-truth"]) == 0


# ----------------------------------------------------------------------------- docstrings
@pytest.mark.parametrize("name", ["rjtrial.simulate", "rjtrial.simulate.scenario", "rjtrial.simulate.generator"])
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------------ a site joining late (referrals.joins)
@pytest.mark.parametrize("scenario", ["synthetic/jrc-london-burglary.toml", "synthetic/jrc-multisite.toml"])
def test_a_site_that_joins_late_refers_only_after_it_joined_through_an_amendment(tmp_path, scenario):
    """Stratified blocks (new sequences sealed for the new site) and minimisation (none needed)."""
    from rjtrial.registry import Registry

    overrides = {
        "referrals.randomised": 200,
        "referrals.joins": {"thames_valley": 4},
        "referrals.sites": {"london": 0.5, "northumbria": 0.3, "thames_valley": 0.2},
    }
    trial = simulate_trial(scenario, rng=5, registry=tmp_path, truth=False, overrides=overrides)
    memory = simulate_trial(scenario, rng=5, truth=False, overrides=overrides)
    referred = trial.referrals
    with Registry.open(tmp_path / "trial.db") as registry:
        effective = pd.Timestamp(registry.amendments()[0]["effective_at"])
    earliest = referred["referred_at"].min() + pd.Timedelta(days=4 * 365.25 / 12 - 1)  # working hours: within a day
    assert effective >= earliest
    thames = referred.loc[referred["site"] == "thames_valley", "referred_at"]
    assert len(thames) and (thames >= effective).all() and (referred["referred_at"] < effective).any()
    # the same referrals randomised (the registry's arms come from its own sealed segments)
    assert list(trial.participants["id"]) == list(memory.participants["id"])
    assert list(trial.participants["site"]) == list(memory.participants["site"])
    with Registry.open(tmp_path / "trial.db") as registry:
        assert [a["changes"] for a in registry.amendments()] == [["adds site level(s) thames_valley"]]
        assert registry.initial_protocol.strata["site"] == ("london", "northumbria")
        assert registry.verify().ok
        assert list(registry.export()["arm"]) == list(trial.participants["arm"])
    with Registry.open(tmp_path / "trial.db", key_path=tmp_path / "trial.key") as registry:
        assert registry.verify().ok  # with the key: every arm is its sealed segment's own


def test_no_late_site_leaves_the_draws_as_they_were():
    plain = simulate_trial("synthetic/jrc-multisite.toml", rng=9, truth=False, overrides={"referrals.randomised": 100})
    zero = simulate_trial(
        "synthetic/jrc-multisite.toml",
        rng=9,
        truth=False,
        overrides={"referrals.randomised": 100, "referrals.joins": {"thames_valley": 0}},
    )
    pd.testing.assert_frame_equal(plain.participants, zero.participants)


@pytest.mark.parametrize("seed", [12, 18])  # seeds with a Thames Valley referral in that gap (found by search)
def test_a_late_site_is_never_refused_by_the_registry_at_the_edge_of_its_joining_day(tmp_path, seed):
    """The sites are drawn on the arrival clock; referral times keep to working hours (09:00-17:00), so
    a referral just after the joining time on the arrival clock can fall before ``first + months`` by
    the wall clock. The amendment takes effect at that referral: none is refused (as the demo's was)."""
    overrides = {"referrals.randomised": 300, "referrals.joins": {"thames_valley": 1.5}}
    trial = simulate_trial(
        "synthetic/jrc-multisite.toml", rng=seed, registry=tmp_path, truth=False, overrides=overrides
    )
    referred = trial.referrals
    wall_clock_join = referred["referred_at"].min() + pd.Timedelta(days=1.5 * 365.25 / 12)
    assert (referred.loc[referred["site"] == "thames_valley", "referred_at"] < wall_clock_join).any()  # the gap
    assert (trial.participants["site"] == "thames_valley").any()
