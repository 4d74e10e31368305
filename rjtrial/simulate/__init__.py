"""Synthetic trials with a known truth: scenarios, the generator, the truth, power and sample size.

>>> from rjtrial.simulate import load_scenario, simulate_trial
>>> scenario = load_scenario("synthetic/jrc-london-burglary.toml")
>>> trial = simulate_trial(scenario, rng=7, truth=False)
>>> sorted(trial.participants["arm"].value_counts().to_dict().items())
[('conference', 84), ('control', 83)]
>>> null = scenario.with_null()          # or overrides={"reoffending.hazard_ratio_treated": 1.0}

Modules: ``scenario`` (the TOML format, :func:`load_scenario`, :class:`Scenario`),
``generator`` (:func:`simulate_trial`, :class:`SimulatedTrial`), ``truth``
(:func:`compute_truth`: the intention-to-treat effects by Monte Carlo), ``power``
(:func:`rjtrial.simulate.power.power`: power by simulation over sizes and effects, beside
Schoenfeld's formula, :mod:`rjtrial.survival.sample_size`), ``sample_size``
(:func:`sample_size`: the smallest trial reaching a power), ``sequential``
(:func:`sequential_trials`: interim looks of simulated trials, a group-sequential design's
level and power on them), ``plots`` (power curves),
``cli`` and ``power_cli`` (``rjtrial simulate``, ``rjtrial power``, ``rjtrial sample-size``).
The private modules hold the one implementation behind whole trials and replicate
batches: ``_streams``, ``_people``, ``_allocation``, ``_offending``, ``_kernels``,
``_replicates``, ``_runner``. Imports are lazy: importing the package loads nothing heavy.
"""

from __future__ import annotations

__all__ = [
    "PowerResult",
    "SampleSizeResult",
    "Scenario",
    "ScenarioError",
    "SequentialTrials",
    "SimulatedTrial",
    "compute_truth",
    "load_scenario",
    "sample_size",
    "schoenfeld_events",
    "schoenfeld_power",
    "schoenfeld_sample_size",
    "sequential_trials",
    "simulate_trial",
]

_WHERE = {
    "Scenario": "rjtrial.simulate.scenario",
    "ScenarioError": "rjtrial.simulate.scenario",
    "load_scenario": "rjtrial.simulate.scenario",
    "SimulatedTrial": "rjtrial.simulate.generator",
    "simulate_trial": "rjtrial.simulate.generator",
    "compute_truth": "rjtrial.simulate.truth",
    # power by simulation: the function is rjtrial.simulate.power.power (the module keeps the name)
    "PowerResult": "rjtrial.simulate.power",
    "schoenfeld_power": "rjtrial.survival.sample_size",
    "schoenfeld_events": "rjtrial.survival.sample_size",
    "schoenfeld_sample_size": "rjtrial.survival.sample_size",
    "SampleSizeResult": "rjtrial.simulate.sample_size",
    "sample_size": "rjtrial.simulate.sample_size",
    # interim looks of simulated trials, and a group-sequential design's level on them
    "SequentialTrials": "rjtrial.simulate.sequential",
    "sequential_trials": "rjtrial.simulate.sequential",
}


def __getattr__(name):
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'rjtrial.simulate' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + __all__)
