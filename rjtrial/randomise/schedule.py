"""The allocation schedule of a trial: every allocation fixed in advance from one seed.

:func:`make_schedule` turns a protocol and a seed into the sequences the registry
seals at initialisation: one arm sequence per sequence key for the fixed methods
(``simple``, ``blocks``, ``stratified_blocks``, ``biased_coin``), or one stream of
uniform draws for ``minimisation``, whose allocations also depend on the strata of
the referrals that arrive. The schedule records seed, method, parameters and package
versions, so that an auditor can regenerate it (STYLE.md §6).

Every draw of a schedule is a keyed draw (:mod:`rjtrial.randomise.keyed`):
HMAC-SHA-256 under a secret derived from the seed, one stream per sequence key
(``sequence|<key>``) or, for minimisation, one value per slot (``minimisation``).
The draws revealed as slots are used are therefore not the outputs of a fast
generator whose state they would give away.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from rjtrial._version import __version__
from rjtrial.protocol import Protocol
from rjtrial.randomise import engines
from rjtrial.randomise.keyed import SCHEME, KeyedGenerator, schedule_secret

#: Labels of the keyed streams (see :mod:`rjtrial.randomise.keyed`).
MINIMISATION_STREAM = "minimisation"


def sequence_stream(sequence_key: str) -> str:
    """The keyed stream label of one fixed sequence."""
    return f"sequence|{sequence_key}"


def new_seed() -> int:
    """A fresh 128-bit seed from the operating system's secure random source."""
    return secrets.randbits(128)


@dataclass(frozen=True)
class Schedule:
    """Allocations fixed in advance.

    Attributes
    ----------
    seed : int
        The seed everything below was generated from.
    sequences : dict of str to numpy.ndarray
        For fixed methods: arm indices for each sequence key, ``capacity`` long.
    draws : numpy.ndarray or None
        For minimisation: one uniform draw per enrolment, ``capacity`` long.
    record : dict
        Seed, method, parameters, arms, ratio and versions (for the audit).
    """

    seed: int
    sequences: Mapping[str, np.ndarray] = field(default_factory=dict)
    draws: np.ndarray | None = None
    record: Mapping[str, Any] = field(default_factory=dict)


def make_schedule(protocol: Protocol, *, seed: int) -> Schedule:
    """Generate the whole allocation schedule of ``protocol`` from ``seed``.

    Each sequence key draws from its own keyed stream ``sequence|<key>``; minimisation
    draws slot ``i``'s uniform as draw ``i`` of the stream ``minimisation`` (see
    :mod:`rjtrial.randomise.keyed`). The same seed gives the same schedule on any
    platform and numpy version.
    """
    spec = protocol.randomisation
    secret = schedule_secret(seed)
    record = {
        "seed": str(seed),
        "method": spec.method,
        "parameters": spec.to_dict(),
        "arms": list(protocol.arms),
        "ratio": list(protocol.ratio),
        "sequence_keys": protocol.sequence_keys(),
        "rjtrial_version": __version__,
        "numpy_version": np.__version__,
        "draws": SCHEME,
    }
    if spec.is_adaptive:
        draws = KeyedGenerator(secret, MINIMISATION_STREAM).random(spec.capacity)
        return Schedule(seed=seed, draws=draws, record=record)
    sequences = {
        key: fixed_sequence(protocol, spec.capacity, rng=KeyedGenerator(secret, sequence_stream(key)))
        for key in protocol.sequence_keys()
    }
    return Schedule(seed=seed, sequences=sequences, record=record)


def fixed_sequence(protocol: Protocol, n: int, *, rng: engines.RNGLike) -> np.ndarray:
    """``n`` allocations of one sequence under the protocol's (non-adaptive) method."""
    spec = protocol.randomisation
    if spec.method == "simple":
        return engines.simple(protocol.ratio, n, rng=rng)
    if spec.method in ("blocks", "stratified_blocks"):
        return engines.permuted_blocks(
            protocol.ratio, n, block_sizes=spec.block_sizes, block_weights=spec.block_weights, rng=rng
        )
    if spec.method == "biased_coin":
        return engines.biased_coin(protocol.ratio, n, probability=spec.favoured_probability, rng=rng)
    raise ValueError(f"method {spec.method!r} has no fixed sequence")


def shared_sequence_warning(protocol: Protocol, *, site_stratum: str = "site") -> str | None:
    """A warning when one allocation sequence serves several sites, else None.

    With one ``blocks`` sequence (or one biased-coin or minimisation history) shared by
    the sites, each allocation's trial-wide position tells a coordinator how far the
    sequence has moved at the other sites: seeing the global sequence numbers, a site
    could place its next referral in the current block and guess its arm well above
    chance. Simple randomisation leaks nothing this way (every allocation is independent).
    """
    spec = protocol.randomisation
    sites = protocol.strata.get(site_stratum, ())
    if len(sites) < 2 or spec.method == "simple":
        return None
    if spec.method == "stratified_blocks" and site_stratum in spec.stratify_by:
        return None
    what = {
        "blocks": "one block sequence",
        "stratified_blocks": "each block sequence",
        "biased_coin": "one biased-coin sequence",
        "minimisation": "one minimisation history",
    }[spec.method]
    remedy = (
        f'stratify the blocks by {site_stratum} (method = "stratified_blocks", stratify_by including "{site_stratum}")'
        if spec.method in ("blocks", "stratified_blocks")
        else f"randomise each {site_stratum} separately"
    )
    return (
        f"{what} is shared by the {len(sites)} sites ({', '.join(sites)}): trial-wide sequence numbers would tell "
        f"a coordinator where the sequence stands, so coordinators must see per-site numbers only (EnrolmentResult.coordinator_dict), "
        f"or {remedy}"
    )


def minimisation_probabilities_for(
    protocol: Protocol,
    history: Sequence[Mapping[str, str]],
    history_arms: Sequence[int],
    strata: Mapping[str, str],
    *,
    multiplicity: Sequence[int] | None = None,
) -> np.ndarray:
    """Minimisation probabilities for a referral with ``strata`` after ``history``.

    ``history`` holds the strata of the referrals already randomised, in order, and
    ``history_arms`` their arms; or, with ``multiplicity``, each distinct (strata, arm)
    once with how many referrals have it (only the counts matter). Used by the registry
    at enrolment and by ``verify``.
    """
    spec = protocol.randomisation
    k = len(protocol.arms)
    counts = []
    for factor in spec.factors:
        index = {level: i for i, level in enumerate(protocol.strata[factor])}
        table = np.zeros((len(index), k), dtype=np.int64)
        weights = multiplicity if multiplicity is not None else [1] * len(history)
        for row, arm, times in zip(history, history_arms, weights):
            table[index[row[factor]], arm] += times
        counts.append(table)
    levels = [protocol.strata[f].index(strata[f]) for f in spec.factors]
    return engines.minimisation_probabilities(
        counts,
        levels,
        protocol.ratio,
        weights=spec.weights,
        probability=spec.favoured_probability,
        imbalance=spec.imbalance,
    )


def allocate_cohort(
    protocol: Protocol, strata: Sequence[Mapping[str, str]], *, rng: engines.SeedLike, draws: str = "keyed"
) -> np.ndarray:
    """Allocate a whole cohort (in arrival order) as the registry would, without a store.

    For design studies and simulation: the same rules as
    :class:`rjtrial.registry.Registry`. One 63-bit schedule seed is drawn from ``rng``.

    Parameters
    ----------
    protocol : Protocol
    strata : sequence of dict
        Each referral's strata, in arrival order.
    rng : int or numpy.random.Generator
    draws : {"keyed", "generator"}
        ``"keyed"`` (default): the schedule a registry created with that seed seals
        (:func:`make_schedule`'s keyed draws), so the arms are the registry's.
        ``"generator"``: the uniforms come straight from numpy's PCG64 seeded with it
        (``SeedSequence(seed)``; fixed methods: one spawned child per sequence key) —
        the same law, much faster, for replicate trials whose draws are not secret
        (re-randomisation tests).

    Returns
    -------
    numpy.ndarray of int
        The arm index of each referral.
    """
    if draws not in ("keyed", "generator"):
        raise ValueError(f"draws must be 'keyed' or 'generator', got {draws!r}")
    seed = int(np.random.default_rng(rng).integers(0, 2**63))
    spec = protocol.randomisation
    n = len(strata)
    secret = schedule_secret(seed) if draws == "keyed" else None
    if spec.is_adaptive:
        index = [{level: i for i, level in enumerate(protocol.strata[f])} for f in spec.factors]
        levels = np.array([[index[j][row[f]] for j, f in enumerate(spec.factors)] for row in strata], dtype=np.int64)
        levels = levels.reshape(n, len(spec.factors))
        if secret is not None:
            uniforms = KeyedGenerator(secret, MINIMISATION_STREAM).random(n)
        else:
            uniforms = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed))).random(n)
        return engines.minimise(
            levels,
            [len(protocol.strata[f]) for f in spec.factors],
            protocol.ratio,
            weights=spec.weights,
            probability=spec.favoured_probability,
            imbalance=spec.imbalance,
            uniforms=uniforms,
        )
    keys = [protocol.sequence_key(row) for row in strata]
    needed: dict[str, int] = {}
    for key in keys:
        needed[key] = needed.get(key, 0) + 1
    streams: dict[str, np.random.Generator | KeyedGenerator]
    if secret is not None:
        streams = {key: KeyedGenerator(secret, sequence_stream(key)) for key in needed}
    else:
        children = dict(
            zip(protocol.sequence_keys(), np.random.SeedSequence(seed).spawn(len(protocol.sequence_keys())))
        )
        streams = {key: np.random.Generator(np.random.PCG64(children[key])) for key in needed}
    sequences = {key: fixed_sequence(protocol, count, rng=streams[key]) for key, count in needed.items()}
    position: dict[str, int] = {}
    out = np.empty(n, dtype=np.int64)
    for i, key in enumerate(keys):
        slot = position.get(key, 0)
        out[i] = sequences[key][slot]
        position[key] = slot + 1
    return out
