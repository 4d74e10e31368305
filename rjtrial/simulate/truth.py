"""The truth of a scenario: the parameter, and the intention-to-treat effects it implies.

The **parameter** is ``reoffending.hazard_ratio_treated``: the multiplicative effect of
a conference on the offending intensity of the people who actually had one, given
their covariates and frailty.

The **intention-to-treat (ITT) effects** are what a trial's analysis estimates. They
depend on compliance, frailty, custody, censoring and the follow-up rules, so they are
defined operationally: each is the value the trial's own analysis converges to as the
trial grows, under the scenario's design. The analysis is the scenario's plan
(``[analysis]``): :func:`rjtrial.followup.build` with ``window_days``, offence dates,
the extraction date and ``conviction_lag_days``; then

* ``hazard_ratio``: a Cox model of ``time_at_risk`` (street days to the first
  reoffence) on the arm alone, Efron ties (lifelines' ``CoxPHFitter`` default). With a
  gamma frailty the arms' marginal hazards are *not* proportional (the most frail
  leave the control arm's risk set sooner, so the ratio drifts towards 1 over
  follow-up), and the Cox estimate converges to a weighted average of the hazard
  ratio over time whose weights depend on the follow-up pattern: it is that limit we
  report, not a property of the population alone;
* ``rate_ratio``: the negative binomial (NB2) rate ratio of ``reoffences`` with
  ``exposure_days`` as offset, participants with some street time
  (:func:`rjtrial.frequency.rate_ratio`, ``model="negative_binomial"``);
  ``rate_ratio_crude`` is the ratio of reoffences per street day (the Poisson limit);
* ``rmst_difference_days``: the difference (conference − control) of the restricted
  mean of the Kaplan–Meier curves of ``time_at_risk`` up to ``window_days``.

They are computed by running that analysis on a population of ``population``
simulated participants (default 2,000,000) drawn by the trial's own code (the replicate
engine, :func:`rjtrial.simulate._replicates.replicate_batch`, which gives each person the
follow-up :func:`rjtrial.followup.build` gives the generator's records), in chunks of
``chunk_size``, each a trial of the scenario's design scaled up (referral rate multiplied
like the size, so the intake period and the extraction censoring are those of the trial),
allocated by simple randomisation with the protocol's ratio (the method does not change
the limit). Each chunk keeps its follow-up columns only (a few bytes a person); the
analyses are then the library's batched engines, run once on the whole population (one
trial) and once per chunk (one trial each, for batch-means Monte Carlo standard errors):
:func:`rjtrial.survival.batched.cox_batch` (Efron ties),
:func:`rjtrial.survival.batched.rmst_batch` and
:func:`rjtrial.survival.batched.negative_binomial_batch`, each held to R and to the
single-trial functions to 1e-6 in their own tests.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from rjtrial._version import __version__
from rjtrial.simulate.scenario import Scenario

__all__ = ["compute_truth", "truth_record", "default_truth_seed"]

MIN_CHUNKS = 8  # the population is split in at least this many chunks (batch-means standard errors)
#: Part of every cached truth's name: truths computed by an older engine (other draws) are not reused.
TRUTH_VERSION = 3
_CACHE: dict[tuple, dict] = {}  # in-process memo of a deterministic function; never changes a result


def default_truth_seed(scenario: Scenario) -> int:
    """The truth's seed when none is given: from the scenario's content, so the truth is cached per scenario."""
    return int(scenario.fingerprint()[:15], 16)


def compute_truth(
    scenario: Scenario,
    *,
    population: int = 2_000_000,
    rng=None,
    chunk_size: int = 250_000,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """The ITT effects implied by ``scenario``, by Monte Carlo (see the module notes).

    Parameters
    ----------
    scenario : Scenario
    population : int
        Simulated participants (default 2,000,000).
    rng : int, optional
        Seed of the population; default :func:`default_truth_seed` (from the scenario's
        content). A Generator is accepted but then the result is not cached.
    chunk_size : int
        Participants per chunk at most; smaller if needed to make at least 8 chunks.
    cache_dir : folder, optional
        Also keep results as JSON files there, keyed by scenario fingerprint, seed and size.

    Returns
    -------
    dict
        ``hazard_ratio, log_hazard_ratio, log_hazard_ratio_mc_se, rate_ratio,
        log_rate_ratio, log_rate_ratio_mc_se, negative_binomial_alpha, rate_ratio_crude,
        rates_per_person_year, rmst_days, rmst_difference_days,
        rmst_difference_mc_se, rmst_tau_days, events, population, chunks, seed, analysis,
        exact_null, seconds``. With ``exact_null`` true (no effect and arms otherwise
        alike) the exact ITT effects are 1, 1 and 0; the Monte Carlo values estimate them.

    Examples
    --------
    >>> from rjtrial.simulate import load_scenario
    >>> truth = compute_truth(load_scenario("synthetic/jrc-london-burglary.toml"), population=40_000)
    >>> 0.8 < truth["hazard_ratio"] < 1.0, truth["chunks"]
    (True, 8)
    """
    if population < 1 or chunk_size < 1:
        raise ValueError("population and chunk_size must be positive")
    seed = default_truth_seed(scenario) if rng is None else rng
    cacheable = not isinstance(seed, np.random.Generator)
    key = (scenario.fingerprint(), str(seed), int(population), int(chunk_size), TRUTH_VERSION)
    if cacheable and key in _CACHE:
        return dict(_CACHE[key])
    path = None
    if cacheable and cache_dir is not None:
        path = (
            Path(cache_dir) / f"truth-v{TRUTH_VERSION}-{scenario.id}-{key[0][:16]}-{seed}-{population}-"
            f"{chunk_size}.json"
        )
        if path.exists():
            result = json.loads(path.read_text(encoding="utf-8"))
            _CACHE[key] = result
            return dict(result)
    result = _compute(scenario, population, np.random.default_rng(seed), chunk_size)
    result["seed"] = str(seed) if cacheable else "Generator"
    if cacheable:
        _CACHE[key] = result
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            os.replace(tmp, path)
    return dict(result)


def _sized(scenario: Scenario, size: int) -> Scenario:
    """A chunk: the scenario's trial scaled to ``size`` (referral rate scaled alike)."""
    from rjtrial.simulate._replicates import sized_scenario

    return sized_scenario(scenario, size)


def _population(scenario: Scenario, sizes: list[int], gen: np.random.Generator) -> dict[str, np.ndarray]:
    """The follow-up columns of every simulated person, with their chunk."""
    from rjtrial.simulate._replicates import replicate_batch

    parts: dict[str, list] = {k: [] for k in ("time", "event", "treatment", "exposure", "count", "chunk")}
    for c, size in enumerate(sizes):
        batch = replicate_batch(_sized(scenario, size), int(gen.integers(0, 2**63)), 1, allocation="simple")
        parts["time"].append(batch["time_at_risk"][:, 0].astype(np.int32))
        parts["event"].append(batch["event"][:, 0])
        parts["treatment"].append(batch["treatment"][:, 0].astype(np.int8))
        parts["exposure"].append(batch["exposure_days"][:, 0].astype(np.int32))
        parts["count"].append(batch["reoffences"][:, 0].astype(np.int32))
        parts["chunk"].append(np.full(size, c, dtype=np.int64))
        del batch
    return {k: np.concatenate(v) for k, v in parts.items()}


def _compute(scenario: Scenario, population: int, gen: np.random.Generator, chunk_size: int) -> dict[str, Any]:
    from rjtrial.survival.batched import cox_batch, negative_binomial_batch, rmst_batch

    started = time.perf_counter()
    window = scenario.analysis.window_days
    chunk_size = min(chunk_size, max(1, math.ceil(population / MIN_CHUNKS)))  # batch means need a few chunks
    sizes = [chunk_size] * (population // chunk_size) + ([population % chunk_size] if population % chunk_size else [])
    rows = _population(scenario, sizes, gen)
    everyone = np.zeros(rows["time"].size, dtype=np.int64)
    estimates = {}
    for label, trial in (("total", everyone), ("chunks", rows["chunk"])):
        cox = cox_batch(rows["time"], rows["event"], rows["treatment"], trial=trial, tol=1e-12)
        rmst = rmst_batch(rows["time"], rows["event"], rows["treatment"], tau=float(window), trial=trial)
        at_liberty = rows["exposure"] > 0
        nb = negative_binomial_batch(
            rows["count"][at_liberty],
            rows["exposure"][at_liberty],
            rows["treatment"][at_liberty],
            trial=trial[at_liberty],
            n_trials=int(trial.max()) + 1,
        )
        estimates[label] = {
            "log_hazard_ratio": cox.estimate,
            "log_rate_ratio": nb.estimate,
            "alpha": nb.dispersion,
            "rmst0": rmst.rmst_control,
            "rmst1": rmst.rmst_treated,
            "rmst_difference_days": rmst.estimate,
        }
    total = {k: float(v[0]) for k, v in estimates["total"].items()}
    se = {}
    for name in ("log_hazard_ratio", "log_rate_ratio", "rmst_difference_days"):
        values = estimates["chunks"][name]
        se[name] = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
    arms = scenario.protocol.arms
    convicted = scenario.index_offence.convicted
    arm = rows["treatment"]
    rates = [float(rows["count"][arm == g].sum() / rows["exposure"][arm == g].sum() * 365.25) for g in (0, 1)]
    events = [int(rows["event"][arm == g].sum()) for g in (0, 1)]
    return {
        "hazard_ratio": math.exp(total["log_hazard_ratio"]),
        "log_hazard_ratio": total["log_hazard_ratio"],
        "log_hazard_ratio_mc_se": se["log_hazard_ratio"],
        "rate_ratio": math.exp(total["log_rate_ratio"]),
        "log_rate_ratio": total["log_rate_ratio"],
        "log_rate_ratio_mc_se": se["log_rate_ratio"],
        "negative_binomial_alpha": total["alpha"],
        "rate_ratio_crude": rates[1] / rates[0],
        "rates_per_person_year": dict(zip(arms, rates)),
        "rmst_tau_days": window,
        "rmst_days": dict(zip(arms, (total["rmst0"], total["rmst1"]))),
        "rmst_difference_days": total["rmst_difference_days"],
        "rmst_difference_mc_se": se["rmst_difference_days"],
        "events": dict(zip(arms, events)),
        "population": int(population),
        "chunks": len(sizes),
        "chunk_size": int(chunk_size),
        "analysis": {
            "window_days": window,
            "date_basis": "offence",
            "extraction_date": str(scenario.extraction.date),
            "conviction_lag_days": scenario.analysis.conviction_lag_days,
            "prior_window_days": scenario.analysis.prior_window_days,
            "cox": "time_at_risk ~ arm, Efron ties",
            "rate_ratio": "negative binomial (NB2), reoffences ~ arm + offset(log(exposure_days)), exposure_days > 0",
            "rmst": f"Kaplan-Meier of time_at_risk by arm, restricted to {window} days",
        },
        "exact_null": bool(scenario.reoffending.hazard_ratio_treated == 1.0 and len({convicted[a] for a in arms}) == 1),
        "engine": f"rjtrial.simulate._replicates + rjtrial.survival.batched (truth version {TRUTH_VERSION})",
        "seconds": round(time.perf_counter() - started, 2),
    }


# ----------------------------------------------------------------------------- the record
def truth_record(
    scenario: Scenario, *, itt: Mapping[str, Any] | None, realised: Mapping[str, Any] | None = None, rng=None
) -> dict[str, Any]:
    """The ``truth.json`` of a simulated trial.

    Keys: ``scenario`` (id, name, source, fingerprint), ``hazard_ratio_treated`` and its
    log (the parameter), ``null`` (no effect), ``itt`` (:func:`compute_truth`'s result, or
    None when not computed), ``realised`` (what this trial drew: sizes, dates, seeds),
    ``parameters`` (every parameter used, protocol included), ``provenance`` (source or
    assumption of each), ``rng`` and ``versions``.
    """
    import scipy

    hr = scenario.reoffending.hazard_ratio_treated
    return {
        "scenario": {
            "id": scenario.id,
            "name": scenario.name,
            "source": scenario.source,
            "fingerprint": scenario.fingerprint(),
        },
        "hazard_ratio_treated": hr,
        "log_hazard_ratio_treated": math.log(hr),
        "null": hr == 1.0,
        "itt": None if itt is None else dict(itt),
        "realised": dict(realised or {}),
        "parameters": scenario.to_dict(),
        "provenance": dict(scenario.provenance),
        "rng": str(rng) if isinstance(rng, (int, np.integer)) else type(rng).__name__,
        "versions": {
            "rjtrial": __version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "scipy": scipy.__version__,
        },
    }
