"""Placeholder: this command is being built (its owner replaces this file)."""


def add_parser(subparsers) -> None:
    """Add this module's command(s) to the ``rjtrial`` argparse ``subparsers``."""
