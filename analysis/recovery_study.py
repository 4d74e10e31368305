"""Recovery study: do rjtrial's estimators find the generator's truth?
===================================================================

Over replicate trials of one scenario (default ``synthetic/jrc-multisite.toml``: 2,000
offenders, minimisation 2:1) and of its null twin (``synthetic/null-effect.toml``), each
replicate is analysed as a real trial would be, against the truth of
:func:`rjtrial.simulate.truth.compute_truth` (population ``--truth-population``). Two routes:

* ``--engine batched`` (default): the replicate engine of power by simulation draws the
  trials in batches (:func:`rjtrial.simulate._replicates.replicate_batch`: each trial's
  follow-up is exactly :func:`rjtrial.followup.build` on the generator's records, tested)
  and the library's batched fits analyse them all at once -- Cox (Efron, Wald interval;
  :func:`rjtrial.survival.batched.cox_batch`), the negative binomial rate ratio (Wald;
  :func:`~rjtrial.survival.batched.negative_binomial_batch`, refitted by
  :func:`rjtrial.frequency.rate_ratio` where the batch cannot fit) and the RMST difference
  (Greenwood-type interval; :func:`~rjtrial.survival.batched.rmst_batch`), each held to R
  to 1e-6 or better. Thousands of replicates take seconds.
* ``--engine shipped``: each trial drawn by :func:`rjtrial.simulate.generator.generate`,
  followed up by :meth:`rjtrial.simulate.SimulatedTrial.followup` and analysed one by one with the
  functions a user calls: lifelines ``CoxPHFitter`` (model and robust intervals),
  :func:`rjtrial.frequency.rate_ratio` as shipped (which reports the Poisson fit where its
  negative binomial Newton step fails: flagged), the same NB2 model by the batched engine
  with statsmodels' model-based and sandwich (``HC1``) intervals (``log_rate_ratio_nb``),
  and :func:`rjtrial.survival.rmst`.

Per estimand it reports the mean estimate, the bias and its Monte Carlo standard error
(``sd / sqrt(R)``, combined with the truth's own Monte Carlo error), the coverage of the 95%
intervals with its binomial standard error, and under the null the rejection rate of the 5%
tests. The null's truth is exact (hazard ratio 1, rate ratio 1, RMST difference 0) because
its arms differ only by the conferences held.

Usage::

    .venv/bin/python analysis/recovery_study.py                      # 10,000 replicates, batched (~1 min)
    .venv/bin/python analysis/recovery_study.py --engine shipped     # 500 replicates, one by one (~20 min)
    .venv/bin/python analysis/recovery_study.py --quick              # 40 replicates of 600 offenders

A full run writes ``analysis/results/recovery_study.json`` (``--engine shipped``:
``recovery_study-shipped.json``); ``--quick`` writes ``recovery_study-quick.json``.

The documentation's example gallery shows this script without running it (a full run takes
minutes); the test suite runs a small configuration of it.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"
#: Each estimate and the truth it estimates.
ESTIMANDS = {
    "log_hazard_ratio": "log_hazard_ratio",
    "log_rate_ratio": "log_rate_ratio",
    "log_rate_ratio_nb": "log_rate_ratio",
    "rmst_difference_days": "rmst_difference_days",
}
Z95 = 1.959963984540054


def analyse(trial, *, cox_robust: bool = True) -> dict:
    """One trial's estimates with their 95% intervals (model-based, and robust where available).

    * ``log_hazard_ratio``: lifelines ``CoxPHFitter`` (Efron); ``robust=True`` (Lin-Wei) too.
    * ``log_rate_ratio``: :func:`rjtrial.frequency.rate_ratio` as shipped (NB2, model-based
      interval); ``rate_ratio_fell_back_to_poisson`` flags the fits where its Newton step
      returned NaN and it reported the Poisson fit instead (see the module notes).
    * ``log_rate_ratio_nb``: the same NB2 model fitted by the batched engine
      (:func:`rjtrial.survival.batched.negative_binomial_batch`, equal to R ``glm.nb`` to
      1e-12), with statsmodels GLM model-based and sandwich (``HC1``) intervals, alpha fixed
      at its estimate.
    * ``rmst_difference_days``: difference of the KM restricted means at the window, with
      :func:`rjtrial.survival.rmst`'s interval.
    """
    import pandas as pd
    import statsmodels.api as sm
    from lifelines import CoxPHFitter

    from rjtrial.frequency import rate_ratio
    from rjtrial.survival import rmst
    from rjtrial.survival.batched import negative_binomial_batch

    scenario = trial.scenario
    table = trial.followup()
    treated = (table["arm"] == scenario.conference_arm).to_numpy().astype(np.int64)
    data = pd.DataFrame(
        {
            "time": table["time_at_risk"].to_numpy(),
            "event": table["event"].to_numpy().astype(int),
            "conference": treated,
        }
    )
    out = {"n": int(len(table)), "events": int(table["event"].sum())}
    for kind, robust in (("model", False), ("robust", True))[: 2 if cox_robust else 1]:
        cox = CoxPHFitter().fit(data, "time", "event", robust=robust)
        beta, se = float(cox.params_["conference"]), float(cox.standard_errors_["conference"])
        out["log_hazard_ratio"] = beta
        out[f"log_hazard_ratio_{kind}"] = _wald(beta, se)
    with_time = table[table["exposure_days"] > 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        nb = rate_ratio(
            with_time, count="reoffences", exposure="exposure_days", group="arm", control=scenario.control_arm
        )
    out["log_rate_ratio"] = float(nb.params_.iloc[1])
    out["log_rate_ratio_model"] = _wald(out["log_rate_ratio"], float(np.sqrt(nb.variance_.iloc[1, 1])))
    out["rate_ratio_fell_back_to_poisson"] = bool(nb.alpha_ == 0)
    arm = (with_time["arm"] == scenario.conference_arm).to_numpy(float)
    y = with_time["reoffences"].to_numpy(float)
    x = with_time["exposure_days"].to_numpy(float)
    alpha = float(negative_binomial_batch(y, x, arm, trial=np.zeros(y.size, dtype=np.int64)).dispersion[0])
    glm = sm.GLM(
        y, np.column_stack([np.ones_like(y), arm]), family=sm.families.NegativeBinomial(alpha=alpha), offset=np.log(x)
    )
    for kind, cov in (("model", "nonrobust"), ("robust", "HC1")):
        fit = glm.fit(cov_type=cov, tol=1e-12)
        out["log_rate_ratio_nb"] = float(fit.params[1])
        out[f"log_rate_ratio_nb_{kind}"] = _wald(float(fit.params[1]), float(fit.bse[1]))
    window = scenario.analysis.window_days
    restricted = rmst(data, tau=window, time="time", event="event", group="conference", reference=0)
    difference = restricted.difference.iloc[0]
    out["rmst_difference_days"] = float(difference["estimate"])
    out["rmst_difference_days_model"] = _wald(out["rmst_difference_days"], float(difference["std_error"]))
    return out


def batched_estimates(scenario, *, replicates: int, seed: int, batch: int = 500) -> list[dict]:
    """Estimates of ``replicates`` trials drawn and fitted in batches (``--engine batched``)."""
    from rjtrial.simulate._replicates import replicate_batch
    from rjtrial.simulate._runner import fit
    from rjtrial.survival.batched import rmst_batch

    root = np.random.SeedSequence(seed)
    out = []
    for b, lo in enumerate(range(0, replicates, batch)):
        size = min(batch, replicates - lo)
        trials = replicate_batch(scenario, np.random.SeedSequence(root.entropy, spawn_key=(b,)), size)
        cox = fit(trials, "cox", None)
        nb = fit(trials, "rate_ratio", None)
        rm = rmst_batch(
            trials["time_at_risk"].T, trials["event"].T, trials["treatment"].T, tau=float(scenario.analysis.window_days)
        )
        for k in range(size):
            out.append(
                {
                    "events": int(cox["events"][k]),
                    "log_hazard_ratio": float(cox["estimate"][k]),
                    "log_hazard_ratio_model": _wald(float(cox["estimate"][k]), float(cox["std_error"][k])),
                    "log_rate_ratio": float(nb["estimate"][k]),
                    "log_rate_ratio_model": _wald(float(nb["estimate"][k]), float(nb["std_error"][k])),
                    "rmst_difference_days": float(rm.estimate[k]),
                    "rmst_difference_days_model": _wald(float(rm.estimate[k]), float(rm.std_error[k])),
                }
            )
    return out


def _wald(estimate: float, se: float) -> tuple[float, float, float]:
    """(ci_lower, ci_upper, p_value) of a Wald 95% interval and two-sided test of 0."""
    from scipy.special import ndtr

    return (estimate - Z95 * se, estimate + Z95 * se, float(2 * ndtr(-abs(estimate / se))))


@functools.lru_cache(maxsize=4)
def _scenario(path: str, overrides: str):
    from rjtrial.simulate import load_scenario

    return load_scenario(path, overrides=json.loads(overrides))


def _replicate(args) -> dict:
    scenario_path, overrides, seed, cox_robust = args
    from rjtrial.simulate.generator import generate

    scenario = _scenario(scenario_path, json.dumps(overrides, sort_keys=True))
    return analyse(generate(scenario, rng=seed), cox_robust=cox_robust)


def replicate_estimates(
    scenario_path, *, replicates: int, seed: int, overrides=None, workers: int = 1, cox_robust: bool = True
) -> list[dict]:
    """Estimates from ``replicates`` trials of the scenario, seeds drawn from ``seed``."""
    seeds = [int(s) for s in np.random.default_rng(seed).integers(0, 2**63, size=replicates)]
    jobs = [(str(scenario_path), dict(overrides or {}), s, cox_robust) for s in seeds]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(_replicate, jobs, chunksize=max(1, len(jobs) // (8 * workers))))
    return [_replicate(job) for job in jobs]


def summarise(estimates: list[dict], truth: dict, *, alpha: float = 0.05) -> dict:
    """Bias, Monte Carlo SE, coverage and rejection rate of each estimand.

    ``truth`` maps each estimand to ``(value, mc_se)`` (mc_se 0 for an exact truth).
    """
    out = {}
    r = len(estimates)
    for name, target in ESTIMANDS.items():
        if name not in estimates[0]:
            continue
        value, truth_se = truth[target]
        est = np.array([e[name] for e in estimates])
        sd = float(est.std(ddof=1))
        row = {
            "truth": value,
            "truth_mc_se": truth_se,
            "mean": float(est.mean()),
            "bias": float(est.mean() - value),
            "empirical_se": sd,
            "bias_mc_se": math.sqrt(sd**2 / r + truth_se**2),
        }
        row["bias_in_mc_se"] = row["bias"] / row["bias_mc_se"]
        for kind in ("model", "robust"):
            if f"{name}_{kind}" not in estimates[0]:
                continue
            lower, upper, p = (np.array([e[f"{name}_{kind}"][j] for e in estimates]) for j in range(3))
            cover = float(np.mean((lower <= value) & (value <= upper)))
            reject = float(np.mean(p < alpha))
            row[kind] = {
                "coverage": cover,
                "coverage_mc_se": math.sqrt(0.95 * 0.05 / r),
                "mean_std_error": float(np.mean((upper - lower) / (2 * Z95))),
                "rejection_rate": reject,
                "rejection_rate_mc_se": math.sqrt(alpha * (1 - alpha) / r),
            }
        out[name] = row
    if "rate_ratio_fell_back_to_poisson" in estimates[0]:
        out["log_rate_ratio"]["poisson_fallback_rate"] = float(
            np.mean([e["rate_ratio_fell_back_to_poisson"] for e in estimates])
        )
    return out


def truth_values(scenario, *, population: int) -> dict:
    """``{estimand: (value, mc_se)}`` from compute_truth; exact for an exact null."""
    from rjtrial.simulate.truth import compute_truth

    itt = compute_truth(scenario, population=population)
    if itt["exact_null"]:
        return {"log_hazard_ratio": (0.0, 0.0), "log_rate_ratio": (0.0, 0.0), "rmst_difference_days": (0.0, 0.0)}, itt
    return {
        "log_hazard_ratio": (itt["log_hazard_ratio"], itt["log_hazard_ratio_mc_se"]),
        "log_rate_ratio": (itt["log_rate_ratio"], itt["log_rate_ratio_mc_se"]),
        "rmst_difference_days": (itt["rmst_difference_days"], itt["rmst_difference_mc_se"]),
    }, itt


def format_table(title: str, summary: dict) -> str:
    lines = [
        title,
        f"{'estimand':<22}{'truth':>10}{'mean':>10}{'bias':>10}{'MC SE':>9}{'bias/SE':>9}{'emp. SE':>9}"
        f"{'model SE':>10}{'cover':>7}{'reject':>8}{'robust SE':>10}{'cover':>7}{'reject':>8}",
    ]
    for name, row in summary.items():
        cells = ""
        for kind in ("model", "robust"):
            k = row.get(kind)
            cells += (
                f"{k['mean_std_error']:>{10}.4f}{k['coverage']:>7.3f}{k['rejection_rate']:>8.3f}"
                if k
                else f"{'-':>10}{'-':>7}{'-':>8}"
            )
        lines.append(
            f"{name:<22}{row['truth']:>10.4f}{row['mean']:>10.4f}{row['bias']:>10.4f}{row['bias_mc_se']:>9.4f}"
            f"{row['bias_in_mc_se']:>9.2f}{row['empirical_se']:>9.4f}{cells}"
        )
    fallback = summary.get("log_rate_ratio", {}).get("poisson_fallback_rate")
    if fallback is not None:
        lines.append(
            f"rate_ratio reported a Poisson fit (NaN negative binomial fit) in {fallback:.1%} of the replicates"
        )
    lines.append(
        "(coverage of 95% intervals; reject: 5% two-sided Wald test of no effect; MC SE of the bias includes the "
        "truth's own Monte Carlo error)"
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default=str(ROOT / "synthetic" / "jrc-multisite.toml"))
    parser.add_argument("--null-scenario", default=str(ROOT / "synthetic" / "null-effect.toml"))
    parser.add_argument(
        "--engine",
        choices=["batched", "shipped"],
        default="batched",
        help="batched: the replicate engine and batched fits; shipped: one trial at a time",
    )
    parser.add_argument("--replicates", type=int, default=None, help="default 10,000 batched, 500 shipped")
    parser.add_argument("--randomised", type=int, default=None, help="override the trial size")
    parser.add_argument("--truth-population", type=int, default=10_000_000)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--studies", default="effect,null", help="which studies to run (default: effect,null)")
    parser.add_argument("--quick", action="store_true", help="40 replicates of 600 offenders, truth from 1,000,000")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.quick:
        args.replicates, args.randomised, args.truth_population = 40, 600, 1_000_000
    if args.replicates is None:
        args.replicates = 10_000 if args.engine == "batched" else 500

    from rjtrial.simulate import load_scenario

    overrides = {}
    if args.randomised is not None:
        base = load_scenario(args.scenario)
        overrides = {
            "referrals.randomised": args.randomised,
            "referrals.rate_per_month": base.referrals.rate_per_month * args.randomised / base.referrals.randomised,
        }
    results = {
        "run_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "engine": args.engine,
        "replicates": args.replicates,
        "seed": args.seed,
        "overrides": overrides,
        "studies": {},
    }
    studies = [
        (label, path, seed)
        for label, path, seed in (("effect", args.scenario, args.seed), ("null", args.null_scenario, args.seed + 1))
        if label in args.studies.split(",")
    ]
    for label, path, seed in studies:
        scenario = load_scenario(path, overrides=overrides)
        started = time.perf_counter()
        truth, itt = truth_values(scenario, population=args.truth_population)
        truth_s = time.perf_counter() - started
        started = time.perf_counter()
        if args.engine == "batched":
            estimates = batched_estimates(scenario, replicates=args.replicates, seed=seed)
        else:
            estimates = replicate_estimates(
                path, replicates=args.replicates, seed=seed, overrides=overrides, workers=args.workers
            )
        summary = summarise(estimates, truth)
        results["studies"][label] = {
            "scenario": scenario.id,
            "randomised": scenario.referrals.randomised,
            "hazard_ratio_treated": scenario.reoffending.hazard_ratio_treated,
            "itt_truth": itt,
            "truth_seconds": round(truth_s, 1),
            "replicate_seconds": round(time.perf_counter() - started, 1),
            "mean_events": float(np.mean([e["events"] for e in estimates])),
            "summary": summary,
        }
        print(
            format_table(
                f"\n{label}: {scenario.id}, {scenario.referrals.randomised} randomised, {args.replicates:,} "
                f"replicates, {args.engine} (truth from {args.truth_population:,} people; "
                f"{results['studies'][label]['replicate_seconds']} s)",
                summary,
            ),
            flush=True,
        )
    results["versions"] = {"python": platform.python_version(), "numpy": np.__version__, "cpus": os.cpu_count()}
    name = "recovery_study" + ("-shipped" if args.engine == "shipped" else "") + ("-quick" if args.quick else "")
    output = args.output or RESULTS / f"{name}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=float) + "\n")
    print(f"\nwrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
