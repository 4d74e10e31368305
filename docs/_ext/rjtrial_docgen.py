"""Pages of the documentation site generated at build time from the code and the tests.

Run by ``docs/conf.py`` before Sphinx reads the sources (so the generated pages are found
like hand-written ones), and importable without Sphinx (``tests/test_docs.py`` checks what it
writes):

* :func:`write_api_pages` -- ``docs/api/``: one page per public package or module of rjtrial,
  an ``autosummary`` of the names it exports (``__all__``; else its public functions and
  classes) and of its public submodules;
* :func:`cli_reference` -- the command-line reference, walking the parser of
  ``rjtrial.cli.build_parser()`` (argparse's documented structures only: ``_actions``,
  ``choices``, ``option_strings``, ``help``, ``metavar``, ``default``, ``required``);
* :func:`validation_tables` -- what is held to R and to which tolerance: the ``TOL`` tables of
  the validation helpers, one row per validation test module (its docstring's dataset and
  observed agreement, the R calls beside its assertions, the tolerance kinds it uses) and the
  reference scripts with the versions recorded in their JSON output;
* :func:`security_page` -- ``SECURITY.md`` when the project has one, else a pointer.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import io
import json
import os
import pkgutil
import re
import textwrap
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: API pages, grouped as the user guide is (title, modules). Every module listed here gets a page.
API_GROUPS = (
    ("The package", ("rjtrial", "rjtrial.errors")),
    (
        "Protocols, randomisation and the registry",
        ("rjtrial.protocol", "rjtrial.randomise", "rjtrial.registry", "rjtrial.web"),
    ),
    (
        "Follow-up and the trial's analysis",
        (
            "rjtrial.followup",
            "rjtrial.primary",
            "rjtrial.survival",
            "rjtrial.frequency",
            "rjtrial.victims",
            "rjtrial.compliance",
            "rjtrial.costs",
            "rjtrial.report",
        ),
    ),
    ("Effect sizes and meta-analysis", ("rjtrial.effects", "rjtrial.meta", "rjtrial.datasets")),
    ("Synthetic trials and power", ("rjtrial.simulate",)),
    ("Interim monitoring", ("rjtrial.monitor",)),
)
API_MODULES = tuple(name for _, names in API_GROUPS for name in names)


# ------------------------------------------------------------------------------- API pages
def public_names(module) -> list[str]:
    """The names a module offers: its ``__all__`` and the public functions and classes it defines
    (listed in ``__all__`` or not); without ``__all__``, also the upper-case constants it assigns."""
    defined = [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == module.__name__
    ]
    names = getattr(module, "__all__", None)
    if names is not None:
        exported = [name for name in names if not name.startswith("_")]
        return exported + sorted(set(defined) - set(exported))
    return sorted(defined + _constants(module))


def _constants(module) -> list[str]:
    """Public UPPER_CASE names assigned at the top of a module's own source."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return []
    names = []
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        for target in targets:
            if isinstance(target, ast.Name) and target.id.isupper() and not target.id.startswith("_"):
                names.append(target.id)
    return names


def public_submodules(module) -> list[str]:
    """Public modules directly inside a package (none for a plain module)."""
    if not hasattr(module, "__path__"):
        return []
    return sorted(
        f"{module.__name__}.{info.name}"
        for info in pkgutil.iter_modules(module.__path__)
        if not info.name.startswith("_")
    )


def object_key(module_name: str, name: str, value) -> str:
    """Identity of a documented object that survives re-import: where it is defined, and its name
    there (functions and classes); constants by the module that holds them and their name."""
    if inspect.isclass(value) or inspect.isfunction(value):
        return f"{value.__module__}:{value.__qualname__}"
    return f"{module_name}:{name}"


def _kind(value) -> str:
    if inspect.isclass(value):
        return "classes"
    if callable(value):
        return "functions"
    return "constants"


def api_plan() -> dict:
    """Which page documents what: every public name of every API module and of its public
    submodules is documented exactly once (two aliases of one class would be two descriptions).

    Its home is the API module (package page) that exports it and is nearest to where it is
    defined (``rjtrial.registry`` for ``Registry``, not ``rjtrial``); a name no package page
    exports is documented on its submodule's page. Returns ``{"pages": {page: {"own": [names],
    "aliases": [(name, documented name)]}}, "objects": {key: documented name}, "modules":
    [submodule pages]}``.
    """
    pages: dict[str, dict] = {}
    offers: dict[str, list[tuple[str, str]]] = {}  # key -> [(page, name)]
    values: dict[str, object] = {}
    modules = list(API_MODULES)
    for name in API_MODULES:
        for sub in public_submodules(importlib.import_module(name)):
            if sub not in modules:
                modules.append(sub)
    for page in modules:
        module = importlib.import_module(page)
        pages[page] = {"own": [], "aliases": []}
        for public in public_names(module):
            value = getattr(module, public)
            if inspect.ismodule(value):
                continue
            key = object_key(page, public, value)
            offers.setdefault(key, []).append((page, public))
            values[key] = value
    objects = {}
    for key, where in offers.items():
        defined_in = key.split(":")[0]

        def rank(item):
            page = item[0]
            is_package_page = page in API_MODULES
            nearest = len(page) if defined_in == page or defined_in.startswith(page + ".") else -1
            return (is_package_page, nearest)

        home, name = max(where, key=rank)
        pages[home]["own"].append(name)
        objects[key] = f"{home}.{name}"
        for page, alias in where:
            if page != home:
                pages[page]["aliases"].append((alias, objects[key]))
    return {
        "pages": pages,
        "objects": objects,
        "modules": [m for m in modules if m not in API_MODULES],
        "values": values,
    }


def _page(name: str, plan: dict, *, generated: str, colliding: bool = False) -> str:
    module = importlib.import_module(name)
    title = f"``{name}``"
    lines = [title, "=" * len(title), "", f".. automodule:: {name}", "   :no-members:"]
    if colliding:  # a module named like a function its package exports (rjtrial.survival.cox)
        lines.append("   :no-index:")
    lines += ["", f".. currentmodule:: {name}", ""]
    groups: dict[str, list[str]] = {"functions": [], "classes": [], "constants": []}
    entry = plan["pages"][name]
    for public in entry["own"]:
        groups[_kind(getattr(module, public))].append(public)
    headings = {"functions": "Functions", "classes": "Classes", "constants": "Constants"}
    for kind in ("functions", "classes", "constants"):
        if not groups[kind]:
            continue
        lines += [
            headings[kind],
            "-" * len(headings[kind]),
            "",
            ".. autosummary::",
            f"   :toctree: {generated}",
            "   :nosignatures:",
        ]
        lines += [""] + [f"   {public}" for public in groups[kind]] + [""]
    if entry["aliases"]:
        lines += [
            "Also available here",
            "-------------------",
            "",
            f"These names can be imported from ``{name}``; each is documented once, where it belongs:",
            "",
        ]
        lines += [f"- ``{name}.{alias}``: :obj:`{documented}`" for alias, documented in entry["aliases"]] + [""]
    # the command modules of rjtrial.cli are documented by the CLI reference, not here
    subs = [] if name == "rjtrial.cli" else [sub for sub in public_submodules(module) if sub not in API_MODULES]
    if subs:
        lines += ["Modules", "-------", "", ".. list-table::", "   :widths: 30 70", ""]
        for sub in subs:
            lines += [
                f"   * - :doc:`{sub} </api/modules/{sub}>`",
                f"     - {_first_line(importlib.import_module(sub)) or ' '}",
            ]
        lines += ["", ".. toctree::", "   :hidden:", ""] + [f"   /api/modules/{sub}" for sub in subs] + [""]
    return "\n".join(lines)


def _first_line(obj) -> str:
    doc = inspect.getdoc(obj) or ""
    return " ".join(doc.split("\n\n")[0].split())


def api_index() -> str:
    lines = [
        ".. _api:",
        "",
        "API reference",
        "=============",
        "",
        "Generated from the docstrings of the public names each package exports (its ``__all__``) "
        "and of the public functions and classes of its modules. Each object is documented once, "
        "on the page of the package that exports it.",
        "",
    ]
    for title, names in API_GROUPS:
        lines += [title, "-" * len(title), "", ".. toctree::", "   :maxdepth: 1", ""]
        lines += [f"   {name}" for name in names] + [""]
    return "\n".join(lines)


def write_api_pages(outdir: Path) -> list[Path]:
    """Write ``index.rst``, one page per module of :data:`API_MODULES` and one per public submodule
    into ``outdir``, and ``objects.json`` (object -> documented name, for cross-references)."""
    plan = api_plan()
    (outdir / "modules").mkdir(parents=True, exist_ok=True)
    written = [_write(outdir / "index.rst", api_index())]
    exported = {f"{page}.{name}" for page in API_MODULES for name in plan["pages"][page]["own"]}
    for name in API_MODULES:
        written.append(_write(outdir / f"{name}.rst", _page(name, plan, generated="generated/")))
    for name in plan["modules"]:
        written.append(
            _write(
                outdir / "modules" / f"{name}.rst",
                _page(name, plan, generated="../generated/", colliding=name in exported),
            )
        )
    written.append(
        _write(
            outdir / "objects.json",
            json.dumps(
                {"objects": plan["objects"], "modules": {m: f"api/modules/{m}" for m in plan["modules"]}},
                indent=1,
                sort_keys=True,
            ),
        )
    )
    _remove_stale(outdir, written, set(plan["objects"].values()))
    return written


def _remove_stale(outdir: Path, written: list[Path], documented: set[str]) -> None:
    """Pages of modules and objects that no longer exist (moved or renamed since the last
    build in this folder) would be orphans, and orphans are warnings: remove them."""
    keep = {path.resolve() for path in written}
    for page in (outdir / "modules").glob("*.rst"):
        if page.resolve() not in keep:
            page.unlink()
    for stub in (outdir / "generated").glob("*.rst"):
        if stub.stem not in documented:
            stub.unlink()


# ------------------------------------------------------------------------------ CLI reference
def _subparsers(parser: argparse.ArgumentParser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name)


def _default_text(action: argparse.Action) -> str | None:
    default = action.default
    if default in (None, False, argparse.SUPPRESS) or isinstance(
        action, (argparse._HelpAction, argparse._VersionAction)
    ):
        return None
    if isinstance(default, str) and default and default == os.environ.get("USER"):
        return "$USER"  # a default read from the environment: not the builder's own name
    return repr(default) if isinstance(default, str) else str(default)


def _help_text(action: argparse.Action, prog: str) -> str:
    text = action.help or ""
    if "%" in text:
        params = dict(vars(action), prog=prog)
        params = {k: getattr(v, "__name__", v) for k, v in params.items() if v is not argparse.SUPPRESS}
        if params.get("choices") is not None:
            params["choices"] = ", ".join(map(str, params["choices"]))
        text = text % params
    return text


def _escape(text: str) -> str:
    text = text.replace("\\", "\\\\").replace("*", "\\*").replace("`", "\\`").replace("|", "\\|")
    return re.sub(r"(?<=\w)_(?!\w)", r"\\_", text)  # "log_* measures": a word ending in _ is a reference in RST


def _argument_row(action: argparse.Action, prog: str) -> list[str]:
    if action.option_strings:
        names = ", ".join(action.option_strings)
        if action.nargs != 0:
            metavar = action.metavar or (action.dest.upper() if action.choices is None else None)
            names += f" {metavar}" if metavar else " {" + ",".join(map(str, action.choices)) + "}"
    else:
        names = action.metavar or action.dest
    details = []
    if action.required and action.option_strings:
        details.append("required")
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        details.append("one of " + ", ".join(f"``{choice}``" for choice in action.choices))
    default = _default_text(action)
    if default is not None:
        details.append(f"default ``{default}``")
    help_text = _escape(_help_text(action, prog)) if action.help else ""
    described = help_text + (f" ({'; '.join(details)})" if details else "")
    return [f"``{names}``", described or " "]


def _command_section(name: str, parser: argparse.ArgumentParser, help_text: str | None, level: int) -> list[str]:
    marks = "=-~^\"'"
    title = f"``{parser.prog}``"
    anchor = "cli-" + parser.prog.replace(" ", "-")
    lines = [f".. _{anchor}:", "", title, marks[level] * len(title), ""]
    description = parser.description or help_text
    if description:
        lines += [_escape(description), ""]
    usage = parser.format_usage().strip()
    lines += ["::", "", textwrap.indent(usage, "   "), ""]
    rows = [
        _argument_row(action, parser.prog)
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        and action.help is not argparse.SUPPRESS
    ]
    if rows:
        lines += [".. list-table::", "   :header-rows: 1", "   :widths: 35 65", "", "   * - argument", "     - meaning"]
        for first, second in rows:
            lines += [f"   * - {first}", f"     - {second}"]
        lines.append("")
    if parser.epilog:  # written for a terminal (argparse keeps its layout): shown as it is printed
        lines += ["::", ""] + ["    " + line for line in parser.epilog.splitlines()] + [""]
    for sub_name, sub, sub_help in _subparsers(parser):
        lines += _command_section(sub_name, sub, sub_help, level + 1)
    return lines


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """reST of every command of ``rjtrial`` (and its subcommands) with its arguments."""
    if parser is None:
        from rjtrial.cli import build_parser

        parser = build_parser()
    lines = [
        "Commands",
        "--------",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 25 75",
        "",
        "   * - command",
        "     - what it does",
    ]
    commands = list(_subparsers(parser))
    for name, sub, help_text in commands:
        lines += [f"   * - :ref:`rjtrial {name} <cli-rjtrial-{name}>`", f"     - {_escape(help_text or '')}"]
    lines.append("")
    for name, sub, help_text in commands:
        lines += _command_section(name, sub, help_text, 1)
    return "\n".join(lines)


# ------------------------------------------------------------------------- validation tables
VALIDATION = ROOT / "tests" / "validation"
REFERENCE = ROOT / "tests" / "reference"
#: Modules holding the tolerance tables, and what they serve (the tests import them).
TOLERANCE_SOURCES = (
    (
        "_survival_reference.py",
        "rjtrial.survival (every survival test module) and the MASS count "
        "models (``test_quine_insurance_mass_frequency.py``)",
    ),
    ("_metafor_reference.py", "rjtrial.effects and rjtrial.meta (every metafor test module, diagnostics included)"),
    ("test_frequency_compliance_r.py", "rjtrial.frequency, victims, compliance and costs on a generated trial"),
    (
        "_multilevel_reference.py",
        "rjtrial.meta's multilevel models, cluster-robust inference and RVE (metafor rma.mv, clubSandwich, robumeta)",
    ),
    ("_competing_reference.py", "rjtrial.survival's competing risks (survfit multi-state, cmprsk)"),
    (
        "_recurrent_reference.py",
        "rjtrial.survival's recurrent-event models (PWP, gamma frailty) and split_followup (coxph, tmerge)",
    ),
    ("test_metafor_options_bcg.py", "metafor's test and estimator options, permutation tests, BLUPs, regtest"),
    ("test_quine_insurance_rate_ratio.py", "the batched negative binomial engine against MASS glm.nb"),
    ("test_veteran_lung_batched_rmst.py", "the batched RMST engine against survfit"),
    ("test_rpact_group_sequential.py", "rjtrial.monitor: group-sequential designs and interim looks against rpact"),
    ("_bayesmeta_reference.py", "rjtrial.meta.bayes against bayesmeta and the numbers printed in Röver (2020)"),
)


def tolerance_table(path: Path) -> list[dict]:
    """The ``TOL`` dict of a validation module: kind, absolute and relative tolerance, and the
    comment written beside each kind (what quantities it covers)."""
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    node = next(
        n
        for n in tree.body
        if isinstance(n, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TOL" for t in n.targets)
    )
    comments = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    rows = []
    if not isinstance(node.value, ast.Dict):  # one tolerance for every quantity of the module
        value = ast.literal_eval(node.value)
        return [{"kind": "all", "abs": value, "rel": value, "covers": comments.get(node.lineno, "")}]
    for key, value in zip(node.value.keys, node.value.values):
        if key is None:  # ``**TOL``: the kinds of another table, listed with it
            continue
        spec = ast.literal_eval(value)
        if not isinstance(spec, dict):  # one number: the tolerance, as the module applies it
            spec = {"abs": spec, "rel": spec}
        rows.append(
            {
                "kind": ast.literal_eval(key),
                "abs": spec.get("abs", spec.get("atol", 0)),
                "rel": spec.get("rel", spec.get("rtol", 0)),
                "covers": comments.get(key.lineno, ""),
            }
        )
    return rows


_KIND = re.compile(r"""(?:TOL\[\s*["'](\w+)["']\s*\])|(?:(?:assert_close|close)\(.*,\s*["'](\w+)["']\s*\))""")
_R_COMMENT = re.compile(r"#\s*R:\s*(.+)$")
_JSON = re.compile(r"(\w+\.json)")


def _docstring_parts(doc: str) -> tuple[str, str, str]:
    """(title, data description, observed agreement) of a validation module's docstring."""
    paragraphs = [" ".join(p.split()) for p in doc.strip().split("\n\n") if p.strip()]
    title = paragraphs[0] if paragraphs else ""
    agreement = next((p for p in paragraphs if p.lower().startswith("observed agreement")), "")
    rest = [p for p in paragraphs[1:] if p != agreement and not p.startswith("Reference numbers")]
    return title, " ".join(rest[:1]), agreement


def _helpers(tree: ast.Module) -> list[Path]:
    """The private helper modules of tests/validation a module imports, and theirs in turn."""
    found: list[Path] = []
    pending = [tree]
    while pending:
        for node in pending.pop().body:
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("_"):
                path = VALIDATION / f"{node.module}.py"
                if path.is_file() and path not in found:
                    found.append(path)
                    pending.append(ast.parse(path.read_text(encoding="utf-8")))
    return found


def _kinds_used(source: str, kinds: set[str]) -> list[str]:
    """Tolerance kinds named in ``TOL["kind"]``, ``assert_close(..., "kind")`` or as the last item
    of a tuple (the tables of quantities: ``("estimate", "beta", "coef")``)."""
    used = set()
    for match in _KIND.finditer(source):
        used.update(k for k in match.groups() if k in kinds)
    for node in ast.walk(ast.parse(source)):
        if (
            isinstance(node, ast.Tuple)
            and node.elts
            and isinstance(node.elts[-1], ast.Constant)
            and node.elts[-1].value in kinds
            and len(node.elts) >= 3
        ):
            used.add(node.elts[-1].value)
    return sorted(used)


def validation_modules() -> list[dict]:
    """One record per ``tests/validation/test_*.py``: title, data, agreement, R calls, tolerance kinds."""
    all_kinds = {row["kind"] for name, _ in TOLERANCE_SOURCES for row in tolerance_table(VALIDATION / name)}
    datasets = json.loads((REFERENCE / "survival_datasets.json").read_text())["cases"]
    records = []
    for path in sorted(VALIDATION.glob("test_*.py")):
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
        title, data, agreement = _docstring_parts(ast.get_docstring(tree) or "")
        helpers = _helpers(tree)
        helper_source = "\n".join(h.read_text(encoding="utf-8") for h in helpers)
        r_calls = []
        for line in source.splitlines():
            match = _R_COMMENT.search(line)
            if match and match.group(1).strip() not in r_calls:
                r_calls.append(match.group(1).strip())
        if "_survival_datasets" in {h.stem for h in helpers}:
            prefix = re.search(
                r"""(?:cox_params|cases|km_params|logrank_params|rmst_params)\(\s*["'](\w+)["']""", source
            )
            if prefix:
                r_calls += [
                    case["r_call"]
                    for name, case in datasets.items()
                    if name.startswith(prefix.group(1) + "_") and case.get("r_call")
                ]
        tolerance = next(
            (
                name
                for name, _ in TOLERANCE_SOURCES
                if name == path.name
                or Path(name).stem in {h.stem for h in helpers}
                or (name == "_metafor_reference.py" and "_metafor_diagnostics_reference" in {h.stem for h in helpers})
            ),
            "",
        )
        kinds = _kinds_used(source + "\n" + helper_source, all_kinds)
        if not kinds and tolerance and [r["kind"] for r in tolerance_table(VALIDATION / tolerance)] == ["all"]:
            kinds = ["all"]  # one tolerance for the whole module
        jsons = sorted(set(_JSON.findall(source + helper_source)))
        n_tests = sum(isinstance(node, ast.FunctionDef) and node.name.startswith("test_") for node in ast.walk(tree))
        records.append(
            {
                "file": path.name,
                "title": title,
                "data": data,
                "agreement": agreement,
                "r_calls": r_calls,
                "kinds": kinds,
                "tolerance": tolerance,
                "references": jsons,
                "tests": n_tests,
            }
        )
    return records


def reference_scripts() -> list[dict]:
    """Each R script in ``tests/reference/`` with its JSON output, R and package versions, and users."""
    users: dict[str, list[str]] = {}
    for test in sorted((ROOT / "tests").rglob("test_*.py")):
        text = test.read_text(encoding="utf-8")
        if test.parent == VALIDATION:  # and what its helpers read for it
            text += "".join(h.read_text(encoding="utf-8") for h in _helpers(ast.parse(text)))
        for name in set(_JSON.findall(text)):
            users.setdefault(name, []).append(str(test.relative_to(ROOT / "tests")))
    rows = []
    for script in sorted(REFERENCE.glob("*.R")):
        if script.name.startswith("_"):
            continue
        output = script.with_suffix(".json")
        versions = ""
        if output.is_file():
            data = json.loads(output.read_text())
            meta = (
                data.get("meta")
                or data.get("versions")
                or {k: v for k, v in data.items() if k in ("r_version", "survival_version", "R", "packages")}
            )
            versions = _versions(meta)
        rows.append(
            {
                "script": script.name,
                "output": output.name if output.is_file() else "",
                "versions": versions,
                "used_by": sorted(users.get(output.name, [])),
            }
        )
    return rows


def _versions(meta) -> str:
    if not isinstance(meta, dict):
        return ""
    parts = []
    for key, value in meta.items():
        if key in ("generated", "script", "control", "confint_control", "n", "rossi_source", "jsonlite_version"):
            continue
        if isinstance(value, dict):
            parts.append(_versions(value))
        elif isinstance(value, (str, int, float)):
            text = str(value)
            if text.startswith("R version"):
                text = "R " + text.split()[2]
            label = key.replace("_version", "").replace("r_version", "R")
            parts.append(text if text.startswith("R ") else f"{label} {text}")
    return "; ".join(p for p in parts if p)


def _number(value) -> str:
    return "0" if value == 0 else f"{value:g}"


def validation_tables() -> str:
    """reST of the validation page's generated part (tolerances, modules, reference scripts)."""
    lines = [
        "Tolerances, by kind of quantity",
        "-------------------------------",
        "",
        "Each test holds a number to R within the tolerance of its kind: it passes when "
        "``|ours - R| <= absolute + relative * |R|``. One table per helper module, read from its "
        "``TOL`` dict when this page was built.",
        "",
    ]
    for name, serves in TOLERANCE_SOURCES:
        lines += [
            f"``tests/validation/{name}``: {serves}.",
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 18 12 12 58",
            "",
            "   * - kind",
            "     - absolute",
            "     - relative",
            "     - quantities",
        ]
        for row in tolerance_table(VALIDATION / name):
            lines += [
                f"   * - ``{row['kind']}``",
                f"     - {_number(row['abs'])}",
                f"     - {_number(row['rel'])}",
                f"     - {_escape(row['covers']) or ' '}",
            ]
        lines.append("")
    records = validation_modules()
    lines += [
        "What is held to R",
        "-----------------",
        "",
        f"{len(records)} validation modules in ``tests/validation/``, "
        f"{sum(r['tests'] for r in records)} test functions (many parametrized over cases and "
        "quantities). For each: the data, the R calls beside its assertions, the kinds of tolerance "
        "it uses and the agreement observed when it was written (from its docstring).",
        "",
    ]
    for record in records:
        title = record["file"]
        lines += [title, "~" * len(title), "", _escape(record["title"]), ""]
        if record["data"]:
            lines += [_escape(record["data"]), ""]
        facts = [f"tests: {record['tests']}"]
        if record["references"]:
            facts.append("reference numbers: " + ", ".join(f"``{r}``" for r in record["references"]))
        if record["kinds"]:
            source = f" (``{record['tolerance']}``)" if record["tolerance"] else ""
            facts.append("tolerance kinds" + source + ": " + ", ".join(f"``{k}``" for k in record["kinds"]))
        lines += [f"- {fact}" for fact in facts] + [""]
        if record["agreement"]:
            lines += [_escape(record["agreement"]), ""]
        if record["r_calls"]:
            lines += ["R calls:", "", ".. code-block:: none", ""]
            lines += [f"   {call}" for call in record["r_calls"]] + [""]
    lines += [
        "Reference scripts",
        "-----------------",
        "",
        "The R scripts that produced the numbers, the file each wrote (committed beside it), the "
        "versions it recorded, and the tests that read it. The test suite itself does not need R.",
        "",
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 22 20 28 30",
        "",
        "   * - script",
        "     - output",
        "     - R and packages",
        "     - read by",
    ]
    for row in reference_scripts():
        used = ", ".join(f"``{u}``" for u in row["used_by"]) or " "
        lines += [
            f"   * - ``{row['script']}``",
            f"     - ``{row['output']}``" if row["output"] else "     - (CSV)",
            f"     - {_escape(row['versions']) or ' '}",
            f"     - {used}",
        ]
    lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ security
def security_page() -> str:
    """Include ``SECURITY.md`` if the project has one; otherwise say where security is described."""
    if (ROOT / "SECURITY.md").is_file():
        return ".. include:: /../SECURITY.md\n   :parser: myst_parser.sphinx_\n"
    return (
        "Security\n========\n\nThe project's security policy (``SECURITY.md``) is not in this checkout. "
        "How concealment is protected is described in :doc:`/guide/coordinator` (the sealed sequence, "
        "the commitment, the audit log and ``verify``).\n"
    )


# ------------------------------------------------------------------------------------ writing
def _write(path: Path, text: str) -> Path:
    """Write only when the text changed, so that Sphinx rebuilds only what changed."""
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path


def generate(srcdir: Path) -> list[Path]:
    """Write every generated page under the documentation source folder ``srcdir``."""
    generated = srcdir / "_generated"
    generated.mkdir(exist_ok=True)
    written = write_api_pages(srcdir / "api")
    written.append(_write(generated / "cli.rst", cli_reference()))
    written.append(_write(generated / "validation.rst", validation_tables()))
    written.append(_write(generated / "security.rst", security_page()))
    return written
