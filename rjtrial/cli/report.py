"""``rjtrial report``: the trial report as one self-contained HTML file."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from rjtrial.cli._base import EXIT_OK, EXIT_VERIFY_FAILED


def cmd_report(args) -> int:
    """Run ``rjtrial report``: build the HTML report and write it (owner-only) to ``--output``."""
    from rjtrial.errors import RjtrialError
    from rjtrial.registry import key_path_from_env
    from rjtrial.report import build_report

    output = Path(args.output)
    if output.is_dir():
        raise RjtrialError(f"cannot write {output}: it is a folder; give a file name, e.g. {output / 'report.html'}")
    if not output.parent.is_dir():
        raise RjtrialError(f"cannot write {output}: folder {output.parent} does not exist")
    report = build_report(
        args.db,
        args.followup,
        victims=args.victims,
        costs=args.costs,
        key=key_path_from_env(args.key),
        seed=args.seed,
        command=_command(args),
        output=output,
        allow_missing=args.allow_missing,
        tau=args.tau,
        sequential_design=args.design,
        by=args.by,
    )
    verified = report.sections["design"]["verification"]["ok"]
    numbers = report.numbers
    print(
        f"wrote {output}: hazard ratio {numbers['hazard_ratio']:.3f} "
        f"({numbers['hr_ci_lower']:.3f} to {numbers['hr_ci_upper']:.3f}), "
        f"registry {'verified' if verified else 'DID NOT VERIFY'}",
        file=sys.stderr,
    )
    return EXIT_OK if verified else EXIT_VERIFY_FAILED


def _command(args) -> str:
    """The command as parsed (options in a fixed order; the key file's path is not shown)."""
    words = ["rjtrial", "report", "--db", str(args.db), "--followup", str(args.followup)]
    for option in ("victims", "costs", "tau", "design"):
        if getattr(args, option) is not None:
            words += [f"--{option}", str(getattr(args, option))]
    if args.key is not None:
        words += ["--key", "KEYFILE"]
    if args.allow_missing:
        words.append("--allow-missing")
    words += ["--seed", str(args.seed), "-o", str(args.output)]
    return shlex.join(words)


def add_commands(subparsers) -> None:
    """Add ``report`` to the ``rjtrial`` argparse ``subparsers``."""
    from rjtrial.report import DEFAULT_SEED

    help_text = "write the trial report: one self-contained HTML file (design, CONSORT, ITT, CACE, subgroups...)"
    p = subparsers.add_parser("report", help=help_text, description=help_text)
    p.set_defaults(func=cmd_report)
    p.add_argument("--db", required=True, help="registry: a SQLite file or a database URL")
    p.add_argument(
        "--followup", required=True, help="follow-up CSV (`rjtrial followup`), one row per randomised participant"
    )
    p.add_argument(
        "--victims", help="victims CSV: offender id, arm, satisfied, would_recommend, ies_r_baseline, ies_r_followup"
    )
    p.add_argument("--costs", help="unit costs TOML for the benefit-cost ratio (see synthetic/costs/)")
    p.add_argument("--key", help="trial key file: verify also checks the sealed sequence (default: $RJTRIAL_KEY)")
    p.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"seed of the benefit-cost bootstrap (default {DEFAULT_SEED})"
    )
    p.add_argument("--tau", type=float, help="RMST horizon in days (default: the longest time both arms are followed)")
    p.add_argument(
        "--design",
        help="the group-sequential design JSON (`rjtrial monitor design -o`): shown with the "
        "interim looks logged in the registry",
    )
    p.add_argument(
        "--allow-missing",
        action="store_true",
        help="report even if randomised participants lack a follow-up row (not a full ITT analysis)",
    )
    p.add_argument("-o", "--output", required=True, help="HTML file to write")
    p.add_argument(
        "--by",
        default=os.environ.get("USER", "unknown"),
        help="who makes the report (the registry's access log records it)",
    )
