"""Every Python block of the README runs, in order, as a new user would run it after
`bash scripts/demo.sh`: in a folder holding the demo's output (``rjtrial-demo/``) and the
repository's ``synthetic/`` folder. The blocks share one namespace, as in one session; a failure
names the block by its first line and its line in the README.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_blocks() -> list[tuple[int, str]]:
    """(line number, code) of every ```python block, in order."""
    blocks, inside, start, lines = [], False, 0, []
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), start=1):
        if not inside and line.strip() == "```python":
            inside, start, lines = True, number + 1, []
        elif inside and line.strip() == "```":
            blocks.append((start, "\n".join(lines)))
            inside = False
        elif inside:
            lines.append(line)
    return blocks


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    from rjtrial.demo import run_demo

    folder = tmp_path_factory.mktemp("readme")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_demo(folder / "rjtrial-demo", progress=False)  # the README's first command, with its defaults
    (folder / "synthetic").symlink_to(ROOT / "synthetic")
    return folder


def test_the_readme_has_python_blocks():
    assert len(python_blocks()) >= 5


def test_every_python_block_runs_in_order(demo_folder, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.chdir(demo_folder)
    namespace: dict = {"__name__": "readme"}
    for line, code in python_blocks():
        first = code.strip().splitlines()[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the README shows warnings as users see them; here only errors count
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as exc:  # noqa: BLE001 - name the block, keep the cause
                pytest.fail(f"README.md line {line} ({first!r}): {type(exc).__name__}: {exc}")
    assert (demo_folder / "my-report.html").is_file()


def test_no_block_uses_an_ellipsis_placeholder():
    # the literal ... in an enrol line or a dict was copied by users and failed
    for line, code in python_blocks():
        assert not re.search(r"[\[{(,]\s*\.\.\.\s*[\]})]|=\s*\.\.\.", code), f"README.md line {line}"
