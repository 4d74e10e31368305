"""Keyed draws (rjtrial/randomise/keyed.py) and the schedule drawn from them.

A trial's secret draws must not be the outputs of a fast generator in order (numpy's
PCG64 state can be recovered from a few hundred outputs, and the future draws then
follow): each is HMAC-SHA-256 under a secret derived from the sealed seed. They must
keep the law the engines need and be regenerated exactly from the seed.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import math

import numpy as np
import pytest
from registry_fixtures import make_protocol
from scipy import stats

from rjtrial.randomise import engines
from rjtrial.randomise.keyed import KeyedGenerator, keyed_uniform, schedule_secret
from rjtrial.randomise.schedule import allocate_cohort, fixed_sequence, make_schedule

SEED = 20260101


def pcg64_streams(seed: int, n: int) -> dict[str, np.ndarray]:
    """The streams anyone could derive from the seed with numpy, without the key."""
    root = np.random.SeedSequence(seed)
    return {
        "default_rng(seed)": np.random.default_rng(seed).random(n),
        "PCG64(SeedSequence(seed))": np.random.Generator(np.random.PCG64(root)).random(n),
        "PCG64(spawned child)": np.random.Generator(np.random.PCG64(root.spawn(1)[0])).random(n),
        "MT19937(seed)": np.random.Generator(np.random.MT19937(seed)).random(n),
    }


def test_a_keyed_uniform_is_the_documented_hmac():
    secret = schedule_secret(SEED)
    assert secret == hashlib.sha256(f"rjtrial-schedule-v2|{SEED}".encode()).digest()
    digest = hmac.digest(secret, b"minimisation|17", "sha256")
    assert keyed_uniform(secret, "minimisation", 17) == (int.from_bytes(digest[:8], "big") >> 11) * 2.0**-53
    gen = KeyedGenerator(secret, "minimisation")
    gen.random(17)
    assert gen.random() == keyed_uniform(secret, "minimisation", 17)


def test_minimisation_draws_are_keyed_not_a_pcg64_stream_of_the_seed():
    protocol = make_protocol("minimisation", capacity=2000)
    draws = np.asarray(make_schedule(protocol, seed=SEED).draws)
    secret = schedule_secret(SEED)
    assert draws.tolist() == [keyed_uniform(secret, "minimisation", i) for i in range(2000)]
    for name, stream in pcg64_streams(SEED, 100_000).items():
        assert not set(draws.tolist()) & set(stream.tolist()), f"a stored draw is an output of {name}"


@pytest.mark.parametrize("method", ["simple", "blocks", "stratified_blocks", "biased_coin"])
def test_fixed_sequences_are_not_the_pcg64_sequences_of_the_seed(method):
    protocol = make_protocol(method, capacity=1000)
    schedule = make_schedule(protocol, seed=SEED)
    children = np.random.SeedSequence(SEED).spawn(len(protocol.sequence_keys()))
    for key, child in zip(protocol.sequence_keys(), children):
        old = fixed_sequence(protocol, 1000, rng=np.random.Generator(np.random.PCG64(child)))
        assert not np.array_equal(schedule.sequences[key], old), key


def test_the_schedule_is_regenerated_from_the_seed_and_depends_on_it():
    protocol = make_protocol("stratified_blocks", capacity=300)
    a, b, c = (make_schedule(protocol, seed=s) for s in (SEED, SEED, SEED + 1))
    assert all(np.array_equal(a.sequences[k], b.sequences[k]) for k in a.sequences)
    assert not all(np.array_equal(a.sequences[k], c.sequences[k]) for k in a.sequences)
    # and the strata's sequences are independent streams
    keys = list(a.sequences)
    assert not np.array_equal(a.sequences[keys[0]], a.sequences[keys[1]])


def test_keyed_uniforms_are_uniform_and_independent():
    u = KeyedGenerator(schedule_secret(1), "x").random(20_000)
    assert stats.kstest(u, "uniform").pvalue > 0.001
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 4 / math.sqrt(u.size)
    assert ((u >= 0) & (u < 1)).all()


def test_a_keyed_permutation_is_uniform_over_arrangements():
    gen = KeyedGenerator(schedule_secret(2), "perm")
    orders = [tuple(gen.permutation(4)) for _ in range(4800)]
    counts = [orders.count(p) for p in itertools.permutations(range(4))]
    assert len(counts) == 24 and min(counts) > 0
    assert stats.chisquare(counts).pvalue > 0.001


@pytest.mark.parametrize("p", [None, [0.2, 0.5, 0.3]])
def test_a_keyed_choice_has_the_probabilities_asked(p):
    gen = KeyedGenerator(schedule_secret(3), "choice")
    picks = gen.choice(np.array([10, 20, 30]), size=9000, p=p)
    counts = [int(np.sum(picks == v)) for v in (10, 20, 30)]
    expected = 9000 * (np.full(3, 1 / 3) if p is None else np.asarray(p))
    assert stats.chisquare(counts, expected).pvalue > 0.001
    assert gen.choice(3) in (0, 1, 2)


def test_permuted_blocks_from_a_keyed_generator_are_balanced_blocks():
    seq = engines.permuted_blocks([1, 2], 600, block_sizes=[3, 6], rng=KeyedGenerator(schedule_secret(4), "blocks"))
    # no prefix drifts further than the largest block allows: 6 // 3 * r0 * r1 = 4
    n0 = np.cumsum(seq == 0)
    n1 = np.cumsum(seq == 1)
    assert np.abs(2 * n0 - n1).max() <= 4
    assert set(np.unique(seq)) == {0, 1}


@pytest.mark.parametrize("method", ["minimisation", "stratified_blocks", "simple", "biased_coin"])
def test_allocate_cohort_keyed_is_the_sealed_schedule_and_generator_is_numpy(method):
    protocol = make_protocol(method, capacity=100)
    strata = [
        {"site": s, "offence": o} for s, o in itertools.product(("north", "south"), ("property", "violence"))
    ] * 10
    keyed = allocate_cohort(protocol, strata, rng=9)
    seed = int(np.random.default_rng(9).integers(0, 2**63))
    schedule = make_schedule(protocol, seed=seed)
    if method == "minimisation":
        expected = [
            int(a)
            for a in engines.minimise(
                np.array(
                    [
                        [("north", "south").index(r["site"]), ("property", "violence").index(r["offence"])]
                        for r in strata
                    ]
                ),
                [2, 2],
                protocol.ratio,
                weights=protocol.randomisation.weights,
                probability=protocol.randomisation.probability,
                uniforms=schedule.draws[: len(strata)],
            )
        ]
    else:
        position: dict[str, int] = {}
        expected = []
        for row in strata:
            key = protocol.sequence_key(row)
            expected.append(int(schedule.sequences[key][position.get(key, 0)]))
            position[key] = position.get(key, 0) + 1
    assert keyed.tolist() == expected
    fast = allocate_cohort(protocol, strata, rng=9, draws="generator")
    assert fast.shape == keyed.shape
    with pytest.raises(ValueError, match="draws must be"):
        allocate_cohort(protocol, strata, rng=9, draws="pcg")


@pytest.mark.parametrize("bad", [-1, 1.5, "7", True])
def test_schedule_secret_needs_a_non_negative_integer_seed(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        schedule_secret(bad)
