"""Benchmark: counting-process Cox with a cluster-robust variance (recurrent reoffending).

Data: ``--people`` people (default 200,000) with about five ``(start, stop]`` rows each
(default about 1,000,000 rows): reoffences from a gamma-frailty recurrent process over two
years in whole days, custody gaps between rows (so starts fall between event times, the
shape that broke the risk sets before), two arms, age and prior offences.

Timed, in the same run, on the same rows, median of ``--repeats``:

* rjtrial ``andersen_gill(df, "arm + age + prior", start=, stop=, event=, id=)``
  (Efron ties, robust variance clustered on the person, global and robust score tests);
* lifelines ``CoxTimeVaryingFitter().fit(...)`` (Efron, model-based variance only: it has
  no cluster-robust variance for (start, stop] data);
* R ``coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id))`` via Rscript, timed
  inside R with ``system.time`` (the CSV read excluded).

Run from the repository root::

    .venv/bin/python benchmarks/bench_counting_process.py
    .venv/bin/python benchmarks/bench_counting_process.py --people 20000 --repeats 3
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd


def make_data(people: int, seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = rng.integers(0, 2, people)
    age = 16 + np.floor(rng.gamma(2.0, 6.0, people))
    prior = rng.poisson(2.0, people)
    frailty = rng.gamma(2.0, 0.5, people)
    rate = frailty * np.exp(np.log(0.8) * arm - 0.02 * (age - 30) + 0.15 * prior) / 180
    ids, starts, stops, events = [], [], [], []
    t = np.zeros(people)
    alive = np.ones(people, dtype=bool)
    while alive.any():
        who = np.flatnonzero(alive)
        gap = np.ceil(rng.exponential(1 / rate[who]))
        end = t[who] + gap
        done = end >= 730
        stop = np.where(done, 730, end)
        ids.append(who)
        starts.append(t[who])
        stops.append(stop)
        events.append((~done).astype(np.int8))
        custody = np.where(rng.random(len(who)) < 0.3, rng.integers(1, 60, len(who)), 0)
        t[who] = np.minimum(stop + custody, 729)
        alive[who[done | (t[who] >= 729)]] = False
    id_ = np.concatenate(ids)
    df = pd.DataFrame(
        {
            "id": id_,
            "start": np.concatenate(starts),
            "stop": np.concatenate(stops),
            "event": np.concatenate(events),
            "arm": arm[id_],
            "age": age[id_],
            "prior": prior[id_],
        }
    )
    return df[df["stop"] > df["start"]].sort_values(["id", "start"], ignore_index=True)


def median_time(fn, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


R_SCRIPT = r"""
suppressPackageStartupMessages(library(survival))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); repeats <- as.integer(args[2])
t <- replicate(repeats, system.time(coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), data = d))[["elapsed"]])
fit <- coxph(Surv(start, stop, event) ~ arm + age + prior + cluster(id), data = d)
cat(median(t), sprintf("%.10f", coef(fit)), as.character(packageVersion("survival")), "\n")
"""


def r_time(df: pd.DataFrame, repeats: int):
    if shutil.which("Rscript") is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "data.csv"
        script = Path(tmp) / "bench.R"
        df.to_csv(csv, index=False)
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(csv), str(repeats)], capture_output=True, text=True)
        if out.returncode != 0:
            print(out.stderr)
            return None
        fields = out.stdout.split()
        return float(fields[0]), np.array([float(x) for x in fields[1:4]]), fields[4]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true")
    parser.add_argument("--no-lifelines", action="store_true")
    args = parser.parse_args(argv)

    import lifelines
    from lifelines import CoxTimeVaryingFitter

    from rjtrial.survival import andersen_gill

    warnings.simplefilter("ignore")
    df = make_data(args.people)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, lifelines {lifelines.__version__}; "
        f"{len(df):,} rows, {df['id'].nunique():,} people, {int(df['event'].sum()):,} events; "
        f"median of {args.repeats}"
    )

    def ours():
        return andersen_gill(df, "arm + age + prior", start="start", stop="stop", event="event", id="id")

    t_ours, runs = median_time(ours, args.repeats)
    fit = ours()
    print(f"  rjtrial andersen_gill (Efron, robust) {t_ours:8.2f} s   runs {['%.2f' % r for r in runs]}")
    if not args.no_lifelines:
        cols = ["id", "start", "stop", "event", "arm", "age", "prior"]

        def theirs():
            return CoxTimeVaryingFitter().fit(
                df[cols], id_col="id", start_col="start", stop_col="stop", event_col="event"
            )

        t_lf, runs = median_time(theirs, args.repeats)
        lf = theirs()
        gap = float(np.max(np.abs(lf.params_[["arm", "age", "prior"]].to_numpy() - fit.params_.to_numpy())))
        print(
            f"  lifelines CoxTimeVaryingFitter (Efron, model-based) {t_lf:8.2f} s   runs {['%.2f' % r for r in runs]}"
            f"   lifelines / rjtrial = {t_lf / t_ours:.1f}x   max |coef diff| {gap:.1e}"
        )
    if not args.no_r:
        r = r_time(df, args.repeats)
        if r is not None:
            gap = float(np.max(np.abs(r[1] - fit.params_.to_numpy())))
            print(
                f"  R survival {r[2]} coxph(... + cluster(id)) {r[0]:8.2f} s   R / rjtrial = {r[0] / t_ours:.1f}x"
                f"   max |coef diff| {gap:.1e}"
            )


if __name__ == "__main__":
    main()
