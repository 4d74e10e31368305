"""``rjtrial monitor design`` and ``rjtrial monitor look``: interim monitoring of a trial.

::

    rjtrial monitor design --looks 3 --spending obrien-fleming --alpha 0.05 --power 0.8 \\
        --hazard-ratio 0.8 -o design.json
    rjtrial monitor design --looks 3 --alternative less --alpha 0.025 --futility obrien-fleming --json
    rjtrial monitor look --db trial.db --followup followup.csv --design design.json --by "DMC statistician"

``design`` prints the boundaries of each look (z and hazard ratio), the alpha spent, the
maximum and expected events; ``-o`` writes the design as JSON for the looks. ``look`` reads the
follow-up table extracted for the look (it must be the registry's trial: every row a randomised
participant, in their arm), finds the earlier looks of the same design in the registry's audit
log, computes the look (:func:`rjtrial.monitor.look`) and records it there
(:meth:`rjtrial.registry.Registry.record_interim_look`: signed with ``--key``, unsigned
without). Statistics live in :mod:`rjtrial.monitor`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rjtrial.cli._base import (
    EXIT_OK,
    CommandError,
    by_option,
    db_option,
    emit,
    given,
    json_option,
    key_option,
    key_path,
)
from rjtrial.cli._io import write_private


def _fractions(text: str | None) -> list[float] | None:
    if text is None:
        return None
    values = []
    for item in str(text).split(","):
        try:
            values.append(float(item.strip()))
        except ValueError:
            raise CommandError(
                f"--information: {item.strip()!r} is not a number (expected e.g. --information 0.3,0.6,1)"
            ) from None
    return values


def add_commands(subparsers) -> None:
    """Add ``monitor design`` and ``monitor look`` to the ``rjtrial`` argparse ``subparsers``."""
    help_text = "interim monitoring: a group-sequential design, and each look at the accumulating results"
    monitor = subparsers.add_parser("monitor", help=help_text, description=help_text)
    commands = monitor.add_subparsers(dest="monitor_command", metavar="COMMAND", required=True)

    text = "boundaries, alpha spending and events of a group-sequential design (log-rank test)"
    p = commands.add_parser("design", help=text, description=text)
    p.add_argument(
        "--looks", type=int, help="number of analyses, the last final (default 3, or as many as --information gives)"
    )
    p.add_argument(
        "--spending", help="alpha spending: obrien-fleming (default), pocock, hsd:GAMMA (e.g. hsd:-4) or kim-demets:RHO"
    )
    p.add_argument(
        "--alpha",
        type=float,
        help="significance level of the whole trial (default 0.05; two-sided unless --alternative less/greater)",
    )
    p.add_argument("--power", type=float, help="power at --hazard-ratio (default 0.8)")
    p.add_argument(
        "--hazard-ratio",
        type=float,
        help="effect to detect: the conference arm's hazard of reoffending over control's (default 0.8)",
    )
    p.add_argument(
        "--futility", help="beta spending for a futility boundary (same names as --spending; needs --alternative less)"
    )
    p.add_argument(
        "--binding",
        action="store_true",
        default=None,
        help="the futility boundary binds (default: non-binding, the committee may continue past it)",
    )
    p.add_argument("--allocation", type=float, help="share randomised to the conference arm (default 0.5)")
    p.add_argument(
        "--information",
        metavar="T[,T...]",
        help="information fractions of the looks, comma-separated, ending at 1 (default equal)",
    )
    p.add_argument(
        "--alternative",
        choices=["two-sided", "less", "greater"],
        help="two-sided (default: stop for benefit or harm) or one-sided in the effect's direction",
    )
    p.add_argument("-o", "--output", help="write the design as JSON (for `rjtrial monitor look --design`)")
    json_option(p)
    p.set_defaults(func=cmd_design)

    text = "an interim look: boundary at the information reached, decision, conditional power; logged"
    p = commands.add_parser("look", help=text, description=text + " in the registry's audit log")
    db_option(p)
    p.add_argument("--followup", required=True, help="follow-up CSV extracted for this look (`rjtrial followup`)")
    p.add_argument("--design", required=True, help="the design JSON written by `rjtrial monitor design -o`")
    key_option(p, required=False)
    by_option(p)
    p.add_argument("--control", help="the control arm (default: the protocol's first arm)")
    p.add_argument(
        "--final",
        action="store_true",
        default=None,
        help="this is the final analysis (spend all the alpha left; default: at the last look or "
        "when the events reach the maximum)",
    )
    json_option(p)
    p.set_defaults(func=cmd_look)


def cmd_design(args) -> int:
    """Run ``rjtrial monitor design``; returns the exit code."""
    from rjtrial.monitor import design

    information = _fractions(args.information)
    looks = args.looks if args.looks is not None or information is None else len(information)
    result = design(
        **given(
            looks=looks,
            spending=args.spending,
            alpha=args.alpha,
            power=args.power,
            hazard_ratio=args.hazard_ratio,
            futility=args.futility,
            binding=args.binding,
            allocation=args.allocation,
            information=information,
            alternative=args.alternative,
        )
    )
    data = result.to_dict()
    if args.output:
        write_private(args.output, json.dumps(data, indent=2) + "\n")
        print(
            f"wrote the design to {args.output} (use it with: rjtrial monitor look --design {args.output})",
            file=sys.stderr,
        )
    emit(args, data, result.format())
    return EXIT_OK


def read_design(path: str):
    """The design a ``monitor design -o`` file holds (checked against its own settings)."""
    from rjtrial.monitor import SequentialDesign

    file = Path(path)
    if not file.is_file():
        raise CommandError(f"design file {path} not found (write one with `rjtrial monitor design -o {path}`)")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"design file {path} is not JSON: {str(exc).splitlines()[0]}") from None
    return SequentialDesign.from_dict(data, source=f"design file {path}")


def cmd_look(args) -> int:
    """Run ``rjtrial monitor look``: the look computed, checked and logged; returns the exit code."""
    from rjtrial import outcome
    from rjtrial.monitor import look
    from rjtrial.registry import Registry
    from rjtrial.report.data import check_followup, read_table

    design = read_design(args.design)
    table = read_table(args.followup, table="followup")
    with Registry.open(args.db, key_path=key_path(args)) as reg:
        frame = check_followup(table, reg.participants(), reg.trial_id, allow_missing=True)
        control = args.control if args.control is not None else reg.protocol.arms[0]
        earlier = reg.interim_looks(design_fingerprint=design.fingerprint)
        result = look(
            design,
            frame,
            previous_events=[entry["events"] for entry in earlier],
            control=control,
            **given(final=args.final),
        )
        definition = outcome.read_definition(args.followup) or {}
        summary = {
            **result.to_dict(),
            "design": design.to_dict()["settings"],
            "followup": {
                "file": table.name,
                "sha256": table.sha256,
                "rows": len(frame),
                "extracted_on": definition.get("extraction_date"),
            },
        }
        seq = reg.record_interim_look(summary, by=args.by)
        signed = reg.has_key
    data = {**summary, "audit_seq": seq, "signed": signed}
    text = (
        result.format() + f"\nrecorded in the audit log as entry {seq} "
        f"({'signed with the trial key' if signed else 'unsigned: no key given'}), by {args.by}"
    )
    emit(args, data, text)
    return EXIT_OK
