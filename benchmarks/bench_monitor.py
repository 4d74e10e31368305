"""Benchmark: group-sequential designs against R rpact, and a design's level on simulated trials.

Timed in the same run (medians of ``--repeats``, default 7; R timed inside R with
``system.time`` over the same designs, median of its repeats):

* ``rjtrial.monitor.design`` for six designs (2 to 5 looks, O'Brien–Fleming, Pocock,
  Hwang–Shih–DeCani, with and without non-binding or binding futility): boundaries, spending,
  the drift solved for the power, expected events -- against R rpact's
  ``getDesignGroupSequential`` + ``getDesignCharacteristics`` + ``getSampleSizeSurvival``
  (tolerance 1e-10, as in tests/reference), reported as a ratio, and rpact without
  ``getSampleSizeSurvival`` (whose accrual computations ours does not do);
* ``rjtrial.monitor.look`` (an interim look with conditional power) against rpact's
  ``getDesignGroupSequential`` at the actual information + ``getStageResults`` +
  ``getConditionalPower``.

Then the type I error of a three-look O'Brien–Fleming design (two-sided 5%) on ``--trials``
(default 100,000) trials of ``synthetic/null-effect.toml`` drawn by the power engine
(:func:`rjtrial.simulate.sequential_trials`: n = 300, looks when a third and two thirds of
the trial's first reoffences have happened, calendar time), with the protocol's allocation
(minimisation, 1:2) and with simple randomisation; the rate, its Monte Carlo standard error and
interval, and the same statistics with 1.96 at every look.

Usage::

    .venv/bin/python benchmarks/bench_monitor.py              # a few minutes; writes results
    .venv/bin/python benchmarks/bench_monitor.py --quick      # 5,000 trials; prints only

A full run writes ``benchmarks/results/monitor.json``.
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

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"

DESIGNS = {
    "of3_two_sided": dict(looks=3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.8),
    "pocock2_two_sided": dict(looks=2, spending="pocock", alpha=0.05, power=0.8, hazard_ratio=0.75),
    "of5_two_sided": dict(looks=5, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.8),
    "hsd4_nonbinding_of": dict(
        looks=4,
        spending="hsd:-4",
        alpha=0.025,
        power=0.8,
        hazard_ratio=0.8,
        futility="obrien-fleming",
        alternative="less",
    ),
    "hsd2_5_unequal_pocock": dict(
        looks=5,
        spending="hsd:-2",
        alpha=0.025,
        power=0.8,
        hazard_ratio=0.75,
        futility="pocock",
        information=[0.2, 0.35, 0.6, 0.8, 1],
        alternative="less",
    ),
    "hsd1_binding": dict(
        looks=3,
        spending="hsd:1",
        alpha=0.025,
        power=0.8,
        hazard_ratio=0.8,
        futility="hsd:-2",
        binding=True,
        alternative="less",
    ),
}

R_SCRIPT = r"""
suppressPackageStartupMessages(library(rpact))
args <- commandArgs(trailingOnly = TRUE)
repeats <- as.integer(args[1])
spec <- jsonlite::fromJSON(args[2], simplifyVector = FALSE)
kind <- c("obrien-fleming" = "OF", "pocock" = "P", "hsd" = "HSD")
one <- function(s, events = TRUE) {
  a <- strsplit(s$spending, ":")[[1]]
  arg <- list(kMax = s$looks, alpha = s$alpha, beta = 1 - s$power, sided = if (is.null(s$alternative)) 2L else 1L,
              typeOfDesign = paste0("as", kind[[a[1]]]), tolerance = 1e-10)
  if (length(a) > 1) arg$gammaA <- as.numeric(a[2])
  if (!is.null(s$information)) arg$informationRates <- unlist(s$information)
  if (!is.null(s$futility)) {
    f <- strsplit(s$futility, ":")[[1]]
    arg$typeBetaSpending <- paste0("bs", kind[[f[1]]])
    if (length(f) > 1) arg$gammaB <- as.numeric(f[2])
    arg$bindingFutility <- isTRUE(s$binding)
  }
  d <- do.call(getDesignGroupSequential, arg)
  ch <- getDesignCharacteristics(d)
  if (!events) return(ch$shift)
  ss <- getSampleSizeSurvival(d, hazardRatio = s$hazard_ratio, lambda2 = log(2) / 24, accrualTime = c(0, 12),
                              followUpTime = 24)
  ss$maxNumberOfEvents
}
look <- function() {
  d <- getDesignGroupSequential(kMax = 3, alpha = 0.05, beta = 0.2, sided = 2, typeOfDesign = "asOF",
                                informationRates = c(200 / 638.5876, 2 / 3, 1), tolerance = 1e-10)
  data <- getDataset(overallEvents = 200, overallLogRanks = -2.1)
  st <- getStageResults(d, dataInput = data, stage = 1, directionUpper = FALSE)
  getConditionalPower(st, nPlanned = c(225.7, 212.9), thetaH1 = 0.8)$conditionalPower[3]
}
time_it <- function(f) { t <- replicate(repeats, system.time(f())[["elapsed"]]); median(t) }
out <- list()
for (n in names(spec)) {
  out[[n]] <- time_it(function() one(spec[[n]]))
  out[[paste0(n, "/design")]] <- time_it(function() one(spec[[n]], events = FALSE))
}
out[["look"]] <- time_it(look)
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def r_times(repeats: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        script = Path(folder) / "bench.R"
        script.write_text(R_SCRIPT)
        done = subprocess.run(
            ["Rscript", str(script), str(repeats), json.dumps(DESIGNS)], capture_output=True, text=True, check=False
        )
    if done.returncode != 0:
        print(done.stderr, file=sys.stderr)
        return None
    return json.loads(done.stdout.strip().splitlines()[-1])


def timings(repeats: int) -> list[dict]:
    from rjtrial.monitor import design, look

    rows = []
    ours = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, settings in DESIGNS.items():
            ours[name] = median_time(lambda s=settings: design(**s), repeats)
        base = design(3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.8)
        ours["look"] = median_time(lambda: look(base, events=200, statistic=-2.1), repeats)
    theirs = r_times(max(3, repeats)) or {}
    for name, seconds in ours.items():
        peer = theirs.get(name)
        bare = theirs.get(f"{name}/design")
        rows.append(
            {
                "case": name,
                "rjtrial_seconds": seconds,
                "rpact_seconds": peer,
                "rpact_over_rjtrial": None if peer is None else peer / seconds,
                "rpact_design_only_seconds": bare,
                "rpact_design_only_over_rjtrial": None if bare is None else bare / seconds,
            }
        )
    return rows


def level(trials: int, workers: int) -> list[dict]:
    from scipy import stats

    from rjtrial.monitor import design
    from rjtrial.simulate import load_scenario, sequential_trials

    d = design(3, spending="obrien-fleming", alpha=0.05, allocation=2 / 3)
    method = load_scenario("synthetic/null-effect.toml").protocol.randomisation.method
    rows = []
    for allocation in (None, "simple"):
        started = time.perf_counter()
        sim = sequential_trials(
            "synthetic/null-effect.toml", n=300, reps=trials, rng=20261205, allocation=allocation, workers=workers
        )
        simulated = time.perf_counter() - started
        started = time.perf_counter()
        check = sim.check(d)
        checked = time.perf_counter() - started
        z = sim.matrix("statistic")
        naive = float((np.abs(z) >= stats.norm.isf(0.025)).any(axis=1).mean())
        frame = sim.summary_frame()
        rows.append(
            {
                "allocation": allocation or f"protocol ({method})",
                "trials": check.reps,
                "failed": check.failed,
                "type_one_error": check.rejection_rate,
                "mc_std_error": check.mc_std_error,
                "ci_lower": check.ci_lower,
                "ci_upper": check.ci_upper,
                "z_from_alpha": check.z_score,
                "efficacy": check.efficacy_rate,
                "harm": check.harm_rate,
                "naive_196_each_look": naive,
                "events_by_look": frame["events"].round(1).tolist(),
                "sd_statistic_by_look": frame["sd_statistic"].tolist(),
                "seconds_simulation": simulated,
                "seconds_check": checked,
            }
        )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5,000 trials, 3 repeats; print only")
    parser.add_argument("--trials", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    trials, repeats = (5_000, 3) if args.quick else (args.trials, args.repeats)
    os.chdir(ROOT)
    result = {
        "run": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "note": "2 shared cores, other sessions running tests: timings are noisy",
        },
        "timings": timings(repeats),
        "level": level(trials, args.workers),
    }
    for row in result["timings"]:
        peer, ratio = row["rpact_seconds"], row["rpact_over_rjtrial"]
        peer_text = "n/a" if peer is None else f"{1000 * peer:8.1f} ms"
        ratio_text = "" if ratio is None else f"rpact/rjtrial {ratio:.1f}x"
        if row["rpact_design_only_seconds"] is not None:
            ratio_text += (
                f"; without getSampleSizeSurvival {1000 * row['rpact_design_only_seconds']:.1f} ms, "
                f"{row['rpact_design_only_over_rjtrial']:.1f}x"
            )
        print(f"{row['case']:<24} rjtrial {1000 * row['rjtrial_seconds']:8.1f} ms   rpact {peer_text}   {ratio_text}")
    for row in result["level"]:
        print(
            f"{row['allocation']}: type I error {row['type_one_error']:.4f} (s.e. {row['mc_std_error']:.4f}, "
            f"{row['ci_lower']:.4f}-{row['ci_upper']:.4f}, {row['z_from_alpha']:+.2f} s.e. from 0.05) over "
            f"{row['trials']:,} trials; 1.96 at each look {row['naive_196_each_look']:.4f}; "
            f"{row['seconds_simulation']:.0f} s to simulate"
        )
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "monitor.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {RESULTS / 'monitor.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
