"""rjtrial.report: the trial report's numbers are the library's numbers; bad inputs are refused.

The trial: the synthetic JRC London burglary scenario enrolled referral by referral through
a registry (``simulate_trial(..., registry=...)``), built once per session.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from rjtrial.errors import DataError, RegistryError, RjtrialError
from rjtrial.report import DEFAULT_SEED, TrialReport, build_report

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "synthetic" / "jrc-london-burglary.toml"
COSTS = ROOT / "synthetic" / "costs" / "jrc-london-burglary.toml"


def simulated_trial_folder(base: Path) -> Path:
    """The trial's registry and tables in ``base/report-trial`` (made once per session: the
    report's three test files share it through the session's base temporary folder)."""
    folder = base / "report-trial"
    if (folder / "done").exists():
        return folder
    from rjtrial.simulate import simulate_trial

    trial = simulate_trial(SCENARIO, rng=7, registry=folder, truth=False)
    trial.write(folder)
    trial.followup().to_csv(folder / "followup.csv", index=False, date_format="%Y-%m-%d")
    (folder / "done").write_text("ok")
    return folder


def _build_and_keep(folder: Path) -> TrialReport:
    report = build_report(
        folder / "trial.db",
        folder / "followup.csv",
        victims=folder / "victims.csv",
        costs=COSTS,
        command="tests/test_report.py",
        output=folder / "report.html",
    )
    (folder / "numbers.json").write_text(json.dumps(report.numbers))
    return report


def simulated_report(base: Path) -> tuple[Path, dict]:
    """The API's report of that trial (victims and costs given, default seed), built once per
    session into ``base/report-trial/report.html`` with its numbers in ``numbers.json``."""
    folder = simulated_trial_folder(base)
    if not (folder / "numbers.json").exists():
        _build_and_keep(folder)
    return folder / "report.html", json.loads((folder / "numbers.json").read_text())


@pytest.fixture(scope="session")
def trial_folder(tmp_path_factory) -> Path:
    return simulated_trial_folder(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="session")
def followup(trial_folder) -> pd.DataFrame:
    return pd.read_csv(trial_folder / "followup.csv", dtype={"id": str})


@pytest.fixture(scope="session")
def victims(trial_folder) -> pd.DataFrame:
    return pd.read_csv(trial_folder / "victims.csv", dtype={"id": str})


@pytest.fixture(scope="session")
def report(trial_folder) -> TrialReport:
    return _build_and_keep(trial_folder)


class _Collect(HTMLParser):
    """Numbers shown with their full-precision value, and every image source."""

    def __init__(self):
        super().__init__()
        self.numbers: dict[str, list[tuple[float, str]]] = {}
        self.images: list[str] = []
        self._open: tuple[str, float] | None = None
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag == "span" and "data-key" in attrs:
            self._open = (attrs["data-key"], float(attrs["data-value"]))

    def handle_data(self, data):
        if self._open is not None:
            key, value = self._open
            self.numbers.setdefault(key, []).append((value, data))
            self._open = None


def parse(html: str) -> _Collect:
    parser = _Collect()
    parser.feed(html)
    return parser


def _analysis_data(followup: pd.DataFrame, trial_folder: Path) -> pd.DataFrame:
    """The follow-up with the conference record as the test reads it from the registry's export."""
    participants = pd.read_csv(trial_folder / "participants.csv", dtype={"id": str})
    held = participants.set_index("id")["treatment_received"].map({True: 1, False: 0, "True": 1, "False": 0})
    data = followup.copy()
    data["conference_held"] = data["id"].map(held).fillna(0).astype(int)
    data["reoffended"] = data["event"].astype(int)
    return data


# ------------------------------------------------------ the numbers are the API's
def test_primary_numbers_are_primary_results(report, followup):
    from rjtrial.primary import primary_results

    frame = primary_results(followup, control="control").summary_frame().set_index("measure")
    n = report.numbers
    assert n["hazard_ratio"] == pytest.approx(frame.loc["log_hazard_ratio", "ratio"], rel=1e-10)
    assert n["hr_ci_lower"] == pytest.approx(frame.loc["log_hazard_ratio", "ci_lower"], rel=1e-10)
    assert n["hr_ci_upper"] == pytest.approx(frame.loc["log_hazard_ratio", "ci_upper"], rel=1e-10)
    assert n["logrank_p"] == pytest.approx(frame.loc["logrank", "p_value"], rel=1e-10)
    assert n["rmst_difference"] == pytest.approx(frame.loc["rmst_difference", "estimate"], rel=1e-10)
    assert n["rate_ratio"] == pytest.approx(frame.loc["log_rate_ratio", "ratio"], rel=1e-8)
    assert n["risk_ratio"] == pytest.approx(frame.loc["log_risk_ratio", "ratio"], rel=1e-12)


def test_hazard_ratio_agrees_with_lifelines(report, followup):
    from lifelines import CoxPHFitter

    data = pd.DataFrame(
        {
            "t": followup["time_at_risk"],
            "e": followup["event"].astype(int),
            "rj": (followup["arm"] == "conference").astype(int),
        }
    )
    fit = CoxPHFitter().fit(data, "t", "e", fit_options={"precision": 1e-12})  # default stops ~6e-5 short
    assert report.numbers["hazard_ratio"] == pytest.approx(float(np.exp(fit.params_["rj"])), rel=1e-7)


def test_cace_is_the_compliance_module_on_the_registry_record(report, followup, trial_folder):
    from rjtrial.compliance import cace

    data = _analysis_data(followup, trial_folder)
    result = cace(data, outcome="reoffended", assigned="arm", treated="conference_held", control="control")
    assert report.numbers["cace"] == pytest.approx(result.estimate, rel=1e-10)
    assert report.numbers["cace_ci_upper"] == pytest.approx(result.ci_upper, rel=1e-10)
    assert report.numbers["itt"] == pytest.approx(result.itt_outcome_, rel=1e-10)
    # the Wald ratio by hand: ITT on the outcome over ITT on uptake
    by_arm = data.groupby("arm")[["reoffended", "conference_held"]].mean()
    wald = by_arm.loc["conference"] - by_arm.loc["control"]
    assert report.numbers["cace"] == pytest.approx(wald["reoffended"] / wald["conference_held"], rel=1e-9)


def test_benefit_cost_is_costs_module_with_the_printed_seed(report, followup, trial_folder):
    from rjtrial.costs import benefit_cost

    participants = pd.read_csv(trial_folder / "participants.csv", dtype={"id": str})
    received = participants["treatment_received"].astype(str)
    held = int((received == "True").sum())
    not_held = int(((participants["arm"] == "conference") & (received != "True")).sum())
    result = benefit_cost(
        followup,
        offence_counts=["reoffences"],
        costs={"reoffences": 5000.0},
        group="arm",
        control="control",
        rng=DEFAULT_SEED,
        programme_cost_total=held * 700.0 + not_held * 150.0,
        n_bootstrap=2000,
    )
    assert report.numbers["benefit_cost_ratio"] == pytest.approx(result.ratio_, rel=1e-12)
    assert report.numbers["bcr_ci_lower"] == pytest.approx(result.ci_lower, rel=1e-12)
    assert f"seed {DEFAULT_SEED}" in report.html


def test_victim_numbers_are_victims_module(report, victims):
    from rjtrial import victims as v

    satisfied = v.binary_outcome(victims, outcome="satisfied", group="arm", control="control")
    assert report.numbers["victims_satisfied_risk_ratio"] == pytest.approx(satisfied.risk_ratio.estimate, rel=1e-12)
    ancova = v.ancova(victims, outcome="ies_r_followup", baseline="ies_r_baseline", group="arm", control="control")
    assert report.numbers["victims_ies_r_difference"] == pytest.approx(ancova.estimate, rel=1e-10)


def test_every_number_shown_is_the_number_returned(report):
    shown = parse(report.html).numbers
    for key in (
        "hazard_ratio",
        "hr_ci_lower",
        "hr_ci_upper",
        "logrank_p",
        "rmst_difference",
        "rate_ratio",
        "risk_ratio",
        "cace",
        "benefit_cost_ratio",
    ):
        assert key in shown, key
    for key, values in shown.items():
        for value, text in values:
            if np.isnan(report.numbers[key]):
                assert np.isnan(value) and text == "\u2014", key
                continue
            assert value == report.numbers[key], key
            if text.startswith("<"):
                assert report.numbers[key] < 0.001
            else:
                digits = len(text.split(".")[1]) if "." in text else 0
                assert float(text.replace(",", "")) == pytest.approx(report.numbers[key], abs=0.51 * 10**-digits), key


def test_consort_counts_match_the_referral_stream(report, trial_folder):
    referrals = pd.read_csv(trial_folder / "referrals.csv", dtype={"id": str})
    consort = report.sections["consort"]
    assert consort["referred"] == len(referrals)
    assert consort["screened_out"] == int((referrals["status"] == "ineligible").sum())
    randomised = referrals[referrals["status"] == "randomised"]
    assert consort["randomised_by_arm"] == randomised["arm"].value_counts().to_dict()
    assert consort["analysed_by_arm"] == randomised["arm"].value_counts().to_dict()
    assert f"{consort['screened_out']} screened out" in report.html  # the diagram's alt text


def test_baseline_standardised_difference_of_age(report, followup):
    control = followup.loc[followup["arm"] == "control", "age"]
    treated = followup.loc[followup["arm"] == "conference", "age"]
    expected = (treated.mean() - control.mean()) / np.sqrt((treated.var() + control.var()) / 2)
    row = next(r for r in report.sections["baseline"]["rows"] if r["label"].startswith("age"))
    assert row["smd"] == pytest.approx(expected, rel=1e-12)
    assert row["values"]["control"] == f"{control.mean():.2f} ({control.std():.2f})"


def test_subgroup_hazard_ratio_agrees_with_lifelines(report, followup):
    from lifelines import CoxPHFitter

    row = next(r for r in report.sections["subgroups"]["rows"] if r["label"].strip() == "under 25")
    young = followup[followup["age"] < 25]
    data = pd.DataFrame(
        {"t": young["time_at_risk"], "e": young["event"].astype(int), "rj": (young["arm"] == "conference").astype(int)}
    )
    fit = CoxPHFitter().fit(data, "t", "e", fit_options={"precision": 1e-12})
    assert row["n"] == len(young)
    assert row["estimate"] == pytest.approx(float(np.exp(fit.params_["rj"])), rel=1e-7)


def test_age_band_interaction_is_a_likelihood_ratio_test(report, followup):
    from scipy import stats

    from rjtrial import survival

    data = followup.assign(
        band=pd.cut(followup["age"], [0, 25, 35, 200], right=False).astype(str),
        e=followup["event"].astype(int),
        arm=pd.Categorical(followup["arm"], ["control", "conference"]),
    )
    full = survival.cox(data, "arm * band", time="time_at_risk", event="e")
    reduced = survival.cox(data, "arm + band", time="time_at_risk", event="e")
    statistic = 2 * (full.log_likelihood_ - reduced.log_likelihood_)
    test = next(t for t in report.sections["subgroups"]["tests"] if t["variable"] == "age band")
    assert test["df"] == 2
    assert test["p_value"] == pytest.approx(stats.chi2.sf(statistic, 2), rel=1e-8)


# --------------------------------------------------------------- self-contained
def test_report_is_self_contained(report):
    parsed = parse(report.html)
    assert not {"script", "link", "iframe"} & parsed.tags
    assert len(parsed.images) == 3  # CONSORT, Kaplan–Meier, forest
    for src in parsed.images:
        assert src.startswith("data:image/png;base64,")
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", report.html)
    assert "url(" not in report.html


def test_seed_changes_only_the_bootstrap_and_is_printed_with_versions_and_command(
    report, trial_folder, followup, victims
):
    import numpy

    other = build_report(
        trial_folder / "trial.db",
        followup,
        victims=victims,
        costs=COSTS,
        seed=1,
        command="rjtrial report --db X --followup Y -o Z",
    )
    assert other.numbers["benefit_cost_ratio"] == report.numbers["benefit_cost_ratio"]
    assert other.numbers["bcr_ci_lower"] != report.numbers["bcr_ci_lower"]
    assert {k: v for k, v in other.numbers.items() if not k.startswith("bcr")} == {
        k: v for k, v in report.numbers.items() if not k.startswith("bcr")
    }
    assert "<dt>Seed</dt><dd>1 " in other.html and f"<dt>Seed</dt><dd>{DEFAULT_SEED} " in report.html
    assert "rjtrial report --db X --followup Y -o Z" in other.html
    assert f"numpy {numpy.__version__}" in other.html
    assert other.sections["design"]["commitment"] in other.html


def test_failed_verification_and_incomplete_followup_are_shown(trial_folder, followup, tmp_path):
    db = tmp_path / "trial.db"
    # SQLite's backup API copies what is still in the -wal file too (a plain file copy may not)
    with sqlite3.connect(trial_folder / "trial.db") as source, sqlite3.connect(db) as target:
        source.backup(target)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE rj_audit SET actor = 'mallory' WHERE seq = 3")
    partial = followup.drop(index=[3, 7])
    with pytest.raises(DataError, match="2 randomised participant"):
        build_report(db, partial)
    out = build_report(db, partial, allow_missing=True)
    assert out.sections["design"]["verification"]["ok"] is False
    assert "did NOT verify" in out.html
    assert "Incomplete follow-up" in out.html
    assert sum(out.sections["consort"]["analysed_by_arm"].values()) == len(followup) - 2


# ------------------------------------------------------------------- bad inputs
def _error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_a_stranger_in_the_followup_is_named_by_row_and_id(trial_folder, followup):
    bad = followup.copy()
    bad.loc[11, "id"] = "X-1"
    with pytest.raises(DataError) as excinfo:
        build_report(trial_folder / "trial.db", bad)
    message = _error(excinfo)
    assert "row 12" in message and "'X-1'" in message and "jrc-london-burglary" in message
    assert excinfo.value.row == 12 and excinfo.value.column == "id"


def test_another_trials_followup_is_refused(trial_folder):
    from rjtrial.simulate import simulate_trial

    other = simulate_trial(ROOT / "synthetic" / "canberra-youth-violence.toml", rng=3, truth=False).followup()
    with pytest.raises(DataError) as excinfo:
        build_report(trial_folder / "trial.db", other)
    assert excinfo.value.table == "followup"
    assert "jrc-london-burglary" in _error(excinfo) or "allocated" in _error(excinfo)


def test_a_wrong_arm_is_named(trial_folder, followup):
    bad = followup.copy()
    bad.loc[4, "arm"] = "control" if bad.loc[4, "arm"] == "conference" else "conference"
    with pytest.raises(DataError) as excinfo:
        build_report(trial_folder / "trial.db", bad)
    assert excinfo.value.row == 5 and excinfo.value.column == "arm"
    assert repr(bad.loc[4, "id"]) in _error(excinfo)


def test_duplicate_rows_are_refused(trial_folder, followup):
    bad = pd.concat([followup, followup.iloc[[5]]], ignore_index=True)
    with pytest.raises(DataError, match="appears twice") as excinfo:
        build_report(trial_folder / "trial.db", bad)
    assert excinfo.value.row == len(followup) + 1


def test_victims_of_strangers_are_refused(trial_folder, followup, victims):
    bad = victims.copy()
    bad.loc[2, "id"] = "NOBODY"
    with pytest.raises(DataError) as excinfo:
        build_report(trial_folder / "trial.db", followup, victims=bad)
    assert excinfo.value.table == "victims" and excinfo.value.row == 3


@pytest.mark.parametrize("which", ["db", "followup", "victims", "costs", "key"])
def test_missing_files_are_named(trial_folder, tmp_path, which):
    paths = {"db": trial_folder / "trial.db", "followup": trial_folder / "followup.csv"}
    options = {}
    missing = tmp_path / f"no-such-{which}"
    if which in paths:
        paths[which] = missing
    else:
        options[which] = missing
    with pytest.raises(RjtrialError) as excinfo:
        build_report(paths["db"], paths["followup"], **options)
    assert str(missing) in _error(excinfo)
    if which == "db":
        assert isinstance(excinfo.value, RegistryError)


def test_costs_file_format_is_checked(trial_folder, followup, tmp_path):
    bad = tmp_path / "costs.toml"
    bad.write_text("[cost_per_offence]\nreoffences = 5000\n[programme_cost]\nper_participant = 600\ntotal = 10\n")
    with pytest.raises(RjtrialError, match="exactly one"):
        build_report(trial_folder / "trial.db", followup, costs=bad)
    bad.write_text("[cost_per_offence]\nburglaries = 5000\n[programme_cost]\ntotal = 1000\n")
    with pytest.raises(DataError, match="burglaries"):
        build_report(trial_folder / "trial.db", followup, costs=bad)


def test_write_leaves_no_partial_file(report, tmp_path):
    target = tmp_path / "missing-folder" / "report.html"
    with pytest.raises(RjtrialError):
        report.write(target)
    assert not target.parent.exists()
    written = report.write(tmp_path / "report.html")
    assert written.read_text(encoding="utf-8") == report.html
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_failure_keeps_the_previous_report(trial_folder, followup, tmp_path):
    target = tmp_path / "report.html"
    target.write_text("previous")
    with pytest.raises(DataError):
        build_report(trial_folder / "trial.db", followup.assign(time_at_risk=np.nan), output=target)
    assert target.read_text() == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_subgroup_without_events_in_an_arm_is_not_estimable(followup, trial_folder):
    from rjtrial.report import sections

    data = _analysis_data(followup, trial_folder)
    young_treated = (data["age"] < 25) & (data["arm"] == "conference")
    data.loc[young_treated, "reoffended"] = 0
    result = sections.subgroups(
        data,
        ["control", "conference"],
        ["site", "offence"],
        alpha=0.05,
        overall={"estimate": 1.0, "ci_lower": 0.5, "ci_upper": 2.0},
    )
    row = next(r for r in result["rows"] if r["label"].strip() == "under 25")
    assert np.isnan(row["estimate"]) and row["events"]["conference"] == 0
    other = next(r for r in result["rows"] if r["label"].strip() == "25\u201334")
    assert np.isfinite(other["estimate"])
    assert result["figure"].startswith("data:image/png;base64,")


@pytest.mark.parametrize("path", sorted((ROOT / "synthetic" / "costs").glob("*.toml")), ids=lambda p: p.name)
def test_shipped_costs_files_read_and_say_they_are_assumptions(path):
    from rjtrial.report.data import read_costs

    settings = read_costs(path)
    assert settings.cost_per_offence and settings.source.startswith("assumption")
    assert all(text.startswith("assumption") for text in settings.assumptions.values())


# --------------------------------------------- careless codes: refused, never read as True
@pytest.mark.parametrize("cell", ["maybe", "2", "yes"])
def test_a_bad_event_cell_in_the_followup_file_is_named(trial_folder, followup, tmp_path, cell):
    # sections.analysis_frame read the column with astype(bool): "maybe" and "2" were reoffences
    bad = followup.assign(event=followup["event"].astype(str))
    bad.loc[6, "event"] = cell
    path = tmp_path / "followup-bad.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(DataError) as excinfo:
        build_report(trial_folder / "trial.db", path)
    error = excinfo.value
    assert (error.table, error.row, error.column) == ("followup-bad.csv", 7, "event")
    assert repr(cell) in _error(excinfo)


def test_event_as_text_true_false_gives_the_same_report(trial_folder, followup, report):
    as_text = followup.assign(event=followup["event"].map({True: "True", False: "False"}))
    assert build_report(trial_folder / "trial.db", as_text).numbers["hazard_ratio"] == report.numbers["hazard_ratio"]


@pytest.mark.parametrize(
    "column, cell, message",
    [
        ("time_at_risk", "soon", "numeric"),
        ("reoffences", "-1", "negative"),
        ("exposure_days", "inf", "not finite"),
    ],
)
def test_a_bad_number_in_the_followup_is_named(trial_folder, followup, column, cell, message):
    bad = followup.astype({column: object})
    bad.loc[3, column] = cell if cell == "soon" else float(cell)
    with pytest.raises(DataError, match=message) as excinfo:
        build_report(trial_folder / "trial.db", bad)
    assert (excinfo.value.table, excinfo.value.row, excinfo.value.column) == ("followup", 4, column)


@pytest.mark.parametrize(
    "column, cell, message",
    [
        ("satisfied", "maybe", "0 or 1"),
        ("would_recommend", 2, "0 or 1"),
        ("ies_r_followup", "high", "numeric"),
        ("ies_r_baseline", 95, "0 to 88"),
    ],
)
def test_a_bad_victim_answer_is_named(trial_folder, followup, victims, column, cell, message):
    bad = victims.astype({column: object})
    bad.loc[8, column] = cell
    with pytest.raises(DataError, match=message) as excinfo:
        build_report(trial_folder / "trial.db", followup, victims=bad)
    assert (excinfo.value.table, excinfo.value.row, excinfo.value.column) == ("victims", 9, column)


def test_a_blank_victim_answer_leaves_that_victim_out_of_that_outcome(trial_folder, followup, victims):
    blank = victims.astype({"satisfied": object})
    blank.loc[8, "satisfied"] = None
    out = build_report(trial_folder / "trial.db", followup, victims=blank).sections["victims"]
    satisfied = next(item for item in out["binary"] if item["key"] == "satisfied")
    assert int(satisfied["proportions"]["n"].sum()) == len(victims) - 1


# ------------------------------------------------ a report a funder can read (issue: first hour)
ONE_FACTOR_PROTOCOL = """
[trial]
id = "one-factor"
name = "A two-site trial stratified by site only"
arms = ["control", "conference"]
ratio = [1, 1]
registration = "ISRCTN00000000"

[randomisation]
method = "stratified_blocks"
block_sizes = [2, 4]
capacity = 200

[strata]
site = ["leeds", "york"]

[[eligibility]]
id = "consent"
question = "Have victim and offender consented?"
eligible_if = "yes"
"""


@pytest.fixture(scope="module")
def one_factor_trial(tmp_path_factory):
    """A real-data-like trial (no simulator, no truth.json) stratified by one factor."""
    from rjtrial import Protocol, Registry
    from rjtrial.followup import build

    folder = tmp_path_factory.mktemp("one-factor")
    (folder / "protocol.toml").write_text(ONE_FACTOR_PROTOCOL)
    rng = np.random.default_rng(5)
    with Registry.create(
        folder / "trial.db", Protocol.from_toml(folder / "protocol.toml"), key_path=folder / "trial.key"
    ) as registry:
        for i in range(120):
            registry.enrol(
                f"R-{i:03d}",
                strata={"site": ["leeds", "york"][i % 2]},
                answers={"consent": "yes"},
                by="test",
                at=f"2022-{1 + i // 12:02d}-{1 + i % 12 * 2:02d}T10:00:00",
            )
        participants = registry.export(by="test")
    offences = pd.DataFrame(
        {
            "id": rng.choice(participants["id"], 140),
            "offence_date": pd.Timestamp("2022-03-01") + pd.to_timedelta(rng.integers(0, 900, 140), "D"),
        }
    )
    table = build(participants, offences, extraction_date="2025-06-30", conviction_lag_days=90)
    table.to_csv(folder / "followup.csv", index=False, date_format="%Y-%m-%d")
    return folder, table


def test_report_for_a_funder_on_a_real_data_like_trial(one_factor_trial):
    from rjtrial import outcome
    from rjtrial.survival import minimum_detectable_hazard_ratio

    folder, table = one_factor_trial
    report = build_report(folder / "trial.db", folder / "followup.csv")
    html = report.html
    # a first-page plain-language summary, with what the trial could detect
    assert 'id="summary"' in html and "In brief" in html
    events = int(table["event"].sum())
    share = int((table["arm"] == "conference").sum()) / len(table)
    assert report.numbers["mdhr_80"] == pytest.approx(minimum_detectable_hazard_ratio(events, allocation=share))
    assert f"With the {events} first reoffences observed" in html
    # the registration number on the title; no SYNTHETIC banner for real data
    assert 'registered as\n    <strong class="registration">ISRCTN00000000</strong>' in html
    assert "SYNTHETIC" not in html
    # the subgroup caption from the trial's own strata (one factor), not "Site and offence type"
    assert "Site is the registry&#39;s stratum" in html and "Site and offence type" not in html
    # missing data stated; no outcome definition without its file
    assert "Every one of the 120 randomised participants has a follow-up record." in html
    assert "No victim survey was given" in html
    assert "Outcome definition not recorded" in html
    # with the definition beside the table, the outcome box defines the outcome
    outcome.write_definition(table, folder / "followup.csv")
    html = build_report(folder / "trial.db", folder / "followup.csv").html
    assert "within 730 days of random assignment" in html and "90-day conviction lag" in html
    # every abbreviation spelled out, with a glossary
    for words in (
        "intention to treat (ITT)",
        "Complier average causal effect (CACE)",
        "Restricted mean survival time (RMST)",
        "confidence interval (CI)",
        'id="glossary"',
    ):
        assert words in html
        # spelled out before the abbreviation is first used alone
    for short, long in (
        ("RMST", "Restricted mean survival time (RMST)"),
        ("CACE", "Complier average causal effect (CACE)"),
    ):
        body = re.sub(r'src="data:[^"]*"', "", html[html.index("<body>") :])  # text, not the embedded figures
        assert body.index(long) <= body.index(short) + len(long)


def test_report_of_simulated_data_says_synthetic_on_every_page(one_factor_trial):
    folder, _ = one_factor_trial
    assert "SYNTHETIC DATA" in build_report(folder / "trial.db", folder / "followup.csv", synthetic=True).html
    (folder / "truth.json").write_text("{}")  # what rjtrial simulate and the demo write beside their tables
    try:
        html = build_report(folder / "trial.db", folder / "followup.csv").html
    finally:
        (folder / "truth.json").unlink()
    assert html.count('class="synthetic"') == 1 and "position: fixed" in html  # repeated on every printed page


def test_the_report_shows_relative_paths_only(one_factor_trial, monkeypatch):
    folder, _ = one_factor_trial
    monkeypatch.chdir(folder.parent)
    html = build_report(folder.resolve() / "trial.db", folder.resolve() / "followup.csv").html
    provenance = html[html.index('id="provenance"') :]
    assert str(folder.parent) not in provenance
    assert f"{folder.name}/followup.csv" in provenance
