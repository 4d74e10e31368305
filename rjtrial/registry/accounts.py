"""Accounts of the randomisation service, bound to the signed audit chain as enrolments are.

The tables ``rj_web_users`` and ``rj_web_tokens`` live in the registry's database.
Every change to them — a user added, a password set, an account disabled or enabled,
an e-mail address changed, a token issued or revoked — writes its rows **and** one
audit entry in the same write transaction, signed with the trial key (an account
change needs the key, as an enrolment does). The entry's payload is the change
itself, so :func:`check` can replay the account entries of the log and compare the
result with the tables, column for column, as ``verify`` does for referrals.

Payloads (``password`` and ``digest`` are domain-separated SHA-256 digests of the
stored Argon2 hash and of the stored token hash: the log never holds a password
hash or a token hash, yet any change to either no longer matches):

==============  ===============================================================
user_added      ``user, role, sites, email, password`` (digest, "" = none)
user_password   ``user, password, reason ("set" | "rehash"), tokens_revoked``
user_disabled   ``user, tokens_revoked`` (every active token of the user)
user_enabled    ``user`` (revoked tokens stay revoked)
user_email      ``user, email``
token_issued    ``user, token`` (id: first 12 hex digits of the SHA-256), ``digest``
token_revoked   ``user, token``
==============  ===============================================================

What :func:`check` detects, without the key: a user or token row inserted,
deleted or edited (role, sites, password hash, disabled flag, e-mail, token hash,
owner, revocation), and an account entry without a signature (``mac`` empty: written
without the key). With the key, ``verify`` also checks every entry's signature, so
an entry appended with a forged signature fails. Not covered: ``session_epoch``
(it only ends sessions) and ``created_at``.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import re
import time
from typing import Any, Iterable, Iterator, Mapping

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, insert, inspect, select, text, update

from rjtrial._canonical import sha256_hex
from rjtrial.errors import RjtrialError
from rjtrial.registry import audit, store

ROLES = ("coordinator", "manager", "auditor")
ACTIONS = (
    "user_added",
    "user_password",
    "user_disabled",
    "user_enabled",
    "user_email",
    "token_issued",
    "token_revoked",
)
ACCESS_ACTIONS = ("login", "logout")  # log-ins of the service: signed, checked as links of the chain
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
EMAIL_PATTERN = re.compile(r"[^@\s<>\"',;]{1,64}@[A-Za-z0-9.-]{1,189}\.[A-Za-z]{2,63}")

metadata = MetaData()

users = Table(
    "rj_web_users",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("role", String(20), nullable=False),
    Column("sites", Text, nullable=False),  # JSON list of site levels ([] = none / all for managers)
    Column("password_hash", Text, nullable=False),  # "" = cannot log in with a password
    Column("disabled", Integer, nullable=False),
    Column("session_epoch", Integer, nullable=False),
    Column("created_at", Float, nullable=False),
    Column("email", String(254), nullable=False, server_default=""),  # "" = none
)

tokens = Table(
    "rj_web_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the token
    Column("user_name", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked", Integer, nullable=False),
)


class AccountError(RjtrialError, ValueError):
    """An account operation with bad input (unknown user, bad role, weak password...)."""


def check_name(name: str) -> str:
    """``name`` if it is a valid user name (the whole text: no trailing newline), else AccountError."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise AccountError(
            f"user name {name!r} must be 1-64 letters, digits or '_ . @ -', starting with a letter or digit"
        )
    return name


def valid_name(name) -> bool:
    """Is ``name`` a valid user name (matched in full, so no trailing newline)?"""
    return isinstance(name, str) and NAME_PATTERN.fullmatch(name) is not None


def check_email(email: str) -> str:
    """``email`` if empty or a plain address (``someone@example.org``), else AccountError."""
    if email == "":
        return email
    if not isinstance(email, str) or len(email) > 254 or EMAIL_PATTERN.fullmatch(email) is None:
        raise AccountError(f"e-mail address {email!r} is not a plain address like someone@example.org")
    return email


def password_digest(password_hash: str) -> str:
    """What the audit log records of a stored password hash ("" for none)."""
    return sha256_hex("rjtrial-password-v1", password_hash) if password_hash else ""


def token_digest(token_hash: str) -> str:
    """What the audit log records of a stored token hash."""
    return sha256_hex("rjtrial-token-v1", token_hash)


def token_id(token_hash: str) -> str:
    """A token's public id: the first 12 hex digits of its SHA-256."""
    return token_hash[:12]


def ensure_tables(engine) -> None:
    """Create the account tables if missing; add the ``email`` column to older ones."""
    metadata.create_all(engine, checkfirst=True)
    columns = {c["name"] for c in inspect(engine).get_columns(users.name)}
    if "email" not in columns:
        with engine.begin() as conn:
            conn.execute(text(f"ALTER TABLE {users.name} ADD COLUMN email VARCHAR(254) NOT NULL DEFAULT ''"))


class ServiceTables:
    """Where the randomisation service keeps its own, unaudited tables (one-time forms,
    log-in throttling counters, the security log): the registry's database, or a server's.

    The service reaches them only through this handle, never the registry's own tables.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Made by :meth:`open` or :meth:`AccountStore.service_tables`.
    """

    def __init__(self, engine):
        self.engine = engine

    @classmethod
    def open(cls, db) -> "ServiceTables":
        """A SQLite file or database URL of its own (e.g. a multi-trial server's state)."""
        return cls(store.make_engine(db))

    def create(self, metadata) -> None:
        """Create the tables of ``metadata`` that are missing."""
        metadata.create_all(self.engine, checkfirst=True)

    def read(self):
        """A read-only transaction (a consistent snapshot): ``with tables.read() as conn``."""
        return store.read_transaction(self.engine)

    def write(self):
        """A write transaction (on SQLite it takes the write lock first): ``with tables.write() as conn``."""
        return self.engine.begin()

    def close(self) -> None:
        self.engine.dispose()


class AccountStore:
    """The account tables of a registry; every change is one signed audit entry.

    Parameters
    ----------
    registry : rjtrial.registry.Registry
        Changes need it opened with the key (:class:`~rjtrial.errors.KeyFileError`
        otherwise); reading does not.
    """

    def __init__(self, registry):
        self._registry = registry
        self._engine = registry._engine
        ensure_tables(self._engine)

    def service_tables(self) -> ServiceTables:
        """The registry's database, for the service's own unaudited tables (see :class:`ServiceTables`)."""
        return ServiceTables(self._engine)

    # ----------------------------------------------------------------- reading
    def user(self, name: str) -> dict[str, Any] | None:
        """The user's row (``sites`` as a list), or None."""
        if not valid_name(name):
            return None
        with store.read_transaction(self._engine) as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return None if row is None else _user_dict(row)

    def users(self) -> list[dict[str, Any]]:
        with store.read_transaction(self._engine) as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
        return [_user_dict(r) for r in rows]

    def tokens(self, name: str) -> list[dict[str, Any]]:
        """The user's token rows, oldest first (``token_hash``, ``created_at``, ``revoked``)."""
        with store.read_transaction(self._engine) as conn:
            rows = (
                conn.execute(select(tokens).where(tokens.c.user_name == name).order_by(tokens.c.created_at))
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def user_for_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        """The active user holding this unrevoked token, or None."""
        with store.read_transaction(self._engine) as conn:
            row = (
                conn.execute(
                    select(users)
                    .join(tokens, tokens.c.user_name == users.c.name)
                    .where(tokens.c.token_hash == token_hash, tokens.c.revoked == 0, users.c.disabled == 0)
                )
                .mappings()
                .first()
            )
        return None if row is None else _user_dict(row)

    def derived_secret(self, purpose: str) -> bytes | None:
        """A secret derived from the trial key for one ``purpose`` (HMAC-SHA-256), or None
        without the key. The service keys its throttling counters and security log with it,
        so that a name typed at the log-in page is never stored in a form one can guess at."""
        key = self._registry._key
        return (
            None if key is None else hmac.new(key, b"rjtrial-derived-v1|" + purpose.encode(), hashlib.sha256).digest()
        )

    # ----------------------------------------------------------------- changes
    def add_user(
        self, name: str, *, role: str, sites: Iterable[str], password_hash: str, email: str = "", by: str
    ) -> None:
        """Insert a user (name, role and e-mail checked here; sites by the caller)."""
        check_name(name)
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        check_email(email)
        sites = list(sites)
        with self._change("adding a user") as (conn, head, key):
            if conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
                raise AccountError(f"user {name!r} already exists")
            conn.execute(
                insert(users).values(
                    name=name,
                    role=role,
                    sites=json.dumps(sites),
                    password_hash=password_hash,
                    disabled=0,
                    session_epoch=0,
                    created_at=time.time(),
                    email=email,
                )
            )
            self._log(
                conn,
                head,
                key,
                by,
                "user_added",
                {
                    "user": name,
                    "role": role,
                    "sites": sites,
                    "email": email,
                    "password": password_digest(password_hash),
                },
            )

    def set_password_hash(
        self, name: str, password_hash: str, *, by: str, revoke_tokens: bool = True, reason: str = "set"
    ) -> list[str]:
        """Store a new password hash and end the user's sessions; by default also revoke
        every active API token of the user. Returns the ids of the tokens revoked."""
        with self._change("setting a password") as (conn, head, key):
            self._require(conn, name)
            values: dict[str, Any] = {"password_hash": password_hash}
            if reason == "set":  # a new password ends every session; a rehash of the same one does not
                values["session_epoch"] = users.c.session_epoch + 1
            conn.execute(update(users).where(users.c.name == name).values(**values))
            revoked = self._revoke_all(conn, name) if revoke_tokens else []
            self._log(
                conn,
                head,
                key,
                by,
                "user_password",
                {"user": name, "password": password_digest(password_hash), "reason": reason, "tokens_revoked": revoked},
            )
        return revoked

    def set_disabled(self, name: str, disabled: bool, *, by: str) -> list[str]:
        """Disable (sessions end, every token revoked) or re-enable an account."""
        with self._change("disabling an account" if disabled else "enabling an account") as (conn, head, key):
            self._require(conn, name)
            if disabled:
                conn.execute(
                    update(users)
                    .where(users.c.name == name)
                    .values(disabled=1, session_epoch=users.c.session_epoch + 1)
                )
                revoked = self._revoke_all(conn, name)
                self._log(conn, head, key, by, "user_disabled", {"user": name, "tokens_revoked": revoked})
                return revoked
            conn.execute(update(users).where(users.c.name == name).values(disabled=0))
            self._log(conn, head, key, by, "user_enabled", {"user": name})
        return []

    def set_email(self, name: str, email: str, *, by: str) -> None:
        check_email(email)
        with self._change("changing an e-mail address") as (conn, head, key):
            self._require(conn, name)
            conn.execute(update(users).where(users.c.name == name).values(email=email))
            self._log(conn, head, key, by, "user_email", {"user": name, "email": email})

    def add_token(self, name: str, token_hash: str, *, by: str) -> None:
        """Store a new token's hash for an active user."""
        with self._change("issuing a token") as (conn, head, key):
            row = self._require(conn, name)
            if row["disabled"]:
                raise AccountError(f"user {name!r} is disabled")
            conn.execute(
                insert(tokens).values(token_hash=token_hash, user_name=name, created_at=time.time(), revoked=0)
            )
            self._log(
                conn,
                head,
                key,
                by,
                "token_issued",
                {"user": name, "token": token_id(token_hash), "digest": token_digest(token_hash)},
            )

    def revoke_token(self, name: str, token_hash: str, *, by: str) -> None:
        with self._change("revoking a token") as (conn, head, key):
            self._require(conn, name)
            done = conn.execute(
                update(tokens).where(tokens.c.token_hash == token_hash, tokens.c.user_name == name).values(revoked=1)
            ).rowcount
            if done != 1:
                raise AccountError(f"no token of {name!r} has id {token_id(token_hash)!r}")
            self._log(conn, head, key, by, "token_revoked", {"user": name, "token": token_id(token_hash)})

    def end_sessions(self, name: str) -> None:
        """End every session of the user (``session_epoch`` + 1; the log-out itself is audited)."""
        with self._engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(session_epoch=users.c.session_epoch + 1))

    # --------------------------------------------------------------- internals
    @contextlib.contextmanager
    def _change(self, what: str) -> Iterator[tuple[Any, dict, bytes]]:
        """One serialised write transaction (rows and audit entry together): (conn, head, key)."""
        key = self._registry._require_key(what)  # before anything is written
        with store.write_transaction(self._engine) as (conn, head):
            yield conn, head, key

    @staticmethod
    def _require(conn, name: str):
        row = conn.execute(select(users).where(users.c.name == name)).mappings().first() if valid_name(name) else None
        if row is None:
            raise AccountError(f"no user {name!r}")
        return row

    @staticmethod
    def _revoke_all(conn, name: str) -> list[str]:
        active = (
            conn.execute(
                select(tokens.c.token_hash)
                .where(tokens.c.user_name == name, tokens.c.revoked == 0)
                .order_by(tokens.c.created_at)
            )
            .scalars()
            .all()
        )
        if active:
            conn.execute(update(tokens).where(tokens.c.user_name == name).values(revoked=1))
        return [token_id(h) for h in active]

    @staticmethod
    def _log(conn, head, key, by, action, payload) -> None:
        from rjtrial.registry.core import now_utc

        audit.append(
            conn, head, key=key, at=now_utc(), actor=str(by)[:100] or "unknown", action=action, payload=payload
        )


def _user_dict(row: Mapping[Any, Any]) -> dict[str, Any]:
    out = dict(row)
    out["sites"] = json.loads(row["sites"])
    out["email"] = row.get("email") or ""
    return out


# -------------------------------------------------------------------- verify
def read_rows(conn) -> tuple[list[dict], list[dict]]:
    """The user and token rows as stored (empty when the tables do not exist)."""
    names = set(inspect(conn).get_table_names())
    user_rows = (
        [
            dict(r)
            for r in conn.execute(
                select(
                    users.c.name,
                    users.c.role,
                    users.c.sites,
                    users.c.password_hash,
                    users.c.disabled,
                    *([users.c.email] if _has_email(conn) else []),
                )
            ).mappings()
        ]
        if users.name in names
        else []
    )
    token_rows = [dict(r) for r in conn.execute(select(tokens)).mappings()] if tokens.name in names else []
    return user_rows, token_rows


def _has_email(conn) -> bool:
    return "email" in {c["name"] for c in inspect(conn).get_columns(users.name)}


def check(
    audit_rows: Iterable[Mapping[Any, Any]], user_rows: list[dict], token_rows: list[dict], *, key_checked: bool
) -> list[str]:
    """Replay the account entries of the audit log; compare with the account tables.

    Returns the problems, each naming the audit entry or the table and the account.
    ``key_checked``: the chain's signatures were checked with the key (then an
    unsigned log-in is already reported there).
    """
    problems: list[str] = []
    state: dict[str, dict[str, Any]] = {}
    issued: dict[str, dict[str, Any]] = {}  # token digest -> {user, id, revoked}
    for row in audit_rows:
        action = row["action"]
        if action not in ACTIONS and action not in ACCESS_ACTIONS:
            continue
        where = f"audit log entry {row['seq']} ({action})"
        if row["mac"] == "" and (action in ACTIONS or not key_checked):
            problems.append(
                f"{where}: not signed: account changes and log-ins are signed with the trial key "
                "(written without the key)"
            )
        if action in ACCESS_ACTIONS:
            continue
        try:
            payload = json.loads(row["payload"])
            problem = _replay(state, issued, action, payload)
        except (ValueError, TypeError, KeyError, AttributeError):
            problem = "malformed account entry"
        if problem:
            problems.append(f"{where}: {problem}")
    problems += _compare_users(state, user_rows)
    problems += _compare_tokens(issued, token_rows)
    return problems


def _replay(state, issued, action, p) -> str | None:
    name = p["user"]
    if action == "user_added":
        if name in state:
            return f"adds user {name!r} a second time"
        state[name] = {
            "role": p["role"],
            "sites": list(p["sites"]),
            "password": p["password"],
            "disabled": False,
            "email": p["email"],
        }
        return None
    if action == "token_issued":
        if name not in state:
            return f"issues a token to {name!r}, whom the log never added"
        issued[p["digest"]] = {"user": name, "id": p["token"], "revoked": False}
        return None
    if name not in state:
        return f"changes user {name!r}, whom the log never added"
    user = state[name]
    if action == "user_password":
        user["password"] = p["password"]
        _revoke(issued, name, p["tokens_revoked"])
    elif action == "user_disabled":
        user["disabled"] = True
        _revoke(issued, name, p["tokens_revoked"])
    elif action == "user_enabled":
        user["disabled"] = False
    elif action == "user_email":
        user["email"] = p["email"]
    elif action == "token_revoked":
        if not _revoke(issued, name, [p["token"]]):
            return f"revokes token {p['token']!r} of {name!r}, which the log never issued"
    return None


def _revoke(issued, name, ids) -> bool:
    found = False
    for token in issued.values():
        if token["user"] == name and token["id"] in ids:
            token["revoked"] = found = True
    return found


def _compare_users(state, user_rows) -> list[str]:
    problems = []
    table = users.name
    rows = {r["name"]: r for r in user_rows}
    for name, row in rows.items():
        logged = state.get(name)
        if logged is None:
            problems.append(f"user {name!r} (table {table}): has no user_added entry in the audit log (inserted)")
            continue
        try:
            sites = json.loads(row["sites"])
        except (TypeError, ValueError):
            sites = None
        stored = {
            "role": row["role"],
            "sites": sites,
            "password": password_digest(row["password_hash"] or ""),
            "disabled": bool(row["disabled"]),
            "email": row.get("email", "") or "",
        }
        changed = [column for column, value in stored.items() if logged[column] != value]
        if changed:
            columns = ", ".join("password_hash" if c == "password" else c for c in changed)
            problems.append(
                f"user {name!r} (table {table}): differs from the audit log in column(s) {columns} (edited)"
            )
    for name in state:
        if name not in rows:
            problems.append(f"user {name!r} (table {table}): missing, but the audit log added it (deleted)")
    return problems


def _compare_tokens(issued, token_rows) -> list[str]:
    problems = []
    table = tokens.name
    seen = set()
    for row in token_rows:
        digest = token_digest(row["token_hash"])
        seen.add(digest)
        logged = issued.get(digest)
        where = f"token {token_id(row['token_hash'])} of user {row['user_name']!r} (table {table})"
        if logged is None:
            problems.append(f"{where}: has no token_issued entry in the audit log (inserted, or its hash replaced)")
            continue
        if logged["user"] != row["user_name"]:
            problems.append(f"{where}: the audit log issued it to {logged['user']!r} (edited)")
        if logged["revoked"] != bool(row["revoked"]):
            state = "revoked" if logged["revoked"] else "active"
            problems.append(
                f"{where}: is {'active' if not row['revoked'] else 'revoked'}, but {state} in the audit log (edited)"
            )
    for digest, logged in issued.items():
        if digest not in seen:
            problems.append(
                f"token {logged['id']} of user {logged['user']!r} (table {table}): missing, but the "
                "audit log issued it (deleted, or its hash replaced)"
            )
    return problems
