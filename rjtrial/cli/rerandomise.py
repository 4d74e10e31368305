"""``rjtrial rerandomise``: the re-randomisation test of a finished trial.

Reads the registry (no key needed, nothing written) and a follow-up CSV, re-randomises
by the trial's own design and prints the observed statistic, the randomisation p-value
with its Monte Carlo standard error, the asymptotic p-value and the design. Nothing
heavy is imported until the command runs.
"""

from __future__ import annotations

import argparse

STATISTIC_HELP = "logrank, rate, prevalence or mean:COLUMN (default logrank)"


def _statistic(value: str) -> str:
    if value in ("logrank", "rate", "prevalence") or (value.startswith("mean:") and len(value) > 5):
        return value
    raise argparse.ArgumentTypeError(f"must be logrank, rate, prevalence or mean:COLUMN, got {value!r}")


def add_commands(subparsers) -> None:
    """Add the ``rerandomise`` command to the ``rjtrial`` argparse ``subparsers``."""
    text = "randomisation test of a finished trial: re-randomise by its own design (blocks, strata, minimisation)"
    p = subparsers.add_parser("rerandomise", help=text, description=text)
    p.set_defaults(func=cmd_rerandomise)
    p.add_argument("--db", required=True, help="the trial's registry: SQLite file or database URL")
    p.add_argument("--followup", required=True, help="follow-up CSV (from `rjtrial followup`), one row per participant")
    p.add_argument("--statistic", type=_statistic, default="logrank", help=STATISTIC_HELP)
    p.add_argument("--reps", type=int, default=10_000, help="number of re-randomisations (default 10,000)")
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the re-randomisations (default: a fresh one, printed so the run can be repeated)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="threads to use (default: one per CPU; the result does not depend on it)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_rerandomise(args) -> int:
    """Run ``rjtrial rerandomise``; returns the exit code (0)."""
    import json

    from rjtrial.cli._io import read_table
    from rjtrial.randomise import new_seed
    from rjtrial.registry import Registry
    from rjtrial.rerandomisation import rerandomise

    if args.seed is not None and args.seed < 0:
        raise ValueError(f"--seed must be a non-negative whole number, got {args.seed}")
    followup = read_table(args.followup, "follow-up")
    seed = new_seed() if args.seed is None else args.seed
    with Registry.open(args.db) as registry:  # read only: no key, nothing written
        protocol, participants = registry.protocol, registry.participants()
    result = rerandomise(
        protocol, participants, followup, statistic=args.statistic, reps=args.reps, rng=seed, workers=args.workers
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(result.format())
    return 0
