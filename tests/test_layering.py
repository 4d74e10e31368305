"""The package's layering, read from its imports (ast): CONTRIBUTING.md, "Layers".

* an import never runs upward (interfaces -> orchestration -> analysis and registry ->
  engines -> foundation);
* statistics never import the registry, and the registry never imports statistics;
* no cycle between packages;
* no private name (``_name``) of another package is imported, and nothing outside
  ``rjtrial.registry`` reaches the registry's private attributes (``._engine``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "rjtrial"

#: Each top-level unit of the package and its layer (higher may import lower, not the reverse).
LAYERS = {
    # foundation: no rjtrial imports but each other
    "rjtrial._version": 0,
    "rjtrial.errors": 0,
    "rjtrial._canonical": 0,
    "rjtrial._result": 0,
    "rjtrial._files": 0,
    "rjtrial._checks": 0,
    "rjtrial.protocol": 0,
    "rjtrial.pseudonym": 0,
    "rjtrial._record_days": 0,
    "rjtrial._malloc": 0,
    # engines
    "rjtrial.randomise": 1,
    "rjtrial.datasets": 1,
    "rjtrial.scenarios": 1,
    # analysis (statistics) and the registry (storage of the trial): side by side, never each other
    "rjtrial.survival": 2,
    "rjtrial.frequency": 2,
    "rjtrial.effects": 2,
    "rjtrial.meta": 2,
    "rjtrial.followup": 2,
    "rjtrial.primary": 2,
    "rjtrial.victims": 2,
    "rjtrial.compliance": 2,
    "rjtrial.costs": 2,
    "rjtrial.outcome": 2,
    "rjtrial.rerandomisation": 2,
    "rjtrial.monitor": 2,
    "rjtrial.registry": 2,
    # orchestration: run trials end to end (simulator, demo) or read registry and analysis together (report)
    "rjtrial.report": 3,
    "rjtrial.simulate": 3,
    "rjtrial.demo": 3,
    # interfaces
    "rjtrial.cli": 4,
    "rjtrial.web": 4,
    # the package's own namespace (re-exports for users)
    "rjtrial": 5,
}
STATISTICS = {unit for unit, layer in LAYERS.items() if layer == 2 and unit != "rjtrial.registry"}


def _unit(module: str) -> str:
    """The top-level unit a dotted module name belongs to (``rjtrial.survival.cox`` -> ``rjtrial.survival``)."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def _modules():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text(encoding="utf-8"))


def _imports(name: str, tree: ast.AST):
    """(imported module, imported names) of every rjtrial import, ``from rjtrial import x`` resolved."""
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.ImportFrom)
            and node.module
            and (node.module == "rjtrial" or node.module.startswith("rjtrial."))
        ):
            if node.module == "rjtrial":
                for alias in node.names:
                    target = f"rjtrial.{alias.name}"
                    yield (
                        (target if (ROOT / alias.name).exists() or (ROOT / f"{alias.name}.py").exists() else "rjtrial"),
                        [],
                        node.lineno,
                    )
            else:
                yield node.module, [a.name for a in node.names], node.lineno
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("rjtrial"):
                    yield alias.name, [], node.lineno


MODULES = list(_modules())


def test_every_unit_has_a_layer():
    units = {_unit(name) for name, _, _ in MODULES}
    assert units - set(LAYERS) == set(), "give new packages a layer in tests/test_layering.py and CONTRIBUTING.md"


@pytest.mark.parametrize("name, path, tree", MODULES, ids=[m[0] for m in MODULES])
def test_imports_never_run_upward(name, path, tree):
    here = _unit(name)
    for target, _, line in _imports(name, tree):
        there = _unit(target)
        if there == here:
            continue
        assert LAYERS[there] <= LAYERS[here] or there == "rjtrial._version", (
            f"{path.name}:{line}: {here} (layer {LAYERS[here]}) imports {target} (layer {LAYERS[there]})"
        )
        assert not (here in STATISTICS and there == "rjtrial.registry"), (
            f"{path.name}:{line}: statistics ({here}) must not touch the registry"
        )
        assert not (here == "rjtrial.registry" and there in STATISTICS), (
            f"{path.name}:{line}: the registry must not compute statistics ({target})"
        )


@pytest.mark.parametrize("name, path, tree", MODULES, ids=[m[0] for m in MODULES])
def test_no_private_name_of_another_package(name, path, tree):
    here = _unit(name)
    for target, names, line in _imports(name, tree):
        there = _unit(target)
        if there == here or here == "rjtrial":
            continue
        private_module = any(part.startswith("_") for part in target.split(".")[2:])
        assert not private_module, f"{path.name}:{line}: imports the private module {target}"
        for imported in names:
            assert not (imported.startswith("_") and not imported.startswith("__")), (
                f"{path.name}:{line}: imports the private name {imported} of {target}"
            )


@pytest.mark.parametrize(
    "name, path, tree",
    [m for m in MODULES if _unit(m[0]) != "rjtrial.registry"],
    ids=[m[0] for m in MODULES if _unit(m[0]) != "rjtrial.registry"],
)
def test_nobody_reaches_into_the_registry(name, path, tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("_engine", "_key", "_signing_key"):
            pytest.fail(f"{path.name}:{node.lineno}: uses the registry's private .{node.attr}")


def test_no_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for name, _, tree in MODULES:
        for target, _, _ in _imports(name, tree):
            if _unit(target) != _unit(name):
                graph[_unit(name)].add(_unit(target))
    seen, stack = set(), []

    def visit(unit):
        if unit in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(unit) :] + [unit]))
        if unit in seen:
            return
        stack.append(unit)
        for nxt in sorted(graph[unit]):
            visit(nxt)
        stack.pop()
        seen.add(unit)

    for unit in sorted(graph):
        visit(unit)
