"""``rjtrial demo``: a whole synthetic trial, randomised, followed up, analysed and reported."""

from __future__ import annotations

from rjtrial.cli._base import EXIT_OK, add_command, given


def add_commands(sub) -> None:
    """Add ``demo`` to the ``rjtrial`` command-line parser."""
    p = add_command(sub, "demo", "run a whole synthetic trial: randomise, follow up, analyse, report", cmd_demo)
    p.add_argument("-o", "--output", help="output folder (default: ./rjtrial-demo)")
    p.add_argument("--seed", type=int, help="seed of everything random in the demo trial (default 2026)")
    p.add_argument("--participants", type=int, help="offenders to randomise (default 600)")
    p.add_argument("--scenario", help="scenario TOML (default: synthetic/jrc-multisite.toml)")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def cmd_demo(args) -> int:
    """Run ``rjtrial demo``; returns the exit code."""
    from rjtrial.demo import run_demo

    run_demo(
        **given(output=args.output, seed=args.seed, participants=args.participants, scenario_path=args.scenario),
        progress=not args.quiet,
    )
    return EXIT_OK
