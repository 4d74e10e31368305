"""Benchmark: REML pooling and leave-one-out at k = 10,000 studies, against R metafor.

Times, on the same generated studies (seeded; variances uniform on [0.01, 0.5], true
tau^2 = 0.09):

* ``rjtrial.meta.pool(es, method="REML")`` (tau^2 by Fisher scoring, Q-profile interval of
  tau^2, I^2, prediction interval);
* ``rjtrial.meta.leave_one_out(res)`` -- the vectorised fast path (all k deletions scored at
  once, warm-started at the full-data tau^2);
* R ``rma(yi, vi, method = "REML")`` and ``leave1out(res)`` via Rscript, if installed. R's
  leave1out refits k models of k - 1 studies with k x k matrices: at k = 10,000 that takes
  hours, so R's leave1out is timed at ``--r-loo-size`` studies (default 500) and reported
  as such.

It also proves the fast path: at ``--check-size`` studies (default 300) the fast
leave-one-out is compared with the plain loop of refits (``fast=False``) and the maximum
absolute difference over every column is printed (it must be below 1e-6).

Each figure is the median of ``--repeats`` runs (default 5). Run from the repository root::

    .venv/bin/python benchmarks/bench_meta.py                     # k = 10,000
    .venv/bin/python benchmarks/bench_meta.py --sizes 2000 --repeats 3 --no-r
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rjtrial.meta import leave_one_out, pool  # noqa: E402

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); repeats <- as.integer(args[2]); do_loo <- args[3] == "1"
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
res <- rma(yi, vi, data = dat, method = "REML", control = CTRL)
t_fit <- replicate(repeats, system.time(rma(yi, vi, data = dat, method = "REML", control = CTRL))[["elapsed"]])
t_ci <- replicate(repeats, system.time(confint(res, control = list(tol = 1e-12, maxiter = 10000)))[["elapsed"]])
t_loo <- if (do_loo) replicate(repeats, system.time(leave1out(res))[["elapsed"]]) else NA
cat(sprintf("%.17g %.17g %.17g %.17g %.17g\n", median(t_fit), median(t_ci), median(t_loo), res$tau2, coef(res)))
"""


def studies(k: int, seed: int = 20261122) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.5, k)
    yi = rng.normal(0.2, np.sqrt(vi + 0.09))
    return pd.DataFrame({"estimate": yi, "variance": vi}, index=[f"study {i + 1}" for i in range(k)])


def median_time(function, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def r_times(es: pd.DataFrame, repeats: int, loo: bool):
    """(rma seconds, confint seconds, leave1out seconds or nan, tau2, estimate) from Rscript, or None."""
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        data, script = Path(tmp) / "studies.csv", Path(tmp) / "bench.R"
        pd.DataFrame({"yi": es["estimate"], "vi": es["variance"]}).to_csv(data, index=False)
        script.write_text(R_SCRIPT)
        done = subprocess.run(["Rscript", str(script), str(data), str(repeats), "1" if loo else "0"],
                              capture_output=True, text=True, timeout=7200)
        if done.returncode != 0:
            print(f"  (R failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'})")
            return None
        values = [float(v) if v != "NA" else float("nan") for v in done.stdout.split()]
        return tuple(values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--check-size", type=int, default=300)
    parser.add_argument("--r-loo-size", type=int, default=500)
    parser.add_argument("--no-r", action="store_true", help="do not time R metafor")
    parser.add_argument("--output", type=Path, help="write the results as JSON")
    args = parser.parse_args(argv)
    results: dict = {"python": platform.python_version(), "machine": platform.machine(), "repeats": args.repeats,
                     "runs": []}

    es = studies(args.check_size)
    res = pool(es, method="REML")
    fast, loop = leave_one_out(res, fast=True), leave_one_out(res, fast=False)
    diff = float(np.max(np.abs(fast.to_numpy() - loop.to_numpy())))
    print(f"fast leave-one-out vs refit loop at k = {args.check_size}: max abs difference {diff:.2e}")
    results["check"] = {"k": args.check_size, "max_abs_difference": diff}
    if not diff < 1e-6:
        print("  FAILED: the fast path disagrees with the refit loop")
        return 1

    for k in args.sizes:
        es = studies(k)
        t_pool, res = median_time(lambda: pool(es, method="REML"), args.repeats)
        t_loo, _ = median_time(lambda: leave_one_out(res), args.repeats)
        run = {"k": k, "pool_reml_s": t_pool, "leave_one_out_s": t_loo, "tau2": res.tau2, "estimate": res.estimate}
        print(f"k = {k:,}: rjtrial pool(REML) {t_pool:.2f} s (tau2 {res.tau2:.6f}); "
              f"leave_one_out (fast) {t_loo:.2f} s")
        if not args.no_r:
            r = r_times(es, args.repeats, loo=False)
            if r is not None:
                run.update({"r_rma_s": r[0], "r_confint_s": r[1], "r_tau2": r[3], "r_estimate": r[4]})
                print(f"          R rma(REML) {r[0]:.2f} s + confint {r[1]:.2f} s (tau2 {r[3]:.6f}, "
                      f"|diff| {abs(r[3] - res.tau2):.1e})")
        results["runs"].append(run)

    if not args.no_r:
        k = args.r_loo_size
        es = studies(k)
        res = pool(es, method="REML")
        t_loo, _ = median_time(lambda: leave_one_out(res), args.repeats)
        t_slow, _ = median_time(lambda: leave_one_out(res, fast=False), 1)
        r = r_times(es, args.repeats, loo=True)
        run = {"k": k, "leave_one_out_s": t_loo, "leave_one_out_refit_loop_s": t_slow}
        line = f"k = {k:,}: leave_one_out fast {t_loo:.3f} s, refit loop {t_slow:.2f} s"
        if r is not None:
            run["r_leave1out_s"] = r[2]
            line += f"; R leave1out {r[2]:.2f} s"
        print(line)
        results["runs"].append(run)
    if args.output:
        args.output.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
