"""The log-rank statistic of many re-randomised allocations, compiled (numba, on first use).

:func:`logrank_rows` computes, for each row of arm indices, what the array expression in
:class:`rjtrial.rerandomisation._Statistic` states for ``"logrank"``: ``(O - E) / sqrt(V)``
of arm 1 from the linear ingredients of :func:`rjtrial.rerandomisation._logrank_arrays` --
``score`` (``delta_i - H(t_i)``), the participants in decreasing order of time (``order``),
the position in that order of the last one at risk at each event time (``last``), the
number at risk (``n_at_risk``) and the hypergeometric factor ``c``. One pass over each
row, with no ``(rows, n)`` floating-point temporaries: the array form spent most of its time
building and re-reading them. Sums are taken in index order (the array form's BLAS dot
products may add in another order: the two agree to rounding, ~1e-16 relative).
"""

from __future__ import annotations

import numpy as np

__all__ = ["logrank_rows"]

_KERNEL = None


def logrank_rows(arms: np.ndarray, order, last, n_at_risk, c, score) -> np.ndarray:
    """``(O - E) / sqrt(V)`` of arm 1 for each row of ``arms`` (int, ``(rows, n)``)."""
    global _KERNEL
    if _KERNEL is None:
        from numba import njit

        _KERNEL = njit(cache=True, nogil=True, error_model="numpy")(_logrank_rows)
    return _KERNEL(np.ascontiguousarray(arms), order, last, n_at_risk, c, score)


def _logrank_rows(arms, order, last, n_at_risk, c, score):  # pragma: no cover - compiled
    rows, n = arms.shape
    m = last.size
    out = np.empty(rows)
    for r in range(rows):
        o_minus_e = 0.0
        for i in range(n):
            if arms[r, i] == 1:
                o_minus_e += score[i]
        # treated at risk at event time j: arm-1 participants among the first last[j] + 1 in
        # decreasing order of time; last[] falls as j rises, so j runs down while p runs up
        variance = 0.0
        treated = 0.0
        p = 0
        for j in range(m - 1, -1, -1):
            while p <= last[j]:
                if arms[r, order[p]] == 1:
                    treated += 1.0
                p += 1
            share = treated / n_at_risk[j]
            variance += share * (1.0 - share) * c[j]
        out[r] = o_minus_e / np.sqrt(variance)
    return out
