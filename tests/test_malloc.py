"""rjtrial/_malloc.py: glibc's malloc set to reuse freed blocks, by the commands that simulate."""

from __future__ import annotations

import subprocess
import sys

import pytest

from rjtrial import _malloc


def _in_fresh_process(code: str, env_extra: dict[str, str] | None = None) -> str:
    import os

    env = {k: v for k, v in os.environ.items() if k not in _malloc._USER_TUNING}
    env.update(env_extra or {})
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return done.stdout.strip()


def test_settings_are_applied_on_linux():
    # (in a fresh process: this one's allocator is left as it is; CI runs on glibc Linux)
    out = _in_fresh_process("from rjtrial._malloc import reuse_freed_memory; print(reuse_freed_memory())")
    assert out == str(sys.platform.startswith("linux"))


def test_malloc_tuned_by_the_user_is_left_alone():
    out = _in_fresh_process(
        "from rjtrial._malloc import reuse_freed_memory; print(reuse_freed_memory())",
        {"MALLOC_TOP_PAD_": "1048576"},
    )
    assert out == "False"


def test_nothing_is_done_off_linux(monkeypatch):
    monkeypatch.setattr(_malloc.sys, "platform", "darwin")
    assert _malloc.reuse_freed_memory() is False


@pytest.mark.parametrize(
    "argv",
    [
        ["power", "synthetic/jrc-london-burglary.toml", "--n", "100", "--reps", "20", "--no-schoenfeld"],
        ["sample-size", "synthetic/jrc-london-burglary.toml", "--reps", "20", "--n-max", "200", "--no-schoenfeld"],
    ],
)
def test_the_replicate_commands_ask_for_it(argv, monkeypatch, capsys):
    from rjtrial.cli import main

    calls = []
    monkeypatch.setattr(_malloc, "reuse_freed_memory", lambda: calls.append(1) or True)
    main(argv)  # (sample-size: n_max too small, an error after the call)
    assert calls == [1]
