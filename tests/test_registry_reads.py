"""The registry's read API (rjtrial/registry/reads.py): referrals, find, audit pages.

Each answer is checked against the store's own tables, read with sqlite3, never against
the code under test. The last tests hold the web layer to this one door: no module of
``rjtrial.web`` queries a table of the registry, and strata JSON is decoded in one place.
"""

from __future__ import annotations

import ast
import json
import sqlite3
from pathlib import Path

import pytest
from registry_fixtures import enrol_all, new_registry, referral_stream, rows, when

from rjtrial.registry.reads import decode_list, decode_map

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """30 referrals over two sites and two offences, about a third screened out."""
    reg = new_registry(tmp_path_factory.mktemp("reads"))
    enrol_all(reg, referral_stream(30, seed=3, p_ineligible=0.3))
    first = stored(reg, "SELECT referral_id FROM rj_referrals WHERE status = 'randomised' LIMIT 1")[0][0]
    reg.record_event(first, "note", at=when(40))
    yield reg
    reg.close()


def stored(reg, sql, params=()):
    return rows(Path(reg.db), sql, params)


def test_referrals_are_every_stored_row_newest_first(registry):
    page = registry.referrals()
    table = stored(registry, "SELECT * FROM rj_referrals ORDER BY audit_seq DESC")
    assert page.total == len(table) == 30
    assert [r.referral_id for r in page.referrals] == [row["referral_id"] for row in table]
    for got, row in zip(page.referrals, table):
        assert (got.status, got.arm, got.sequence_number, got.receipt, got.at, got.by, got.audit_seq) == (
            row["status"],
            row["arm"],
            row["sequence_number"],
            row["receipt"],
            row["at"],
            row["by"],
            row["audit_seq"],
        )
        assert dict(got.strata) == json.loads(row["strata"]) and list(got.strata) == ["site", "offence"]
        assert dict(got.answers) == json.loads(row["answers"])
        assert list(got.reasons) == json.loads(row["reasons"])
        assert got.randomised_on == (row["at"] if row["status"] == "randomised" else None)


def test_site_numbers_count_randomisations_at_each_site_in_sequence_order(registry):
    table = stored(
        registry,
        "SELECT referral_id, strata FROM rj_referrals WHERE sequence_number IS NOT NULL ORDER BY sequence_number",
    )
    expected, counts = {}, {}
    for row in table:
        site = json.loads(row["strata"])["site"]
        counts[site] = counts.get(site, 0) + 1
        expected[row["referral_id"]] = counts[site]
    got = {r.referral_id: r.site_sequence_number for r in registry.referrals().referrals}
    assert {k: v for k, v in got.items() if v is not None} == expected == registry.site_sequence_numbers()
    assert all(got[r.referral_id] is None for r in registry.referrals(status="ineligible").referrals)
    # without a site stratum, the trial-wide numbers
    wide = {
        r.referral_id: r.site_sequence_number
        for r in registry.referrals(site_stratum="region").referrals
        if r.status == "randomised"
    }
    assert wide == {
        r["referral_id"]: r["sequence_number"]
        for r in stored(
            registry, "SELECT referral_id, sequence_number FROM rj_referrals WHERE sequence_number IS NOT NULL"
        )
    }


@pytest.mark.parametrize("status", ["randomised", "ineligible"])
@pytest.mark.parametrize("sites", [None, ("north",), ("south",), ("north", "south"), ()])
def test_filters_and_pages(registry, status, sites):
    table = stored(
        registry, "SELECT referral_id, strata FROM rj_referrals WHERE status = ? ORDER BY audit_seq DESC", (status,)
    )
    wanted = [r["referral_id"] for r in table if sites is None or json.loads(r["strata"])["site"] in sites]
    page = registry.referrals(status=status, sites=sites)
    assert [r.referral_id for r in page.referrals] == wanted and page.total == len(wanted)
    second = registry.referrals(status=status, sites=sites, limit=3, offset=3)
    assert [r.referral_id for r in second.referrals] == wanted[3:6] and second.total == len(wanted)
    oldest = registry.referrals(status=status, sites=sites, newest_first=False)
    assert [r.referral_id for r in oldest.referrals] == wanted[::-1]


def test_a_coordinator_dict_has_no_trial_wide_number(registry):
    referral = registry.referrals(status="randomised").referrals[0]
    shown = referral.coordinator_dict()
    assert "sequence_number" not in shown and shown["site_sequence_number"] == referral.site_sequence_number
    assert referral.to_dict()["sequence_number"] == referral.sequence_number
    json.dumps(shown), json.dumps(referral.to_dict())


@pytest.mark.parametrize("typed", ["R-0003", "r-0003", " R-0003 ", "Ｒ-0003"])
def test_find_takes_the_id_as_normalised(registry, typed):
    found = registry.find(typed)
    row = stored(registry, "SELECT * FROM rj_referrals WHERE referral_id = 'R-0003'")[0]
    assert found.referral_id == "R-0003" and found.receipt == row["receipt"] and found.status == row["status"]
    assert found.site_sequence_number == registry.site_sequence_numbers().get("R-0003")


@pytest.mark.parametrize("typed", ["R-9999", "", "x" * 5000, None, 42, "R-0003\x00"])
def test_find_of_nothing_is_none(registry, typed):
    assert registry.find(typed) is None


def test_audit_page_is_the_log_newest_first(registry):
    log = stored(registry, "SELECT * FROM rj_audit ORDER BY seq DESC")
    page = registry.audit_page(limit=5, offset=2)
    assert page.total == len(log)
    assert [e.seq for e in page.entries] == [r["seq"] for r in log[2:7]]
    for entry, row in zip(page.entries, log[2:7]):
        assert (entry.at, entry.actor, entry.action, entry.hash, entry.prev_hash) == (
            row["at"],
            row["actor"],
            row["action"],
            row["hash"],
            row["prev_hash"],
        )
        assert entry.payload == json.loads(row["payload"]) and entry.signed == bool(row["signature"])
    assert [e.seq for e in registry.audit_page(limit=3, newest_first=False).entries] == [1, 2, 3]


def test_a_damaged_payload_is_shown_as_stored(tmp_path):
    reg = new_registry(tmp_path)
    enrol_all(reg, referral_stream(2, seed=1))
    with sqlite3.connect(reg.db) as conn:
        conn.execute("UPDATE rj_audit SET payload = 'not json' WHERE seq = 2")
        conn.execute("UPDATE rj_referrals SET strata = '[1, 2]', reasons = '{' WHERE referral_id = 'R-0001'")
    assert [e.payload for e in reg.audit_page(newest_first=False).entries][1] == "not json"
    damaged = reg.find("R-0001")
    assert dict(damaged.strata) == {} and damaged.reasons == ()
    reg.close()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"status": "refused"}, "status must be one of randomised, ineligible"),
        ({"limit": -1}, "limit must be"),
        ({"offset": -5}, "offset must be"),
        ({"limit": True}, "limit must be"),
    ],
)
def test_bad_arguments_name_what_is_allowed(registry, kwargs, message):
    with pytest.raises(ValueError, match=message):
        registry.referrals(**kwargs)


def test_reading_writes_nothing(registry):
    before = stored(registry, "SELECT count(*) AS n FROM rj_audit")[0]["n"]
    registry.referrals(), registry.find("R-0001"), registry.audit_page(), registry.site_sequence_numbers()
    assert stored(registry, "SELECT count(*) AS n FROM rj_audit")[0]["n"] == before


@pytest.mark.parametrize("text, expected", [('{"b": "1", "a": "2"}', ["a", "b"]), ("[1]", []), ("{", []), (None, [])])
def test_decode_map_orders_keys_and_survives_damage(text, expected):
    assert list(decode_map(text, ["a"])) == expected


def test_decode_list():
    assert decode_list('["a=b"]') == ["a=b"] and decode_list('{"a": 1}') == [] and decode_list("x") == []


# ------------------------------------------------------------ the one door
REGISTRY_TABLES = {"trial", "slots", "referrals", "events", "audit", "head", "metadata"}
WEB = sorted((ROOT / "rjtrial" / "web").glob("*.py"))


@pytest.mark.parametrize("path", WEB, ids=[p.name for p in WEB])
def test_the_web_never_queries_the_registrys_tables(path):
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "rjtrial.registry":
            assert "store" not in [a.name for a in node.names], f"{path.name}:{node.lineno}: imports the store"
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "store":
            assert node.attr not in REGISTRY_TABLES, f"{path.name}:{node.lineno}: store.{node.attr}"
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            assert not any(f"rj_{t}" in node.value for t in ("referrals", "audit", "events", "slots", "head")), (
                f"{path.name}:{node.lineno}: SQL on a registry table"
            )


def _decodes_strata(path: Path) -> list[int]:
    """Lines where a module calls json.loads on something named strata."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    hits = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "loads"
            and "strata" in ast.unparse(node.args[0] if node.args else node)
        ):
            hits.append(node.lineno)
    return hits


@pytest.mark.parametrize("path", sorted((ROOT / "rjtrial").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_strata_are_decoded_in_one_place(path):
    if path.name == "reads.py" and path.parent.name == "registry":
        return
    assert _decodes_strata(path) == [], f"{path.relative_to(ROOT)} decodes strata JSON itself (use registry.reads)"
