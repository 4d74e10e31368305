"""The security log: failed and refused log-ins, counted and bounded, never the text typed.

Failed log-ins are not entries of the signed audit log (anyone could flood that
permanent, write-locked chain from the log-in page); they are counted here, in the
table ``rj_web_security_log`` of the registry's database:

* one row per (kind, name, address, hour) with a ``count`` and the first and last
  time; kinds: ``failed`` (wrong name or password), ``locked`` (refused: locked,
  or too many guesses already being checked), ``lockout`` (a lock began) and
  ``token_refused`` (a manager asked for another user's API token);
* ``name`` is the user's name when the account exists, otherwise ``unknown-``
  and 12 hex digits of an HMAC of the text under a secret derived from the trial
  key: a password typed into the user-name box is never stored, nor shown;
* writes are buffered in memory and flushed at most once every
  ``flush_interval`` seconds (default 1) or when :data:`MAX_PENDING` buckets
  wait: a flood of log-ins costs one short write transaction a second, not one
  per request;
* at most ``max_rows`` rows (default 10,000): when a flush would pass it, the
  oldest rows are folded into one ``(others)`` row per kind (their counts kept),
  and rows older than ``retention_hours`` (default 30 days) are deleted.

Counts are lost only for the last second before a server dies.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from rjtrial.registry.accounts import ServiceTables

KINDS = ("failed", "locked", "lockout", "token_refused")
OVERFLOW = "(others)"
MAX_PENDING = 1000

metadata = MetaData()

security_log = Table(
    "rj_web_security_log",
    metadata,
    Column("bucket", String(64), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("name", String(80), nullable=False),  # a user's name, "unknown-<digest>" or "(others)"
    Column("address", String(64), nullable=False),
    Column("hour", Integer, nullable=False),  # Unix time // 3600; -1 for the (others) rows
    Column("count", Integer, nullable=False),
    Column("first_at", Float, nullable=False),
    Column("last_at", Float, nullable=False),
)


class SecurityLog:
    """Counts of failed and refused log-ins (see the module docstring).

    Parameters
    ----------
    tables : rjtrial.registry.accounts.ServiceTables
        The database of the log (the registry's, or a multi-trial server's).
    secret : bytes or None
        Keys the digest of unknown names (None: a new secret for this process).
    max_rows, retention_hours, flush_interval : bounds (see the module docstring).
    """

    def __init__(
        self,
        tables: ServiceTables,
        secret: bytes | None,
        *,
        max_rows: int = 10_000,
        retention_hours: int = 720,
        flush_interval: float = 1.0,
    ):
        if max_rows < 2 * len(KINDS):
            raise ValueError(f"max_rows must be at least {2 * len(KINDS)}")
        self.tables = tables
        self.max_rows = max_rows
        self.retention_hours = retention_hours
        self.flush_interval = flush_interval
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._pending: dict[str, dict[str, Any]] = {}
        self._pending_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._last_flush = time.monotonic()
        tables.create(metadata)

    def display_name(self, typed: str, *, known: bool) -> str:
        """The name as stored: the user's own when the account exists, else a keyed digest."""
        if known:
            return typed[:64]
        digest = hmac.new(self._secret, typed.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
        return f"unknown-{digest[:12]}"

    def record(self, kind: str, typed_name: str, address: str, *, known: bool) -> None:
        """Count one event (buffered; flushed within ``flush_interval`` seconds)."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        now = time.time()
        name = self.display_name(typed_name, known=known)
        address = str(address)[:64]
        hour = int(now // 3600)
        bucket = hashlib.sha256(f"{kind}|{name}|{address}|{hour}".encode("utf-8", "surrogatepass")).hexdigest()
        with self._pending_lock:
            entry = self._pending.get(bucket)
            if entry is None:
                self._pending[bucket] = {
                    "kind": kind,
                    "name": name,
                    "address": address,
                    "hour": hour,
                    "count": 1,
                    "first_at": now,
                    "last_at": now,
                }
            else:
                entry["count"] += 1
                entry["last_at"] = now
            due = len(self._pending) >= MAX_PENDING or time.monotonic() - self._last_flush >= self.flush_interval
        if due:
            self.flush(wait=len(self._pending) >= MAX_PENDING)

    def flush(self, *, wait: bool = True) -> None:
        """Write the buffered counts in one transaction and enforce the bounds."""
        if not self._flush_lock.acquire(blocking=wait):
            return  # another thread is flushing
        try:
            with self._pending_lock:
                pending, self._pending = self._pending, {}
                self._last_flush = time.monotonic()
            if not pending:
                return
            for attempt in range(3):
                try:
                    with self.tables.write() as conn:
                        self._write(conn, pending)
                        self._bound(conn)
                    return
                except IntegrityError:  # another process inserted the same bucket: add again
                    if attempt == 2:
                        raise
        finally:
            self._flush_lock.release()

    @staticmethod
    def _write(conn, pending: dict[str, dict[str, Any]]) -> None:
        table = security_log
        for bucket, entry in pending.items():
            done = conn.execute(
                update(table)
                .where(table.c.bucket == bucket)
                .values(count=table.c.count + entry["count"], last_at=entry["last_at"])
            ).rowcount
            if not done:
                conn.execute(insert(table).values(bucket=bucket, **entry))

    def _bound(self, conn) -> None:
        table = security_log
        oldest_hour = int(time.time() // 3600) - self.retention_hours
        conn.execute(delete(table).where(table.c.hour >= 0, table.c.hour < oldest_hour))
        regular = conn.execute(select(func.count()).select_from(table).where(table.c.hour >= 0)).scalar()
        excess = regular - (self.max_rows - len(KINDS))
        if excess <= 0:
            return
        old = (
            conn.execute(select(table).where(table.c.hour >= 0).order_by(table.c.last_at, table.c.bucket).limit(excess))
            .mappings()
            .all()
        )
        folded: dict[str, dict[str, Any]] = {}
        for row in old:
            entry = folded.setdefault(row["kind"], {"count": 0, "first_at": row["first_at"], "last_at": row["last_at"]})
            entry["count"] += row["count"]
            entry["first_at"] = min(entry["first_at"], row["first_at"])
            entry["last_at"] = max(entry["last_at"], row["last_at"])
        conn.execute(delete(table).where(table.c.bucket.in_([r["bucket"] for r in old])))
        for kind, entry in folded.items():
            bucket = f"overflow|{kind}"
            done = conn.execute(
                update(table)
                .where(table.c.bucket == bucket)
                .values(count=table.c.count + entry["count"], last_at=entry["last_at"])
            ).rowcount  # folded rows are newer
            if not done:
                conn.execute(
                    insert(table).values(bucket=bucket, kind=kind, name=OVERFLOW, address=OVERFLOW, hour=-1, **entry)
                )

    # ------------------------------------------------------------------ reading
    def rows(self, *, limit: int = 200) -> list[dict[str, Any]]:
        """The most recent rows, newest first (after a flush)."""
        self.flush()
        with self.tables.read() as conn:
            rows = (
                conn.execute(
                    select(security_log).order_by(security_log.c.last_at.desc(), security_log.c.bucket).limit(limit)
                )
                .mappings()
                .all()
            )
        return [dict(r) for r in rows]

    def count_rows(self) -> int:
        self.flush()
        with self.tables.read() as conn:
            return int(conn.execute(select(func.count()).select_from(security_log)).scalar())

    def totals(self, *, hours: int = 24) -> dict[str, list[tuple[str, int]]]:
        """Events of the last ``hours`` per name and per address, largest first."""
        self.flush()
        since = int(time.time() // 3600) - hours
        table = security_log
        out = {}
        with self.tables.read() as conn:
            for column in ("name", "address"):
                col = table.c[column]
                total = func.sum(table.c.count).label("n")
                rows = conn.execute(
                    select(col, total).where(table.c.hour >= since).group_by(col).order_by(total.desc(), col).limit(50)
                ).all()
                out[column] = [(r[0], int(r[1])) for r in rows]
        return out
