"""Design-based inference on a finished trial: the re-randomisation test.

:func:`rerandomise` recomputes a test statistic under many re-randomisations that
follow the trial's actual design and reports the randomisation p-value. The
participants keep their actual enrolment order (``sequence_number``) and their
actual strata; only the allocation is drawn again, by the protocol's own rules:
the same blocks and block sizes within the same strata, the same biased coin, the
same minimisation factors, weights and random element. Under the sharp null
hypothesis that the allocation changes nobody's outcome, the outcomes are fixed
and the statistic's distribution over the design's allocations is known exactly;
the p-value needs no model of the outcomes (no proportional hazards, no Poisson or
negative binomial law, no large sample).

:func:`design_allocations` returns the re-randomised allocations themselves. Both take
data frames: the registry is read by the command (or the user), never here.

How the allocations are drawn
-----------------------------
The re-randomisations are split into chunks of :data:`CHUNK_SIZE`; chunk ``c`` has
its own seed ``SeedSequence(entropy, spawn_key=(c,))`` and re-randomisation ``j`` of
the chunk the child ``SeedSequence(entropy, spawn_key=(c, j))``. The chunks are
fixed by ``reps`` alone, so the result is the same whatever the number of workers.

* ``minimisation`` and ``biased_coin``: re-randomisation ``j`` of chunk ``c`` is
  **exactly** ``allocate_cohort(protocol, strata, rng=Generator(PCG64(child)),
  draws="generator")``, the engine the registry and the simulator use, with the
  replicate's uniforms drawn from numpy's fast generator (a replicate's draws are not
  secret; the trial's own are keyed, see :mod:`rjtrial.randomise.keyed`): the
  uniforms are derived from the child seed as :func:`~rjtrial.randomise.allocate_cohort`
  derives them (by a compiled copy of numpy's ``SeedSequence`` and ``PCG64``,
  :mod:`rjtrial.rerandomisation._seeds`, held to numpy's objects bit for bit in the
  tests: numpy's objects cost ~20 microseconds of Python a row), and the sequential
  rule is applied to them by a numba-compiled copy of the engine's arithmetic
  (minimisation) or by
  :func:`rjtrial.randomise.vectorised.biased_coin_paths` (vectorised over
  re-randomisations); both are checked draw for draw in the tests, and the compiled
  minimisation also against the registry's own arms from its revealed keyed draws.
* ``simple``: exactly ``allocate_cohort(..., draws="generator")`` as well (one
  ``Generator.choice`` each).
* ``blocks`` and ``stratified_blocks``: permuted blocks drawn by the vectorised
  sampler of :mod:`rjtrial.randomise.vectorised` from the chunk's generator. It has
  the law of :func:`~rjtrial.randomise.permuted_blocks` (block sizes drawn with the
  protocol's weights, each block a uniformly random arrangement; one sequence per
  stratum, referrals taking the next slot of their stratum's sequence in enrolment
  order), not its draws: drawing the engine's Python loop 10,000 times costs 20-35 s
  for 167 referrals, the sampler about half a second.

References: Rosenberger & Lachin (2016), Phipson & Smyth (2010); see :func:`rerandomise`.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

from rjtrial._checks import chi2_sf, norm_sf
from rjtrial.errors import DataError
from rjtrial.protocol import Protocol
from rjtrial.rerandomisation._design import (
    CHUNK_SIZE,
    PARTICIPANTS,
    _check_strata_rows,
    _chunk_arms,
    _chunk_draws,
    _chunks,
    _Design,
    _design,
    _reps,
    _root,
    _workers,
    design_allocations,
)
from rjtrial.rerandomisation._logrank import logrank_rows

__all__ = ["CHUNK_SIZE", "RerandomisationResult", "design_allocations", "rerandomise"]

STATISTICS = ("logrank", "rate", "prevalence", "mean:COLUMN")
FOLLOWUP = "followup"
_TIE = 1e-9  # |T*| >= |T_obs| (1 - _TIE): equal statistics computed in another order still tie


# ----------------------------------------------------------------------------- result
@dataclass(frozen=True)
class RerandomisationResult:
    """The re-randomisation test of one statistic (from :func:`rerandomise`).

    Attributes
    ----------
    statistic : str
        ``"logrank"``, ``"rate"``, ``"prevalence"``, ``"mean:COLUMN"`` or the callable's name.
    description : str
        What the statistic is, in words.
    observed : float
        The statistic under the trial's actual allocation.
    p_value : float
        Two-sided randomisation p-value ``(1 + b) / (1 + reps)``, where ``b`` counts the
        re-randomisations with ``|T*| >= |observed|``.
    mc_std_error : float
        Monte Carlo standard error of ``p_value``: ``sqrt(p (1 - p) / reps)``.
    reps : int
        Number of re-randomisations.
    extreme : int
        ``b``, the re-randomisations at least as extreme as the observed allocation.
    asymptotic_p_value : float or None
        The large-sample p-value of the same comparison (see :func:`rerandomise`); None
        for a callable statistic.
    asymptotic_method : str or None
    null_distribution : numpy.ndarray
        The statistic under each re-randomisation (``reps`` values).
    seed : int or tuple of int
        The entropy of the root ``SeedSequence``: ``rng=seed`` reproduces the result (a
        tuple when the SeedSequence given was made from several integers: pass
        ``rng=numpy.random.SeedSequence(seed)``).
    design : dict
        ``trial_id, method, strata`` (the factors the design balanced on), ``arms``,
        ``ratio``, ``n``, ``randomised_by_arm``.
    """

    statistic: str
    description: str
    observed: float
    p_value: float
    mc_std_error: float
    reps: int
    extreme: int
    asymptotic_p_value: float | None
    asymptotic_method: str | None
    seed: int | tuple[int, ...]
    design: Mapping[str, Any]
    null_distribution: np.ndarray = field(compare=False, repr=False)
    alternative: str = "two-sided"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-ready); the null distribution is summarised by its quantiles."""
        q = np.nanquantile(self.null_distribution, [0.025, 0.5, 0.975]) if self.reps else [math.nan] * 3
        return {
            "statistic": self.statistic,
            "description": self.description,
            "observed": _number(self.observed),
            "p_value": self.p_value,
            "mc_std_error": self.mc_std_error,
            "reps": self.reps,
            "extreme": self.extreme,
            "alternative": self.alternative,
            "asymptotic_p_value": self.asymptotic_p_value,
            "asymptotic_method": self.asymptotic_method,
            "null_quantiles": {"0.025": _number(q[0]), "0.5": _number(q[1]), "0.975": _number(q[2])},
            "seed": str(self.seed),
            "design": dict(self.design),
        }

    def format(self) -> str:
        """A few lines for people."""
        d = self.design
        arms = ", ".join(f"{n} {a}" for a, n in d["randomised_by_arm"].items())
        strata = ", ".join(d["strata"]) or "none"
        if self.asymptotic_p_value is not None:
            asym = f"{self.asymptotic_p_value:.4g} ({self.asymptotic_method})"
        else:
            asym = self.asymptotic_method or "not available for a custom statistic"
        return "\n".join(
            [
                f"re-randomisation test: {d['trial_id']} ({d['n']} randomised: {arms})",
                f"  design        {d['method']}, balanced on: {strata}",
                f"  statistic     {self.statistic}: {self.description}",
                f"  observed      {self.observed:.6g}",
                f"  p-value       {self.p_value:.4g} (two-sided, {self.extreme:,} of {self.reps:,} "
                f"re-randomisations at least as extreme; Monte Carlo SE {self.mc_std_error:.2g})",
                f"  asymptotic p  {asym}",
                f"  seed          {self.seed}",
            ]
        )


def _number(x) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else str(x)


# -------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class _Statistic:
    """A statistic of the allocation (rows of arm indices, in enrolment order)."""

    name: str
    description: str
    arrays: Mapping[str, np.ndarray]
    function: Callable | None = None  # a custom statistic
    to_followup: np.ndarray | None = None  # enrolment position of each follow-up row

    def __call__(self, arms: np.ndarray) -> np.ndarray:
        if self.function is not None:
            out = np.empty(arms.shape[0])
            for r, row in enumerate(arms):
                out[r] = float(self.function(row[self.to_followup].astype(np.int64)))
            return out
        a = self.arrays
        if self.name == "logrank":
            return logrank_rows(arms, a["order"], a["last"], a["n_at_risk"], a["c"], a["score"])
        x = (arms == 1).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.name == "rate":
                treated = np.log(x @ a["count"]) - np.log(x @ a["exposure"])
                control = np.log((1.0 - x) @ a["count"]) - np.log((1.0 - x) @ a["exposure"])
                return treated - control
            # prevalence and mean:COLUMN: difference in means
            n1 = x.sum(axis=1)
            return (x @ a["y"]) / n1 - ((1.0 - x) @ a["y"]) / (x.shape[1] - n1)


def _logrank_arrays(time: np.ndarray, event: np.ndarray) -> dict[str, np.ndarray]:
    """Score and variance ingredients of the two-arm log-rank test, linear in the allocation.

    With the pooled Nelson–Aalen ``H(t) = sum_{t_j <= t} d_j / n_j`` over the distinct
    event times ``t_j``, ``O - E`` for arm 1 is ``sum_i x_i (delta_i - H(t_i))`` (each
    participant contributes ``d_j / n_j`` to E at every event time at which they are at
    risk). The hypergeometric variance needs the number at risk in arm 1 at each ``t_j``:
    a cumulative sum of ``x`` over the participants sorted by decreasing time.
    """
    order = np.argsort(-time, kind="stable")
    event_times, deaths = np.unique(time[event], return_counts=True)
    at_risk = len(time) - np.searchsorted(np.sort(time), event_times, side="left")
    hazard = np.cumsum(deaths / at_risk)
    cumulative = np.concatenate([[0.0], hazard])[np.searchsorted(event_times, time, side="right")]
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.where(at_risk > 1, deaths * (at_risk - deaths) / (at_risk - 1.0), 0.0)
    return {
        "score": event.astype(float) - cumulative,
        "order": order,
        "last": at_risk - 1,  # in `order`, positions 0..at_risk-1 are those still at risk
        "n_at_risk": at_risk.astype(float),
        "c": c,
    }


def _column(
    table: pd.DataFrame, column: str, *, role: str, nonnegative=False, binary=False, logical=False
) -> np.ndarray:
    """A complete numeric column as float (``binary``: 0/1 only; ``logical``: True/False taken as 1/0)."""
    if column not in table.columns:
        raise DataError(
            f"no column {column!r} (needed as {role}); the columns are {', '.join(map(str, table.columns))}",
            table=FOLLOWUP,
            column=column,
        )
    values = table[column]
    if (binary or logical) and values.dtype == bool:
        return values.to_numpy().astype(float)
    if values.dtype == bool or not pd.api.types.is_numeric_dtype(values):
        kind = "coded 0/1 or False/True" if binary else "numeric"
        raise DataError(f"{role} must be {kind}, found dtype {values.dtype}", table=FOLLOWUP, column=column)
    out = values.to_numpy(dtype=float, na_value=np.nan)
    problems = [
        (~np.isfinite(out), f"{role} is missing or not finite"),
        (out < 0 if nonnegative else np.zeros(len(out), bool), f"{role} is negative"),
        (~np.isin(out, (0.0, 1.0)) if binary else np.zeros(len(out), bool), f"{role} must be 0 or 1"),
    ]
    for bad, message in problems:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{message} ({out[i]!r})", table=FOLLOWUP, row=i + 1, column=column)
    return out


def _statistic(statistic, followup: pd.DataFrame, order: np.ndarray, n_arms: int, columns) -> _Statistic:
    """The statistic, its data checked in the follow-up's own rows, then put in enrolment order.

    ``order[p]`` is the follow-up row of the participant enrolled ``p``-th.
    """
    if callable(statistic):
        name = getattr(statistic, "__name__", type(statistic).__name__)
        return _Statistic(
            name, "custom statistic of the allocation", {}, function=statistic, to_followup=np.argsort(order)
        )
    if not isinstance(statistic, str) or (
        statistic not in ("logrank", "rate", "prevalence") and not statistic.startswith("mean:")
    ):
        raise ValueError(f"statistic must be one of {', '.join(STATISTICS)} or a callable, got {statistic!r}")
    if n_arms != 2:
        raise ValueError(
            f"statistic {statistic!r} compares two arms; this trial has {n_arms}: pass a callable statistic"
        )
    if statistic == "logrank":
        time = _column(followup, columns["time"], role="time at risk", nonnegative=True)[order]
        event = _column(followup, columns["event"], role="event", binary=True)[order] == 1.0
        if not event.any():
            raise DataError("no events: the log-rank statistic is undefined", table=FOLLOWUP, column=columns["event"])
        return _Statistic(
            "logrank",
            "standardised log-rank statistic (O - E) / sqrt(V) of the second arm",
            _logrank_arrays(time, event),
        )
    if statistic == "rate":
        count = _column(followup, columns["count"], role="count", nonnegative=True)[order]
        exposure = _column(followup, columns["exposure"], role="exposure", nonnegative=True)[order]
        if count.sum() == 0:
            raise DataError("no reoffences: the rate ratio is undefined", table=FOLLOWUP, column=columns["count"])
        return _Statistic(
            "rate",
            "log rate ratio (second arm / first arm) of count per exposure",
            {"count": count, "exposure": exposure},
        )
    if statistic == "prevalence":
        y = _column(followup, columns["event"], role="event", binary=True)[order]
        return _Statistic("prevalence", "difference in the proportion with an event (second arm - first arm)", {"y": y})
    column = statistic.partition(":")[2]
    if not column:
        raise ValueError("statistic 'mean:COLUMN' needs a column name, e.g. 'mean:reoffences'")
    y = _column(followup, column, role=f"the column of statistic {statistic!r}", logical=True)[order]
    return _Statistic(statistic, f"difference in the mean of {column} (second arm - first arm)", {"y": y})


def _asymptotic(stat: _Statistic, observed: float, arms: np.ndarray):
    """The large-sample p-value of the same comparison, and its name."""
    x = arms == 1
    if stat.function is not None:
        return None, None
    if stat.name == "logrank":
        return float(chi2_sf(observed**2, 1)), "log-rank chi-square, 1 df"
    if stat.name == "rate":
        y, e = stat.arrays["count"], stat.arrays["exposure"]
        variance = 0.0
        for arm in (x, ~x):  # robust (sandwich) variance of each arm's log rate
            rate = y[arm].sum() / e[arm].sum()
            variance += ((y[arm] - rate * e[arm]) ** 2).sum() / y[arm].sum() ** 2
        z = observed / math.sqrt(variance) if variance > 0 else math.nan
        return float(2 * norm_sf(abs(z))), "Wald z, Poisson model with robust (sandwich) variance"
    y = stat.arrays["y"]
    if stat.name == "prevalence":
        p = y.mean()
        se = math.sqrt(p * (1 - p) * (1 / x.sum() + 1 / (~x).sum()))
        z = observed / se if se > 0 else math.nan
        return float(2 * norm_sf(abs(z))), "two-proportion z test (pooled), i.e. Pearson chi-square"
    from scipy.stats import ttest_ind  # scipy.stats is slow to import: only for this statistic

    result = ttest_ind(y[x], y[~x], equal_var=False)
    return float(result.pvalue), "Welch t test"


# ----------------------------------------------------------------------------- matching
def _align(participants: pd.DataFrame, followup: pd.DataFrame, protocol: Protocol, trial_id: str) -> np.ndarray:
    """Position in ``participants`` of each follow-up row; one clear DataError otherwise."""
    if not isinstance(followup, pd.DataFrame):
        raise TypeError(f"followup must be a pandas DataFrame, got {type(followup).__name__}")
    if "id" not in followup.columns:
        raise DataError(
            f"no column 'id'; the columns are {', '.join(map(str, followup.columns))}", table=FOLLOWUP, column="id"
        )
    index = {str(pid): i for i, pid in enumerate(participants["id"])}
    ids = followup["id"]
    seen: dict[str, int] = {}
    position = np.empty(len(followup), dtype=np.int64)
    for row, value in enumerate(ids.tolist(), start=1):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            raise DataError("the participant id is missing", table=FOLLOWUP, row=row, column="id")
        pid = str(value)
        if pid not in index:
            raise DataError(
                f"{pid} is not a randomised participant of trial {trial_id}", table=FOLLOWUP, row=row, column="id"
            )
        if pid in seen:
            raise DataError(
                f"{pid} appears more than once (first at row {seen[pid]})", table=FOLLOWUP, row=row, column="id"
            )
        seen[pid] = row
        position[row - 1] = index[pid]
    if len(seen) < len(index):
        missing = [pid for pid in participants["id"] if str(pid) not in seen]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DataError(
            f"randomised participant {missing[0]}{more} of trial {trial_id} is missing; intention to treat "
            "analyses everyone randomised",
            table=FOLLOWUP,
            column="id",
        )
    if "arm" in followup.columns:
        given = followup["arm"].astype(str).to_numpy()
        actual = participants["arm"].astype(str).to_numpy()[position]
        bad = np.flatnonzero(given != actual)
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"arm {given[i]!r} of {ids.iloc[i]} differs from the arm randomised in trial {trial_id} ({actual[i]!r})",
                table=FOLLOWUP,
                row=i + 1,
                column="arm",
            )
    return position


def _participants(participants: pd.DataFrame, protocol: Protocol) -> pd.DataFrame:
    """The participants in enrolment order, checked against the protocol."""
    missing = [c for c in ("id", "arm", "sequence_number", *protocol.strata) if c not in participants.columns]
    if missing:
        raise DataError(
            f"no column {missing[0]!r}; the registry export has id, arm, sequence_number and the strata",
            table=PARTICIPANTS,
            column=missing[0],
        )
    if len(participants) == 0:
        raise DataError("no randomised participants", table=PARTICIPANTS)
    ordered = participants.sort_values("sequence_number", kind="stable").reset_index(drop=True)
    bad = ~ordered["arm"].isin(protocol.arms).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"arm {ordered['arm'].iloc[i]!r} is not an arm of the protocol ({', '.join(protocol.arms)})",
            table=PARTICIPANTS,
            row=i + 1,
            column="arm",
        )
    if ordered["id"].duplicated().any():
        i = int(np.flatnonzero(ordered["id"].duplicated().to_numpy())[0])
        raise DataError(f"{ordered['id'].iloc[i]} appears more than once", table=PARTICIPANTS, row=i + 1, column="id")
    return ordered


# ------------------------------------------------------------------------------- tests
def _entropy(root: np.random.SeedSequence) -> int | tuple[int, ...]:
    """The root's entropy as plain integers (numpy allows an int or a sequence of them)."""
    entropy = root.entropy
    if isinstance(entropy, (int, np.integer)):
        return int(entropy)
    if entropy is None:  # pragma: no cover - numpy fills in fresh entropy when none is given
        raise ValueError("the root SeedSequence has no entropy")
    return tuple(int(e) for e in entropy)


def _finish_chunk(design: _Design, stat: _Statistic, root, chunk: int, size: int, draws) -> np.ndarray:
    """The statistic of each re-randomisation of a chunk, from its per-row draws."""
    return stat(_chunk_arms(design, root, chunk, size, draws))


def _null_pipelined(design: _Design, stat: _Statistic, root, chunks, workers: int) -> list[np.ndarray]:
    """The chunks' statistics on a pool of threads, in chunk order.

    This thread draws each chunk's per-row part where there is one (simple randomisation's
    ``Generator.choice`` calls: Python, holding the GIL) while the pool's threads turn the
    chunks already drawn into allocations and statistics (compiled and array work, which
    releases it): the two overlap instead of contending for the GIL.
    At most ``2 * workers`` chunks wait, drawn, at once.
    """
    parts: list[np.ndarray] = []
    with ThreadPoolExecutor(max_workers=min(workers, len(chunks))) as pool:
        pending: deque = deque()
        for c, m in chunks:
            draws = _chunk_draws(design, root, c, m)
            pending.append(pool.submit(_finish_chunk, design, stat, root, c, m, draws))
            while len(pending) > 2 * workers:
                parts.append(pending.popleft().result())
        parts.extend(future.result() for future in pending)
    return parts


def _test(
    protocol: Protocol,
    participants: pd.DataFrame,
    followup: pd.DataFrame,
    *,
    statistic: str | Callable[[np.ndarray], float] = "logrank",
    reps: int = 10_000,
    rng,
    workers: int | None = None,
    time: str = "time_at_risk",
    event: str = "event",
    count: str = "reoffences",
    exposure: str = "exposure_days",
    trial_id: str | None = None,
) -> RerandomisationResult:
    """:func:`rerandomise`'s computation."""
    reps = _reps(reps)
    workers = _workers(workers)
    root = _root(rng)
    trial_id = protocol.id if trial_id is None else trial_id
    people = _participants(participants, protocol)
    position = _align(people, followup, protocol, trial_id)
    columns = {"time": time, "event": event, "count": count, "exposure": exposure}
    stat = _statistic(statistic, followup.reset_index(drop=True), np.argsort(position), len(protocol.arms), columns)
    arm_index = {arm: k for k, arm in enumerate(protocol.arms)}
    actual = people["arm"].map(arm_index).to_numpy(dtype=np.int8)
    strata_rows = [{name: str(row[name]) for name in protocol.strata} for row in people.to_dict("records")]
    design = _design(protocol, _check_strata_rows(protocol, strata_rows))

    observed = float(stat(actual[None, :])[0])
    if not math.isfinite(observed) and stat.name != "rate":
        raise DataError(
            f"statistic {stat.name!r} is undefined under the trial's own allocation ({observed})", table=FOLLOWUP
        )
    if math.isnan(observed):
        raise DataError(f"statistic {stat.name!r} is undefined under the trial's own allocation", table=FOLLOWUP)

    chunks = _chunks(reps)
    if workers == 1 or len(chunks) == 1:
        parts = [_finish_chunk(design, stat, root, c, m, _chunk_draws(design, root, c, m)) for c, m in chunks]
    else:
        parts = _null_pipelined(design, stat, root, chunks, workers)
    null = np.concatenate(parts)
    threshold = abs(observed) * (1.0 - _TIE)
    extreme = int(np.count_nonzero(~(np.abs(null) < threshold)))  # NaN counts as extreme (conservative)
    p_value = (1 + extreme) / (1 + reps)
    with np.errstate(divide="ignore", invalid="ignore"):
        asymptotic, method = _asymptotic(stat, observed, actual)
    if asymptotic is not None and not math.isfinite(asymptotic):
        asymptotic, method = None, f"{method}: undefined for these data"
    spec = protocol.randomisation
    balanced_on = (
        list(spec.stratify_by)
        if spec.method == "stratified_blocks"
        else list(spec.factors)
        if spec.method == "minimisation"
        else []
    )
    design_record = {
        "trial_id": trial_id,
        "method": spec.method,
        "strata": balanced_on,
        "arms": list(protocol.arms),
        "ratio": list(protocol.ratio),
        "n": int(len(people)),
        "randomised_by_arm": {a: int((actual == k).sum()) for k, a in enumerate(protocol.arms)},
    }
    if spec.method in ("blocks", "stratified_blocks"):
        design_record["block_sizes"] = list(spec.block_sizes)
    if spec.method in ("minimisation", "biased_coin"):
        design_record["probability"] = spec.probability
    return RerandomisationResult(
        statistic=stat.name,
        description=stat.description,
        observed=observed,
        p_value=p_value,
        mc_std_error=math.sqrt(p_value * (1.0 - p_value) / reps),
        reps=reps,
        extreme=extreme,
        asymptotic_p_value=asymptotic,
        asymptotic_method=method,
        seed=_entropy(root),
        design=design_record,
        null_distribution=null,
    )


def rerandomise(
    protocol: Protocol,
    participants: pd.DataFrame,
    followup: pd.DataFrame,
    *,
    statistic: str | Callable[[np.ndarray], float] = "logrank",
    reps: int = 10_000,
    rng,
    workers: int | None = None,
    time: str = "time_at_risk",
    event: str = "event",
    count: str = "reoffences",
    exposure: str = "exposure_days",
) -> RerandomisationResult:
    """Randomisation test of a finished trial, re-randomising by the trial's own design.

    Parameters
    ----------
    protocol : Protocol
        The trial's protocol (its design is re-drawn).
    participants : pandas.DataFrame
        The randomised participants as the registry exports them
        (:meth:`rjtrial.registry.Registry.export`): ``id, arm, sequence_number`` and one
        column per stratum of the protocol. The statistics never open the registry: the
        command (``rjtrial rerandomise``) or the user reads it and passes these two.
    followup : pandas.DataFrame
        One row per randomised participant (e.g. :func:`rjtrial.followup.build`): every
        participant randomised exactly once, under column ``id`` (intention
        to treat: withdrawn participants included); if it has an ``arm`` column, each arm
        must be the one randomised.
    statistic : {"logrank", "rate", "prevalence", "mean:COLUMN"} or callable
        What to compare (two arms; the second arm against the first, the control):

        * ``"logrank"``: the standardised log-rank statistic ``(O - E) / sqrt(V)`` of the
          second arm, on ``time`` and ``event``;
        * ``"rate"``: the log rate ratio of ``count`` per ``exposure`` (total count over
          total exposure in each arm);
        * ``"prevalence"``: the difference in the proportion with ``event``;
        * ``"mean:COLUMN"``: the difference in the means of a numeric column;
        * a callable: given the arm indices (0 = the first arm of the protocol) of the
          follow-up table's rows, in its row order, returns a number. It is called once per
          re-randomisation (from several threads at once with ``workers > 1``).
    reps : int
        Number of re-randomisations (default 10,000).
    rng : int, numpy.random.SeedSequence or numpy.random.Generator
        Seed of the re-randomisations (required: the result records the seed that
        reproduces it).
    workers : int, optional
        Threads to use (default: one per CPU). The result does not depend on it.
    time, event, count, exposure : str
        Columns of the follow-up table (defaults: those of :func:`rjtrial.followup.build`).

    Returns
    -------
    RerandomisationResult
        ``observed``, ``p_value``, ``mc_std_error``, ``reps``, ``asymptotic_p_value``,
        ``null_distribution``, ``design``; ``to_dict()`` and ``format()``.

    Raises
    ------
    DataError
        The follow-up table does not match the participants (naming the row, column and id),
        or a column is unusable.

    Notes
    -----
    **The test.** Under the sharp null hypothesis that assignment changes no one's
    outcome, each participant's follow-up is the same whatever the allocation, and the
    allocation is random with a law the design fixes. Redrawing the allocation by the
    design (same referrals, same order, same strata, same rules; see the module notes)
    gives the statistic's null distribution, whatever the statistic, the outcome model or
    the sample size (Rosenberger & Lachin 2016, ch. 6). This is what makes the test follow
    the *design*: under blocks, strata or minimisation the allocations are not exchangeable
    and a plain permutation test would use the wrong reference set.

    **p-value.** Two-sided, ``p = (1 + b) / (1 + R)`` with ``b`` the number of the ``R``
    re-randomisations whose ``|T*|`` is at least ``|T_obs|`` (relative tolerance 1e-9,
    so that equal values computed differently tie; an undefined ``T*`` counts as
    extreme). Counting the observed allocation among the draws makes the test exact for a
    random sample of re-randomisations and never gives ``p = 0`` (Phipson & Smyth 2010).
    ``mc_std_error = sqrt(p (1 - p) / R)``: the p-value's Monte Carlo error, not a
    property of the trial.

    **The log-rank statistic.** With the pooled Nelson–Aalen ``H``, ``O - E`` of arm 1 is
    ``sum_i x_i (delta_i - H(t_i))``: linear in the allocation indicator ``x``, so all
    re-randomisations take one matrix product; the hypergeometric variance ``V`` needs the
    number at risk in arm 1 at each event time, a cumulative sum over participants sorted
    by time. Both are recomputed for every re-randomisation, so the statistic is the
    ordinary two-arm log-rank ``Z`` (``Z**2`` is R ``survdiff``'s chi-square). Since the
    outcomes are fixed under the null, any function of the allocation is a valid
    randomisation statistic; the standardised one is used because its observed value and
    its asymptotic p-value are the familiar ones.

    **Asymptotic p-values** shown beside the randomisation p-value, each for the same
    observed statistic: log-rank ``Z**2`` against chi-square(1); for ``"rate"``, the Wald z
    of the Poisson log rate ratio with a robust (sandwich, HC0) variance, valid under
    overdispersion; for ``"prevalence"``, the pooled two-proportion z test (Pearson's
    chi-square without correction); for ``"mean:COLUMN"``, Welch's t test. They assume
    simple randomisation and large samples; the randomisation p-value assumes neither.

    References
    ----------
    Phipson, B. and Smyth, G. K. (2010). Permutation p-values should never be zero.
    *Stat Appl Genet Mol Biol* 9(1), 39. doi:10.2202/1544-6115.1585

    Rosenberger, W. F. and Lachin, J. M. (2016). *Randomization in Clinical Trials*,
    2nd ed. Wiley. doi:10.1002/9781118742112

    Examples
    --------
    >>> from rjtrial.simulate import simulate_trial
    >>> trial = simulate_trial("synthetic/jrc-london-burglary.toml", rng=3, truth=False)
    >>> res = rerandomise(trial.scenario.protocol, trial.participants, trial.followup(), reps=999, rng=1)
    >>> res.reps, res.design["method"], 0 < res.p_value <= 1
    (999, 'stratified_blocks', True)
    """
    return _test(
        protocol,
        participants,
        followup,
        statistic=statistic,
        reps=reps,
        rng=rng,
        workers=workers,
        time=time,
        event=event,
        count=count,
        exposure=exposure,
        trial_id=protocol.id,
    )
