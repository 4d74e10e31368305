"""Count rjtrial's public functions and classes with and without a docstring.

Public means: every name a package or module exports (its ``__all__``) that is a function or a
class, plus every function or class defined at the top of a public module (no part of its
dotted name starts with ``_``) whose name does not start with ``_``. Each object is counted
once, however many modules export it. Usage::

    .venv/bin/python scripts/docstring_count.py            # counts, then each name without one
    .venv/bin/python scripts/docstring_count.py --json     # the same as one JSON object

Exit status 0 always (it reports; the docs build and the tests decide what must hold).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import pkgutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def public_modules(package: str = "rjtrial") -> list[str]:
    """Every importable module of the package whose dotted name has no private part."""
    root = importlib.import_module(package)
    names = [package]
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def public_objects(package: str = "rjtrial") -> dict[str, object]:
    """``{"module.name": object}`` for every public function and class, each object once (under
    the name of the module that defines it when that module is public, else the first exporter)."""
    found: dict[int, tuple[str, object]] = {}
    for module_name in public_modules(package):
        module = importlib.import_module(module_name)
        exported = [n for n in getattr(module, "__all__", []) if not n.startswith("_")]
        defined = [
            n
            for n, v in vars(module).items()
            if not n.startswith("_")
            and (inspect.isfunction(v) or inspect.isclass(v))
            and getattr(v, "__module__", None) == module_name
        ]
        for name in dict.fromkeys(exported + defined):
            value = getattr(module, name, None)
            if not (inspect.isfunction(value) or inspect.isclass(value)):
                continue
            home = f"{module_name}.{name}"
            known = found.get(id(value))
            if known is None or (getattr(value, "__module__", None) == module_name):
                found[id(value)] = (home, value)
    return dict(sorted(found.values(), key=lambda item: item[0]))


def has_docstring(value) -> bool:
    """Its own docstring (not one inherited from a base class, not dataclass's generated signature)."""
    doc = value.__dict__.get("__doc__") if inspect.isclass(value) else value.__doc__
    if not doc or not doc.strip():
        return False
    if inspect.isclass(value) and getattr(value, "__dataclass_fields__", None) is not None:
        return not doc.startswith(f"{value.__name__}(")  # dataclasses invent "Name(field, ...)"
    return True


def count(package: str = "rjtrial") -> dict:
    objects = public_objects(package)
    missing = [name for name, value in objects.items() if not has_docstring(value)]
    return {
        "public": len(objects),
        "with_docstring": len(objects) - len(missing),
        "without_docstring": len(missing),
        "missing": missing,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    result = count()
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"public functions and classes: {result['public']}")
    print(f"  with a docstring:    {result['with_docstring']}")
    print(f"  without a docstring: {result['without_docstring']}")
    for name in result["missing"]:
        print(f"    {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
