"""Benchmark: rjtrial.survival against plain lifelines (and R, when installed).

Times, on the same generated data (two arms, age, prior offences, whole-day times to a
first reoffence over two years, so heavily tied):

* Cox fit: ``rjtrial.survival.cox(df, "arm + age + prior", ...)`` (formula, validation,
  Newton fit, null log-likelihood, variance, global tests) against
  ``lifelines.CoxPHFitter().fit(df, "time", "event")`` with the same three covariates;
  also our fit with a cluster-robust variance (lifelines' robust variance is an O(n^2)
  Python loop and is not timed);
* Kaplan–Meier: ``rjtrial.survival.kaplan_meier(df, group="arm")`` (lifelines fit plus
  Greenwood SE and log-log intervals) against ``KaplanMeierFitter().fit`` per arm;
* R ``coxph`` and ``survfit`` on the same rows via Rscript, if available (reported, not
  required).

Each figure is the median of ``--repeats`` runs (default 5). Run from the repository root::

    .venv/bin/python benchmarks/bench_survival.py                 # 100,000 and 1,000,000 rows
    .venv/bin/python benchmarks/bench_survival.py --sizes 100000 --repeats 3

Recorded results: benchmarks/bench_survival_results.md.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def make_data(n: int, seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    age = 16 + np.floor(rng.gamma(2.0, 6.0, n))
    prior = rng.poisson(2.0, n)
    hazard = np.exp(np.log(0.75) * arm - 0.02 * (age - 30) + 0.15 * prior) / 900
    latent = rng.exponential(1 / hazard)
    time_ = np.ceil(np.minimum(latent, 730))
    return pd.DataFrame(
        {
            "arm": arm,
            "age": age,
            "prior": prior,
            "time": time_,
            "event": (latent <= 730).astype(int),
            "case_id": rng.integers(0, n // 2, n),
        }
    )


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


R_SCRIPT = r"""
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); repeats <- as.integer(args[2])
cox_t <- replicate(repeats, system.time(coxph(Surv(time, event) ~ arm + age + prior, data = d))[["elapsed"]])
km_t <- replicate(repeats, system.time(survfit(Surv(time, event) ~ arm, data = d, conf.type = "log-log"))[["elapsed"]])
cat(median(cox_t), median(km_t), as.character(packageVersion("survival")), "\n")
"""


def r_times(df: pd.DataFrame, repeats: int):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        script = Path(tmp) / "bench.R"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(csv), str(repeats)], capture_output=True, text=True)
        if out.returncode != 0:
            return None
        cox_s, km_s, version = out.stdout.split()
        return float(cox_s), float(km_s), version


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-r", action="store_true", help="skip the R timings")
    args = parser.parse_args(argv)

    import lifelines
    from lifelines import CoxPHFitter, KaplanMeierFitter

    from rjtrial.survival import cox, kaplan_meier

    warnings.simplefilter("ignore")
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, pandas {pd.__version__}, "
        f"lifelines {lifelines.__version__}, {platform.machine()}, median of {args.repeats}"
    )
    rows = []
    for n in args.sizes:
        df = make_data(n)
        ours_cox = median_time(lambda: cox(df, "arm + age + prior", time="time", event="event"), args.repeats)
        ours_cluster = median_time(
            lambda: cox(df, "arm + age + prior", time="time", event="event", cluster="case_id"), args.repeats
        )
        lifelines_cox = median_time(
            lambda: CoxPHFitter().fit(df[["arm", "age", "prior", "time", "event"]], "time", "event"), args.repeats
        )
        ours_km = median_time(lambda: kaplan_meier(df, time="time", event="event", group="arm"), args.repeats)

        def lifelines_km():
            for g in (0, 1):
                part = df[df["arm"] == g]
                KaplanMeierFitter().fit(part["time"], part["event"])

        plain_km = median_time(lifelines_km, args.repeats)
        fit = cox(df, "arm + age + prior", time="time", event="event")
        lf = CoxPHFitter().fit(df[["arm", "age", "prior", "time", "event"]], "time", "event")
        gap = float(np.max(np.abs(fit.params_.to_numpy() - lf.params_.to_numpy())))
        r = None if args.no_r else r_times(df, args.repeats)
        rows.append((n, ours_cox, lifelines_cox, ours_cluster, ours_km, plain_km, r, gap))
        print(f"\nn = {n:,} rows, {int(df['event'].sum()):,} events, {df['time'].nunique()} distinct times")
        print(
            f"  Cox   rjtrial {ours_cox:8.3f} s   lifelines {lifelines_cox:8.3f} s   ratio {ours_cox / lifelines_cox:6.2f}"
            f"   (max |coef difference| {gap:.1e})"
        )
        print(f"  Cox + cluster-robust variance, rjtrial {ours_cluster:8.3f} s")
        print(f"  KM    rjtrial {ours_km:8.3f} s   lifelines {plain_km:8.3f} s   ratio {ours_km / plain_km:6.2f}")
        if r is not None:
            print(f"  R survival {r[2]}: coxph {r[0]:.3f} s, survfit {r[1]:.3f} s")
    return rows


if __name__ == "__main__":
    sys.exit(main() and 0)
