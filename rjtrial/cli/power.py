"""``rjtrial power SCENARIO``: power of a scenario's trial design by simulation.

::

    rjtrial power synthetic/jrc-multisite.toml --n 200,400,800 --reps 2000
    rjtrial power synthetic/jrc-multisite.toml --n 800 --analysis rate_ratio --json
    rjtrial power SCENARIO --scheduler tcp://10.0.0.5:8786     # on a Dask cluster

Prints one row per sample size: the simulated power with its Monte Carlo standard
error and interval, the events and the mean estimate, and (for cox/logrank)
Schoenfeld's approximation with the intention-to-treat and the naive hazard ratio.
A progress bar goes to standard error when it is a terminal (or with ``--progress``).
Nothing heavy is imported until the command runs.
"""

from __future__ import annotations

import json
import sys

ANALYSES = ("cox", "logrank", "rate_ratio")  # rjtrial.simulate.power.ANALYSES (a test keeps them equal)


def add_commands(subparsers) -> None:
    """Add the ``power`` command to the ``rjtrial`` argparse ``subparsers``."""
    text = "power of a scenario's trial by simulation, beside Schoenfeld's approximation"
    p = subparsers.add_parser("power", help=text, description=text)
    p.set_defaults(func=cmd_power)
    p.add_argument("scenario", metavar="SCENARIO", help="scenario TOML file, e.g. synthetic/jrc-multisite.toml")
    p.add_argument("--n", default="200,400,800", metavar="N[,N...]",
                   help="numbers randomised, comma-separated (default 200,400,800)")
    p.add_argument("--reps", default=2000, type=int, help="simulated trials per size (default 2000)")
    p.add_argument("--analysis", default="cox", choices=ANALYSES,
                   help="cox (Efron, Wald; default), logrank, or rate_ratio (negative binomial)")
    p.add_argument("--alpha", default=0.05, type=float, help="two-sided significance level (default 0.05)")
    p.add_argument("--seed", default=1, type=int, help="seed of the simulation (default 1; printed with the result)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", default=None, type=int,
                       help="processes of the local pool (default: one per CPU; 1 runs in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="Dask scheduler address (e.g. tcp://host:8786): run there instead of the local pool")
    p.add_argument("--null", action="store_true", help="no treatment effect (type I error instead of power)")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="replace a scenario value (TOML syntax), e.g. --set treatment.conference_held=0.9 (repeat)")
    p.add_argument("--no-schoenfeld", action="store_true",
                   help="skip the Monte Carlo truth and Schoenfeld's approximation")
    p.add_argument("--truth-population", type=int, default=2_000_000,
                   help="simulated people for the truth behind Schoenfeld's columns (default 2,000,000)")
    p.add_argument("--truth-cache", default=None,
                   help="folder caching truths per scenario (default: $XDG_CACHE_HOME/rjtrial/truth; 'none' to disable)")
    progress = p.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show the progress bar even when standard error is not a terminal")
    progress.add_argument("--no-progress", dest="progress", action="store_false", help="never show it")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def parse_sizes(text: str) -> list[int]:
    """``"200,400,800"`` -> ``[200, 400, 800]``; raise ValueError naming ``--n``."""
    sizes = []
    for item in str(text).split(","):
        item = item.strip().replace("_", "")
        try:
            value = int(item)
        except ValueError:
            raise ValueError(f"--n: {item!r} is not a whole number (expected e.g. --n 200,400,800)") from None
        if value < 2:
            raise ValueError(f"--n: every sample size must be at least 2, got {value}")
        sizes.append(value)
    return sizes


def cmd_power(args) -> int:
    """Run ``rjtrial power``; returns the exit code (0)."""
    from rjtrial.cli.simulate import _cache_dir, parse_overrides
    from rjtrial.simulate.power import power
    from rjtrial.simulate.scenario import load_scenario

    sizes = parse_sizes(args.n)
    if args.reps < 1:
        raise ValueError(f"--reps must be at least 1, got {args.reps}")
    if not 0.0 < args.alpha < 1.0:
        raise ValueError(f"--alpha must lie strictly between 0 and 1, got {args.alpha}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers must be at least 1, got {args.workers}")
    if args.seed < 0:
        raise ValueError(f"--seed must be a non-negative whole number, got {args.seed}")
    if args.truth_population < 1:
        raise ValueError(f"--truth-population must be at least 1, got {args.truth_population}")
    scenario = load_scenario(args.scenario, overrides=parse_overrides(args.overrides))
    if args.null:
        scenario = scenario.with_null()
    show = args.progress if args.progress is not None else _is_terminal(sys.stderr)
    result = power(
        scenario, n=sizes, reps=args.reps, analysis=args.analysis, alpha=args.alpha, rng=args.seed,
        workers=args.workers, scheduler=args.scheduler, progress=show, schoenfeld=not args.no_schoenfeld,
        truth_population=args.truth_population, truth_cache_dir=_cache_dir(args.truth_cache),
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format())
    return 0


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
