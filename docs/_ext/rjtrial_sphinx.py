"""Sphinx glue for rjtrial's docstrings and the example gallery (loaded by ``docs/conf.py``).

* Docstring sections numpydoc does not know (``Fitted attributes``, ``Columns``, ``Sections``,
  ...) would be dropped by numpydoc with a warning; this extension keeps them: ``Fitted
  attributes`` join the ``Attributes`` section, any other becomes a rubric inside ``Notes``.
  Module docstrings (which numpydoc leaves alone) get their section headings as rubrics,
  since a section title cannot stand inside an ``automodule`` directive.
* The analysis scripts run in the gallery as they run from the command line: with
  ``__file__`` and ``__doc__`` set (sphinx-gallery withholds them) and ``sys.exit(main())`` at the end accepted
  when it exits 0 (a non-zero exit fails the build, as it fails the test).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
import sys
import tempfile
from pathlib import Path

#: Sections numpydoc parses (after its own capitalisation of each word).
NUMPYDOC_SECTIONS = {
    "Signature",
    "Summary",
    "Extended Summary",
    "Parameters",
    "Returns",
    "Yields",
    "Receives",
    "Raises",
    "Warns",
    "Other Parameters",
    "Attributes",
    "Methods",
    "See Also",
    "Notes",
    "Warnings",
    "References",
    "Examples",
}
_UNDERLINE = re.compile(r"^\s*-{3,}\s*$")


def _sections(lines: list[str]) -> list[tuple[int, str]]:
    """(line index, heading) of each numpydoc-style heading: a text line over a line of dashes."""
    found = []
    for i in range(len(lines) - 1):
        if (
            lines[i].strip()
            and not _UNDERLINE.match(lines[i])
            and _UNDERLINE.match(lines[i + 1])
            and (i == 0 or not lines[i - 1].strip())
        ):
            found.append((i, lines[i].strip()))
    return found


def _canonical(heading: str) -> str:
    return " ".join(word.capitalize() for word in heading.split(" "))


_PARAMETER = re.compile(r"^\S.*\s:\s")


def _as_definitions(body: list[str]) -> list[str]:
    """A ``name : type`` list (numpydoc's parameter layout) as reST definitions: a blank line
    before each name, so that a name without a description does not swallow the next."""
    indents = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    if not indents:
        return body
    base = min(indents)
    if not any(_PARAMETER.match(line[base:]) for line in body if line.strip()):
        return body
    out: list[str] = []
    for line in body:
        at_base = line.strip() and len(line) - len(line.lstrip()) == base
        if at_base and out and out[-1].strip():
            out.append("")
        out.append(line)
    return out


_BORDER = re.compile(r"^(\s*)(=+)(\s+=+)+\s*$")


def _literal_bad_tables(lines: list[str]) -> list[str]:
    """Simple tables whose text runs across a column gap (written for ``help()``, not checked by
    docutils) shown as they are written, as a literal block, instead of failing the build."""
    out, i = [], 0
    while i < len(lines):
        match = _BORDER.match(lines[i])
        if not match:
            out.append(lines[i])
            i += 1
            continue
        indent = len(match.group(1))
        border = lines[i]
        gaps = [k for k, char in enumerate(border) if k >= indent and char == " " and k < len(border.rstrip())]
        borders = [i]
        j = i + 1
        while j < len(lines) and len(borders) < 3:
            if lines[j].strip() and _BORDER.match(lines[j]) and lines[j].strip() == border.strip():
                borders.append(j)
            elif not lines[j].strip() and len(borders) >= 2:
                break
            j += 1
        end = borders[-1]
        rows = [line for line in lines[i : end + 1] if not _BORDER.match(line)]
        if any(k < len(row) and row[k] != " " for row in rows for k in gaps):
            out += ["::", ""] + ["    " + line[indent:] if line.strip() else "" for line in lines[i : end + 1]]
        else:
            out += lines[i : end + 1]
        i = end + 1
    return out


def fold_sections(lines: list[str], *, module: bool) -> list[str]:
    """The docstring ``lines`` with unknown sections kept in a form numpydoc and docutils accept."""
    if module:  # no numpydoc parsing: every heading becomes a rubric
        out = _literal_bad_tables(list(lines))
        for i, heading in reversed(_sections(out)):
            out[i : i + 2] = [f".. rubric:: {heading}", ""]
        return out
    heads = _sections(lines)
    if not heads:
        return lines
    bounds = [
        (start, heads[k + 1][0] if k + 1 < len(heads) else len(lines), heading)
        for k, (start, heading) in enumerate(heads)
    ]
    head = lines[: heads[0][0]]
    known: list[tuple[str, list[str]]] = []
    extra_attributes: list[str] = []
    extra_notes: list[str] = []
    for start, stop, heading in bounds:
        body = lines[start + 2 : stop]
        name = _canonical(heading)
        if name in NUMPYDOC_SECTIONS:
            known.append((heading, body))
        elif name == "Fitted Attributes":
            extra_attributes += body
        else:
            extra_notes += [f".. rubric:: {heading}", ""] + _as_definitions(body) + [""]
    if extra_attributes:
        existing = next((k for k, (h, _) in enumerate(known) if _canonical(h) == "Attributes"), None)
        if existing is None:
            known.append(("Attributes", extra_attributes))
        else:
            known[existing] = (known[existing][0], known[existing][1] + extra_attributes)
    if extra_notes:
        existing = next((k for k, (h, _) in enumerate(known) if _canonical(h) == "Notes"), None)
        if existing is None:
            known.append(("Notes", extra_notes))
        else:
            known[existing] = (known[existing][0], known[existing][1] + [""] + extra_notes)
    out = list(head)
    for heading, body in known:
        out += [heading, "-" * len(heading)] + body
    return out


def _process_docstring(app, what, name, obj, options, lines):
    lines[:] = fold_sections(lines, module=(what == "module"))


# ------------------------------------------------------------------------- gallery hooks
class GalleryArguments:
    """``reset_argv`` of sphinx-gallery: the arguments each script gets, and ``__file__``.

    ``bcg_meta_analysis.py`` is given ``--plots DIR`` (a temporary folder) so that it draws
    its forest and funnel plots, which the gallery then shows.
    """

    def __call__(self, gallery_conf, script_vars):
        source = script_vars["src_file"]
        script_vars["example_globals"]["__file__"] = source
        # sphinx-gallery blanks __doc__ too; the scripts describe themselves from it (argparse)
        script_vars["example_globals"]["__doc__"] = ast.get_docstring(
            ast.parse(Path(source).read_text("utf-8")), clean=False
        )
        if Path(source).name == "bcg_meta_analysis.py":
            return ["--plots", tempfile.mkdtemp(prefix="rjtrial-docs-")]
        return []

    def __repr__(self):  # sphinx-gallery hashes the configuration by repr
        return "GalleryArguments()"


class ExitIsReturn:
    """``reset_modules`` of sphinx-gallery: during a script, ``sys.exit(0)`` just returns.

    The scripts end with ``sys.exit(main())``; an exit code other than 0 raises an error, so
    a script that finds a mismatch with R fails the documentation build.
    """

    _saved = None

    def __call__(self, gallery_conf, fname, when):
        if when == "before":
            ExitIsReturn._saved = sys.exit
            sys.exit = _exit_zero_returns
        elif ExitIsReturn._saved is not None:
            sys.exit = ExitIsReturn._saved
            ExitIsReturn._saved = None

    def __repr__(self):
        return "ExitIsReturn()"


def _exit_zero_returns(code=0):
    if code not in (0, None):
        raise RuntimeError(f"the script exited with status {code}")


# --------------------------------------------------------------------- cross-references
def _import(dotted: str):
    """The object a dotted name leads to (a module, then attributes), or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        except Exception:  # noqa: BLE001 - a module failing to import is not a reference to resolve
            return None
        try:
            for attribute in parts[cut:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            return None
        return obj
    return None


def _documented_name(target: str, objects: dict) -> str | None:
    """The name under which the object ``target`` leads to is documented (aliases, methods)."""
    obj = _import(target)
    if obj is None:
        return None
    obj = getattr(obj, "__func__", obj)
    obj = obj.fget if isinstance(obj, property) else obj
    module, qualname = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
    if module and qualname:
        parts = qualname.split(".")
        for cut in range(len(parts), 0, -1):  # Registry.export -> where Registry is documented + .export
            documented = objects.get(f"{module}:{'.'.join(parts[:cut])}")
            if documented:
                return ".".join([documented, *parts[cut:]])
    return None


def _resolve_missing(app, env, node, contnode):
    """Resolve a Python reference Sphinx did not find: an alias of a documented object
    (``rjtrial.Registry.export``), a name relative to the current module, or a module whose page
    does not index it."""
    if node.get("refdomain") != "py":
        return None
    objects = _objects(app)
    target = node["reftarget"].lstrip(".~")
    module, cls = node.get("py:module"), node.get("py:class")
    candidates = [target]
    if module:
        candidates = ([f"{module}.{cls}.{target}"] if cls else []) + [f"{module}.{target}", target]
        parent = module.rsplit(".", 1)[0]
        candidates.append(f"{parent}.{target}")
    documented_in = re.search(r"docstring of ([\w.]+)", str(node.source or ""))
    if documented_in:  # names relative to the module (or class) whose docstring holds the reference
        parts = documented_in.group(1).split(".")
        candidates += [".".join(parts[:cut] + [target]) for cut in range(len(parts), 1, -1)]
    domain = env.domains["py"] if hasattr(env.domains, "__getitem__") else env.get_domain("py")
    for candidate in candidates:
        if candidate in objects["modules"]:
            from sphinx.util.nodes import make_refnode

            return make_refnode(app.builder, node["refdoc"], objects["modules"][candidate], "", contnode, candidate)
        documented = _documented_name(candidate, objects["objects"])
        if documented and documented != node["reftarget"]:
            found = domain.resolve_xref(env, node["refdoc"], app.builder, "obj", documented, node, contnode)
            if found is not None:
                return found
    # a method a class inherits from a private mixin (Result.summary_frame): the class's page
    for candidate in candidates:
        owner, _, member = candidate.rpartition(".")
        documented = _documented_name(owner, objects["objects"]) if owner else None
        cls = _import(owner) if documented else None
        fields = getattr(cls, "__dataclass_fields__", {}) if inspect.isclass(cls) else {}
        if inspect.isclass(cls) and (hasattr(cls, member) or member in fields):
            found = domain.resolve_xref(env, node["refdoc"], app.builder, "class", documented, node, contnode)
            if found is not None:
                return found
    return None


def _objects(app) -> dict:
    cached = getattr(app, "_rjtrial_objects", None)
    if cached is None:
        cached = json.loads((Path(app.srcdir) / "api" / "objects.json").read_text(encoding="utf-8"))
        app._rjtrial_objects = cached
    return cached


def setup(app):
    app.connect("autodoc-process-docstring", _process_docstring, priority=400)  # before numpydoc (500)
    app.connect("missing-reference", _resolve_missing)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


#: The instances sphinx-gallery's configuration names (it wants callables, not classes).
gallery_arguments = GalleryArguments()
exit_is_return = ExitIsReturn()
