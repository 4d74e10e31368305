"""Accounts of the randomisation service: users, roles, passwords, API tokens, throttling.

Everything is kept in tables ``rj_web_*`` of the registry's own database (SQLite or
PostgreSQL), created on first use, so that several server processes share it.

* Passwords are stored as Argon2id hashes (``argon2-cffi`` defaults); a password has
  at least :data:`MIN_PASSWORD_LENGTH` characters.
* API tokens are 32 random bytes (``rjt_`` + URL-safe base64), shown once; only their
  SHA-256 is stored.
* Log-in throttling: after ``failures`` failed log-ins for one user name from one
  address within ``window`` seconds, that pair is locked for ``lockout`` seconds (even
  the right password is refused); after ``10 * failures`` failures from one address,
  the address is locked. Defaults 5, 900 and 900 (:class:`ThrottlePolicy`).
* Each user has a ``session_epoch``: logging out, a new password or disabling the
  account increments it, which ends every session signed with the old value.

Every account change is also an entry of the registry's audit log
(:meth:`rjtrial.registry.Registry.record_access`).
"""

from __future__ import annotations

import builtins
import hashlib
import json
import re
import secrets
import time
import unicodedata
from dataclasses import dataclass
from typing import Iterable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from rjtrial.errors import RjtrialError
from rjtrial.registry import store

ROLES = ("coordinator", "manager", "auditor")
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "rjt_"
SITE_STRATUM = "site"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")

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
)

tokens = Table(
    "rj_web_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 of the token
    Column("user_name", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("revoked", Integer, nullable=False),
)

throttle = Table(
    "rj_web_throttle",
    metadata,
    Column("key", String(64), primary_key=True),  # SHA-256 of "user|address" or "address"
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("locked_until", Float, nullable=False),
)

submissions = Table(  # one-time enrolment form tokens: a repeated submission shows the first result
    "rj_web_submissions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_name", String(64), nullable=False),
    Column("issued_at", Float, nullable=False),
    Column("state", String(10), nullable=False),  # issued | pending | done
    Column("result", Text, nullable=False),  # JSON of the enrolment result once done
)

_hasher = PasswordHasher()
_DUMMY_HASH = _hasher.hash("rjtrial-dummy-password-for-timing")


class AccountError(RjtrialError, ValueError):
    """An account operation with bad input (unknown user, bad role, weak password...)."""


@dataclass(frozen=True)
class User:
    """An account of the service: name, role, sites, whether disabled, and its session epoch."""

    name: str
    role: str
    sites: tuple[str, ...]
    disabled: bool
    session_epoch: int

    def may_see_site(self, site: str | None) -> bool:
        """Coordinators see their own sites only; managers every site."""
        if self.role == "manager":
            return True
        if self.role != "coordinator":
            return False
        return site is None or site in self.sites

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "sites": list(self.sites), "disabled": self.disabled}


@dataclass(frozen=True)
class ThrottlePolicy:
    """Log-in throttling: ``failures`` within ``window`` seconds lock for ``lockout`` seconds."""

    failures: int = 5
    window: float = 900.0
    lockout: float = 900.0


def ensure_tables(engine) -> None:
    """Create the ``rj_web_*`` tables if missing (idempotent)."""
    metadata.create_all(engine, checkfirst=True)


def check_name(name: str) -> str:
    """``name`` if it is a valid user name, else AccountError naming the rule."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise AccountError(
            f"user name {name!r} must be 1-64 letters, digits or '_ . @ -', starting with a letter or digit"
        )
    return name


def check_password(password: str) -> str:
    """``password`` if it is acceptable (length, no control characters), else AccountError."""
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in password):
        raise AccountError("a password may not contain control characters")
    return password


def site_levels(protocol, site_stratum: str = SITE_STRATUM) -> tuple[str, ...] | None:
    """The protocol's site levels, or None when it has no site stratum."""
    levels = protocol.strata.get(site_stratum)
    return tuple(levels) if levels is not None else None


def _row_user(row) -> User:
    return User(
        name=row["name"],
        role=row["role"],
        sites=tuple(json.loads(row["sites"])),
        disabled=bool(row["disabled"]),
        session_epoch=int(row["session_epoch"]),
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    """Users, tokens and throttling over a registry's database.

    Parameters
    ----------
    registry : rjtrial.registry.Registry
        Its engine holds the tables; its audit log records every change.
    site_stratum : str
        The protocol stratum whose levels are sites (default ``site``).
    policy : ThrottlePolicy
    """

    def __init__(self, registry, *, site_stratum: str = SITE_STRATUM, policy: ThrottlePolicy | None = None):
        self.registry = registry
        self.engine = registry._engine
        self.site_stratum = site_stratum
        self.policy = policy or ThrottlePolicy()
        ensure_tables(self.engine)

    # ------------------------------------------------------------------ users
    def add(self, name: str, *, role: str, sites: Iterable[str] = (), password: str | None = None,
            by: str = "cli") -> User:
        """Add a user; coordinators need at least one site of the protocol."""
        check_name(name)
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}; got {role!r}")
        sites = tuple(dict.fromkeys(sites))
        levels = site_levels(self.registry.protocol, self.site_stratum)
        if sites and levels is None:
            raise AccountError(f"the protocol has no {self.site_stratum!r} stratum: --site cannot be used")
        unknown = [s for s in sites if s not in (levels or ())]
        if unknown:
            raise AccountError(f"unknown site(s) {', '.join(map(repr, unknown))} (sites: {', '.join(levels or ())})")
        if role == "coordinator" and levels is not None and not sites:
            raise AccountError(f"a coordinator needs at least one --site (sites: {', '.join(levels)})")
        if role != "coordinator" and sites:
            raise AccountError(f"only coordinators have sites; a {role} sees every site")
        password_hash = "" if password is None else _hasher.hash(check_password(password))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(users).values(
                    name=name, role=role, sites=json.dumps(list(sites)), password_hash=password_hash,
                    disabled=0, session_epoch=0, created_at=time.time(),
                ))
        except IntegrityError:
            raise AccountError(f"user {name!r} already exists") from None
        self.registry.record_access("user_added", by=by, detail={"user": name, "role": role, "sites": list(sites)})
        return self._require(name)

    def get(self, name: str) -> User | None:
        if not isinstance(name, str) or not _NAME.match(name):
            return None
        with store.read_transaction(self.engine) as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return None if row is None else _row_user(row)

    def list(self) -> list[User]:
        with store.read_transaction(self.engine) as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
        return [_row_user(r) for r in rows]

    def _require(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise AccountError(f"no user {name!r}")
        return user

    def set_password(self, name: str, password: str, *, by: str = "cli") -> None:
        self._require(name)
        password_hash = _hasher.hash(check_password(password))
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(
                password_hash=password_hash, session_epoch=users.c.session_epoch + 1))
        self.registry.record_access("user_password", by=by, detail={"user": name})

    def disable(self, name: str, *, by: str = "cli") -> None:
        """Disable an account: its sessions end and its API tokens stop working."""
        self._require(name)
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(
                disabled=1, session_epoch=users.c.session_epoch + 1))
            conn.execute(update(tokens).where(tokens.c.user_name == name).values(revoked=1))
        self.registry.record_access("user_disabled", by=by, detail={"user": name})

    def enable(self, name: str, *, by: str = "cli") -> None:
        """Re-enable a disabled account (its old API tokens stay revoked: issue new ones)."""
        self._require(name)
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(disabled=0))
        self.registry.record_access("user_enabled", by=by, detail={"user": name})

    def end_sessions(self, name: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(users).where(users.c.name == name).values(session_epoch=users.c.session_epoch + 1))

    # ------------------------------------------------------------- passwords
    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is right and the account active, else None.

        Takes the same Argon2 time whether or not the user exists.
        """
        user_row = None
        if isinstance(name, str) and _NAME.match(name):
            with store.read_transaction(self.engine) as conn:
                user_row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        stored = user_row["password_hash"] if user_row is not None and user_row["password_hash"] else _DUMMY_HASH
        ok: bool
        try:
            ok = _hasher.verify(stored, password if isinstance(password, str) else "")
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeError):
            ok = False
        if not ok or user_row is None or stored is _DUMMY_HASH or user_row["disabled"]:
            return None
        if _hasher.check_needs_rehash(stored):
            with self.engine.begin() as conn:
                conn.execute(update(users).where(users.c.name == name).values(password_hash=_hasher.hash(password)))
        return _row_user(user_row)

    # ----------------------------------------------------------------- tokens
    def issue_token(self, name: str, *, by: str = "cli") -> str:
        """A new API token for an active user; returned once, only its SHA-256 is kept."""
        user = self._require(name)
        if user.disabled:
            raise AccountError(f"user {name!r} is disabled")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(insert(tokens).values(token_hash=_sha256(token), user_name=name,
                                               created_at=time.time(), revoked=0))
        self.registry.record_access("token_issued", by=by, detail={"user": name, "token": _sha256(token)[:12]})
        return token

    def tokens(self, name: str) -> builtins.list[dict]:  # builtins: Accounts.list is a method
        """A user's API tokens: ``id`` (first 12 hex digits of the SHA-256, as in the audit
        log), ``created_at`` (Unix time) and ``revoked``; never the tokens themselves."""
        self._require(name)
        with store.read_transaction(self.engine) as conn:
            rows = conn.execute(select(tokens).where(tokens.c.user_name == name)
                                .order_by(tokens.c.created_at)).mappings().all()
        return [{"id": r["token_hash"][:12], "created_at": r["created_at"], "revoked": bool(r["revoked"])}
                for r in rows]

    def revoke_token(self, name: str, token_id: str, *, by: str = "cli") -> None:
        """Revoke one of a user's tokens by its id (see :meth:`tokens`)."""
        self._require(name)
        if not isinstance(token_id, str) or not re.fullmatch(r"[0-9a-f]{6,64}", token_id):
            raise AccountError(f"token id {token_id!r} must be hexadecimal (see `rjtrial users tokens {name}`)")
        with store.read_transaction(self.engine) as conn:
            matches = conn.execute(select(tokens.c.token_hash).where(
                tokens.c.user_name == name, tokens.c.token_hash.startswith(token_id))).scalars().all()
        if len(matches) != 1:
            raise AccountError(f"{'no' if not matches else 'more than one'} token of {name!r} has id {token_id!r}")
        with self.engine.begin() as conn:
            conn.execute(update(tokens).where(tokens.c.token_hash == matches[0]).values(revoked=1))
        self.registry.record_access("token_revoked", by=by, detail={"user": name, "token": matches[0][:12]})

    def user_for_token(self, token: str) -> User | None:
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        with store.read_transaction(self.engine) as conn:
            row = conn.execute(
                select(users).join(tokens, tokens.c.user_name == users.c.name).where(
                    tokens.c.token_hash == _sha256(token), tokens.c.revoked == 0, users.c.disabled == 0)
            ).mappings().first()
        return None if row is None else _row_user(row)

    # ------------------------------------------------------------- throttling
    def _throttle_keys(self, name: str, address: str) -> builtins.list[tuple[str, int]]:
        return [(_sha256(f"user|{name}|{address}"), self.policy.failures),
                (_sha256(f"address|{address}"), 10 * self.policy.failures)]

    def locked(self, name: str, address: str) -> bool:
        """Whether log-ins for this name from this address are locked now."""
        now = time.time()
        hashes = [k for k, _ in self._throttle_keys(name, address)]
        with store.read_transaction(self.engine) as conn:
            rows = conn.execute(select(throttle.c.locked_until).where(throttle.c.key.in_(hashes))).all()
        return any(r.locked_until > now for r in rows)

    def record_failure(self, name: str, address: str) -> bool:
        """Count a failed log-in; True when it has just locked the name or the address."""
        try:
            return self._record_failure(name, address)
        except IntegrityError:  # another process inserted the same counter meanwhile
            return self._record_failure(name, address)

    def _record_failure(self, name: str, address: str) -> bool:
        now = time.time()
        newly_locked = False
        with self.engine.begin() as conn:
            for key, limit in self._throttle_keys(name, address):
                row = conn.execute(select(throttle).where(throttle.c.key == key)).mappings().first()
                if row is None:
                    failures, start, locked_until = 0, now, 0.0
                    conn.execute(insert(throttle).values(key=key, failures=0, window_start=now, locked_until=0.0))
                else:
                    failures, start, locked_until = row["failures"], row["window_start"], row["locked_until"]
                if now - start > self.policy.window:
                    failures, start = 0, now
                failures += 1
                if failures >= limit and locked_until <= now:
                    locked_until, failures, newly_locked = now + self.policy.lockout, 0, True
                conn.execute(update(throttle).where(throttle.c.key == key).values(
                    failures=failures, window_start=start, locked_until=locked_until))
        return newly_locked

    def clear_failures(self, name: str, address: str) -> None:
        key = self._throttle_keys(name, address)[0][0]
        with self.engine.begin() as conn:
            conn.execute(delete(throttle).where(throttle.c.key == key))

    # ------------------------------------------------- one-time enrolment forms
    def issue_form(self, user: User) -> str:
        """A one-time token for an enrolment form (kept for a day)."""
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(delete(submissions).where(submissions.c.issued_at < now - 86400))
            conn.execute(insert(submissions).values(token_hash=_sha256(token), user_name=user.name,
                                                    issued_at=now, state="issued", result=""))
        return token

    def claim_form(self, user: User, token: str) -> tuple[str, dict | None]:
        """Claim a form token: ("claimed", None), ("done", result), ("pending", None) or ("unknown", None)."""
        if not isinstance(token, str) or len(token) > 100:
            return "unknown", None
        key = _sha256(token)
        with self.engine.begin() as conn:
            claimed = conn.execute(update(submissions).where(
                submissions.c.token_hash == key, submissions.c.user_name == user.name,
                submissions.c.state == "issued").values(state="pending")).rowcount
            if claimed == 1:
                return "claimed", None
            row = conn.execute(select(submissions).where(
                submissions.c.token_hash == key, submissions.c.user_name == user.name)).mappings().first()
        if row is None:
            return "unknown", None
        if row["state"] == "done":
            return "done", json.loads(row["result"])
        return "pending", None

    def form_state(self, user: User, token: str) -> tuple[str, dict | None]:
        """A claimed form's state without claiming it: ("done", result), ("pending" or "issued", None)."""
        with store.read_transaction(self.engine) as conn:
            row = conn.execute(select(submissions).where(
                submissions.c.token_hash == _sha256(token), submissions.c.user_name == user.name)).mappings().first()
        if row is None:
            return "unknown", None
        return row["state"], json.loads(row["result"]) if row["state"] == "done" else None

    def finish_form(self, token: str, result: dict | None) -> None:
        """Store a claimed form's result (None: release it for another try)."""
        key = _sha256(token)
        with self.engine.begin() as conn:
            if result is None:
                conn.execute(update(submissions).where(submissions.c.token_hash == key).values(state="issued"))
            else:
                conn.execute(update(submissions).where(submissions.c.token_hash == key).values(
                    state="done", result=json.dumps(result)))
