"""Log-in throttling that parallel requests cannot beat.

Two counters are kept for every log-in attempt: one for the pair (user name,
address) with limit ``failures``, one for the address alone with limit
``10 * failures``. A guess is *reserved* before its password is checked, in one
write transaction over both counters (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL:
``SELECT ... FOR UPDATE`` on the counter rows; within one process, also a lock):

* refused when a counter is locked, or when its failures plus the guesses still
  being checked (``pending``) have reached its limit;
* otherwise ``pending`` + 1, and the password is checked.

When the check ends, ``pending`` - 1; a wrong password adds a failure, and the
failure that reaches the limit locks the counter for ``lockout`` seconds (even
the right password is then refused). So however many requests arrive at once,
at most ``failures`` guesses per name and address — and ``10 * failures`` per
address — are ever checked within a window. A success clears the name's
counter. Failures older than ``window`` seconds are forgotten, and so is a
pending guess older than :data:`STALE_PENDING` seconds (its server died).

Counter keys are HMAC-SHA-256 of the name and address under a secret derived
from the trial key: a password typed into the user-name box is never stored
in a form that can be guessed at.

Behind a reverse proxy, set ``[web] trusted_proxies``: otherwise every request
comes from the proxy's address, and 50 failures by anyone lock out everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, delete, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError, OperationalError

from rjtrial.errors import RegistryError
from rjtrial.registry.accounts import ServiceTables

STALE_PENDING = 60.0
ADDRESS_FACTOR = 10

metadata = MetaData()

throttle = Table(
    "rj_web_throttle",
    metadata,
    Column("key", String(64), primary_key=True),  # HMAC of "user|name|address" or "address|address"
    Column("failures", Integer, nullable=False),
    Column("window_start", Float, nullable=False),
    Column("locked_until", Float, nullable=False),
    Column("pending", Integer, nullable=False),  # guesses being checked now
    Column("pending_at", Float, nullable=False),
)


@dataclass(frozen=True)
class ThrottlePolicy:
    """Log-in throttling: ``failures`` within ``window`` seconds lock for ``lockout`` seconds."""

    failures: int = 5
    window: float = 900.0
    lockout: float = 900.0


def ensure_table(tables: ServiceTables) -> None:
    """Create the counter table; an older one (unkeyed SHA-256 keys, no ``pending``) is replaced."""
    names = set(inspect(tables.engine).get_table_names())
    if throttle.name in names:
        columns = {c["name"] for c in inspect(tables.engine).get_columns(throttle.name)}
        if "pending" not in columns:  # counters are transient: start afresh
            with tables.write() as conn:
                conn.exec_driver_sql(f"DROP TABLE {throttle.name}")
    tables.create(metadata)


class Throttle:
    """The counters of one database (see the module docstring).

    Parameters
    ----------
    tables : rjtrial.registry.accounts.ServiceTables
        The database of the counters (the registry's, or a multi-trial server's).
    policy : ThrottlePolicy
    secret : bytes or None
        Keys the counter names; None draws one for this process (then several server
        processes do not share counters: give the trial key's derived secret).
    """

    def __init__(self, tables: ServiceTables, policy: ThrottlePolicy, secret: bytes | None):
        self.tables = tables
        self.policy = policy
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._calls = 0
        ensure_table(tables)

    def _keys(self, name: str, address: str) -> list[tuple[str, int]]:
        def keyed(text: str) -> str:
            return hmac.new(self._secret, text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()

        return [
            (keyed(f"user|{name}|{address}"), self.policy.failures),
            (keyed(f"address|{address}"), ADDRESS_FACTOR * self.policy.failures),
        ]

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """``work(conn)`` in one serialised write transaction; run again when a concurrent
        process inserted the same counter first (PostgreSQL), at most three times."""
        for attempt in range(3):
            try:
                with self._lock, self.tables.write() as conn:
                    return work(conn)
            except IntegrityError:
                if attempt == 2:
                    raise
            except OperationalError as exc:
                raise RegistryError(f"database error: {str(getattr(exc, 'orig', exc)).splitlines()[0]}") from None

    def _rows(self, conn, keys: list[tuple[str, int]], now: float) -> dict[str, dict]:
        wanted = [k for k, _ in keys]
        rows = {
            r["key"]: dict(r)
            for r in conn.execute(
                select(throttle).where(throttle.c.key.in_(wanted)).order_by(throttle.c.key).with_for_update()
            ).mappings()
        }
        for key in wanted:
            if key not in rows:
                conn.execute(
                    insert(throttle).values(
                        key=key, failures=0, window_start=now, locked_until=0.0, pending=0, pending_at=0.0
                    )
                )
                rows[key] = {
                    "key": key,
                    "failures": 0,
                    "window_start": now,
                    "locked_until": 0.0,
                    "pending": 0,
                    "pending_at": 0.0,
                }
        for row in rows.values():
            if now - row["window_start"] > self.policy.window:
                row["failures"], row["window_start"] = 0, now
            if row["pending"] and now - row["pending_at"] > STALE_PENDING:
                row["pending"] = 0
        return rows

    @staticmethod
    def _save(conn, row: dict) -> None:
        conn.execute(
            update(throttle)
            .where(throttle.c.key == row["key"])
            .values(
                failures=row["failures"],
                window_start=row["window_start"],
                locked_until=row["locked_until"],
                pending=row["pending"],
                pending_at=row["pending_at"],
            )
        )

    # ------------------------------------------------------------------ public
    def locked(self, name: str, address: str) -> bool:
        """Whether log-ins for this name from this address are locked now (a read)."""
        now = time.time()
        wanted = [k for k, _ in self._keys(name, address)]
        with self.tables.read() as conn:
            rows = conn.execute(select(throttle.c.locked_until).where(throttle.c.key.in_(wanted))).all()
        return any(r.locked_until > now for r in rows)

    def begin(self, name: str, address: str) -> bool:
        """Reserve one guess; False: locked, or the limit is taken by failures and guesses in progress."""
        now = time.time()
        keys = self._keys(name, address)
        self._tidy(now)

        def work(conn) -> bool:
            rows = self._rows(conn, keys, now)
            if any(
                rows[k]["locked_until"] > now or rows[k]["failures"] + rows[k]["pending"] >= limit for k, limit in keys
            ):
                return False
            for key, _ in keys:
                rows[key]["pending"] += 1
                rows[key]["pending_at"] = now
                self._save(conn, rows[key])
            return True

        return self._run(work)

    def end(self, name: str, address: str, *, succeeded: bool) -> bool:
        """Close a reserved guess; True when this failure has just locked the name or the address."""
        now = time.time()
        keys = self._keys(name, address)

        def work(conn) -> bool:
            newly_locked = False
            rows = self._rows(conn, keys, now)
            for index, (key, limit) in enumerate(keys):
                row = rows[key]
                row["pending"] = max(0, row["pending"] - 1)
                if succeeded:
                    if index == 0:
                        row["failures"] = 0
                else:
                    row["failures"] += 1
                    if row["failures"] >= limit and row["locked_until"] <= now:
                        row["locked_until"], row["failures"], newly_locked = now + self.policy.lockout, 0, True
                self._save(conn, row)
            return newly_locked

        return self._run(work)

    def clear(self, name: str, address: str) -> None:
        """Forget the failures of this name at this address."""
        key = self._keys(name, address)[0][0]
        self._run(
            lambda conn: conn.execute(
                update(throttle).where(throttle.c.key == key).values(failures=0, locked_until=0.0)
            )
        )

    def _tidy(self, now: float) -> None:
        """Now and then, delete counters that hold nothing any more (bounded table)."""
        self._calls += 1
        if self._calls % 100 != 1:
            return
        horizon = max(self.policy.window, self.policy.lockout, STALE_PENDING)
        self._run(
            lambda conn: conn.execute(
                delete(throttle).where(
                    throttle.c.locked_until < now,
                    throttle.c.window_start < now - horizon,
                    throttle.c.pending_at < now - STALE_PENDING,
                )
            )
        )
