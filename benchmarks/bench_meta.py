"""Benchmark: REML pooling (with the Q-profile interval) and leave-one-out, k = 100 to 10,000 studies, against R metafor.

Times, on the same generated studies (seeded; variances uniform on [0.01, 0.5], true
tau^2 = 0.09):

* ``rjtrial.meta.pool(es, method="REML")``: tau^2 by Fisher scoring, the Q-profile interval
  of tau^2 (and so of I^2, H^2), Q, the prediction interval -- everything ``pool`` returns.
  Nothing forms a k x k matrix (O(k p^2) per evaluation, rjtrial.meta.estimators.ResidualMaker);
* ``rjtrial.meta.leave_one_out(res)``: the vectorised fast path (all k deletions scored at
  once; from 1,000 studies on the deletion sums come from a binomial series, O(k) per step);
* PyMARE's ``VarianceBasedLikelihoodEstimator(method="REML")`` on the same data, in the same
  process (the ``benchmark`` extra installs it; skipped if absent). PyMARE gives no interval
  for tau^2, so it does less than ``pool``; the ratio PyMARE / rjtrial is reported per size;
* R ``rma(yi, vi, method = "REML")`` and ``confint(res)`` (metafor forms k x k matrices: at
  k = 1,000 a fit takes tens of seconds, 10,000 is out of reach), at ``--r-sizes`` studies,
  each size in its own Rscript with a ``--r-timeout``; and R ``leave1out(res)`` at
  ``--r-loo-size`` studies. The ratio R / rjtrial is reported at every size both finished.

Checks, in the same run: the fast leave-one-out against the plain loop of refits
(``fast=False``) at ``--check-size`` studies, the series deletion sums against the direct
k x k blocks at ``--series-check-size``, and our tau^2 and its Q-profile limits against R's at
every size R finished (maximum absolute differences printed and stored).

Each figure is the median of ``--repeats`` runs (``--r-repeats`` for R). Run from the
repository root::

    .venv/bin/python benchmarks/bench_meta.py                      # writes benchmarks/results/meta.json
    .venv/bin/python benchmarks/bench_meta.py --sizes 2000 --no-r --output /tmp/meta.json
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
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rjtrial.meta import (  # noqa: E402
    leave_one_out,
    pool,
    sensitivity,  # noqa: E402
)

R_SCRIPT = r"""
suppressPackageStartupMessages(library(metafor))
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); repeats <- as.integer(args[2]); do_loo <- args[3] == "1"
CTRL <- list(threshold = 1e-12, tol = 1e-12, maxiter = 10000)
t_fit <- t_ci <- t_loo <- numeric(0)
for (i in seq_len(repeats)) {
  t_fit <- c(t_fit, system.time(res <- rma(yi, vi, data = dat, method = "REML", control = CTRL))[["elapsed"]])
  t_ci <- c(t_ci, system.time(ci <- confint(res, control = list(tol = 1e-12, maxiter = 10000)))[["elapsed"]])
  if (do_loo) t_loo <- c(t_loo, system.time(leave1out(res))[["elapsed"]])
}
lim <- ci$random["tau^2", c("ci.lb", "ci.ub")]
cat(sprintf("%.17g %.17g %.17g %.17g %.17g %.17g %.17g\n", median(t_fit), median(t_ci),
            if (do_loo) median(t_loo) else NA, res$tau2, coef(res), lim[1], lim[2]))
"""


def studies(k: int, seed: int = 20261122) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    vi = rng.uniform(0.01, 0.5, k)
    yi = rng.normal(0.2, np.sqrt(vi + 0.09))
    return pd.DataFrame({"estimate": yi, "variance": vi}, index=[f"study {i + 1}" for i in range(k)])


def median_time(function, repeats: int) -> tuple[float, list[float], object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, value


def pymare_time(es: pd.DataFrame, repeats: int):
    """Median seconds of PyMARE's REML fit (dataset construction included, as pool's checks are)."""
    try:
        import pymare
        from pymare.estimators import VarianceBasedLikelihoodEstimator
    except ImportError:
        return "not installed (pip install rjtrial[benchmark])"
    y = es["estimate"].to_numpy()[:, None]
    v = es["variance"].to_numpy()[:, None]

    def fit():
        return VarianceBasedLikelihoodEstimator(method="REML").fit_dataset(pymare.Dataset(y=y, v=v)).summary()

    fit()  # warm-up (imports, first-call costs)
    seconds, times, summary = median_time(fit, repeats)
    return {
        "reml_s": seconds,
        "reml_times_s": times,
        "tau2": float(np.ravel(summary.tau2)[0]),
        "version": getattr(pymare, "__version__", "?"),
    }


def r_times(es: pd.DataFrame, repeats: int, *, loo: bool, timeout: float):
    """R's medians (rma, confint, leave1out or nan) and results, or a string saying why not."""
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    with tempfile.TemporaryDirectory() as tmp:
        data, script = Path(tmp) / "studies.csv", Path(tmp) / "bench.R"
        pd.DataFrame({"yi": es["estimate"], "vi": es["variance"]}).to_csv(data, index=False, float_format="%.17g")
        script.write_text(R_SCRIPT)
        try:
            done = subprocess.run(
                ["Rscript", str(script), str(data), str(repeats), "1" if loo else "0"],
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout:g} s"
        if done.returncode != 0:
            return "R failed: " + (done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?")
        keys = ("rma_s", "confint_s", "leave1out_s", "tau2", "estimate", "tau2_ci_lower", "tau2_ci_upper")
        return dict(zip(keys, (float(v) if v != "NA" else float("nan") for v in done.stdout.split())))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 500, 1_000, 10_000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--r-sizes", type=int, nargs="+", default=[100, 500, 1_000])
    parser.add_argument("--r-repeats", type=int, default=3)
    parser.add_argument("--r-timeout", type=float, default=900.0, help="seconds allowed to each Rscript")
    parser.add_argument("--r-loo-size", type=int, default=100)
    parser.add_argument("--check-size", type=int, default=300)
    parser.add_argument("--series-check-size", type=int, default=3_000)
    parser.add_argument("--no-r", action="store_true", help="do not time R metafor")
    parser.add_argument("--no-pymare", action="store_true", help="do not time PyMARE")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "meta.json")
    args = parser.parse_args(argv)
    results: dict = {
        "run": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "r_repeats": args.r_repeats,
        "runs": [],
    }

    es = studies(args.check_size)
    res = pool(es, method="REML")
    fast, loop = leave_one_out(res, fast=True), leave_one_out(res, fast=False)
    diff = float(np.max(np.abs(fast.to_numpy() - loop.to_numpy())))
    print(f"fast leave-one-out vs refit loop at k = {args.check_size}: max abs difference {diff:.2e}")
    results["check_refit_loop"] = {"k": args.check_size, "max_abs_difference": diff}
    es = studies(args.series_check_size)
    res = pool(es, method="REML")
    series = leave_one_out(res)
    minimum, sensitivity._SERIES_MIN_K = sensitivity._SERIES_MIN_K, 10**12
    try:
        direct = leave_one_out(res)
    finally:
        sensitivity._SERIES_MIN_K = minimum
    series_diff = float(np.max(np.abs(series.to_numpy() - direct.to_numpy())))
    print(f"series vs direct deletion sums at k = {args.series_check_size}: max abs difference {series_diff:.2e}")
    results["check_series"] = {"k": args.series_check_size, "max_abs_difference": series_diff}
    if not (diff < 1e-6 and series_diff < 1e-9):
        print("  FAILED: the fast path disagrees")
        return 1

    for k in sorted(set(args.sizes) | (set() if args.no_r else set(args.r_sizes))):
        es = studies(k)
        t_pool, pool_times, res = median_time(lambda: pool(es, method="REML"), args.repeats)
        t_loo, loo_times, _ = median_time(lambda: leave_one_out(res), args.repeats)
        run = {
            "k": k,
            "pool_reml_s": t_pool,
            "pool_reml_times_s": pool_times,
            "leave_one_out_s": t_loo,
            "leave_one_out_times_s": loo_times,
            "tau2": res.tau2,
            "estimate": res.estimate,
            "tau2_ci_lower": res.tau2_ci_lower,
            "tau2_ci_upper": res.tau2_ci_upper,
        }
        print(
            f"k = {k:>6,}: rjtrial pool(REML + Q-profile CI) {t_pool * 1e3:8.2f} ms; leave_one_out "
            f"{t_loo * 1e3:8.2f} ms (tau2 {res.tau2:.6f})"
        )
        peer = None if args.no_pymare else pymare_time(es, args.repeats)
        if isinstance(peer, dict):
            run["pymare"] = peer
            run["ratio_pymare_over_rjtrial_pool"] = peer["reml_s"] / t_pool
            print(
                f"          PyMARE REML (no interval) {peer['reml_s'] * 1e3:8.2f} ms = "
                f"{run['ratio_pymare_over_rjtrial_pool']:.2f}x rjtrial; |tau2 diff| {abs(peer['tau2'] - res.tau2):.1e}"
            )
        elif peer is not None:
            run["pymare"] = peer
            print(f"          PyMARE: {peer}")
        if not args.no_r and k in args.r_sizes:
            r = r_times(es, args.r_repeats, loo=k == args.r_loo_size, timeout=args.r_timeout)
            if isinstance(r, str):
                run["r"] = r
                print(f"          R: {r}")
            else:
                run["r"] = r
                r_pool = r["rma_s"] + r["confint_s"]
                run["ratio_r_over_rjtrial_pool"] = r_pool / t_pool
                run["max_abs_difference_vs_r"] = max(
                    abs(r[key] - run[key]) for key in ("tau2", "estimate", "tau2_ci_lower", "tau2_ci_upper")
                )
                line = (
                    f"          R rma {r['rma_s']:.3f} s + confint {r['confint_s']:.3f} s = {r_pool:.3f} s "
                    f"({run['ratio_r_over_rjtrial_pool']:,.0f}x rjtrial); |tau2, estimate, CI diff| "
                    f"<= {run['max_abs_difference_vs_r']:.1e}"
                )
                if np.isfinite(r["leave1out_s"]):
                    run["ratio_r_over_rjtrial_leave_one_out"] = r["leave1out_s"] / t_loo
                    line += (
                        f"; R leave1out {r['leave1out_s']:.2f} s ({run['ratio_r_over_rjtrial_leave_one_out']:,.0f}x)"
                    )
                print(line)
        results["runs"].append(run)

    common = [run for run in results["runs"] if isinstance(run.get("r"), dict)]
    if common:
        top = max(common, key=lambda run: run["k"])
        results["largest_common_k"] = {"k": top["k"], "ratio_r_over_rjtrial_pool": top["ratio_r_over_rjtrial_pool"]}
        print(f"largest k both finished: {top['k']:,} studies, R / rjtrial = {top['ratio_r_over_rjtrial_pool']:,.0f}x")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    temporary = args.output.with_name(args.output.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(temporary, args.output)
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
