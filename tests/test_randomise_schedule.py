"""The allocation schedule (rjtrial/randomise/schedule.py): seeds, shape, record, agreement."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rjtrial._version import __version__
from rjtrial.protocol import Protocol
from rjtrial.randomise import engines
from rjtrial.randomise.schedule import (
    allocate_cohort,
    fixed_sequence,
    make_schedule,
    minimisation_probabilities_for,
    new_seed,
)

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "synthetic" / "protocols").glob("*.toml"))


def load(path) -> Protocol:
    return Protocol.from_toml(path)


def random_strata(protocol, n, seed):
    gen = np.random.default_rng(seed)
    return [{name: str(gen.choice(levels)) for name, levels in protocol.strata.items()} for _ in range(n)]


def same_schedule(a, b) -> bool:
    if a.sequences.keys() != b.sequences.keys():
        return False
    if any(not np.array_equal(a.sequences[k], b.sequences[k]) for k in a.sequences):
        return False
    return (a.draws is None) == (b.draws is None) and (a.draws is None or np.array_equal(a.draws, b.draws))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_schedule_is_reproducible_from_its_seed(path):
    protocol = load(path)
    assert same_schedule(make_schedule(protocol, seed=12345), make_schedule(protocol, seed=12345))
    assert not same_schedule(make_schedule(protocol, seed=12345), make_schedule(protocol, seed=12346))


def test_a_128_bit_seed_is_accepted():
    protocol = load(EXAMPLES[0])
    seed = new_seed()
    assert 0 <= seed < 2**128
    assert same_schedule(make_schedule(protocol, seed=seed), make_schedule(protocol, seed=seed))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_schedule_has_one_full_sequence_per_key(path):
    protocol = load(path)
    schedule = make_schedule(protocol, seed=7)
    capacity = protocol.randomisation.capacity
    if protocol.randomisation.is_adaptive:
        assert schedule.sequences == {}
        assert schedule.draws.shape == (capacity,)
        assert ((schedule.draws >= 0) & (schedule.draws < 1)).all()
    else:
        assert schedule.draws is None
        assert list(schedule.sequences) == protocol.sequence_keys()
        for seq in schedule.sequences.values():
            assert seq.shape == (capacity,)
            assert set(np.unique(seq)) <= set(range(len(protocol.arms)))


def test_stratum_sequences_are_independent_streams():
    protocol = load(next(p for p in EXAMPLES if "london" in p.stem))
    sequences = list(make_schedule(protocol, seed=1).sequences.values())
    assert len({seq.tobytes() for seq in sequences}) == len(sequences)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_schedule_record_holds_what_an_audit_needs(path):
    protocol = load(path)
    record = make_schedule(protocol, seed=2**100 + 3).record
    assert record["seed"] == str(2**100 + 3)  # a string: JSON numbers lose 128-bit seeds
    assert record["method"] == protocol.randomisation.method
    assert record["parameters"] == protocol.randomisation.to_dict()
    assert record["arms"] == list(protocol.arms)
    assert record["ratio"] == list(protocol.ratio)
    assert record["sequence_keys"] == protocol.sequence_keys()
    assert record["rjtrial_version"] == __version__
    assert record["numpy_version"] == np.__version__
    assert json.loads(json.dumps(record)) == record


def test_block_schedule_is_whole_blocks_in_ratio(make_protocol):
    protocol = make_protocol("blocks", (1, 2), block_sizes=[6], capacity=60)
    seq = make_schedule(protocol, seed=3).sequences["all"]
    for block in seq.reshape(10, 6):
        assert np.bincount(block, minlength=2).tolist() == [2, 4]


def test_fixed_sequence_refuses_minimisation(make_protocol):
    with pytest.raises(ValueError, match="no fixed sequence"):
        fixed_sequence(make_protocol("minimisation"), 10, rng=0)


# ---------------------------------------------- allocate_cohort vs the registry rules
def registry_allocations(protocol, strata, seed):
    """What the registry does with make_schedule(seed): referral i takes the next slot of
    its sequence, or, for minimisation, the arm chosen by the next sealed draw."""
    schedule = make_schedule(protocol, seed=seed)
    arms = []
    if protocol.randomisation.is_adaptive:
        for i, row in enumerate(strata):
            probs = minimisation_probabilities_for(protocol, strata[:i], arms, row)
            arms.append(engines.choose(probs, float(schedule.draws[i])))
        return np.array(arms)
    used: dict[str, int] = {}
    for row in strata:
        key = protocol.sequence_key(row)
        arms.append(int(schedule.sequences[key][used.get(key, 0)]))
        used[key] = used.get(key, 0) + 1
    return np.array(arms)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("rng_seed", [0, 1, 2])
def test_allocate_cohort_agrees_with_the_schedule_the_registry_would_seal(path, rng_seed):
    protocol = load(path)
    strata = random_strata(protocol, 120, seed=rng_seed + 100)
    # allocate_cohort draws one 63-bit trial seed from rng, then follows the schedule rules
    trial_seed = int(np.random.default_rng(rng_seed).integers(0, 2**63))
    expected = registry_allocations(protocol, strata, trial_seed)
    assert np.array_equal(allocate_cohort(protocol, strata, rng=rng_seed), expected)


def test_minimisation_probabilities_for_counts_the_history(make_protocol):
    protocol = make_protocol("minimisation", (1, 1), weights={"site": 1, "sex": 2})
    history = [{"site": "a", "sex": "f"}, {"site": "a", "sex": "m"}, {"site": "b", "sex": "f"}]
    # site a: arms (1, 1); sex f: arms (2, 0). New referral site a, sex f.
    # arm 0: site range 1, sex range 3 -> 1 + 2*3 = 7; arm 1: 1 + 2*1 = 3: arm 1 favoured
    probs = minimisation_probabilities_for(protocol, history, [0, 1, 0], {"site": "a", "sex": "f"})
    assert probs == pytest.approx([0.2, 0.8], abs=1e-12)


def test_allocate_cohort_is_reproducible_and_seed_dependent(make_protocol):
    protocol = make_protocol("stratified_blocks", block_sizes=[2, 4])
    strata = random_strata(protocol, 80, seed=5)
    assert np.array_equal(allocate_cohort(protocol, strata, rng=9), allocate_cohort(protocol, strata, rng=9))
    assert not np.array_equal(allocate_cohort(protocol, strata, rng=9), allocate_cohort(protocol, strata, rng=10))


def test_a_biased_coin_protocol_built_in_python_uses_the_toml_default_probability():
    # Randomisation(method="biased_coin") without a probability crashed deep in the engine
    # (1.0 - None); it takes the default a protocol file gets, 2/3 (Efron 1971).
    import dataclasses

    from rjtrial.protocol import Randomisation

    from_file = load(EXAMPLES[0])
    by_hand = dataclasses.replace(from_file, randomisation=Randomisation(method="biased_coin"))
    expected = engines.biased_coin(from_file.ratio, 40, probability=2 / 3, rng=7)
    np.testing.assert_array_equal(fixed_sequence(by_hand, 40, rng=7), expected)
