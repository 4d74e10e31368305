"""Shared helpers for the registry tests: small protocols, enrolment streams, table dumps.

Imported by ``tests/test_registry*.py`` and ``tests/test_cli.py`` (pytest puts the
``tests`` folder on ``sys.path``). Nothing here is a test.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from rjtrial import Protocol
from rjtrial.registry import Registry

METHODS = ("simple", "blocks", "stratified_blocks", "minimisation", "biased_coin")

# Parameters each method needs beyond the common ones.
METHOD_PARAMETERS = {
    "simple": {},
    "blocks": {"block_sizes": [2, 4]},
    "stratified_blocks": {"block_sizes": [2, 4]},
    "minimisation": {"probability": 0.8, "imbalance": "range"},
    "biased_coin": {"probability": 2.0 / 3.0},
}

SITES = ("north", "south")
OFFENCES = ("property", "violence")
ALL_STRATA = tuple({"site": s, "offence": o} for s in SITES for o in OFFENCES)

ELIGIBLE = {"admitted": "yes", "risk": "suitable"}

START = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def protocol_dict(
    method: str = "stratified_blocks", *, capacity: int = 40, trial_id: str = "test-trial", **params
) -> dict:
    """A small two-arm protocol: strata site x offence, two eligibility questions."""
    randomisation = {"method": method, "capacity": capacity, **METHOD_PARAMETERS[method], **params}
    return {
        "trial": {
            "id": trial_id,
            "name": f"Test trial ({method})",
            "arms": ["control", "conference"],
            "ratio": [1, 1],
        },
        "randomisation": randomisation,
        "strata": {"site": list(SITES), "offence": list(OFFENCES)},
        "eligibility": [
            {"id": "admitted", "question": "Has the offender admitted the offence?", "eligible_if": "yes"},
            {
                "id": "risk",
                "question": "Outcome of the risk assessment",
                "answers": ["suitable", "unsuitable", "not_done"],
                "eligible_if": "suitable",
            },
        ],
    }


def make_protocol(method: str = "stratified_blocks", *, capacity: int = 40, **params) -> Protocol:
    return Protocol.from_dict(protocol_dict(method, capacity=capacity, **params))


def protocol_toml(method: str = "stratified_blocks", *, capacity: int = 40) -> str:
    """The same protocol as :func:`protocol_dict`, as TOML text (for the CLI)."""
    extra = {
        "simple": "",
        "blocks": "block_sizes = [2, 4]\n",
        "stratified_blocks": "block_sizes = [2, 4]\n",
        "minimisation": "probability = 0.8\n",
        "biased_coin": "probability = 0.6666666666666666\n",
    }[method]
    return f"""
[trial]
id = "test-trial"
name = "Test trial ({method})"
arms = ["control", "conference"]
ratio = [1, 1]

[randomisation]
method = "{method}"
capacity = {capacity}
{extra}
[strata]
site = ["north", "south"]
offence = ["property", "violence"]

[[eligibility]]
id = "admitted"
question = "Has the offender admitted the offence?"
eligible_if = "yes"

[[eligibility]]
id = "risk"
question = "Outcome of the risk assessment"
answers = ["suitable", "unsuitable", "not_done"]
eligible_if = "suitable"
"""


def when(i: int) -> datetime:
    """The i-th enrolment time of a test stream (one hour apart)."""
    return START + timedelta(hours=i)


def new_registry(
    folder: Path, protocol: Protocol | None = None, *, seed: int | None = 7, name: str = "trial"
) -> Registry:
    """Create a registry ``folder/name.db`` with key ``folder/name.key``."""
    protocol = protocol if protocol is not None else make_protocol()
    return Registry.create(folder / f"{name}.db", protocol, key_path=folder / f"{name}.key", seed=seed, by="tester")


def referral_stream(n: int, *, seed: int, prefix: str = "R", p_ineligible: float = 0.0, start: int = 0):
    """``n`` referrals (id, strata, answers, at) drawn reproducibly from ``seed``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(start, start + n):
        strata = dict(ALL_STRATA[int(rng.integers(len(ALL_STRATA)))])
        answers = dict(ELIGIBLE)
        if rng.random() < p_ineligible:
            answers["risk"] = "unsuitable"
        out.append((f"{prefix}-{i + 1:04d}", strata, answers, when(i)))
    return out


def enrol_all(registry: Registry, stream) -> list:
    return [registry.enrol(rid, strata=s, answers=a, at=at, by="tester") for rid, s, a, at in stream]


TABLES = ("rj_trial", "rj_slots", "rj_referrals", "rj_events", "rj_audit", "rj_head")


def dump_tables(db: Path) -> dict[str, list[tuple]]:
    """Every row of every registry table, read with ``sqlite3`` (not through rjtrial)."""
    with sqlite3.connect(db) as conn:
        return {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in TABLES}


def rows(db: Path, sql: str, params=()) -> list[sqlite3.Row]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def copy_db(src: Path, dst: Path) -> Path:
    """A consistent copy of a SQLite registry (backup API: includes the WAL's pages)."""
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()
    return dst


def audit_payloads(db: Path, action: str) -> list[dict]:
    return [
        json.loads(r["payload"])
        for r in rows(db, "SELECT payload FROM rj_audit WHERE action = ? ORDER BY seq", (action,))
    ]


def concurrent_worker(db: str, key: str, worker: int, n: int, out: str, ready, go) -> None:
    """One writer process of the concurrency test: open its own Registry and enrol ``n`` referrals.

    Signals ``ready`` once its imports and the open are done, waits for ``go`` so that
    all writers start together, and writes its results as JSON to ``out``. Halfway it
    also tries the referral id ``SHARED-001``, which every worker tries. The output holds
    the wall-clock start and end of its enrolments.
    """
    import time

    rng = np.random.default_rng(1000 + worker)
    results = []
    with Registry.open(db, key_path=key) as registry:
        ready.put(worker)
        go.wait(60)
        start = time.time()
        for i in range(n):
            if i == n // 2:
                result = registry.enrol(
                    "SHARED-001", strata=dict(ALL_STRATA[0]), answers=dict(ELIGIBLE), by=f"w{worker}"
                )
                results.append(result.to_dict())
            strata = dict(ALL_STRATA[int(rng.integers(len(ALL_STRATA)))])
            answers = dict(ELIGIBLE) if rng.random() > 0.1 else {"admitted": "no", "risk": "suitable"}
            result = registry.enrol(f"W{worker}-{i:03d}", strata=strata, answers=answers, by=f"w{worker}")
            results.append(result.to_dict())
        end = time.time()
    Path(out).write_text(json.dumps({"start": start, "end": end, "results": results}))


KILL_WRITER = r"""
import sys
from rjtrial.registry import Registry
db, key, prefix = sys.argv[1:4]
strata = [{"site": s, "offence": o} for s in ("north", "south") for o in ("property", "violence")]
with Registry.open(db, key_path=key) as registry:
    print("ready", flush=True)
    i = 0
    while True:
        rid = f"{prefix}-{i:05d}"
        result = registry.enrol(rid, strata=strata[i % 4], answers={"admitted": "yes", "risk": "suitable"}, by=prefix)
        print("done", rid, result.status, flush=True)
        i += 1
"""


def rjtrial_script() -> str:
    """The installed ``rjtrial`` console script (beside the running interpreter, else on PATH)."""
    import shutil
    import sys

    script = Path(sys.executable).with_name("rjtrial")
    found = str(script) if script.exists() else shutil.which("rjtrial")
    if not found:
        raise RuntimeError("the rjtrial console script is not installed (pip install -e .)")
    return found


# ---------------------------------------------------------------- PostgreSQL
POSTGRES_ENV = "RJTRIAL_TEST_POSTGRES_URL"


def postgres_url_or_skip() -> str:
    """The test server's URL; without one the test is skipped, or fails under CI=true."""
    import pytest

    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{POSTGRES_ENV} is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip(f"no PostgreSQL server: set {POSTGRES_ENV} (see scripts/postgres.sh)")
    return url


@contextlib.contextmanager
def fresh_postgres_database(url: str) -> Iterator[str]:
    """A new, empty database on the server of ``url``, dropped afterwards; yields its URL."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"rjtrial_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        _drop_database(admin, name)
        admin.dispose()


def _drop_database(admin, name: str) -> None:
    """DROP ... WITH (FORCE) terminates the database's sessions, but not a background worker of
    another role (an autovacuum worker that started on the new database): that is an error
    until the worker ends, a moment later; wait for it (seen once in CI)."""
    from sqlalchemy import text
    from sqlalchemy.exc import ProgrammingError

    for attempt in range(40):
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            return
        except ProgrammingError as exc:
            if "pg_signal_backend" not in str(exc) or attempt == 39:
                raise
            time.sleep(0.25)
