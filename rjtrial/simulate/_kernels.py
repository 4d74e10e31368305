"""Compiled kernels of the generator: the street clock and the follow-up of simulated people.

**Street clock.** A person offends in *street time* (days at liberty); each custody spell
is a pause inserted at its conviction's street point ``sigma``, as long as the spell.
Calendar time, counted from the start of the assignment day, is
``cal(u) = u + (B(u) - B(0))``, where ``B(u)`` is the total length of the person's pauses at
street points strictly before ``u``. :func:`sort_pauses` groups the pauses by person
(a counting sort; people are numbered ``0 .. n-1``) and sorts each person's few pauses by
street point; :func:`calendar` then maps any (person, street point) to calendar time.
Spells never overlap except when two convictions fall on one street point.

**Follow-up.** :func:`followup` computes, per person, what :func:`rjtrial.followup.build`
computes from the person's records (offence dates, whole-day custody spells, death, the
extraction date; ``date_basis="offence"``), directly from the street-time draws: the end
of observation, reoffences and the first one, custody days observed, street days
(exposure) and the time at risk. A test holds it to :func:`rjtrial.followup.build` on the
tables of the same draws.

Every kernel is serial and releases the GIL (numba ``nogil``); nothing here validates input.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

__all__ = ["sort_pauses", "calendar", "followup", "latest_conviction"]


def _jit(function):
    """``numba.njit(cache=True, nogil=True)``, without the on-disk cache where it cannot be written."""
    try:
        return njit(cache=True, nogil=True)(function)
    except RuntimeError:  # pragma: no cover - no writable cache directory
        return njit(nogil=True)(function)


@_jit
def sort_pauses(person, sigma, length, n):  # pragma: no cover - compiled
    """Pauses grouped by person, sorted by street point within each person (stable).

    Returns ``(offsets, sigma, length, before0)``: person ``p``'s pauses are
    ``offsets[p]:offsets[p + 1]``; ``before0[p]`` is ``B(0)``, their length before street point 0.
    """
    total = person.size
    offsets = np.zeros(n + 1, dtype=np.int64)
    for i in range(total):
        offsets[person[i] + 1] += 1
    for p in range(n):
        offsets[p + 1] += offsets[p]
    fill = offsets[:-1].copy()
    s = np.empty(total, dtype=np.float64)
    w = np.empty(total, dtype=np.float64)
    for i in range(total):
        j = fill[person[i]]
        s[j] = sigma[i]
        w[j] = length[i]
        fill[person[i]] += 1
    before0 = np.zeros(n, dtype=np.float64)
    for p in range(n):
        first, last = offsets[p], offsets[p + 1]
        for j in range(first + 1, last):  # insertion sort: a person has few pauses
            key, weight = s[j], w[j]
            k = j - 1
            while k >= first and s[k] > key:
                s[k + 1] = s[k]
                w[k + 1] = w[k]
                k -= 1
            s[k + 1] = key
            w[k + 1] = weight
        b = 0.0
        for j in range(first, last):
            if s[j] < 0.0:
                b += w[j]
        before0[p] = b
    return offsets, s, w, before0


@_jit
def latest_conviction(count, sigma, floor):  # pragma: no cover - compiled
    """Per person: the latest conviction street point of its offences (laid out by person,
    ``count`` each; nan ``sigma``: never convicted), at least ``floor``."""
    out = floor.copy()
    k = 0
    for p in range(count.size):
        for _ in range(count[p]):
            if sigma[k] > out[p]:  # nan compares false
                out[p] = sigma[k]
            k += 1
    return out


@njit(nogil=True, inline="always")
def _shift(s, w, first, last, u):  # pragma: no cover - compiled
    """``B(u)``: total length of the pauses ``first:last`` at street points before ``u``.

    Branch-free (a person has few pauses, and where ``u`` falls among them is random: an
    early exit was mispredicted so often that summing over all of them is faster)."""
    b = 0.0
    for j in range(first, last):
        b += w[j] if s[j] < u else 0.0
    return b


@_jit
def calendar(offsets, s, w, before0, person, u):  # pragma: no cover - compiled
    """Calendar time (days from the start of the assignment day) of street points ``u`` of ``person``."""
    out = np.empty(u.size, dtype=np.float64)
    for i in range(u.size):
        p = person[i]
        out[i] = u[i] + (_shift(s, w, offsets[p], offsets[p + 1], u[i]) - before0[p])
    return out


@_jit
def followup(offsets, s, w, before0, o_offsets, o_street, o_sigma, o_keep, horizon, death, cutoff, window,
             include_unconvicted, out):  # pragma: no cover - compiled
    """Follow-up of every person into the rows of ``out`` (int64; rows: time_at_risk, event,
    reoffences, exposure_days, days_in_custody, followup_days, first reoffence day or -1).

    Per person ``p``: pauses ``offsets[p]:offsets[p+1]`` (sorted, from :func:`sort_pauses`);
    offences after assignment ``o_offsets[p]:o_offsets[p+1]`` at street points ``o_street``
    with conviction street points ``o_sigma`` (nan: never convicted), those with ``o_keep``
    false left out (thinned away); ``horizon`` (days from
    the assignment day to the extraction date), ``death`` (days, inf if none), ``cutoff``
    (days to the follow-up cut-off, ``extraction - conviction lag``). A record exists when
    the offence was committed before death and extraction, and was convicted before them (or
    ``include_unconvicted``); a spell exists when its conviction does.
    """
    n = horizon.size
    starts = np.empty(64, dtype=np.int64)
    ends = np.empty(64, dtype=np.int64)
    for p in range(n):
        h = min(float(horizon[p]), death[p])
        died = death[p] < horizon[p]
        end = window
        cap = horizon[p]
        if died:
            dead_on = np.int64(math.floor(death[p]))
            end = min(end, dead_on + 1)
            cap = dead_on
        end = max(min(end, cutoff[p]), 0)
        first, last = offsets[p], offsets[p + 1]
        if last - first > starts.size:
            starts = np.empty(2 * (last - first), dtype=np.int64)
            ends = np.empty(2 * (last - first), dtype=np.int64)
        # custody spells on days 0 .. window-1, merged where they overlap or touch
        m = 0
        reach = np.int64(-2)
        for j in range(first, last):
            cal = s[j] + (_shift(s, w, first, last, s[j]) - before0[p])
            if not cal < h:
                continue
            start = np.int64(math.floor(cal))
            stop = min(start + np.int64(w[j]) - 1, cap, window - 1)
            start = max(start, 0)
            if start > stop:
                continue
            if m > 0 and start <= reach + 1:
                if stop > reach:
                    reach = stop
                    ends[m - 1] = stop
            else:
                starts[m] = start
                ends[m] = stop
                reach = stop
                m += 1
        # reoffences: records dated on observed days 0 .. end-1
        count = 0
        first_day = np.int64(-1)
        for k in range(o_offsets[p], o_offsets[p + 1]):
            if not o_keep[k]:
                continue
            u = o_street[k]
            cal = u + (_shift(s, w, first, last, u) - before0[p])
            if not cal < h:
                continue
            sigma = o_sigma[k]  # nan (never convicted) fails every comparison: not on record
            if not include_unconvicted and not sigma + (_shift(s, w, first, last, sigma) - before0[p]) < h:
                continue
            day = np.int64(math.floor(cal))
            if 0 <= day < end:
                count += 1
                if first_day < 0 or day < first_day:
                    first_day = day
        custody = _custody_before(starts, ends, m, end)
        out[1, p] = 1 if count > 0 else 0
        out[2, p] = count
        out[3, p] = end - custody
        out[4, p] = custody
        out[5, p] = end
        out[6, p] = first_day
        if count > 0:
            out[0, p] = first_day + 1 - _custody_before(starts, ends, m, first_day + 1)
        else:
            out[0, p] = end - custody


@njit(nogil=True, inline="always")
def _custody_before(starts, ends, m, x):  # pragma: no cover - compiled
    """Custody days on days ``0 .. x-1`` of merged spells ``starts[:m]``, ``ends[:m]`` (inclusive)."""
    total = 0
    for j in range(m):
        if starts[j] >= x:
            break
        total += min(ends[j], x - 1) - starts[j] + 1
    return total
