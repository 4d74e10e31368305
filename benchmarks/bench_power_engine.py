"""Benchmark of the power-by-simulation engine, :func:`rjtrial.survival.batched.cox_batch`.

The workload of one point of a power curve: 10,000 simulated two-arm trials of 600
participants each (300 per arm, shuffled), exponential times to reoffence with hazard
ratio 0.75 (treated vs control), entry spread over a year and the analysis three years
after the first entry (administrative censoring), times in whole days (so ties). Seeded
``numpy.random.Generator``.

Timed in the same run, so the ratios are fair on a shared machine:

* ``cox_batch`` (Efron) on all 10,000 trials: median of ``--repeats`` (default 7) after
  a warm-up call, given 2-D arrays (one row a trial); also with one thread, given 1-D
  int64 arrays with ``trial=`` labels (as a stacked simulation table would be), with
  Breslow ties, and ``logrank_batch``;
* numba compilation, separately: a fresh process with an empty numba cache (compile
  and write the cache) and a second fresh process (load the cache);
* a loop of lifelines ``CoxPHFitter().fit`` over ``--lifelines-trials`` (default 50)
  trials, extrapolated to 10,000;
* R (if ``Rscript`` is on the path): a loop of ``coxph`` and a loop of the bare
  ``coxph.fit`` over ``--r-trials`` (default 1,000) trials, timed inside R with
  ``system.time`` (median of 3), extrapolated to 10,000.

Agreement on the subsets: max |coef difference| against lifelines (its default stopping
rule, as timed), against :func:`rjtrial.survival.cox` and against R ``coxph``.

Usage::

    .venv/bin/python benchmarks/bench_power_engine.py            # about a minute; writes results
    .venv/bin/python benchmarks/bench_power_engine.py --quick    # 1,000 trials; prints, writes nothing

A full run writes ``benchmarks/results/power_engine.json`` (temporary file, then rename).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_SECONDS = 0.5


def make_trials(n_trials: int, n: int, seed: int):
    """``(time, event, treatment)`` arrays of shape ``(n_trials, n)``; see the module docstring."""
    rng = np.random.default_rng(seed)
    treatment = rng.permuted(np.tile(np.repeat(np.array([0, 1], dtype=np.int8), n // 2), (n_trials, 1)), axis=1)
    control_rate = np.log(2) / 900  # median 900 days in control
    latent = rng.exponential(1 / (control_rate * np.where(treatment == 1, 0.75, 1.0)))
    entry = rng.uniform(0, 365, (n_trials, n))
    censor = 3 * 365 - entry
    event = latent <= censor
    time_ = np.ceil(np.minimum(latent, censor))
    return time_, event, treatment


CPU = {}  # label -> median CPU seconds (all threads of this process), beside the wall-clock medians


def median_seconds(fn, repeats: int, label: str | None = None):
    """Median wall seconds of ``repeats`` calls, and the list; CPU seconds go to ``CPU[label]``."""
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    if label is not None:
        CPU[label] = statistics.median(cpu)
    return statistics.median(times), times


COMPILE_PROBE = r"""
import sys, time, numpy as np
sys.path.insert(0, sys.argv[1])
start = time.perf_counter()
from rjtrial.survival.batched import cox_batch, logrank_batch
imported = time.perf_counter()
x = np.tile([0, 1], (2, 5)); t = np.arange(20.0).reshape(2, 10) + 1; e = np.ones((2, 10))
cox_batch(t, e, x); cox_batch(t, e, x, ties="breslow"); cox_batch(t.ravel(), e.ravel(), x.ravel(), trial=np.repeat([0, 1], 10))
logrank_batch(t, e, x)
print(imported - start, time.perf_counter() - imported)
"""


def compile_seconds():
    """(import, first calls) seconds in a fresh process with an empty cache, then with the cache."""
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("cold_cache", "warm_cache"):
            done = subprocess.run(
                [sys.executable, "-c", COMPILE_PROBE, str(ROOT)], env=env, capture_output=True, text=True, check=True
            )
            imported, first = map(float, done.stdout.split())
            out[label] = {"import_seconds": imported, "first_calls_seconds": first}
    return out


R_SCRIPT = r"""
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); repeats <- as.integer(args[2])
parts <- split(d, d$trial)
designs <- lapply(parts, function(p) {
  list(x = matrix(as.numeric(p$treatment), ncol = 1), y = Surv(as.numeric(p$time), as.numeric(p$event)))
})
control <- coxph.control()
loop_coxph <- function() vapply(parts, function(p) unname(coef(coxph(Surv(time, event) ~ treatment, data = p))), 0)
loop_fit <- function() vapply(designs, function(z) {
  unname(coxph.fit(z$x, z$y, strata = NULL, offset = NULL, init = NULL, control = control, weights = NULL,
                   method = "efron", rownames = NULL)$coefficients)
}, 0)
coxph_t <- replicate(repeats, system.time(loop_coxph())[["elapsed"]])
fit_t <- replicate(repeats, system.time(loop_fit())[["elapsed"]])
coefs <- loop_coxph()
cat(median(coxph_t), median(fit_t), as.character(packageVersion("survival")), "\n")
cat(sprintf("%.17g", coefs), sep = "\n")
"""


def r_times(time_, event, treatment, repeats: int):
    if shutil.which("Rscript") is None:
        return None
    n_trials, n = time_.shape
    frame = pd.DataFrame(
        {
            "trial": np.repeat(np.arange(n_trials), n),
            "time": time_.ravel(),
            "event": event.ravel().astype(int),
            "treatment": treatment.ravel().astype(int),
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv, script = Path(tmp) / "trials.csv", Path(tmp) / "bench.R"
        frame.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        done = subprocess.run(["Rscript", str(script), str(csv), str(repeats)], capture_output=True, text=True)
    if done.returncode != 0:
        print(f"note: Rscript failed, R timings skipped: {done.stderr.strip()[-300:]}")
        return None
    lines = done.stdout.split("\n")
    coxph_s, fit_s, version = lines[0].split()
    coefs = np.array([float(v) for v in lines[1:] if v.strip()])
    return {
        "coxph_loop_seconds": float(coxph_s),
        "coxph_fit_loop_seconds": float(fit_s),
        "survival_version": version,
        "trials": n_trials,
        "repeats": repeats,
        "coef": coefs,
    }


def _versions():
    import lifelines
    import numba
    import scipy

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
        "numba": numba.__version__,
        "lifelines": lifelines.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--n", type=int, default=600, help="participants per trial (even)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--lifelines-trials", type=int, default=50)
    parser.add_argument("--r-trials", type=int, default=1000)
    parser.add_argument("--no-r", action="store_true", help="skip the R timings")
    parser.add_argument("--quick", action="store_true", help="1,000 trials, fewer repeats; writes nothing")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.trials, args.repeats, args.lifelines_trials, args.r_trials = 1000, 3, 20, 200

    from lifelines import CoxPHFitter

    from rjtrial.survival import cox
    from rjtrial.survival.batched import cox_batch, logrank_batch

    warnings.simplefilter("ignore")
    load_at_start = os.getloadavg()[0]
    versions = _versions()
    print(
        f"python {versions['python']}, numpy {versions['numpy']}, numba {versions['numba']}, lifelines "
        f"{versions['lifelines']}, {versions['cpus']} CPUs; load average {os.getloadavg()[0]:.2f}"
    )
    compiled = compile_seconds()
    print(
        f"numba: fresh process, empty cache: import {compiled['cold_cache']['import_seconds']:.2f} s + first calls "
        f"(compile) {compiled['cold_cache']['first_calls_seconds']:.2f} s; with the cache: first calls "
        f"{compiled['warm_cache']['first_calls_seconds']:.2f} s"
    )

    time_, event, treatment = make_trials(args.trials, args.n, args.seed)
    print(
        f"{args.trials:,} trials x {args.n}: {event.mean():.1%} events, "
        f"{np.mean([len(np.unique(r)) for r in time_[:100]]):.0f} distinct days per trial (first 100)"
    )
    cox_batch(time_, event, treatment)  # warm-up
    logrank_batch(time_, event, treatment)
    ours, ours_runs = median_seconds(lambda: cox_batch(time_, event, treatment), args.repeats, "cox_batch_efron")
    ours_1, ours_1_runs = median_seconds(
        lambda: cox_batch(time_, event, treatment, threads=1), args.repeats, "cox_batch_efron_one_thread"
    )
    labels = np.repeat(np.arange(args.trials), args.n)
    flat = (time_.ravel(), event.ravel().astype(np.int64), treatment.ravel().astype(np.int64))
    cox_batch(*flat, trial=labels)  # warm-up
    stacked, stacked_runs = median_seconds(
        lambda: cox_batch(*flat, trial=labels), args.repeats, "cox_batch_efron_stacked"
    )
    breslow, breslow_runs = median_seconds(
        lambda: cox_batch(time_, event, treatment, ties="breslow"), args.repeats, "cox_batch_breslow"
    )
    lr, lr_runs = median_seconds(lambda: logrank_batch(time_, event, treatment), args.repeats, "logrank_batch")
    fit = cox_batch(time_, event, treatment)

    k = min(args.lifelines_trials, args.trials)
    frames = [
        pd.DataFrame({"time": time_[j], "event": event[j].astype(int), "treatment": treatment[j].astype(int)})
        for j in range(k)
    ]
    lifelines_coef = np.empty(k)

    def lifelines_loop():
        for j, df in enumerate(frames):
            lifelines_coef[j] = CoxPHFitter().fit(df, "time", "event").params_["treatment"]

    lifelines_subset, lifelines_runs = median_seconds(lifelines_loop, 3, "lifelines_loop_subset")
    lifelines_full = lifelines_subset / k * args.trials
    exact = np.array([cox(df, "treatment", time="time", event="event").params_.iloc[0] for df in frames])
    gap_lifelines = float(np.max(np.abs(fit.estimate[:k] - lifelines_coef)))
    gap_exact = float(np.max(np.abs(fit.estimate[:k] - exact)))

    r = None
    if args.no_r:
        print("note: R timings skipped (--no-r)")
    elif shutil.which("Rscript") is None:
        print("note: Rscript not found, R timings skipped")
    else:
        m = min(args.r_trials, args.trials)
        r = r_times(time_[:m], event[:m], treatment[:m], 3)
    gap_r = float(np.max(np.abs(fit.estimate[: r["trials"]] - r["coef"]))) if r else None

    per = args.trials
    rows = [
        ("rjtrial cox_batch (Efron), all threads", ours, "measured"),
        ("rjtrial cox_batch (Efron), 1 thread", ours_1, "measured"),
        ("rjtrial cox_batch (Efron), 1-D with trial labels", stacked, "measured"),
        ("rjtrial cox_batch (Breslow)", breslow, "measured"),
        ("rjtrial logrank_batch", lr, "measured"),
        (f"lifelines CoxPHFitter loop ({k} trials)", lifelines_full, "extrapolated"),
    ]
    if r:
        rows += [
            (f"R coxph loop ({r['trials']} trials)", r["coxph_loop_seconds"] / r["trials"] * per, "extrapolated"),
            (
                f"R coxph.fit loop ({r['trials']} trials)",
                r["coxph_fit_loop_seconds"] / r["trials"] * per,
                "extrapolated",
            ),
        ]
    print(f"\nseconds for {per:,} trials of {args.n} (median of {args.repeats}; loops extrapolated from subsets)")
    print(f"{'':48s} {'seconds':>10s} {'vs cox_batch':>13s}")
    for label, seconds, kind in rows:
        print(f"{label:48s} {seconds:10.3f} {seconds / ours:12.1f}x  {kind}")
    print("CPU seconds (median, all threads): " + ", ".join(f"{key} {value:.3f}" for key, value in CPU.items()))
    verdict = "meets" if ours < TARGET_SECONDS else "MISSES"
    print(
        f"\ncox_batch {ours:.3f} s for {per:,} trials: {verdict} the {TARGET_SECONDS} s target; "
        f"{lifelines_full / ours:,.0f}x a lifelines loop"
    )
    print(
        f"max |coef difference| on the first {k} trials: vs lifelines (default stopping) {gap_lifelines:.1e}, "
        f"vs rjtrial.survival.cox {gap_exact:.1e}" + (f"; vs R coxph on {r['trials']}: {gap_r:.1e}" if r else "")
    )
    print(
        f"converged {fit.converged.mean():.2%}; power at alpha 0.05: Wald {np.mean(fit.p_value < 0.05):.3f}, "
        f"log-rank {np.mean(logrank_batch(time_, event, treatment).p_value < 0.05):.3f}"
    )

    if args.quick and args.output is None:
        return 0
    result = {
        "benchmark": "rjtrial.survival.batched.cox_batch / logrank_batch",
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "workload": {
            "trials": args.trials,
            "participants_per_trial": args.n,
            "hazard_ratio": 0.75,
            "control_median_days": 900,
            "entry_days": 365,
            "analysis_day": 1095,
            "seed": args.seed,
            "events_share": float(event.mean()),
        },
        "repeats": args.repeats,
        "target_seconds": TARGET_SECONDS,
        "median_seconds": {
            "cox_batch_efron": ours,
            "cox_batch_efron_one_thread": ours_1,
            "cox_batch_efron_stacked_with_trial_labels": stacked,
            "cox_batch_breslow": breslow,
            "logrank_batch": lr,
            "lifelines_loop_extrapolated": lifelines_full,
            "r_coxph_loop_extrapolated": r["coxph_loop_seconds"] / r["trials"] * per if r else None,
            "r_coxph_fit_loop_extrapolated": r["coxph_fit_loop_seconds"] / r["trials"] * per if r else None,
        },
        "median_cpu_seconds": dict(CPU),
        "ratios_to_cox_batch": {label: seconds / ours for label, seconds, _ in rows},
        "runs_seconds": {
            "cox_batch_efron": ours_runs,
            "cox_batch_efron_one_thread": ours_1_runs,
            "cox_batch_efron_stacked_with_trial_labels": stacked_runs,
            "cox_batch_breslow": breslow_runs,
            "logrank_batch": lr_runs,
            f"lifelines_loop_{k}_trials": lifelines_runs,
        },
        "subsets": {
            "lifelines_trials": k,
            "lifelines_loop_seconds": lifelines_subset,
            "r": {key: value for key, value in r.items() if key != "coef"} if r else None,
        },
        "numba_compile": compiled,
        "agreement_max_abs_coef_difference": {
            "lifelines_default": gap_lifelines,
            "rjtrial_cox": gap_exact,
            "r_coxph": gap_r,
        },
        "converged_share": float(fit.converged.mean()),
        "load_average_at_start": load_at_start,
        "load_average_at_end": os.getloadavg()[0],
        "versions": versions,
        "notes": "Wall time (perf_counter) of one call on in-memory arrays, including validation and sorting. "
        "Loops are timed on the first trials and scaled linearly. Shared 2-core machine: expect noise; "
        "compare ratios within the run.",
    }
    output = args.output or RESULTS / "power_engine.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(partial, output)
    print(f"-> {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
