"""The Examples in rjtrial.survival docstrings run (STYLE.md section 8)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "rjtrial.survival.cox",
    "rjtrial.survival.kaplan_meier",
    "rjtrial.survival.logrank",
    "rjtrial.survival.rmst",
    "rjtrial.survival.recurrent",
    "rjtrial.survival.frailty",
    "rjtrial.survival.split",
    "rjtrial.survival.concordance",
    "rjtrial.survival.ph_test",
    "rjtrial.survival.competing_incidence",
    "rjtrial.survival.gray_test",
    "rjtrial.survival.fine_gray",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
