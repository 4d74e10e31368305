"""The package runs on every Python that pyproject.toml's ``requires-python`` admits (3.10 on).

The suite runs on one interpreter, so what only breaks on another is read from the source
(``ast``): ``tomllib`` is new in Python 3.11; on 3.10 its stand-in is ``tomli`` (a dependency
there), and each import of ``tomllib`` must be chosen by ``sys.version_info`` (or fall back
on ImportError), else the module cannot be imported on 3.10 at all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rjtrial"
MODULES = sorted(str(p.relative_to(PACKAGE.parent)) for p in PACKAGE.rglob("*.py"))


def _guarded(parents: list[ast.AST]) -> bool:
    """Inside ``if sys.version_info ...`` or a ``try`` whose handlers catch an ImportError."""
    for node in parents:
        if isinstance(node, ast.If) and "version_info" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Try) and any(
            "ImportError" in ast.unparse(h.type) or "ModuleNotFoundError" in ast.unparse(h.type)
            for h in node.handlers
            if h.type is not None
        ):
            return True
    return False


def _unguarded_tomllib(source: str) -> list[int]:
    lines = []

    def visit(node: ast.AST, parents: list[ast.AST]) -> None:
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if "tomllib" in names and not _guarded(parents):
            lines.append(node.lineno)
        for child in ast.iter_child_nodes(node):
            visit(child, parents + [node])

    visit(ast.parse(source), [])
    return lines


def test_the_check_sees_an_unguarded_import_and_accepts_the_guarded_ones():
    assert _unguarded_tomllib("import tomllib\n") == [1]
    assert _unguarded_tomllib("def f():\n    from tomllib import loads\n") == [2]
    assert (
        _unguarded_tomllib(
            "import sys\nif sys.version_info >= (3, 11):\n    import tomllib\nelse:\n    import tomli as tomllib\n"
        )
        == []
    )
    assert (
        _unguarded_tomllib("try:\n    import tomllib\nexcept ModuleNotFoundError:\n    import tomli as tomllib\n") == []
    )


@pytest.mark.parametrize("module", MODULES)
def test_tomllib_is_imported_only_where_python_has_it(module):
    lines = _unguarded_tomllib((PACKAGE.parent / module).read_text(encoding="utf-8"))
    assert not lines, f"{module}:{lines}: 'import tomllib' fails on Python 3.10; choose tomli by sys.version_info"
