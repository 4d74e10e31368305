"""Benchmark: multilevel REML, CR2 robust inference and correlated-effects RVE on many studies,
against R metafor ``rma.mv``, clubSandwich and robumeta in the same run.

Generated data (seeded): J studies with 5 effect sizes each, between-study variance 0.04,
within-study 0.01, sampling variances uniform on [0.01, 0.2], one study-level moderator.
Times, each the median of ``--repeats`` runs (``--r-repeats`` for R):

* ``pool_multilevel(..., profile=False)`` -- the three-level REML fit (rma.mv computes no
  interval either) -- and with the profile-likelihood intervals of both components;
* ``robust(res)`` -- CR2 covariance with Satterthwaite df for every coefficient and the HTZ
  test of the moderator;
* ``rve(..., cluster="study")`` -- robumeta's correlated-effects model with small-sample CR2;
* R, in one Rscript per size with ``--r-timeout``: ``rma.mv(yi, vi, mods, random = ~ 1 |
  study/es_id, sparse = TRUE)``, ``coef_test(res, vcov = "CR2")`` and ``robu(..., modelweights =
  "CORR", small = TRUE)``; ratios R / rjtrial at every size both finished, and the largest
  differences of sigma^2, the CR2 SEs and the RVE estimates.

Run from the repository root::

    .venv/bin/python benchmarks/bench_meta_multilevel.py              # writes results/meta_multilevel.json
    .venv/bin/python benchmarks/bench_meta_multilevel.py --no-r --studies 1000
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

from rjtrial.meta import pool_multilevel, robust, rve  # noqa: E402

R_SCRIPT = r"""
suppressPackageStartupMessages({library(metafor); library(clubSandwich); library(robumeta)})
args <- commandArgs(trailingOnly = TRUE)
dat <- read.csv(args[1]); repeats <- as.integer(args[2])
t_fit <- t_cr2 <- t_robu <- numeric(0)
for (i in seq_len(repeats)) {
  t_fit <- c(t_fit, system.time(res <- rma.mv(estimate, variance, mods = ~ x, random = ~ 1 | study/es_id,
                                              data = dat, sparse = TRUE))[["elapsed"]])
  t_cr2 <- c(t_cr2, system.time(ct <- coef_test(res, vcov = "CR2", cluster = dat$study))[["elapsed"]])
  t_robu <- c(t_robu, system.time(rb <- robu(estimate ~ x, data = dat, studynum = study, var.eff.size = variance,
                                             modelweights = "CORR", rho = 0.8, small = TRUE))[["elapsed"]])
}
cat(sprintf("%.17g ", c(median(t_fit), median(t_cr2), median(t_robu), res$sigma2, ct$SE, rb$reg_table$b.r,
                        rb$reg_table$SE)), "\n")
"""


def studies(n_studies: int, per_study: int = 5, seed: int = 20261205) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    study = np.repeat(np.arange(n_studies), per_study)
    v = rng.uniform(0.01, 0.2, study.size)
    x = np.repeat(rng.normal(size=n_studies), per_study)
    y = (
        0.2
        + 0.1 * x
        + np.repeat(rng.normal(0, 0.2, n_studies), per_study)
        + rng.normal(0, 0.1, study.size)
        + rng.normal(0, np.sqrt(v))
    )
    return pd.DataFrame(
        {"study": study, "es_id": np.tile(np.arange(per_study), n_studies), "estimate": y, "variance": v, "x": x}
    )


def median_time(function, repeats: int):
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times, value


def r_times(data: pd.DataFrame, repeats: int, timeout: float):
    if shutil.which("Rscript") is None:
        return "Rscript not found"
    with tempfile.TemporaryDirectory() as tmp:
        path, script = Path(tmp) / "studies.csv", Path(tmp) / "bench.R"
        data.to_csv(path, index=False, float_format="%.17g")
        script.write_text(R_SCRIPT)
        try:
            done = subprocess.run(
                ["Rscript", str(script), str(path), str(repeats)], capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            return f"timed out after {timeout:g} s"
        if done.returncode != 0:
            return "R failed: " + (done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "?")
        v = [float(x) for x in done.stdout.split()]
        return {
            "rma_mv_s": v[0],
            "coef_test_cr2_s": v[1],
            "robu_s": v[2],
            "sigma2": v[3:5],
            "cr2_se": v[5:7],
            "robu_b": v[7:9],
            "robu_se": v[9:11],
        }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--r-repeats", type=int, default=3)
    parser.add_argument("--r-timeout", type=float, default=900.0)
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "meta_multilevel.json")
    args = parser.parse_args(argv)
    results = {
        "run": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "repeats": args.repeats,
        "r_repeats": args.r_repeats,
        "runs": [],
    }
    for J in args.studies:
        data = studies(J)
        t_fit, fit_times, res = median_time(
            lambda: pool_multilevel(data, levels=["study", "es_id"], moderators="x", profile=False), args.repeats
        )
        t_profile, _, _ = median_time(
            lambda: pool_multilevel(data, levels=["study", "es_id"], moderators="x"), max(1, args.repeats // 2)
        )
        t_robust, _, rob = median_time(lambda: robust(res), args.repeats)
        t_rve, _, rv = median_time(lambda: rve(data, cluster="study", moderators="x"), args.repeats)
        run = {
            "studies": J,
            "effects": len(data),
            "multilevel_reml_s": t_fit,
            "multilevel_reml_times_s": fit_times,
            "multilevel_reml_with_profile_ci_s": t_profile,
            "robust_cr2_s": t_robust,
            "rve_s": t_rve,
            "sigma2": res.sigma2.tolist(),
            "n_iterations": res.n_iterations,
        }
        print(
            f"{J:>5} studies x 5: multilevel REML {t_fit * 1e3:8.1f} ms ({res.n_iterations} iterations; "
            f"with profile CIs {t_profile * 1e3:8.1f} ms); robust CR2 {t_robust * 1e3:6.1f} ms; "
            f"rve {t_rve * 1e3:6.1f} ms"
        )
        if not args.no_r:
            r = r_times(data, args.r_repeats, args.r_timeout)
            run["r"] = r
            if isinstance(r, dict):
                run["ratio_rma_mv_over_rjtrial"] = r["rma_mv_s"] / t_fit
                run["ratio_coef_test_over_robust"] = r["coef_test_cr2_s"] / t_robust
                run["ratio_robu_over_rve"] = r["robu_s"] / t_rve
                frame = rv.summary_frame()
                run["max_abs_difference"] = {
                    "sigma2": float(np.max(np.abs(res.sigma2 - r["sigma2"]))),
                    "cr2_se": float(np.max(np.abs(rob.std_errors - r["cr2_se"]))),
                    "robu_b": float(np.max(np.abs(frame.estimate - r["robu_b"]))),
                    "robu_se": float(np.max(np.abs(frame.std_error - r["robu_se"]))),
                }
                print(
                    f"       R: rma.mv {r['rma_mv_s']:.2f} s ({run['ratio_rma_mv_over_rjtrial']:,.0f}x), "
                    f"coef_test CR2 {r['coef_test_cr2_s']:.2f} s ({run['ratio_coef_test_over_robust']:,.0f}x), "
                    f"robu {r['robu_s']:.2f} s ({run['ratio_robu_over_rve']:,.0f}x); max |diff| "
                    + ", ".join(f"{k} {v:.1e}" for k, v in run["max_abs_difference"].items())
                )
            else:
                print(f"       R: {r}")
        results["runs"].append(run)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
