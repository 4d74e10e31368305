"""Benchmark of the trial generator, :func:`rjtrial.simulate.simulate_trial`, at national scale.

Simulates one trial of ``synthetic/jrc-london-burglary.toml`` enlarged to 1,000,000
randomised offenders (the referral rate scaled alike, so the intake period is the
trial's), with every record: the referral stream with its screening answers (about
2.6 million referrals), allocation by the protocol's law (stratified permuted blocks,
:mod:`rjtrial.simulate._allocation`), conferences
held, covariates, the whole offending history (prior and follow-up offences,
convictions, custody spells, deaths), victims and costs. The Monte Carlo truth is
timed separately (``--truth``: :func:`rjtrial.simulate.compute_truth` on 2,000,000
people), as is the follow-up builder on the generated tables.

Each repeat runs in a fresh Python process (``--worker``), which imports rjtrial,
resets its peak-RSS counter (``/proc/self/clear_refs``), simulates, and reports the
wall time of the call and ``VmHWM`` (peak resident memory during it) from
``/proc/self/status``. Medians over ``--repeats`` (default 3) are reported, with the load
average before each repeat (the machine has 2 cores and is shared).

**The peer** (``--previous COMMIT``): the same worker run, in the same benchmark, on the
rjtrial of an earlier commit (exported with ``git archive`` to a temporary folder and put
first on ``PYTHONPATH``), alternating with the current code repeat by repeat; "previous /
now" is the speed-up.

Usage::

    .venv/bin/python benchmarks/bench_simulate.py            # full scale, a few minutes
    .venv/bin/python benchmarks/bench_simulate.py --quick    # 1/100 scale, seconds
    .venv/bin/python benchmarks/bench_simulate.py --truth    # also time the truth (2,000,000 people)

A full run writes ``benchmarks/results/simulate.json``; ``--quick`` writes
``simulate-quick.json`` and leaves the full results alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path and not os.environ.get("RJTRIAL_BENCH_PREVIOUS"):
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"
SCENARIO = ROOT / "synthetic" / "jrc-london-burglary.toml"
FULL = 1_000_000
TRUTH_POPULATION = 2_000_000


def _status(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"^{field}:\s+(\d+) kB", text, re.M).group(1)) * 1024


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def worker(n: int, seed: int, truth: bool) -> dict:
    """One repeat, in this (fresh) process."""
    from rjtrial.simulate import load_scenario, simulate_trial
    from rjtrial.simulate.truth import compute_truth

    base = load_scenario(SCENARIO)
    scenario = base.with_overrides(
        {
            "referrals.randomised": n,
            "referrals.rate_per_month": base.referrals.rate_per_month * n / base.referrals.randomised,
        }
    )
    out: dict = {"randomised": n}
    _reset_peak()
    rss_before = _status("VmRSS")
    t0 = time.perf_counter()
    trial = simulate_trial(scenario, rng=seed, truth=False)
    out["simulate_seconds"] = time.perf_counter() - t0
    out["simulate_peak_rss_bytes"] = _status("VmHWM")
    out["rss_before_bytes"] = rss_before
    out["rows"] = {name: int(len(frame)) for name, frame in trial.tables().items()}
    out["rows"]["latent"] = int(len(trial.latent))
    _reset_peak()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = trial.followup()
    out["followup_seconds"] = time.perf_counter() - t0
    out["followup_peak_rss_bytes"] = _status("VmHWM")
    out["check"] = {
        "events": int(table["event"].sum()),
        "reoffences": int(table["reoffences"].sum()),
        "mean_days_in_custody": float(table["days_in_custody"].mean()),
        "by_arm": {k: int(v) for k, v in table["arm"].value_counts().items()},
    }
    del trial, table
    if truth:
        population = TRUTH_POPULATION if n >= FULL else max(20_000, 2 * n)
        _reset_peak()
        t0 = time.perf_counter()
        result = compute_truth(base, population=population)
        out["truth_seconds"] = time.perf_counter() - t0
        out["truth_peak_rss_bytes"] = _status("VmHWM")
        out["truth_population"] = population
        out["truth"] = {k: result[k] for k in ("hazard_ratio", "rate_ratio", "rmst_difference_days")}
    out["process_peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return out


def _export(commit: str) -> Path:
    """The ``rjtrial`` package of ``commit``, exported to a temporary folder."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=f"rjtrial-{commit[:8]}-"))
    archive = subprocess.run(["git", "archive", commit, "rjtrial"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _versions() -> dict:
    import numpy as np
    import pandas as pd

    import rjtrial

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    return {
        "rjtrial": rjtrial.__version__,
        "git_commit": commit,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1/100 scale; writes simulate-quick.json")
    parser.add_argument("--truth", action="store_true", help="also time the Monte Carlo truth")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument(
        "--previous",
        default=None,
        metavar="COMMIT",
        help="also run the same measurements on this earlier commit (the peer)",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = args.n if args.n is not None else (FULL // 100 if args.quick else FULL)
    if args.worker:
        print(json.dumps(worker(n, args.seed, args.truth)))
        return 0

    previous_tree = _export(args.previous) if args.previous else None
    runs, previous = [], []
    for repeat in range(args.repeats):
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--n", str(n), "--seed", str(args.seed)]
        cmd += ["--truth"] if args.truth else []
        for label, tree, into in (("now", None, runs), ("previous", previous_tree, previous)):
            if label == "previous" and tree is None:
                continue
            env = dict(os.environ)
            if tree is not None:
                env.update(PYTHONPATH=str(tree), RJTRIAL_BENCH_PREVIOUS="1")
            load = os.getloadavg()[0]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env, cwd=ROOT)
            run = json.loads(done.stdout.strip().splitlines()[-1])
            run["load_before"] = load
            into.append(run)
            line = (
                f"repeat {repeat + 1} ({label}, load {load:.1f}): simulate {run['simulate_seconds']:.2f} s, peak RSS "
                f"{run['simulate_peak_rss_bytes'] / 2**20:,.0f} MiB; follow-up {run['followup_seconds']:.2f} s"
            )
            if args.truth:
                line += (
                    f"; truth ({run['truth_population']:,}) {run['truth_seconds']:.1f} s, peak "
                    f"{run['truth_peak_rss_bytes'] / 2**20:,.0f} MiB"
                )
            print(line, flush=True)
    keys = [
        "simulate_seconds",
        "simulate_peak_rss_bytes",
        "followup_seconds",
        "followup_peak_rss_bytes",
        "process_peak_rss_bytes",
    ] + (["truth_seconds", "truth_peak_rss_bytes"] if args.truth else [])
    median = {key: statistics.median(r[key] for r in runs) for key in keys}
    previous_median = {key: statistics.median(r[key] for r in previous) for key in keys} if previous else None
    result = {
        "benchmark": "rjtrial.simulate.simulate_trial",
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "scenario": str(SCENARIO.relative_to(ROOT)),
        "randomised": n,
        "rows": runs[0]["rows"],
        "seed": args.seed,
        "repeats": args.repeats,
        "median": median,
        "runs": runs,
        "previous": None
        if not previous
        else {
            "commit": args.previous,
            "median": previous_median,
            "runs": previous,
            "speed_up": {k: previous_median[k] / median[k] for k in keys if k.endswith("seconds")},
        },
        "versions": _versions(),
        "notes": "Each repeat is a fresh process; wall time of one simulate_trial(truth=False) call (perf_counter); "
        "peak memory VmHWM from /proc/self/status, reset before the call. Shared 2-core machine: expect noise.",
    }
    output = args.output or RESULTS / ("simulate-quick.json" if args.quick else "simulate.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n")
    rows = ", ".join(f"{v:,} {k}" for k, v in result["rows"].items())
    print(
        f"median of {args.repeats}: simulate {median['simulate_seconds']:.2f} s, peak RSS "
        f"{median['simulate_peak_rss_bytes'] / 2**20:,.0f} MiB ({rows}) -> {output}"
    )
    if previous:
        print(
            "previous commit "
            + args.previous
            + ": "
            + ", ".join(
                f"{k} {previous_median[k]:.2f} s ({result['previous']['speed_up'][k]:.1f}x)"
                for k in keys
                if k.endswith("seconds")
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
