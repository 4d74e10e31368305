"""Analysis commands: ``followup`` (criminal records -> one row per participant) and ``analyse``
(the primary intention-to-treat results). Library: :mod:`rjtrial.followup`, :mod:`rjtrial.primary`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from rjtrial.cli._base import EXIT_OK, add_command, emit, given, json_option
from rjtrial.cli._io import read_table, write_private


def add_commands(sub) -> None:
    """Add ``followup`` and ``analyse`` to the ``rjtrial`` command-line parser."""
    p = add_command(
        sub, "followup", "build the follow-up table (one row per participant) from criminal records", cmd_followup
    )
    p.add_argument(
        "--participants", required=True, help="participants CSV (id, arm, randomised_on, ...), e.g. from export"
    )
    p.add_argument("--offences", required=True, help="offences CSV (id, offence_date, conviction_date, offence_type)")
    p.add_argument("--custody", help="custody spells CSV (id, start, end)")
    p.add_argument("--window", type=int, help="follow-up window in days (default: two years, 730)")
    p.add_argument(
        "--date-basis", choices=["offence", "conviction"], help="date a reoffence counts from (default: offence)"
    )
    p.add_argument(
        "--conviction-lag", type=int, help="days allowed for conviction (default 0; needs --extraction-date)"
    )
    p.add_argument(
        "--extraction-date",
        help="date the records were extracted (YYYY-MM-DD; default today: follow-up "
        "never runs past the day the records were read)",
    )
    p.add_argument(
        "--allow-future-extraction",
        action="store_true",
        help="accept an extraction date after today (simulated records only)",
    )
    p.add_argument("--prior-window", type=int, help="days before assignment for prior counts (default 730)")
    p.add_argument("--preset", choices=["proven_reoffending"], help="England and Wales proven reoffending")
    p.add_argument(
        "--pseudonym-key",
        help="pseudonymisation key file: the offences and custody tables carry police "
        "identifiers in 'id'; they are replaced by their keyed pseudonyms (in "
        "memory) to link with participants enrolled under pseudonyms",
    )
    p.add_argument("-o", "--output", required=True, help="follow-up CSV to write")

    p = add_command(sub, "analyse", "primary intention-to-treat results from a follow-up table", cmd_analyse)
    p.add_argument("followup", help="follow-up CSV from `rjtrial followup`")
    p.add_argument("--control", help="the reference arm (default: 'control' if present)")
    p.add_argument("--tau", type=float, help="RMST horizon in days (default: the longest time both arms are followed)")
    p.add_argument(
        "--count-model",
        choices=["negative_binomial", "poisson"],
        help="model of reoffence counts (default: negative_binomial, falling back to poisson without overdispersion)",
    )
    json_option(p)


def cmd_followup(args) -> int:
    """Run ``rjtrial followup``; returns the exit code."""
    from rjtrial import followup, outcome

    participants = read_table(args.participants, "participants")
    offences = read_table(args.offences, "offences")
    custody = None if args.custody is None else read_table(args.custody, "custody")
    if args.pseudonym_key:  # link by pseudonym only: the identifiers never leave this process
        from rjtrial.pseudonym import pseudonymise_column, read_key_file

        key = read_key_file(args.pseudonym_key)
        offences = pseudonymise_column(offences, "id", key, table=args.offences)
        if custody is not None:
            custody = pseudonymise_column(custody, "id", key, table=args.custody)
    options: dict[str, Any] = {"custody": custody, "extraction_date": args.extraction_date}
    if args.allow_future_extraction:
        options["allow_future_extraction"] = True
    builder: Callable[..., Any]
    if args.preset == "proven_reoffending":
        builder = followup.proven_reoffending
    else:
        builder = followup.build
        options.update(
            given(
                window_days=args.window,
                date_basis=args.date_basis,
                conviction_lag_days=args.conviction_lag,
                prior_window_days=args.prior_window,
            )
        )
    table = builder(participants, offences, **options)  # its warnings: one line each (rjtrial.cli.main)
    write_private(args.output, table.to_csv(index=False, date_format="%Y-%m-%d"))
    sidecar = outcome.write_definition(table, args.output)
    print(
        f"wrote follow-up of {len(table)} participants to {args.output}: "
        f"{int(table['event'].sum())} with a reoffence, {int(table['reoffences'].sum())} reoffences\n"
        f"outcome: {outcome.describe(outcome.definition(table))}\n"
        f"(the definition is in {sidecar}, beside the table; analyse and report read it)",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_analyse(args) -> int:
    """Run ``rjtrial analyse``; returns the exit code."""
    from rjtrial import outcome
    from rjtrial.primary import primary_results

    table = read_table(args.followup, "follow-up")
    defn = outcome.read_definition(args.followup)
    if defn is not None:
        table.attrs.update(defn)
    results = primary_results(table, **given(control=args.control, tau=args.tau, count_model=args.count_model))
    emit(args, results.to_dict(), results.format())
    return EXIT_OK
