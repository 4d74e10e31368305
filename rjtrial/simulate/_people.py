"""The referral stream of simulated trials: who is randomised, when, with which strata.

Referrals arrive as a Poisson process of rate ``referrals.rate_per_month``, and each is
eligible, independently of everything else, with probability ``p``, the product of the
``[eligibility]`` probabilities (answers are independent). By the thinning theorem the
eligible referrals form a Poisson process of rate ``p`` times the referral rate, and the
ineligible ones an *independent* Poisson process of rate ``1 - p`` times it. So the ``n``
randomised people of a trial are drawn directly (:func:`draw_people`: ``n`` exponential
gaps, then their attributes), which is all a replicate trial needs, and a whole trial's
referral table adds the ineligible referrals that arrived before the last randomised one
(:func:`ineligible_referrals`), with answers drawn given that at least one is not the
eligible one. The trial is placed in time as before: the last randomised referral
``extraction.days_after_last_assignment`` days before the extraction date, or the first
referral (eligible or not) on ``referrals.start``.

Arrays are ``(n, R)`` for ``R`` replicate trials, drawn person-major (see
:mod:`rjtrial.simulate._streams`).
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass
from typing import Any, Mapping, TypedDict

import numpy as np
from scipy import special

from rjtrial.simulate._sections import DAYS_PER_MONTH, SEXES, ScenarioError
from rjtrial.simulate._streams import Streams

__all__ = ["People", "draw_people", "eligible_share", "ineligible_referrals", "date_to_day", "day_to_date"]

_EPOCH = np.datetime64("1970-01-01", "D")


def date_to_day(date: _dt.date) -> int:
    """Days since 1970-01-01."""
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


def day_to_date(day: int) -> _dt.date:
    return (_EPOCH + np.timedelta64(int(day), "D")).astype(_dt.date)


def eligible_share(sc) -> float:
    """``p``: the probability that a referral is eligible (every answer the eligible one)."""
    p = math.prod(sc.eligibility.values()) if sc.eligibility else 1.0
    if p <= 0:
        raise ScenarioError(["eligibility: with these probabilities no referral is ever eligible"], source=sc.source)
    return p


@dataclass(frozen=True)
class People:
    """The randomised referrals of ``R`` trials, in arrival order; arrays ``(n, R)``.

    ``arrival`` (days since the process started, continuous), ``assigned_day`` (days since
    1970-01-01), ``site``, ``offence`` (index offence type), ``age`` (whole years),
    ``male`` (bool), ``strata`` (level codes of each protocol stratum) and
    ``first_ineligible`` (``(R,)``: arrival of the first ineligible referral, inf if none).
    """

    arrival: np.ndarray
    assigned_day: np.ndarray
    site: np.ndarray
    offence: np.ndarray
    age: np.ndarray
    male: np.ndarray
    strata: Mapping[str, np.ndarray]
    first_ineligible: np.ndarray


def _inverse_cdf(shares, u: np.ndarray) -> np.ndarray:
    """Category of each uniform (as ``Generator.choice(p=shares)`` maps its uniform)."""
    cdf = np.cumsum(np.asarray(list(shares), dtype=float))
    cdf /= cdf[-1]
    if cdf[0] >= 1.0:  # one category (the others have no share): every uniform in [0, 1) maps to it
        return np.zeros(u.shape, dtype=np.intp)
    return np.minimum(np.searchsorted(cdf, u, side="right"), cdf.size - 1)


def _truncated_normal_from(u, mean, sd, low, high):
    a, b = special.ndtr((low - mean) / sd), special.ndtr((high - mean) / sd)
    return mean + sd * special.ndtri(a + (b - a) * u)


class _Attributes(TypedDict):
    site: np.ndarray
    offence: np.ndarray
    age: np.ndarray
    male: np.ndarray
    strata: dict[str, np.ndarray]


def _sites(sc, u: np.ndarray, elapsed: np.ndarray | None) -> np.ndarray:
    """Each referral's site from its uniform: the scenario's shares, renormalised over the sites
    referring by then when some join late (``referrals.joins``, months after the first referral)."""
    shares = np.asarray(list(sc.referrals.sites.values()), dtype=float)
    joins = sc.referrals.joins
    if not joins or elapsed is None:
        return _inverse_cdf(shares, u)
    joined_at = np.array([joins.get(name, 0.0) * DAYS_PER_MONTH for name in sc.referrals.sites])
    out = np.empty(u.shape, dtype=np.int64)
    bounds = np.unique(np.concatenate([joined_at, [np.inf]]))
    for low, high in zip(bounds[:-1], bounds[1:]):  # referrals grouped by the sites open to them
        chosen = (elapsed >= low) & (elapsed < high)
        if chosen.any():
            out[chosen] = _inverse_cdf(np.where(joined_at <= low, shares, 0.0), u[chosen])
    return out


def _attributes(sc, u: np.ndarray, elapsed: np.ndarray | None = None) -> _Attributes:
    """Site, index offence type, age, sex and shares-strata from a block of uniforms ``(..., K)``;
    ``elapsed`` (days since the trial's first referral, shape ``u.shape[:-1]``) for late sites."""
    o = sc.offenders
    age = np.floor(_truncated_normal_from(u[..., 2], o.age_mean, o.age_sd, o.age_min, o.age_max)).astype(np.int64)
    site = _sites(sc, u[..., 0], elapsed)
    offence = _inverse_cdf(sc.referrals.offence_mix.values(), u[..., 1])
    age = np.minimum(age, int(math.ceil(o.age_max)) - 1)
    male = u[..., 3] < o.male
    strata = {}
    column = 4
    for name, src in sc.strata.items():
        levels = sc.protocol.strata[name]
        if src.source == "shares":
            strata[name] = _inverse_cdf([src.shares[lvl] for lvl in levels], u[..., column])
            column += 1
        elif src.source == "age":
            strata[name] = np.searchsorted(np.asarray(src.breaks), age, side="right")
        else:
            values = {
                "site": list(sc.referrals.sites),
                "offence_type": list(sc.referrals.offence_mix),
                "sex": list(SEXES),
            }[src.source]
            lookup = np.array([levels.index(src.map[v]) for v in values])
            codes = {"site": site, "offence_type": offence, "sex": male.astype(np.int64)}[src.source]
            strata[name] = lookup[codes]
    return {
        "site": site,
        "offence": offence,
        "age": age,
        "male": male,
        "strata": {name: strata[name] for name in sc.protocol.strata},
    }


def _uniform_columns(sc) -> int:
    return 4 + sum(1 for src in sc.strata.values() if src.source == "shares")


def draw_people(sc, n: int, replicates: int, streams: Streams) -> People:
    """The ``n`` randomised people of each of ``replicates`` trials of scenario ``sc``."""
    p = eligible_share(sc)
    month = DAYS_PER_MONTH / sc.referrals.rate_per_month
    arrival = np.cumsum(streams("arrivals").exponential(month / p, (n, replicates)), axis=0)
    first_ineligible = (
        streams("referrals_ineligible").exponential(month / (1.0 - p), replicates)
        if p < 1.0
        else np.full(replicates, np.inf)
    )
    origin_time = np.minimum(arrival[0], first_ineligible)  # the trial's first referral, eligible or not
    attributes = _attributes(
        sc, streams("people").random((n, replicates, _uniform_columns(sc))), arrival - origin_time[None, :]
    )
    day = np.floor(arrival).astype(np.int64)
    if sc.referrals.start is not None:
        first = np.floor(np.minimum(arrival[0], first_ineligible)).astype(np.int64)
        origin = date_to_day(sc.referrals.start) - first
        last = int((origin + day[-1]).max())
        if last >= date_to_day(sc.extraction.date):
            raise ScenarioError(
                [
                    f"referrals.start: the trial would still be randomising on {day_to_date(last)}, "
                    f"after extraction.date {sc.extraction.date}; start earlier or raise referrals.rate_per_month"
                ],
                source=sc.source,
            )
    else:
        origin = date_to_day(sc.extraction.date) - sc.extraction.days_after_last_assignment - day[-1]
    return People(arrival=arrival, assigned_day=origin[None, :] + day, first_ineligible=first_ineligible, **attributes)


def ineligible_referrals(sc, people: People, streams: Streams) -> dict[str, Any]:
    """The ineligible referrals of one trial (``R = 1``) that arrived before its last randomised one.

    Returns ``arrival``, the attributes (``site, offence, age, male, strata``) and
    ``answers``: for each question, ``(ok, pick)`` -- whether the answer is an eligible one
    and which (index into the eligible answers if ok, into the others if not); at least one
    answer per referral is not eligible.
    """
    p = eligible_share(sc)
    end = float(people.arrival[-1, 0])
    first = float(people.first_ineligible[0])
    gen = streams("referrals_ineligible")
    if p < 1.0:
        gen.exponential(1.0, 1)  # the first arrival, drawn by draw_people from this stream
    gaps = []
    t = first
    scale = DAYS_PER_MONTH / sc.referrals.rate_per_month / (1.0 - p) if p < 1.0 else math.inf
    while t <= end:
        more = gen.exponential(scale, max(16, int((end - t) / scale * 1.2) + 16))
        gaps.append(more)
        t += float(more.sum())
    points = np.concatenate([[first], first + np.cumsum(np.concatenate(gaps))]) if gaps else np.empty(0)
    arrival = points[points <= end]
    m = arrival.size
    out: dict[str, Any] = dict(
        _attributes(
            sc,
            streams("referrals_ineligible", 1).random((m, _uniform_columns(sc))),
            arrival - min(float(people.arrival[0, 0]), first),
        )
    )
    out["arrival"] = arrival
    gen = streams("referrals_ineligible", 2)
    questions = sc.protocol.eligibility
    ok = np.ones((m, len(questions)), dtype=bool)
    todo = np.arange(m)
    while todo.size:  # answers given that the referral is not eligible: redraw any all-eligible row
        for j, q in enumerate(questions):
            ok[todo, j] = gen.random(todo.size) < sc.eligibility[q.id]
        todo = todo[ok[todo].all(axis=1)]
    out["answers"] = {q.id: (ok[:, j], _pick(gen, q, ok[:, j])) for j, q in enumerate(questions)}
    return out


def eligible_answers(sc, m: int, streams: Streams) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Answers of ``m`` randomised referrals: every answer an eligible one (which, at random)."""
    gen = streams("answers")
    ok = np.ones(m, dtype=bool)
    return {q.id: (ok, _pick(gen, q, ok)) for q in sc.protocol.eligibility}


def _pick(gen, q, ok: np.ndarray) -> np.ndarray:
    good = len(q.eligible_if)
    bad = len(q.answers) - good
    u = gen.random(ok.size)
    small = np.min_scalar_type(-len(q.answers))  # millions of referrals: the smallest integers
    return np.where(ok, np.floor(u * good), np.floor(u * max(bad, 1))).astype(small)
