"""Benchmark of the concealed randomiser's enrolment on SQLite.

Measures enrolments per second and per-enrolment latency (p50, p90, p99, max) for

* one writer process enrolling ``--single`` referrals (default 2,000), and
* ``--workers`` writer processes (default 8) enrolling ``--per-worker`` referrals
  each (default 250) into ONE SQLite file at the same time (all start together
  at a barrier; latency includes waiting for the write lock),

for a ``stratified_blocks`` protocol (synthetic/protocols/jrc-london-burglary.toml)
and a ``minimisation`` protocol (synthetic/protocols/jrc-multisite-minimisation.toml),
whose enrolment reads the whole allocation history, so its cost grows with the
number already randomised (reported as latency by tenth of the run).

The peer comparison, timed in the same run, is the floor cost of a durable SQLite
transaction: a plain ``sqlite3`` ``BEGIN IMMEDIATE; INSERT one row like an
rj_referrals row; COMMIT`` with the registry's pragmas (WAL, synchronous=FULL,
busy_timeout), by one writer and by the same number of concurrent writers.
A second floor writes what an enrolment writes (two rows and the head update).

Each measurement is repeated ``--repeats`` times (default 5) and the medians are
reported. Usage::

    .venv/bin/python benchmarks/bench_registry.py            # full run, a few minutes
    .venv/bin/python benchmarks/bench_registry.py --quick    # about 20 s, smoke test

A full run writes ``benchmarks/results/registry.json`` and the results table in
``benchmarks/README.md``; ``--quick`` writes ``benchmarks/results/registry-quick.json``
only.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _latency  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PROTOCOLS = {
    "stratified_blocks": ROOT / "synthetic" / "protocols" / "jrc-london-burglary.toml",
    "minimisation": ROOT / "synthetic" / "protocols" / "jrc-multisite-minimisation.toml",
}
README = Path(__file__).resolve().parent / "README.md"
RESULTS = Path(__file__).resolve().parent / "results"
START_MARK, END_MARK = "<!-- registry-results:start -->", "<!-- registry-results:end -->"

FLOOR_ROW = {
    "status": "randomised",
    "at": "2026-01-05T10:00:00.000000+00:00",
    "by": "coordinator-london",
    "strata": '{"offence":"property","site":"london"}',
    "answers": '{"admitted":"yes","domestic_abuse":"no","offender_consent":"yes","victim_consent":"yes"}',
    "reasons": "[]",
    "sequence_key": "site=london|offence=property",
    "arm": "conference",
    "value": "conference",
    "reveal": "9f" * 32,
    "receipt": "RJ-1A2B-3C4D-5E6F",
}


# ----------------------------------------------------------------- workloads
def load_protocol(method: str, capacity: int):
    """The example protocol of ``method`` with enough slots for the run."""
    from rjtrial import Protocol

    data = Protocol.from_toml(PROTOCOLS[method]).to_dict()
    data["randomisation"]["capacity"] = max(int(capacity), int(data["randomisation"]["capacity"]))
    return Protocol.from_dict(data)


def referrals(protocol, n: int, seed: int, prefix: str):
    """``n`` eligible referrals with strata drawn uniformly (every enrolment randomises)."""
    rng = np.random.default_rng(seed)
    answers = {q.id: q.eligible_if[0] for q in protocol.eligibility}
    names = list(protocol.strata)
    for i in range(n):
        strata = {name: protocol.strata[name][int(rng.integers(len(protocol.strata[name])))] for name in names}
        yield f"{prefix}-{i:05d}", strata, answers


def create_registry(folder: Path, method: str, capacity: int):
    from rjtrial.registry import Registry

    protocol = load_protocol(method, capacity)
    started = time.perf_counter()
    registry = Registry.create(folder / "trial.db", protocol, key_path=folder / "trial.key", seed=20260105, by="bench")
    created = time.perf_counter() - started
    registry.close()
    return protocol, created


def enrol_loop(db: str, key: str, n: int, method: str, seed: int, prefix: str, barrier=None):
    """Open a Registry and enrol ``n`` referrals; return (start, end, latencies in ms)."""
    from rjtrial.registry import Registry

    with Registry.open(db, key_path=key) as registry:
        stream = list(referrals(registry.protocol, n, seed, prefix))
        if barrier is not None:
            barrier.wait()
        latencies = []
        start = time.perf_counter()
        for rid, strata, answers in stream:
            t0 = time.perf_counter()
            result = registry.enrol(rid, strata=strata, answers=answers, by=prefix)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            if result.status != "randomised":
                raise RuntimeError(f"benchmark enrolment {rid} was {result.status}: {result.reasons}")
        end = time.perf_counter()
    return start, end, latencies


def floor_connect(db: str) -> sqlite3.Connection:
    """A plain sqlite3 connection with the registry's pragmas (store.make_engine)."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 120000")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA journal_mode = WAL")
    return conn


def floor_setup(db: str) -> None:
    conn = floor_connect(db)
    conn.execute(
        "CREATE TABLE referrals (referral_id TEXT PRIMARY KEY, status TEXT, at TEXT, by TEXT, strata TEXT, "
        "answers TEXT, reasons TEXT, sequence_number INTEGER UNIQUE, sequence_key TEXT, slot INTEGER, arm TEXT, "
        "value TEXT, reveal TEXT, receipt TEXT, audit_seq INTEGER UNIQUE)"
    )
    conn.execute(
        "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT, actor TEXT, action TEXT, payload TEXT, "
        "prev_hash TEXT, hash TEXT, mac TEXT)"
    )
    conn.execute(
        "CREATE TABLE head (id INTEGER PRIMARY KEY, audit_seq INTEGER, audit_hash TEXT, sequence_number INTEGER)"
    )
    conn.execute("INSERT INTO head VALUES (1, 0, '', 0)")
    conn.close()


def floor_loop(db: str, n: int, prefix: str, full: bool, barrier=None):
    """Durable transactions of one row (or, with ``full``, of what an enrolment writes)."""
    conn = floor_connect(db)
    payload = json.dumps(FLOOR_ROW)
    if barrier is not None:
        barrier.wait()
    latencies = []
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        if full:
            seq, number = conn.execute("SELECT audit_seq, sequence_number FROM head WHERE id = 1").fetchone()
            conn.execute(
                "INSERT INTO audit VALUES (?, ?, ?, 'enrolment', ?, ?, ?, ?)",
                (seq + 1, FLOOR_ROW["at"], prefix, payload, "0" * 64, "1" * 64, "2" * 64),
            )
            conn.execute(
                "UPDATE head SET audit_seq = ?, audit_hash = ?, sequence_number = ? WHERE id = 1",
                (seq + 1, "1" * 64, number + 1),
            )
        else:
            seq = number = None
        conn.execute(
            "INSERT INTO referrals (referral_id, status, at, by, strata, answers, reasons, sequence_number, "
            "sequence_key, slot, arm, value, reveal, receipt, audit_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                f"{prefix}-{i:05d}",
                FLOOR_ROW["status"],
                FLOOR_ROW["at"],
                FLOOR_ROW["by"],
                FLOOR_ROW["strata"],
                FLOOR_ROW["answers"],
                FLOOR_ROW["reasons"],
                None if number is None else number + 1,
                FLOOR_ROW["sequence_key"],
                i,
                FLOOR_ROW["arm"],
                FLOOR_ROW["value"],
                FLOOR_ROW["reveal"],
                FLOOR_ROW["receipt"],
                None if seq is None else seq + 1,
            ),
        )
        conn.execute("COMMIT")
        latencies.append((time.perf_counter() - t0) * 1000.0)
    end = time.perf_counter()
    conn.close()
    return start, end, latencies


# ------------------------------------------------------------ worker processes
_BARRIER = None


def _init_worker(barrier) -> None:
    global _BARRIER
    _BARRIER = barrier
    import rjtrial.registry  # noqa: F401  - import before the clock starts


def _task(kind: str, db: str, key: str, worker: int, n: int, method: str, seed: int):
    if kind == "registry":
        return enrol_loop(db, key, n, method, seed + worker, f"W{worker}", barrier=_BARRIER)
    return floor_loop(db, n, f"W{worker}", full=(kind == "floor_enrolment_writes"), barrier=_BARRIER)


def run_concurrent(pool, workers: int, kind: str, db: str, key: str, n: int, method: str, seed: int):
    parts = pool.starmap(_task, [(kind, db, key, w, n, method, seed) for w in range(workers)], chunksize=1)
    start = min(p[0] for p in parts)
    end = max(p[1] for p in parts)
    return end - start, [lat for p in parts for lat in p[2]]


# --------------------------------------------------------------------- stats
stats, median_of = _latency.stats, _latency.median_of


def growth(latencies: list[float], parts: int = 10) -> list[dict]:
    """Median latency in each tenth of a single-writer run (history grows along it)."""
    lat = np.asarray(latencies)
    edges = np.linspace(0, lat.size, parts + 1).astype(int)
    return [
        {"from": int(a) + 1, "to": int(b), "p50_ms": float(np.median(lat[a:b]))} for a, b in zip(edges[:-1], edges[1:])
    ]


def machine() -> dict:
    import cryptography
    import sqlalchemy

    return _latency.machine(
        sqlite=sqlite3.sqlite_version,
        numpy=np.__version__,
        sqlalchemy=sqlalchemy.__version__,
        cryptography=cryptography.__version__,
    )


# ----------------------------------------------------------------------- run
def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def benchmark(args) -> dict:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(args.workers)
    concurrent_total = args.workers * args.per_worker
    results: dict = {"single_writer": {}, "concurrent": {}}
    growth_runs: list[list[dict]] = []
    create_seconds: dict[str, list[float]] = {m: [] for m in PROTOCOLS}
    started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="rjtrial-bench-", dir=args.tmpdir) as tmp,
        ctx.Pool(args.workers, initializer=_init_worker, initargs=(barrier,)) as pool,
    ):
        tmp = Path(tmp)

        def fresh(name: str) -> Path:
            folder = tmp / name
            if folder.exists():
                shutil.rmtree(folder)
            folder.mkdir()
            return folder

        for method in PROTOCOLS:
            single, concurrent = [], []
            for r in range(args.repeats):
                folder = fresh("single")
                _, created = create_registry(folder, method, args.single)
                create_seconds[method].append(created)
                start, end, lat = enrol_loop(
                    str(folder / "trial.db"), str(folder / "trial.key"), args.single, method, seed=100 + r, prefix="S"
                )
                single.append(stats(end - start, lat))
                if method == "minimisation":
                    growth_runs.append(growth(lat))
                say(
                    f"  single writer   {method:<18} repeat {r + 1}/{args.repeats}: "
                    f"{single[-1]['per_second']:8.1f}/s  p50 {single[-1]['p50_ms']:.2f} ms"
                )

                folder = fresh("concurrent")
                create_registry(folder, method, concurrent_total)
                wall, lat = run_concurrent(
                    pool,
                    args.workers,
                    "registry",
                    str(folder / "trial.db"),
                    str(folder / "trial.key"),
                    args.per_worker,
                    method,
                    seed=1000 * (r + 1),
                )
                concurrent.append(stats(wall, lat))
                say(
                    f"  {args.workers} writers       {method:<18} repeat {r + 1}/{args.repeats}: "
                    f"{concurrent[-1]['per_second']:8.1f}/s  p50 {concurrent[-1]['p50_ms']:.2f} ms"
                )
            results["single_writer"][method] = median_of(single)
            results["concurrent"][method] = median_of(concurrent)

        for kind in ("floor_one_row", "floor_enrolment_writes"):
            single, concurrent = [], []
            for r in range(args.repeats):
                folder = fresh("floor")
                floor_setup(str(folder / "floor.db"))
                start, end, lat = floor_loop(
                    str(folder / "floor.db"), args.single, "S", full=(kind == "floor_enrolment_writes")
                )
                single.append(stats(end - start, lat))
                folder = fresh("floor")
                floor_setup(str(folder / "floor.db"))
                wall, lat = run_concurrent(
                    pool, args.workers, kind, str(folder / "floor.db"), "", args.per_worker, "", 0
                )
                concurrent.append(stats(wall, lat))
            results["single_writer"][kind] = median_of(single)
            results["concurrent"][kind] = median_of(concurrent)
            say(
                f"  sqlite floor    {kind:<22}: single {results['single_writer'][kind]['per_second']:8.1f}/s, "
                f"{args.workers} writers {results['concurrent'][kind]['per_second']:8.1f}/s"
            )

    ratios = {}
    for scenario, table in results.items():
        floor = table["floor_one_row"]
        ratios[scenario] = {
            method: {
                "throughput_floor_over_registry": floor["per_second"] / table[method]["per_second"],
                "p50_registry_over_floor": table[method]["p50_ms"] / floor["p50_ms"],
            }
            for method in PROTOCOLS
        }
    minimisation_growth = [
        {"from": g["from"], "to": g["to"], "p50_ms": statistics.median(run[i]["p50_ms"] for run in growth_runs)}
        for i, g in enumerate(growth_runs[0])
    ]
    return {
        "benchmark": "registry enrolment on SQLite",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "parameters": {
            "single_writer_enrolments": args.single,
            "workers": args.workers,
            "enrolments_per_worker": args.per_worker,
            "repeats": args.repeats,
            "statistic": "median over repeats",
            "protocols": {m: str(p.relative_to(ROOT)) for m, p in PROTOCOLS.items()},
        },
        "results": results,
        "ratios_to_sqlite_floor": ratios,
        "minimisation_latency_by_tenth": minimisation_growth,
        "create_seconds_median": {m: statistics.median(v) for m, v in create_seconds.items()},
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(report: dict) -> str:
    m, p = report["machine"], report["parameters"]
    lines = [
        f"Run {report['date']} on {m['nproc']} CPU(s) ({m['cpu'] or 'unknown CPU'}), Python {m['python']}, "
        f"SQLite {m['sqlite']}, SQLAlchemy {m['sqlalchemy']}, {m['platform']}. "
        f"Medians of {p['repeats']} repeats; latency per enrolment (per transaction for the floor), "
        "including waiting for the write lock.",
        "",
        "| scenario | workload | enrolments/s | p50 ms | p90 ms | p99 ms | max ms | floor ÷ registry (throughput) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = {
        "stratified_blocks": "registry, stratified_blocks",
        "minimisation": "registry, minimisation",
        "floor_one_row": "sqlite3 floor: one-row INSERT + COMMIT",
        "floor_enrolment_writes": "sqlite3 floor: 2 INSERTs + head UPDATE",
    }
    scenarios = {
        "single_writer": f"1 writer × {p['single_writer_enrolments']}",
        "concurrent": f"{p['workers']} processes × {p['enrolments_per_worker']}",
    }
    for scenario, label in scenarios.items():
        table = report["results"][scenario]
        floor = table["floor_one_row"]["per_second"]
        for kind, name in names.items():
            r = table[kind]
            ratio = f"{floor / r['per_second']:.1f}×" if kind in PROTOCOLS else "—"
            lines.append(
                f"| {label} | {name} | {r['per_second']:.0f} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | "
                f"{r['p99_ms']:.2f} | {r['max_ms']:.1f} | {ratio} |"
            )
    lines += [
        "",
        "Minimisation latency (single writer, p50 ms) by tenth of the run (flat: enrolment reads counts by strata and arm, not the history):",
        "",
    ]
    g = report["minimisation_latency_by_tenth"]
    lines.append("| enrolments | " + " | ".join(f"{x['from']}–{x['to']}" for x in g) + " |")
    lines.append("|---|" + "---:|" * len(g))
    lines.append("| p50 ms | " + " | ".join(f"{x['p50_ms']:.1f}" for x in g) + " |")
    return "\n".join(lines)


def write_readme(report: dict) -> None:
    text = README.read_text(encoding="utf-8")
    if START_MARK not in text or END_MARK not in text:
        raise SystemExit(f"{README} has no {START_MARK} ... {END_MARK} block to fill")
    head, rest = text.split(START_MARK, 1)
    _, tail = rest.split(END_MARK, 1)
    README.write_text(f"{head}{START_MARK}\n{markdown(report)}\n{END_MARK}{tail}", encoding="utf-8")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="small run (about 20 s): 150 + 8 x 20 enrolments, 1 repeat"
    )
    parser.add_argument("--single", type=int, help="enrolments by the single writer (default 2000)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent writer processes (default 8)")
    parser.add_argument("--per-worker", type=int, help="enrolments per concurrent writer (default 250)")
    parser.add_argument("--repeats", type=int, help="repeats of each measurement (default 5)")
    parser.add_argument("--tmpdir", help="where to put the databases (default: the system temporary folder)")
    parser.add_argument("--output", help="results JSON (default benchmarks/results/registry[-quick].json)")
    parser.add_argument("--no-readme", action="store_true", help="do not rewrite the table in benchmarks/README.md")
    args = parser.parse_args(argv)
    args.single = args.single or (150 if args.quick else 2000)
    args.per_worker = args.per_worker or (20 if args.quick else 250)
    args.repeats = args.repeats or (1 if args.quick else 5)
    say(
        f"rjtrial registry benchmark: single writer {args.single}, {args.workers} x {args.per_worker} concurrent, "
        f"{args.repeats} repeat(s)"
    )
    report = benchmark(args)
    output = Path(args.output) if args.output else RESULTS / ("registry-quick.json" if args.quick else "registry.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(markdown(report))
    if not args.quick and not args.no_readme:
        write_readme(report)
    say(f"wrote {output} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
