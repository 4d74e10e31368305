"""Blinded analysis (rjtrial/registry/blinding.py): blinded exports, the frozen plan, an audited
unblinding that needs the plan, verify's checks, and the report on blinded data."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from registry_fixtures import ELIGIBLE, copy_db, dump_tables, make_protocol, new_registry, rows, when

from rjtrial._canonical import canonical_json
from rjtrial.cli import main
from rjtrial.errors import DataError, KeyFileError, RegistryError
from rjtrial.registry import Registry
from rjtrial.registry.audit import GENESIS, entry_hash
from rjtrial.registry.blinding import codes_for

NP = {"site": "north", "offence": "property"}
SV = {"site": "south", "offence": "violence"}


@pytest.fixture
def reg(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=20), seed=12) as registry:
        for i in range(1, 9):
            registry.enrol(f"R-{i:03d}", strata=NP if i % 2 else SV, answers=ELIGIBLE, at=when(i))
        registry.record_event("R-001", "treatment_received", at=when(10))
        yield registry


def test_a_blinded_export_codes_the_arms_and_leaves_out_what_shows_them(reg):
    plain = reg.export()
    blinded = reg.export(blinded=True)
    assert list(blinded["id"]) == list(plain["id"])
    assert set(blinded["arm"]) == {"A", "B"} and blinded.attrs["blinded"] and blinded.attrs["codes"] == ["A", "B"]
    assert "treatment_received" not in blinded.columns and "receipt" not in blinded.columns
    # one code per arm, the same in every blinded export
    pairs = set(zip(plain["arm"], blinded["arm"]))
    assert len(pairs) == 2 and len({a for a, _ in pairs}) == 2
    assert list(reg.export(blinded=True)["arm"]) == list(blinded["arm"])
    assert reg.verify().ok


def test_the_mapping_is_sealed_not_stored(reg):
    reg.export(blinded=True)
    payload = next(
        json.loads(r["payload"]) for r in rows(Path(reg.db), "SELECT payload FROM rj_audit WHERE action = 'blinding'")
    )
    assert set(payload) == {"codes", "sealed", "commitment"}
    text = json.dumps(payload)
    assert "control" not in text and "conference" not in text


def test_a_blinded_export_needs_the_key(reg, tmp_path):
    with Registry.open(reg.db) as keyless:
        with pytest.raises(KeyFileError, match="blinded export"):
            keyless.export(blinded=True)


@pytest.mark.parametrize(
    "arms, codes",
    [
        (["control", "conference"], ("A", "B")),
        (["A", "treated"], ("group-A", "group-B")),
        (["x", "y", "z"], ("A", "B", "C")),
    ],
)
def test_codes_never_collide_with_an_arm_name(arms, codes):
    assert codes_for(arms) == codes


def test_unblinding_is_refused_until_a_plan_is_frozen_then_reveals_the_mapping(reg, tmp_path):
    blinded = reg.export(blinded=True)
    before = dump_tables(Path(reg.db))
    with pytest.raises(RegistryError, match="no statistical analysis plan has been frozen"):
        reg.unblind(by="statistician", reason="analysis done")
    assert dump_tables(Path(reg.db)) == before
    plan = tmp_path / "sap.md"
    plan.write_text("Primary: Cox model of time to first reoffence by arm.\n")
    frozen = reg.freeze_sap(plan, by="statistician")
    assert frozen.version == 1 and frozen.signed and len(frozen.sha256) == 64
    result = reg.unblind(by="statistician", reason="final analysis")
    plain = reg.export()
    assert dict(zip(blinded["arm"], plain["arm"])) == {code: arm for arm, code in result.mapping.items()}
    assert result.sap_sha256 == frozen.sha256
    assert reg.verify().ok


@pytest.mark.parametrize(
    "step, message",
    [
        ("no export", "no blinded export has been made"),
        ("no reason", "needs a reason"),
    ],
)
def test_unblinding_needs_a_blinding_and_a_reason(reg, tmp_path, step, message):
    if step != "no export":
        reg.export(blinded=True)
    reg.freeze_sap(b"plan", by="s", name="plan.txt")
    with pytest.raises(RegistryError, match=message):
        reg.unblind(by="s", reason="" if step == "no reason" else "r")


def test_a_plan_frozen_without_the_key_is_logged_unsigned_and_verifies(reg):
    with Registry.open(reg.db) as keyless:
        frozen = keyless.freeze_sap(b"the plan", by="analyst", name="sap-v1.pdf")
        assert not frozen.signed
        assert keyless.verify().ok


# ------------------------------------------------------------------ tampering
@pytest.fixture
def unblinded(tmp_path):
    folder = tmp_path / "pristine"
    folder.mkdir()
    with new_registry(folder, make_protocol(capacity=10), seed=5) as registry:
        for i in range(1, 5):
            registry.enrol(f"R-{i:03d}", strata=NP, answers=ELIGIBLE, at=when(i))
        registry.export(blinded=True, by="analyst")
        registry.freeze_sap(b"plan", by="statistician", name="sap.pdf")
        registry.unblind(by="statistician", reason="final")
        assert registry.verify().ok
    return folder


def _rehash(db: Path, edit, drop=()) -> None:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    with conn:
        entries = [dict(r) for r in conn.execute("SELECT * FROM rj_audit ORDER BY seq") if r["action"] not in drop]
        conn.execute("DELETE FROM rj_audit")
        prev = GENESIS
        for seq, e in enumerate(entries, 1):
            payload = json.loads(e["payload"])
            edit(e["action"], payload)
            e["payload"] = canonical_json(payload)
            digest = entry_hash(prev, seq, e["at"], e["actor"], e["action"], e["payload"])
            conn.execute(
                "INSERT INTO rj_audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, e["at"], e["actor"], e["action"], e["payload"], prev, digest, e["mac"], e["signature"]),
            )
            prev = digest
        conn.execute("UPDATE rj_head SET audit_seq = ?, audit_hash = ?", (len(entries), prev))
    conn.close()


def _swap_mapping(action, payload):
    if action == "unblind":
        arms = list(payload["mapping"])
        payload["mapping"] = {arms[0]: payload["mapping"][arms[1]], arms[1]: payload["mapping"][arms[0]]}


def _other_plan(action, payload):
    if action == "unblind":
        payload["sap"]["sha256"] = "0" * 64


@pytest.mark.parametrize(
    "edit, drop, problem",
    [
        (_swap_mapping, (), "its mapping and nonce do not open the blinding's commitment"),
        (_other_plan, (), "names no analysis plan frozen before it"),
        (lambda action, payload: None, ("sap_frozen",), "names no analysis plan frozen before it"),
        (lambda action, payload: None, ("blinding",), "unblinds with no blinding before it"),
    ],
)
def test_a_rewritten_unblinding_fails_keyless_verify(unblinded, tmp_path, edit, drop, problem):
    db = copy_db(unblinded / "trial.db", tmp_path / "t.db")
    _rehash(db, edit, drop)
    with Registry.open(db) as registry:
        result = registry.verify()
    assert not result.ok
    assert any(problem in p for p in result.problems), result.problems


def test_a_mapping_sealed_under_another_key_fails_keyed_verify(unblinded, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    with new_registry(other, make_protocol(capacity=10), seed=5) as registry:
        registry.export(blinded=True)
    foreign = json.loads(rows(other / "trial.db", "SELECT payload FROM rj_audit WHERE action = 'blinding'")[0][0])
    db = copy_db(unblinded / "trial.db", tmp_path / "t.db")
    shutil.copy2(unblinded / "trial.key", tmp_path / "t.key")

    def replace(action, payload):
        if action == "blinding":
            payload["sealed"] = foreign["sealed"]

    _rehash(db, replace)
    with Registry.open(db, key_path=tmp_path / "t.key") as registry:
        result = registry.verify()
    assert any("the key does not open the sealed blinding" in p for p in result.problems), result.problems


# ------------------------------------------------------------------ the command line
def test_cli_blinded_export_plan_freeze_and_unblind(reg, tmp_path, capsys):
    db, key = reg.db, str(tmp_path / "trial.key")
    assert main(["export", "--db", db, "--blinded", "-o", str(tmp_path / "b.csv")]) == 2
    assert "--blinded needs the trial's key file" in capsys.readouterr().err
    assert main(["export", "--db", db, "--key", key, "--blinded", "-o", str(tmp_path / "b.csv")]) == 0
    assert "blinded: arms coded A, B" in capsys.readouterr().err
    table = pd.read_csv(tmp_path / "b.csv")
    assert set(table["arm"]) == {"A", "B"} and (tmp_path / "b.csv").stat().st_mode & 0o077 == 0
    assert main(["unblind", "--db", db, "--key", key, "--reason", "done"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no statistical analysis plan has been frozen" in err
    (tmp_path / "sap.md").write_text("plan")
    assert main(["sap", "freeze", str(tmp_path / "sap.md"), "--db", db, "--by", "analyst"]) == 0
    assert "unsigned" in capsys.readouterr().out
    assert main(["unblind", "--db", db, "--key", key, "--reason", "final analysis", "--json"]) == 0
    mapping = json.loads(capsys.readouterr().out)["mapping"]
    assert sorted(mapping) == ["conference", "control"] and sorted(mapping.values()) == ["A", "B"]


# ------------------------------------------------------------------ the report on blinded data
@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    from rjtrial.simulate import simulate_trial

    folder = tmp_path_factory.mktemp("blinded-report")
    trial = simulate_trial(
        "synthetic/jrc-london-burglary.toml",
        rng=7,
        registry=folder,
        truth=False,
        overrides={"referrals.randomised": 80},
    )
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        codes = registry.export(blinded=True, by="analyst").set_index("id")["arm"]
    followup = trial.followup()
    blinded = followup.assign(arm=followup["id"].map(codes))
    return folder, followup, blinded


@pytest.fixture
def simulated_copy(simulated, tmp_path):
    folder, followup, blinded = simulated
    copy_db(folder / "trial.db", tmp_path / "trial.db")
    shutil.copy2(folder / "trial.key", tmp_path / "trial.key")
    return tmp_path, followup, blinded


def _sections(html):
    return re.findall(r"<section id=\"([a-z]+)\">(.*?)</section>", html, flags=re.S)


@pytest.mark.parametrize("with_key", [False, True])
def test_the_report_on_blinded_data_says_so_on_every_section_and_never_names_an_arm_in_a_result(
    simulated_copy, with_key
):
    from rjtrial.report import build_report

    folder, _, blinded = simulated_copy
    report = build_report(folder / "trial.db", blinded, key=folder / "trial.key" if with_key else None)
    html = report.html
    assert "<title>BLINDED" in html and 'id="blinded-banner"' in html
    assert "@media print { .blind-banner { position: fixed" in html  # repeated at the top of every printed page
    sections = _sections(html)
    assert len(sections) == 9  # eight numbered sections and the glossary
    assert all("blinded: groups A, B" in body for _, body in sections)
    results = "".join(body for name, body in sections if name != "design")
    for arm in ("control", "conference"):  # never a column, row or label of a result
        assert not re.search(rf">\s*{arm}\s*<|{arm} vs|vs {arm}|favours {arm}", results), arm
    assert "withheld while the analysis is blinded" in html
    assert report.sections["primary"]["control"] == "A"


def test_a_blinded_follow_up_row_with_the_wrong_code_is_named_with_the_key(simulated_copy):
    from rjtrial.report import build_report

    folder, _, blinded = simulated_copy
    wrong = blinded.copy()
    wrong.loc[3, "arm"] = "B" if wrong.loc[3, "arm"] == "A" else "A"
    with pytest.raises(DataError, match=r"row 4, column 'arm': arm '[AB]', but the registry allocated") as caught:
        build_report(folder / "trial.db", wrong, key=folder / "trial.key")
    assert "control" not in str(caught.value) and "conference" not in str(caught.value)


def test_a_report_after_unblinding_shows_the_plan_was_frozen_first(simulated_copy):
    from rjtrial.report import build_report

    folder, followup, _ = simulated_copy
    with Registry.open(folder / "trial.db", key_path=folder / "trial.key") as registry:
        plan = registry.freeze_sap(b"the plan", by="statistician", name="sap.pdf")
        registry.unblind(by="statistician", reason="final analysis")
    html = build_report(folder / "trial.db", followup).html
    assert "BLINDED" not in html
    record = re.search(r'<dd id="blinding-record">(.*?)</dd>', html, flags=re.S).group(1)
    assert plan.sha256 in record and "Unblinded" in record and "final analysis" in record
    assert record.index("frozen") < record.index("Unblinded")


def test_codes_in_a_follow_up_of_a_registry_never_blinded_are_an_error(tmp_path):
    from rjtrial.report import build_report
    from rjtrial.simulate import simulate_trial

    trial = simulate_trial(
        "synthetic/jrc-london-burglary.toml",
        rng=3,
        registry=tmp_path,
        truth=False,
        overrides={"referrals.randomised": 40},
    )
    followup = trial.followup()
    coded = followup.assign(arm=followup["arm"].map({"control": "A", "conference": "B"}))
    with pytest.raises(DataError, match="this registry has made no blinded export"):
        build_report(tmp_path / "trial.db", coded)
