"""What every command module shares: exit codes, the one-line parser error, common
options, NAME=VALUE pairs, the key file, and printing text or ``--json``.

A command module exposes ``add_commands(subparsers)`` -- the one way a command is added --
and each command is a function ``run_<name>(args) -> int`` set with
``parser.set_defaults(func=...)``. Statistics and storage live in the library; a command
parses, calls the library and prints.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from rjtrial.errors import RjtrialError

EXIT_OK, EXIT_VERIFY_FAILED, EXIT_USAGE, EXIT_REFUSED, EXIT_INTERNAL = 0, 1, 2, 3, 70


class CommandError(RjtrialError):
    """A command-line argument that cannot be used."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``rjtrial: error: ...``), not usage + error."""

    #: ``"module:NAME"`` of an epilog read only when the help is shown (so that building the
    #: parser imports no heavy module: ``rjtrial power`` need not import the registry).
    epilog_from: str | None = None

    def error(self, message):
        raise CommandError(f"{message} (see {self.prog} --help)")

    def format_help(self) -> str:
        if self.epilog is None and self.epilog_from is not None:
            import importlib

            module, _, name = self.epilog_from.partition(":")
            self.epilog = getattr(importlib.import_module(module), name)
        return super().format_help()


def add_command(subparsers, name: str, help_text: str, func, *, description: str | None = None):
    """Add one command (``rjtrial <name>``) running ``func(args)``; returns its parser."""
    p = subparsers.add_parser(name, help=help_text, description=description or help_text)
    p.set_defaults(func=func)
    return p


# ------------------------------------------------------------------ options many commands take
def db_option(p) -> None:
    p.add_argument("--db", required=True, help="registry: a SQLite file or a database URL")


def key_option(p, *, required: bool) -> None:
    p.add_argument("--key", help=f"trial key file ({'required' if required else 'optional'}; default: $RJTRIAL_KEY)")


def by_option(p) -> None:
    p.add_argument("--by", default=os.environ.get("USER", "unknown"), help="who is acting (audit log)")


def json_option(p) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")


# ------------------------------------------------------------------ values
def pairs(values: Sequence[str] | None, option: str) -> dict[str, str]:
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


def given(**options: Any) -> dict[str, Any]:
    """The options the user gave (not None), so that the library's own defaults apply to
    the rest: ``followup.build(..., **given(window_days=args.window))``."""
    return {name: value for name, value in options.items() if value is not None}


def key_path(args) -> str | None:
    """The key file from ``--key`` or ``$RJTRIAL_KEY`` (None when neither is set)."""
    from rjtrial.registry import key_path_from_env

    return key_path_from_env(getattr(args, "key", None))


def require_key(args) -> str:
    key = key_path(args)
    if key is None:
        raise CommandError("this command needs the trial's key file: --key KEYFILE or RJTRIAL_KEY=KEYFILE")
    return key


def emit(args, data: dict, text: str) -> None:
    """Print ``text``, or ``data`` as one JSON object with ``--json``."""
    if getattr(args, "json", False):
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text)


def warn(command: str, message: str) -> None:
    """One warning line on standard error: ``rjtrial <command>: warning: ...``."""
    print(f"rjtrial {command}: warning: {message}", file=sys.stderr)


def yes_option(p) -> None:
    p.add_argument("--yes", action="store_true", help="do it without asking (for scripts): this cannot be undone")


def confirm_irreversible(args, *, what: str, trial_id: str) -> None:
    """Ask the person at the terminal to type the trial id before an irreversible step;
    ``--yes`` skips the question; without a terminal and without ``--yes`` the command refuses."""
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise CommandError(
            f"{what} cannot be undone: run it from a terminal and type the trial id when asked, or pass --yes"
        )
    print(f"{what} cannot be undone. Type the trial id ({trial_id}) to go on: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline().strip()
    if answer != trial_id:
        raise CommandError(f"{what}: not confirmed (typed {answer!r}, not {trial_id!r}); nothing was changed")
