"""Synthetic trials with a known truth: scenarios, the generator and the Monte Carlo truth.

>>> from rjtrial.simulate import load_scenario, simulate_trial
>>> scenario = load_scenario("synthetic/jrc-london-burglary.toml")
>>> trial = simulate_trial(scenario, rng=7, truth=False)
>>> trial.participants["arm"].value_counts().sort_index().to_dict()
{'conference': 84, 'control': 83}
>>> null = scenario.with_null()          # or overrides={"reoffending.hazard_ratio_treated": 1.0}

Modules: ``scenario`` (the TOML format, :func:`load_scenario`, :class:`Scenario`),
``generator`` (:func:`simulate_trial`, :class:`SimulatedTrial`), ``truth``
(:func:`compute_truth`: the intention-to-treat effects by Monte Carlo), ``power``
(:func:`rjtrial.simulate.power.power`: power by simulation with the batched Cox/log-rank
engine, beside Schoenfeld's formula), ``cli`` and ``power_cli`` (``rjtrial simulate``,
``rjtrial power``). Imports are lazy: importing the package loads nothing heavy.
"""

from __future__ import annotations

__all__ = ["PowerResult", "Scenario", "ScenarioError", "SimulatedTrial", "compute_truth", "load_scenario",
           "schoenfeld_events", "schoenfeld_power", "simulate_trial"]

_WHERE = {
    "Scenario": "rjtrial.simulate.scenario",
    "ScenarioError": "rjtrial.simulate.scenario",
    "load_scenario": "rjtrial.simulate.scenario",
    "SimulatedTrial": "rjtrial.simulate.generator",
    "simulate_trial": "rjtrial.simulate.generator",
    "compute_truth": "rjtrial.simulate.truth",
    # power by simulation: the function is rjtrial.simulate.power.power (the module keeps the name)
    "PowerResult": "rjtrial.simulate.power",
    "schoenfeld_power": "rjtrial.simulate.power",
    "schoenfeld_events": "rjtrial.simulate.power",
}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rjtrial.simulate' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
