"""Allocation engines (rjtrial/randomise/engines.py): balance invariants, rules, seeds."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rjtrial.randomise import engines
from rjtrial.randomise.schedule import allocate_cohort

SETTINGS = settings(max_examples=60, deadline=None)


# ------------------------------------------------------------------ helpers
def is_permuted_block_sequence(seq, ratio, sizes) -> bool:
    """True when ``seq`` is whole blocks of the allowed sizes, each exactly in ratio,
    followed by the start of one more block (counts within that block's quota).

    Found by dynamic programming over where blocks can end, so it knows nothing about
    how the engine chose the sizes.
    """
    r = np.asarray(ratio)
    unit = int(r.sum())
    seq = np.asarray(seq)
    n = seq.size
    ends = [False] * (n + 1)
    ends[0] = True
    prefix = np.zeros((n + 1, r.size), dtype=int)
    if n:
        prefix[1:] = np.cumsum(np.eye(r.size, dtype=int)[seq], axis=0)
    for t in range(n):
        if not ends[t]:
            continue
        for s in sizes:
            if t + s <= n and (prefix[t + s] - prefix[t] == r * (s // unit)).all():
                ends[t + s] = True
    for t in range(n, -1, -1):
        if ends[t]:
            tail = prefix[n] - prefix[t]
            if any(n - t < s and (tail <= r * (s // unit)).all() for s in sizes) or t == n:
                return True
    return False


def deviation_within_bound(seq, ratio, max_size) -> bool:
    """|n_k(t) - t r_k / R| <= max_size r_k (R - r_k) / R^2 for every arm and time.

    Within a block of ``s = m R`` an arm is furthest ahead of its share after its
    ``m r_k`` allocations come first, and furthest behind after all the others do:
    both give ``m r_k (R - r_k) / R``. For 1:1 this is ``max_size / 4`` per arm,
    i.e. ``|n_1 - n_0| <= max_size / 2``. Checked in integers.
    """
    r = np.asarray(ratio)
    unit = int(r.sum())
    counts = np.cumsum(np.eye(r.size, dtype=int)[np.asarray(seq)], axis=0)
    t = np.arange(1, len(seq) + 1)[:, None]
    return bool((np.abs(counts * unit - t * r) * unit <= max_size * r * (unit - r)).all())


ratios = st.lists(st.integers(1, 3), min_size=2, max_size=4).filter(lambda r: math.gcd(*r) == 1)


@st.composite
def block_designs(draw):
    ratio = draw(ratios)
    multiples = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3, unique=True))
    sizes = [m * sum(ratio) for m in multiples]
    weights = draw(st.none() | st.lists(st.floats(0.05, 1.0), min_size=len(sizes), max_size=len(sizes)))
    return ratio, sizes, weights


# ---------------------------------------------------------------- permuted blocks
@SETTINGS
@given(design=block_designs(), n=st.integers(0, 90), seed=st.integers(0, 2**32))
def test_permuted_blocks_are_whole_balanced_blocks_and_stay_within_the_bound(design, n, seed):
    ratio, sizes, weights = design
    seq = engines.permuted_blocks(ratio, n, block_sizes=sizes, block_weights=weights, rng=seed)
    assert seq.shape == (n,)
    assert set(np.unique(seq)) <= set(range(len(ratio)))
    assert is_permuted_block_sequence(seq, ratio, sizes)
    assert deviation_within_bound(seq, ratio, max(sizes))


@SETTINGS
@given(ratio=ratios, multiple=st.integers(1, 3), n_blocks=st.integers(1, 8), seed=st.integers(0, 2**32))
def test_single_block_size_balances_exactly_at_every_block_end(ratio, multiple, n_blocks, seed):
    size = multiple * sum(ratio)
    seq = engines.permuted_blocks(ratio, size * n_blocks, block_sizes=[size], rng=seed)
    for block in seq.reshape(n_blocks, size):
        assert np.bincount(block, minlength=len(ratio)).tolist() == [multiple * r for r in ratio]


def test_block_check_rejects_unbalanced_sequences():
    # the helper must be able to fail, or the property tests above prove nothing
    assert is_permuted_block_sequence([0, 1, 1, 0, 0], [1, 1], [2, 4])
    assert not is_permuted_block_sequence([0, 0, 1, 0, 1, 1], [1, 1], [2])
    assert not is_permuted_block_sequence([0, 0, 0], [1, 1], [2, 4])
    assert not deviation_within_bound([0, 0, 0, 1, 1, 1], [1, 1], 4)


def test_the_block_bound_is_attained():
    # 1:1 blocks of 6: |n_1 - n_0| reaches 3 = max_size / 2 in some sequence
    worst = 0
    for seed in range(200):
        seq = engines.permuted_blocks([1, 1], 6, block_sizes=[6], rng=seed)
        worst = max(worst, int(np.abs(np.cumsum(2 * seq - 1)).max()))
    assert worst == 3


@SETTINGS
@given(n=st.integers(1, 120), seed=st.integers(0, 2**32), sizes=st.sampled_from([[2], [2, 4], [4, 6, 8]]))
def test_stratified_blocks_balance_within_every_stratum(make_protocol, n, seed, sizes):
    protocol = make_protocol("stratified_blocks", (1, 1), block_sizes=sizes)
    gen = np.random.default_rng(seed)
    strata = [{"site": str(gen.choice(["a", "b", "c"])), "sex": str(gen.choice(["f", "m"]))} for _ in range(n)]
    arms = allocate_cohort(protocol, strata, rng=gen)
    keys = np.array([protocol.sequence_key(row) for row in strata])
    for key in set(keys):
        within = arms[keys == key]
        assert is_permuted_block_sequence(within, (1, 1), sizes)
        assert np.abs(np.cumsum(2 * within - 1)).max() <= max(sizes) // 2


# --------------------------------------------------------------------- minimisation
@SETTINGS
@given(n_levels=st.integers(2, 5), n=st.integers(1, 150), seed=st.integers(0, 2**32))
def test_deterministic_minimisation_on_one_factor_keeps_every_level_within_one(n_levels, n, seed):
    gen = np.random.default_rng(seed)
    levels = gen.integers(0, n_levels, size=(n, 1))
    arms = engines.minimise(levels, [n_levels], [1, 1], probability=1.0, rng=gen)
    for level in range(n_levels):
        within = arms[levels[:, 0] == level]
        if within.size:
            assert np.abs(np.cumsum(2 * within - 1)).max() <= 1


def _max_marginal_imbalance(levels, arms, n_levels):
    return max(
        abs(int(np.sum(arms[levels[:, f] == level] == 1)) - int(np.sum(arms[levels[:, f] == level] == 0)))
        for f, m in enumerate(n_levels)
        for level in range(m)
    )


def test_minimisation_balances_factor_levels_far_better_than_simple_randomisation():
    # 40 fixed-seed trials of 200 referrals, two factors of three levels (~67 per level).
    # Simple randomisation leaves E|n_1 - n_0| ~ sqrt(2 * 67 / pi) ~ 6.5 per level; the
    # Pocock-Simon rule with p = 0.8 should keep the worst level to a small fraction of it.
    n_levels = [3, 3]
    minimised, simple = [], []
    for seed in range(40):
        gen = np.random.default_rng(seed)
        levels = np.column_stack([gen.integers(0, m, 200) for m in n_levels])
        arms = engines.minimise(levels, n_levels, [1, 1], probability=0.8, rng=gen)
        minimised.append(_max_marginal_imbalance(levels, arms, n_levels))
        simple.append(_max_marginal_imbalance(levels, engines.simple([1, 1], 200, rng=gen), n_levels))
    assert np.mean(minimised) < 0.35 * np.mean(simple)
    assert np.mean(simple) > 6  # the comparison is against a genuinely unbalanced reference


# (counts at the new referral's level per factor, weights, ratio, imbalance, expected)
MINIMISATION_CASES = {
    "one factor, arm 1 behind": ([[3, 1]], [1.0], [1, 1], "range", [0.2, 0.8]),
    "one factor, tied": ([[2, 2]], [1.0], [1, 1], "range", [0.5, 0.5]),
    # arm 0: ranges 3 (A) and 2 (B); arm 1: 1 and 4. Weights 1, 2: G = 7 vs 9, arm 0 wins
    "weights decide": ([[2, 0], [0, 3]], [1.0, 2.0], [1, 1], "range", [0.8, 0.2]),
    # ... with equal weights G = 5 vs 5: a tie, so the ratio shares
    "equal weights tie": ([[2, 0], [0, 3]], [1.0, 1.0], [1, 1], "range", [0.5, 0.5]),
    "zero weight ignored": ([[2, 0], [0, 3]], [1.0, 0.0], [1, 1], "range", [0.2, 0.8]),
    # 1:2 with counts (1, 2) is in ratio; scaled counts after adding: (2, 1) vs (1, 1.5)
    "unequal ratio": ([[1, 2]], [1.0], [1, 2], "range", [0.2, 0.8]),
    # arm 0 gives range 2, arms 1 and 2 give 1: they share 0.8
    "three arms, two best": ([[1, 0, 0]], [1.0], [1, 1, 1], "range", [0.2, 0.4, 0.4]),
    # four arms, counts (2, 0, 0, 1): range ties arms 1, 2, 3 (range 2) ...
    "four arms, range": ([[2, 0, 0, 1]], [1.0], [1, 1, 1, 1], "range", [0.2, 0.8 / 3, 0.8 / 3, 0.8 / 3]),
    # ... but the variance (ddof 1) is 2/3 for arms 1, 2 and 4/3 for arm 3
    "four arms, variance": ([[2, 0, 0, 1]], [1.0], [1, 1, 1, 1], "variance", [0.1, 0.4, 0.4, 0.1]),
}


@pytest.mark.parametrize("case", list(MINIMISATION_CASES), ids=list(MINIMISATION_CASES))
def test_minimisation_probabilities_hand_computed(case):
    level_counts, weights, ratio, measure, expected = MINIMISATION_CASES[case]
    # each factor has two levels; the referral is at level 1, level 0 holds noise that must be ignored
    counts = [np.array([[9] * len(ratio), row]) for row in level_counts]
    probs = engines.minimisation_probabilities(
        counts, [1] * len(counts), ratio, weights=weights, probability=0.8, imbalance=measure
    )
    assert probs == pytest.approx(expected, abs=1e-12)
    assert probs.sum() == pytest.approx(1.0, abs=1e-12)


def test_minimisation_rejects_an_unknown_imbalance_measure():
    with pytest.raises(ValueError, match="'range' or 'variance'"):
        engines.minimisation_probabilities(
            [np.zeros((2, 2))], [0], [1, 1], weights=[1], probability=0.8, imbalance="gini"
        )


def test_minimise_uses_the_given_draws():
    levels = np.array([[0], [0], [1], [0]])
    # first referral: tie, u = 0.7 >= 0.5 gives arm 1; second: arm 0 favoured (0.8), u = 0.79 < 0.8 gives arm 0
    arms = engines.minimise(levels, [2], [1, 1], probability=0.8, uniforms=[0.7, 0.79, 0.1, 0.3])
    assert arms.tolist() == [1, 0, 0, 0]


# --------------------------------------------------------------------- biased coin
BIASED_COIN_CASES = {
    "balanced 1:1": ((0, 0), (1, 1), [0.5, 0.5]),
    "control ahead": ((3, 1), (1, 1), [1 / 3, 2 / 3]),
    "control behind": ((1, 2), (1, 1), [2 / 3, 1 / 3]),
    "in ratio 1:2": ((2, 4), (1, 2), [1 / 3, 2 / 3]),
    "control ahead of 1:2": ((1, 1), (1, 2), [1 / 3, 2 / 3]),
    "control behind 1:2": ((0, 1), (1, 2), [2 / 3, 1 / 3]),
}


@pytest.mark.parametrize("case", list(BIASED_COIN_CASES), ids=list(BIASED_COIN_CASES))
def test_biased_coin_probabilities(case):
    # Efron (1971): the arm behind gets p = 2/3, the arms share by ratio when balanced
    counts, ratio, expected = BIASED_COIN_CASES[case]
    assert engines.biased_coin_probabilities(counts, ratio, 2 / 3) == pytest.approx(expected, abs=1e-12)


def test_biased_coin_with_certainty_alternates_in_pairs():
    seq = engines.biased_coin([1, 1], 101, probability=1.0, rng=3)
    difference = np.cumsum(2 * seq - 1)
    assert np.abs(difference).max() == 1
    assert (difference[1::2] == 0).all()  # balanced after every even number


def test_biased_coin_rejects_three_arms():
    with pytest.raises(ValueError, match="two arms"):
        engines.biased_coin_probabilities((0, 0, 0), (1, 1, 1), 2 / 3)


# ---------------------------------------------------------------------------- choose
@settings(max_examples=200, deadline=None)
@given(
    probs=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=6).filter(lambda p: sum(p) > 1e-6),
    u=st.floats(0.0, 1.0, exclude_max=True),
)
def test_choose_is_the_inverse_cdf(probs, u):
    arm = engines.choose(probs, u)
    cdf = np.cumsum(probs) / np.sum(probs)
    lower = 0.0 if arm == 0 else cdf[arm - 1]
    assert probs[arm] > 0
    assert lower <= u < cdf[arm] or (arm == len(probs) - 1 and u >= lower)


@pytest.mark.parametrize("probs", [[0.5, 0.5], [0.2, 0.3, 0.5], [1, 3], [0.0, 0.25, 0.0, 0.75]])
def test_choose_gives_each_arm_its_share_of_the_unit_interval(probs):
    grid = (np.arange(10_000) + 0.5) / 10_000
    chosen = np.bincount([engines.choose(probs, float(u)) for u in grid], minlength=len(probs))
    assert chosen / grid.size == pytest.approx(np.asarray(probs) / np.sum(probs), abs=2e-4)


CHOOSE_EDGES = {
    "u = 0 takes the first arm": ([0.5, 0.5], 0.0, 0),
    "u at the boundary takes the next arm": ([0.5, 0.5], 0.5, 1),
    "u just below 1 takes the last arm": ([0.5, 0.5], math.nextafter(1.0, 0.0), 1),
    "zero-probability first arm is skipped": ([0.0, 1.0], 0.0, 1),
    "zero-probability last arm is never chosen": ([1.0, 0.0], math.nextafter(1.0, 0.0), 0),
    "weights need not sum to one": ([1, 3], 0.2, 0),
    "weights need not sum to one, second": ([1, 3], 0.3, 1),
}


@pytest.mark.parametrize("case", list(CHOOSE_EDGES), ids=list(CHOOSE_EDGES))
def test_choose_edge_cases(case):
    probs, u, expected = CHOOSE_EDGES[case]
    assert engines.choose(probs, u) == expected


@pytest.mark.parametrize("u", [-0.1, 1.0, 1.5])
def test_choose_rejects_draws_outside_the_unit_interval(u):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        engines.choose([0.5, 0.5], u)


# ---------------------------------------------------------------- reproducibility
SEQUENCES = {
    "simple": lambda rng: engines.simple([1, 2], 60, rng=rng),
    "permuted_blocks": lambda rng: engines.permuted_blocks([1, 1], 60, block_sizes=[2, 4, 6], rng=rng),
    "biased_coin": lambda rng: engines.biased_coin([1, 1], 60, rng=rng),
    "minimise": lambda rng: engines.minimise(
        np.random.default_rng(99).integers(0, 3, size=(60, 2)), [3, 3], [1, 1], rng=rng
    ),
}


@pytest.mark.parametrize("method", list(SEQUENCES))
def test_same_seed_gives_the_same_sequence(method):
    make = SEQUENCES[method]
    assert np.array_equal(make(2024), make(2024))
    assert np.array_equal(make(2024), make(np.random.default_rng(2024)))


@pytest.mark.parametrize("method", list(SEQUENCES))
def test_different_seeds_give_different_sequences(method):
    make = SEQUENCES[method]
    assert not np.array_equal(make(2024), make(2025))


def test_simple_randomisation_follows_the_ratio():
    seq = engines.simple([1, 3], 40_000, rng=5)
    assert np.mean(seq == 1) == pytest.approx(0.75, abs=4 * math.sqrt(0.75 * 0.25 / 40_000))


# ------------------------------------------------------------------- bad arguments
BAD_CALLS = {
    "one arm": (lambda: engines.simple([1], 5, rng=0), "two or more positive integers"),
    "zero ratio": (lambda: engines.simple([0, 1], 5, rng=0), "two or more positive integers"),
    "negative ratio": (lambda: engines.permuted_blocks([1, -1], 5, block_sizes=[2], rng=0), "positive"),
    "block not a multiple": (lambda: engines.permuted_blocks([1, 2], 5, block_sizes=[3, 4], rng=0), "multiples"),
    "no block sizes": (lambda: engines.permuted_blocks([1, 1], 5, block_sizes=[], rng=0), "multiples"),
    "three-arm coin": (lambda: engines.biased_coin([1, 1, 1], 5, rng=0), "two arms"),
}


@pytest.mark.parametrize("case", list(BAD_CALLS), ids=list(BAD_CALLS))
def test_bad_arguments_raise_value_error(case):
    call, message = BAD_CALLS[case]
    with pytest.raises(ValueError, match=message):
        call()
