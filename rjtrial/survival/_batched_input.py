"""Input checks, ordering and threading for the batched analyses (:mod:`rjtrial.survival.batched`).

Arrays of a batch are checked (numbers, 0/1 codes, equal shapes, trial labels) with errors
naming the trial and participant, ordered by trial and time, and the work is split over
threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from scipy import special

from rjtrial.errors import DataError

TABLE = "replicate trials"


def _where(shape, flat: int):
    """Row label of flat position ``flat``: ``(trial, participant)`` for 2-D input."""
    if len(shape) == 2:
        i, k = np.unravel_index(flat, shape)
        return (int(i), int(k))
    return int(flat)


def _numeric(name: str, values) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool:
        return array
    if array.dtype.kind not in "iuf":
        raise DataError(f"{name} must be numeric, found dtype {array.dtype}", table=TABLE, column=name)
    return array


def _binary(name: str, values: np.ndarray, coding: str) -> np.ndarray:
    """0/1 (or False/True) values as a contiguous uint8 array."""
    if values.dtype == bool:
        return np.ascontiguousarray(values).view(np.uint8).ravel()
    if values.dtype.kind in "iu" and values.min() >= 0 and values.max() <= 1:  # two fast reductions
        return values.astype(np.uint8).ravel()
    good = (values == 0) | (values == 1)
    if not good.all():
        first = int(np.flatnonzero(~good.ravel())[0])
        raise DataError(
            f"{name} must be {coding}, found {values.ravel()[first].item()!r}",
            table=TABLE,
            row=_where(values.shape, first),
            column=name,
        )
    return values.astype(np.uint8).ravel()


def _prepare(time, event, treatment, trial):
    """Validated flat ``(time, event, treatment)``, then ``offsets`` (2-D) or trial ``labels`` (1-D)."""
    t = _numeric("time", time)
    e = _numeric("event", event)
    x = _numeric("treatment", treatment)
    if trial is None:
        if t.ndim != 2:
            raise DataError(
                f"time must be 2-D (n_trials, n), one row a trial, or 1-D with trial= labels; got {t.ndim}-D",
                table=TABLE,
                column="time",
            )
    elif t.ndim != 1:
        raise DataError(f"time must be 1-D when trial= labels are given; got {t.ndim}-D", table=TABLE, column="time")
    for name, other in (("event", e), ("treatment", x)):
        if other.shape != t.shape:
            raise DataError(
                f"{name} has shape {other.shape} but time has shape {t.shape}; they must match",
                table=TABLE,
                column=name,
            )
    if t.size == 0:
        raise DataError("there are no participants", table=TABLE, column="time")
    if t.dtype == bool:
        raise DataError("time must be numeric, found dtype bool", table=TABLE, column="time")
    times = np.ascontiguousarray(t, dtype=np.float64)
    if not (times.min() >= 0 and times.max() < np.inf):  # a nan makes both reductions nan
        good = (times >= 0) & (times < np.inf)
        first = int(np.flatnonzero(~good.ravel())[0])
        value = times.ravel()[first]
        problem = "missing or not finite" if not np.isfinite(value) else f"negative ({value:g})"
        raise DataError(f"time is {problem}", table=TABLE, row=_where(t.shape, first), column="time")
    events = _binary("event", e, "0 (censored) or 1 (event)")
    arms = _binary("treatment", x, "0 (control) or 1 (treated)")
    if trial is None:
        n_trials, size = t.shape
        offsets = np.arange(n_trials + 1, dtype=np.int64) * size
        return times.ravel(), events, arms, offsets, None
    labels = np.asarray(trial)
    if labels.shape != t.shape:
        raise DataError(
            f"trial has shape {labels.shape} but time has shape {t.shape}; they must match",
            table=TABLE,
            column="trial",
        )
    if labels.dtype.kind not in "iu":
        raise DataError(
            f"trial must hold integer labels 0 .. n_trials - 1, found dtype {labels.dtype}",
            table=TABLE,
            column="trial",
        )
    if labels.min() < 0:
        first = int(np.flatnonzero(labels < 0)[0])
        raise DataError(
            f"trial labels must be 0 .. n_trials - 1, found {labels[first]}", table=TABLE, row=first, column="trial"
        )
    return times, events, arms, None, labels.astype(np.int64, copy=False)


def _workers(threads) -> int:
    """Threads to use: ``threads``, or every CPU this process may run on."""
    if threads is None:
        try:
            return max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be a positive integer (or None for every CPU), got {threads!r}")
    return int(threads)


def _in_threads(work, n_items: int, workers: int, *, minimum: int = 64) -> list:
    """``work(first, last)`` over ``range(n_items)`` in chunks, on ``workers`` threads.

    The work releases the GIL (NumPy sorts, numba ``nogil`` kernels), so threads run in
    parallel. Chunks are several per thread so that uneven trials balance out.
    """
    if workers <= 1 or n_items < 2 * minimum:
        return [work(0, n_items)]
    chunks = min(4 * workers, n_items // minimum)
    bounds = np.linspace(0, n_items, chunks + 1).astype(np.int64)
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(work, bounds[:-1], bounds[1:]))


def _order(times, events, arms, offsets, labels, workers):
    """The layout the kernels read, each trial sorted by time: ``(time, event, treatment, index, offsets, mode)``.

    Labelled rows are first brought together by trial (a stable counting sort, skipped
    when the labels are already in order). Whole-number times (days, say) are packed with
    the arm and event into one exact key and sorted trial by trial with NumPy's sort;
    other times are argsorted trial by trial. Trials of equal size are sorted as the rows
    of a matrix; all the sorting runs in threads. See
    :mod:`rjtrial.survival._batched_kernels` for the modes.
    """
    from rjtrial.survival import _batched_kernels as kernels

    if labels is not None:
        n_trials = int(labels.max()) + 1
        if (labels[1:] >= labels[:-1]).all():
            offsets = np.searchsorted(labels, np.arange(n_trials + 1)).astype(np.int64)
        else:
            index, offsets = kernels.group_rows(labels, n_trials)
            times, events, arms = times[index], events[index], arms[index]
    sizes = np.diff(offsets)
    no_index = np.empty(0, dtype=np.int64)
    keys = np.empty_like(times)
    exact = all(
        _in_threads(
            lambda i, j: kernels.packed_keys(times, events, arms, i, j, keys), times.size, workers, minimum=50_000
        )
    )
    if sizes.min() == sizes.max():
        size = int(sizes[0])
        if exact:
            _sort_rows(keys.reshape(-1, size), np.sort, workers)  # a view of keys: sorted in place
            return keys, events, arms, no_index, offsets, kernels.PACKED
        order = _sort_rows(times.reshape(-1, size), np.argsort, workers)
        return times, events, arms, order.ravel(), offsets, kernels.INDEXED
    # trials of different sizes: one sort per trial
    order = no_index if exact else np.empty(times.size, dtype=np.int64)

    def sort_trials(first, last):
        for j in range(first, last):
            start, stop = offsets[j], offsets[j + 1]
            if exact:
                keys[start:stop].sort()
            else:
                order[start:stop] = np.argsort(times[start:stop])

    _in_threads(sort_trials, offsets.size - 1, workers)
    if exact:
        return keys, events, arms, no_index, offsets, kernels.PACKED
    return times, events, arms, order, offsets, kernels.INDEXED


def _sort_rows(matrix: np.ndarray, sort, workers: int) -> np.ndarray:
    """Rows sorted in place (``sort=numpy.sort``; ``matrix`` must be ours) or argsorted, split between threads."""
    if sort is np.sort:
        out = matrix

        def part(first, last):
            out[first:last].sort(axis=1)

    else:
        out = np.empty(matrix.shape, dtype=np.int64)

        def part(first, last):
            out[first:last] = np.argsort(matrix[first:last], axis=1)

    _in_threads(part, len(matrix), workers, minimum=max(50_000 // max(matrix.shape[1], 1), 1))
    return out


def _two_sided(z: np.ndarray) -> np.ndarray:
    """``2 P(Z > |z|)``, exact in the tails (``erfc``)."""
    return special.erfc(np.abs(z) / np.sqrt(2.0))
