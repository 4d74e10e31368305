"""The files rjtrial ships for users to start from: synthetic trial scenarios, example
protocols, unit-cost files and examples of every input format.

Their readable source is the repository's ``synthetic/`` folder; an installed wheel carries a
copy inside the package (``rjtrial/_data/synthetic``, made when the wheel is built). Either way
:func:`path` finds a file by its name relative to that folder, and :func:`catalogue` lists
what ships (``rjtrial scenarios``).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from rjtrial.errors import RjtrialError

__all__ = ["catalogue", "copy_to", "folder", "path"]

_PACKAGED = Path(__file__).resolve().parent / "_data" / "synthetic"
_SOURCE = Path(__file__).resolve().parents[1] / "synthetic"


def folder() -> Path:
    """The folder of shipped files: the packaged copy in a wheel, else the source tree's."""
    for candidate in (_PACKAGED, _SOURCE):
        if candidate.is_dir():
            return candidate
    raise RjtrialError("rjtrial's scenario files are missing from this installation (no synthetic/ folder found)")


def path(name: str | Path) -> Path:
    """A shipped file by its name under ``synthetic/`` (``"jrc-multisite.toml"``,
    ``"protocols/jrc-london-burglary.toml"``, ``"costs/jrc-multisite.toml"``)."""
    file = folder() / name
    if not file.is_file():
        raise RjtrialError(f"rjtrial ships no file {name!r}; `rjtrial scenarios` lists those it ships")
    return file


def _describe(file: Path) -> str:
    """A file's name or description (its TOML's, or the first line of its leading comment)."""
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return ""
    for section, key in (
        ("scenario", "name"),
        ("trial", "name"),
        ("scenario", "description"),
        ("costs", "description"),
    ):
        value = data.get(section, {}).get(key) if isinstance(data.get(section), dict) else None
        if isinstance(value, str) and value:
            return value
    if isinstance(data.get("description"), str):
        return data["description"]
    first = file.read_text(encoding="utf-8").splitlines()[:1]
    return first[0].lstrip("# ").rstrip(".,") if first and first[0].startswith("#") else ""


def catalogue() -> list[dict[str, str]]:
    """Every shipped file: ``kind`` (scenario, protocol, costs, example), ``name`` (its path
    under ``synthetic/``) and a one-line ``description``."""
    root = folder()
    kinds = {"protocols": "protocol", "costs": "costs", "examples": "example"}
    out = []
    for file in sorted(root.rglob("*")):
        if not file.is_file() or file.name.startswith("."):
            continue
        relative = file.relative_to(root)
        kind = kinds.get(relative.parts[0], "scenario") if len(relative.parts) > 1 else "scenario"
        if kind == "scenario" and file.suffix != ".toml":
            continue
        out.append(
            {
                "kind": kind,
                "name": relative.as_posix(),
                "description": _describe(file) if file.suffix == ".toml" else "",
            }
        )
    return out


def copy_to(destination: str | Path) -> Path:
    """Copy every shipped file into ``destination`` (which must not exist), to edit them."""
    target = Path(destination)
    if target.exists():
        raise RjtrialError(f"{target} exists; give a new folder to copy the scenarios into")
    shutil.copytree(folder(), target)
    return target
