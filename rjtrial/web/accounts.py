"""Accounts of the randomisation service: users, roles, passwords, API tokens, throttling.

Users and tokens are kept by :class:`rjtrial.registry.accounts.AccountStore` in
tables ``rj_web_users`` and ``rj_web_tokens`` of the registry's own database
(SQLite or PostgreSQL), and every change to them is a signed entry of the audit
log, written in the same transaction, that ``verify`` replays against the tables.
An account change therefore needs the registry opened with the trial key.

* Passwords are stored as Argon2id hashes (``argon2-cffi`` defaults); a password has
  at least :data:`MIN_PASSWORD_LENGTH` characters. A new password ends the user's
  sessions and, unless asked otherwise (``keep_tokens=True``), revokes their API
  tokens.
* API tokens are 32 random bytes (``rjt_`` + URL-safe base64), shown once; only their
  SHA-256 is stored.
* Log-in throttling (:mod:`rjtrial.web.throttle`): after ``failures`` failed log-ins
  for one user name from one address within ``window`` seconds, that pair is locked
  for ``lockout`` seconds (even the right password is refused); after
  ``10 * failures`` failures from one address, the address is locked. Defaults 5, 900
  and 900 (:class:`ThrottlePolicy`). Guesses are reserved before they are checked,
  so parallel requests never check more than that.
* Each user has a ``session_epoch``: logging out, a new password or disabling the
  account increments it, which ends every session signed with the old value.

Failed log-ins are not audit entries: they are counted in the bounded security log
(:mod:`rjtrial.web.securitylog`).
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
from sqlalchemy import Column, Float, MetaData, String, Table, Text, delete, insert, select, update

from rjtrial.registry.accounts import (  # noqa: F401 - re-exported: part of this module's public names
    ROLES,
    AccountError,
    AccountStore,
    check_name,
    tokens,
    users,
    valid_name,
)
from rjtrial.web.throttle import Throttle, ThrottlePolicy  # noqa: F401 - ThrottlePolicy re-exported

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 1024
TOKEN_PREFIX = "rjt_"
SITE_STRATUM = "site"

metadata = MetaData()

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


@dataclass(frozen=True)
class User:
    """An account of the service: name, role, sites, whether disabled, and its session epoch."""

    name: str
    role: str
    sites: tuple[str, ...]
    disabled: bool
    session_epoch: int
    email: str = ""

    def may_see_site(self, site: str | None) -> bool:
        """Coordinators see their own sites only; managers every site."""
        if self.role == "manager":
            return True
        if self.role != "coordinator":
            return False
        return site is None or site in self.sites

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "role": self.role,
            "sites": list(self.sites),
            "disabled": self.disabled,
            "email": self.email,
        }


@dataclass(frozen=True)
class LoginOutcome:
    """What :meth:`Accounts.log_in` decided: ``status`` "ok" (``user`` set), "failed"
    (wrong name or password; ``just_locked`` when this failure began a lock) or "locked"
    (refused without checking the password)."""

    status: str
    user: "User | None" = None
    just_locked: bool = False
    known: bool = False  # the name is an existing account's


def ensure_tables(tables) -> None:
    """Create the service's own tables (one-time forms) if missing (idempotent); the account
    tables are created by :class:`~rjtrial.registry.accounts.AccountStore`."""
    tables.create(metadata)


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


def _user(row: dict) -> User:
    return User(
        name=row["name"],
        role=row["role"],
        sites=tuple(row["sites"]),
        disabled=bool(row["disabled"]),
        session_epoch=int(row["session_epoch"]),
        email=row.get("email", "") or "",
    )


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Accounts:
    """Users, tokens and throttling over a registry's database.

    Parameters
    ----------
    registry : rjtrial.registry.Registry
        Its database holds the tables; its audit log records every change (which
        needs the registry opened with the key).
    site_stratum : str
        The protocol stratum whose levels are sites (default ``site``).
    policy : ThrottlePolicy
    """

    def __init__(self, registry, *, site_stratum: str = SITE_STRATUM, policy: ThrottlePolicy | None = None):
        self.registry = registry
        self.store = AccountStore(registry)
        self.tables = self.store.service_tables()
        self.site_stratum = site_stratum
        self.policy = policy or ThrottlePolicy()
        ensure_tables(self.tables)
        self._throttle: Throttle | None = None

    @property
    def throttle(self) -> Throttle:
        if self._throttle is None:
            self._throttle = Throttle(self.tables, self.policy, self.store.derived_secret("throttle"))
        return self._throttle

    # ------------------------------------------------------------------ users
    def add(
        self,
        name: str,
        *,
        role: str,
        sites: Iterable[str] = (),
        password: str | None = None,
        email: str = "",
        by: str = "cli",
    ) -> User:
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
        self.store.add_user(name, role=role, sites=sites, password_hash=password_hash, email=email, by=by)
        return self._require(name)

    def get(self, name: str) -> User | None:
        row = self.store.user(name)
        return None if row is None else _user(row)

    def list(self) -> list[User]:
        return [_user(r) for r in self.store.users()]

    def _require(self, name: str) -> User:
        user = self.get(name)
        if user is None:
            raise AccountError(f"no user {name!r}")
        return user

    def set_password(
        self, name: str, password: str, *, by: str = "cli", keep_tokens: bool = False
    ) -> builtins.list[str]:
        """Set a new password: ends the user's sessions and revokes their API tokens
        (unless ``keep_tokens``). Returns the ids of the tokens revoked."""
        self._require(name)
        password_hash = _hasher.hash(check_password(password))
        return self.store.set_password_hash(name, password_hash, by=by, revoke_tokens=not keep_tokens)

    def set_email(self, name: str, email: str, *, by: str = "cli") -> None:
        """Set (or clear, with "") the address receipts are e-mailed to."""
        self.store.set_email(name, email, by=by)

    def disable(self, name: str, *, by: str = "cli") -> None:
        """Disable an account: its sessions end and its API tokens stop working."""
        self.store.set_disabled(name, True, by=by)

    def enable(self, name: str, *, by: str = "cli") -> None:
        """Re-enable a disabled account (its old API tokens stay revoked: issue new ones)."""
        self.store.set_disabled(name, False, by=by)

    def end_sessions(self, name: str) -> None:
        self.store.end_sessions(name)

    # ------------------------------------------------------------- passwords
    def authenticate(self, name: str, password: str) -> User | None:
        """The user if the password is right and the account active, else None.

        Takes the same Argon2 time whether or not the user exists. Not throttled:
        the service calls :meth:`log_in`.
        """
        row = self.store.user(name) if valid_name(name) else None
        stored = row["password_hash"] if row is not None and row["password_hash"] else _DUMMY_HASH
        ok: bool
        try:
            ok = _hasher.verify(stored, password if isinstance(password, str) else "")
        except (VerifyMismatchError, VerificationError, InvalidHashError, UnicodeError):
            ok = False
        if not ok or row is None or stored is _DUMMY_HASH or row["disabled"]:
            return None
        if _hasher.check_needs_rehash(stored) and self.registry.has_key:
            self.store.set_password_hash(name, _hasher.hash(password), by=name, revoke_tokens=False, reason="rehash")
        return _user(row)

    def log_in(self, name: str, password: str, address: str) -> LoginOutcome:
        """Check a log-in under the throttle: at most ``policy.failures`` guesses per name
        and address (and ``10 *`` per address) are ever checked within a window."""
        known = self.get(name) is not None if valid_name(name) else False
        if self.throttle.locked(name, address) or not self.throttle.begin(name, address):
            return LoginOutcome("locked", known=known)
        user = None
        try:
            if valid_name(name) and isinstance(password, str) and len(password) <= MAX_PASSWORD_LENGTH:
                user = self.authenticate(name, password)
        finally:
            just_locked = self.throttle.end(name, address, succeeded=user is not None)
        if user is None:
            return LoginOutcome("failed", just_locked=just_locked, known=known)
        return LoginOutcome("ok", user=user, known=True)

    # ----------------------------------------------------------------- tokens
    def issue_token(self, name: str, *, by: str = "cli") -> str:
        """A new API token for an active user; returned once, only its SHA-256 is kept."""
        self._require(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.store.add_token(name, _sha256(token), by=by)
        return token

    def tokens(self, name: str) -> builtins.list[dict]:  # builtins: Accounts.list is a method
        """A user's API tokens: ``id`` (first 12 hex digits of the SHA-256, as in the audit
        log), ``created_at`` (Unix time) and ``revoked``; never the tokens themselves."""
        self._require(name)
        return [
            {"id": r["token_hash"][:12], "created_at": r["created_at"], "revoked": bool(r["revoked"])}
            for r in self.store.tokens(name)
        ]

    def revoke_token(self, name: str, token_id: str, *, by: str = "cli") -> None:
        """Revoke one of a user's tokens by its id (see :meth:`tokens`)."""
        self._require(name)
        if not isinstance(token_id, str) or not re.fullmatch(r"[0-9a-f]{6,64}", token_id):
            raise AccountError(f"token id {token_id!r} must be hexadecimal (see `rjtrial users tokens {name}`)")
        matches = [r["token_hash"] for r in self.store.tokens(name) if r["token_hash"].startswith(token_id)]
        if len(matches) != 1:
            raise AccountError(f"{'no' if not matches else 'more than one'} token of {name!r} has id {token_id!r}")
        self.store.revoke_token(name, matches[0], by=by)

    def user_for_token(self, token: str) -> User | None:
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        row = self.store.user_for_token_hash(_sha256(token))
        return None if row is None else _user(row)

    # ------------------------------------------------------------- throttling
    def locked(self, name: str, address: str) -> bool:
        """Whether log-ins for this name from this address are locked now."""
        return self.throttle.locked(name, address)

    def record_failure(self, name: str, address: str) -> bool:
        """Count one failed log-in (a guess reserved and checked wrong); True when it has
        just locked the name or the address. :meth:`log_in` does this itself."""
        if not self.throttle.begin(name, address):
            return False
        return self.throttle.end(name, address, succeeded=False)

    def clear_failures(self, name: str, address: str) -> None:
        self.throttle.clear(name, address)

    # ------------------------------------------------- one-time enrolment forms
    def issue_form(self, user: User) -> str:
        """A one-time token for an enrolment form (kept for a day)."""
        token = secrets.token_urlsafe(24)
        now = time.time()
        with self.tables.write() as conn:
            conn.execute(delete(submissions).where(submissions.c.issued_at < now - 86400))
            conn.execute(
                insert(submissions).values(
                    token_hash=_sha256(token), user_name=user.name, issued_at=now, state="issued", result=""
                )
            )
        return token

    def claim_form(self, user: User, token: str) -> tuple[str, dict | None]:
        """Claim a form token: ("claimed", None), ("done", result), ("pending", None) or ("unknown", None)."""
        if not isinstance(token, str) or len(token) > 100:
            return "unknown", None
        key = _sha256(token)
        with self.tables.write() as conn:
            claimed = conn.execute(
                update(submissions)
                .where(
                    submissions.c.token_hash == key,
                    submissions.c.user_name == user.name,
                    submissions.c.state == "issued",
                )
                .values(state="pending")
            ).rowcount
            if claimed == 1:
                return "claimed", None
            row = (
                conn.execute(
                    select(submissions).where(submissions.c.token_hash == key, submissions.c.user_name == user.name)
                )
                .mappings()
                .first()
            )
        if row is None:
            return "unknown", None
        if row["state"] == "done":
            return "done", json.loads(row["result"])
        return "pending", None

    def form_state(self, user: User, token: str) -> tuple[str, dict | None]:
        """A claimed form's state without claiming it: ("done", result), ("pending" or "issued", None)."""
        with self.tables.read() as conn:
            row = (
                conn.execute(
                    select(submissions).where(
                        submissions.c.token_hash == _sha256(token), submissions.c.user_name == user.name
                    )
                )
                .mappings()
                .first()
            )
        if row is None:
            return "unknown", None
        return row["state"], json.loads(row["result"]) if row["state"] == "done" else None

    def finish_form(self, token: str, result: dict | None) -> None:
        """Store a claimed form's result (None: release it for another try)."""
        key = _sha256(token)
        with self.tables.write() as conn:
            if result is None:
                conn.execute(update(submissions).where(submissions.c.token_hash == key).values(state="issued"))
            else:
                conn.execute(
                    update(submissions)
                    .where(submissions.c.token_hash == key)
                    .values(state="done", result=json.dumps(result))
                )
