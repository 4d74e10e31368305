"""``rjtrial scenarios``: list the scenarios, example protocols, cost files and input examples
rjtrial ships, or copy them to a folder to edit."""

from __future__ import annotations

from rjtrial.cli._base import EXIT_OK, add_command, emit, json_option


def add_commands(sub) -> None:
    """Add ``scenarios`` to the ``rjtrial`` command-line parser."""
    p = add_command(
        sub, "scenarios", "list the scenarios, protocols, cost files and examples rjtrial ships", run_scenarios
    )
    p.add_argument("--copy", metavar="DIR", help="copy them all into a new folder DIR, to edit")
    json_option(p)


def run_scenarios(args) -> int:
    """Run ``rjtrial scenarios``; returns the exit code."""
    from rjtrial import scenarios

    if args.copy:
        target = scenarios.copy_to(args.copy)
        emit(args, {"copied_to": str(target)}, f"copied rjtrial's scenarios, protocols and examples to {target}")
        return EXIT_OK
    items = scenarios.catalogue()
    width = max((len(item["name"]) for item in items), default=10)
    lines = [f"rjtrial ships these files (from {scenarios.folder()}; `rjtrial scenarios --copy DIR` to edit them):"]
    for kind, title in (
        ("scenario", "scenarios (rjtrial simulate, power, demo)"),
        ("protocol", "protocols (rjtrial init)"),
        ("costs", "unit costs (rjtrial report --costs; illustrative assumptions)"),
        ("example", "examples of every input format"),
    ):
        chosen = [item for item in items if item["kind"] == kind]
        if chosen:
            lines.append(f"\n{title}:")
            lines += [f"  {item['name']:<{width}}  {item['description']}".rstrip() for item in chosen]
    emit(args, {"folder": str(scenarios.folder()), "files": items}, "\n".join(lines))
    return EXIT_OK
