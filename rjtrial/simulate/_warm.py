"""Load every compiled kernel power by simulation uses, once, on tiny inputs.

Imported by the process pool's fork server (:mod:`rjtrial.simulate._runner`): its workers
are forked from it with the kernels already loaded from numba's cache, instead of each
loading them (a few tenths of a second per process) before its first batch. Importing this
module has that one effect; it changes no result.
"""

from __future__ import annotations

import numpy as np


def warm() -> None:
    """Call each kernel once (results discarded)."""
    from rjtrial.randomise.compiled import minimisation_kernel
    from rjtrial.simulate import _allocation, _kernels
    from rjtrial.survival.batched import cox_batch, logrank_batch, negative_binomial_batch, rmst_batch

    count = np.array([2, 1], dtype=np.int64)
    u = np.full((3, 4), 0.5)
    who, street, keep, convicted, custody = _kernels.lay_out(count, np.zeros(2), np.ones(2), np.ones(2), u, 0.1, 0.5)
    sigma = _kernels.convictions(street, convicted, np.ones(3))
    _kernels.owners(count)
    _kernels.latest_conviction(count, sigma, np.zeros(2))
    clock = _kernels.merge_pauses(who, sigma, np.ones(3), 2, np.array([0, 3], dtype=np.int64))
    out = np.empty((7, 2), dtype=np.int64)
    _kernels.followup(
        *clock,
        np.array([0, 2, 3], dtype=np.int64),
        street,
        sigma,
        keep,
        np.array([900, 900]),
        np.full(2, np.inf),
        np.array([800, 800]),
        730,
        False,
        out,
    )
    _allocation._block_slots(
        np.full((2, 1), 0.5), np.full((2, 1), 0.5), np.array([2, 4]), np.array([0.5, 1.0]), np.array([1, 1])
    )
    _allocation._biased_coin(np.full((1, 2), 0.5), 1, 1, 0.7)
    minimisation_kernel()(
        np.zeros((1, 2, 1), dtype=np.int64), 1, np.array([1.0, 1.0]), np.array([1.0]), 0.8, False, np.full((1, 2), 0.5)
    )
    time = np.array([[1.0, 2.0, 3.0, 4.0]])
    event = np.array([[1, 0, 1, 1]])
    arm = np.array([[0, 1, 0, 1]])
    cox_batch(time, event, arm, threads=1)
    logrank_batch(time, event, arm, threads=1)
    rmst_batch(time, event, arm, tau=2.0, threads=1)
    negative_binomial_batch(np.array([[0.0, 1, 2, 3]]), np.ones((1, 4)), arm)


warm()
