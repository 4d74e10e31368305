"""Shared pytest fixtures."""

from __future__ import annotations

import pytest

from rjtrial.protocol import Protocol

# --- Fixtures for tests/test_protocol.py and tests/test_randomise_*.py --------------
# (protocol and randomisation tests; other fixtures go below this block)


@pytest.fixture(scope="session")
def make_protocol():
    """Factory: a validated Protocol from a method, ratio, strata and randomisation keys.

    Session-scoped (it holds no state) so hypothesis tests can use it.
    """

    def make(method, ratio=(1, 1), strata=None, *, capacity=None, **randomisation) -> Protocol:
        table = {"method": method, **randomisation}
        if capacity is not None:
            table["capacity"] = capacity
        return Protocol.from_dict(
            {
                "trial": {
                    "id": "test-trial",
                    "name": "Test trial",
                    "arms": [f"arm{k}" for k in range(len(ratio))],
                    "ratio": list(ratio),
                },
                "randomisation": table,
                "strata": strata if strata is not None else {"site": ["a", "b", "c"], "sex": ["f", "m"]},
            }
        )

    return make


# --- end of protocol and randomisation fixtures -------------------------------------
