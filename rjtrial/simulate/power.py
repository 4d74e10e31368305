"""Power by simulation: how often a trial of a scenario's design finds its effect.

For each effect (``hazard_ratio``: ``reoffending.hazard_ratio_treated``, the effect of a
conference on those who had one; the scenario's own by default) and each sample size ``n``,
:func:`power` draws ``reps`` whole trials of the scenario with ``n`` participants
randomised (:func:`rjtrial.simulate._replicates.sized_scenario`: the referral rate
scales with the size, so the intake period and follow-up are the scenario's), each
allocated by the protocol's own law and analysed by the scenario's analysis plan, and
counts the trials whose two-sided test rejects "no effect" at level ``alpha``. The analyses:

* ``"cox"``: Cox model of ``time_at_risk`` (street days to the first reoffence) on the
  arm, Efron ties, Wald test; estimate the hazard ratio;
* ``"logrank"``: the log-rank test; estimate Peto's hazard ratio ``exp((O - E) / V)``
  of the conference arm;
* ``"rate_ratio"``: negative binomial (NB2) rate ratio of ``reoffences`` with
  ``exposure_days`` as offset, participants with some street time, Wald test
  (:func:`rjtrial.frequency.rate_ratio`'s model).

Trials are drawn in batches of ``chunk_size`` as arrays (:mod:`rjtrial.simulate._replicates`)
and fitted at once by :func:`rjtrial.survival.batched.cox_batch`,
:func:`~rjtrial.survival.batched.logrank_batch` or
:func:`~rjtrial.survival.batched.negative_binomial_batch` (a trial that batch cannot fit is
refitted by :func:`rjtrial.frequency.rate_ratio`).

Beside the simulated power stands Schoenfeld's approximation (:func:`schoenfeld_power`)
for the log-rank/Cox test, evaluated twice with the expected number of events at that
size (the events per participant of the scenario's Monte Carlo truth,
:func:`rjtrial.simulate.truth.compute_truth`, times ``n``): with the **intention-to-treat**
hazard ratio of the truth (what the trial estimates: diluted by conferences not held,
frailty and custody), and with the **naive** one, ``hazard_ratio_treated``, which
overstates power.

Reproducibility and common random numbers: batch ``b`` of every cell of the grid is drawn
from ``SeedSequence(seed, spawn_key=(b,))`` (:func:`rjtrial.simulate._replicates.batch_seed`),
whatever its size and effect. Trial ``k`` is column ``k % chunk_size`` of batch
``k // chunk_size``; so trial ``k`` of a larger size shares its first participants with
trial ``k`` of a smaller one, and trial ``k`` under a stronger effect (hazard ratios up to
1) is the same trial with some of its treated offences removed (thinning): the power curve
is smooth in ``n`` and in the effect, and differences between designs are estimated far
more precisely than each power alone. The result depends on the seed, ``reps`` and
``chunk_size`` only -- not on the number of workers or the backend (in-process, thread
pool, Dask), nor on the order in which batches finish.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special

from rjtrial._result import Result, jsonable
from rjtrial.simulate._runner import ANALYSES, Runner
from rjtrial.simulate._streams import seed_label, seed_sequence
from rjtrial.simulate.scenario import Scenario
from rjtrial.survival.sample_size import schoenfeld_events, schoenfeld_power, schoenfeld_sample_size

__all__ = ["ANALYSES", "PowerResult", "power", "schoenfeld_power", "schoenfeld_events", "schoenfeld_sample_size"]

#: Trials per batch (a batch is drawn at once from one seed; part of what a seed means).
CHUNK_SIZE = 250
CI_LEVEL = 0.95


# ----------------------------------------------------------------------------- deprecated
def negative_binomial_batch(
    count, exposure, treatment, trial, *, n_trials: int | None = None, tol: float = 1e-10, max_iterations: int = 100
) -> dict[str, np.ndarray]:
    """Deprecated: use :func:`rjtrial.survival.batched.negative_binomial_batch` (a result object).

    Returns the old dict: ``estimate, std_error, p_value, alpha`` (the dispersion),
    ``n_iterations, converged``.
    """
    from rjtrial.survival.batched import negative_binomial_batch as batch

    warnings.warn(
        "rjtrial.simulate.power.negative_binomial_batch is deprecated; use "
        "rjtrial.survival.batched.negative_binomial_batch",
        DeprecationWarning,
        stacklevel=2,
    )
    res = batch(
        count, exposure, treatment, trial=np.asarray(trial), n_trials=n_trials, tol=tol, max_iterations=max_iterations
    )
    return {
        "estimate": res.estimate,
        "std_error": res.std_error,
        "p_value": res.p_value,
        "alpha": res.dispersion,
        "n_iterations": res.n_iterations,
        "converged": res.converged,
    }


# ----------------------------------------------------------------------------- the result
_COLUMNS = [
    "hazard_ratio",
    "n",
    "reps",
    "power",
    "mc_std_error",
    "ci_lower",
    "ci_upper",
    "mean_events",
    "mean_estimate",
    "failed",
    "itt_hazard_ratio",
    "expected_events",
    "schoenfeld_power",
    "schoenfeld_power_naive",
]


def wilson(successes: float, trials: int, level: float = CI_LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion."""
    z = special.ndtri(0.5 + level / 2.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class PowerResult(Result):
    """Result of :func:`power`.

    Attributes
    ----------
    replicates : DataFrame
        One row per simulated trial: ``hazard_ratio, n, replicate, estimate`` (hazard or
        rate ratio), ``log_estimate, std_error, p_value, reject, events, converged``.
    settings : dict
        ``scenario, analysis, alpha, seed, reps, n, hazard_ratio, ci_level, chunk_size``;
        the truth behind Schoenfeld's columns (``truths``: per effect, the
        intention-to-treat hazard ratio and events per participant; ``allocation``,
        ``truth_population``); ``backend, workers``; ``seconds`` (``total``: wall time;
        ``generation, followup, fitting``: CPU seconds summed over the batches, whichever
        worker ran them; ``truth``: wall time of the truths); versions.
    notes : tuple of str
        What the run had to say (trials no engine could fit).
    """

    replicates: pd.DataFrame = field(repr=False)
    settings: Mapping[str, Any]
    notes: tuple[str, ...] = ()

    def summary_frame(self) -> pd.DataFrame:
        """One row per effect and sample size (sizes ascending within each effect).

        Columns ``hazard_ratio`` (``reoffending.hazard_ratio_treated``), ``n, reps, power``,
        ``mc_std_error`` (``sqrt(p (1 - p) / reps)``), ``ci_lower, ci_upper`` (Wilson
        interval, level ``attrs["ci_level"]``), ``mean_events`` (per trial: first
        reoffences for cox/logrank, reoffences for rate_ratio), ``mean_estimate``
        (geometric mean of the hazard or rate ratio), ``failed`` (trials with no estimate:
        counted as not rejecting), ``itt_hazard_ratio`` (the truth's), ``expected_events``
        (from the truth), ``schoenfeld_power`` (with the ITT hazard ratio) and
        ``schoenfeld_power_naive`` (with ``hazard_ratio``); the Schoenfeld columns are NaN
        for ``rate_ratio`` or without the truth. ``attrs`` holds :attr:`settings`.
        """
        s = self.settings
        rows = []
        for (hr, n), group in self.replicates.groupby(["hazard_ratio", "n"], sort=False):
            reps = len(group)
            p = float(group["reject"].mean())
            lower, upper = wilson(p * reps, reps, s["ci_level"])
            log_estimate = group["log_estimate"].to_numpy()
            log_estimate = log_estimate[np.isfinite(log_estimate)]
            truth = (s.get("truths") or {}).get(repr(float(hr)))
            itt = naive = expected = itt_hr = math.nan
            if truth is not None:
                itt_hr = truth["itt_hazard_ratio"]
                expected = truth["events_per_participant"] * n
                if s["analysis"] in ("cox", "logrank"):
                    itt = schoenfeld_power(itt_hr, expected, allocation=s["allocation"], alpha=s["alpha"])
                    naive = schoenfeld_power(hr, expected, allocation=s["allocation"], alpha=s["alpha"])
                else:
                    expected = math.nan
            rows.append(
                {
                    "hazard_ratio": float(hr),
                    "n": int(n),
                    "reps": reps,
                    "power": p,
                    "mc_std_error": math.sqrt(p * (1 - p) / reps),
                    "ci_lower": lower,
                    "ci_upper": upper,
                    "mean_events": float(group["events"].mean()),
                    "mean_estimate": float(np.exp(log_estimate.mean())) if log_estimate.size else math.nan,
                    "failed": int((~group["converged"]).sum()),
                    "itt_hazard_ratio": itt_hr,
                    "expected_events": expected,
                    "schoenfeld_power": itt,
                    "schoenfeld_power_naive": naive,
                }
            )
        frame = pd.DataFrame(rows, columns=_COLUMNS)
        frame.attrs.update(dict(s))
        return frame

    def frame(self) -> pd.DataFrame:
        """The same as :meth:`summary_frame` (the name used before the result convention)."""
        return self.summary_frame()

    def to_dict(self) -> dict[str, Any]:
        """``settings``, ``rows`` (:meth:`summary_frame`'s rows) and ``notes``, JSON-ready."""
        return {
            "settings": jsonable(dict(self.settings)),
            "rows": jsonable(self.summary_frame()),
            "notes": list(self.notes),
        }

    def to_csv(self, path) -> None:
        """Write :meth:`summary_frame` as CSV."""
        self.summary_frame().to_csv(path, index=False)

    def plot(self, ax=None, *, target: float | None = 0.8):
        """Power against sample size, one curve per effect, with Monte Carlo bands and
        Schoenfeld's curve dashed (:func:`rjtrial.simulate.plots.plot_power`). Returns the Axes."""
        from rjtrial.simulate.plots import plot_power

        return plot_power(self, ax=ax, target=target)

    def format(self, digits: int = 3) -> str:
        """The grid as text, with the settings, the truths used by Schoenfeld and the time split."""
        s = self.settings
        frame = self.summary_frame()
        what = {
            "cox": "Cox (Efron) Wald test",
            "logrank": "log-rank test",
            "rate_ratio": "negative binomial rate ratio, Wald test",
        }[s["analysis"]]
        ratio = "RR" if s["analysis"] == "rate_ratio" else "HR"
        lines = [
            f"power by simulation: {s['scenario']} — {what}, two-sided alpha {s['alpha']:g}, "
            f"{s['reps']} trials per cell, seed {s['seed']}"
        ]
        survival = s["analysis"] in ("cox", "logrank") and bool(s.get("truths"))
        header = (
            f"{'HR treated':>10} {'n':>6} {'power':>7} {'MC s.e.':>8} {'95% interval':>15} {'events':>8} "
            f"{'mean ' + ratio:>8}"
        )
        if survival:
            header += f" {'ITT HR':>7} {'Schoenfeld ITT':>15} {'naive':>7}"
        lines.append(header)
        for r in frame.itertuples(index=False):
            line = (
                f"{r.hazard_ratio:>10g} {r.n:>6} {r.power:>7.{digits}f} {r.mc_std_error:>8.4f} "
                f"{f'{r.ci_lower:.{digits}f}-{r.ci_upper:.{digits}f}':>15} {r.mean_events:>8.1f} "
                f"{r.mean_estimate:>8.3f}"
            )
            if survival:
                line += f" {r.itt_hazard_ratio:>7.3f} {r.schoenfeld_power:>15.{digits}f} {r.schoenfeld_power_naive:>7.{digits}f}"
            if r.failed:
                line += f"  ({r.failed} fits failed)"
            lines.append(line)
        if survival:
            lines.append(
                f"Schoenfeld ITT: the intention-to-treat hazard ratio of the Monte Carlo truth "
                f"({s['truth_population']:,} people per effect) and its events per participant; naive: "
                "the treated hazard ratio itself (as if every conference were held and frailty did nothing)."
            )
        lines.extend(f"note: {note}" for note in self.notes)
        lines.append(time_split(s))
        return "\n".join(lines)


def time_split(settings: Mapping[str, Any]) -> str:
    """The one-line account of where the time went."""
    seconds = settings["seconds"]
    backend, workers = settings["backend"], settings["workers"]
    where = (
        "this process"
        if backend == "in-process"
        else backend
        if workers is None
        else f"a {backend} of {workers} workers"
    )
    trials = settings.get("trials_simulated")
    count = f"{trials:,} trials " if trials else ""
    truth = f", truth {seconds['truth']:.1f} s" if seconds.get("truth") else ""
    return (
        f"{count}in {seconds['total']:.1f} s on {where}; CPU seconds: generation {seconds['generation']:.1f}, "
        f"follow-up {seconds['followup']:.1f}, fitting {seconds['fitting']:.1f}{truth}"
    )


# ----------------------------------------------------------------------------- checks
def _check_whole(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def _sizes(n) -> list[int]:
    values = [n] if isinstance(n, (int, np.integer)) else list(n)
    if not values:
        raise ValueError("n must name at least one sample size")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or int(v) < 2:
            raise ValueError(f"n: every sample size must be a whole number of at least 2, got {v!r}")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ValueError(f"n: sample sizes must be distinct, got {values!r}")
    return out


def _effects(hazard_ratio, scenario: Scenario) -> list[float]:
    if hazard_ratio is None:
        return [float(scenario.reoffending.hazard_ratio_treated)]
    values = [hazard_ratio] if isinstance(hazard_ratio, (int, float, np.integer, np.floating)) else list(hazard_ratio)
    if not values:
        raise ValueError("hazard_ratio must name at least one hazard ratio")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not 0 < v < math.inf:
            raise ValueError(f"hazard_ratio: every hazard ratio must be a positive number, got {v!r}")
        out.append(float(v))
    if len(set(out)) != len(out):
        raise ValueError(f"hazard_ratio: the hazard ratios must be distinct, got {values!r}")
    return out


def with_effect(scenario: Scenario, hazard_ratio: float) -> Scenario:
    """``scenario`` with ``reoffending.hazard_ratio_treated`` set (itself if unchanged)."""
    if float(hazard_ratio) == float(scenario.reoffending.hazard_ratio_treated):
        return scenario
    return scenario.with_overrides({"reoffending.hazard_ratio_treated": float(hazard_ratio)})


def check_common(*, analysis, alpha, reps, workers, chunk_size, schoenfeld, truth_population) -> float:
    """Validate the options shared by :func:`power` and the sample-size search; returns alpha."""
    if analysis not in ANALYSES:
        raise ValueError(f"analysis must be one of {', '.join(ANALYSES)}; got {analysis!r}")
    alpha = float(alpha) if isinstance(alpha, (int, float)) and not isinstance(alpha, bool) else math.nan
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha!r}")
    _check_whole("reps", reps)
    if workers is not None:
        _check_whole("workers", workers)
    _check_whole("chunk_size", chunk_size)
    if schoenfeld:
        _check_whole("truth_population", truth_population)
    return alpha


# ----------------------------------------------------------------------------- simulation
def simulate_cells(
    runner: Runner,
    cells: Sequence[tuple[Scenario, float, int]],
    *,
    reps: int,
    analysis: str,
    alpha: float,
    root: np.random.SeedSequence,
    chunk_size: int,
) -> tuple[pd.DataFrame, dict]:
    """Replicate trials of each cell ``(scenario, hazard_ratio, n)``: one row per trial, and CPU seconds."""
    from rjtrial.simulate._replicates import batch_seed, sized_scenario

    tasks = []
    for c, (scenario, hr, n) in enumerate(cells):
        sized = sized_scenario(with_effect(scenario, hr), n)
        for b, lo in enumerate(range(0, reps, chunk_size)):
            tasks.append(
                {
                    "scenario": sized,
                    "seed": batch_seed(root, b),
                    "replicates": min(chunk_size, reps - lo),
                    "analysis": analysis,
                    "threads": runner.threads,
                    "key": (c, b),
                }
            )
    runner.expect(len(cells) * reps)
    seconds = {"generation": 0.0, "followup": 0.0, "fitting": 0.0}
    frames = []
    for r in runner.run(tasks):
        c, b = r["key"]
        _, hr, n = cells[c]
        for key in seconds:
            seconds[key] += r["seconds"][key]
        log_estimate = np.asarray(r["estimate"], dtype=float)
        p = np.asarray(r["p_value"], dtype=float)
        frames.append(
            pd.DataFrame(
                {
                    "hazard_ratio": float(hr),
                    "n": int(n),
                    "replicate": b * chunk_size + np.arange(p.size),
                    "estimate": np.exp(log_estimate),
                    "log_estimate": log_estimate,
                    "std_error": np.asarray(r["std_error"], dtype=float),
                    "p_value": p,
                    "reject": np.nan_to_num(p, nan=1.0) < alpha,
                    "events": np.asarray(r["events"], dtype=float),
                    "converged": np.asarray(r["converged"], dtype=bool),
                }
            )
        )
    return pd.concat(frames, ignore_index=True), seconds


def truths(scenario: Scenario, effects: Sequence[float], *, population: int, cache_dir) -> dict[str, dict]:
    """Per effect (keyed by ``repr(float(hr))``): the truth's ITT hazard ratio and events per participant."""
    from rjtrial.simulate.truth import compute_truth

    out = {}
    for hr in effects:
        record = compute_truth(with_effect(scenario, hr), population=int(population), cache_dir=cache_dir)
        out[repr(float(hr))] = {
            "itt_hazard_ratio": record["hazard_ratio"],
            "itt_rate_ratio": record["rate_ratio"],
            "events_per_participant": sum(record["events"].values()) / record["population"],
        }
    return out


def _notes(replicates: pd.DataFrame) -> tuple[str, ...]:
    failed = int((~replicates["converged"]).sum())
    if not failed:
        return ()
    return (
        f"{failed} of {len(replicates):,} simulated trials could not be fitted (no event in an arm, or a fit "
        "that did not converge); they count as not rejecting",
    )


def power(
    scenario: Scenario | str | os.PathLike,
    *,
    n: int | Sequence[int] = (200, 400, 800),
    hazard_ratio: float | Sequence[float] | None = None,
    reps: int = 2000,
    analysis: str = "cox",
    alpha: float = 0.05,
    rng,
    workers: int | None = None,
    scheduler=None,
    progress: bool = False,
    schoenfeld: bool = True,
    truth_population: int = 2_000_000,
    truth_cache_dir: str | os.PathLike | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> PowerResult:
    """Power of a trial of ``scenario``'s design at each effect and size, by simulation.

    Parameters
    ----------
    scenario : Scenario or path to a scenario TOML
    n : int or sequence of int
        Numbers randomised (each >= 2).
    hazard_ratio : float or sequence of float, optional
        Effects of a conference among those who had one (``reoffending.hazard_ratio_treated``);
        default the scenario's own.
    reps : int
        Simulated trials per effect and size (>= 1).
    analysis : {"cox", "logrank", "rate_ratio"}
        The test (see the module notes).
    alpha : float
        Two-sided significance level, in (0, 1).
    rng : int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of every trial (see the module notes on reproducibility).
    workers : int, optional
        Threads of the local pool (default ``os.cpu_count()``, or this thread alone for a
        run of one or two batches); 1 runs in this thread. The work releases the GIL, so
        the threads run at once (see :mod:`rjtrial.simulate._runner`).
    scheduler : str or distributed.Client, optional
        Run the batches on a Dask cluster instead: a scheduler address
        (``"tcp://host:8786"``) or a connected ``distributed.Client``.
    progress : bool
        Show a progress bar (tqdm, with the time left) on standard error.
    schoenfeld : bool
        Compute the truth (:func:`~rjtrial.simulate.truth.compute_truth`) for each effect,
        for the Schoenfeld columns; False leaves them NaN.
    truth_population, truth_cache_dir
        Passed to :func:`~rjtrial.simulate.truth.compute_truth`.
    chunk_size : int
        Trials per batch (drawn at once; part of what the seed means).

    Returns
    -------
    PowerResult
        ``summary_frame()``: one row per effect and size (power, Monte Carlo standard
        error and interval, events, mean estimate, Schoenfeld's power with the ITT and
        the naive hazard ratio); ``replicates``: one row per trial; ``plot()``.

    Examples
    --------
    >>> res = power("synthetic/jrc-london-burglary.toml", n=[60, 120], reps=10, rng=1, workers=1,
    ...             schoenfeld=False)
    >>> res.summary_frame()[["n", "reps"]].to_dict(orient="records")
    [{'n': 60, 'reps': 10}, {'n': 120, 'reps': 10}]
    >>> bool(res.summary_frame()["power"].between(0.0, 1.0).all())
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
    sizes = _sizes(n)
    root = seed_sequence(rng)
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    effects = _effects(hazard_ratio, scenario)
    started = time.perf_counter()
    cells = [(scenario, hr, size) for hr in effects for size in sizes]
    if workers is None and scheduler is None and len(cells) * math.ceil(int(reps) / int(chunk_size)) <= 2:
        workers = 1  # one or two batches: starting a pool would cost more than it saves (same result)
    with Runner(workers=workers, scheduler=scheduler, progress=progress) as runner:
        replicates, seconds = simulate_cells(
            runner, cells, reps=int(reps), analysis=analysis, alpha=alpha, root=root, chunk_size=int(chunk_size)
        )
        backend, n_workers = runner.backend, runner.workers
    truth = {}
    if schoenfeld:
        truth_started = time.perf_counter()
        truth = truths(scenario, effects, population=truth_population, cache_dir=truth_cache_dir)
        seconds["truth"] = time.perf_counter() - truth_started
    ratio = scenario.protocol.ratio
    seconds["total"] = time.perf_counter() - started
    settings = {
        "scenario": scenario.id,
        "scenario_fingerprint": scenario.fingerprint(),
        "analysis": analysis,
        "alpha": alpha,
        "seed": seed_label(rng, root),
        "reps": int(reps),
        "n": sizes,
        "hazard_ratio": effects,
        "ci_level": CI_LEVEL,
        "truths": truth,
        "allocation": ratio[1] / sum(ratio),
        "truth_population": int(truth_population) if schoenfeld else None,
        "backend": backend,
        "workers": n_workers,
        "chunk_size": int(chunk_size),
        "trials_simulated": len(replicates),
        "seconds": seconds,
        "versions": {"rjtrial": __version__, "numpy": np.__version__},
    }
    notes = _notes(replicates)
    for note in notes:
        warnings.warn(note, _warning_class(), stacklevel=2)
    return PowerResult(replicates, settings, notes)


def _warning_class():
    from rjtrial.errors import ConvergenceWarning

    return ConvergenceWarning
