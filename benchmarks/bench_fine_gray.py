"""Benchmark: competing risks -- the Fine–Gray model and cumulative incidence -- against R.

Data (seeded): a two-arm trial of ``--rows`` participants (default 100,000) with age and
prior offences, whole-day times over 730 days to the first of reoffending (cause 1), death or
deportation (2) and long custody (3), 12% lost to follow-up at a uniform day: heavily tied
(731 distinct times), about 60% reoffend, 4% and 8% the competing causes.

Timed in the same run (medians of ``--repeats``, default 5, after one warm-up call for ours;
R's own fits timed inside R with ``system.time``, median of ``--r-repeats``, default 3):

* ``fine_gray(df, "arm + age + prior", cause=1)`` (``method="crr"``: estimate and crr's
  sandwich variance) and ``method="finegray"`` (Efron ties, robust variance);
* R ``cmprsk::crr`` on the same rows. Its variance (Fortran ``crrvv``) is quadratic to
  cubic in n -- hours at 100,000 rows -- so crr is timed at 100,000 rows with
  ``variance = FALSE`` (the estimate only), and with its variance on the first 2,000 ...
  16,000 rows, where ours is timed too; ``--full-crr`` also runs crr with its variance once
  at the full size (about 40 minutes here);
* R ``survival::finegray`` + ``coxph(..., weights = fgwt, cluster(id))`` at the full size;
* ``cumulative_incidence(df, group="arm", cause=None)`` (all causes, both arms, Gray's test)
  with the influence and the delta variance, against R ``survfit(Surv(time, factor(event))
  ~ arm)`` and ``cmprsk::cuminc(time, event, arm)``, and lifelines ``AalenJohansenFitter``
  (one fit per arm and cause; it breaks tied times by jittering them, so its numbers differ).

Agreement is reported with each timing: max |coefficient difference| against R at each size,
and max relative SE difference against crr's variance where crr computed it.

Usage::

    .venv/bin/python benchmarks/bench_fine_gray.py                # a few minutes; writes results
    .venv/bin/python benchmarks/bench_fine_gray.py --quick        # 10,000 rows; prints only
    .venv/bin/python benchmarks/bench_fine_gray.py --full-crr     # adds crr's variance at 100,000 rows

A full run writes ``benchmarks/results/fine_gray.json``.
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
SUBSETS = (2_000, 4_000, 8_000, 16_000)


def make_data(n: int, seed: int = 2024) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, n)
    age = 16 + np.floor(rng.gamma(2.0, 6.0, n))
    prior = rng.poisson(2.0, n)
    latent = np.column_stack(
        [
            rng.exponential(900 / np.exp(np.log(0.75) * arm - 0.02 * (age - 30) + 0.15 * prior)),
            rng.exponential(9000 / np.exp(0.05 * (age - 30))),
            rng.exponential(5000 / np.exp(0.2 * prior)),
        ]
    )
    censor = np.where(rng.random(n) < 0.12, rng.uniform(0, 730, n), 730)
    first = latent.min(axis=1)
    return pd.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "time": np.floor(np.minimum(first, censor)),
            "event": np.where(first <= censor, latent.argmin(axis=1) + 1, 0),
            "arm": arm,
            "age": age,
            "prior": prior,
        }
    )


def int32_square(y: np.ndarray) -> np.ndarray:
    """``y**2`` as crr's Fortran forms it for the integer ``icrsk``: 32-bit, wrapping."""
    return (y.astype(np.int64) ** 2).astype(np.int32).astype(float)


def crr_se_with_overflow(df: pd.DataFrame) -> np.ndarray:
    """Our crr standard errors with crr's 32-bit ``icrsk**2`` emulated (see _finegray_engine)."""
    from rjtrial.survival._coxengine import newton
    from rjtrial.survival._finegray_engine import SubdistributionRiskSets

    X = df[["arm", "age", "prior"]].to_numpy(float)
    status = np.where(df["event"] == 0, 0, np.where(df["event"] == 1, 1, 2))
    risk = SubdistributionRiskSets(X, df["time"].to_numpy(float), status, convention="crr")
    beta, _, _, info, _, _ = newton(risk, np.zeros(3), "breslow")
    H = np.linalg.inv(info)
    infl = risk.score_residuals(beta, "breslow") + risk.censoring_residuals(beta, square=int32_square)
    return np.sqrt(np.diag(H @ infl.T @ infl @ H))


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    fn()  # warm-up: imports, caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


R_SCRIPT = r"""
suppressPackageStartupMessages({library(survival); library(cmprsk)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); repeats <- as.integer(args[2]); subsets <- as.integer(strsplit(args[3], ",")[[1]])
full_crr <- args[4] == "yes"; out <- args[5]
X <- as.matrix(d[, c("arm", "age", "prior")])
med <- function(expr_fun, k = repeats) {
  t <- replicate(k, system.time(expr_fun())[["elapsed"]]); list(median = median(t), all = t)
}
save <- function(stage) {  # after every stage, so a long run can be read before it ends
  writeLines(jsonlite::toJSON(res, auto_unbox = TRUE, digits = NA), out)
  message(format(Sys.time(), "%H:%M:%S"), " R: ", stage, " done")
}
res <- list(R = R.version.string, survival = as.character(packageVersion("survival")),
            cmprsk = as.character(packageVersion("cmprsk")))
fit0 <- crr(d$time, d$event, X, variance = FALSE)
res$crr_point <- med(function() crr(d$time, d$event, X, variance = FALSE))
res$crr_point_coef <- unname(fit0$coef)
save("crr, variance = FALSE")
d$evf <- factor(d$event)
res$finegray_coxph <- med(function() {
  fg <- finegray(Surv(time, evf) ~ ., data = d, etype = "1", id = id)
  coxph(Surv(fgstart, fgstop, fgstatus) ~ arm + age + prior + cluster(id), data = fg, weights = fgwt)
})
fg <- finegray(Surv(time, evf) ~ ., data = d, etype = "1", id = id)
res$finegray_rows <- nrow(fg)
res$coxph_on_finegray <- med(function() coxph(Surv(fgstart, fgstop, fgstatus) ~ arm + age + prior + cluster(id),
                                               data = fg, weights = fgwt))
fgfit <- coxph(Surv(fgstart, fgstop, fgstatus) ~ arm + age + prior + cluster(id), data = fg, weights = fgwt)
res$finegray_coef <- unname(coef(fgfit)); res$finegray_se <- unname(sqrt(diag(fgfit$var)))
rm(fg, fgfit); invisible(gc())
save("finegray + coxph")
res$survfit <- med(function() survfit(Surv(time, evf) ~ arm, data = d))
res$cuminc <- med(function() cuminc(d$time, d$event, d$arm))
save("survfit, cuminc")
res$subsets <- list()
for (m in subsets) {
  s <- d[seq_len(m), ]; Xs <- X[seq_len(m), , drop = FALSE]
  k <- if (m > 8000) 1 else repeats
  f <- crr(s$time, s$event, Xs)
  res$subsets[[as.character(m)]] <- c(med(function() crr(s$time, s$event, Xs), k),
                                      list(coef = unname(f$coef), se = unname(sqrt(diag(f$var)))))
  save(paste("crr with its variance on", m, "rows"))
}
if (full_crr) {
  t <- system.time(f <- crr(d$time, d$event, X))[["elapsed"]]
  res$crr_full <- list(median = t, all = t, coef = unname(f$coef), se = unname(sqrt(diag(f$var))))
}
save("all")
"""


def r_results(df: pd.DataFrame, repeats: int, subsets, full_crr: bool):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv, script, out = Path(tmp) / "data.csv", Path(tmp) / "bench.R", Path(tmp) / "out.json"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        run = subprocess.run(  # R's progress lines go to our stderr as they come
            [
                "Rscript",
                str(script),
                str(csv),
                str(repeats),
                ",".join(map(str, subsets)),
                "yes" if full_crr else "no",
                str(out),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        if run.returncode != 0:
            return None
        return json.loads(out.read_text())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--r-repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="10,000 rows, 2 repeats, print only")
    parser.add_argument("--full-crr", action="store_true", help="also crr with its variance at the full size")
    parser.add_argument("--no-r", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.repeats, args.r_repeats = 10_000, 2, 1
    subsets = [m for m in SUBSETS if m < args.rows]

    import lifelines
    from lifelines import AalenJohansenFitter

    from rjtrial.survival import cumulative_incidence, fine_gray

    warnings.simplefilter("ignore")
    df = make_data(args.rows)
    load = os.getloadavg()[0]
    print(
        f"{args.rows:,} rows: {dict(df['event'].value_counts().sort_index())} by event code, "
        f"{df['time'].nunique()} distinct times; load average {load:.1f} on {os.cpu_count()} CPUs"
    )

    ours = {}
    ours["fine_gray_crr"] = median_time(lambda: fine_gray(df, FORMULA, time="time", event="event"), args.repeats)
    ours["fine_gray_finegray"] = median_time(
        lambda: fine_gray(df, FORMULA, time="time", event="event", method="finegray"), args.repeats
    )
    ours["cif_influence"] = median_time(
        lambda: cumulative_incidence(df, time="time", event="event", group="arm", cause=None), args.repeats
    )
    ours["cif_delta"] = median_time(
        lambda: cumulative_incidence(df, time="time", event="event", group="arm", cause=None, variance="delta"),
        args.repeats,
    )

    def lifelines_aj():
        for g in (0, 1):
            part = df[df["arm"] == g]
            for cause in (1, 2, 3):
                AalenJohansenFitter(calculate_variance=True).fit(part["time"], part["event"], event_of_interest=cause)

    ours["lifelines_aalen_johansen"] = median_time(lifelines_aj, args.repeats)
    subset_times = {}
    for m in subsets:
        part = df.iloc[:m]
        subset_times[m] = median_time(lambda: fine_gray(part, FORMULA, time="time", event="event"), args.repeats)

    crr_fit = fine_gray(df, FORMULA, time="time", event="event")
    fg_fit = fine_gray(df, FORMULA, time="time", event="event", method="finegray")
    r = None if args.no_r else r_results(df, args.r_repeats, subsets, args.full_crr)

    def line(label, seconds, peer=None, peer_label=""):
        ratio = f"   R / rjtrial {peer / seconds:8.1f}" if peer else ""
        print(f"  {label:<52} {seconds:9.3f} s" + (f"   {peer_label} {peer:9.3f} s{ratio}" if peer else ""))

    print(f"\nmedians: rjtrial of {args.repeats}, R of {args.r_repeats} (timed inside R)")
    record = {
        "rows": args.rows,
        "load_average": load,
        "cpus": os.cpu_count(),
        "repeats": args.repeats,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "lifelines": lifelines.__version__,
        "ours": {k: {"median": v[0], "all": v[1]} for k, v in ours.items()},
        "subsets": {str(m): {"median": v[0], "all": v[1]} for m, v in subset_times.items()},
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    line(
        "fine_gray, method='crr' (estimate + crr variance)",
        ours["fine_gray_crr"][0],
        r["crr_point"]["median"] if r else None,
        "crr, variance=FALSE",
    )
    line(
        "fine_gray, method='finegray' (Efron, robust)",
        ours["fine_gray_finegray"][0],
        r["finegray_coxph"]["median"] if r else None,
        "finegray + coxph",
    )
    line(
        "cumulative_incidence (influence) + Gray",
        ours["cif_influence"][0],
        r["survfit"]["median"] if r else None,
        "survfit (multi-state)",
    )
    line("cumulative_incidence (delta) + Gray", ours["cif_delta"][0], r["cuminc"]["median"] if r else None, "cuminc")
    line("lifelines AalenJohansenFitter (2 arms x 3 causes)", ours["lifelines_aalen_johansen"][0])
    if r:
        record["r"] = r
        gap = float(np.max(np.abs(crr_fit.params_.to_numpy() - np.array(r["crr_point_coef"]))))
        gap_fg = float(np.max(np.abs(fg_fit.params_.to_numpy() - np.array(r["finegray_coef"]))))
        se_fg = float(np.max(np.abs(fg_fit.summary_frame()["std_error"].to_numpy() / np.array(r["finegray_se"]) - 1)))
        record["agreement"] = {"crr_coef_full": gap, "finegray_coef_full": gap_fg, "finegray_se_rel_full": se_fg}
        print(f"  (coxph alone on finegray's {r['finegray_rows']:,} rows: {r['coxph_on_finegray']['median']:.3f} s)")
        print(
            f"  max |coef - R crr (default gtol = 1e-6)| {gap:.1e}; vs finegray + coxph {gap_fg:.1e}, "
            f"robust SE {se_fg:.1e} relative"
        )
        print("\n  crr with its variance, first m rows:")
        for m in subsets:
            rm = r["subsets"][str(m)]
            part_fit = fine_gray(df.iloc[:m], FORMULA, time="time", event="event")
            se_gap = float(np.max(np.abs(part_fit.summary_frame()["std_error"].to_numpy() / np.array(rm["se"]) - 1)))
            coef_gap = float(np.max(np.abs(part_fit.params_.to_numpy() - np.array(rm["coef"]))))
            record["agreement"][f"crr_{m}"] = {"coef": coef_gap, "se_rel": se_gap}
            print(
                f"  m = {m:>7,}: rjtrial {subset_times[m][0]:7.3f} s   crr {rm['median']:8.2f} s   "
                f"R / rjtrial {rm['median'] / subset_times[m][0]:8.0f}   |coef| {coef_gap:.1e}, SE {se_gap:.1e}"
            )
        if len(subsets) >= 2:
            m1, m2 = subsets[-2], subsets[-1]
            power = np.log(r["subsets"][str(m2)]["median"] / r["subsets"][str(m1)]["median"]) / np.log(m2 / m1)
            projected = r["subsets"][str(m2)]["median"] * (args.rows / m2) ** power
            record["crr_full_projected"] = {"power": power, "seconds": projected}
            print(f"  crr's time grows as n^{power:.2f} here: about {projected:.0f} s projected at {args.rows:,} rows")
        if "crr_full" in r:
            ours_se = crr_fit.summary_frame()["std_error"].to_numpy()
            se_gap = float(np.max(np.abs(ours_se / np.array(r["crr_full"]["se"]) - 1)))
            emulated = float(np.max(np.abs(crr_se_with_overflow(df) / np.array(r["crr_full"]["se"]) - 1)))
            record["agreement"]["crr_full_se_rel"] = se_gap
            record["agreement"]["crr_full_se_rel_int32_emulated"] = emulated
            print(
                f"  crr with its variance at {args.rows:,} rows: {r['crr_full']['median']:.0f} s "
                f"(R / rjtrial {r['crr_full']['median'] / ours['fine_gray_crr'][0]:.0f}); SE {se_gap:.1e} relative:"
                f"\n    crr's Fortran squares icrsk (the number at risk) in 32-bit integers, which overflows above"
                f"\n    46,340 at risk; with that emulated our SEs equal crr's to {emulated:.1e}"
            )
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        target = RESULTS / "fine_gray.json"
        tmp = target.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(record, indent=2, default=float))
        tmp.replace(target)
        print(f"\nwrote {target.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
