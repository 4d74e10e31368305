"""rjtrial.scenarios and ``rjtrial scenarios``: the shipped files are found, listed and copied."""

from __future__ import annotations

import json

import pytest

from rjtrial import scenarios
from rjtrial.cli import main
from rjtrial.errors import RjtrialError


def test_every_scenario_protocol_and_cost_file_is_listed():
    names = {item["name"]: item["kind"] for item in scenarios.catalogue()}
    assert names["jrc-multisite.toml"] == "scenario"
    assert names["protocols/jrc-london-burglary.toml"] == "protocol"
    assert names["costs/jrc-multisite.toml"] == "costs"
    assert all(scenarios.path(name).is_file() for name in names)


def test_a_file_that_is_not_shipped_is_one_clear_error():
    with pytest.raises(RjtrialError, match="ships no file 'nope.toml'"):
        scenarios.path("nope.toml")


def test_cli_lists_and_copies(tmp_path, capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert "jrc-multisite.toml" in out and "protocols (rjtrial init)" in out
    assert main(["scenarios", "--json"]) == 0
    assert any(f["name"] == "jrc-multisite.toml" for f in json.loads(capsys.readouterr().out)["files"])
    assert main(["scenarios", "--copy", str(tmp_path / "mine")]) == 0
    assert (tmp_path / "mine" / "protocols" / "jrc-london-burglary.toml").is_file()
    assert main(["scenarios", "--copy", str(tmp_path / "mine")]) == 2  # never over an existing folder


def test_the_demo_finds_its_scenario_through_the_catalogue():
    from rjtrial.demo import DEFAULT_SCENARIO, synthetic_path

    assert synthetic_path(DEFAULT_SCENARIO) == scenarios.path(DEFAULT_SCENARIO)
