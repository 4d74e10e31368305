"""The security log of failed and refused log-ins: counted, bounded, never the text typed.

Checked against the table itself (read with sqlite3) and the database file's bytes.
"""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy import create_engine

from rjtrial.web.securitylog import KINDS, OVERFLOW, SecurityLog

PASSWORD_IN_NAME_BOX = "Tr0ub4dor&3-correct-horse"


@pytest.fixture
def db(tmp_path):
    return tmp_path / "log.db"


@pytest.fixture
def engine(db):
    """The tables the log is kept in (a database of its own here)."""
    from rjtrial.registry.accounts import ServiceTables

    tables = ServiceTables.open(db)
    yield tables
    tables.close()


def table(db):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM rj_web_security_log ORDER BY last_at")]


def file_bytes(db) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))


def test_a_password_typed_as_a_name_is_never_stored_only_a_keyed_digest(db, engine):
    log = SecurityLog(engine, b"k" * 32)
    log.record("failed", PASSWORD_IN_NAME_BOX, "127.0.0.1", known=False)
    log.flush()
    (row,) = table(db)
    assert row["name"].startswith("unknown-") and len(row["name"]) == len("unknown-") + 12
    assert PASSWORD_IN_NAME_BOX.encode() not in file_bytes(db)
    # keyed: another secret gives another digest, so a digest cannot be checked against guesses
    assert SecurityLog(engine, b"j" * 32).display_name(PASSWORD_IN_NAME_BOX, known=False) != row["name"]


def test_a_known_users_name_is_kept_as_it_is(db, engine):
    log = SecurityLog(engine, b"k" * 32)
    log.record("failed", "carol", "10.0.0.1", known=True)
    log.flush()
    assert [(r["kind"], r["name"], r["address"], r["count"]) for r in table(db)] == [("failed", "carol", "10.0.0.1", 1)]


def test_events_are_aggregated_per_kind_name_address_and_hour(db, engine):
    log = SecurityLog(engine, b"k" * 32, flush_interval=3600)
    for _ in range(500):
        log.record("locked", "carol", "10.0.0.1", known=True)
    for _ in range(7):
        log.record("failed", "carol", "10.0.0.2", known=True)
    assert table(db) == []  # buffered: nothing written per request
    log.flush()
    counts = {(r["kind"], r["address"]): r["count"] for r in table(db)}
    assert counts == {("locked", "10.0.0.1"): 500, ("failed", "10.0.0.2"): 7}
    log.record("locked", "carol", "10.0.0.1", known=True)
    log.flush()
    assert {(r["kind"], r["address"]): r["count"] for r in table(db)}[("locked", "10.0.0.1")] == 501


def test_the_buffer_is_written_within_the_flush_interval(db, engine):
    log = SecurityLog(engine, b"k" * 32, flush_interval=0.2)
    log.record("failed", "a", "10.0.0.1", known=True)
    time.sleep(0.25)
    log.record("failed", "b", "10.0.0.1", known=True)  # the interval has passed: this one flushes
    assert {r["name"] for r in table(db)} == {"a", "b"}


def test_the_table_never_holds_more_than_max_rows_and_keeps_the_totals(db, engine):
    log = SecurityLog(engine, b"k" * 32, max_rows=20, flush_interval=0)
    for i in range(300):
        log.record("failed", f"guess-{i}", f"10.0.{i % 7}.1", known=False)
    log.flush()
    rows = table(db)
    assert len(rows) <= 20
    assert sum(r["count"] for r in rows) == 300
    others = [r for r in rows if r["name"] == OVERFLOW]
    assert len(others) == 1 and others[0]["kind"] == "failed"
    assert log.count_rows() == len(rows)


def test_old_rows_are_deleted_after_the_retention(db, engine, monkeypatch):
    log = SecurityLog(engine, b"k" * 32, retention_hours=2)
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() - 5 * 3600)
    log.record("failed", "old", "10.0.0.1", known=True)
    log.flush()
    monkeypatch.setattr(time, "time", real)
    log.record("failed", "new", "10.0.0.1", known=True)
    log.flush()
    assert [r["name"] for r in table(db)] == ["new"]


def test_totals_per_name_and_per_address(db, engine):
    log = SecurityLog(engine, b"k" * 32)
    for name, address, n in (("carol", "10.0.0.1", 3), ("carol", "10.0.0.2", 2), ("nina", "10.0.0.2", 4)):
        for _ in range(n):
            log.record("failed", name, address, known=True)
    totals = log.totals(hours=1)
    assert totals["name"] == [("carol", 5), ("nina", 4)]
    assert totals["address"] == [("10.0.0.2", 6), ("10.0.0.1", 3)]


@pytest.mark.parametrize("kind", ["login_failed", "", "FAILED"])
def test_an_unknown_kind_is_refused(engine, kind):
    with pytest.raises(ValueError, match="kind must be one of"):
        SecurityLog(engine, None).record(kind, "x", "y", known=False)


def test_kinds_are_those_documented():
    assert KINDS == ("failed", "locked", "lockout", "token_refused")


@pytest.mark.postgres
def test_the_log_on_postgres():
    from registry_fixtures import fresh_postgres_database, postgres_url_or_skip

    with fresh_postgres_database(postgres_url_or_skip()) as url:
        from rjtrial.registry.accounts import ServiceTables

        tables = ServiceTables(create_engine(url))
        try:
            first, second = SecurityLog(tables, b"k" * 32), SecurityLog(tables, b"k" * 32)  # two server processes
            for log in (first, second, first):
                log.record("failed", PASSWORD_IN_NAME_BOX, "10.0.0.1", known=False)
                log.flush()
            rows = first.rows()
        finally:
            tables.close()
    assert len(rows) == 1 and rows[0]["count"] == 3 and PASSWORD_IN_NAME_BOX not in rows[0]["name"]
