"""Design metrics: how predictable and how balanced a randomisation design is.

Three verbs, each returning a small frozen result:

* :func:`predictability` -- the expected proportion of allocations an enroller who
  knows the earlier allocations guesses correctly (:class:`PredictabilityResult`);
* :func:`imbalance` -- how far the arms drift from the allocation ratio overall, over
  time, within strata and within factor levels (:class:`ImbalanceResult`);
* :func:`design_check` -- both, for one protocol, with a printable and a JSON form
  (:class:`DesignReport`); it backs ``rjtrial design check``.

Values are exact where the design allows (permuted blocks, simple randomisation,
Efron's biased coin) and otherwise simulated with the design's own rules, vectorised
over simulated trials. The vectorised samplers reproduce :mod:`~rjtrial.randomise.engines`
draw for draw (biased coin, minimisation) or in distribution (permuted blocks); the
tests check both.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any, Mapping, Sequence

import numpy as np
from scipy import stats

from rjtrial.protocol import Protocol
from rjtrial.randomise.engines import RNGLike, as_generator
from rjtrial.randomise.schedule import shared_sequence_warning
from rjtrial.randomise.vectorised import simulate_trials

COMPUTATIONS = ("auto", "exact", "simulation")
DEFAULT_CHECK_SIZE = 500
_MAX_BLOCK_STATES = 200_000  # within-block count vectors enumerated exactly
_SIMULATION_BUDGET = 2_000_000  # simulated-trials x referrals x factors for minimisation


# ---------------------------------------------------------------------- results
@dataclass(frozen=True)
class PredictabilityResult:
    """Expected proportion of correct guesses of the next allocation.

    Attributes
    ----------
    correct_guess_probability : float
        Expected proportion of the ``n`` allocations (or, when ``n`` is None, of
        allocations in the long run) that the guesser predicts correctly.
    std_error : float
        Monte Carlo standard error; 0 when ``method == "exact"``.
    method : {"exact", "simulation"}
        How the value was obtained.
    n : int or None
        Trial size (referrals randomised), or None for the long-run value.
    strategy : str
        The guessing strategy, ``"convergence"``.
    n_simulations : int
        Simulated trials behind the estimate (0 when exact).
    note : str
        Anything the reader should know (e.g. that simulations were scaled down).
    """

    correct_guess_probability: float
    std_error: float
    method: str
    n: int | None
    strategy: str = "convergence"
    n_simulations: int = 0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable plain data."""
        return asdict(self)


@dataclass(frozen=True)
class ImbalanceResult:
    """Imbalance between arms in simulated trials of ``n`` referrals.

    Imbalance is ``sum_k |n_k - m r_k / sum(r)|`` over the ``m`` referrals counted
    (see :func:`imbalance`); for two arms 1:1 it is ``|n_1 - n_0|``.

    Attributes
    ----------
    n, n_simulations : int
        Referrals per simulated trial, and simulated trials.
    expected_final, std_error_final : float
        Mean overall imbalance after the ``n``-th referral, and its Monte Carlo SE.
    final_quantile_95 : float
        95th percentile of the final overall imbalance.
    expected_max, std_error_max : float
        Mean of the largest overall imbalance reached at any time, and its SE.
    worst_case : float or None
        Largest overall imbalance possible at any time up to ``n``, when known exactly.
    expected_max_stratum : float or None
        Stratified blocks: mean of the largest within-stratum imbalance over strata
        and time. None for other methods.
    worst_case_stratum : float or None
        Stratified blocks: largest within-stratum imbalance possible.
    expected_max_factor_level : float or None
        Mean over trials of the largest final imbalance among the referrals sharing
        one level of one factor (marginal balance). None when there are no strata.
    factor_level : dict of str to float
        Mean final imbalance within each ``"factor=level"``.
    note : str
        Anything the reader should know.
    """

    n: int
    n_simulations: int
    expected_final: float
    std_error_final: float
    final_quantile_95: float
    expected_max: float
    std_error_max: float
    worst_case: float | None
    expected_max_stratum: float | None
    worst_case_stratum: float | None
    expected_max_factor_level: float | None
    factor_level: Mapping[str, float] = field(default_factory=dict)
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-serialisable plain data."""
        out = asdict(self)
        out["factor_level"] = dict(self.factor_level)
        return out


@dataclass(frozen=True)
class DesignReport:
    """Predictability and imbalance of one protocol's design (``rjtrial design check``).

    Attributes
    ----------
    protocol_id, method : str
        Trial id and randomisation method.
    arms : tuple of str
    ratio : tuple of int
    n_sequences : int
        Allocation sequences sealed (strata for stratified blocks, else 1).
    n : int
        Trial size studied.
    predictability : PredictabilityResult
        Over the first ``n`` referrals.
    long_run_predictability : PredictabilityResult or None
        Long-run value, when it is known exactly.
    imbalance : ImbalanceResult
    warnings : tuple of str
        Concerns about the design, e.g. one sequence shared by several sites
        (:func:`shared_sequence_warning`).
    """

    protocol_id: str
    method: str
    arms: tuple[str, ...]
    ratio: tuple[int, ...]
    n_sequences: int
    n: int
    predictability: PredictabilityResult
    long_run_predictability: PredictabilityResult | None
    imbalance: ImbalanceResult
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-serialisable plain data."""
        return {
            "protocol_id": self.protocol_id,
            "method": self.method,
            "arms": list(self.arms),
            "ratio": list(self.ratio),
            "n_sequences": self.n_sequences,
            "n": self.n,
            "predictability": self.predictability.to_dict(),
            "long_run_predictability": (
                None if self.long_run_predictability is None else self.long_run_predictability.to_dict()
            ),
            "imbalance": self.imbalance.to_dict(),
            "warnings": list(self.warnings),
        }

    def format(self) -> str:
        """A human-readable multi-line summary."""
        pred, imb = self.predictability, self.imbalance
        ratio = ":".join(map(str, self.ratio))
        lines = [
            f"Design check: {self.protocol_id} ({self.method}, {self.n_sequences} sequence"
            f"{'s' if self.n_sequences != 1 else ''})",
            f"Arms: {', '.join(self.arms)} (ratio {ratio}); trial size studied n = {self.n}",
            "",
            "Predictability (convergence guessing: guess the arm furthest behind its share)",
            f"  first {self.n} referrals: {_describe(pred)}",
        ]
        if self.long_run_predictability is not None:
            lines.append(f"  {'long run:':<{len(str(self.n)) + 17}}{_describe(self.long_run_predictability)}")
        chance = 1.0 / len(self.arms)
        lines += [
            f"  ({chance:.3g} = no better than chance, 1 = every allocation foreseeable)",
            "",
            f"Imbalance sum_k |n_k - n r_k/sum(r)| (|n_1 - n_0| for 1:1), {imb.n_simulations} simulated trials",
            f"  at the end:        mean {imb.expected_final:.2f} (SE {imb.std_error_final:.2f}), "
            f"95th percentile {imb.final_quantile_95:.2f}",
            f"  largest over time: mean {imb.expected_max:.2f} (SE {imb.std_error_max:.2f})",
            "  worst case possible: " + ("not known exactly" if imb.worst_case is None else f"{imb.worst_case:.4g}"),
        ]
        if imb.expected_max_stratum is not None:
            lines.append(
                f"  within a stratum, largest over strata and time: mean {imb.expected_max_stratum:.2f}, "
                f"worst case {imb.worst_case_stratum:.4g}"
            )
        if imb.expected_max_factor_level is not None:
            lines.append(f"  within a factor level at the end, largest: mean {imb.expected_max_factor_level:.2f}")
            lines += [f"    {name}: mean {value:.2f}" for name, value in imb.factor_level.items()]
        notes = [x for x in (pred.note, imb.note) if x]
        if notes:
            lines += ["", *(f"Note: {x}" for x in dict.fromkeys(notes))]
        if self.warnings:
            lines += ["", *(f"Warning: {x}" for x in self.warnings)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


def _describe(result: PredictabilityResult) -> str:
    if result.method == "exact":
        return f"{result.correct_guess_probability:.4f} (exact)"
    return (
        f"{result.correct_guess_probability:.4f} (SE {result.std_error:.4f}, {result.n_simulations} simulated trials)"
    )


# ------------------------------------------------------------------ public verbs
def predictability(
    protocol: Protocol,
    *,
    n: int | None = None,
    n_simulations: int = 2000,
    rng: RNGLike = None,
    strata_probabilities: Mapping[str, Sequence[float]] | None = None,
    computation: str = "auto",
) -> PredictabilityResult:
    """Expected proportion of correct guesses by an enroller using the convergence strategy.

    Parameters
    ----------
    protocol : Protocol
        The design.
    n : int, optional
        Trial size (referrals randomised). None asks for the long-run value, which is
        known for permuted blocks, simple randomisation (equal ratios, or two arms)
        and Efron's biased coin with 1:1 allocation.
    n_simulations : int, default 2000
        Simulated trials when the value is simulated.
    rng : int or numpy.random.Generator, optional
        Source of randomness for simulations, resolved by ``numpy.random.default_rng``.
    strata_probabilities : dict of str to sequence of float, optional
        For each factor in ``[strata]``, the relative frequency of each level (in the
        protocol's order); factors left out have equally likely levels. Factors are
        drawn independently for each referral.
    computation : {"auto", "exact", "simulation"}
        ``"auto"`` is exact where possible and simulated otherwise.

    Returns
    -------
    PredictabilityResult
        ``correct_guess_probability``, ``std_error``, ``method``, ``n``,
        ``strategy``, ``n_simulations``, ``note``.

    Notes
    -----
    Before each allocation the guesser, who knows every earlier allocation in the
    sequence the referral draws from (its stratum, for stratified blocks), guesses
    the arm with the smallest ``n_k / r_k``, choosing at random among ties: the
    convergence strategy, optimal for 1:1 permuted blocks (Blackwell & Hodges 1957).
    Against minimisation this guesser ignores covariates; one who knows them and the
    rule can do better (up to the rule's ``probability``).

    Exact values: for permuted blocks each completed block is back in ratio, so the
    guesses within a block depend on the within-block counts alone, whose
    distribution at position ``j`` is multivariate hypergeometric. Enumerating them
    in rational arithmetic gives the expected correct guesses ``G_s`` in a block of
    size ``s``; the long-run proportion is ``E[G_S] / E[S]`` (renewal-reward) and the
    finite-``n`` value follows from the renewal probabilities of a block starting at
    each position (and, for strata, the binomial number of referrals per stratum).
    1:1 blocks of 2 give 3/4, of 4 give 17/24. With Efron's coin the guesser is right
    with probability ``p`` while ``D = n_0 r_1 - n_1 r_0`` is non-zero and 1/2 when it
    is zero; propagating the distribution of ``D`` gives finite ``n``, and for 1:1 the
    stationary law of ``|D|`` gives ``P(D = 0) = (2p - 1) / (2p)`` in the long run
    (Efron 1971). Simple randomisation gives ``1/K`` for ``K`` equal arms.

    References
    ----------
    Blackwell D, Hodges JL (1957). Design for the control of selection bias.
    Ann Math Stat 28:449-460. doi:10.1214/aoms/1177706973
    Efron B (1971). Forcing a sequential experiment to be balanced.
    Biometrika 58:403-417. doi:10.1093/biomet/58.3.403
    Pocock SJ, Simon R (1975). Sequential treatment assignment with balancing for
    prognostic factors in the controlled clinical trial. Biometrics 31:103-115.
    doi:10.2307/2529712

    Examples
    --------
    >>> from rjtrial.protocol import Protocol
    >>> p = Protocol.from_dict({"trial": {"id": "t", "name": "T", "arms": ["a", "b"]},
    ...     "randomisation": {"method": "blocks", "block_sizes": [4]}})
    >>> predictability(p).correct_guess_probability  # 17/24
    0.7083333333333334
    """
    n = _check_size(n, allow_none=True)
    n_simulations = _check_simulations(n_simulations)
    if computation not in COMPUTATIONS:
        raise ValueError(f"computation must be one of {', '.join(COMPUTATIONS)}; got {computation!r}")
    probabilities = _level_probabilities(protocol, strata_probabilities)
    if computation != "simulation":
        value = _exact_predictability(protocol, n, probabilities)
        if value is not None:
            return PredictabilityResult(float(value), 0.0, "exact", n)
        if computation == "exact":
            raise ValueError(
                f"no exact predictability for method {protocol.randomisation.method!r} with ratio "
                f"{list(protocol.ratio)} and n={n}; use computation='auto' or 'simulation'"
            )
    if n is None:
        raise ValueError(
            f"the long-run predictability of {protocol.randomisation.method!r} with ratio "
            f"{list(protocol.ratio)} is not known exactly; give the trial size n"
        )
    sim = _simulate(protocol, n, n_simulations, as_generator(rng), probabilities)
    return sim.predictability()


def correct_guess_probability(protocol: Protocol, **kwargs: Any) -> float:
    """Shorthand for ``predictability(protocol, **kwargs).correct_guess_probability``."""
    return predictability(protocol, **kwargs).correct_guess_probability


def imbalance(
    protocol: Protocol,
    *,
    n: int,
    n_simulations: int = 2000,
    rng: RNGLike = None,
    strata_probabilities: Mapping[str, Sequence[float]] | None = None,
) -> ImbalanceResult:
    """Imbalance between arms in simulated trials of ``n`` referrals.

    Parameters
    ----------
    protocol : Protocol
        The design.
    n : int
        Referrals randomised in each simulated trial.
    n_simulations : int, default 2000
        Simulated trials; reduced automatically for large minimisation studies (the
        result's ``n_simulations`` and ``note`` say so).
    rng : int or numpy.random.Generator, optional
        Resolved by ``numpy.random.default_rng``.
    strata_probabilities : dict of str to sequence of float, optional
        Relative frequency of each level of each factor (see :func:`predictability`).

    Returns
    -------
    ImbalanceResult
        ``n, n_simulations, expected_final, std_error_final, final_quantile_95,
        expected_max, std_error_max, worst_case, expected_max_stratum,
        worst_case_stratum, expected_max_factor_level, factor_level, note``.

    Notes
    -----
    For counts ``n_1 .. n_K`` of ``m`` referrals and ratio ``r`` the imbalance is

    .. math:: D = \\sum_k |n_k - m r_k / \\textstyle\\sum_j r_j|,

    the L1 distance, in participants, from the counts the ratio asks for. For two
    arms ``D = 2 |n_0 r_1 - n_1 r_0| / (r_0 + r_1)``, which is ``|n_1 - n_0|`` for 1:1.
    It is computed overall, within each stratum's sequence and within each level of
    each factor (all referrals with, say, ``site=london``), the marginal balance that
    minimisation targets (Pocock & Simon 1975).

    Trials are simulated with the protocol's rules: strata drawn independently per
    referral, then allocated as :func:`~rjtrial.randomise.schedule.allocate_cohort`
    does, vectorised over trials (the samplers reproduce the engines; see the module
    notes). Worst cases are exact: for permuted blocks the largest ``D`` over
    within-block positions and feasible counts; for designs in which every sequence
    is possible (simple, biased coin or minimisation with ``probability < 1``),
    ``2 n (1 - min(r) / sum(r))``; for the biased coin, the largest reachable ``|D|``.

    References
    ----------
    Pocock SJ, Simon R (1975). Sequential treatment assignment with balancing for
    prognostic factors in the controlled clinical trial. Biometrics 31:103-115.
    doi:10.2307/2529712

    Examples
    --------
    >>> from rjtrial.protocol import Protocol
    >>> p = Protocol.from_dict({"trial": {"id": "t", "name": "T", "arms": ["a", "b"]},
    ...     "randomisation": {"method": "blocks", "block_sizes": [2, 4]}})
    >>> result = imbalance(p, n=40, n_simulations=200, rng=1)
    >>> result.worst_case  # half the largest block
    2.0
    >>> result.expected_max <= result.worst_case
    True
    """
    n = _check_size(n, allow_none=False)
    n_simulations = _check_simulations(n_simulations)
    probabilities = _level_probabilities(protocol, strata_probabilities)
    sim = _simulate(protocol, n, n_simulations, as_generator(rng), probabilities)
    return sim.imbalance()


def design_check(
    protocol: Protocol,
    *,
    n: int | None = None,
    n_simulations: int = 2000,
    rng: RNGLike = None,
    strata_probabilities: Mapping[str, Sequence[float]] | None = None,
    site_stratum: str = "site",
) -> DesignReport:
    """Predictability and imbalance of a protocol's design, for choosing between designs.

    Parameters
    ----------
    protocol : Protocol
        The design.
    n : int, optional
        Trial size to study; default ``min(randomisation.capacity, 500)``.
    n_simulations : int, default 2000
        Simulated trials (see :func:`imbalance`).
    rng : int or numpy.random.Generator, optional
        Resolved by ``numpy.random.default_rng``; a seed makes the report reproducible.
    strata_probabilities : dict of str to sequence of float, optional
        Relative frequency of each level of each factor; equal by default.
    site_stratum : str, default "site"
        The stratum whose levels are sites (for the shared-sequence warning).

    Returns
    -------
    DesignReport
        ``protocol_id, method, arms, ratio, n_sequences, n, predictability,
        long_run_predictability, imbalance, warnings``, with ``to_dict()`` for JSON
        and ``format()`` for reading.

    Notes
    -----
    Predictability is exact where :func:`predictability` can compute it, else
    simulated; the long-run value is given when it is known exactly. One set of
    simulated trials serves both the simulated predictability and :func:`imbalance`.

    Examples
    --------
    >>> from rjtrial.protocol import Protocol
    >>> p = Protocol.from_toml("synthetic/protocols/canberra-youth-violence.toml")
    >>> report = design_check(p, n_simulations=200, rng=7)
    >>> report.n, report.predictability.method, round(report.long_run_predictability.correct_guess_probability, 4)
    (300, 'exact', 0.7222)
    >>> print(report.format().splitlines()[0])
    Design check: canberra-youth-violence (blocks, 1 sequence)
    """
    n = min(protocol.randomisation.capacity, DEFAULT_CHECK_SIZE) if n is None else _check_size(n, allow_none=False)
    n_simulations = _check_simulations(n_simulations)
    probabilities = _level_probabilities(protocol, strata_probabilities)
    sim = _simulate(protocol, n, n_simulations, as_generator(rng), probabilities)
    exact = _exact_predictability(protocol, n, probabilities)
    pred = sim.predictability() if exact is None else PredictabilityResult(float(exact), 0.0, "exact", n)
    long_run = _exact_predictability(protocol, None, probabilities)
    return DesignReport(
        protocol_id=protocol.id,
        method=protocol.randomisation.method,
        arms=tuple(protocol.arms),
        ratio=tuple(protocol.ratio),
        n_sequences=len(protocol.sequence_keys()),
        n=n,
        predictability=pred,
        long_run_predictability=None if long_run is None else PredictabilityResult(float(long_run), 0.0, "exact", None),
        imbalance=sim.imbalance(),
        warnings=tuple(w for w in [shared_sequence_warning(protocol, site_stratum=site_stratum)] if w),
    )


# ------------------------------------------------------------------- validation
def _check_size(n, *, allow_none):
    if n is None and allow_none:
        return None
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer (the trial size), got {n!r}")
    return int(n)


def _check_simulations(n_simulations):
    if not isinstance(n_simulations, (int, np.integer)) or isinstance(n_simulations, bool) or n_simulations < 2:
        raise ValueError(f"n_simulations must be an integer of at least 2, got {n_simulations!r}")
    return int(n_simulations)


def _level_probabilities(protocol, given) -> dict[str, np.ndarray]:
    given = dict(given or {})
    unknown = [f for f in given if f not in protocol.strata]
    if unknown:
        raise ValueError(
            f"strata_probabilities: {unknown} are not factors of the protocol "
            f"(factors: {', '.join(protocol.strata) or 'none'})"
        )
    out = {}
    for name, levels in protocol.strata.items():
        if name not in given:
            out[name] = np.full(len(levels), 1.0 / len(levels))
            continue
        p = np.asarray(given[name], dtype=float)
        if p.shape != (len(levels),) or not np.isfinite(p).all() or (p < 0).any() or p.sum() <= 0:
            raise ValueError(
                f"strata_probabilities[{name!r}]: give {len(levels)} non-negative numbers, one per level "
                f"({', '.join(levels)}), not all zero; got {given[name]!r}"
            )
        out[name] = p / p.sum()
    return out


# ------------------------------------------------------------- exact predictability
def _exact_predictability(protocol, n, probabilities) -> float | Fraction | None:
    spec, ratio = protocol.randomisation, tuple(protocol.ratio)
    k = len(ratio)
    if spec.method == "simple":
        if len(set(ratio)) == 1:
            return Fraction(1, k)
        if k == 2:
            return Fraction(1, 2) if n is None else _simple_two_arm(ratio, n)
        return None
    if spec.method == "biased_coin":
        if n is None:
            if ratio[0] != ratio[1]:
                return None
            p = spec.favoured_probability
            stay = (2 * p - 1) / (2 * p) if p > 0.5 else 0.0  # stationary P(D = 0)
            return stay / 2 + (1 - stay) * p
        return _biased_coin_exact(ratio, spec.favoured_probability, n)
    if spec.method in ("blocks", "stratified_blocks"):
        gains = {}
        for s in spec.block_sizes:
            g = _block_gains(ratio, s)
            if g is None:
                return None
            gains[s] = g
        weights = [Fraction(w) for w in spec.block_weights]
        if n is None:
            total = sum(w * sum(gains[s]) for s, w in zip(spec.block_sizes, weights))
            return total / sum(w * s for s, w in zip(spec.block_sizes, weights))
        cumulative = _block_cumulative_gain(spec.block_sizes, spec.block_weights, gains, n)
        if spec.method == "blocks":
            return cumulative[n] / n
        counts = np.arange(n + 1)
        expected = sum(
            float(stats.binom.pmf(counts, n, pi) @ cumulative)
            for pi in _sequence_probabilities(protocol, probabilities)
        )
        return expected / n
    return None


def _block_gains(ratio, size) -> list[Fraction] | None:
    """Expected correct guesses at each position of one block of ``size`` (exact)."""
    unit = sum(ratio)
    caps = [r * (size // unit) for r in ratio]
    if math.prod(c + 1 for c in caps) > _MAX_BLOCK_STATES:
        return None
    scale = [math.lcm(*ratio) // r for r in ratio]  # c_k * scale_k orders c_k / r_k in integers
    gains = [Fraction(0)] * size
    for c in itertools.product(*(range(cap + 1) for cap in caps)):
        j = sum(c)
        if j == size:
            continue
        keys = [ck * sk for ck, sk in zip(c, scale)]
        behind = [i for i, key in enumerate(keys) if key == min(keys)]
        ways = math.prod(math.comb(cap, ck) for cap, ck in zip(caps, c))
        right = sum(caps[i] - c[i] for i in behind)
        gains[j] += Fraction(ways, math.comb(size, j)) * Fraction(right, len(behind) * (size - j))
    return gains


def _block_cumulative_gain(sizes, weights, gains, n) -> np.ndarray:
    """``F[m]``: expected correct guesses among the first ``m`` allocations of a sequence."""
    start = np.zeros(n)  # P(a block starts at position t): the renewal sequence
    start[0] = 1.0
    for t in range(1, n):
        start[t] = sum(w * start[t - s] for s, w in zip(sizes, weights) if t >= s)
    per_position = np.zeros(n)
    for s, w in zip(sizes, weights):
        per_position += w * np.convolve(start, np.array([float(g) for g in gains[s]]))[:n]
    return np.concatenate([[0.0], np.cumsum(per_position)])


def _simple_two_arm(ratio, n) -> float:
    r0, r1 = ratio
    share0 = r0 / (r0 + r1)
    total = 0.0
    for t in range(n):
        n0 = np.arange(t + 1)
        d = n0 * r1 - (t - n0) * r0
        right = np.where(d > 0, 1 - share0, np.where(d < 0, share0, 0.5))  # guess the arm behind
        total += float(stats.binom.pmf(n0, t, share0) @ right)
    return total / n


def _biased_coin_exact(ratio, p, n) -> float:
    """Exact correct-guess proportion over ``n`` allocations of Efron's coin."""
    r0, r1 = ratio
    share0 = r0 / (r0 + r1)
    offset = r0 * n  # index of D = 0; D stays within [-r0 n, r1 n]
    dist = np.zeros((r0 + r1) * n + 1)
    dist[offset] = 1.0
    total = 0.0
    for _ in range(n):
        at_zero = dist[offset]
        total += 0.5 * at_zero + p * (1.0 - at_zero)  # guess the arm behind; a fair guess at D = 0
        dist = _coin_step(dist, offset, r0, r1, (share0, 1.0 - share0), (p, 1.0 - p))
    return total / n


def _deterministic_coin_worst(ratio, n) -> int:
    """Largest |D| reachable in ``n`` allocations of Efron's coin with ``p = 1``."""
    r0, r1 = ratio
    states, largest = {0}, 0
    for _ in range(n):  # at D = 0 either arm; otherwise the arm behind, surely
        states = {d for x in states for d in ((x + r1, x - r0) if x == 0 else (x - r0 if x > 0 else x + r1,))}
        largest = max(largest, max(abs(d) for d in states))
    return largest


def _coin_step(dist, offset, r0, r1, shares, coin):
    """Distribution of ``D = n_0 r_1 - n_1 r_0`` (at index D + offset) after one more allocation.

    ``shares`` are the arms' probabilities at ``D = 0``; ``coin`` is (probability of
    the arm behind, of the arm ahead) otherwise. Arm 0 moves D by +r1, arm 1 by -r0.
    """
    favoured, other = coin
    to_arm0, to_arm1 = np.zeros_like(dist), np.zeros_like(dist)
    to_arm0[offset], to_arm1[offset] = dist[offset] * shares[0], dist[offset] * shares[1]
    ahead, behind = slice(offset + 1, None), slice(None, offset)  # D > 0: arm 0 ahead
    to_arm1[ahead], to_arm0[ahead] = dist[ahead] * favoured, dist[ahead] * other
    to_arm0[behind], to_arm1[behind] = dist[behind] * favoured, dist[behind] * other
    new = np.zeros_like(dist)
    new[r1:] += to_arm0[:-r1]
    new[:-r0] += to_arm1[r0:]
    return new


def _block_worst(ratio, sizes, n) -> float | None:
    """Largest imbalance possible within one sequence of permuted blocks, up to ``n`` allocations."""
    unit = sum(ratio)
    worst = Fraction(0)
    for size in sizes:
        caps = [r * (size // unit) for r in ratio]
        if math.prod(c + 1 for c in caps) > _MAX_BLOCK_STATES:
            return None
        for c in itertools.product(*(range(cap + 1) for cap in caps)):
            j = sum(c)
            if 0 < j <= n:
                worst = max(
                    worst, sum((abs(Fraction(ck) - Fraction(j * r, unit)) for ck, r in zip(c, ratio)), Fraction(0))
                )
    return float(worst)


def _sequence_probabilities(protocol, probabilities) -> list[float]:
    """Probability that a referral draws from each sequence, in ``sequence_keys()`` order."""
    spec = protocol.randomisation
    if spec.method != "stratified_blocks":
        return [1.0]
    out = [1.0]
    for name in spec.stratify_by:
        out = [a * b for a in out for b in probabilities[name]]
    return out


# -------------------------------------------------------------------- simulation
class _Trials:
    """Simulated trials: arms, sequence and factor levels of every referral, summarised."""

    def __init__(self, protocol, arms, sequence, levels, note):
        self.protocol, self.arms, self.sequence, self.levels, self.note = protocol, arms, sequence, levels, note
        self.n_simulations, self.n = arms.shape

    def predictability(self) -> PredictabilityResult:
        ratio = np.asarray(self.protocol.ratio)
        scale = math.lcm(*ratio.tolist()) // ratio  # compares n_k / r_k in integers
        rows = np.arange(self.n_simulations)
        counts = np.zeros((self.n_simulations, int(self.sequence.max()) + 1, ratio.size), dtype=np.int64)
        right = np.zeros(self.n_simulations)
        for t in range(self.n):
            seq, arm = self.sequence[:, t], self.arms[:, t]
            keys = counts[rows, seq] * scale
            behind = keys == keys.min(axis=1, keepdims=True)
            right += behind[rows, arm] / behind.sum(axis=1)  # a random guess among ties, averaged
            counts[rows, seq, arm] += 1
        proportion = right / self.n
        return PredictabilityResult(
            correct_guess_probability=float(proportion.mean()),
            std_error=float(proportion.std(ddof=1) / math.sqrt(self.n_simulations)),
            method="simulation",
            n=self.n,
            n_simulations=self.n_simulations,
            note=self.note,
        )

    def imbalance(self) -> ImbalanceResult:
        protocol, spec = self.protocol, self.protocol.randomisation
        ratio = np.asarray(protocol.ratio, dtype=float)
        share = ratio / ratio.sum()
        rows, k = np.arange(self.n_simulations), ratio.size
        stratified = spec.method == "stratified_blocks"
        overall = np.zeros((self.n_simulations, k))
        within = np.zeros((self.n_simulations, int(self.sequence.max()) + 1, k))
        largest = np.zeros(self.n_simulations)
        largest_stratum = np.zeros(self.n_simulations)
        for t in range(self.n):
            arm = self.arms[:, t]
            overall[rows, arm] += 1
            largest = np.maximum(largest, np.abs(overall - (t + 1) * share).sum(axis=1))
            if stratified:
                seq = self.sequence[:, t]
                within[rows, seq, arm] += 1
                c = within[rows, seq]
                largest_stratum = np.maximum(largest_stratum, _l1(c, share))
        final = np.abs(overall - self.n * share).sum(axis=1)

        factor_level, level_imbalances = {}, []
        for f, (name, names) in enumerate(protocol.strata.items()):
            size = len(names) * k
            flat = (rows[:, None] * size + self.levels[:, :, f] * k + self.arms).ravel()
            counts = np.bincount(flat, minlength=self.n_simulations * size).reshape(self.n_simulations, len(names), k)
            d = _l1(counts, share)
            level_imbalances.append(d)
            factor_level.update({f"{name}={level}": float(v) for level, v in zip(names, d.mean(axis=0))})
        max_level = np.concatenate(level_imbalances, axis=1).max(axis=1) if level_imbalances else None

        worst_stratum = _block_worst(protocol.ratio, spec.block_sizes, self.n) if stratified else None
        root = math.sqrt(self.n_simulations)
        return ImbalanceResult(
            n=self.n,
            n_simulations=self.n_simulations,
            expected_final=float(final.mean()),
            std_error_final=float(final.std(ddof=1) / root),
            final_quantile_95=float(np.quantile(final, 0.95)),
            expected_max=float(largest.mean()),
            std_error_max=float(largest.std(ddof=1) / root),
            worst_case=_worst_case(protocol, self.n),
            expected_max_stratum=float(largest_stratum.mean()) if stratified else None,
            worst_case_stratum=worst_stratum,
            expected_max_factor_level=None if max_level is None else float(max_level.mean()),
            factor_level=factor_level,
            note=self.note,
        )


def _l1(counts, share):
    """Imbalance of count vectors (last axis: arms) from the ratio shares of their totals."""
    return np.abs(counts - counts.sum(axis=-1, keepdims=True) * share).sum(axis=-1)


def _worst_case(protocol, n) -> float | None:
    spec, ratio = protocol.randomisation, protocol.ratio
    every_sequence_possible = 2.0 * n * (1.0 - min(ratio) / sum(ratio))
    if spec.method == "simple":
        return every_sequence_possible
    if spec.method in ("biased_coin", "minimisation") and spec.favoured_probability < 1:
        return every_sequence_possible
    if spec.method == "biased_coin":  # D = n_0 r_1 - n_1 r_0 and the imbalance is 2 |D| / sum(r)
        return 2.0 * _deterministic_coin_worst(tuple(ratio), n) / sum(ratio)
    if spec.method == "blocks":
        return _block_worst(ratio, spec.block_sizes, n)
    return None  # stratified blocks: bounded within strata, see worst_case_stratum


def _simulate(protocol, n, n_simulations, gen, probabilities) -> _Trials:
    spec = protocol.randomisation
    note = ""
    if spec.method == "minimisation":
        work = n * max(1, len(spec.factors))
        reduced = max(100, _SIMULATION_BUDGET // work)
        if reduced < n_simulations:
            note = (
                f"minimisation is simulated referral by referral; {reduced} simulated trials "
                f"instead of the {n_simulations} asked for"
            )
            n_simulations = reduced
    arms, sequence, levels = simulate_trials(protocol, n, n_simulations, gen, probabilities)
    return _Trials(protocol, arms, sequence, levels, note)
