"""Blinded analysis: ``rjtrial sap freeze`` and ``rjtrial unblind`` (``rjtrial export --blinded`` makes the
blinded table). Library: :mod:`rjtrial.registry.blinding`."""

from __future__ import annotations

from rjtrial.cli._base import (
    EXIT_OK,
    Parser,
    add_command,
    by_option,
    db_option,
    emit,
    json_option,
    key_option,
    key_path,
    require_key,
)


def add_commands(sub) -> None:
    """Add ``sap freeze`` and ``unblind`` to the ``rjtrial`` command-line parser."""
    sap = sub.add_parser(
        "sap",
        help="the statistical analysis plan: freeze it before unblinding",
        description="The statistical analysis plan (SAP) of a blinded analysis.",
    )
    inner = sap.add_subparsers(dest="sap_command", metavar="COMMAND", parser_class=Parser)
    sap.set_defaults(func=lambda args: sap.error("choose a command: freeze"))
    q = add_command(
        inner, "freeze", "record the plan's SHA-256 in the audit log (before `rjtrial unblind`)", cmd_freeze
    )
    q.add_argument("plan", help="the plan: any file (PDF, document, analysis script)")
    db_option(q)
    key_option(q, required=False)
    by_option(q)
    json_option(q)
    q.add_argument("--name", help="its name in the log (default: the file's name)")

    p = add_command(
        sub, "unblind", "reveal which code is which arm (key, logged with a reason; needs a frozen plan)", cmd_unblind
    )
    db_option(p)
    key_option(p, required=True)
    by_option(p)
    p.add_argument("--reason", required=True, help="why now (audit log, report)")
    json_option(p)


def cmd_freeze(args) -> int:
    """Run ``rjtrial sap freeze``; returns the exit code."""
    from rjtrial.registry import Registry

    with Registry.open(args.db, key_path=key_path(args)) as reg:
        result = reg.freeze_sap(args.plan, by=args.by, name=args.name)
    emit(args, result.to_dict(), result.format())
    return EXIT_OK


def cmd_unblind(args) -> int:
    """Run ``rjtrial unblind``; returns the exit code."""
    from rjtrial.registry import Registry

    with Registry.open(args.db, key_path=require_key(args)) as reg:
        result = reg.unblind(by=args.by, reason=args.reason)
    emit(args, result.to_dict(), result.format())
    return EXIT_OK
