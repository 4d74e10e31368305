"""Benchmark of power by simulation end to end, beside a lifelines loop that only fits.

For each scenario (``synthetic/jrc-london-burglary.toml``: stratified permuted blocks;
``synthetic/jrc-multisite.toml``: minimisation) and each analysis (cox, logrank,
rate_ratio), the command a designer runs is timed as a fresh process, from start to exit:

    rjtrial power SCENARIO --n 600 --reps 10000 --analysis A --no-schoenfeld --json

(referral stream, eligibility and consent, allocation by the protocol's law, recurrent
offending with frailty, custody and conviction lag, follow-up, the test; the truth behind
Schoenfeld's columns is left out: it is cached per scenario and timed by bench_simulate.py).
Each is repeated ``--repeats`` times (default 3) and the median quoted, with the machine's
load average before each run (the machine has 2 cores and is shared: other work runs
beside it).

**The peer**, in the same run: a Python loop of lifelines ``CoxPHFitter`` (Efron, the
default) that only *fits* trials of 600 -- the first ``--peer-reps`` (default 100) trials
of the benchmark's own first scenario, drawn beforehand and not timed -- scaled to 10,000
trials. "peer / power" is how many times faster the whole pipeline is than the peer's
fitting alone (the issue's target: 80x, under 5 s). The analyses' own peers are also timed
on the same trials: lifelines ``logrank_test`` and :func:`rjtrial.frequency.rate_ratio`
(statsmodels' negative binomial) loops.

Usage::

    .venv/bin/python benchmarks/bench_power.py              # full: 10,000 trials, 3 repeats (minutes)
    .venv/bin/python benchmarks/bench_power.py --quick      # 1,000 trials, 1 repeat, one analysis

A full run writes ``benchmarks/results/power.json`` (``--quick``: ``power-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = {"stratified_blocks": "synthetic/jrc-london-burglary.toml", "minimisation": "synthetic/jrc-multisite.toml"}
ANALYSES = ("cox", "logrank", "rate_ratio")
TARGET_SECONDS, TARGET_RATIO = 5.0, 80.0


def _load() -> float:
    return os.getloadavg()[0]


def end_to_end(scenario: str, analysis: str, n: int, reps: int) -> dict:
    """One fresh ``rjtrial power`` process: wall seconds, and its own account of the time."""
    command = [
        str(ROOT / ".venv" / "bin" / "rjtrial"),
        "power",
        str(ROOT / scenario),
        "--n",
        str(n),
        "--reps",
        str(reps),
        "--analysis",
        analysis,
        "--no-schoenfeld",
        "--json",
    ]
    load = _load()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    wall = time.perf_counter() - started
    data = json.loads(done.stdout)
    return {
        "wall_s": wall,
        "load_before": load,
        "inside_s": data["settings"]["seconds"],
        "power": data["rows"][0]["power"],
        "workers": data["settings"]["workers"],
    }


def peers(scenario: str, n: int, reps: int, peer_reps: int) -> dict:
    """Seconds per trial of a lifelines CoxPHFitter loop (and of the other analyses' peers) on the
    first ``peer_reps`` trials of the benchmark, scaled to ``reps``."""
    import numpy as np
    import pandas as pd
    from lifelines import CoxPHFitter
    from lifelines.statistics import logrank_test

    from rjtrial.frequency import rate_ratio
    from rjtrial.simulate._replicates import batch_seed, replicate_batch, sized_scenario
    from rjtrial.simulate.scenario import load_scenario

    sized = sized_scenario(load_scenario(ROOT / scenario), n)
    batch = replicate_batch(sized, batch_seed(np.random.SeedSequence(1), 0), peer_reps)
    trials = [
        pd.DataFrame(
            {
                "time": batch["time_at_risk"][:, k],
                "event": batch["event"][:, k].astype(int),
                "treatment": batch["treatment"][:, k],
                "count": batch["reoffences"][:, k],
                "exposure": batch["exposure_days"][:, k],
            }
        )
        for k in range(peer_reps)
    ]
    timings = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        started = time.perf_counter()
        for t in trials:
            CoxPHFitter().fit(t[["time", "event", "treatment"]], "time", "event")
        timings["lifelines_cox"] = time.perf_counter() - started
        started = time.perf_counter()
        for t in trials:
            arm = t["treatment"] == 1
            logrank_test(t.loc[arm, "time"], t.loc[~arm, "time"], t.loc[arm, "event"], t.loc[~arm, "event"])
        timings["lifelines_logrank"] = time.perf_counter() - started
        started = time.perf_counter()
        for t in trials:
            rate_ratio(t[t["exposure"] > 0], count="count", exposure="exposure", group="treatment", control=0)
        timings["rjtrial_rate_ratio"] = time.perf_counter() - started
    return {name: seconds / peer_reps * reps for name, seconds in timings.items()}


def _versions() -> dict:
    import lifelines
    import numba
    import numpy as np

    import rjtrial

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return {
        "rjtrial": rjtrial.__version__,
        "git_commit": commit or None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "lifelines": lifelines.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 trials, 1 repeat, cox only")
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--reps", type=int, default=None, help="trials per run (default 10,000)")
    parser.add_argument("--repeats", type=int, default=None, help="runs of each command (default 3)")
    parser.add_argument("--peer-reps", type=int, default=100)
    parser.add_argument("--analyses", default=None, help="comma-separated (default cox,logrank,rate_ratio)")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    reps = args.reps or (1000 if args.quick else 10_000)
    repeats = args.repeats or (1 if args.quick else 3)
    analyses = args.analyses.split(",") if args.analyses else (["cox"] if args.quick else list(ANALYSES))

    # warm numba's cache and the truth-free command once (not timed)
    end_to_end(SCENARIOS["stratified_blocks"], "cox", 60, 10)
    print(f"peer: lifelines loops on {args.peer_reps} trials of {args.n}, scaled to {reps:,}", flush=True)
    peer = peers(SCENARIOS["stratified_blocks"], args.n, reps, args.peer_reps)
    print("  " + ", ".join(f"{k} {v:.1f} s" for k, v in peer.items()), flush=True)
    rows = []
    for design, scenario in SCENARIOS.items():
        for analysis in analyses:
            runs = []
            for _ in range(repeats):
                runs.append(end_to_end(scenario, analysis, args.n, reps))
            wall = statistics.median(r["wall_s"] for r in runs)
            row = {
                "design": design,
                "scenario": scenario,
                "analysis": analysis,
                "n": args.n,
                "reps": reps,
                "wall_s": wall,
                "wall_s_repeats": [r["wall_s"] for r in runs],
                "load_before": [r["load_before"] for r in runs],
                "cpu_s": {
                    k: statistics.median(r["inside_s"][k] for r in runs) for k in ("generation", "followup", "fitting")
                },
                "peer_lifelines_cox_s": peer["lifelines_cox"],
                "peer_own_s": peer[
                    {"cox": "lifelines_cox", "logrank": "lifelines_logrank", "rate_ratio": "rjtrial_rate_ratio"}[
                        analysis
                    ]
                ],
                "power": runs[0]["power"],
                "workers": runs[0]["workers"],
            }
            row["ratio_to_lifelines_cox"] = row["peer_lifelines_cox_s"] / wall
            row["ratio_to_own_peer"] = row["peer_own_s"] / wall
            row["meets_target"] = wall < TARGET_SECONDS and row["ratio_to_lifelines_cox"] >= TARGET_RATIO
            rows.append(row)
            loads = ", ".join(f"{r['load_before']:.1f}" for r in runs)
            print(
                f"{design:>17} {analysis:>10}: median {wall:5.2f} s of {[round(r['wall_s'], 2) for r in runs]} "
                f"(load {loads}); CPU generation "
                f"{row['cpu_s']['generation']:.1f} s, follow-up {row['cpu_s']['followup']:.1f} s, fitting "
                f"{row['cpu_s']['fitting']:.1f} s; lifelines Cox loop / this = {row['ratio_to_lifelines_cox']:.0f}x",
                flush=True,
            )
    result = {
        "benchmark": "power end to end",
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "target": {"seconds": TARGET_SECONDS, "ratio_to_lifelines_cox": TARGET_RATIO},
        "peer_reps": args.peer_reps,
        "peer_seconds": peer,
        "rows": rows,
        "versions": _versions(),
        "notes": "Wall time of a fresh `rjtrial power` process (imports, pool start-up and all); peers timed on "
        "a subset in the same run and scaled. Shared 2-core machine: load average before each run.",
    }
    output = args.output or RESULTS / ("power-quick.json" if args.quick else "power.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, output)
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
