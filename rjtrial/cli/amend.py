"""``rjtrial amend``: amend the protocol of a running trial without breaking the seal
(library: :mod:`rjtrial.registry.amend`)."""

from __future__ import annotations

from rjtrial.cli._base import EXIT_OK, add_command, by_option, db_option, emit, json_option, key_option, require_key


def add_commands(sub) -> None:
    """Add ``amend`` to the ``rjtrial`` command-line parser."""
    p = add_command(
        sub,
        "amend",
        "amend the protocol (add sites or strata levels, close levels, new eligibility questions, "
        "more capacity) by appending a sealed segment",
        cmd_amend,
        description="Amend the protocol of a running trial. The amendment is appended: past allocations, sealed "
        "sequences and the published commitment are never rewritten. Refused with the reason: removing an arm, "
        "changing the ratio of ongoing strata, editing a past allocation. Amendment format: "
        "rjtrial.registry.amend (examples in synthetic/protocols/amendments/).",
    )
    p.add_argument("amendment", help="amendment TOML file")
    db_option(p)
    key_option(p, required=True)
    by_option(p)
    p.add_argument("--reason", required=True, help="why the protocol is amended (audit log, CONSORT, report)")
    p.add_argument("--at", help="when it takes effect, ISO-8601 (default: the file's effective, else now)")
    json_option(p)


def cmd_amend(args) -> int:
    """Run ``rjtrial amend``; returns the exit code."""
    from rjtrial.registry import Registry

    with Registry.open(args.db, key_path=require_key(args)) as reg:
        result = reg.amend(args.amendment, by=args.by, reason=args.reason, at=args.at)
    emit(args, result.to_dict(), result.format())
    return EXIT_OK
