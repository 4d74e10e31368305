"""Benchmark: recurrent reoffending beyond Andersen–Gill -- gamma frailty, PWP, split_followup -- against R.

Data (seeded): a two-arm trial of ``people`` participants with age and prior offences,
followed for up to 730 days (15% lost earlier); reoffences arrive as a Poisson process with
a person-level gamma frailty (variance 0.8), whole days, about 2.7 per person; offences
before assignment and after follow-up are in the records too. ``split_followup`` turns
follow-up and offences into counting-process rows (R: ``tmerge``); the models are fitted to
those rows.

Timed in the same run, at each size (medians of ``--repeats`` for ours after a warm-up; R's
fits timed inside R with ``system.time``, medians of ``--r-repeats``):

* ``frailty_cox(..., frailty="id")`` (theta at the maximum of the integrated likelihood,
  exact information) and with ``information="sparse"``, against R ``coxph(Surv(tstart,
  tstop, reoffence) ~ arm + age + prior + frailty(id))`` (R's default: sparse information,
  its search for theta stopping at eps = 1e-5) and ``frailty(id, sparse = FALSE)`` up to
  1,000 people (R forms the full penalised information in its inner loop: minutes beyond);
* ``pwp`` total and gap time against ``coxph(... + strata(enum) + cluster(id))``;
* ``split_followup`` against ``tmerge`` (the same two calls).

Agreement is reported with each timing: theta and coefficients against R's default fit
(whose search stops early: the differences are R's, see tests/validation) and against R's
sparse = FALSE fit, and PWP coefficients.

Usage::

    .venv/bin/python benchmarks/bench_frailty.py            # 250 ... 2,000 people; writes results
    .venv/bin/python benchmarks/bench_frailty.py --quick    # 250 and 500 people; prints only

A full run writes ``benchmarks/results/frailty.json``.
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
FORMULA = "arm + age + prior"
SIZES = (250, 500, 1000, 2000)
EXACT_R_UP_TO = 1000


def make_data(people: int, seed: int = 2025) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(follow-up table, offences) of a generated trial."""
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, people)
    age = 16 + np.floor(rng.gamma(2.0, 6.0, people))
    prior = rng.poisson(2.0, people)
    days = np.where(rng.random(people) < 0.15, np.ceil(rng.uniform(30, 730, people)), 730).astype(int)
    frailty = rng.gamma(1 / 0.8, 0.8, people)
    rate = 0.003 * frailty * np.exp(np.log(0.8) * arm - 0.02 * (age - 30) + 0.15 * prior)
    ids, when = [], []
    for k in range(people):
        n = rng.poisson(rate[k] * (days[k] + 200))
        ids += [k + 1] * n
        when += list(np.ceil(rng.uniform(-100, days[k] + 100, n)).astype(int))
    followup = pd.DataFrame({"id": np.arange(1, people + 1), "arm": arm, "age": age, "prior": prior, "days": days})
    return followup, pd.DataFrame({"id": ids, "day": when})


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


R_SCRIPT = r"""
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
fu <- read.csv(args[1]); off <- read.csv(args[2]); repeats <- as.integer(args[3]); exact <- args[4] == "yes"
out <- args[5]
med <- function(f, k = repeats) { t <- replicate(k, system.time(f())[["elapsed"]]); list(median = median(t), all = t) }
split <- function() {
  tm <- tmerge(fu, fu, id = id, tstop = days)
  tmerge(tm, off, id = id, reoffence = event(day))
}
res <- list(R = R.version.string, survival = as.character(packageVersion("survival")))
res$tmerge <- med(split)
tm <- split()
tm$enum <- ave(tm$reoffence, tm$id, FUN = function(e) cumsum(c(0, head(e, -1)))) + 1
res$rows <- nrow(tm); res$events <- sum(tm$reoffence)
f <- coxph(Surv(tstart, tstop, reoffence) ~ arm + age + prior + frailty(id), tm)
res$frailty_default <- c(med(function() coxph(Surv(tstart, tstop, reoffence) ~ arm + age + prior + frailty(id), tm)),
                         list(coef = unname(coef(f)), theta = f$history[[1]]$history[nrow(f$history[[1]]$history), 1],
                              se = unname(sqrt(diag(f$var)))))
if (exact) {
  # one timed fit (minutes beyond 500 people), its result kept
  elapsed <- system.time(f <- coxph(Surv(tstart, tstop, reoffence) ~ arm + age + prior + frailty(id, sparse = FALSE),
                                    tm))[["elapsed"]]
  h <- f$history[[1]]$history
  res$frailty_exact <- list(median = elapsed, all = elapsed, coef = unname(coef(f))[1:3], theta = h[nrow(h), 1],
                            se = unname(sqrt(diag(f$var)))[1:3])
}
f <- coxph(Surv(tstart, tstop, reoffence) ~ arm + age + prior + strata(enum) + cluster(id), tm)
res$pwp_total <- c(med(function() coxph(Surv(tstart, tstop, reoffence) ~ arm + age + prior + strata(enum) + cluster(id), tm)),
                   list(coef = unname(coef(f))))
f <- coxph(Surv(tstop - tstart, reoffence) ~ arm + age + prior + strata(enum) + cluster(id), tm)
res$pwp_gap <- c(med(function() coxph(Surv(tstop - tstart, reoffence) ~ arm + age + prior + strata(enum) + cluster(id), tm)),
                 list(coef = unname(coef(f))))
writeLines(jsonlite::toJSON(res, auto_unbox = TRUE, digits = NA), out)
"""


def r_results(followup, offences, repeats: int, exact: bool):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        paths = [Path(tmp) / name for name in ("followup.csv", "offences.csv", "bench.R", "out.json")]
        followup.to_csv(paths[0], index=False)
        offences.to_csv(paths[1], index=False)
        paths[2].write_text(R_SCRIPT)
        run = subprocess.run(
            [
                "Rscript",
                str(paths[2]),
                str(paths[0]),
                str(paths[1]),
                str(repeats),
                "yes" if exact else "no",
                str(paths[3]),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        if run.returncode != 0:
            return None
        return json.loads(paths[3].read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--r-repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="250 and 500 people, print only")
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args(argv)
    sizes = SIZES[:2] if args.quick else SIZES

    from rjtrial.survival import event, frailty_cox, pwp, split_followup

    warnings.simplefilter("ignore")
    record = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "cpus": os.cpu_count(),
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "repeats": args.repeats,
        "r_repeats": args.r_repeats,
        "sizes": {},
    }
    for people in sizes:
        followup, offences = make_data(people)

        def split():
            return split_followup(followup, offences, id="id", stop="days", variables={"reoffence": event("day")})

        table = split()
        load = os.getloadavg()[0]
        row = {"people": people, "rows": len(table), "events": int(table["reoffence"].sum()), "load_average": load}
        repeats = args.repeats if people <= 1000 else 1

        def fit(table=table, **kw):
            return frailty_cox(table, FORMULA, time="tstop", start="tstart", event="reoffence", frailty="id", **kw)

        ours = {
            "split_followup": median_time(split, args.repeats),
            "frailty_exact": median_time(fit, repeats),
            "frailty_sparse": median_time(lambda: fit(information="sparse"), repeats),
            "pwp_total": median_time(
                lambda: pwp(table, FORMULA, start="tstart", stop="tstop", event="reoffence", id="id"), args.repeats
            ),
            "pwp_gap": median_time(
                lambda: pwp(table, FORMULA, start="tstart", stop="tstop", event="reoffence", id="id", timescale="gap"),
                args.repeats,
            ),
        }
        row["ours"] = {k: {"median": v[0], "all": v[1]} for k, v in ours.items()}
        exact = fit()
        row["theta"] = exact.theta_
        print(
            f"\n{people:,} people: {len(table):,} rows, {row['events']:,} reoffences; theta {exact.theta_:.6f}; "
            f"load average {load:.1f} on {os.cpu_count()} CPUs"
        )
        r = None if args.no_r else r_results(followup, offences, args.r_repeats, people <= EXACT_R_UP_TO)

        def line(label, key, r_key=None, r_label=""):
            seconds = ours[key][0]
            peer = r[r_key]["median"] if r and r_key in r else None
            extra = f"   {r_label:<30} {peer:9.3f} s   R / rjtrial {peer / seconds:7.2f}" if peer is not None else ""
            print(f"  {label:<40} {seconds:9.3f} s{extra}")

        line("split_followup", "split_followup", "tmerge", "tmerge")
        line("frailty_cox (exact information)", "frailty_exact", "frailty_exact", "frailty(id, sparse = FALSE)")
        line("frailty_cox (information='sparse')", "frailty_sparse", "frailty_default", "frailty(id) (R's default)")
        line("pwp, total time", "pwp_total", "pwp_total", "strata(enum) + cluster(id)")
        line("pwp, gap time", "pwp_gap", "pwp_gap", "Surv(stop - start, ...)")
        if r:
            row["r"] = r
            agreement = {
                "theta_minus_r_default": exact.theta_ - r["frailty_default"]["theta"],
                "coef_vs_r_default": float(np.max(np.abs(exact.params_.to_numpy() - r["frailty_default"]["coef"]))),
                "pwp_total_coef": float(
                    np.max(
                        np.abs(
                            pwp(
                                table, FORMULA, start="tstart", stop="tstop", event="reoffence", id="id"
                            ).params_.to_numpy()
                            - r["pwp_total"]["coef"]
                        )
                    )
                ),
                "rows_equal_tmerge": len(table) == r["rows"],
            }
            if "frailty_exact" in r:
                agreement["theta_minus_r_exact"] = exact.theta_ - r["frailty_exact"]["theta"]
                agreement["coef_vs_r_exact"] = float(
                    np.max(np.abs(exact.params_.to_numpy() - r["frailty_exact"]["coef"]))
                )
            row["agreement"] = agreement
            print(
                "  agreement: "
                + ", ".join(f"{k} {v:.1e}" if isinstance(v, float) else f"{k} {v}" for k, v in agreement.items())
            )
        record["sizes"][str(people)] = row
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "frailty.json").write_text(json.dumps(record, indent=1))
        print(f"\nwrote {RESULTS / 'frailty.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
