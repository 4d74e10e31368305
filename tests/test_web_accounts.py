"""Accounts of the randomisation service: users, passwords, tokens, throttling, audit.

Each property is checked against the store itself (SQLite, read with sqlite3) and the
registry's own verification, not against what the accounts module says of itself.
"""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import sys
import time
from pathlib import Path

import pytest
import tomllib
from argon2 import PasswordHasher

from rjtrial import Protocol
from rjtrial.cli import main
from rjtrial.errors import KeyFileError
from rjtrial.registry import Registry, audit
from rjtrial.web.accounts import AccountError, Accounts, ThrottlePolicy

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"


def small_jrc_protocol() -> Protocol:
    """synthetic/protocols/jrc-london-burglary.toml with fewer sealed slots (quick to seal)."""
    data = tomllib.loads((ROOT / "synthetic/protocols/jrc-london-burglary.toml").read_text(encoding="utf-8"))
    data["randomisation"]["capacity"] = 30
    return Protocol.from_dict(data)


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    folder = tmp_path_factory.mktemp("accounts")
    db, key = folder / "trial.db", folder / "trial.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=7).close()
    return db, key


@pytest.fixture(scope="module")
def accounts(trial):
    db, key = trial
    registry = Registry.open(db, key_path=key)
    yield Accounts(registry, policy=ThrottlePolicy(failures=3, window=60, lockout=0.6))
    registry.close()


def rows(db, sql, *params):
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]


def audit_entries(db, action):
    return [
        json.loads(r["payload"]) | {"actor": r["actor"], "mac": r["mac"]}
        for r in rows(db, "SELECT * FROM rj_audit WHERE action = ? ORDER BY seq", action)
    ]


# ---------------------------------------------------------------- users
def test_added_user_is_stored_with_an_argon2_hash_never_the_password(trial, accounts):
    db, _ = trial
    accounts.add("cora", role="coordinator", sites=["london"], password=PASSWORD)
    (row,) = rows(db, "SELECT * FROM rj_web_users WHERE name = 'cora'")
    assert row["role"] == "coordinator" and json.loads(row["sites"]) == ["london"]
    assert row["password_hash"].startswith("$argon2id$")
    assert PasswordHasher().verify(row["password_hash"], PASSWORD)
    assert PASSWORD.encode() not in Path(db).read_bytes()
    added = [e for e in audit_entries(db, "user_added") if e["user"] == "cora"]
    assert added and added[0]["role"] == "coordinator" and added[0]["sites"] == ["london"]


@pytest.mark.parametrize(
    "name, role, sites, password, message",
    [
        ("x1", "admin", [], PASSWORD, "role must be one of"),
        ("x2", "coordinator", [], PASSWORD, "needs at least one --site"),
        ("x3", "coordinator", ["paris"], PASSWORD, "unknown site"),
        ("x4", "manager", ["london"], PASSWORD, "only coordinators have sites"),
        ("x5", "auditor", [], "short", "at least 12 characters"),
        ("bad name!", "auditor", [], PASSWORD, "user name"),
        ("-x", "auditor", [], PASSWORD, "user name"),
        ("eve\n", "manager", [], PASSWORD, "user name"),  # a pattern ending in $ matches before a final newline
        ("eve\r\n", "manager", [], PASSWORD, "user name"),
        ("x" * 65, "auditor", [], PASSWORD, "user name"),
        ("x6", "auditor", [], "twelve chars\x00!", "control characters"),
    ],
)
def test_bad_accounts_are_refused_with_the_reason(trial, accounts, name, role, sites, password, message):
    with pytest.raises(AccountError, match=message):
        accounts.add(name, role=role, sites=sites, password=password)
    assert not rows(trial[0], "SELECT name FROM rj_web_users WHERE name = ?", name)


def test_a_name_is_taken_once(accounts):
    accounts.add("dup", role="auditor", password=None)
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("dup", role="manager", password=None)
    assert accounts.get("dup").role == "auditor"


def test_authentication(accounts):
    accounts.add("auth1", role="manager", password=PASSWORD)
    assert accounts.authenticate("auth1", PASSWORD).name == "auth1"
    assert accounts.authenticate("auth1", PASSWORD + "x") is None
    assert accounts.authenticate("nobody", PASSWORD) is None
    assert accounts.authenticate("auth1", "") is None
    accounts.disable("auth1")
    assert accounts.authenticate("auth1", PASSWORD) is None


def test_an_account_without_password_cannot_log_in(accounts):
    accounts.add("robot", role="manager", password=None)
    assert accounts.authenticate("robot", "") is None
    assert accounts.authenticate("robot", PASSWORD) is None


def test_new_password_replaces_the_old_and_ends_sessions(accounts):
    accounts.add("pw", role="auditor", password=PASSWORD)
    epoch = accounts.get("pw").session_epoch
    accounts.set_password("pw", "another long password")
    assert accounts.authenticate("pw", PASSWORD) is None
    assert accounts.authenticate("pw", "another long password") is not None
    assert accounts.get("pw").session_epoch == epoch + 1


# --------------------------------------------------------------- tokens
def test_token_is_stored_only_as_its_sha256_and_revoked_on_disable(trial, accounts):
    db, _ = trial
    accounts.add("integ", role="coordinator", sites=["northumbria"], password=None)
    token = accounts.issue_token("integ")
    assert token.startswith("rjt_") and len(token) >= 4 + 43  # 32 random bytes, URL-safe base64
    stored = rows(db, "SELECT * FROM rj_web_tokens WHERE user_name = 'integ'")
    assert [r["token_hash"] for r in stored] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token.encode() not in Path(db).read_bytes()
    assert accounts.user_for_token(token).name == "integ"
    assert accounts.user_for_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert accounts.user_for_token("Bearer " + token) is None
    accounts.disable("integ")
    assert accounts.user_for_token(token) is None
    with pytest.raises(AccountError, match="disabled"):
        accounts.issue_token("integ")


def test_two_tokens_differ(accounts):
    accounts.add("twotok", role="auditor", password=None)
    assert accounts.issue_token("twotok") != accounts.issue_token("twotok")


# ------------------------------------------------------------ throttling
def test_failures_lock_the_name_at_that_address_then_expire(accounts):
    name = "victim"
    accounts.add(name, role="auditor", password=None)
    assert not accounts.locked(name, "10.0.0.1")
    locked_now = [accounts.record_failure(name, "10.0.0.1") for _ in range(3)]
    assert locked_now == [False, False, True]
    assert accounts.locked(name, "10.0.0.1")
    assert not accounts.locked(name, "10.0.0.2")  # another address is not locked out
    assert not accounts.locked("someone-else", "10.0.0.1")
    time.sleep(0.7)  # the policy's lockout is 0.6 s
    assert not accounts.locked(name, "10.0.0.1")


def test_many_names_from_one_address_lock_the_address(accounts):
    address = "10.9.9.9"
    for i in range(30):  # 10 x failures (3), spread over names
        accounts.record_failure(f"guess{i}", address)
    assert accounts.locked("anyone", address)


def test_success_clears_the_count(accounts):
    for _ in range(2):
        accounts.record_failure("clr", "10.1.1.1")
    accounts.clear_failures("clr", "10.1.1.1")
    assert [accounts.record_failure("clr", "10.1.1.1") for _ in range(3)] == [False, False, True]


# -------------------------------------------------------- one-time forms
def test_form_token_is_claimed_once_and_then_gives_its_result(accounts):
    user = accounts.add("former", role="coordinator", sites=["london"], password=None)
    other = accounts.add("former2", role="coordinator", sites=["london"], password=None)
    token = accounts.issue_form(user)
    assert accounts.claim_form(other, token) == ("unknown", None)  # another user's form
    assert accounts.claim_form(user, token) == ("claimed", None)
    assert accounts.claim_form(user, token) == ("pending", None)
    accounts.finish_form(token, {"status": "randomised", "receipt": "RJ-1"})
    assert accounts.claim_form(user, token) == ("done", {"status": "randomised", "receipt": "RJ-1"})
    assert accounts.claim_form(user, "forged") == ("unknown", None)
    released = accounts.issue_form(user)
    accounts.claim_form(user, released)
    accounts.finish_form(released, None)  # a refusal: the same form may be corrected and sent again
    assert accounts.claim_form(user, released) == ("claimed", None)


# ----------------------------------------------------- the audit log
def test_access_entries_are_signed_chained_and_verified(trial):
    db, key = trial
    with Registry.open(db, key_path=key) as registry:
        registry.record_access("login", by="cora", detail={"user": "cora", "address": "127.0.0.1"})
        assert registry.verify().ok
    logins = audit_entries(db, "login")
    assert logins[-1]["user"] == "cora" and logins[-1]["mac"] != ""
    with pytest.raises(ValueError, match="action must be one of"):
        Registry.open(db).record_access("enrolment", by="x", detail={})


def test_log_ins_and_account_changes_need_the_key(trial):
    db, key = trial
    with Registry.open(db) as registry:  # no key
        with pytest.raises(KeyFileError):
            registry.record_access("login", by="cora", detail={})
        accounts = Accounts(registry)
        for change in (
            lambda: accounts.add("nokey", role="auditor"),
            lambda: accounts.disable("cora"),
            lambda: accounts.set_password("cora", "a brand new password"),
            lambda: accounts.issue_token("cora"),
            lambda: accounts.set_email("cora", "c@example.org"),
        ):
            with pytest.raises(KeyFileError, match="key"):
                change()
    assert not rows(db, "SELECT * FROM rj_web_users WHERE name = 'nokey'")
    with Registry.open(db, key_path=key) as registry:
        assert registry.verify().ok


def test_verify_catches_a_forged_unsigned_login_and_an_edited_access_entry(tmp_path):
    db, key = tmp_path / "t.db", tmp_path / "t.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=3).close()
    with Registry.open(db, key_path=key) as registry:
        registry.record_access("login", by="cora", detail={"user": "cora"})
    # someone with write access but no key appends a log-in entry
    from rjtrial.registry import store

    with Registry.open(db) as registry:
        with store.write_transaction(registry._engine) as (conn, head):
            audit.append(
                conn,
                head,
                key=None,
                at="2026-01-01T00:00:00+00:00",
                actor="eve",
                action="login",
                payload={"user": "eve"},
            )
    with Registry.open(db, key_path=key) as registry:
        result = registry.verify()
    assert not result.ok and any("not signed" in p for p in result.problems)
    # editing a signed access entry breaks the chain even without the key
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE rj_audit SET payload = ? WHERE action = 'login' AND actor = 'cora'", ('{"user":"mallory"}',)
        )
    with Registry.open(db) as registry:
        result = registry.verify()
    assert not result.ok and any("edited" in p for p in result.problems)


# -------------------------------------------------------------- the CLI
def run(argv, monkeypatch, capsys, stdin=""):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_users_add_token_list_disable(tmp_path, monkeypatch, capsys):
    db, key = tmp_path / "t.db", tmp_path / "t.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=5).close()
    k = ["--key", str(key)]
    code, out, err = run(
        [
            "users",
            "add",
            "carol",
            "--db",
            str(db),
            *k,
            "--role",
            "coordinator",
            "--site",
            "london",
            "--password-stdin",
            "--email",
            "carol@example.org",
        ],
        monkeypatch,
        capsys,
        stdin=PASSWORD + "\n",
    )
    assert code == 0, err
    (row,) = rows(db, "SELECT * FROM rj_web_users")
    assert PasswordHasher().verify(row["password_hash"], PASSWORD)  # the newline is not part of it
    code, out, err = run(["users", "token", "carol", "--db", str(db), *k], monkeypatch, capsys)
    token = out.strip()
    assert code == 0 and token.startswith("rjt_") and "only this once" in err
    assert (
        rows(db, "SELECT token_hash FROM rj_web_tokens")[0]["token_hash"] == hashlib.sha256(token.encode()).hexdigest()
    )
    code, out, _ = run(["users", "list", "--db", str(db), "--json"], monkeypatch, capsys)  # reading needs no key
    assert json.loads(out)["users"] == [
        {"name": "carol", "role": "coordinator", "sites": ["london"], "disabled": False, "email": "carol@example.org"}
    ]
    code, out, _ = run(["users", "disable", "carol", "--db", str(db), *k], monkeypatch, capsys)
    assert code == 0 and rows(db, "SELECT disabled FROM rj_web_users")[0]["disabled"] == 1
    with Registry.open(db, key_path=key) as registry:
        assert registry.verify().ok
    actions = [r["action"] for r in rows(db, "SELECT action FROM rj_audit ORDER BY seq")]
    assert actions == ["init", "user_added", "token_issued", "user_disabled"]
    assert audit_entries(db, "user_disabled")[-1]["tokens_revoked"] == [hashlib.sha256(token.encode()).hexdigest()[:12]]


@pytest.mark.parametrize(
    "command",
    [
        ["add", "newbie", "--role", "auditor", "--no-password"],
        ["token", "carol"],
        ["disable", "carol"],
        ["enable", "carol"],
        ["email", "carol", "c@example.org"],
        ["revoke", "carol", "--token", "abcdef"],
    ],
)
def test_cli_account_changes_without_the_key_are_refused_in_one_line(tmp_path, monkeypatch, capsys, command):
    db, key = tmp_path / "t.db", tmp_path / "t.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=5).close()
    monkeypatch.delenv("RJTRIAL_KEY", raising=False)
    assert (
        run(
            ["users", "add", "carol", "--db", str(db), "--key", str(key), "--role", "auditor", "--no-password"],
            monkeypatch,
            capsys,
        )[0]
        == 0
    )
    before = rows(db, "SELECT * FROM rj_audit")
    code, _, err = run(["users", command[0], *command[1:], "--db", str(db)], monkeypatch, capsys)
    assert code == 2 and "key" in err and err.count("\n") == 1 and "Traceback" not in err
    assert rows(db, "SELECT * FROM rj_audit") == before


def test_cli_refuses_a_user_name_with_a_trailing_newline(tmp_path, monkeypatch, capsys):
    db, key = tmp_path / "t.db", tmp_path / "t.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=5).close()
    code, _, err = run(
        ["users", "add", "eve\n", "--db", str(db), "--key", str(key), "--role", "manager", "--no-password"],
        monkeypatch,
        capsys,
    )
    assert code == 2 and "user name" in err and err.count("\n") == 1
    assert not rows(db, "SELECT * FROM rj_web_users")
    assert [r["action"] for r in rows(db, "SELECT action FROM rj_audit")] == ["init"]


def test_one_token_is_revoked_by_its_id_and_a_user_enabled_again(tmp_path, monkeypatch, capsys):
    db, key = tmp_path / "t.db", tmp_path / "t.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=5).close()
    k = ["--key", str(key)]
    assert (
        run(["users", "add", "ivy", "--db", str(db), *k, "--role", "auditor", "--no-password"], monkeypatch, capsys)[0]
        == 0
    )
    first = run(["users", "token", "ivy", "--db", str(db), *k], monkeypatch, capsys)[1].strip()
    second = run(["users", "token", "ivy", "--db", str(db), *k], monkeypatch, capsys)[1].strip()
    code, out, _ = run(["users", "tokens", "ivy", "--db", str(db), "--json"], monkeypatch, capsys)
    listed = json.loads(out)["tokens"]
    first_id = hashlib.sha256(first.encode()).hexdigest()[:12]
    assert code == 0 and [t["id"] for t in listed] == [first_id, hashlib.sha256(second.encode()).hexdigest()[:12]]
    assert first not in out and second not in out  # ids only, never the tokens
    assert run(["users", "revoke", "ivy", "--db", str(db), *k, "--token", first_id], monkeypatch, capsys)[0] == 0
    with Registry.open(db) as registry:
        accounts = Accounts(registry)
        assert accounts.user_for_token(first) is None and accounts.user_for_token(second).name == "ivy"
    code, _, err = run(["users", "revoke", "ivy", "--db", str(db), *k, "--token", "ffffffffffff"], monkeypatch, capsys)
    assert code == 2 and "no token of 'ivy' has id" in err and err.count("\n") == 1
    code, _, err = run(["users", "revoke", "ivy", "--db", str(db), *k, "--token", "<script>"], monkeypatch, capsys)
    assert code == 2 and "must be hexadecimal" in err
    # disable revokes everything; enable lets the user back in, old tokens stay revoked
    assert run(["users", "disable", "ivy", "--db", str(db), *k], monkeypatch, capsys)[0] == 0
    assert run(["users", "enable", "ivy", "--db", str(db), *k], monkeypatch, capsys)[0] == 0
    with Registry.open(db, key_path=key) as registry:
        accounts = Accounts(registry)
        assert not accounts.get("ivy").disabled and accounts.user_for_token(second) is None
        assert registry.verify().ok
    actions = [r["action"] for r in rows(db, "SELECT action FROM rj_audit ORDER BY seq")]
    assert actions[-3:] == ["token_revoked", "user_disabled", "user_enabled"]


# ------------------------------------------------- a new password and the tokens
def test_a_new_password_revokes_the_users_api_tokens_and_says_so_in_the_log(accounts, trial):
    db, key = trial
    accounts.add("newpw", role="coordinator", sites=["london"], password=PASSWORD)
    first, second = accounts.issue_token("newpw"), accounts.issue_token("newpw")
    other = accounts.issue_token("cora")
    assert accounts.user_for_token(first).name == "newpw"
    revoked = accounts.set_password("newpw", "a fresh long password")
    assert accounts.user_for_token(first) is None and accounts.user_for_token(second) is None
    assert accounts.user_for_token(other).name == "cora"  # nobody else's
    ids = [hashlib.sha256(t.encode()).hexdigest()[:12] for t in (first, second)]
    assert revoked == ids
    entry = audit_entries(db, "user_password")[-1]
    assert entry["user"] == "newpw" and entry["tokens_revoked"] == ids and entry["mac"] != ""
    with Registry.open(db, key_path=key) as registry:
        assert registry.verify().ok


def test_a_new_password_may_keep_the_tokens_when_asked(accounts):
    accounts.add("keeper", role="auditor", password=PASSWORD)
    token = accounts.issue_token("keeper")
    assert accounts.set_password("keeper", "a fresh long password", keep_tokens=True) == []
    assert accounts.user_for_token(token).name == "keeper"


def test_cli_password_revokes_tokens_unless_keep_tokens(tmp_path, monkeypatch, capsys):
    db, key = tmp_path / "t.db", tmp_path / "t.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=5).close()
    k = ["--key", str(key)]
    run(
        ["users", "add", "pat", "--db", str(db), *k, "--role", "auditor", "--password-stdin"],
        monkeypatch,
        capsys,
        stdin=PASSWORD + "\n",
    )
    kept = run(["users", "token", "pat", "--db", str(db), *k], monkeypatch, capsys)[1].strip()
    code, out, _ = run(
        ["users", "password", "pat", "--db", str(db), *k, "--password-stdin", "--keep-tokens"],
        monkeypatch,
        capsys,
        stdin="second long password\n",
    )
    assert code == 0 and "kept" in out
    code, out, _ = run(
        ["users", "password", "pat", "--db", str(db), *k, "--password-stdin"],
        monkeypatch,
        capsys,
        stdin="third long password!\n",
    )
    assert code == 0 and "1 API token(s) revoked" in out
    with Registry.open(db, key_path=key) as registry:
        assert Accounts(registry).user_for_token(kept) is None and registry.verify().ok
    with pytest.raises(SystemExit):
        main(["users", "password", "--help"])
    assert "revokes their API tokens" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("address", ["carol@example.org", ""])
def test_an_email_address_is_set_audited_and_verified(accounts, trial, address):
    db, key = trial
    if accounts.get("mailer") is None:
        accounts.add("mailer", role="coordinator", sites=["london"], password=None)
    accounts.set_email("mailer", address)
    assert accounts.get("mailer").email == address
    assert audit_entries(db, "user_email")[-1]["email"] == address
    with Registry.open(db, key_path=key) as registry:
        assert registry.verify().ok


@pytest.mark.parametrize("address", ["not an address", "a@b", "eve@example.org\nBcc: x@y.org", "<a@b.org>"])
def test_a_bad_email_address_is_refused(accounts, address):
    with pytest.raises(AccountError, match="e-mail address"):
        accounts.add("badmail", role="auditor", password=None, email=address)
    assert accounts.get("badmail") is None


# ---------------------------------------------------- throttling, in parallel
def test_eighty_parallel_log_ins_check_at_most_the_allowed_number_of_guesses(trial):
    """79 wrong passwords and then the right one, all at once from one address: at most
    ``failures`` passwords are ever checked (a reservation precedes each check)."""
    import threading

    db, key = trial
    registry = Registry.open(db, key_path=key)
    accounts = Accounts(registry, policy=ThrottlePolicy(failures=5, window=60, lockout=60))
    accounts.add("para", role="auditor", password=PASSWORD)
    checked, lock = [], threading.Lock()
    original = accounts.authenticate

    def counting(name, password):
        with lock:
            checked.append(password)
        time.sleep(0.02)  # as slow as a real check, so that the requests overlap
        return original(name, password)

    accounts.authenticate = counting
    barrier = threading.Barrier(80)
    outcomes = []

    def attempt(i):
        barrier.wait(timeout=30)
        password = PASSWORD if i == 79 else f"wrong guess number {i}"
        if i == 79:
            time.sleep(0.01)  # the right one comes last
        outcomes.append(accounts.log_in("para", password, "10.7.7.7").status)

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(80)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    registry.close()
    assert len(outcomes) == 80
    assert len(checked) <= 5, f"{len(checked)} passwords checked"
    assert outcomes.count("locked") >= 75


def test_throttle_counters_hold_no_guessable_form_of_the_name_typed(trial, accounts):
    db, _ = trial
    typed = "Hunter2-typed-in-the-name-box"
    accounts.record_failure(typed, "10.3.3.3")
    keys = [r["key"] for r in rows(db, "SELECT key FROM rj_web_throttle")]
    unkeyed = {
        hashlib.sha256(f"user|{typed}|10.3.3.3".encode()).hexdigest(),
        hashlib.sha256("address|10.3.3.3".encode()).hexdigest(),
    }
    assert keys and not unkeyed & set(keys)
    assert typed.encode() not in b"".join(p.read_bytes() for p in Path(db).parent.glob(Path(db).name + "*"))


def test_an_older_throttle_table_with_unkeyed_names_is_replaced(tmp_path):
    db, key = tmp_path / "t.db", tmp_path / "t.key"
    Registry.create(db, small_jrc_protocol(), key_path=key, seed=5).close()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE rj_web_throttle (key VARCHAR(64) PRIMARY KEY, failures INTEGER NOT NULL, "
            "window_start FLOAT NOT NULL, locked_until FLOAT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO rj_web_throttle VALUES (?, 1, 0, 0)",
            (hashlib.sha256(b"user|password123|1.2.3.4").hexdigest(),),
        )
    with Registry.open(db, key_path=key) as registry:
        accounts = Accounts(registry)
        assert accounts.record_failure("someone", "1.2.3.4") is False
    assert len(rows(db, "SELECT * FROM rj_web_throttle")) == 2  # the old row is gone


def test_a_guess_left_pending_by_a_dead_server_is_released(accounts, monkeypatch):
    from rjtrial.web import throttle as throttle_module

    accounts.add("stale", role="auditor", password=PASSWORD)
    for _ in range(3):  # reserved, never ended (the server died while checking)
        assert accounts.throttle.begin("stale", "10.4.4.4")
    assert not accounts.throttle.begin("stale", "10.4.4.4")  # the limit (3) is taken by pending guesses
    real = time.time
    monkeypatch.setattr(throttle_module.time, "time", lambda: real() + throttle_module.STALE_PENDING + 1)
    assert accounts.log_in("stale", PASSWORD, "10.4.4.4").status == "ok"
