"""Registry commands: ``init``, ``enrol``, ``event``, ``verify``, ``export``, ``consort``,
``unseal`` -- the sealed randomiser from the command line (library: :mod:`rjtrial.registry`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rjtrial.cli._base import (
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_VERIFY_FAILED,
    CommandError,
    add_command,
    by_option,
    confirm_irreversible,
    db_option,
    emit,
    json_option,
    key_option,
    key_path,
    pairs,
    require_key,
    yes_option,
)
from rjtrial.cli._io import write_private

ENROL_KEY_WARNING = (
    "rjtrial enrol: warning: the trial key opens the whole allocation sequence: enrolling with it is the trial "
    "statistician's tool; coordinators enrol through the service (rjtrial serve), which keeps the key on the server"
)


def add_commands(sub) -> None:
    """Add registry commands (``init``, ``enrol``, ``event``, ``export``, ``consort``, ``verify``, ``unseal``) to the ``rjtrial`` command-line parser."""
    p = add_command(sub, "init", "create a registry, seal the allocation sequence, write a new key file", cmd_init)
    p.add_argument("protocol", help="protocol TOML file")
    db_option(p)
    key_option(p, required=True)
    by_option(p)
    json_option(p)

    p = add_command(sub, "enrol", "screen a referral and, if eligible, randomise it", cmd_enrol)
    db_option(p)
    key_option(p, required=True)
    p.add_argument("--referral", required=True, help="referral id")
    p.add_argument("--stratum", action="append", metavar="NAME=LEVEL", help="a stratum level (repeat)")
    p.add_argument("--answer", action="append", metavar="QUESTION=ANSWER", help="an eligibility answer (repeat)")
    p.add_argument(
        "--at",
        help="time of screening and assignment, ISO-8601 (default: now); never earlier than "
        "the last randomisation (times follow the sequence: a trial cannot be back-filled out of "
        "order, screened-out referrals included) nor in the future",
    )
    p.add_argument(
        "--personal",
        action="append",
        metavar="FIELD=TEXT",
        help="free text identifying people (a name, notes), kept erasably out of the audit chain (repeat)",
    )
    p.add_argument(
        "--pseudonym-key",
        help="pseudonymisation key file: --referral is a police or court identifier, enrolled as its keyed pseudonym",
    )
    by_option(p)
    json_option(p)

    p = add_command(sub, "event", "record a post-randomisation event (treatment received, withdrawal...)", cmd_event)
    db_option(p)
    key_option(p, required=True)
    p.add_argument("--referral", required=True)
    p.add_argument(
        "--kind",
        required=True,
        choices=["treatment_received", "treatment_not_received", "withdrawal", "crossover", "note"],
    )
    p.add_argument("--detail", action="append", metavar="NAME=VALUE")
    p.add_argument(
        "--personal",
        action="append",
        metavar="FIELD=TEXT",
        help="free text identifying people, kept erasably out of the audit chain (repeat)",
    )
    p.add_argument("--at", help="when it happened, ISO-8601 (default: now)")
    by_option(p)
    json_option(p)

    p = add_command(sub, "verify", "check the audit chain and every allocation (exit 0 only when intact)", cmd_verify)
    p.formatter_class, p.epilog_from = argparse.RawDescriptionHelpFormatter, "rjtrial.registry.verify:LEVELS_HELP"
    db_option(p)
    key_option(p, required=False)
    p.add_argument("--commitment", help="the published commitment to check against")
    p.add_argument("--receipt", action="append", help="a receipt handed out at enrolment, to check is logged (repeat)")
    p.add_argument("--receipts", help="a file of receipts, one a line")
    json_option(p)

    p = add_command(sub, "export", "write the participants table as CSV", cmd_export)
    db_option(p)
    key_option(p, required=False)
    by_option(p)
    p.add_argument("-o", "--output", help="CSV file (default: standard output)")
    p.add_argument(
        "--blinded",
        action="store_true",
        help="arms replaced by neutral codes A, B... sealed under the key (needs --key); columns that "
        "show the arm (treatment_received, receipt) left out",
    )

    p = add_command(sub, "consort", "CONSORT flow counts", cmd_consort)
    db_option(p)
    json_option(p)

    p = add_command(
        sub,
        "unseal",
        "reveal the sequence after the trial and check it against the commitment",
        cmd_unseal,
        description="Reveal the whole allocation sequence and its seed, check them against the published "
        "commitment, and close the trial to enrolment for good. This cannot be undone: the "
        "command asks you to type the trial id (or pass --yes in a script).",
    )
    db_option(p)
    key_option(p, required=True)
    by_option(p)
    json_option(p)
    yes_option(p)


def cmd_init(args) -> int:
    """Run ``rjtrial init``; returns the exit code."""
    from rjtrial.protocol import Protocol
    from rjtrial.registry import Registry

    protocol = Protocol.from_toml(args.protocol)
    with Registry.create(args.db, protocol, key_path=require_key(args), by=args.by) as reg:
        data = {
            "trial_id": protocol.id,
            "db": str(args.db),
            "key": key_path(args),
            "commitment": reg.commitment,
            "method": protocol.randomisation.method,
            "sequences": len(protocol.sequence_keys()),
            "capacity": protocol.randomisation.capacity,
        }
    text = (
        f"initialised trial {protocol.id!r} in {args.db}\n"
        f"  method {protocol.randomisation.method}, {data['sequences']} sealed sequence(s) of "
        f"{data['capacity']} slots\n"
        f"  key written to {data['key']} (keep it secret and backed up; it is not stored in the database)\n"
        f"commitment (publish this with the trial registration):\n{reg.commitment}"
    )
    emit(args, data, text)
    return EXIT_OK


def cmd_enrol(args) -> int:
    """Run ``rjtrial enrol``; returns the exit code."""
    from rjtrial.registry import Registry

    strata = pairs(args.stratum, "--stratum")
    answers = pairs(args.answer, "--answer")
    personal = pairs(args.personal, "--personal") or None
    key = require_key(args)
    referral = args.referral
    if args.pseudonym_key:
        from rjtrial.pseudonym import pseudonym, read_key_file

        referral = pseudonym(referral, read_key_file(args.pseudonym_key))
    if sys.stdin.isatty():  # a person at a terminal, holding the key that opens the whole sequence
        print(ENROL_KEY_WARNING, file=sys.stderr)
    with Registry.open(args.db, key_path=key) as reg:
        result = reg.enrol(referral, strata=strata, answers=answers, by=args.by, at=args.at, personal=personal)
    if result.status == "randomised":
        text = (
            f"randomised {result.referral_id}: {result.arm} "
            f"(sequence number {result.sequence_number}, receipt {result.receipt})"
        )
    elif result.status == "ineligible":
        text = f"screened out {result.referral_id}: ineligible ({'; '.join(result.reasons)}); receipt {result.receipt}"
    else:
        text = f"refused {result.referral_id}: {'; '.join(result.reasons)}"
    data = result.to_dict()
    if result.status == "refused" and not args.json:
        print(f"rjtrial enrol: {text}", file=sys.stderr)
    else:
        emit(args, data, text)
    return EXIT_REFUSED if result.status == "refused" else EXIT_OK


def cmd_event(args) -> int:
    """Run ``rjtrial event``; returns the exit code."""
    from rjtrial.registry import Registry

    detail = pairs(args.detail, "--detail")
    personal = pairs(args.personal, "--personal") or None
    with Registry.open(args.db, key_path=require_key(args)) as reg:
        seq = reg.record_event(args.referral, args.kind, by=args.by, detail=detail, at=args.at, personal=personal)
    emit(
        args,
        {"referral_id": args.referral, "kind": args.kind, "audit_seq": seq},
        f"recorded {args.kind} for {args.referral} (audit entry {seq})",
    )
    return EXIT_OK


def _receipts(args) -> list[str]:
    receipts = list(args.receipt or [])
    if args.receipts:
        try:
            text = Path(args.receipts).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read receipts file {args.receipts}: {exc.strerror}") from None
        receipts += [line.strip() for line in text.splitlines() if line.strip()]
    return receipts


def cmd_verify(args) -> int:
    """Run ``rjtrial verify``; returns the exit code."""
    from rjtrial.registry import Registry

    with Registry.open(args.db, key_path=key_path(args)) as reg:
        result = reg.verify(expected_commitment=args.commitment, receipts=_receipts(args))
    emit(args, result.to_dict(), result.format())
    return EXIT_OK if result.ok else EXIT_VERIFY_FAILED


def cmd_export(args) -> int:
    """Run ``rjtrial export``; returns the exit code."""
    from rjtrial.registry import Registry, participants_csv

    if args.blinded and key_path(args) is None:
        raise CommandError("--blinded needs the trial's key file (the arm codes are sealed under it): --key KEYFILE")
    with Registry.open(args.db, key_path=key_path(args)) as reg:
        frame = reg.export(by=args.by, blinded=args.blinded)
    text = participants_csv(frame)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        write_private(args.output, text)
        kind = f" (blinded: arms coded {', '.join(frame.attrs['codes'])})" if args.blinded else ""
        print(f"wrote {len(frame)} participants to {args.output}{kind}", file=sys.stderr)
    return EXIT_OK


def cmd_consort(args) -> int:
    """Run ``rjtrial consort``; returns the exit code."""
    from rjtrial.registry import Registry

    with Registry.open(args.db) as reg:
        counts = reg.consort()
    emit(args, counts.to_dict(), counts.format())
    return EXIT_OK


def cmd_unseal(args) -> int:
    """Run ``rjtrial unseal``; returns the exit code."""
    from rjtrial.registry import Registry

    with Registry.open(args.db, key_path=require_key(args)) as reg:
        confirm_irreversible(
            args, what=f"unsealing trial {reg.trial_id!r} (it closes enrolment for good)", trial_id=reg.trial_id
        )
        result = reg.unseal(by=args.by)
    data = {
        "ok": result.ok,
        "commitment_ok": result.commitment_ok,
        "regenerated": result.regenerated,
        "seed": str(result.seed),
        "problems": list(result.problems),
        "sequences": result.sequences,
        "draws": result.draws,
    }
    regen = {True: "yes", False: "NO", None: "not checked (numpy version differs)"}[result.regenerated]
    lines = [
        f"unsealed: commitment {'matches' if result.commitment_ok else 'DOES NOT MATCH'}; "
        f"regenerated from the seed: {regen}; the trial is now closed to enrolment",
        f"seed {result.seed}",
    ]
    for key, arms in result.sequences.items():
        lines.append(f"{key}: {' '.join(arms[:12])}{' ...' if len(arms) > 12 else ''}")
    lines += [f"problem: {p}" for p in result.problems]
    emit(args, data, "\n".join(lines))
    return EXIT_OK if result.ok else EXIT_VERIFY_FAILED
