"""The Examples in docstrings run (STYLE.md §8)."""

from __future__ import annotations

import doctest
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MODULES = [
    "rjtrial.registry.core",
    "rjtrial.protocol",
    "rjtrial.randomise.engines",
    "rjtrial.randomise.metrics",
    "rjtrial.followup",
    "rjtrial.frequency",
    "rjtrial.compliance",
    "rjtrial.costs",
    "rjtrial.victims",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name, monkeypatch):
    monkeypatch.chdir(ROOT)  # examples name the shipped protocols by their path in the source tree
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
