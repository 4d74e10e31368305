"""Interim looks of simulated trials: does a group-sequential design keep its level?

:func:`sequential_trials` draws whole trials of a scenario with the power engine's replicate
batches (:func:`rjtrial.simulate._replicates.replicate_batch`: the protocol's allocation, the
reoffending process, the follow-up) and analyses each of them as a data monitoring committee
would, at interim looks in calendar time: look ``k`` is held on the day the trial's
``ceil(t_k D)``-th first reoffence happens (``D``: the trial's first reoffences at the end of
its follow-up; ``t_k`` the design's information fractions), the last look on the whole
follow-up. At a look, only people randomised by that day are in, each followed up to that day
(time from random assignment to the first reoffence, in calendar days: a look cannot know
custody spells not yet recorded), and the log-rank statistic is computed for every trial and
look at once (:func:`rjtrial.survival.batched.logrank_batch`).

:meth:`SequentialTrials.check` then runs a design's looks on each simulated trial -- the
boundaries at the information each look actually reached (:func:`rjtrial.monitor.boundaries_at`,
the trial's final events as its maximum) -- and gives the proportion of trials that stopped for
efficacy or harm (under no effect: the type I error), with its Monte Carlo standard error and
interval. Trial ``k`` is column ``k % chunk_size`` of batch ``k // chunk_size`` (seeded by
:func:`~rjtrial.simulate._replicates.batch_seed`), so a run depends on the seed, ``reps`` and
``chunk_size`` only, not on the number of worker threads.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import special

from rjtrial._result import Result, jsonable
from rjtrial.simulate._streams import seed_label, seed_sequence
from rjtrial.simulate.scenario import Scenario

__all__ = ["SequentialCheck", "SequentialTrials", "sequential_trials"]

CHUNK_SIZE = 250
CI_LEVEL = 0.95


def _wilson(successes: float, trials: int, level: float = CI_LEVEL) -> tuple[float, float]:
    z = special.ndtri(0.5 + level / 2.0)
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z / (1 + z * z / trials) * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


# ----------------------------------------------------------------------------- one batch
def looks_of_batch(
    batch: Mapping[str, np.ndarray], information: Sequence[float], *, threads: int | None = None
) -> dict[str, np.ndarray]:
    """The log-rank statistic of every trial of a replicate batch at each look.

    ``batch``: :func:`~rjtrial.simulate._replicates.replicate_batch`'s ``(n, R)`` arrays
    (``assigned_day``, ``event``, ``first_reoffence_day``, ``followup_days``, ``treatment``).
    Returns ``(R, K)`` arrays ``statistic`` (log-rank ``(O - E) / sqrt(V)`` of the conference
    arm: the sign of its log hazard ratio), ``events`` and ``n`` (people randomised by the look),
    and ``(R,)`` ``ok`` (False for a trial too small to hold the looks: fewer first reoffences
    than looks, or a look without both arms).
    """
    from rjtrial.survival.batched import logrank_batch

    fractions = np.asarray(information, dtype=float)
    looks = fractions.size
    assigned = np.asarray(batch["assigned_day"], dtype=np.int64)
    event = np.asarray(batch["event"]).astype(bool)
    first = np.asarray(batch["first_reoffence_day"], dtype=np.int64)
    followed = np.asarray(batch["followup_days"], dtype=np.int64)
    treatment = np.asarray(batch["treatment"]).astype(np.uint8)
    n, trials = assigned.shape
    time_full = np.where(event, first, followed)
    event_day = np.where(event, assigned + first, np.iinfo(np.int64).max)
    total = event.sum(axis=0)
    ranks = np.ceil(fractions[None, :-1] * total[:, None] - 1e-9).astype(np.int64)  # (R, K-1), 1-based
    ordered = np.sort(event_day, axis=0)  # event days first, the others last
    ok = (total >= looks) & (ranks >= 1).all(axis=1)
    safe = np.clip(ranks - 1, 0, n - 1)
    cut = np.full((trials, looks), np.iinfo(np.int64).max // 4, dtype=np.int64)
    cut[:, :-1] = np.take_along_axis(ordered.T, safe, axis=1)
    # every (look, person, trial): in if randomised by the look's day
    cut_k = cut.T[:, None, :]  # (K, 1, R)
    inside = assigned[None, :, :] <= cut_k
    horizon = cut_k - assigned[None, :, :]
    time_k = np.minimum(time_full[None, :, :], horizon)
    event_k = event[None, :, :] & (event_day[None, :, :] <= cut_k)
    label = np.broadcast_to(
        np.arange(trials)[None, None, :] * looks + np.arange(looks)[:, None, None], (looks, n, trials)
    )
    events = event_k.sum(axis=1).T.astype(np.int64)  # (R, K)
    counted = inside.sum(axis=1).T.astype(np.int64)
    ok &= (np.diff(events, axis=1) > 0).all(axis=1)  # ties on a look's day can merge two looks
    keep = inside & ok[None, None, :]
    statistic = np.full((trials, looks), np.nan)
    if keep.any():
        labels = label[keep]
        used = np.unique(labels)
        compact = np.searchsorted(used, labels)
        result = logrank_batch(
            time_k[keep].astype(float),
            event_k[keep],
            np.broadcast_to(treatment, keep.shape)[keep],
            trial=compact,
            threads=threads,
        )
        z = np.full(trials * looks, np.nan)
        z[used] = result.z
        statistic = z.reshape(trials, looks)
    ok &= np.isfinite(statistic).all(axis=1)
    return {"statistic": statistic, "events": events, "n": counted, "ok": ok}


def _run(task: Mapping[str, Any]) -> dict[str, Any]:
    from rjtrial.simulate._replicates import replicate_batch
    from rjtrial.simulate._runner import cpu_clock

    clock = cpu_clock(task.get("threads"))
    started = clock()
    batch = replicate_batch(task["scenario"], task["seed"], task["replicates"], allocation=task["allocation"])
    generated = clock()
    out: dict[str, Any] = dict(looks_of_batch(batch, task["information"], threads=task.get("threads")))
    out["key"] = task["key"]
    out["seconds"] = {"generation": generated - started, "analysis": clock() - generated}
    return out


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class SequentialCheck(Result):
    """A design's looks run on simulated trials (:meth:`SequentialTrials.check`).

    Attributes
    ----------
    rejection_rate : float
        Share of the trials that stopped for efficacy or harm at some look (type I error when
        the scenario has no effect).
    efficacy_rate, harm_rate, futility_rate : float
        Shares that stopped for efficacy, for harm (two-sided designs) and for futility (only
        when ``futility="obey"``).
    mc_std_error, ci_lower, ci_upper : float
        Monte Carlo standard error of ``rejection_rate`` and its Wilson interval (95%).
    target : float
        What the rate should be: the design's ``alpha`` (``hypothesis="null"``) or ``power``.
    reps : int
        Trials used (those too small to hold the looks left out: ``failed``).
    failed : int
    by_look : DataFrame
        Per look: ``look``, ``information_fraction`` (mean reached), ``events`` (mean),
        ``efficacy``, ``harm``, ``futility`` (share stopping there), ``rejected`` (cumulative).
    futility : str
        ``"ignore"`` (a non-binding bound: the level must hold whatever the committee does) or
        ``"obey"``.
    """

    rejection_rate: float
    efficacy_rate: float
    harm_rate: float
    futility_rate: float
    mc_std_error: float
    ci_lower: float
    ci_upper: float
    target: float
    hypothesis: str
    reps: int
    failed: int
    futility: str
    by_look: pd.DataFrame = field(repr=False, compare=False)
    notes: tuple = ()

    @property
    def z_score(self) -> float:
        """``(rejection_rate - target) / mc_std_error`` under the target (how many standard errors off)."""
        return (self.rejection_rate - self.target) / math.sqrt(self.target * (1 - self.target) / self.reps)

    def summary_frame(self) -> pd.DataFrame:
        """Per look (see :attr:`by_look`); ``attrs``: the overall rates, interval and target."""
        frame = self.by_look.copy()
        frame.attrs.update(
            rejection_rate=self.rejection_rate,
            mc_std_error=self.mc_std_error,
            ci_lower=self.ci_lower,
            ci_upper=self.ci_upper,
            target=self.target,
            reps=self.reps,
            futility=self.futility,
            ci_level=CI_LEVEL,
        )
        return frame

    def format(self, digits: int = 4) -> str:
        """The check as text: the level or power found, its Monte Carlo error and the per-look stops."""
        what = "type I error" if self.hypothesis == "null" else "power"
        lines = [
            f"{what} by simulation: {self.rejection_rate:.{digits}f} (Monte Carlo s.e. {self.mc_std_error:.{digits}f}, "
            f"95% interval {self.ci_lower:.{digits}f} to {self.ci_upper:.{digits}f}) over {self.reps:,} trials; "
            f"the design's {'alpha' if self.hypothesis == 'null' else 'power'} {self.target:g} "
            f"({self.z_score:+.2f} standard errors)"
        ]
        lines.append(self.by_look.to_string(index=False, float_format=lambda v: f"{v:.{digits}f}"))
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


@dataclass(frozen=True)
class SequentialTrials(Result):
    """Log-rank statistics of simulated trials at interim looks (from :func:`sequential_trials`).

    Attributes
    ----------
    statistics : DataFrame
        One row per trial and look: ``replicate``, ``look``, ``events``, ``n`` (randomised by
        the look), ``information_fraction`` (events over the trial's final events),
        ``statistic`` (log-rank ``z`` of the conference arm, the sign of its log hazard ratio),
        ``ok`` (False: a trial too small to hold the looks).
    settings : dict
        ``scenario, n, hazard_ratio, information, reps, seed, chunk_size, workers, seconds``.
    """

    statistics: pd.DataFrame = field(repr=False)
    settings: Mapping[str, Any]

    def summary_frame(self) -> pd.DataFrame:
        """Per look: ``look``, ``information_fraction`` (planned), ``mean_fraction`` (reached),
        ``events`` (mean), ``mean_statistic``, ``sd_statistic`` (0 and 1 when there is no effect),
        ``trials``."""
        good = self.statistics[self.statistics["ok"]]
        planned = dict(enumerate(self.settings["information"], start=1))
        frame = (
            good.groupby("look")
            .agg(
                mean_fraction=("information_fraction", "mean"),
                events=("events", "mean"),
                mean_statistic=("statistic", "mean"),
                sd_statistic=("statistic", "std"),
                trials=("statistic", "size"),
            )
            .reset_index()
        )
        frame.insert(1, "information_fraction", frame["look"].map(planned))
        frame.attrs.update(dict(self.settings))
        return frame

    def matrix(self, column: str = "statistic") -> np.ndarray:
        """``(trials, looks)`` array of ``column`` for the trials that hold the looks."""
        good = self.statistics[self.statistics["ok"]]
        looks = len(self.settings["information"])
        return good.sort_values(["replicate", "look"])[column].to_numpy().reshape(-1, looks)

    def check(self, design, *, hypothesis: str = "null", futility: str | None = None) -> SequentialCheck:
        """Run ``design``'s looks on every simulated trial.

        Parameters
        ----------
        design : rjtrial.monitor.SequentialDesign
            Its information fractions must be the simulation's.
        hypothesis : {"null", "alternative"}
            What the scenario's effect is: ``"null"`` compares the rate of stopping for efficacy
            or harm with the design's ``alpha``; ``"alternative"`` the rate of stopping for
            efficacy with its ``power``.
        futility : {"ignore", "obey"}, optional
            Whether trials stop at a futility bound; default ``"obey"`` for a binding bound and
            ``"ignore"`` for a non-binding one under the null (the level must hold even if the
            committee never stops for futility), ``"obey"`` under the alternative.

        Returns
        -------
        SequentialCheck
        """
        from rjtrial.monitor import boundaries_at

        if hypothesis not in ("null", "alternative"):
            raise ValueError(f"hypothesis must be 'null' or 'alternative', got {hypothesis!r}")
        if futility is None:
            futility = "obey" if design.binding or hypothesis == "alternative" else "ignore"
        if futility not in ("ignore", "obey"):
            raise ValueError(f"futility must be 'ignore' or 'obey', got {futility!r}")
        if len(design.information) != len(self.settings["information"]) or not np.allclose(
            design.information, self.settings["information"], rtol=0, atol=1e-12
        ):
            raise ValueError(
                f"the design's information fractions {list(design.information)} are not the "
                f"simulation's {list(self.settings['information'])}"
            )
        z = design.direction * self.matrix("statistic")
        events = self.matrix("events")
        trials, looks = z.shape
        critical = np.empty((trials, looks))
        bound = np.full((trials, looks), -np.inf)
        cache: dict[tuple, tuple] = {}
        for i, row in enumerate(events):
            key = tuple(int(e) for e in row)
            if key not in cache:
                frame = boundaries_at(design, key, final=True, max_events=key[-1])
                fut = frame["futility_bound"].to_numpy()
                cache[key] = (frame["critical_value"].to_numpy(), np.where(np.isnan(fut), -np.inf, fut))
            critical[i], bound[i] = cache[key]
        stopped = np.zeros(trials, dtype=bool)
        efficacy = np.zeros((trials, looks), dtype=bool)
        harm = np.zeros((trials, looks), dtype=bool)
        halted = np.zeros((trials, looks), dtype=bool)
        for k in range(looks):
            efficacy[:, k] = ~stopped & (z[:, k] >= critical[:, k])
            harm[:, k] = ~stopped & (z[:, k] <= -critical[:, k]) if design.sides == 2 else False
            stopped |= efficacy[:, k] | harm[:, k]
            if futility == "obey" and k < looks - 1:
                halted[:, k] = ~stopped & (z[:, k] <= bound[:, k])
                stopped |= halted[:, k]
        success = efficacy | harm if hypothesis == "null" else efficacy
        rate = float(success.any(axis=1).mean())
        lower, upper = _wilson(rate * trials, trials)
        target = design.alpha if hypothesis == "null" else design.power
        by_look = pd.DataFrame(
            {
                "look": np.arange(1, looks + 1),
                "information_fraction": (events / events[:, -1:]).mean(axis=0),
                "events": events.mean(axis=0),
                "efficacy": efficacy.mean(axis=0),
                "harm": harm.mean(axis=0),
                "futility": halted.mean(axis=0),
                "rejected": np.cumsum(success.mean(axis=0)),
            }
        )
        failed = int((~self.statistics.groupby("replicate")["ok"].first()).sum())
        notes = (f"{failed} simulated trials were too small to hold the looks and are left out",) if failed else ()
        return SequentialCheck(
            rejection_rate=rate,
            efficacy_rate=float(efficacy.any(axis=1).mean()),
            harm_rate=float(harm.any(axis=1).mean()),
            futility_rate=float(halted.any(axis=1).mean()),
            mc_std_error=math.sqrt(rate * (1 - rate) / trials),
            ci_lower=lower,
            ci_upper=upper,
            target=target,
            hypothesis=hypothesis,
            reps=trials,
            failed=failed,
            futility=futility,
            by_look=by_look,
            notes=notes,
        )

    def format(self, digits: int = 3) -> str:
        """The simulated trials as text: the settings, then the events and statistics per look."""
        s = self.settings
        head = (
            f"{s['reps']:,} simulated trials of {s['scenario']} (n = {s['n']}, hazard ratio treated "
            f"{s['hazard_ratio']:g}), looks at information {', '.join(f'{t:.3g}' for t in s['information'])}; "
            f"seed {s['seed']}"
        )
        return head + "\n" + self.summary_frame().to_string(index=False, float_format=lambda v: f"{v:.{digits}f}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the settings and the per-look summary."""
        return {"settings": jsonable(dict(self.settings)), "looks": jsonable(self.summary_frame())}


# ----------------------------------------------------------------------------- the verb
def sequential_trials(
    scenario: Scenario | str,
    *,
    information: Sequence[float] = (1 / 3, 2 / 3, 1.0),
    n: int | None = None,
    hazard_ratio: float | None = None,
    reps: int = 2000,
    rng,
    allocation: str | None = None,
    workers: int | None = 1,
    chunk_size: int = CHUNK_SIZE,
) -> SequentialTrials:
    """Simulate trials of ``scenario`` analysed at interim looks (see the module notes).

    Parameters
    ----------
    scenario : Scenario or path to a scenario TOML
    information : sequence of float
        Information fractions of the looks (events at the look over the trial's final events),
        increasing, ending at 1: the design's.
    n : int, optional
        Number randomised (default the scenario's); the referral rate scales with it.
    hazard_ratio : float, optional
        ``reoffending.hazard_ratio_treated`` (default the scenario's; 1 for no effect).
    reps : int
        Trials to simulate.
    rng : int, SeedSequence or Generator
        The run's seed.
    allocation : {None, "simple"}
        None allocates by the protocol's method (stratified blocks, minimisation...); "simple"
        by simple randomisation with the protocol's ratio. Allocation balanced on prognostic
        strata can make the unstratified log-rank statistic conservative (its variance below
        1), so that the level is kept with room to spare.
    workers : int, optional
        Threads (1, the default, runs in this thread; None: one per CPU). The result does
        not depend on it.
    chunk_size : int
        Trials per batch (part of what the seed means).

    Returns
    -------
    SequentialTrials
        ``statistics`` (one row per trial and look), ``check(design)`` for a design's error
        rates.

    Examples
    --------
    >>> sim = sequential_trials("synthetic/null-effect.toml", n=200, reps=20, rng=1, chunk_size=10)
    >>> sim.summary_frame()[["look", "information_fraction", "trials"]].to_dict(orient="records")[0]
    {'look': 1, 'information_fraction': 0.3333333333333333, 'trials': 20}
    """
    from rjtrial.simulate._replicates import batch_seed, sized_scenario
    from rjtrial.simulate.power import with_effect
    from rjtrial.simulate.scenario import load_scenario

    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    fractions = [float(t) for t in information]
    if (
        not fractions
        or fractions[-1] != 1.0
        or any(not 0 < t <= 1 for t in fractions)
        or any(b <= a for a, b in zip(fractions, fractions[1:]))
    ):
        raise ValueError(f"information must be increasing fractions in (0, 1] ending at 1, got {list(information)}")
    for name, value in (("reps", reps), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    if allocation not in (None, "simple"):
        raise ValueError(f"allocation must be None (the protocol's method) or 'simple', got {allocation!r}")
    size = scenario.referrals.randomised if n is None else int(n)
    effect = scenario.reoffending.hazard_ratio_treated if hazard_ratio is None else float(hazard_ratio)
    sized = sized_scenario(with_effect(scenario, effect), size)
    root = seed_sequence(rng)
    tasks = [
        {
            "scenario": sized,
            "seed": batch_seed(root, b),
            "replicates": min(chunk_size, reps - lo),
            "information": fractions,
            "key": b,
            "threads": None if workers == 1 else 1,
            "allocation": allocation,
        }
        for b, lo in enumerate(range(0, int(reps), int(chunk_size)))
    ]
    started = time.perf_counter()
    if workers == 1 or len(tasks) == 1:
        results = [_run(task) for task in tasks]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:  # the work releases the GIL (see _runner)
            results = list(pool.map(_run, tasks))
    frames = []
    seconds = {"generation": 0.0, "analysis": 0.0}
    looks = len(fractions)
    for result in results:
        for key in seconds:
            seconds[key] += result["seconds"][key]
        trials = result["statistic"].shape[0]
        first = result["key"] * int(chunk_size)
        final = result["events"][:, -1:].astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = result["events"] / final
        frames.append(
            pd.DataFrame(
                {
                    "replicate": np.repeat(np.arange(first, first + trials), looks),
                    "look": np.tile(np.arange(1, looks + 1), trials),
                    "events": result["events"].ravel(),
                    "n": result["n"].ravel(),
                    "information_fraction": fraction.ravel(),
                    "statistic": result["statistic"].ravel(),
                    "ok": np.repeat(result["ok"], looks),
                }
            )
        )
    seconds["total"] = time.perf_counter() - started
    settings = {
        "scenario": scenario.id,
        "n": size,
        "hazard_ratio": effect,
        "information": fractions,
        "reps": int(reps),
        "seed": seed_label(rng, root),
        "chunk_size": int(chunk_size),
        "allocation": allocation or "protocol",
        "workers": workers,
        "time_scale": "calendar days from random assignment",
        "seconds": seconds,
    }
    return SequentialTrials(pd.concat(frames, ignore_index=True), settings)
