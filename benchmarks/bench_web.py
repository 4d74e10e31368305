"""Benchmark of the randomisation web service: enrolments per second through HTTP.

``rjtrial serve`` runs in a subprocess on loopback, backed by SQLite and (when
``RJTRIAL_TEST_POSTGRES_URL`` is set, as for ``tests/test_registry_postgres.py``;
``scripts/postgres.sh`` prints it) by PostgreSQL. ``--clients`` concurrent clients
(threads of this process, default 16, each with its own httpx connection and the
manager's bearer token) are released together from a barrier and each POSTs
``--per-client`` eligible referrals (default 25) to ``/api/enrolments`` with distinct
referral ids and strata drawn at random. Reported: enrolments per second (total ÷
(last finish − first start)) and per-request latency p50/p90/p99/max, measured by the
client, so it includes HTTP, authentication, the server's thread pool and waiting for
the database's write lock.

The peer, timed in the same run on the same backend: the bare ``Registry.enrol`` —
the same number of concurrent threads, each with its own ``Registry`` (own engine and
connection), enrolling the same number of referrals with no HTTP in between.
"bare ÷ web" is how many bare enrolments fit in the time of one through the service.
Also timed: one bare writer enrolling all of them (no lock contention), for context.

After every run the sequence numbers handed out must be exactly 1..N (no duplicate, no
gap) and ``verify`` must pass; a run that breaks this aborts the benchmark.

Each measurement is repeated ``--repeats`` times (default 3) on a fresh trial and the
medians are reported. Usage::

    .venv/bin/python benchmarks/bench_web.py            # full run, about 2-4 minutes
    .venv/bin/python benchmarks/bench_web.py --quick    # 16 x 5, one repeat, a smoke test

A full run writes ``benchmarks/results/web.json``; ``--quick`` writes ``web-quick.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _latency  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT, ROOT / "tests"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

import httpx  # noqa: E402
import web_fixtures as wf  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
POSTGRES_ENV = "RJTRIAL_TEST_POSTGRES_URL"


# ----------------------------------------------------------------- workloads
def referrals(n: int, seed: int, prefix: str):
    """``n`` eligible referrals of the JRC London protocol with random strata."""
    rng = np.random.default_rng(seed)
    return [
        (f"{prefix}-{i:05d}", dict(wf.STRATA[int(rng.integers(len(wf.STRATA)))]), dict(wf.ELIGIBLE)) for i in range(n)
    ]


def run_clients(clients: int, work, *, timeout: float = 600) -> tuple[float, list[float], list]:
    """Run ``work(worker, barrier)`` in ``clients`` threads released together.

    Each returns (start, end, latencies_ms, results). Returns (wall seconds, all
    latencies, all results).
    """
    barrier = threading.Barrier(clients)
    parts: list = [None] * clients
    errors: list[str] = []

    def target(worker: int) -> None:
        try:
            parts[worker] = work(worker, barrier)
        except Exception as exc:
            errors.append(f"client {worker}: {exc!r}")
            barrier.abort()

    threads = [threading.Thread(target=target, args=(w,), daemon=True) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    if errors:
        raise RuntimeError("; ".join(errors[:3]))
    if any(p is None for p in parts):
        raise RuntimeError("a client did not finish in time")
    wall = max(p[1] for p in parts) - min(p[0] for p in parts)
    return wall, [lat for p in parts for lat in p[2]], [r for p in parts for r in p[3]]


def web_run(url: str, token: str, clients: int, per_client: int, seed: int):
    """``clients`` HTTP clients POSTing to /api/enrolments; returns (wall, latencies, sequence numbers)."""

    def work(worker, barrier):
        stream = referrals(per_client, seed + worker, f"H{worker}")
        latencies, numbers = [], []
        with httpx.Client(base_url=url, headers=wf.bearer(token), timeout=120) as client:
            client.get("/api/health").raise_for_status()  # connection open before the clock starts
            barrier.wait(timeout=120)
            start = time.perf_counter()
            for rid, strata, answers in stream:
                t0 = time.perf_counter()
                response = client.post("/api/enrolments", json=wf.api_enrol_body(rid, strata, answers))
                latencies.append((time.perf_counter() - t0) * 1000.0)
                if response.status_code >= 300:
                    raise RuntimeError(f"POST /api/enrolments {rid}: {response.status_code} {response.text[:300]}")
                body = response.json()
                if body.get("status") != "randomised":
                    raise RuntimeError(f"benchmark enrolment {rid} was {body.get('status')}: {body}")
                numbers.append(int(body["sequence_number"]))
            end = time.perf_counter()
        return start, end, latencies, numbers

    return run_clients(clients, work)


def bare_run(db: str, key: Path, clients: int, per_client: int, seed: int):
    """The peer: ``clients`` threads, each its own Registry, calling ``Registry.enrol``."""
    from rjtrial.registry import Registry

    def work(worker, barrier):
        stream = referrals(per_client, seed + worker, f"B{worker}")
        latencies, numbers = [], []
        with Registry.open(db, key_path=key) as registry:
            barrier.wait(timeout=120)
            start = time.perf_counter()
            for rid, strata, answers in stream:
                t0 = time.perf_counter()
                result = registry.enrol(rid, strata=strata, answers=answers, by=f"bench{worker}")
                latencies.append((time.perf_counter() - t0) * 1000.0)
                if result.status != "randomised":
                    raise RuntimeError(f"benchmark enrolment {rid} was {result.status}: {result.reasons}")
                numbers.append(result.sequence_number)
            end = time.perf_counter()
        return start, end, latencies, numbers

    return run_clients(clients, work)


def check_store(db: str, key: Path, numbers: list[int]) -> None:
    from rjtrial.registry import Registry

    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        raise RuntimeError("sequence numbers are not exactly 1..N (duplicate or gap)")
    with Registry.open(db, key_path=key) as registry:
        result = registry.verify()
    if not result.ok:
        raise RuntimeError(f"verify failed after the run: {result.problems[:3]}")


# --------------------------------------------------------------------- stats
stats, median_of = _latency.stats, _latency.median_of


def machine() -> dict:
    import sqlite3

    import sqlalchemy
    import uvicorn

    return _latency.machine(
        sqlite=sqlite3.sqlite_version,
        sqlalchemy=sqlalchemy.__version__,
        httpx=httpx.__version__,
        uvicorn=uvicorn.__version__,
    )


# ----------------------------------------------------------------------- run
def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def fresh_database(backend: str, folder: Path):
    if backend == "sqlite":
        yield str(folder / "trial.db")
    else:
        with wf.fresh_postgres_database(os.environ[POSTGRES_ENV]) as url:
            yield url


def one_repeat(backend: str, args, repeat: int, tmp: Path) -> tuple[dict, dict]:
    total = args.clients * args.per_client
    capacity = max(500, total)
    results = {}
    # web
    folder = tmp / f"{backend}-web-{repeat}"
    folder.mkdir()
    with fresh_database(backend, folder) as db:
        db, key = wf.make_trial(folder, db=db, capacity=capacity, seed=1000 + repeat)
        wf.add_user(db, "bench-manager", "manager")
        token = wf.user_token(db, "bench-manager")
        with wf.serve_process(db, key, log=folder / "serve.log") as url:
            wall, lat, numbers = web_run(url, token, args.clients, args.per_client, seed=100 * (repeat + 1))
        check_store(db, key, numbers)
        results["web"] = stats(wall, lat)
    # bare Registry.enrol, same backend, same concurrency
    folder = tmp / f"{backend}-bare-{repeat}"
    folder.mkdir()
    with fresh_database(backend, folder) as db:
        db, key = wf.make_trial(folder, db=db, capacity=capacity, seed=2000 + repeat)
        wall, lat, numbers = bare_run(db, key, args.clients, args.per_client, seed=100 * (repeat + 1))
        check_store(db, key, numbers)
        results["bare"] = stats(wall, lat)
    # bare Registry.enrol, one writer doing all of them (no lock contention at all)
    folder = tmp / f"{backend}-single-{repeat}"
    folder.mkdir()
    with fresh_database(backend, folder) as db:
        db, key = wf.make_trial(folder, db=db, capacity=capacity, seed=3000 + repeat)
        wall, lat, numbers = bare_run(db, key, 1, total, seed=100 * (repeat + 1))
        check_store(db, key, numbers)
        results["single"] = stats(wall, lat)
    return results["web"], results["bare"], results["single"]


def benchmark(args) -> dict:
    backends = ["sqlite"]
    if os.environ.get(POSTGRES_ENV):
        backends.append("postgresql")
    else:
        say(f"  {POSTGRES_ENV} is not set: PostgreSQL skipped (scripts/postgres.sh prints a URL)")
    started = time.perf_counter()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="rjtrial-bench-web-", dir=args.tmpdir) as tmp:
        tmp = Path(tmp)
        for backend in backends:
            web, bare, single = [], [], []
            for r in range(args.repeats):
                w, b, one = one_repeat(backend, args, r, tmp)
                web.append(w)
                bare.append(b)
                single.append(one)
                say(
                    f"  {backend:<10} repeat {r + 1}/{args.repeats}: web {w['per_second']:7.1f}/s p50 {w['p50_ms']:.1f} ms"
                    f" | bare Registry.enrol {b['per_second']:7.1f}/s p50 {b['p50_ms']:.1f} ms"
                    f" | one bare writer {one['per_second']:7.1f}/s"
                )
            results[backend] = {
                "web": median_of(web),
                "bare_registry": median_of(bare),
                "bare_registry_one_writer": median_of(single),
            }
            results[backend]["bare_over_web_throughput"] = (
                results[backend]["bare_registry"]["per_second"] / results[backend]["web"]["per_second"]
            )
            results[backend]["bare_over_web_throughput_per_repeat"] = [
                round(b["per_second"] / w["per_second"], 3) for w, b in zip(web, bare)
            ]
            results[backend]["one_writer_over_web_throughput"] = (
                results[backend]["bare_registry_one_writer"]["per_second"] / results[backend]["web"]["per_second"]
            )
    return {
        "benchmark": "web service enrolment (POST /api/enrolments through rjtrial serve)",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine(),
        "parameters": {
            "clients": args.clients,
            "enrolments_per_client": args.per_client,
            "repeats": args.repeats,
            "statistic": "median over repeats",
            "protocol": str(wf.PROTOCOL_PATH.relative_to(ROOT)),
            "peer": "bare Registry.enrol, same backend, same number of concurrent threads each with its own Registry",
            "context": "bare Registry.enrol by one writer, same total number of enrolments",
        },
        "results": results,
        "seconds": round(time.perf_counter() - started, 1),
    }


def markdown(report: dict) -> str:
    m, p = report["machine"], report["parameters"]
    lines = [
        f"Run {report['date']} on {m['nproc']} CPU(s) ({m['cpu'] or 'unknown CPU'}), Python {m['python']}. "
        f"{p['clients']} concurrent clients × {p['enrolments_per_client']} enrolments; medians of {p['repeats']} repeats.",
        "",
        "| backend | path | enrolments/s | p50 ms | p90 ms | p99 ms | max ms | bare ÷ web (throughput) |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for backend, table in report["results"].items():
        for kind, label in (
            ("web", "HTTP POST /api/enrolments"),
            ("bare_registry", "bare Registry.enrol, same concurrency"),
            ("bare_registry_one_writer", "bare Registry.enrol, one writer"),
        ):
            r = table[kind]
            ratio = f"{table['bare_over_web_throughput']:.2f}×" if kind == "web" else "—"
            lines.append(
                f"| {backend} | {label} | {r['per_second']:.0f} | {r['p50_ms']:.1f} | {r['p90_ms']:.1f} | "
                f"{r['p99_ms']:.1f} | {r['max_ms']:.0f} | {ratio} |"
            )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="16 clients x 5 enrolments, one repeat (a smoke test)")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (default 16)")
    parser.add_argument("--per-client", type=int, help="enrolments per client (default 25)")
    parser.add_argument("--repeats", type=int, help="repeats of each measurement (default 3)")
    parser.add_argument("--tmpdir", help="where to put the SQLite databases (default: the system temporary folder)")
    parser.add_argument("--output", help="results JSON (default benchmarks/results/web[-quick].json)")
    args = parser.parse_args(argv)
    args.per_client = args.per_client or (5 if args.quick else 25)
    args.repeats = args.repeats or (1 if args.quick else 3)
    say(f"rjtrial web benchmark: {args.clients} clients x {args.per_client}, {args.repeats} repeat(s)")
    report = benchmark(args)
    output = Path(args.output) if args.output else RESULTS / ("web-quick.json" if args.quick else "web.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    os.replace(partial, output)
    print(markdown(report))
    say(f"wrote {output} in {report['seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
