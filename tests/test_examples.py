"""The minimal examples in synthetic/examples/ load with the library's own loaders, and the
"Your data" page of the documentation shows each of them and names every protocol key."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from rjtrial import Protocol, followup
from rjtrial.meta import MEASURE_COLUMNS, effects_from_table
from rjtrial.report.data import check_victims, read_costs, read_table
from rjtrial.simulate import load_scenario

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "synthetic" / "examples"
YOUR_DATA = ROOT / "docs" / "your-data.rst"


def _csv(name: str) -> pd.DataFrame:
    return pd.read_csv(EXAMPLES / name, dtype={"id": str})


def test_protocol():
    protocol = Protocol.from_toml(EXAMPLES / "protocol.toml")
    assert protocol.arms[0] == "control"
    assert protocol.sequence_keys() == ["site=north", "site=south"]


def test_followup_from_participants_offences_and_custody():
    table = followup.build(
        _csv("participants.csv"), _csv("offences.csv"), custody=_csv("custody.csv"), extraction_date="2026-06-30"
    )
    assert len(table) == 6
    assert table["event"].sum() == 3  # P-01, P-02 and P-06 reoffended within two years
    assert table.set_index("id").loc["P-02", "days_in_custody"] == 61  # 15 August to 14 October inclusive
    assert table.set_index("id").loc["P-01", "prior_offences"] == 1


def test_victims():
    participants = _csv("participants.csv")
    victims = check_victims(
        read_table(EXAMPLES / "victims.csv", table="victims"),
        participants,
        Protocol.from_toml(EXAMPLES / "protocol.toml").id,
    )
    assert len(victims) == 5
    assert victims["would_recommend"].isna().sum() == 1  # a blank answer: not asked


def test_costs():
    costs = read_costs(EXAMPLES / "costs.toml")
    assert costs.cost_per_offence == {"reoffences": 5000.0}
    assert costs.per_conference_held == 700.0


@pytest.mark.parametrize(
    "name, measure", [("studies.csv", "log_risk_ratio"), ("studies-estimates.csv", "log_hazard_ratio")]
)
def test_meta_analysis_studies(name, measure):
    table = pd.read_csv(EXAMPLES / name)
    table.index = pd.RangeIndex(1, len(table) + 1)
    effects = effects_from_table(table, measure=measure, source=name)
    assert list(effects.index) == ["Trial A", "Trial B", "Trial C", "Trial D"]
    assert (effects["variance"] > 0).all()


def test_scenario_amends_a_shipped_one():
    scenario = load_scenario(EXAMPLES / "scenario.toml")
    base = load_scenario(ROOT / "synthetic" / "jrc-london-burglary.toml")
    assert scenario.referrals.randomised == 400 and scenario.reoffending.hazard_ratio_treated == 0.7
    assert scenario.treatment == base.treatment


@pytest.mark.parametrize("path", sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".csv", ".toml")))
def test_your_data_page_shows_each_example(path):
    assert f".. literalinclude:: ../synthetic/examples/{path}" in YOUR_DATA.read_text(encoding="utf-8")


def test_your_data_page_names_every_protocol_key_and_meta_column():
    from rjtrial import protocol

    text = YOUR_DATA.read_text(encoding="utf-8")
    for section in protocol._TOP_KEYS:
        assert f"``[{section}]``" in text or f"``[[{section}]]``" in text, section
    keys = protocol._TRIAL_KEYS | protocol._QUESTION_KEYS | protocol._LABEL_KEYS | {"method", "capacity"}
    for method_keys in protocol._METHOD_KEYS.values():
        keys |= method_keys
    for key in sorted(keys | set(protocol.METHODS)):
        assert f"``{key}``" in text, key
    for columns in MEASURE_COLUMNS.values():
        for column in columns:
            assert f"``{column}``" in text, column
