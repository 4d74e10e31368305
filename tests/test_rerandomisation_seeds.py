"""rjtrial/rerandomisation/_seeds.py: numpy's SeedSequence and PCG64, compiled -- every row
held bit for bit to numpy's own objects (the derivation of
``rjtrial.rerandomisation._design._cohort_generator``)."""

from __future__ import annotations

import numpy as np
import pytest

from rjtrial.rerandomisation._design import _chunk_seed, _cohort_generator
from rjtrial.rerandomisation._seeds import chunk_uniforms, entropy_words


def _numpy_rows(root, chunk, size, n, spawned):
    children = _chunk_seed(root, chunk).spawn(size)
    return np.array([_cohort_generator(child, spawned=spawned).random(n) for child in children]).reshape(size, n)


@pytest.mark.parametrize(
    "entropy",
    [0, 1, 2**32 - 1, 2**32, 2**63 + 11, 51764486827651600151120340028300792165, 2**200 + 3, (3, 4), (2**70, 0, 9)],
)
@pytest.mark.parametrize("spawn_key", [(), (7,), (2**33, 0)])
def test_chunk_uniforms_equal_numpys_seeding_bit_for_bit(entropy, spawn_key):
    root = np.random.SeedSequence(entropy, spawn_key=spawn_key)
    for chunk, size in ((0, 1), (3, 13), (2**32 + 1, 8)):  # sizes below, at and past the 8 lanes
        for spawned in (False, True):
            got = chunk_uniforms(root, chunk, size, 11, spawned=spawned)
            np.testing.assert_array_equal(got, _numpy_rows(root, chunk, size, 11, spawned))


def test_chunk_uniforms_of_fresh_entropy_and_a_full_chunk():
    root = np.random.SeedSequence()  # 128 bits from the operating system
    got = chunk_uniforms(root, 4, 1000, 50, spawned=False)
    np.testing.assert_array_equal(got, _numpy_rows(root, 4, 1000, 50, False))
    assert got.shape == (1000, 50) and 0.0 <= got.min() and got.max() < 1.0


def test_entropy_words_pad_the_root_entropy_then_append_spawn_key_and_chunk():
    """SeedSequence's assembled entropy of a spawned sequence: the entropy's 32-bit words,
    least significant first, zero-padded to the pool size (4), then the spawn key's words."""
    root = np.random.SeedSequence(2**40 + 5, spawn_key=(1,))
    assert entropy_words(root, 6).tolist() == [5, 256, 0, 0, 1, 6]
    assert entropy_words(np.random.SeedSequence((2**64 + 2, 0, 3, 4, 5)), 0).tolist() == [2, 0, 1, 0, 3, 4, 5, 0]


def test_a_root_with_another_pool_size_is_refused():
    with pytest.raises(ValueError, match="pool size"):
        chunk_uniforms(np.random.SeedSequence(1, pool_size=8), 0, 2, 3, spawned=False)
