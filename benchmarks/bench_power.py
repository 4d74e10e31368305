"""Benchmark of power by simulation, :func:`rjtrial.simulate.power.power`.

Three measurements, for ``--scenario`` (default ``synthetic/jrc-london-burglary.toml``;
``synthetic/jrc-multisite.toml`` allocates by minimisation and costs about five times more):

1. **Generation per replicate trial** at n = 200, 400, 800, in this process, for the
   scenario and for ``--also-generation`` (default jrc-multisite, minimisation):
   :func:`rjtrial.simulate.generator.generate` (``lean=True``, allocation by the
   protocol's own engine) and the follow-up rows of the chunk by one
   :func:`rjtrial.followup.build` (:func:`rjtrial.simulate._replicates.replicate_followup`).
2. **Fitting**, the batched engines against their peers in the same run, on one chunk of
   ``--fit-reps`` replicate trials at each n: :func:`rjtrial.survival.batched.cox_batch`
   against a Python loop of lifelines ``CoxPHFitter`` (Efron), and
   :func:`rjtrial.simulate.power.negative_binomial_batch` against a loop of
   :func:`rjtrial.frequency.rate_ratio`; the loops run on ``--peer-reps`` trials and are
   scaled to the chunk (per trial cost x trials). "peer / batched" is the speed-up.
3. **The whole run**: ``power(scenario, n=(200, 400, 800), reps=--reps)`` on the local
   process pool (one worker per CPU), Cox analysis, Schoenfeld columns from a cached truth
   (computed before the clock starts): wall time, and the CPU seconds the workers spent
   generating, building follow-up rows and fitting (summed over workers).

Measurements 1 and 2 are repeated ``--repeats`` times (default 3) and medians reported;
the whole run ``--full-repeats`` times (default 1: it takes minutes). The machine is
shared, so the numbers are noisy; ratios within one run are the robust figures.

Usage::

    .venv/bin/python benchmarks/bench_power.py                 # full: reps 2000 (minutes)
    .venv/bin/python benchmarks/bench_power.py --quick         # reps 200, seconds
    .venv/bin/python benchmarks/bench_power.py --scenario synthetic/jrc-multisite.toml

A full run writes ``benchmarks/results/power.json`` (``--quick``: ``power-quick.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"
SIZES = (200, 400, 800)


def _median(values):
    return statistics.median(values)


def generation_cost(scenario, sizes, reps: int, repeats: int) -> list[dict]:
    import numpy as np

    from rjtrial.simulate._replicates import replicate_followup, sized_scenario

    rows = []
    for n in sizes:
        sized = sized_scenario(scenario, n)
        replicate_followup(sized, np.random.SeedSequence(0).spawn(2))  # warm caches
        gen, fol = [], []
        for r in range(repeats):
            _, seconds = replicate_followup(sized, np.random.SeedSequence(r + 1).spawn(reps))
            gen.append(seconds["generation"] / reps * 1e3)
            fol.append(seconds["followup"] / reps * 1e3)
        rows.append({"n": n, "replicates": reps, "generation_ms_per_trial": _median(gen),
                     "followup_ms_per_trial": _median(fol), "generation_ms_repeats": gen, "followup_ms_repeats": fol})
    return rows


def fitting_cost(scenario, sizes, reps: int, peer_reps: int, repeats: int) -> list[dict]:
    import warnings

    import numpy as np
    from lifelines import CoxPHFitter

    from rjtrial.frequency import rate_ratio
    from rjtrial.simulate._replicates import replicate_followup, sized_scenario
    from rjtrial.simulate.power import negative_binomial_batch
    from rjtrial.survival.batched import cox_batch, logrank_batch

    rows = []
    for n in sizes:
        table, _ = replicate_followup(sized_scenario(scenario, n), np.random.SeedSequence(99).spawn(reps))
        t = table["time_at_risk"].to_numpy(dtype=float)
        e = table["event"].to_numpy(dtype=np.int64)
        x = table["treatment"].to_numpy()
        k = table["replicate"].to_numpy()
        counts = table[table["exposure_days"] > 0]
        cox_batch(t, e, x, trial=k)  # compile / load the kernels
        timings = {"cox_batch": [], "logrank_batch": [], "negative_binomial_batch": [], "lifelines_cox_loop": [],
                   "rate_ratio_loop": []}
        for _ in range(repeats):
            start = time.perf_counter()
            cox_batch(t, e, x, trial=k)
            timings["cox_batch"].append(time.perf_counter() - start)
            start = time.perf_counter()
            logrank_batch(t, e, x, trial=k)
            timings["logrank_batch"].append(time.perf_counter() - start)
            start = time.perf_counter()
            negative_binomial_batch(counts["reoffences"], counts["exposure_days"], counts["treatment"],
                                    counts["replicate"], n_trials=reps)
            timings["negative_binomial_batch"].append(time.perf_counter() - start)
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for j in range(peer_reps):
                    one = table.loc[table["replicate"] == j, ["time_at_risk", "event", "treatment"]]
                    CoxPHFitter().fit(one, "time_at_risk", "event")
            timings["lifelines_cox_loop"].append((time.perf_counter() - start) / peer_reps * reps)
            start = time.perf_counter()
            for j in range(peer_reps):
                rate_ratio(counts[counts["replicate"] == j], count="reoffences", exposure="exposure_days",
                           group="treatment", control=0)
            timings["rate_ratio_loop"].append((time.perf_counter() - start) / peer_reps * reps)
        med = {name: _median(v) for name, v in timings.items()}
        rows.append({"n": n, "trials": reps, "peer_trials_timed": peer_reps,
                     **{f"{name}_s": v for name, v in med.items()},
                     "cox_speedup": med["lifelines_cox_loop"] / med["cox_batch"],
                     "negative_binomial_speedup": med["rate_ratio_loop"] / med["negative_binomial_batch"],
                     "repeats_s": timings})
    return rows


def whole_run(scenario, reps: int, repeats: int, workers, cache: Path) -> dict:
    from rjtrial.simulate.power import power
    from rjtrial.simulate.truth import compute_truth

    compute_truth(scenario, population=2_000_000, cache_dir=cache)  # cached: not part of the timing
    runs = []
    for r in range(repeats):
        res = power(scenario, n=SIZES, reps=reps, analysis="cox", rng=20261122 + r, workers=workers,
                    truth_cache_dir=cache)
        s = res.settings["seconds"]
        cpu = s["generation"] + s["followup"] + s["fitting"]
        runs.append({"wall_s": s["total"], "cpu_generation_s": s["generation"], "cpu_followup_s": s["followup"],
                     "cpu_fitting_s": s["fitting"], "fitting_share": s["fitting"] / cpu,
                     "table": res.to_dict()["rows"], "text": res.format(), "workers": res.settings["workers"]})
    keys = ("wall_s", "cpu_generation_s", "cpu_followup_s", "cpu_fitting_s", "fitting_share")
    return {"reps": reps, "sizes": list(SIZES), "repeats": runs, **{k: _median([r[k] for r in runs]) for k in keys}}


def _versions() -> dict:
    import numba
    import numpy as np
    import pandas as pd

    import rjtrial

    return {"rjtrial": rjtrial.__version__, "python": platform.python_version(), "numpy": np.__version__,
            "pandas": pd.__version__, "numba": numba.__version__, "platform": platform.platform(),
            "cpus": os.cpu_count()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "synthetic" / "jrc-london-burglary.toml"))
    parser.add_argument("--quick", action="store_true", help="reps 200; writes power-quick.json")
    parser.add_argument("--reps", type=int, default=None, help="replicates per size in the whole run (default 2000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-repeats", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--fit-reps", type=int, default=200)
    parser.add_argument("--peer-reps", type=int, default=10)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--also-generation", nargs="*", default=[str(ROOT / "synthetic" / "jrc-multisite.toml")],
                        help="further scenarios whose generation cost is measured (default jrc-multisite)")
    args = parser.parse_args(argv)
    reps = args.reps or (200 if args.quick else 2000)

    from rjtrial.simulate.scenario import load_scenario

    scenario = load_scenario(args.scenario)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rjtrial" / "truth"
    print(f"scenario {scenario.id} ({scenario.protocol.randomisation.method}), reps {reps}", flush=True)

    generation = {}
    for path in [args.scenario, *args.also_generation]:
        other = load_scenario(path)
        generation[other.id] = generation_cost(other, SIZES, 20 if args.quick else 40, args.repeats)
        print(f"\ngeneration per replicate trial, {other.id} ({other.protocol.randomisation.method}): "
              "median CPU ms, one process")
        print(f"{'n':>6} {'generate':>9} {'follow-up':>10}")
        for row in generation[other.id]:
            print(f"{row['n']:>6} {row['generation_ms_per_trial']:>9.1f} {row['followup_ms_per_trial']:>10.2f}")

    fitting = fitting_cost(scenario, SIZES, args.fit_reps, args.peer_reps, args.repeats)
    print(f"\nfitting {args.fit_reps} trials at once (median s); peers timed on {args.peer_reps} trials and scaled")
    print(f"{'n':>6} {'cox_batch':>10} {'lifelines':>10} {'speed-up':>9} {'logrank':>8} {'NB batch':>9} "
          f"{'rate_ratio':>11} {'speed-up':>9}")
    for row in fitting:
        print(f"{row['n']:>6} {row['cox_batch_s']:>10.4f} {row['lifelines_cox_loop_s']:>10.2f} {row['cox_speedup']:>8.0f}x "
              f"{row['logrank_batch_s']:>8.4f} {row['negative_binomial_batch_s']:>9.4f} {row['rate_ratio_loop_s']:>11.2f} "
              f"{row['negative_binomial_speedup']:>8.0f}x")

    print(f"\nwhole run: power(n={SIZES}, reps={reps}, analysis='cox') on the process pool", flush=True)
    whole = whole_run(scenario, reps, args.full_repeats, args.workers, cache)
    print(whole["repeats"][-1]["text"])
    print(f"median wall {whole['wall_s']:.1f} s; worker CPU: generation {whole['cpu_generation_s']:.1f} s, "
          f"follow-up {whole['cpu_followup_s']:.1f} s, fitting {whole['cpu_fitting_s']:.1f} s "
          f"(fitting {100 * whole['fitting_share']:.1f}% of worker CPU)")

    result = {"benchmark": "power", "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "scenario": scenario.id, "allocation": scenario.protocol.randomisation.method, "quick": args.quick,
              "generation": generation, "fitting": fitting, "whole_run": whole, "versions": _versions()}
    output = args.output or RESULTS / ("power-quick.json" if args.quick else "power.json")
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, output)
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
