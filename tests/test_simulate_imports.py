"""The simulate package's modules import one another without cycles (read with ``ast``).

Issue 12 found two: ``scenario`` <-> ``_validate`` and ``generator`` <-> ``truth``. Every
import counts, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rjtrial" / "simulate"
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name.startswith("rjtrial.simulate."):
                head = name.split(".")[2]
                if head in MODULES and head != module:
                    found.add(head)
    return found


GRAPH = {m: _imports(m) for m in MODULES}


def _cycle_from(start: str) -> list[str] | None:
    stack = [(start, [start])]
    while stack:
        node, path = stack.pop()
        for nxt in GRAPH[node]:
            if nxt == start:
                return path + [start]
            if nxt not in path:
                stack.append((nxt, path + [nxt]))
    return None


@pytest.mark.parametrize("module", MODULES)
def test_no_import_cycle_through(module):
    assert _cycle_from(module) is None, " -> ".join(_cycle_from(module))


@pytest.mark.parametrize(
    "lower, upper",
    [
        ("_validate", "scenario"),
        ("truth", "generator"),
        ("_runner", "power"),
        ("_offending", "generator"),
        ("_replicates", "generator"),
    ],
)
def test_the_lower_module_does_not_import_the_upper(lower, upper):
    assert upper not in GRAPH[lower]


def test_the_graph_is_read():
    assert "_sections" in GRAPH["_validate"] and "truth" in GRAPH["generator"]
