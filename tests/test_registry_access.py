"""The access log for the data-protection officer (rjtrial/registry/access.py): every export, report,
backup, restore, unblinding, unsealing and erasure, as one CSV, and its entries covered by verify."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest
from registry_fixtures import ELIGIBLE, make_protocol, new_registry, when

from rjtrial.cli import main
from rjtrial.registry import Registry
from rjtrial.registry.access import access_log, record
from rjtrial.registry.backup import backup

NP = {"site": "north", "offence": "property"}


def test_every_access_to_participant_data_is_in_the_log(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=10), seed=2) as registry:
        for i in range(1, 4):
            registry.enrol(f"R-{i}", strata=NP, answers=ELIGIBLE, at=when(i), personal={"name": f"P{i}"})
        registry.export(by="analyst")
        registry.export(by="analyst", blinded=True)
        record(registry, "case file", by="manager", referrals=["R-2"], detail={"reason": "victim asked"})
        registry.freeze_sap(b"plan", by="statistician")
        registry.unblind(by="statistician", reason="final")
        from rjtrial.registry.retention import apply_retention

        apply_retention(registry, before="2025-03-04", by="data manager")
    backup(tmp_path / "trial.db", tmp_path / "b.rjbackup", by="operator")
    with Registry.open(tmp_path / "trial.db", key_path=tmp_path / "trial.key") as registry:
        registry.unseal(by="statistician")
        log = access_log(registry)
        assert registry.verify().ok
    assert list(log.columns) == ["audit_seq", "at", "who", "action", "what", "participants", "detail", "signed"]
    assert list(zip(log["who"], log["what"])) == [
        ("analyst", "export"),
        ("analyst", "blinded export"),
        ("manager", "case file"),
        ("statistician", "unblinding: arm codes revealed"),
        ("data manager", "retention: erasure of data before 2025-03-04"),
        ("operator", "backup"),
        ("statistician", "unseal: every allocation and the seed revealed"),
    ]
    assert log.loc[2, "participants"] == "R-2" and json.loads(log.loc[2, "detail"]) == {"reason": "victim asked"}
    assert log.loc[0, "participants"] == "all (3 rows)" and not log.loc[5, "signed"]


def test_the_report_command_logs_its_reader(tmp_path, capsys):
    from rjtrial.simulate import simulate_trial

    trial = simulate_trial(
        "synthetic/jrc-london-burglary.toml",
        rng=2,
        registry=tmp_path,
        truth=False,
        overrides={"referrals.randomised": 40},
    )
    trial.followup().to_csv(tmp_path / "f.csv", index=False)
    assert (
        main(
            [
                "report",
                "--db",
                str(tmp_path / "trial.db"),
                "--followup",
                str(tmp_path / "f.csv"),
                "-o",
                str(tmp_path / "r.html"),
                "--by",
                "funder-liaison",
            ]
        )
        == 0
    )
    assert main(["access-log", "--db", str(tmp_path / "trial.db"), "-o", str(tmp_path / "access.csv")]) == 0
    log = pd.read_csv(tmp_path / "access.csv")
    assert (tmp_path / "access.csv").stat().st_mode & 0o077 == 0
    last = log.iloc[-1]
    assert (last["who"], last["what"], last["participants"]) == ("funder-liaison", "report", "all")


def test_a_deleted_access_entry_fails_verify(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=10), seed=2) as registry:
        registry.enrol("R-1", strata=NP, answers=ELIGIBLE, at=when(1))
        record(registry, "case file", by="manager", referrals=["R-1"])
        registry.enrol("R-2", strata=NP, answers=ELIGIBLE, at=when(2))
    with sqlite3.connect(tmp_path / "trial.db") as conn:
        conn.execute("DELETE FROM rj_audit WHERE action = 'data_access'")
    conn.close()
    with Registry.open(tmp_path / "trial.db") as registry:
        result = registry.verify()
    assert not result.ok and "expected entry 3 here" in result.problems[0]


@pytest.mark.parametrize(
    "what, referrals, message",
    [("", None, "what must name the access"), ("x", ["R"] * 10_001, "at most 10000 referrals")],
)
def test_an_access_record_is_checked(tmp_path, what, referrals, message):
    with new_registry(tmp_path, make_protocol(capacity=10), seed=2) as registry:
        with pytest.raises(ValueError, match=message):
            record(registry, what, by="x", referrals=referrals)
