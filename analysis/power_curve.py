"""Power curves of a trial design: simulated power over sizes and effects, beside Schoenfeld's.
============================================================================================

The designer's grid of the README: ``synthetic/jrc-london-burglary.toml`` (stratified
blocks), 200 to 1,600 randomised, a conference's effect on those who had one of 0.7, 0.8 and
0.9 (hazard ratios), 10,000 simulated trials per point, Cox test at two-sided 5%
(:func:`rjtrial.simulate.power.power`, common random numbers across the grid). It prints the
grid and writes ``results/power_curve.png`` (power against n per effect, 95% Monte Carlo
bands, Schoenfeld's curve with the intention-to-treat hazard ratio dashed),
``results/power_curve.csv`` and ``results/power_curve.json``. The same as::

    rjtrial power synthetic/jrc-london-burglary.toml --n 200,400,800,1600 --hazard-ratio 0.7,0.8,0.9 \\
        --reps 10000 --plot power.png --csv power.csv

Usage::

    .venv/bin/python analysis/power_curve.py                 # the README's grid (about 2 minutes on 2 cores)
    .venv/bin/python analysis/power_curve.py --reps 200      # a quick look

The documentation's example gallery shows this script without running it (it simulates
120,000 trials); the test suite runs a small configuration of it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", default=str(ROOT / "synthetic" / "jrc-london-burglary.toml"))
    parser.add_argument("--n", default="200,400,800,1600")
    parser.add_argument("--hazard-ratio", default="0.7,0.8,0.9")
    parser.add_argument("--reps", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--truth-population", type=int, default=2_000_000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rjtrial.simulate.power import power

    result = power(
        args.scenario,
        n=[int(v) for v in args.n.split(",")],
        hazard_ratio=[float(v) for v in args.hazard_ratio.split(",")],
        reps=args.reps,
        rng=args.seed,
        workers=args.workers,
        truth_population=args.truth_population,
    )
    print(result.format())
    args.output_dir.mkdir(parents=True, exist_ok=True)
    ax = result.plot()
    ax.figure.savefig(args.output_dir / "power_curve.png", dpi=150, bbox_inches="tight")
    plt.close(ax.figure)
    result.to_csv(args.output_dir / "power_curve.csv")
    (args.output_dir / "power_curve.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote power_curve.png, power_curve.csv and power_curve.json to {args.output_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
