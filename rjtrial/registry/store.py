"""The registry's storage: SQLAlchemy tables and transactions, SQLite or PostgreSQL.

One schema serves both back ends. Every write runs in :func:`write_transaction`,
which serialises writers: on SQLite by ``BEGIN IMMEDIATE`` (the write lock is taken
before anything is read), on PostgreSQL by ``SELECT ... FOR UPDATE`` on the single
``head`` row. Inside it a writer reads the current head, decides, writes and commits;
a crash at any point leaves the previous committed state (SQLite's WAL journal and
PostgreSQL's transactions are atomic and durable).
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Iterator

from sqlalchemy import (
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from rjtrial.errors import RegistryError

# 2: audit signatures (Ed25519), normalised referral ids, keyed draws. Stores of schema 1
# (no trial has run on one) are not read.
SCHEMA_VERSION = 2

metadata = MetaData()

trial = Table(
    "rj_trial",
    metadata,
    Column("id", String(100), primary_key=True),
    Column("schema_version", Integer, nullable=False),
    Column("protocol", Text, nullable=False),  # canonical JSON of Protocol.to_dict()
    Column("schedule", Text, nullable=False),  # public schedule record (no seed)
    Column("sealed", Text, nullable=False),  # AES-256-GCM ciphertext, base64
    Column("commitment", String(64), nullable=False),
    Column("created_at", String(40), nullable=False),
    Column("audit_public_key", String(64), nullable=False),  # Ed25519 key that checks audit signatures
)

slots = Table(
    "rj_slots",
    metadata,
    Column("sequence_key", String(400), primary_key=True),
    Column("slot", Integer, primary_key=True),
    Column("commitment", String(64), nullable=False),
)

referrals = Table(
    "rj_referrals",
    metadata,
    Column("referral_id", String(100), primary_key=True),
    # the id normalised (case-folded): one referral, however its id is typed
    Column("referral_key", String(100), nullable=False, unique=True),
    Column("status", String(20), nullable=False),  # randomised | ineligible
    Column("at", String(40), nullable=False),
    Column("by", String(100), nullable=False),
    Column("strata", Text, nullable=False),
    Column("answers", Text, nullable=False),
    Column("reasons", Text, nullable=False),
    Column("sequence_number", Integer, unique=True),
    Column("sequence_key", String(400)),
    Column("slot", Integer),
    Column("arm", String(100)),
    Column("value", String(64)),  # the committed value: arm name, or the draw (float.hex)
    Column("reveal", String(64)),  # the slot's nonce, revealed when the slot is used
    Column("receipt", String(40), nullable=False),
    Column("audit_seq", Integer, nullable=False, unique=True),
    UniqueConstraint("sequence_key", "slot", name="uq_rj_referrals_slot"),
)

events = Table(
    "rj_events",
    metadata,
    Column("audit_seq", Integer, primary_key=True, autoincrement=False),
    Column("referral_id", String(100), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at", String(40), nullable=False),
    Column("by", String(100), nullable=False),
)

audit = Table(
    "rj_audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("mac", String(64), nullable=False),  # HMAC of the hash under the trial key
    Column("signature", String(128), nullable=False),  # Ed25519 signature of the hash ("" if written without the key)
)
Index("ix_rj_audit_action", audit.c.action)  # enrolment asks whether the log holds an unseal entry

# Erasable personal data (free text, names) of enrolments and events: the audit entry holds only a
# salted digest of it, so erasing it under the retention policy leaves the chain verifiable
# (rjtrial.registry.retention). Created with the registry, or on first use in an older store.
personal = Table(
    "rj_personal",
    metadata,
    Column("audit_seq", Integer, primary_key=True, autoincrement=False),  # the enrolment or event entry
    Column("referral_id", String(100), nullable=False),
    Column("fields", Text),  # canonical JSON of the fields; NULL once erased
    Column("salt", String(64)),  # NULL once erased
    Column("erased_by", Integer),  # the erasure's audit entry
)

head = Table(
    "rj_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("audit_seq", Integer, nullable=False),
    Column("audit_hash", String(64), nullable=False),
    Column("sequence_number", Integer, nullable=False),
    Column("last_randomised_at", String(40), nullable=False),
    Column("closed", Integer, nullable=False),  # 1 once unsealed
)


def database_url(db: str | Path) -> str:
    """A SQLAlchemy URL for ``db``: a URL is used as given, anything else is a SQLite file."""
    text = str(db)
    if "://" in text:
        return text
    return f"sqlite:///{Path(text).expanduser().resolve()}"


def is_sqlite(db: str | Path) -> bool:
    """True when ``db`` is a SQLite file or a SQLite URL."""
    return database_url(db).startswith("sqlite")


def sqlite_path(db: str | Path) -> Path | None:
    """The file of a SQLite registry, or None for another database (or an in-memory SQLite one)."""
    url = database_url(db)
    return Path(url[len("sqlite:///") :]) if url.startswith("sqlite:///") else None


def make_engine(db: str | Path) -> Engine:
    """Create the engine, with SQLite set up for safe concurrent writers."""
    url = database_url(db)
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise RegistryError(f"cannot use database {_redact(url)}: {exc}") from None
    except ModuleNotFoundError as exc:
        raise RegistryError(
            f"cannot use database {_redact(url)}: driver not installed ({exc.name}); "
            "for PostgreSQL install rjtrial[postgres]"
        ) from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection, _record):
            dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 120000")
            cursor.execute("PRAGMA synchronous = FULL")
            try:
                cursor.execute("PRAGMA journal_mode = WAL")
            except Exception:  # a read-only file keeps its journal mode
                pass
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection):
            if connection.get_execution_options().get("rjtrial_read"):
                connection.exec_driver_sql("BEGIN")
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _redact(url: str) -> str:
    """The URL without its password, for error messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url


@contextlib.contextmanager
def write_transaction(engine: Engine) -> Iterator[tuple[Connection, dict]]:
    """A serialised write transaction; yields the connection and the locked head row.

    Commits when the block ends normally, rolls back on any exception. On SQLite, threads
    of one process (the web service's workers) first queue on a lock of their own:
    SQLite's busy handler sleeps and retries, so the thread that just committed would
    often take the write lock again at once and a waiting one starve for seconds.
    """
    with _process_lock(engine):
        yield from _write_transaction(engine)


_SQLITE_LOCKS: dict[str, threading.Lock] = {}
_SQLITE_LOCKS_GUARD = threading.Lock()


@contextlib.contextmanager
def _process_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "sqlite":
        yield
        return
    name = str(engine.url)
    with _SQLITE_LOCKS_GUARD:
        lock = _SQLITE_LOCKS.setdefault(name, threading.Lock())
    with lock:
        yield


def _write_transaction(engine: Engine) -> Iterator[tuple[Connection, dict]]:
    try:
        with engine.begin() as conn:
            row = conn.execute(select(head).where(head.c.id == 1).with_for_update()).mappings().first()
            if row is None:
                raise RegistryError("the registry store is not initialised (no head row)")
            yield conn, dict(row)
    except OperationalError as exc:
        raise RegistryError(f"database error: {_first_line(exc)}") from None


@contextlib.contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A consistent read-only snapshot (deferred transaction on SQLite)."""
    try:
        with engine.connect().execution_options(rjtrial_read=True) as conn:
            with conn.begin():
                yield conn
    except OperationalError as exc:
        raise RegistryError(f"database error: {_first_line(exc)}") from None


def _first_line(exc: SQLAlchemyError) -> str:
    return str(getattr(exc, "orig", exc)).splitlines()[0]


def has_registry(engine: Engine) -> bool:
    """True when the database holds a registry (its trial table exists)."""
    from sqlalchemy import inspect

    try:
        return inspect(engine).has_table(trial.name)
    except OperationalError as exc:
        raise RegistryError(f"cannot open database: {_first_line(exc)}") from None
