"""The ``rjtrial`` command line.

Every command prints a human-readable result, or one JSON object with ``--json``.
Errors are one line on standard error and a non-zero exit, never a traceback
(set ``RJTRIAL_DEBUG=1`` to see one). Exit codes: 0 success (an ineligible referral
is a success: it was recorded as screened out), 1 verification failed, 2 bad
input or usage, 3 enrolment refused, 70 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from rjtrial._version import __version__
from rjtrial.errors import RjtrialError

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3, 70


ENROL_KEY_WARNING = (
    "rjtrial enrol: warning: the trial key opens the whole allocation sequence: enrolling with it is the trial "
    "statistician's tool; coordinators enrol through the service (rjtrial serve), which keeps the key on the server"
)


class CommandError(RjtrialError):
    """A command-line argument that cannot be used."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, not usage + error
        raise CommandError(f"{message} (see {self.prog} --help)")


def _pairs(values: Sequence[str] | None, option: str) -> dict[str, str]:
    """Parse NAME=VALUE arguments; each NAME at most once."""
    out: dict[str, str] = {}
    for item in values or []:
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name or not value:
            raise CommandError(f"{option} {item!r}: expected NAME=VALUE")
        if name in out:
            raise CommandError(f"{option}: {name!r} given twice")
        out[name] = value
    return out


def _key(args) -> str | None:
    from rjtrial.registry.core import key_path_from_env

    return key_path_from_env(getattr(args, "key", None))


def _require_key(args) -> str:
    key = _key(args)
    if key is None:
        raise CommandError("this command needs the trial's key file: --key KEYFILE or RJTRIAL_KEY=KEYFILE")
    return key


def _emit(args, data: dict, text: str) -> None:
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


# ------------------------------------------------------------------- commands
def cmd_init(args) -> int:
    from rjtrial.protocol import Protocol
    from rjtrial.registry import Registry

    protocol = Protocol.from_toml(args.protocol)
    with Registry.create(args.db, protocol, key_path=_require_key(args), by=args.by) as reg:
        data = {
            "trial_id": protocol.id,
            "db": str(args.db),
            "key": _key(args),
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
    _emit(args, data, text)
    return EXIT_OK


def cmd_enrol(args) -> int:
    from rjtrial.registry import Registry

    strata = _pairs(args.stratum, "--stratum")
    answers = _pairs(args.answer, "--answer")
    key = _require_key(args)
    if sys.stdin.isatty():  # a person at a terminal, holding the key that opens the whole sequence
        print(ENROL_KEY_WARNING, file=sys.stderr)
    with Registry.open(args.db, key_path=key) as reg:
        result = reg.enrol(args.referral, strata=strata, answers=answers, by=args.by, at=args.at)
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
        _emit(args, data, text)
    return EXIT_REFUSED if result.status == "refused" else EXIT_OK


def cmd_event(args) -> int:
    from rjtrial.registry import Registry

    detail = _pairs(args.detail, "--detail")
    with Registry.open(args.db, key_path=_require_key(args)) as reg:
        seq = reg.record_event(args.referral, args.kind, by=args.by, detail=detail, at=args.at)
    _emit(args, {"referral_id": args.referral, "kind": args.kind, "audit_seq": seq},
          f"recorded {args.kind} for {args.referral} (audit entry {seq})")
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
    from rjtrial.registry import Registry

    with Registry.open(args.db, key_path=_key(args)) as reg:
        result = reg.verify(expected_commitment=args.commitment, receipts=_receipts(args))
    _emit(args, result.to_dict(), result.format())
    return EXIT_OK if result.ok else EXIT_VERIFY_FAILED


def cmd_export(args) -> int:
    from rjtrial.registry import Registry

    from rjtrial.registry.reports import participants_csv

    with Registry.open(args.db, key_path=_key(args)) as reg:
        frame = reg.export(by=args.by)
    text = participants_csv(frame)
    if args.output in (None, "-"):
        sys.stdout.write(text)
    else:
        _write_atomic(Path(args.output), text)
        print(f"wrote {len(frame)} participants to {args.output}", file=sys.stderr)
    return EXIT_OK


def cmd_consort(args) -> int:
    from rjtrial.registry import Registry

    with Registry.open(args.db) as reg:
        counts = reg.consort()
    _emit(args, counts.to_dict(), counts.format())
    return EXIT_OK


def cmd_unseal(args) -> int:
    from rjtrial.registry import Registry

    with Registry.open(args.db, key_path=_require_key(args)) as reg:
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
    _emit(args, data, "\n".join(lines))
    return EXIT_OK if result.ok else EXIT_VERIFY_FAILED


def cmd_design_check(args) -> int:
    from rjtrial.protocol import Protocol
    from rjtrial.randomise.metrics import design_check

    protocol = Protocol.from_toml(args.protocol)
    report = design_check(protocol, n=args.n, rng=args.seed)
    _emit(args, report.to_dict(), report.format())
    return EXIT_OK


def _read_table(path: str, table: str):
    """Read a CSV table for a command; a missing or unreadable file is one clear error."""
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{table} file {path} not found")
    try:
        return pd.read_csv(file, dtype={"id": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise CommandError(f"{table} file {path} is not a readable CSV table: {str(exc).splitlines()[0]}") from None


def cmd_followup(args) -> int:
    import warnings

    from rjtrial import followup

    participants = _read_table(args.participants, "participants")
    offences = _read_table(args.offences, "offences")
    custody = None if args.custody is None else _read_table(args.custody, "custody")
    options = {"custody": custody, "extraction_date": args.extraction_date}
    if args.preset == "proven_reoffending":
        builder = followup.proven_reoffending
    else:
        builder = followup.build
        options.update(
            window_days=args.window,
            date_basis=args.date_basis,
            conviction_lag_days=args.conviction_lag,
            prior_window_days=args.prior_window,
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", followup.FollowupWarning)
        table = builder(participants, offences, **options)
    for warning in caught:
        print(f"rjtrial followup: warning: {warning.message}", file=sys.stderr)
    _write_atomic(Path(args.output), table.to_csv(index=False, date_format="%Y-%m-%d"))
    print(
        f"wrote follow-up of {len(table)} participants to {args.output}: "
        f"{int(table['event'].sum())} with a reoffence, {int(table['reoffences'].sum())} reoffences",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_analyse(args) -> int:
    from rjtrial.primary import primary_results

    table = _read_table(args.followup, "follow-up")
    results = primary_results(table, control=args.control, tau=args.tau, count_model=args.count_model)
    _emit(args, results.to_dict(), results.format())
    return EXIT_OK


def cmd_demo(args) -> int:
    from rjtrial.demo import run_demo

    run_demo(args.output, seed=args.seed, participants=args.participants, scenario_path=args.scenario,
             progress=not args.quiet)
    return EXIT_OK


def _write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside ``path`` and rename: never a half-written file."""
    if not path.parent.is_dir():
        raise CommandError(f"cannot write {path}: folder {path.parent} does not exist")
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------- parser
#: Modules adding their own commands (``add_parser(subparsers)``), in help order.
PLUGIN_COMMANDS = (
    "rjtrial.simulate.power_cli",  # power
    "rjtrial.randomise.rerandomise_cli",  # rerandomise
    "rjtrial.report.cli",  # report
    "rjtrial.web.cli",  # serve, users
)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rjtrial", description="Randomise and evaluate restorative-justice trials.")
    parser.add_argument("--version", action="version", version=f"rjtrial {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name, help_text, func):
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        return p

    def db(p):
        p.add_argument("--db", required=True, help="registry: a SQLite file or a database URL")

    def key(p, required):
        p.add_argument(
            "--key",
            help=f"trial key file ({'required' if required else 'optional'}; default: $RJTRIAL_KEY)",
        )

    def by(p):
        p.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who is acting (audit log)")

    def as_json(p):
        p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("init", "create a registry, seal the allocation sequence, write a new key file", cmd_init)
    p.add_argument("protocol", help="protocol TOML file")
    db(p), key(p, True), by(p), as_json(p)

    p = command("enrol", "screen a referral and, if eligible, randomise it", cmd_enrol)
    db(p), key(p, True)
    p.add_argument("--referral", required=True, help="referral id")
    p.add_argument("--stratum", action="append", metavar="NAME=LEVEL", help="a stratum level (repeat)")
    p.add_argument("--answer", action="append", metavar="QUESTION=ANSWER", help="an eligibility answer (repeat)")
    p.add_argument("--at", help="time of assignment, ISO-8601 (default: now)")
    by(p), as_json(p)

    p = command("event", "record a post-randomisation event (treatment received, withdrawal...)", cmd_event)
    db(p), key(p, True)
    p.add_argument("--referral", required=True)
    p.add_argument(
        "--kind",
        required=True,
        choices=["treatment_received", "treatment_not_received", "withdrawal", "crossover", "note"],
    )
    p.add_argument("--detail", action="append", metavar="NAME=VALUE")
    p.add_argument("--at", help="when it happened, ISO-8601 (default: now)")
    by(p), as_json(p)

    p = command("verify", "check the audit chain and every allocation (exit 0 only when intact)", cmd_verify)
    from rjtrial.registry.verify import LEVELS_HELP

    p.formatter_class, p.epilog = argparse.RawDescriptionHelpFormatter, LEVELS_HELP
    db(p), key(p, False)
    p.add_argument("--commitment", help="the published commitment to check against")
    p.add_argument("--receipt", action="append", help="a receipt handed out at enrolment, to check is logged (repeat)")
    p.add_argument("--receipts", help="a file of receipts, one a line")
    as_json(p)

    p = command("export", "write the participants table as CSV", cmd_export)
    db(p), key(p, False), by(p)
    p.add_argument("-o", "--output", help="CSV file (default: standard output)")

    p = command("consort", "CONSORT flow counts", cmd_consort)
    db(p), as_json(p)

    p = command("unseal", "reveal the sequence after the trial and check it against the commitment", cmd_unseal)
    db(p), key(p, True), by(p), as_json(p)

    design = sub.add_parser("design", help="design tools", description="design tools")
    design_sub = design.add_subparsers(dest="design_command", metavar="COMMAND", parser_class=_Parser)
    p = design_sub.add_parser("check", help="validate a protocol and measure predictability and imbalance")
    p.set_defaults(func=cmd_design_check)
    p.add_argument("protocol")
    p.add_argument("--n", type=int, help="trial size for the imbalance simulation")
    p.add_argument("--seed", type=int, default=20240601, help="seed of the simulations")
    as_json(p)

    p = command("followup", "build the follow-up table (one row per participant) from criminal records", cmd_followup)
    p.add_argument("--participants", required=True, help="participants CSV (id, arm, randomised_on, ...), e.g. from export")
    p.add_argument("--offences", required=True, help="offences CSV (id, offence_date, conviction_date, offence_type)")
    p.add_argument("--custody", help="custody spells CSV (id, start, end)")
    p.add_argument("--window", type=int, default=730, help="follow-up window in days (default 730)")
    p.add_argument("--date-basis", choices=["offence", "conviction"], default="offence")
    p.add_argument("--conviction-lag", type=int, default=0, help="days allowed for conviction (needs --extraction-date)")
    p.add_argument("--extraction-date", help="date the records were extracted (YYYY-MM-DD)")
    p.add_argument("--prior-window", type=int, default=730, help="days before assignment for prior counts")
    p.add_argument("--preset", choices=["proven_reoffending"], help="England and Wales proven reoffending")
    p.add_argument("-o", "--output", required=True, help="follow-up CSV to write")

    p = command("analyse", "primary intention-to-treat results from a follow-up table", cmd_analyse)
    p.add_argument("followup", help="follow-up CSV from `rjtrial followup`")
    p.add_argument("--control", help="the reference arm (default: 'control' if present)")
    p.add_argument("--tau", type=float, help="RMST horizon in days (default: the longest time both arms are followed)")
    p.add_argument("--count-model", choices=["negative_binomial", "poisson"], default="negative_binomial")
    as_json(p)

    p = command("demo", "run a whole synthetic trial: randomise, follow up, analyse, report", cmd_demo)
    p.add_argument("-o", "--output", default="rjtrial-demo", help="output folder (default: ./rjtrial-demo)")
    p.add_argument("--seed", type=int, default=2026, help="seed of everything random in the demo trial")
    p.add_argument("--participants", type=int, default=600, help="offenders to randomise (default 600)")
    p.add_argument("--scenario", help="scenario TOML (default: synthetic/jrc-multisite.toml)")
    p.add_argument("--quiet", action="store_true", help="no progress output")

    from rjtrial.meta.cli import add_parser as add_meta_parser

    add_meta_parser(sub)

    from rjtrial.simulate.cli import add_parser as add_simulate_parser

    add_simulate_parser(sub)
    # Commands that live beside their concept: each module's add_parser(sub) adds its own.
    import importlib

    for module in PLUGIN_COMMANDS:
        importlib.import_module(module).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            return EXIT_USAGE
        return args.func(args)
    except RjtrialError as exc:
        print(f"rjtrial: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as exc:  # bad values and unreadable/unwritable files
        if os.environ.get("RJTRIAL_DEBUG"):
            raise
        print(f"rjtrial: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. `rjtrial export --db T.db | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print("rjtrial: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a traceback
        if os.environ.get("RJTRIAL_DEBUG"):
            raise
        print(
            f"rjtrial: internal error: {type(exc).__name__}: {exc} (set RJTRIAL_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
