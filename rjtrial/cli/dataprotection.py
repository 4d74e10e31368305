"""Criminal-record data as the law requires: ``rjtrial pseudonym key|apply`` (keyed pseudonyms of police and
court identifiers), ``rjtrial retention apply`` (erase personal fields after the retention date, audited) and
``rjtrial access-log`` (who accessed which participant data, as CSV for the data-protection officer).
Library: :mod:`rjtrial.pseudonym`, :mod:`rjtrial.registry.retention`, :mod:`rjtrial.registry.access`."""

from __future__ import annotations

import sys

from rjtrial.cli._base import (
    EXIT_OK,
    Parser,
    add_command,
    by_option,
    db_option,
    emit,
    json_option,
    key_option,
    require_key,
)
from rjtrial.cli._io import write_private


def add_commands(sub) -> None:
    """Add ``pseudonym``, ``retention`` and ``access-log`` to the ``rjtrial`` command-line parser."""
    group = sub.add_parser(
        "pseudonym",
        help="keyed pseudonyms (HMAC-SHA-256) of police and court identifiers",
        description="Keyed pseudonyms of police and court identifiers (rjtrial.pseudonym).",
    )
    inner = group.add_subparsers(dest="pseudonym_command", metavar="COMMAND", parser_class=Parser)
    group.set_defaults(func=lambda args: group.error("choose a command: key, apply"))
    p = add_command(inner, "key", "write a new pseudonymisation key file (owner-only; never overwrites)", cmd_key)
    p.add_argument("path", help="the key file to create (keep it apart from the trial key and the research data)")
    p = add_command(inner, "apply", "replace a table's identifier column by pseudonyms", cmd_apply)
    p.add_argument("table", help="CSV table holding identifiers (e.g. a police extract)")
    p.add_argument("--pseudonym-key", required=True, help="pseudonymisation key file")
    p.add_argument("--column", default="id", help="the identifier column (default: id)")
    p.add_argument("-o", "--output", required=True, help="CSV to write (owner-only)")

    group = sub.add_parser(
        "retention",
        help="erase personal fields after the retention date (audited)",
        description="The retention policy (rjtrial.registry.retention).",
    )
    inner = group.add_subparsers(dest="retention_command", metavar="COMMAND", parser_class=Parser)
    group.set_defaults(func=lambda args: group.error("choose a command: apply"))
    p = add_command(
        inner,
        "apply",
        "erase the personal fields of records dated before a date; allocations and the audit chain stay verifiable",
        cmd_retention,
    )
    db_option(p)
    key_option(p, required=True)
    by_option(p)
    p.add_argument("--before", required=True, help="retention date YYYY-MM-DD: records dated before it are erased")
    p.add_argument("--reason", help="why (default: retention period ended)")
    p.add_argument("--dry-run", action="store_true", help="say what would be erased, erase nothing")
    json_option(p)

    p = add_command(
        sub,
        "access-log",
        "who viewed or exported which participant data (CSV for the data-protection officer)",
        cmd_access_log,
    )
    db_option(p)
    p.add_argument("-o", "--output", help="CSV file (owner-only; default: standard output)")


def cmd_key(args) -> int:
    """Run ``rjtrial pseudonym key``; returns the exit code."""
    from rjtrial.pseudonym import create_key_file

    create_key_file(args.path)
    print(
        f"wrote pseudonymisation key {args.path} (owner-only): whoever holds it can re-identify; keep it apart "
        "from the trial key and the research data, and back it up offline",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_apply(args) -> int:
    """Run ``rjtrial pseudonym apply``; returns the exit code."""
    from rjtrial.cli._io import read_table
    from rjtrial.pseudonym import pseudonymise_column, read_key_file

    key = read_key_file(args.pseudonym_key)
    table = read_table(args.table, "identifiers", dtype=str)
    out = pseudonymise_column(table, args.column, key, table=args.table)
    write_private(args.output, out.to_csv(index=False))
    print(f"wrote {len(out)} rows to {args.output}: column {args.column!r} pseudonymised", file=sys.stderr)
    return EXIT_OK


def cmd_retention(args) -> int:
    """Run ``rjtrial retention apply``; returns the exit code."""
    from rjtrial.registry import Registry
    from rjtrial.registry.retention import apply_retention

    with Registry.open(args.db, key_path=require_key(args)) as reg:
        result = apply_retention(
            reg,
            before=args.before,
            by=args.by,
            dry_run=args.dry_run,
            **({} if args.reason is None else {"reason": args.reason}),
        )
    emit(args, result.to_dict(), result.format())
    return EXIT_OK


def cmd_access_log(args) -> int:
    """Run ``rjtrial access-log``; returns the exit code."""
    from rjtrial.registry import Registry
    from rjtrial.registry.access import access_log

    with Registry.open(args.db) as reg:
        frame = access_log(reg)
    text = frame.to_csv(index=False)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_private(args.output, text)
        print(f"wrote {len(frame)} accesses to {args.output}", file=sys.stderr)
    return EXIT_OK
