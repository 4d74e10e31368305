"""Two-stage individual-participant-data meta-analysis of simulated restorative justice trials.
============================================================================================

Simulates several synthetic trials (``synthetic/*.toml``; each one's own follow-up plan), analyses
each trial's follow-up table on its own -- Cox log hazard ratio of the first reoffence, negative
binomial log rate ratio of reoffences per street day, log risk ratio of any reoffence -- with
:func:`rjtrial.meta.two_stage`, then pools the per-trial effects by REML with
:func:`rjtrial.meta.pool`. Prints the per-trial and pooled results; arms are conference against
control (or court, in the Canberra scenario). Takes a few seconds. Run from the repository root::

    .venv/bin/python analysis/two_stage_ipd.py [--seed 2026]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from scipy import stats

from rjtrial.meta import pool, two_stage
from rjtrial.simulate import simulate_trial

SYNTHETIC = Path(__file__).resolve().parents[1] / "synthetic"
# trial label -> scenario file; two independent replicates of the London burglary trial
TRIALS = {
    "London burglary (a)": "jrc-london-burglary",
    "London burglary (b)": "jrc-london-burglary",
    "Canberra youth violence": "canberra-youth-violence",
    "Magistrates property": "magistrates-property",
    "JRC multisite": "jrc-multisite",
}
MEASURES = {"log_hazard_ratio": "hazard ratio", "log_rate_ratio": "rate ratio", "log_risk_ratio": "risk ratio"}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2026, help="seed of the simulated trials (default 2026)")
    args = parser.parse_args(argv)
    z = stats.norm.isf(0.025)
    seeds = np.random.SeedSequence(args.seed).spawn(len(TRIALS))
    tables = {}
    for (label, scenario), seed in zip(TRIALS.items(), seeds):
        trial = simulate_trial(SYNTHETIC / f"{scenario}.toml", rng=np.random.default_rng(seed), truth=False)
        tables[label] = trial.followup()
    print(f"{len(tables)} simulated trials (seed {args.seed}); conference against each trial's control arm\n")
    for measure, name in MEASURES.items():
        effects = two_stage(tables, measure=measure, treatment="conference")
        result = pool(effects, method="REML")
        print(f"{name} ({measure}; per trial, then pooled by REML)")
        print(f"  {'trial':<26}{'control':>9}{'n':>7}{'events':>8}{name:>14}{'95% CI':>20}")
        for label, row in effects.iterrows():
            se = np.sqrt(row.variance)
            low, high = np.exp(row.estimate - z * se), np.exp(row.estimate + z * se)
            n = int(row.n_treatment + row.n_control)
            events = int(row.events_treatment + row.events_control)
            print(
                f"  {label:<26}{row.control:>9}{n:>7}{events:>8}{np.exp(row.estimate):>14.3f}"
                f"{f'({low:.3f}, {high:.3f})':>20}"
            )
        print(
            f"  {'pooled (REML)':<50}{np.exp(result.estimate):>14.3f}"
            f"{f'({np.exp(result.ci_lower):.3f}, {np.exp(result.ci_upper):.3f})':>20}"
        )
        print(
            f"  tau2 {result.tau2:.4f} (Q-profile 95% CI {result.tau2_ci_lower:.4f} to {result.tau2_ci_upper:.4f}), "
            f"I2 {result.i2:.1f}%, Q {result.q:.2f} on {result.q_df} df (p = {result.q_p_value:.3f}), "
            f"prediction interval {np.exp(result.pi_lower):.3f} to {np.exp(result.pi_upper):.3f}\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
