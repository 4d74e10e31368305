"""Keyed draws: a trial's secret random numbers, from HMAC-SHA-256 of its sealed seed.

Every secret draw of an allocation schedule (minimisation's random element, block
sizes, the order within each block, simple and biased-coin allocations) is

.. math:: u_i = \\lfloor w_i / 2^{11} \\rfloor \\cdot 2^{-53}, \\qquad
          w_i = \\text{first 8 bytes (big-endian) of } \\mathrm{HMAC\\text{-}SHA256}(K, \\ell \\,|\\, i)

where ``K = SHA-256("rjtrial-schedule-v2|" + seed)`` (the seed is sealed with the
schedule and never stored in clear), ``ell`` a label naming the stream (``minimisation``,
or ``sequence|<sequence key>``) and ``i`` the draw's index in that stream: for
minimisation the slot number, one value per slot. HMAC-SHA-256 is a pseudo-random
function: without ``K`` the draws revealed as slots are used tell nothing about the
draws still sealed, which is not true of a fast generator such as numpy's PCG64,
whose state can be recovered from a few hundred outputs (Bouillaguet, Martinez &
Sauvage 2020, doi:10.46586/tosc.v2020.i3.175-206). With the seed, an auditor
regenerates every draw exactly, on any platform and numpy version.

:class:`KeyedGenerator` offers the three ``numpy.random.Generator`` methods the
engines call (``random``, ``choice``, ``permutation``), so the engines of
:mod:`rjtrial.randomise.engines` draw from it unchanged. Integers are taken as
``floor(u * m)``: with 53-bit uniforms the bias is below ``m / 2**53``
(about 1e-13 for a block of 1,000).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Sequence

import numpy as np

#: Names the derivation; recorded in the schedule record (``draws``).
SCHEME = "HMAC-SHA-256(SHA-256('rjtrial-schedule-v2|' + seed), label|index), 53-bit uniforms"
_SECRET_DOMAIN = b"rjtrial-schedule-v2|"
_SCALE = 2.0**-53


def schedule_secret(seed: int) -> bytes:
    """The HMAC key of a schedule's draws, derived from its seed (32 bytes)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return hashlib.sha256(_SECRET_DOMAIN + str(int(seed)).encode("ascii")).digest()


def keyed_uniform(secret: bytes, label: str, index: int) -> float:
    """Draw ``index`` of stream ``label``: a uniform on [0, 1) with 53 random bits."""
    digest = hmac.digest(secret, f"{label}|{index}".encode("utf-8"), "sha256")
    return (int.from_bytes(digest[:8], "big") >> 11) * _SCALE


class KeyedGenerator:
    """A stream of keyed uniforms with the Generator methods the engines use.

    Parameters
    ----------
    secret : bytes
        The HMAC key (:func:`schedule_secret`).
    label : str
        The stream's name; streams with different labels are independent.

    Draws are consumed in order: the ``i``-th uniform drawn (over all calls) is
    :func:`keyed_uniform` ``(secret, label, i)``.

    Examples
    --------
    >>> gen = KeyedGenerator(schedule_secret(1), "minimisation")
    >>> first = gen.random(3)
    >>> bool(first[1] == keyed_uniform(schedule_secret(1), "minimisation", 1))
    True
    """

    def __init__(self, secret: bytes, label: str):
        if not isinstance(secret, (bytes, bytearray)) or len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        self._secret = bytes(secret)
        self._prefix = f"{label}|".encode("utf-8")
        self.label = label
        self.drawn = 0

    def _next(self, n: int) -> np.ndarray:
        secret, prefix, start = self._secret, self._prefix, self.drawn
        words = [
            int.from_bytes(hmac.digest(secret, prefix + str(i).encode("ascii"), "sha256")[:8], "big") >> 11
            for i in range(start, start + n)
        ]
        self.drawn += n
        return np.array(words, dtype=np.float64) * _SCALE

    def random(self, size: int | None = None) -> Any:
        """Uniforms on [0, 1): one float (``size=None``) or an array of ``size``."""
        if size is None:
            return float(self._next(1)[0])
        return self._next(int(size))

    def choice(self, a, size: int | None = None, p: Sequence[float] | None = None) -> Any:
        """Elements of ``a`` (or of ``range(a)``) with probabilities ``p`` (equal by default), with replacement."""
        values = np.arange(a) if isinstance(a, (int, np.integer)) else np.asarray(a)
        count = 1 if size is None else int(size)
        u = self._next(count)
        if p is None:
            index = np.minimum((u * values.size).astype(np.int64), values.size - 1)
        else:
            cumulative = np.cumsum(np.asarray(p, dtype=float))
            cumulative /= cumulative[-1]
            index = np.minimum(np.searchsorted(cumulative, u, side="right"), values.size - 1)
        out = values[index]
        return out[0] if size is None else out

    def permutation(self, x) -> np.ndarray:
        """A uniformly random arrangement of ``x`` (or of ``range(x)``), by Fisher-Yates."""
        out = np.array(np.arange(x) if isinstance(x, (int, np.integer)) else x, copy=True)
        n = out.shape[0]
        u = self._next(max(n - 1, 0))
        for step, j in enumerate(range(n - 1, 0, -1)):
            k = min(int(u[step] * (j + 1)), j)
            out[j], out[k] = out[k], out[j]
        return out
