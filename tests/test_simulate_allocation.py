"""Allocation of simulated trials by the protocol's law (rjtrial/simulate/_allocation.py).

Draw for draw against :mod:`rjtrial.randomise.engines` where the engine takes its uniforms
(minimisation, the biased coin); in law where it shuffles (permuted blocks: a two-sample
chi-square test on whole short sequences against ``engines.permuted_blocks``, at a stated
false-alarm rate; simple: the arm shares); and the block structure itself.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from rjtrial.protocol import Protocol
from rjtrial.randomise import engines
from rjtrial.simulate._allocation import allocate, sequence_index
from rjtrial.simulate._streams import Streams

FALSE_ALARM = 1e-3  # of each two-sample test: the chance a correct sampler fails it for a random seed


def protocol(method: str, **randomisation) -> Protocol:
    ratio = randomisation.pop("ratio", [1, 2])
    spec = {"method": method, "capacity": 5000, **randomisation}
    return Protocol.from_dict(
        {
            "trial": {"id": "t", "name": "t", "arms": ["control", "conference"], "ratio": ratio},
            "randomisation": spec,
            "strata": {"site": ["a", "b", "c"], "offence": ["property", "violence"]},
        }
    )


def codes(n: int, replicates: int, seed: int = 0) -> dict[str, np.ndarray]:
    gen = np.random.default_rng(seed)
    return {"site": gen.integers(0, 3, (n, replicates)), "offence": gen.integers(0, 2, (n, replicates))}


def streams(seed: int) -> Streams:
    return Streams(np.random.SeedSequence(seed))


@pytest.mark.parametrize("imbalance", ["range", "variance"])
@pytest.mark.parametrize("ratio", [[1, 2], [1, 1]])
def test_minimisation_is_the_engine_draw_for_draw(ratio, imbalance):
    p = Protocol.from_dict(
        {
            "trial": {"id": "t", "name": "t", "arms": ["control", "conference"], "ratio": ratio},
            "randomisation": {
                "method": "minimisation",
                "capacity": 5000,
                "probability": 0.8,
                "imbalance": imbalance,
                "weights": {"site": 1, "offence": 2},
            },
            "strata": {"site": ["a", "b", "c"], "offence": ["property", "violence"]},
        }
    )
    strata = codes(120, 6)
    arms = allocate(p, strata, streams(5), n=120, replicates=6)
    uniforms = streams(5)("allocation", 0).random((120, 6))
    for r in range(6):
        levels = np.column_stack([strata["site"][:, r], strata["offence"][:, r]])
        expected = engines.minimise(
            levels, [3, 2], ratio, weights=[1.0, 2.0], probability=0.8, imbalance=imbalance, uniforms=uniforms[:, r]
        )
        np.testing.assert_array_equal(arms[:, r], expected)


def test_biased_coin_is_the_engine_draw_for_draw():
    p = protocol("biased_coin", probability=2 / 3, ratio=[1, 1])
    arms = allocate(p, codes(200, 5), streams(2), n=200, replicates=5)
    uniforms = streams(2)("allocation", 0).random((200, 5))
    for r in range(5):  # engines.biased_coin's loop, on these uniforms
        counts, expected = [0, 0], []
        for u in uniforms[:, r]:
            arm = engines.choose(engines.biased_coin_probabilities(counts, [1, 1], 2 / 3), float(u))
            counts[arm] += 1
            expected.append(arm)
        np.testing.assert_array_equal(arms[:, r], expected)


def test_simple_randomisation_has_the_ratio():
    arms = allocate(protocol("simple", ratio=[1, 2]), codes(3000, 10), streams(1), n=3000, replicates=10)
    share = arms.mean()
    assert abs(share - 2 / 3) < 4 * np.sqrt(2 / 9 / arms.size)


@pytest.mark.parametrize("ratio, sizes, weights", [([1, 2], [3, 6], [1, 1]), ([1, 1], [2, 4, 6], [1, 2, 1])])
def test_permuted_blocks_have_the_engines_law(ratio, sizes, weights):
    """Whole sequences of 6 slots: frequencies from 20,000 sequences each way, chi-square on the
    sequences seen (two-sample test of homogeneity) at ``FALSE_ALARM``."""
    p = protocol("blocks", ratio=ratio, block_sizes=sizes, block_weights=weights)
    length, reps = 6, 20_000
    ours = allocate(p, codes(length, reps), streams(9), n=length, replicates=reps).T
    gen = np.random.default_rng(10)
    theirs = np.array(
        [engines.permuted_blocks(ratio, length, block_sizes=sizes, block_weights=weights, rng=gen) for _ in range(reps)]
    )
    patterns = list(itertools.product([0, 1], repeat=length))
    index = {pattern: i for i, pattern in enumerate(patterns)}
    table = np.zeros((2, len(patterns)))
    for row, sample in enumerate((ours, theirs)):
        for sequence in map(tuple, sample):
            table[row, index[sequence]] += 1
    table = table[:, table.sum(axis=0) > 0]
    result = stats.chi2_contingency(table)
    assert result.pvalue > FALSE_ALARM, result


@pytest.mark.parametrize("method", ["blocks", "stratified_blocks"])
def test_every_sequence_is_balanced_at_the_end_of_each_block(method):
    """Ratio 1:2 in blocks of 3 only: every third slot of a sequence closes a block with 1 control."""
    extra = {"stratify_by": ["site", "offence"]} if method == "stratified_blocks" else {}
    p = protocol(method, ratio=[1, 2], block_sizes=[3], **extra)
    strata = codes(300, 8, seed=4)
    arms = allocate(p, strata, streams(3), n=300, replicates=8)
    sequence = sequence_index(p, strata, arms.shape)
    for r in range(8):
        for s in np.unique(sequence[:, r]):
            mine = arms[sequence[:, r] == s, r]
            whole = mine[: 3 * (mine.size // 3)].reshape(-1, 3)
            assert (whole.sum(axis=1) == 2).all()
    if method == "stratified_blocks":
        keys = p.sequence_keys()
        row = {"site": "b", "offence": "violence"}
        assert keys[1 * 2 + 1] == p.sequence_key(row)


@pytest.mark.parametrize("method", ["blocks", "stratified_blocks", "minimisation", "biased_coin", "simple"])
def test_the_first_referrals_allocation_does_not_depend_on_the_trials_size(method):
    extra = {
        "blocks": {"block_sizes": [3, 6]},
        "stratified_blocks": {"block_sizes": [3, 6], "stratify_by": ["site"]},
        "minimisation": {"probability": 0.8, "weights": {"site": 1, "offence": 1}},
        "biased_coin": {"probability": 0.7, "ratio": [1, 1]},
        "simple": {},
    }[method]
    p = protocol(method, **extra)
    strata = codes(200, 4, seed=8)
    large = allocate(p, strata, streams(6), n=200, replicates=4)
    small = allocate(p, {k: v[:90] for k, v in strata.items()}, streams(6), n=90, replicates=4)
    np.testing.assert_array_equal(small, large[:90])
