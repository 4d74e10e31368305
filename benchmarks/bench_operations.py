"""Benchmark of running a long trial: ``verify`` of a 100,000-enrolment registry with 3 protocol
amendments, against a bare hash-chain recomputation in the same run; backup and restore of it.

The registry (SQLite) is built once through the library as a trial builds it: ``Registry.create``
with the ``stratified_blocks`` protocol ``synthetic/protocols/jrc-london-burglary.toml``
(capacity raised to 20,000 slots per sequence), eligible referrals with random strata
enrolled by ``Registry.enrol``, and three amendments along the way: a site joins
(``west_yorkshire``, two new sealed sequences) after 30%, capacity raised to 30,000 (every
sequence extended) after 60%, and a new eligibility question after 80% of the enrolments.

Timed, each ``--repeats`` times (median reported, all values in the JSON):

* ``verify`` keyless, and keyed (``--key``): every entry, signature, record and amendment;
* the peers, in the same run: a **bare hash-chain recomputation** (read ``rj_audit`` with
  ``sqlite3`` and recompute each entry's SHA-256 link, nothing else -- the floor any
  verification pays), and the chain with its Ed25519 signatures
  (:func:`rjtrial.registry.audit.check_chain`);
* ``backup`` (SQLite backup API, manifest, gzip tar, SHA-256) against its floor, a bare
  ``sqlite3`` backup-API copy of the same file;
* ``restore`` (extract, verify keyless, check the head, log the restore, link into place).

Usage::

    .venv/bin/python benchmarks/bench_operations.py                 # 100,000 enrolments (builds ~5 min)
    .venv/bin/python benchmarks/bench_operations.py --quick         # 5,000 enrolments, a smoke test
    .venv/bin/python benchmarks/bench_operations.py --keep DIR      # keep (or reuse) the built registry in DIR

A full run writes ``benchmarks/results/operations.json`` and the table between the markers
in ``benchmarks/README.md``; ``--quick`` writes ``results/operations-quick.json`` only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROTOCOL = ROOT / "synthetic" / "protocols" / "jrc-london-burglary.toml"
README = Path(__file__).resolve().parent / "README.md"
RESULTS = Path(__file__).resolve().parent / "results"
START_MARK, END_MARK = "<!-- operations-results:start -->", "<!-- operations-results:end -->"
AMENDMENTS = (
    (
        0.3,
        {
            "amendment": {"id": "west-yorkshire-joins", "title": "West Yorkshire joins"},
            "strata": {"add": {"site": ["west_yorkshire"]}},
        },
    ),
    (0.6, {"amendment": {"id": "more-slots", "title": "Capacity raised"}, "randomisation": {"capacity": 30_000}}),
    (0.8, None),  # a new eligibility question, built from the protocol below
)


def build(folder: Path, n: int) -> dict:
    """Create the registry and enrol ``n`` referrals with three amendments; returns timings."""
    from rjtrial import Protocol
    from rjtrial.registry import Registry
    from rjtrial.registry.amend import Amendment

    data = Protocol.from_toml(PROTOCOL).to_dict()
    data["randomisation"]["capacity"] = 20_000
    protocol = Protocol.from_dict(data)
    questions = data["eligibility"] + [
        {"id": "hate_crime", "question": "Is the offence a hate crime?", "eligible_if": "no", "answers": ["yes", "no"]}
    ]
    started = time.perf_counter()
    registry = Registry.create(folder / "trial.db", protocol, key_path=folder / "trial.key", seed=20260105, by="bench")
    created = time.perf_counter() - started
    rng = np.random.default_rng(1)
    amend_at = {int(share * n): spec for share, spec in AMENDMENTS}
    started = time.perf_counter()
    for i in range(n):
        if i in amend_at:
            spec = amend_at[i] or {
                "amendment": {"id": "hate-crime-excluded", "title": "Hate crime excluded"},
                "eligibility": questions,
            }
            registry.amend(Amendment.from_dict(spec), by="bench", reason="benchmark", seed=i)
        protocol = registry.protocol
        strata = {name: levels[int(rng.integers(len(levels)))] for name, levels in protocol.strata.items()}
        answers = {q.id: q.eligible_if[0] for q in protocol.eligibility}
        result = registry.enrol(f"R-{i:06d}", strata=strata, answers=answers, by="bench")
        if result.status != "randomised":
            raise RuntimeError(f"{result.referral_id}: {result.status} {result.reasons}")
        if i and i % 10_000 == 0:
            print(f"  enrolled {i:,} ({i / (time.perf_counter() - started):.0f}/s)", flush=True)
    enrolled = time.perf_counter() - started
    registry.close()
    return {"create_seconds": created, "enrol_seconds": enrolled, "enrolments": n}


def bare_chain(db: Path) -> int:
    """The floor: read the log with sqlite3 and recompute each entry's SHA-256 link (no signatures, no records)."""
    from rjtrial.registry.audit import GENESIS, entry_hash

    conn = sqlite3.connect(db)
    try:
        prev, count = GENESIS, 0
        for seq, at, actor, action, payload, prev_hash, digest in conn.execute(
            "SELECT seq, at, actor, action, payload, prev_hash, hash FROM rj_audit ORDER BY seq"
        ):
            if prev_hash != prev or entry_hash(prev_hash, seq, at, actor, action, payload) != digest:
                raise RuntimeError(f"chain broken at {seq}")
            prev, count = digest, count + 1
    finally:
        conn.close()
    return count


def signed_chain(db: Path) -> int:
    """The chain and every Ed25519 signature (audit.check_chain), rows read through SQLAlchemy."""
    from sqlalchemy import select

    from rjtrial.registry import Registry, audit, store

    with Registry.open(db) as registry:
        with store.read_transaction(registry._engine) as conn:
            rows = conn.execute(select(store.audit).order_by(store.audit.c.seq)).mappings().all()
            public = conn.execute(select(store.trial.c.audit_public_key)).scalar()
        entries, problems = audit.check_chain(rows, public_key=public)
    if problems:
        raise RuntimeError(problems[0])
    return len(entries)


def timed(function, repeats: int) -> tuple[float, list[float], object]:
    values, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = function()
        values.append(time.perf_counter() - started)
    return statistics.median(values), values, result


def run(folder: Path, repeats: int) -> dict:
    from rjtrial.registry import Registry
    from rjtrial.registry.backup import backup, restore

    db, key = folder / "trial.db", folder / "trial.key"
    out: dict = {}

    def verify(with_key):
        with Registry.open(db, key_path=key if with_key else None) as registry:
            result = registry.verify()
        if not result.ok:
            raise RuntimeError(result.problems[0])
        return result

    for name, function in (
        ("verify_keyless", lambda: verify(False)),
        ("verify_keyed", lambda: verify(True)),
        ("bare_hash_chain", lambda: bare_chain(db)),
        ("chain_and_signatures", lambda: signed_chain(db)),
    ):
        median, values, result = timed(function, repeats)
        out[name] = {"median_seconds": median, "seconds": values}
        print(f"  {name}: {median:.2f} s (median of {repeats})", flush=True)
    check = verify(False)
    out["store"] = {
        "audit_entries": check.audit_entries,
        "randomised": check.randomised,
        "amendments": check.amendments,
        "bytes": db.stat().st_size,
    }

    scratch = Path(tempfile.mkdtemp(prefix="bench-ops-", dir=folder))
    try:

        def bare_copy():
            target = scratch / "floor.db"
            target.unlink(missing_ok=True)
            src, dst = sqlite3.connect(db), sqlite3.connect(target)
            src.backup(dst)
            src.close()
            dst.close()

        median, values, _ = timed(bare_copy, repeats)
        out["sqlite_backup_api_copy"] = {"median_seconds": median, "seconds": values}
        backups = []

        def one_backup():
            path = scratch / f"b{len(backups)}.rjbackup"
            backups.append(backup(db, path, by="bench"))
            return backups[-1]

        median, values, made = timed(one_backup, repeats)
        out["backup"] = {"median_seconds": median, "seconds": values, "bytes": made.bytes}
        restored = []

        def one_restore():
            target = scratch / f"r{len(restored)}.db"
            restored.append(restore(Path(made.path), target, by="bench"))
            return restored[-1]

        median, values, _ = timed(one_restore, repeats)
        out["restore"] = {"median_seconds": median, "seconds": values}
        print(
            f"  backup {out['backup']['median_seconds']:.2f} s ({made.bytes / 1e6:.1f} MB), bare copy "
            f"{out['sqlite_backup_api_copy']['median_seconds']:.2f} s, restore {out['restore']['median_seconds']:.2f} s",
            flush=True,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return out


def markdown(report: dict) -> str:
    r = report["results"]
    bare = r["bare_hash_chain"]["median_seconds"]
    store = r["store"]
    lines = [
        f"Run {report['when']} on {report['cpus']} CPU(s), Python {report['python']}, SQLite {report['sqlite']}; "
        f"load average {report['load_before']} before, {report['load_after']} after (2 cores shared with other work: "
        f"noisy). Registry: {store['randomised']:,} enrolments, {store['amendments']} amendments, "
        f"{store['audit_entries']:,} audit entries, {store['bytes'] / 1e6:.0f} MB. Medians of {report['repeats']}.",
        "",
        "| operation | seconds | ÷ bare hash chain |",
        "|---|---:|---:|",
    ]
    for key, label in (
        ("bare_hash_chain", "bare hash-chain recomputation (sqlite3 + SHA-256 links only)"),
        ("chain_and_signatures", "chain + every Ed25519 signature (`audit.check_chain`)"),
        ("verify_keyless", "`verify` keyless (every record, amendment, slot commitment)"),
        ("verify_keyed", "`verify --key` (also HMACs, sealed schedule and segments regenerated)"),
    ):
        seconds = r[key]["median_seconds"]
        lines.append(f"| {label} | {seconds:.2f} | {seconds / bare:.1f}× |")
    lines += [
        "",
        "| operation | seconds | ÷ floor |",
        "|---|---:|---:|",
        f"| bare SQLite backup-API copy (the floor) | {r['sqlite_backup_api_copy']['median_seconds']:.2f} | 1 |",
        f"| `rjtrial backup` (copy, manifest, gzip tar, SHA-256; {r['backup']['bytes'] / 1e6:.0f} MB) | "
        f"{r['backup']['median_seconds']:.2f} | {r['backup']['median_seconds'] / r['sqlite_backup_api_copy']['median_seconds']:.1f}× |",
        f"| `rjtrial restore` (extract, verify keyless, head check, link) | {r['restore']['median_seconds']:.2f} | "
        f"{r['restore']['median_seconds'] / r['sqlite_backup_api_copy']['median_seconds']:.1f}× |",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    import sqlalchemy

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="5,000 enrolments, 2 repeats; writes results/operations-quick.json"
    )
    parser.add_argument("--enrolments", type=int, help="enrolments (default 100,000; --quick 5,000)")
    parser.add_argument("--repeats", type=int, help="repeats of each timing (default 5; --quick 2)")
    parser.add_argument("--keep", help="folder to keep the built registry in (reused if it holds one)")
    args = parser.parse_args(argv)
    n = args.enrolments or (5_000 if args.quick else 100_000)
    repeats = args.repeats or (2 if args.quick else 5)
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-operations-"))
    folder.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    try:
        built = None
        if not (folder / "trial.db").exists():
            print(f"building a registry of {n:,} enrolments with 3 amendments in {folder} ...", flush=True)
            built = build(folder, n)
            print(f"  built in {built['enrol_seconds']:.0f} s", flush=True)
        results = run(folder, repeats)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    report = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
        "repeats": repeats,
        "enrolments": n,
        "build": built,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / ("operations-quick.json" if args.quick else "operations.json")).write_text(
        json.dumps(report, indent=2) + "\n"
    )
    table = markdown(report)
    print(table)
    if not args.quick:
        text = README.read_text(encoding="utf-8")
        if START_MARK in text and END_MARK in text:
            head, rest = text.split(START_MARK, 1)
            README.write_text(f"{head}{START_MARK}\n{table}\n{END_MARK}{rest.split(END_MARK, 1)[1]}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
