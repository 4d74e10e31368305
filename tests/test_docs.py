"""The documentation site's generated pages and its docstring glue (docs/_ext), without Sphinx.

The site itself is built by ``scripts/docs.sh`` (warnings are errors); these tests check what
the generators write: every command in the CLI reference, every validation module and tolerance
in the validation tables, every public name documented exactly once, docstring sections that
numpydoc would drop kept, and the docstring count of ``scripts/docstring_count.py``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "_ext"))

import rjtrial_docgen as docgen  # noqa: E402
import rjtrial_sphinx  # noqa: E402

from rjtrial.cli import build_parser  # noqa: E402


def _commands(parser: argparse.ArgumentParser, prefix: str = "rjtrial") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found += _commands(sub, f"{prefix} {name}")
    return found


# ------------------------------------------------------------------------------ CLI reference
def test_cli_reference_has_every_command_and_option():
    text = docgen.cli_reference()
    parser = build_parser()
    commands = _commands(parser)
    assert len(commands) > 15
    for command in commands:
        assert f".. _cli-{command.replace(' ', '-')}:" in text, command
    for action in parser._actions:  # every option of one command, e.g. followup's
        if isinstance(action, argparse._SubParsersAction):
            for option in action.choices["followup"]._actions:
                for flag in [] if isinstance(option, argparse._HelpAction) else option.option_strings:
                    assert flag in text, flag


def test_cli_reference_walks_a_parser_it_is_given():
    parser = argparse.ArgumentParser(prog="tool")
    sub = parser.add_subparsers()
    run = sub.add_parser("run", help="run it")
    run.add_argument("--speed", type=int, default=3, choices=[1, 3], help="how fast (default %(default)s)")
    nested = run.add_subparsers().add_parser("inner", help="deeper")
    nested.add_argument("path", help="a file")
    text = docgen.cli_reference(parser)
    assert ".. _cli-tool-run:" in text and ".. _cli-tool-run-inner:" in text
    assert "how fast (default 3)" in text and "one of ``1``, ``3``" in text and "``path``" in text


def test_a_default_read_from_the_environment_is_not_the_builders_name(monkeypatch):
    monkeypatch.setenv("USER", "somebody")
    parser = argparse.ArgumentParser(prog="tool")
    parser.add_subparsers().add_parser("x").add_argument("--by", default="somebody", help="who")
    text = docgen.cli_reference(parser)
    assert "$USER" in text and "somebody" not in text


# -------------------------------------------------------------------------- validation tables
def _load(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


@pytest.mark.parametrize("name", [name for name, _ in docgen.TOLERANCE_SOURCES])
def test_tolerance_tables_are_the_tests_own(name):
    path = docgen.VALIDATION / name
    tol = _load(path).TOL
    rows = docgen.tolerance_table(path)
    if not isinstance(tol, dict):  # one tolerance for the whole module
        assert [(row["kind"], row["abs"], row["rel"]) for row in rows] == [("all", tol, tol)]
        return
    own = [row["kind"] for row in rows]  # a table may add to another's (``**TOL``)
    assert own and own == [kind for kind in tol if kind in own]
    for row in rows:
        spec = tol[row["kind"]]
        spec = spec if isinstance(spec, dict) else {"abs": spec, "rel": spec}
        assert row["abs"] == spec.get("abs", spec.get("atol")) and row["rel"] == spec.get("rel", spec.get("rtol"))


def test_every_validation_module_is_in_the_tables_with_its_r_calls():
    records = {record["file"]: record for record in docgen.validation_modules()}
    assert set(records) == {path.name for path in docgen.VALIDATION.glob("test_*.py")}
    for name, record in records.items():
        assert record["title"], name
        assert record["r_calls"], f"{name}: no R call found beside its assertions"
        assert record["kinds"] and record["tolerance"], name
        assert record["tests"] > 0, name
    lung = records["test_lung_ncctg1994_survival.py"]
    assert "coxph(Surv(time, status) ~ age + sex + ph.ecog + ph.karno + wt.loss, lung)" in lung["r_calls"]
    assert "survival_datasets.json" in lung["references"]
    assert records["test_metafor_bcg.py"]["tolerance"] == "_metafor_reference.py"


def test_reference_scripts_name_their_output_and_versions():
    rows = {row["script"]: row for row in docgen.reference_scripts()}
    assert {path.name for path in docgen.REFERENCE.glob("[!_]*.R")} == set(rows)
    assert rows["metafor_reference.R"]["output"] == "metafor_reference.json"
    assert "metafor 3.8.1" in rows["metafor_reference.R"]["versions"]
    assert "R 4.2.2" in rows["survival_reference.R"]["versions"]
    assert any("test_rossi1980_cox.py" in user for user in rows["survival_reference.R"]["used_by"])


# ---------------------------------------------------------------------------------- API pages
def test_every_public_name_is_documented_exactly_once():
    plan = docgen.api_plan()
    homes: dict[str, str] = {}
    for page, entry in plan["pages"].items():
        module = importlib.import_module(page)
        for name in entry["own"]:
            key = docgen.object_key(page, name, getattr(module, name))
            assert key not in homes, f"{key} documented on {homes[key]} and {page}"
            homes[key] = page
    assert set(homes) == set(plan["objects"])
    for page in docgen.API_MODULES:  # everything a package exports is on a page, its own or a link
        module = importlib.import_module(page)
        listed = set(plan["pages"][page]["own"]) | {alias for alias, _ in plan["pages"][page]["aliases"]}
        for name in getattr(module, "__all__", []):
            if not name.startswith("_") and not isinstance(getattr(module, name), type(sys)):
                assert name in listed, f"{page}.{name}"
    assert plan["objects"]["rjtrial.registry.core:Registry"] == "rjtrial.registry.Registry"
    assert plan["objects"]["rjtrial.meta.pooling:pool"] == "rjtrial.meta.pool"
    assert ("Registry", "rjtrial.registry.Registry") in plan["pages"]["rjtrial"]["aliases"]


def test_api_pages_are_written_with_the_object_map(tmp_path):
    docgen.write_api_pages(tmp_path)
    assert (tmp_path / "index.rst").is_file()
    survival = (tmp_path / "rjtrial.survival.rst").read_text()
    assert ".. automodule:: rjtrial.survival" in survival and "   kaplan_meier" in survival
    # a module named like a function its package exports does not index the name twice
    assert ":no-index:" in (tmp_path / "modules" / "rjtrial.survival.cox.rst").read_text()
    objects = json.loads((tmp_path / "objects.json").read_text())
    assert objects["objects"]["rjtrial.survival.cox:cox"] == "rjtrial.survival.cox"


# ------------------------------------------------------------------------- docstring glue
def test_unknown_sections_are_kept_not_dropped():
    lines = [
        "Summary.",
        "",
        "Parameters",
        "----------",
        "x : int",
        "    A number.",
        "",
        "Fitted attributes",
        "-----------------",
        "params_ : Series",
        "    Estimates.",
        "",
        "Columns",
        "-------",
        "a : str",
        "b : float",
        "    Bee.",
        "",
        "Notes",
        "-----",
        "A note.",
    ]
    out = rjtrial_sphinx.fold_sections(lines, module=False)
    text = "\n".join(out)
    assert "Fitted attributes" not in text and "Attributes\n----------\nparams_ : Series" in text
    assert ".. rubric:: Columns" in text and "a : str\n\nb : float" in text
    assert text.index(".. rubric:: Columns") > text.index("Notes\n-----")


def test_numpydoc_keeps_what_the_fold_moves():
    try:
        from numpydoc import docscrape as numpydoc
    except ImportError:  # the docs extras (bash scripts/docs.sh installs them; CI builds the docs first)
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("numpydoc is not installed in CI")
        pytest.skip("numpydoc is installed with the docs extras (bash scripts/docs.sh)")
    lines = ["Summary.", "", "Columns", "-------", "a : str", "    Ay."]
    parsed = numpydoc.NumpyDocString("\n".join(rjtrial_sphinx.fold_sections(lines, module=False)))
    assert any("a : str" in line for line in parsed["Notes"])


def test_module_headings_become_rubrics_and_broken_tables_literal_blocks():
    lines = [
        "Module.",
        "",
        "Pages",
        "-----",
        "=====  =====",
        "GET /  home",
        "POST /a/long/path  too wide",
        "=====  =====",
        "",
        "After.",
    ]
    out = rjtrial_sphinx.fold_sections(lines, module=True)
    assert out[2:4] == [".. rubric:: Pages", ""]
    assert "::" in out and "    POST /a/long/path  too wide" in out
    good = ["=====  =====", "a      b", "=====  ====="]
    assert rjtrial_sphinx.fold_sections(good, module=True) == good


# ---------------------------------------------------------------------------- docstring count
def test_docstring_count_reports_each_name_without_one():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "docstring_count.py"), "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(done.stdout)
    assert result["public"] == result["with_docstring"] + result["without_docstring"] > 300
    assert result["without_docstring"] == len(result["missing"])
    assert "rjtrial.survival.cox.cox" not in result["missing"]


def test_docstring_count_sees_a_missing_docstring(tmp_path, monkeypatch):
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text(
        '"""A package."""\n__all__ = ["documented", "bare"]\nfrom fakepkg.mod import bare, documented\n'
    )
    (package / "mod.py").write_text(
        'def documented():\n    """Yes."""\n\n\ndef bare():\n    pass\n\n\n'
        "def _private():\n    pass\n\n\nclass Plain:\n    pass\n"
    )
    (package / "_hidden.py").write_text("def nothing():\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = importlib.util.spec_from_file_location("docstring_count", ROOT / "scripts" / "docstring_count.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    result = module.count("fakepkg")
    assert result["public"] == 3
    assert result["missing"] == ["fakepkg.mod.Plain", "fakepkg.mod.bare"]
