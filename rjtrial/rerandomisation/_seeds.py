"""The per-row uniforms of a re-randomisation chunk, seeded as numpy seeds them, compiled.

Re-randomisation ``j`` of chunk ``c`` draws its uniforms as
:func:`rjtrial.rerandomisation._design._cohort_generator` derives them from the child
``SeedSequence(entropy, spawn_key=(..., c, j))``: one ``integers(0, 2**63)`` of a PCG64
seeded by the child gives a new seed, and the uniforms are ``random(n)`` of a PCG64 seeded
by ``SeedSequence(seed)`` (or by its first spawned child). Done with numpy objects that is
about 20 microseconds of Python a row, holding the GIL -- more than the minimisation itself.
:func:`chunk_uniforms` does the same arithmetic in one compiled pass (numba, ``nogil``):

* ``SeedSequence``'s entropy pool (numpy's ``mix_entropy``: the hash and mix of 32-bit
  words with its published constants) and ``generate_state``;
* ``PCG64`` seeded from four 64-bit state words (``pcg64_set_seed``) and stepped as the
  128-bit LCG ``state = state * M + inc`` with the XSL-RR output (O'Neill 2014), the 128-bit
  products from 32-bit halves;
* ``integers(0, 2**63)`` is the first output shifted right by one (Lemire's method with a
  range of 2**63 never rejects), and ``random()`` is ``(output >> 11) * 2**-53``.

The tests hold every row to numpy's own objects bit for bit (entropy of one to seven
words, spawn keys, chunk numbers past 2**32, both seedings).

References: O'Neill, M. E. (2014). PCG: a family of simple fast space-efficient
statistically good algorithms for random number generation. Harvey Mudd College
HMC-CS-2014-0905; numpy ``SeedSequence`` (NEP 19; ``numpy/random/bit_generator.pyx``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["chunk_uniforms", "entropy_words"]

_MASK32 = 0xFFFFFFFF


def _int_words(value: int) -> list[int]:
    """An integer's little-endian 32-bit words, as SeedSequence reads it ([0] for 0)."""
    if value < 0:
        raise ValueError(f"seed words must be non-negative, got {value}")
    if value == 0:
        return [0]
    out = []
    while value > 0:
        out.append(value & _MASK32)
        value >>= 32
    return out


def _words(value) -> list[int]:
    if isinstance(value, (int, np.integer)):
        return _int_words(int(value))
    return [w for v in value for w in _words(v)]


def entropy_words(root: np.random.SeedSequence, chunk: int) -> np.ndarray:
    """The assembled entropy of chunk ``chunk``'s children but their own index: the root's
    entropy (zero-padded to the pool size, as a spawned sequence's is), the root's spawn key
    and ``chunk``. Row ``j`` appends ``j``'s word."""
    if root.pool_size != 4:
        raise ValueError(f"the root SeedSequence must have numpy's default pool size 4, got {root.pool_size}")
    run = _words(root.entropy)
    run += [0] * max(0, 4 - len(run))
    return np.array(run + _words(root.spawn_key) + _int_words(int(chunk)), dtype=np.uint64)


def chunk_uniforms(root: np.random.SeedSequence, chunk: int, size: int, n: int, *, spawned: bool) -> np.ndarray:
    """``(size, n)`` uniforms: row ``j`` is ``_cohort_generator(child j of chunk, spawned=...).random(n)``."""
    out = np.empty((size, n))
    _uniform_rows(entropy_words(root, chunk), bool(spawned), out)
    return out


# ------------------------------------------------------------------------ compiled
_jit = njit(cache=True, nogil=True)
# (numba types every constant as uint64 so that no operation mixes signed and unsigned)
_U32 = np.uint64(0xFFFFFFFF)
_INIT_A = np.uint64(0x43B0D7E5)
_MULT_A = np.uint64(0x931E8875)
_INIT_B = np.uint64(0x8B51F9DD)
_MULT_B = np.uint64(0x58F38DED)
_MIX_L = np.uint64(0xCA01F9DD)
_MIX_R = np.uint64(0x4973F715)
_SHIFT16 = np.uint64(16)
_SHIFT32 = np.uint64(32)
_M_HIGH = np.uint64(2549297995355413924)  # PCG's default 128-bit multiplier
_M_LOW = np.uint64(4865540595714422341)


@_jit
def _hashmix(value, h):  # pragma: no cover - compiled
    """SeedSequence's ``hashmix`` of a word with multiplier state ``h``: (hash, next ``h``)."""
    value ^= h
    h = (h * _MULT_A) & _U32
    value = (value * h) & _U32
    return value ^ (value >> _SHIFT16), h


@_jit
def _mix(x, y):  # pragma: no cover - compiled
    """SeedSequence's ``mix`` of two words."""
    r = (_MIX_L * x - _MIX_R * y) & _U32
    return r ^ (r >> _SHIFT16)


@_jit
def _pool(entropy, length, pool):  # pragma: no cover - compiled
    """SeedSequence's ``mix_entropy`` of ``entropy[:length]`` into the four words of ``pool``."""
    h = _INIT_A
    for i in range(4):
        pool[i], h = _hashmix(entropy[i] if i < length else np.uint64(0), h)
    for src in range(4):
        for dst in range(4):
            if src != dst:
                hashed, h = _hashmix(pool[src], h)
                pool[dst] = _mix(pool[dst], hashed)
    for src in range(4, length):
        for dst in range(4):
            hashed, h = _hashmix(entropy[src], h)
            pool[dst] = _mix(pool[dst], hashed)


@_jit
def _mul_high(a, b):  # pragma: no cover - compiled
    """The high 64 bits of the 128-bit product of two 64-bit words."""
    a_lo, a_hi = a & _U32, a >> _SHIFT32
    b_lo, b_hi = b & _U32, b >> _SHIFT32
    p0, p1, p2, p3 = a_lo * b_lo, a_lo * b_hi, a_hi * b_lo, a_hi * b_hi
    middle = (p0 >> _SHIFT32) + (p1 & _U32) + (p2 & _U32)
    return p3 + (p1 >> _SHIFT32) + (p2 >> _SHIFT32) + (middle >> _SHIFT32)


@_jit
def _step(s_hi, s_lo, inc_hi, inc_lo):  # pragma: no cover - compiled
    """``state * M + inc`` modulo 2**128, as (high, low) words."""
    hi = s_hi * _M_LOW + s_lo * _M_HIGH + _mul_high(s_lo, _M_LOW)
    lo = s_lo * _M_LOW
    new_lo = lo + inc_lo
    carry = np.uint64(1) if new_lo < lo else np.uint64(0)
    return hi + inc_hi + carry, new_lo


@_jit
def _output(s_hi, s_lo):  # pragma: no cover - compiled
    """PCG's XSL-RR output of a state: ``rotr(high ^ low, high >> 58)``."""
    x = s_hi ^ s_lo
    rot = s_hi >> np.uint64(58)
    return (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))


@_jit
def _seeded(pool):  # pragma: no cover - compiled
    """PCG64 seeded from a pool: ``generate_state(4, uint64)`` and ``pcg64_set_seed``;
    returns the state and increment as (high, low) words."""
    h = _INIT_B
    words = np.empty(4, dtype=np.uint64)
    for k in range(4):
        pair = np.uint64(0)
        for half in range(2):
            v = pool[(2 * k + half) % 4] ^ h
            h = (h * _MULT_B) & _U32
            v = (v * h) & _U32
            v ^= v >> _SHIFT16
            pair |= v << (_SHIFT32 * np.uint64(half))
        words[k] = pair
    inc_hi = (words[2] << np.uint64(1)) | (words[3] >> np.uint64(63))
    inc_lo = (words[3] << np.uint64(1)) | np.uint64(1)
    s_hi, s_lo = _step(np.uint64(0), np.uint64(0), inc_hi, inc_lo)
    s_lo_sum = s_lo + words[1]
    carry = np.uint64(1) if s_lo_sum < s_lo else np.uint64(0)
    s_hi, s_lo = _step(s_hi + words[0] + carry, s_lo_sum, inc_hi, inc_lo)
    return s_hi, s_lo, inc_hi, inc_lo


_LANES = 8  # rows drawn side by side (independent streams: the compiler vectorises across them)


@_jit
def _uniform_rows(prefix, spawned, out):  # pragma: no cover - compiled
    size, n = out.shape
    length = prefix.size + 1
    entropy = np.empty(length, dtype=np.uint64)
    entropy[: prefix.size] = prefix
    second = np.zeros(5, dtype=np.uint64)
    pool = np.empty(4, dtype=np.uint64)
    s_hi = np.empty(_LANES, dtype=np.uint64)
    s_lo = np.empty(_LANES, dtype=np.uint64)
    inc_hi = np.empty(_LANES, dtype=np.uint64)
    inc_lo = np.empty(_LANES, dtype=np.uint64)
    draws = np.empty((n, _LANES))
    scale = 1.0 / 9007199254740992.0  # 2**-53
    for first in range(0, size, _LANES):
        lanes = min(_LANES, size - first)
        for b in range(_LANES):
            j = first + min(b, lanes - 1)  # spare lanes repeat the last row
            entropy[length - 1] = np.uint64(j)
            _pool(entropy, length, pool)
            hi, lo, ihi, ilo = _seeded(pool)
            hi, lo = _step(hi, lo, ihi, ilo)
            seed = _output(hi, lo) >> np.uint64(1)  # integers(0, 2**63)
            # SeedSequence(seed): its one or two words; spawned: zero-padded to four, then
            # the spawn key (0,)
            second[:] = 0
            second[0] = seed & _U32
            words = 1
            if seed >> _SHIFT32:
                second[1] = seed >> _SHIFT32
                words = 2
            if spawned:
                words = 5
            _pool(second, words, pool)
            s_hi[b], s_lo[b], inc_hi[b], inc_lo[b] = _seeded(pool)
        for i in range(n):
            for b in range(_LANES):
                hi, lo = _step(s_hi[b], s_lo[b], inc_hi[b], inc_lo[b])
                s_hi[b] = hi
                s_lo[b] = lo
                draws[i, b] = np.float64(_output(hi, lo) >> np.uint64(11)) * scale
        for b in range(lanes):
            for i in range(n):
                out[first + b, i] = draws[i, b]
