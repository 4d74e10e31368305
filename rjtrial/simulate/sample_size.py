"""The smallest trial that reaches a target power, by simulation (bisection with common random numbers).

:func:`sample_size` searches over the number randomised ``n`` for the smallest one whose
simulated power (:func:`rjtrial.simulate.power.power`'s) reaches ``power``. Every
evaluation draws its trials from the same seed, so trial ``k`` at one size shares its
first participants, allocations and offences with trial ``k`` at another (common random
numbers; see :mod:`rjtrial.simulate.power`): the estimated power curve is smooth in ``n``
and a bisection over it is stable. The search:

1. a bracket ``[lo, hi]`` with power below the target at ``lo`` and reaching it at
   ``hi``: from Schoenfeld's answer with the intention-to-treat hazard ratio of the truth
   (cox/logrank), growing by a quarter or halving as needed, or from 200, doubling;
2. bisection until the bracket is narrower than ``resolution`` (a share of ``n``;
   ``resolution=0`` bisects down to a single participant); the answer is ``hi``;
3. its Monte Carlo uncertainty: by the same bisection on the same curve, the smallest
   ``n`` whose interval's upper end reaches the target (``n_lower``: below it, the target
   is excluded) and the smallest whose lower end does (``n_upper``: from it on, the target
   is reached beyond Monte Carlo doubt). Evaluations are shared between the searches.

Beside it stand Schoenfeld's answers, with the ITT hazard ratio and with the naive one.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from rjtrial._result import Result, jsonable
from rjtrial.errors import RjtrialWarning
from rjtrial.simulate._runner import Runner
from rjtrial.simulate._streams import seed_label, seed_sequence
from rjtrial.simulate.power import (
    CHUNK_SIZE,
    CI_LEVEL,
    _effects,
    check_common,
    schoenfeld_sample_size,
    simulate_cells,
    time_split,
    truths,
    wilson,
)
from rjtrial.simulate.scenario import Scenario

__all__ = ["SampleSizeResult", "sample_size"]

START = 200  # first guess without Schoenfeld's


@dataclass(frozen=True)
class SampleSizeResult(Result):
    """Result of :func:`sample_size`.

    Attributes
    ----------
    n : int
        The smallest number randomised whose simulated power reaches ``target``.
    power, mc_std_error, ci_lower, ci_upper : float
        The simulated power at ``n``, its Monte Carlo standard error and Wilson interval.
    n_lower, n_upper : int
        The Monte Carlo uncertainty of ``n``: the smallest sizes whose interval's upper /
        lower end reaches the target.
    target : float
        The power sought.
    hazard_ratio : float
        The effect among those who had a conference (``hazard_ratio_treated``).
    itt_hazard_ratio : float
        The truth's intention-to-treat hazard ratio (NaN without the truth).
    schoenfeld_n, schoenfeld_n_naive : float
        Schoenfeld's sample size with the ITT and with the naive hazard ratio (NaN for
        rate_ratio or without the truth).
    evaluations : DataFrame
        Every size simulated, in the order evaluated: ``n, reps, power, mc_std_error,
        ci_lower, ci_upper, mean_events, failed``.
    settings : dict
        As :attr:`rjtrial.simulate.power.PowerResult.settings`, plus ``resolution``.
    notes : tuple of str
    """

    n: int
    power: float
    mc_std_error: float
    ci_lower: float
    ci_upper: float
    n_lower: int
    n_upper: int
    target: float
    hazard_ratio: float
    itt_hazard_ratio: float
    schoenfeld_n: float
    schoenfeld_n_naive: float
    evaluations: pd.DataFrame = field(repr=False)
    settings: Mapping[str, Any] = field(repr=False, default_factory=dict)
    notes: tuple[str, ...] = ()

    def summary_frame(self) -> pd.DataFrame:
        """The sizes simulated, ascending, with ``chosen`` marking :attr:`n` (attrs: the settings)."""
        frame = self.evaluations.sort_values("n").reset_index(drop=True)
        frame["chosen"] = frame["n"] == self.n
        frame.attrs.update(dict(self.settings))
        return frame

    def to_dict(self) -> dict[str, Any]:
        out = {
            name: jsonable(getattr(self, name))
            for name in (
                "n",
                "power",
                "mc_std_error",
                "ci_lower",
                "ci_upper",
                "n_lower",
                "n_upper",
                "target",
                "hazard_ratio",
                "itt_hazard_ratio",
                "schoenfeld_n",
                "schoenfeld_n_naive",
            )
        }
        out["evaluations"] = jsonable(self.summary_frame())
        out["settings"] = jsonable(dict(self.settings))
        out["notes"] = list(self.notes)
        return out

    def format(self, digits: int = 3) -> str:
        s = self.settings
        what = {
            "cox": "Cox (Efron) Wald test",
            "logrank": "log-rank test",
            "rate_ratio": "negative binomial rate ratio, Wald test",
        }[s["analysis"]]
        lines = [
            f"sample size by simulation: {s['scenario']} — {what}, two-sided alpha {s['alpha']:g}, "
            f"power {self.target:g}, hazard ratio {self.hazard_ratio:g} among the treated",
            f"  n = {self.n:,} randomised: power {self.power:.{digits}f} (MC s.e. {self.mc_std_error:.4f}, "
            f"95% interval {self.ci_lower:.{digits}f}-{self.ci_upper:.{digits}f}; {s['reps']:,} trials per size, "
            f"seed {s['seed']})",
            f"  Monte Carlo uncertainty of n: {self.n_lower:,} to {self.n_upper:,} (the sizes whose power interval "
            f"first reaches {self.target:g} at its upper and at its lower end)",
        ]
        if math.isfinite(self.schoenfeld_n):
            lines.append(
                f"  Schoenfeld: {self.schoenfeld_n:,.0f} with the intention-to-treat hazard ratio "
                f"{self.itt_hazard_ratio:.4f}; {self.schoenfeld_n_naive:,.0f} with the naive "
                f"{self.hazard_ratio:g}"
            )
        sizes = ", ".join(f"{int(r.n):,} ({r.power:.{digits}f})" for r in self.summary_frame().itertuples())
        lines.append(f"  sizes simulated (power): {sizes}")
        lines.extend(f"note: {note}" for note in self.notes)
        lines.append(time_split(s))
        return "\n".join(lines)


def _smallest(reaches: Callable[[int], bool], lo: int, hi: int, resolution: float) -> int:
    """Bisection: the smallest ``n`` in ``(lo, hi]`` with ``reaches(n)``, given ``not reaches(lo)`` and
    ``reaches(hi)``, to within ``resolution * hi`` (at least one participant)."""
    while hi - lo > max(1, math.floor(resolution * hi)):
        mid = (lo + hi) // 2
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _bracket(
    reaches: Callable[[int], bool], start: int, known, *, floor: int, ceiling: int, growth: float
) -> tuple[int, int]:
    """``(lo, hi)`` with ``not reaches(lo)`` and ``reaches(hi)``: from the sizes already
    ``known``, else from ``start``, multiplying or dividing by ``growth`` (up to ``ceiling``,
    down to ``floor``; ``lo = floor - 1`` when even ``floor`` reaches it)."""
    yes = [m for m in known if reaches(m)]
    hi = min(yes) if yes else None
    no = [m for m in known if not reaches(m) and (hi is None or m < hi)]
    lo = max(no) if no else None
    if hi is None:
        m = max(start, (lo or 0) + 1)
        while not reaches(m):
            if m >= ceiling:
                raise ValueError(
                    f"n_max: no trial of up to {ceiling:,} randomised reaches the target power; "
                    "raise n_max, or check the effect"
                )
            lo = m
            m = min(ceiling, max(m + 1, math.ceil(m * growth)))
        hi = m
    while lo is None:
        if hi <= floor:
            lo = floor - 1
            break
        m = max(floor, min(hi - 1, math.floor(hi / growth)))
        if reaches(m):
            hi = m
        else:
            lo = m
    return lo, hi


def sample_size(
    scenario: Scenario | str | os.PathLike,
    *,
    power: float = 0.8,
    hazard_ratio: float | None = None,
    reps: int = 2000,
    analysis: str = "cox",
    alpha: float = 0.05,
    rng,
    resolution: float = 0.01,
    n_min: int = 20,
    n_max: int = 100_000,
    workers: int | None = None,
    scheduler=None,
    progress: bool = False,
    schoenfeld: bool = True,
    truth_population: int = 2_000_000,
    truth_cache_dir: str | os.PathLike | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> SampleSizeResult:
    """The smallest number randomised with simulated power at least ``power`` (see the module notes).

    Parameters
    ----------
    scenario : Scenario or path to a scenario TOML
    power : float
        Target power, in (0, 1).
    hazard_ratio : float, optional
        Effect of a conference among those who had one; default the scenario's.
    reps : int
        Simulated trials per size evaluated.
    analysis, alpha, rng, workers, scheduler, progress, truth_population, truth_cache_dir, chunk_size
        As for :func:`rjtrial.simulate.power.power`.
    resolution : float
        Stop bisecting when the bracket is narrower than this share of ``n`` (0: one
        participant).
    n_min, n_max : int
        The smallest and the largest trial considered.
    schoenfeld : bool
        Compute the truth: Schoenfeld's answers, and the first guess.

    Returns
    -------
    SampleSizeResult

    Examples
    --------
    >>> res = sample_size("synthetic/jrc-london-burglary.toml", power=0.5, hazard_ratio=0.5, reps=40, rng=3,
    ...                   workers=1, resolution=0.1, truth_population=20_000)
    >>> res.power >= 0.5 and res.n_lower <= res.n <= res.n_upper
    True
    """
    from rjtrial._version import __version__
    from rjtrial.simulate.scenario import load_scenario

    alpha = check_common(
        analysis=analysis,
        alpha=alpha,
        reps=reps,
        workers=workers,
        chunk_size=chunk_size,
        schoenfeld=schoenfeld,
        truth_population=truth_population,
    )
    target = float(power) if isinstance(power, (int, float)) and not isinstance(power, bool) else math.nan
    if not 0.0 < target < 1.0:
        raise ValueError(f"power must lie strictly between 0 and 1, got {power!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, (int, float)) or not 0 <= resolution < 1:
        raise ValueError(f"resolution must lie in [0, 1), got {resolution!r}")
    if isinstance(n_min, bool) or not isinstance(n_min, (int, np.integer)) or n_min < 2:
        raise ValueError(f"n_min must be a whole number of at least 2, got {n_min!r}")
    if isinstance(n_max, bool) or not isinstance(n_max, (int, np.integer)) or n_max <= n_min:
        raise ValueError(f"n_max must be a whole number above n_min ({n_min}), got {n_max!r}")
    if isinstance(hazard_ratio, (list, tuple, np.ndarray)):
        raise ValueError(f"hazard_ratio must be one number, got {hazard_ratio!r}")
    root = seed_sequence(rng)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    hr = _effects(hazard_ratio, scenario)[0]
    if hr == 1.0:
        raise ValueError("hazard_ratio: with no effect (1) no trial reaches the target power")
    started = time.perf_counter()
    ratio = scenario.protocol.ratio
    allocation = ratio[1] / sum(ratio)
    truth = {}
    guess = START
    itt = naive_n = schoenfeld_n = math.nan
    seconds = {"generation": 0.0, "followup": 0.0, "fitting": 0.0}
    if schoenfeld:
        truth_started = time.perf_counter()
        truth = truths(scenario, [hr], population=truth_population, cache_dir=truth_cache_dir)
        seconds["truth"] = time.perf_counter() - truth_started
        record = truth[repr(float(hr))]
        itt = record["itt_hazard_ratio"]
        if analysis in ("cox", "logrank") and itt != 1.0 and hr != 1.0:
            per = record["events_per_participant"]
            schoenfeld_n = schoenfeld_sample_size(itt, target, per, allocation=allocation, alpha=alpha)
            naive_n = schoenfeld_sample_size(hr, target, per, allocation=allocation, alpha=alpha)
            guess = min(max(int(n_min), schoenfeld_n), int(n_max))
    evaluated: dict[int, dict] = {}
    frames = []

    with Runner(workers=workers, scheduler=scheduler, progress=progress) as runner:

        def evaluate(m: int) -> dict:
            if m not in evaluated:
                reps_frame, spent = simulate_cells(
                    runner,
                    [(scenario, hr, m)],
                    reps=int(reps),
                    analysis=analysis,
                    alpha=alpha,
                    root=root,
                    chunk_size=int(chunk_size),
                )
                for key in ("generation", "followup", "fitting"):
                    seconds[key] += spent[key]
                successes = float(reps_frame["reject"].sum())
                p = successes / len(reps_frame)
                lower, upper = wilson(successes, len(reps_frame))
                evaluated[m] = {
                    "n": m,
                    "reps": len(reps_frame),
                    "power": p,
                    "mc_std_error": math.sqrt(p * (1 - p) / len(reps_frame)),
                    "ci_lower": lower,
                    "ci_upper": upper,
                    "mean_events": float(reps_frame["events"].mean()),
                    "failed": int((~reps_frame["converged"]).sum()),
                }
                frames.append(reps_frame)
            return evaluated[m]

        def criterion(column: str) -> Callable[[int], bool]:
            return lambda m: evaluate(m)[column] >= target

        floor = int(n_min)
        results: dict[str, int] = {}
        first_growth = 1.25 if math.isfinite(schoenfeld_n) else 2.0  # Schoenfeld's guess is near; 200 may not be
        for name, column, growth in (
            ("n", "power", first_growth),
            ("n_lower", "ci_upper", 1.25),
            ("n_upper", "ci_lower", 1.25),
        ):
            reaches = criterion(column)
            lo, hi = _bracket(
                reaches,
                guess if name == "n" else results["n"],
                list(evaluated),
                floor=floor,
                ceiling=int(n_max),
                growth=growth,
            )
            results[name] = _smallest(reaches, lo, hi, float(resolution))
        backend, n_workers = runner.backend, runner.workers
    chosen = evaluated[results["n"]]
    seconds["total"] = time.perf_counter() - started
    settings = {
        "scenario": scenario.id,
        "scenario_fingerprint": scenario.fingerprint(),
        "analysis": analysis,
        "alpha": alpha,
        "seed": seed_label(rng, root),
        "reps": int(reps),
        "hazard_ratio": [hr],
        "ci_level": CI_LEVEL,
        "truths": truth,
        "allocation": allocation,
        "truth_population": int(truth_population) if schoenfeld else None,
        "resolution": float(resolution),
        "n_min": floor,
        "n_max": int(n_max),
        "backend": backend,
        "workers": n_workers,
        "chunk_size": int(chunk_size),
        "trials_simulated": int(sum(len(f) for f in frames)),
        "seconds": seconds,
        "versions": {"rjtrial": __version__, "numpy": np.__version__},
    }
    notes = []
    monotone = sorted(evaluated.values(), key=lambda r: r["n"])
    # common random numbers keep the curve nearly monotone; a fall beyond its Monte Carlo error is worth saying
    drops = [
        (a["n"], b["n"])
        for a, b in zip(monotone, monotone[1:])
        if b["power"] < a["power"] - max(a["mc_std_error"], 1.0 / b["reps"])
    ]
    if drops:
        notes.append(
            f"the simulated power fell with n between {drops[0][0]:,} and {drops[0][1]:,} by more than its "
            "Monte Carlo standard error; the bisection assumes it grows: raise reps for a steadier curve"
        )
    failed = sum(r["failed"] for r in evaluated.values())
    if failed:
        notes.append(f"{failed} simulated trials could not be fitted; they count as not rejecting")
    for note in notes:
        warnings.warn(note, RjtrialWarning, stacklevel=2)
    evaluations = pd.DataFrame(list(evaluated.values()))
    return SampleSizeResult(
        n=int(results["n"]),
        power=chosen["power"],
        mc_std_error=chosen["mc_std_error"],
        ci_lower=chosen["ci_lower"],
        ci_upper=chosen["ci_upper"],
        n_lower=int(results["n_lower"]),
        n_upper=int(results["n_upper"]),
        target=target,
        hazard_ratio=float(hr),
        itt_hazard_ratio=float(itt),
        schoenfeld_n=float(schoenfeld_n),
        schoenfeld_n_naive=float(naive_n),
        evaluations=evaluations,
        settings=settings,
        notes=tuple(notes),
    )
