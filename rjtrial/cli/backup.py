"""``rjtrial backup`` and ``rjtrial restore``: consistent online copies, checked restores, disaster recovery
(library: :mod:`rjtrial.registry.backup`)."""

from __future__ import annotations

from rjtrial.cli._base import EXIT_OK, add_command, by_option, db_option, emit, json_option, key_option, key_path


def add_commands(sub) -> None:
    """Add ``backup`` and ``restore`` to the ``rjtrial`` command-line parser."""
    p = add_command(
        sub,
        "backup",
        "write a consistent online copy of the registry (SQLite backup API or pg_dump) "
        "with its SHA-256 and the head it covers",
        cmd_backup,
    )
    db_option(p)
    by_option(p)
    json_option(p)
    p.add_argument("-o", "--output", required=True, help="backup file to write (owner-only)")

    p = add_command(
        sub,
        "restore",
        "restore a backup into a new store, refusing one that does not verify or is older than a receipt you hold",
        cmd_restore,
    )
    p.add_argument("backup", help="backup file from `rjtrial backup`")
    p.add_argument(
        "--db", help="where to restore: a new SQLite file or an empty PostgreSQL database (not needed with --check)"
    )
    key_option(p, required=False)
    by_option(p)
    p.add_argument("--commitment", help="the published commitment (of the trial or an amendment) to check against")
    p.add_argument("--receipt", action="append", help="a receipt handed out at enrolment (repeat)")
    p.add_argument("--receipts", help="a file of receipts, one a line (a label may follow each: referral id, arm)")
    p.add_argument(
        "--accept-missing",
        action="store_true",
        help="restore even if receipts you hold are not in the backup (they are listed: re-enter them)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="check the backup (restore it into a scratch file and verify it) without restoring",
    )
    json_option(p)


def cmd_backup(args) -> int:
    """Run ``rjtrial backup``; returns the exit code."""
    from rjtrial.registry.backup import backup

    result = backup(args.db, args.output, by=args.by)
    emit(args, result.to_dict(), result.format())
    return EXIT_OK


def cmd_restore(args) -> int:
    """Run ``rjtrial restore``; returns the exit code."""
    from rjtrial.cli._base import CommandError
    from rjtrial.cli.registry import _receipts
    from rjtrial.registry.backup import restore

    if args.db is None and not args.check:
        raise CommandError("give --db (a new SQLite file or an empty PostgreSQL database), or --check")
    result = restore(
        args.backup,
        args.db,
        key_path=key_path(args),
        expected_commitment=args.commitment,
        receipts=_receipts(args),
        accept_missing=args.accept_missing,
        check_only=args.check,
        by=args.by,
    )
    emit(args, result.to_dict(), result.format())
    return EXIT_OK
