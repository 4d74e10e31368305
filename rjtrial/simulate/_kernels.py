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

__all__ = [
    "sort_pauses",
    "calendar",
    "followup",
    "latest_conviction",
    "lay_out",
    "convictions",
    "owners",
    "extract",
    "spells",
    "order_runs",
    "categories",
    "poisson",
    "count_digits",
]


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
def poisson(lam, u):  # pragma: no cover - compiled
    """Poisson counts with means ``lam`` by inverting the CDF at the uniforms ``u`` (one each).

    Below a mean of 30 the CDF is summed from 0; above, from the mode, whose probability
    comes from ``lgamma`` and whose CDF is summed downwards until the terms vanish, then the
    search goes up or down from the mode. Exact in law (up to the floating-point error of the
    CDF, ~1e-15); one uniform per count, so a larger mean never gives a smaller count from the
    same uniform.
    """
    out = np.empty(lam.size, dtype=np.int64)
    for i in range(lam.size):
        m, v = lam[i], u[i]
        if not m > 0.0:
            out[i] = 0
            continue
        if m < 30.0:
            p = math.exp(-m)
            cdf = p
            k = 0
            while v >= cdf and k < 1000:
                k += 1
                p *= m / k
                cdf += p
            out[i] = k
            continue
        mode = math.floor(m)
        top = math.exp(mode * math.log(m) - m - math.lgamma(mode + 1.0))
        cdf = top
        q = top
        j = mode
        while j > 0:
            q *= j / m
            cdf += q
            j -= 1
            if q < 1e-18 * cdf:
                break
        k = mode
        p = top
        if v < cdf:  # at or below the mode: step down while the CDF below k still exceeds v
            while k > 0 and v < cdf - p:
                cdf -= p
                p *= k / m
                k -= 1
        else:
            while v >= cdf and k < mode + 100_000:
                k += 1
                p *= m / k
                cdf += p
        out[i] = k
    return out


@_jit
def owners(count):  # pragma: no cover - compiled
    """``numpy.repeat(arange(count.size), count)``, several times faster."""
    who = np.empty(count.sum(), dtype=np.int64)
    k = 0
    for p in range(count.size):
        for _ in range(count[p]):
            who[k] = p
            k += 1
    return who


@_jit
def lay_out(count, start, span, keep_p, u, never, custody_share):  # pragma: no cover - compiled
    """Offences of a Poisson piece laid out by person (``count`` each), from their uniforms ``u``
    (columns: position, kept, convicted, type and custody): ``who``, street point
    ``start + span u0``, ``keep`` (``u1 < keep_p``), ``convicted`` (``u2 >= never``) and
    ``custody`` (convicted and ``u3 < custody_share``)."""
    total = u.shape[0]
    who = np.empty(total, dtype=np.int64)
    street = np.empty(total, dtype=np.float64)
    keep = np.empty(total, dtype=np.bool_)
    convicted = np.empty(total, dtype=np.bool_)
    custody = np.empty(total, dtype=np.bool_)
    k = 0
    for p in range(count.size):
        for _ in range(count[p]):
            who[k] = p
            street[k] = start[p] + span[p] * u[k, 0]
            keep[k] = u[k, 1] < keep_p[p]
            c = u[k, 2] >= never
            convicted[k] = c
            custody[k] = c and u[k, 3] < custody_share
            k += 1
    return who, street, keep, convicted, custody


@_jit
def convictions(street, convicted, lag):  # pragma: no cover - compiled
    """Street point of each offence's conviction: ``street + lag`` for the convicted (``lag``
    holds theirs, in order), nan for the others."""
    sigma = np.empty(street.size, dtype=np.float64)
    j = 0
    for k in range(street.size):
        if convicted[k]:
            sigma[k] = street[k] + lag[j]
            j += 1
        else:
            sigma[k] = np.nan
    return sigma


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

    The pauses are sorted by street point, so those before ``u`` come first: the sum stops
    at the first one at or after ``u`` (nan ``u``: none), adding the same lengths in the
    same order as a sum over all of them would."""
    b = 0.0
    j = first
    while j < last and s[j] < u:
        b += w[j]
        j += 1
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
def followup(
    offsets,
    s,
    w,
    before0,
    o_offsets,
    o_street,
    o_sigma,
    o_keep,
    horizon,
    death,
    cutoff,
    window,
    include_unconvicted,
    out,
):  # pragma: no cover - compiled
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


_NAT = np.iinfo(np.int64).min


@_jit
def extract(
    offsets,
    s,
    w,
    before0,
    who,
    street,
    sigma,
    kept,
    kind,
    assigned,
    horizon,
    include_unconvicted,
    prior_window,
    out_who,
    out_offence,
    out_conviction,
    out_kind,
    start,
    prior,
):  # pragma: no cover
    """Write the offences on record into ``out_*`` from position ``start``; return the end.

    Offences at street points ``street`` of people ``who`` with convictions at ``sigma``
    (nan: never convicted), of type ``kind``; rows with ``kept`` false (thinned away;
    ``kept`` empty: none) are left out. An offence is on record when committed before
    ``horizon`` (extraction or death) and convicted before it (or ``include_unconvicted``).
    Written: the person, the offence and conviction days (days since 1970-01-01, from the
    assignment day ``assigned``; ``_NAT``: no conviction on record) and the type. A conviction
    known at assignment of an offence of the ``prior_window`` days before it adds one to
    ``prior[person, type]``.
    """
    thinned = kept.size > 0
    k = start
    for i in range(who.size):
        if thinned and not kept[i]:
            continue
        p = who[i]
        first, last = offsets[p], offsets[p + 1]
        h = horizon[p]
        cal = street[i] + (_shift(s, w, first, last, street[i]) - before0[p])
        if not cal < h:
            continue
        convicted_on = sigma[i] + (_shift(s, w, first, last, sigma[i]) - before0[p])
        known = convicted_on < h  # nan: False
        if not (known or include_unconvicted):
            continue
        day = np.int64(math.floor(cal))
        out_who[k] = p
        out_offence[k] = assigned[p] + day
        out_conviction[k] = assigned[p] + np.int64(math.floor(convicted_on)) if known else _NAT
        out_kind[k] = kind[i]
        if known and convicted_on < 0.0 and cal < 0.0 and day >= -prior_window:
            prior[p, kind[i]] += 1
        k += 1
    return k


@_jit
def categories(u, cdf, codes):  # pragma: no cover - compiled
    """``codes[j % codes.size]`` for the first ``j`` with ``u < cdf[j]`` (the last if none): an
    inverse CDF over a few cells (a linear scan beats a binary search there). Of ``codes``' dtype."""
    out = np.empty(u.size, dtype=codes.dtype)
    last = cdf.size - 1
    for i in range(u.size):
        j = 0
        while j < last and cdf[j] <= u[i]:
            j += 1
        out[i] = codes[j % codes.size]
    return out


@_jit
def spells(offsets, s, w, before0, horizon, cap):  # pragma: no cover - compiled
    """Custody spells on record: every pause whose conviction (its start) is before ``horizon``;
    ``(who, start, end)`` in days relative to the assignment day, the end (inclusive) capped at
    ``cap`` (death or extraction). In order of person, then start."""
    n = horizon.size
    total = 0
    for p in range(n):
        first, last = offsets[p], offsets[p + 1]
        for j in range(first, last):
            if s[j] + (_shift(s, w, first, last, s[j]) - before0[p]) < horizon[p]:
                total += 1
    who = np.empty(total, dtype=np.int64)
    start = np.empty(total, dtype=np.int64)
    end = np.empty(total, dtype=np.int64)
    k = 0
    for p in range(n):
        first, last = offsets[p], offsets[p + 1]
        for j in range(first, last):
            cal = s[j] + (_shift(s, w, first, last, s[j]) - before0[p])
            if cal < horizon[p]:
                who[k] = p
                start[k] = np.int64(math.floor(cal))
                end[k] = min(start[k] + np.int64(w[j]) - 1, cap[p])
                k += 1
    return who, start, end


@_jit
def order_runs(who, day, bounds, n):  # pragma: no cover - compiled
    """The order by person, then day, of rows given as runs ``bounds[j]:bounds[j + 1]`` each
    ordered by person: what a stable argsort by (person, day) gives, without sorting them all."""
    runs = bounds.size - 1
    order = np.empty(who.size, dtype=np.int64)
    pointer = bounds[:-1].copy()
    k = 0
    for p in range(n):
        first = k
        for j in range(runs):
            i = pointer[j]
            end = bounds[j + 1]
            while i < end and who[i] == p:
                order[k] = i
                k += 1
                i += 1
            pointer[j] = i
        for a in range(first + 1, k):  # stable insertion sort by day
            row = order[a]
            key = day[row]
            b = a - 1
            while b >= first and day[order[b]] > key:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = row
    return order


@_jit
def count_digits(codes, start):  # pragma: no cover - compiled
    """Write ``i + 1`` in decimal, zero-padded, into columns ``start:`` of row ``i`` of ``codes``
    (character codes, ``(n, width)``): the numbering of generated ids, without a Python
    string per number (the caller views the rows as fixed-width strings)."""
    n, width = codes.shape
    for i in range(n):
        v = i + 1
        for j in range(width - 1, start - 1, -1):
            codes[i, j] = 48 + v % 10
            v //= 10
