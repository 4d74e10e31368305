"""Accounts of the randomisation service inside the verified record (rjtrial.registry.accounts).

Every account and token row is bound to the signed audit chain as enrolments are:
each test edits the store as an attacker with write access to the database (but not
the key) would, and checks that ``verify`` — without the key and with it — fails,
naming the table and the account.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
from argon2 import PasswordHasher
from registry_fixtures import make_protocol

from rjtrial.errors import KeyFileError
from rjtrial.registry import Registry, audit, store
from rjtrial.web.accounts import Accounts

PASSWORD = "correct horse battery staple"
ATTACKER_PASSWORD = "the attacker's own password"
ATTACKER_HASH = PasswordHasher().hash(ATTACKER_PASSWORD)
ATTACKER_TOKEN = "rjt_" + "A" * 43
ATTACKER_TOKEN_HASH = hashlib.sha256(ATTACKER_TOKEN.encode()).hexdigest()


def populated(folder):
    """A trial with a coordinator, a manager, an auditor (token revoked) and a disabled user."""
    db, key = folder / "t.db", folder / "t.key"
    Registry.create(db, make_protocol(), key_path=key, seed=3).close()
    with Registry.open(db, key_path=key) as registry:
        accounts = Accounts(registry)
        accounts.add("cora", role="coordinator", sites=["north"], password=PASSWORD)
        accounts.add("mona", role="manager", password=PASSWORD)
        accounts.add("otto", role="auditor", password=None)
        accounts.add("dora", role="coordinator", sites=["south"], password=PASSWORD)
        for name in ("cora", "mona", "otto", "dora"):
            accounts.issue_token(name)
        accounts.revoke_token("otto", accounts.tokens("otto")[0]["id"])
        accounts.set_password("mona", "mona's second password")
        accounts.disable("dora")
    return db, key


def edit(db, sql, *params):
    with sqlite3.connect(db) as conn:
        conn.execute(sql, params)


def verify(db, key=None):
    with Registry.open(db, key_path=key) as registry:
        return registry.verify()


@pytest.fixture
def trial(tmp_path):
    return populated(tmp_path)


def test_every_account_operation_leaves_the_store_verifiable(trial):
    db, key = trial
    assert verify(db).ok, verify(db).problems
    keyed = verify(db, key)
    assert keyed.ok and keyed.key_checked, keyed.problems


ATTACKS = {
    "manager inserted": (None, (ATTACKER_HASH,), "eve"),  # SQL built from the table's columns
    "coordinator promoted": ("UPDATE rj_web_users SET role = 'manager', sites = '[]' WHERE name = 'cora'", (), "cora"),
    "sites widened": ("""UPDATE rj_web_users SET sites = '["north","south"]' WHERE name = 'cora'""", (), "cora"),
    "password hash replaced": (
        "UPDATE rj_web_users SET password_hash = ? WHERE name = 'cora'",
        (ATTACKER_HASH,),
        "cora",
    ),
    "password-less user given a password": (
        "UPDATE rj_web_users SET password_hash = ? WHERE name = 'otto'",
        (ATTACKER_HASH,),
        "otto",
    ),
    "disabled user enabled": ("UPDATE rj_web_users SET disabled = 0 WHERE name = 'dora'", (), "dora"),
    "user deleted": ("DELETE FROM rj_web_users WHERE name = 'otto'", (), "otto"),
    "token hash replaced": (
        "UPDATE rj_web_tokens SET token_hash = ? WHERE user_name = 'cora'",
        (ATTACKER_TOKEN_HASH,),
        "cora",
    ),
    "token inserted": ("INSERT INTO rj_web_tokens VALUES (?, 'mona', 0, 0)", (ATTACKER_TOKEN_HASH,), "mona"),
    "revoked token revived": ("UPDATE rj_web_tokens SET revoked = 0 WHERE user_name = 'otto'", (), "otto"),
    "token moved to a manager": ("UPDATE rj_web_tokens SET user_name = 'mona' WHERE user_name = 'cora'", (), "cora"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("with_key", [False, True], ids=["keyless", "keyed"])
def test_an_account_row_edited_in_the_database_fails_verify(trial, attack, with_key):
    db, key = trial
    sql, params, user = ATTACKS[attack]
    if attack == "manager inserted":  # copy every column of mona's row, whatever the schema
        with sqlite3.connect(db) as conn:
            columns = [r[1] for r in conn.execute("PRAGMA table_info(rj_web_users)")]
        values = {"name": "'eve'", "role": "'manager'", "password_hash": "?", "disabled": "0"}
        sql = (
            f"INSERT INTO rj_web_users ({', '.join(columns)}) SELECT "
            f"{', '.join(values.get(c, c) for c in columns)} FROM rj_web_users WHERE name = 'mona'"
        )
    edit(db, sql, *params)
    result = verify(db, key if with_key else None)
    assert not result.ok
    assert any(("rj_web_users" in p or "rj_web_tokens" in p) and repr(user) in p for p in result.problems), (
        result.problems
    )


def test_the_inserted_manager_could_log_in_so_verify_is_what_catches_it(trial):
    db, key = trial
    edit(
        db,
        "UPDATE rj_web_users SET role = 'manager', sites = '[]', password_hash = ? WHERE name = 'cora'",
        ATTACKER_HASH,
    )
    with Registry.open(db, key_path=key) as registry:
        assert Accounts(registry).authenticate("cora", ATTACKER_PASSWORD).role == "manager"
        assert not registry.verify().ok


def _append_account_entry(db, action, payload, row=None, *, mac=""):
    """What someone with write access but no key can do: append an entry (and its row)."""
    with Registry.open(db) as registry:
        with store.write_transaction(registry._engine) as (conn, head):
            entry = audit.append(
                conn, head, key=None, at="2026-01-01T00:00:00.000000+00:00", actor="cli", action=action, payload=payload
            )
            if mac:
                from sqlalchemy import update

                conn.execute(update(store.audit).where(store.audit.c.seq == entry.seq).values(mac=mac))
            if row is not None:
                from sqlalchemy import insert

                from rjtrial.web.accounts import users

                conn.execute(insert(users).values(**row))


def _mona(db):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        row = dict(conn.execute("SELECT * FROM rj_web_users WHERE name = 'mona'").fetchone())
        payload = json.loads(
            conn.execute("SELECT payload FROM rj_audit WHERE action = 'user_added' ORDER BY seq").fetchall()[1][0]
        )
    return row, payload


@pytest.mark.parametrize("with_key", [False, True], ids=["keyless", "keyed"])
def test_an_unsigned_user_added_entry_appended_fails_verify(trial, with_key):
    db, key = trial
    row, payload = _mona(db)
    assert payload["user"] == "mona"
    _append_account_entry(db, "user_added", {**payload, "user": "eve"}, {**row, "name": "eve"})
    result = verify(db, key if with_key else None)
    assert not result.ok and any("not signed" in p and "user_added" in p for p in result.problems), result.problems


def test_a_forged_signature_on_an_appended_entry_fails_keyed_verify(trial):
    db, key = trial
    row, payload = _mona(db)
    _append_account_entry(db, "user_added", {**payload, "user": "eve"}, {**row, "name": "eve"}, mac="ab" * 32)
    result = verify(db, key)
    assert not result.ok and any("not signed with the trial key" in p for p in result.problems), result.problems


def test_account_changes_need_the_key_and_write_nothing_without_it(trial):
    db, _ = trial
    before = sqlite3.connect(db).execute("SELECT count(*) FROM rj_audit").fetchone()[0]
    with Registry.open(db) as registry:
        accounts = Accounts(registry)
        with pytest.raises(KeyFileError, match="key"):
            accounts.add("nokey", role="auditor", password=None)
        with pytest.raises(KeyFileError, match="key"):
            accounts.issue_token("cora")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM rj_audit").fetchone()[0] == before
        assert conn.execute("SELECT count(*) FROM rj_web_users WHERE name = 'nokey'").fetchone()[0] == 0


def test_the_audit_log_holds_no_password_hash_and_no_token_hash(trial):
    db, _ = trial
    with sqlite3.connect(db) as conn:
        payloads = " ".join(r[0] for r in conn.execute("SELECT payload FROM rj_audit"))
        secrets = [r[0] for r in conn.execute("SELECT password_hash FROM rj_web_users WHERE password_hash != ''")]
        secrets += [r[0] for r in conn.execute("SELECT token_hash FROM rj_web_tokens")]
    assert secrets and not any(s in payloads for s in secrets)


@pytest.mark.postgres
def test_a_promoted_coordinator_fails_verify_on_postgres(tmp_path):
    from registry_fixtures import fresh_postgres_database, postgres_url_or_skip
    from sqlalchemy import create_engine, text

    with fresh_postgres_database(postgres_url_or_skip()) as url:
        key = tmp_path / "pg.key"
        Registry.create(url, make_protocol(), key_path=key, seed=3).close()
        with Registry.open(url, key_path=key) as registry:
            accounts = Accounts(registry)
            accounts.add("cora", role="coordinator", sites=["north"], password=PASSWORD)
            accounts.issue_token("cora")
            assert registry.verify().ok
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE rj_web_users SET role = 'manager', sites = '[]' WHERE name = 'cora'"))
        engine.dispose()
        for with_key in (None, key):
            with Registry.open(url, key_path=with_key) as registry:
                result = registry.verify()
            assert not result.ok and any("'cora'" in p for p in result.problems)
