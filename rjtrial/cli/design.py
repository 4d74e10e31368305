"""``rjtrial design check``: validate a protocol and measure its predictability and imbalance."""

from __future__ import annotations

from rjtrial.cli._base import EXIT_OK, Parser, emit, json_option


def add_commands(sub) -> None:
    """Add ``design check`` to the ``rjtrial`` command-line parser."""
    design = sub.add_parser("design", help="design tools", description="design tools")
    design_sub = design.add_subparsers(dest="design_command", metavar="COMMAND", parser_class=Parser)
    p = design_sub.add_parser("check", help="validate a protocol and measure predictability and imbalance")
    p.set_defaults(func=cmd_design_check)
    p.add_argument("protocol")
    p.add_argument("--n", type=int, help="trial size for the imbalance simulation")
    p.add_argument("--seed", type=int, default=20240601, help="seed of the simulations")
    json_option(p)


def cmd_design_check(args) -> int:
    """Run ``rjtrial design check``; returns the exit code."""
    from rjtrial.protocol import Protocol
    from rjtrial.randomise.metrics import design_check

    protocol = Protocol.from_toml(args.protocol)
    report = design_check(protocol, n=args.n, rng=args.seed)
    emit(args, report.to_dict(), report.format())
    return EXIT_OK
