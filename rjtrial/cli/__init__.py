"""The ``rjtrial`` command line.

Every command prints a human-readable result, or one JSON object with ``--json``.
Errors are one line on standard error and a non-zero exit, never a traceback
(set ``RJTRIAL_DEBUG=1`` to see one). Exit codes: 0 success (an ineligible referral
is a success: it was recorded as screened out), 1 verification failed, 2 bad
input or usage, 3 enrolment refused, 70 internal error.

Commands live in one module per group (``rjtrial/cli/<group>.py``), each exposing
``add_commands(subparsers)``; :data:`COMMAND_MODULES` lists them in the order ``--help``
shows them. Shared pieces: :mod:`rjtrial.cli._base` (options, exit codes, printing) and
:mod:`rjtrial.cli._io` (reading tables, writing files owner-only and atomically). A
command parses its arguments, calls the library and prints; it holds no statistics and
leaves defaults to the library (options default to ``None``).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import os
import sys
import warnings
from typing import Sequence

from rjtrial._version import __version__
from rjtrial.cli._base import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    EXIT_VERIFY_FAILED,
    CommandError,
    Parser,
)
from rjtrial.errors import RjtrialError

__all__ = [
    "COMMAND_MODULES",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_REFUSED",
    "EXIT_USAGE",
    "EXIT_VERIFY_FAILED",
    "CommandError",
    "build_parser",
    "console",
    "main",
]

#: Command modules, in the order of ``rjtrial --help``.
COMMAND_MODULES = (
    "registry",  # init, enrol, event, verify, export, consort, unseal
    "amend",  # amend
    "blinding",  # sap freeze, unblind
    "backup",  # backup, restore
    "dataprotection",  # pseudonym key|apply, retention apply, access-log
    "design",  # design check
    "analysis",  # followup, analyse
    "demo",  # demo
    "scenarios",  # scenarios
    "meta",  # meta
    "simulate",  # simulate
    "power",  # power
    "monitor",  # monitor design, monitor look
    "rerandomise",  # rerandomise
    "report",  # report
    "web",  # serve, users
)


def build_parser() -> Parser:
    """The ``rjtrial`` argument parser, with every command of :data:`COMMAND_MODULES`."""
    parser = Parser(prog="rjtrial", description="Randomise and evaluate restorative-justice trials.")
    parser.add_argument("--version", action="version", version=f"rjtrial {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(f"rjtrial.cli.{name}").add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``rjtrial`` with ``argv`` (default: the process's arguments); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if getattr(args, "func", None) is None:
            parser.print_help()
            sys.stdout.flush()
            return EXIT_USAGE
        with _one_line_warnings(args.command):
            code = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handlers, not at exit
        return code
    except BrokenPipeError:  # before OSError, its parent: e.g. `rjtrial export --db T.db | head -1`
        return _reader_gone()
    except RjtrialError as exc:
        print(f"rjtrial: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as exc:  # bad values and unreadable/unwritable files
        if os.environ.get("RJTRIAL_DEBUG"):
            raise
        print(f"rjtrial: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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


def console() -> int:
    """The ``rjtrial`` console command: :func:`main` in a process that ends with it.

    Before the process exits, the garbage collector's objects are frozen (``gc.freeze``):
    the interpreter's shutdown then skips a last pass over every object the imports made
    (pandas, scipy, numba's typing registries), which cost a fifth of a second of each
    command. Nothing is left undone: the process's memory is released as it ends.
    """
    code = main()
    gc.freeze()
    return code


@contextlib.contextmanager
def _one_line_warnings(command: str):
    """Library warnings as one line each on standard error, ``rjtrial <command>: warning: ...``:
    never Python's two lines with a file path and source line. Each distinct message once."""
    seen: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        text = str(message).strip()
        if text not in seen:
            seen.add(text)
            print(f"rjtrial {command}: warning: {text}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=ResourceWarning)  # the process's housekeeping, not the user's
        warnings.showwarning = show
        yield


def _reader_gone() -> int:
    """The reader of standard output has gone (``| head -1`` exited): end quietly, as ``cat``
    does. Standard output is pointed at /dev/null so that flushing it at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. captured output): nothing to redirect
        pass
    return EXIT_OK
