"""The package type-checks: ``mypy`` with the configuration in pyproject.toml (``[tool.mypy]``).

Every module must be free of mypy errors except those in :data:`ALLOWED`, an allow-list that
only shrinks: files other work was changing when the check arrived, each with the number of
errors it then had. A file on the list may not gain errors, and once it has none it must
leave the list (the test says so). Skipped only where mypy is not installed (it is in the
``test`` extras).
"""

from __future__ import annotations

import re
import textwrap
from collections import Counter
from pathlib import Path

import pytest

mypy_api = pytest.importorskip("mypy.api", reason="mypy is not installed (pip install -e '.[test]')")

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "pyproject.toml"

#: file -> mypy errors it may still have (to fix, then remove; never to raise).
ALLOWED: dict[str, int] = {}

_ERROR = re.compile(r"^(?P<file>[^:\s]+\.pyi?):\d+(?::\d+)?: error: ", re.MULTILINE)


def _mypy(*args: str) -> tuple[str, str, int]:
    return mypy_api.run(
        ["--config-file", str(CONFIG), "--cache-dir", str(ROOT / ".mypy_cache"), "--no-color-output", *args]
    )


def errors_by_file(report: str) -> Counter[str]:
    """Error lines of a mypy report counted per file (notes are not errors)."""
    return Counter(m["file"].replace("\\", "/") for m in _ERROR.finditer(report))


def check_counts(found: Counter[str], allowed: dict[str, int]) -> list[str]:
    """The problems with ``found`` errors per file against the allow-list."""
    problems = [f"{file}: {n} mypy error(s)" for file, n in sorted(found.items()) if file not in allowed]
    problems += [
        f"{file}: {found[file]} mypy error(s), more than the {n} it is allowed"
        for file, n in sorted(allowed.items())
        if found[file] > n
    ]
    problems += [
        f"{file}: no mypy errors left: remove it from ALLOWED in tests/test_types.py"
        for file, n in sorted(allowed.items())
        if found[file] == 0
    ]
    return problems


def test_the_count_check_sees_new_errors_and_a_finished_file():
    report = (
        "rjtrial/a.py:3: error: Incompatible types  [assignment]\n"
        "rjtrial/a.py:3: note: see this\n"
        "rjtrial/b.py:9:5: error: Item None has no attribute  [union-attr]\n"
    )
    assert errors_by_file(report) == {"rjtrial/a.py": 1, "rjtrial/b.py": 1}
    assert check_counts(errors_by_file(report), {"rjtrial/b.py": 1}) == ["rjtrial/a.py: 1 mypy error(s)"]
    assert check_counts(errors_by_file(report), {"rjtrial/a.py": 1, "rjtrial/b.py": 2}) == []
    assert check_counts(Counter({"rjtrial/a.py": 2}), {"rjtrial/a.py": 1}) == [
        "rjtrial/a.py: 2 mypy error(s), more than the 1 it is allowed"
    ]
    assert check_counts(Counter(), {"rjtrial/a.py": 1}) == [
        "rjtrial/a.py: no mypy errors left: remove it from ALLOWED in tests/test_types.py"
    ]


def test_the_configuration_checks_untyped_code_and_unused_ignores(tmp_path):
    # the strictness pyproject.toml states: bodies of unannotated functions are checked
    # (check_untyped_defs), and an ignore that silences nothing is itself an error
    probe = tmp_path / "_rjtrial_mypy_probe.py"
    probe.write_text(
        textwrap.dedent("""\
        import re

        def untyped(text):
            match = re.match("a", text)
            return match.group(0)

        x: int = 1  # type: ignore[assignment]
    """),
        encoding="utf-8",
    )
    out, err, status = _mypy(str(probe))
    assert status == 1, err
    assert 'Item "None" of "Match[str] | None" has no attribute "group"  [union-attr]' in out
    assert 'Unused "type: ignore" comment  [unused-ignore]' in out


def test_the_package_type_checks(monkeypatch):
    monkeypatch.chdir(ROOT)  # paths in the report relative to the checkout, as ALLOWED names them
    out, err, status = _mypy("rjtrial")
    assert status in (0, 1) and not err.strip(), f"mypy did not run (status {status}): {err or out}"
    found = errors_by_file(out)
    print(f"mypy: {sum(found.values())} error(s) in {len(found)} file(s)")
    for file, n in sorted(found.items()):
        print(f"  {file}: {n}" + ("" if file in ALLOWED else "  (not allowed)"))
    problems = check_counts(found, ALLOWED)
    assert not problems, "\n".join(problems) + "\n\nmypy says:\n" + out
    assert status == (1 if found else 0), out
