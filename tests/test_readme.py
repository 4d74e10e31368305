"""The README's commands exist: every `rjtrial ...` line names real commands and options."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from rjtrial.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


def _command_lines() -> list[str]:
    lines, inside, pending = [], False, ""
    for raw in README.read_text(encoding="utf-8").splitlines():
        if raw.startswith("```"):
            inside = raw.strip() == "```sh"
            continue
        if not inside:
            continue
        text = pending + raw.split(" #", 1)[0].strip()
        if text.endswith("\\"):
            pending = text[:-1] + " "
            continue
        pending = ""
        if text.startswith("rjtrial "):
            lines.append(text)
    return lines


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> set[str]:
    return {option for action in parser._actions for option in action.option_strings}


LINES = _command_lines()


def test_the_readme_shows_commands():
    assert len(LINES) >= 25


@pytest.mark.parametrize("line", LINES)
def test_readme_command_uses_real_commands_and_options(line):
    text = line.split("<<<", 1)[0]
    text = re.sub(r"[\[\]|]", " ", text)  # "[--test knha]" and "a|b" alternatives
    tokens = [t for t in shlex.split(text)[1:] if t != "..."]
    parser, path = build_parser(), ["rjtrial"]
    while tokens and tokens[0] in _subparsers(parser):
        path.append(tokens[0])
        parser = _subparsers(parser)[tokens.pop(0)]
    assert len(path) > 1, f"{line!r}: no rjtrial command"
    known = _options(parser)
    for token in tokens:
        if token.startswith("-") and not re.fullmatch(r"-?\d+(\.\d+)?", token):
            assert token.split("=", 1)[0] in known, f"{line!r}: {' '.join(path)} has no option {token}"


def test_no_readme_command_enrols_with_the_key_on_the_command_line():
    """Coordinators enrol through the service: the README never shows `enrol --key`."""
    enrols = [line for line in LINES if line.split()[1] == "enrol"]
    assert enrols and not any("--key" in line for line in enrols)
    text = README.read_text(encoding="utf-8")
    assert "**Coordinators enrol through the service**" in text


def test_the_readme_says_truncation_is_detectable_only_with_a_receipt():
    section = README.read_text(encoding="utf-8").split("### Verifying a trial", 1)[1].split("\n## ", 1)[0]
    assert "**Truncation is detectable only with a receipt**" in section
    assert "--receipt" in section and "--commitment" in section and "--key" in section
