"""The reoffending process of simulated people: offences, convictions, custody, death.

One implementation serves both the records of a whole trial
(:func:`rjtrial.simulate.generator.generate`, ``scope="records"``) and the replicate trials
of power by simulation (``scope="followup"``), which need only what the follow-up table
depends on. See :mod:`rjtrial.simulate.generator` for the model; how it is drawn:

Person ``i`` offends as a Poisson process in street time with intensity ``mu_i`` (frailty
and covariates); each offence is of type ``t`` with probability ``pi_t``, convicted with
probability ``q = 1 - never_convicted`` after ``lag_days`` at liberty, and a conviction
leads to custody with probability ``c_t``. By the thinning and restriction properties of
Poisson processes, the process splits into independent pieces, each drawn from its own
streams (:mod:`rjtrial.simulate._streams`):

* ``prior``: before assignment (``prior_window_days + 365`` street days), the offences
  that lead to custody: rate ``mu q sum_t pi_t c_t``, type ``~ pi_t c_t``;
* ``other`` (records only): before assignment, the others: rate ``mu (1 - q sum pi c)``,
  (type, convicted) ``~ pi_t q (1 - c_t)`` or ``pi_t (1 - q)``;
* ``post``: after assignment, up to ``W = min(window_days, horizon)`` street days
  (``horizon``: days to the extraction date or death), every offence: rate
  ``mu max(1, HR)`` for those who had a conference (else ``mu``), each kept with
  probability ``HR / max(1, HR)`` (so the untreated process is shared by every hazard
  ratio up to 1: common random numbers across effects);
* ``late``: after ``W``, up to the latest conviction (street point) of a ``post`` offence
  (kept or not), likewise: its custody can delay such a conviction past the extraction date, and so
  decide whether the offence is on record;
* ``after`` (records only): the rest, up to ``horizon``;
* the index offence (dated before assignment; convicted, sentenced and perhaps in custody
  after it).

Nothing the follow-up depends on is in ``other`` or ``after``: an offence before assignment
without custody changes no street day after it, and an offence after street day
``window_days`` falls (with its conviction and custody) after the window, and after every
conviction of an offence in it. So the replicate
path, which skips them, gives each trial the same follow-up as the whole trial drawn from
the same seed -- exactly (tested), not only in law.

People are numbered ``p = i R + r`` (person ``i`` of replicate ``r``); every quantity of
people is drawn person-major as ``(n, R)`` and offences are laid out by person, so the
first people's draws do not depend on the trial's size.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rjtrial.simulate import _kernels
from rjtrial.simulate._people import date_to_day
from rjtrial.simulate._streams import Streams

__all__ = ["HISTORY_MARGIN_DAYS", "FOLLOWUP_COLUMNS", "offending"]

HISTORY_MARGIN_DAYS = 365  # the process starts this long before the prior window
#: Columns of the follow-up arrays (``scope="followup"``), as :func:`rjtrial.followup.build` names them.
FOLLOWUP_COLUMNS = (
    "time_at_risk",
    "event",
    "reoffences",
    "exposure_days",
    "days_in_custody",
    "followup_days",
    "first_reoffence_day",
)


def _counts(gen: np.random.Generator, mean: np.ndarray) -> np.ndarray:
    """Poisson counts of people (flat, person-major), one uniform each (:func:`_kernels.poisson`)."""
    return _kernels.poisson(mean, gen.random(mean.size))


def _length(sc, gen, size) -> np.ndarray:
    """Custody lengths: whole days, at least one."""
    return np.maximum(1.0, np.rint(sc.custody.length_days.sample(gen, size)))


class _Mix:
    """The types of offences committed and what follows a conviction, by type.

    A conviction's type and whether it leads to custody are read from one uniform ``v``,
    with the (type, custody) cells ordered custody first: ``v < custody`` is custody
    (``custody = sum_t pi_t c_t``), and the type is the cell's. So the type is needed only
    for the records, never to decide custody.
    """

    def __init__(self, sc):
        types = sc.offence_types
        mix = sc.reoffending.offence_mix
        # the type of every offence drawn (tens of millions at national scale): the smallest integers
        self.codes = np.array([types.index(t) for t in mix], dtype=np.min_scalar_type(-len(types)))
        self.pi = np.array(list(mix.values()), dtype=float)
        self.pi = self.pi / self.pi.sum()
        self.c = np.array([sc.custody.probability[t] for t in mix], dtype=float)
        self.never = sc.conviction.never_convicted
        self.q = 1.0 - self.never
        cells = np.concatenate([self.pi * self.c, self.pi * (1.0 - self.c)])
        self.cells = np.cumsum(cells)
        self.custody = float(self.cells[len(mix) - 1])  # P(custody | convicted)
        self.prior = np.cumsum(self.pi * self.c)  # types of convictions with custody

    def kind(self, v: np.ndarray) -> np.ndarray:
        """Type of offences from their (type, custody) uniform."""
        return _kernels.categories(v, self.cells / self.cells[-1], self.codes)

    def prior_kind(self, v: np.ndarray) -> np.ndarray:
        """Type of convictions that led to custody (``~ pi_t c_t``)."""
        return _kernels.categories(v, self.prior / max(float(self.prior[-1]), 1e-300), self.codes)


def _piece(
    sc, mix: _Mix, streams: Streams, name: str, start, stop, rate, keep_p, shape, *, types: bool = True
) -> dict[str, np.ndarray]:
    """Offences after assignment on street time ``[start, stop)`` of each person (a Poisson
    piece of intensity ``rate``, each kept with probability ``keep_p``), with their marks:
    ``who, street, keep, sigma`` (conviction's street point, nan if never), ``v`` (type and
    custody), the custody pauses of the kept ones (``pause_who, pause_sigma, pause_length``)
    and ``count`` per person."""
    span = np.maximum(stop - start, 0.0)
    count = _counts(streams(f"{name}_count"), rate * span)
    u = streams(f"{name}_marks").random((int(count.sum()), 4))  # position, kept, convicted, (type, custody)
    who, street, keep, convicted, custody = _kernels.lay_out(count, start, span, keep_p, u, mix.never, mix.custody)
    lag = sc.conviction.lag_days.sample(streams(f"{name}_lag"), int(np.count_nonzero(convicted)))
    sigma = _kernels.convictions(street, convicted, lag)
    custody = np.flatnonzero(custody)
    length = _length(sc, streams(f"{name}_length"), custody.size)
    kept = keep[custody]
    return {
        "who": who,
        "street": street,
        "keep": keep,
        "sigma": sigma,
        # the (type, custody) uniform, for the offences' types (records only); a copy, so that
        # the piece's other uniforms are freed on return
        "v": u[:, 3].copy() if types else u[:0, 3],
        "count": count,
        "pause_who": who[custody[kept]],
        "pause_sigma": sigma[custody[kept]],
        "pause_length": length[kept],
    }


def _clock(who: list, sigma: list, length: list, size: int):
    """The street clock of every person from runs of pauses (grouped by person by
    :func:`rjtrial.simulate._kernels.sort_pauses`, in the runs' order within a person)."""
    return _kernels.sort_pauses(np.concatenate(who), np.concatenate(sigma), np.concatenate(length), size)


def offending(sc, people: dict[str, np.ndarray], streams: Streams, *, scope: str = "followup") -> dict[str, Any]:
    """Draw the reoffending process of every person in ``people`` (flat arrays, person-major).

    ``people``: ``assigned_day, age, male, index_type, site, arm, held`` (length ``n R``) and
    ``shape`` ``(n, R)``. With ``scope="followup"`` returns the follow-up arrays
    (:data:`FOLLOWUP_COLUMNS`, each ``(n, R)``); with ``scope="records"`` the records
    (see :func:`_records`).
    """
    if scope not in ("followup", "records"):
        raise ValueError(f"scope must be 'followup' or 'records', got {scope!r}")
    shape = people["shape"]
    size = shape[0] * shape[1]
    r = sc.reoffending
    types = sc.offence_types
    mix = _Mix(sc)
    by_offence = np.array([r.log_rate_by_offence.get(t, 0.0) for t in sc.referrals.offence_mix])
    by_site = np.array([r.log_rate_by_site.get(s, 0.0) for s in sc.referrals.sites])
    linear = (
        r.log_rate_per_year_of_age * (people["age"] - r.reference_age)
        + r.log_rate_male * people["male"]
        + by_offence[people["index_type"]]
        + by_site[people["site"]]
    )
    v = r.frailty_variance
    frailty = streams("frailty").gamma(1.0 / v, v, shape).ravel() if v > 0 else np.ones(size)
    mu = r.annual_rate / 365.25 * np.exp(linear) * frailty  # per street day, untreated

    extraction_day = date_to_day(sc.extraction.date)
    horizon_ext = extraction_day - people["assigned_day"]  # whole days
    rate = sc.censoring.annual_rate
    death = streams("death").exponential(365.25 / rate, shape).ravel() if rate > 0 else np.full(size, np.inf)
    horizon = np.minimum(horizon_ext, death)
    window = sc.analysis.window_days
    split = np.minimum(float(window), horizon)  # end of the "post" piece in street time
    history = float(sc.analysis.prior_window_days + HISTORY_MARGIN_DAYS)

    # before assignment: the offences that lead to custody
    prior_n = _counts(streams("prior_count"), mu * (mix.q * mix.custody * history))
    prior_who = _kernels.owners(prior_n)
    prior_u = streams("prior_marks").random((prior_who.size, 2))  # position, type
    prior_street = -history * (1.0 - prior_u[:, 0])
    prior_sigma = prior_street + sc.conviction.lag_days.sample(streams("prior_lag"), prior_who.size)
    prior_length = _length(sc, streams("prior_length"), prior_who.size)

    # the index offence: convicted (by arm), sentenced, perhaps in custody
    u_index = streams("index").random(shape + (2,)).reshape(size, 2)
    by_arm = np.array([sc.index_offence.convicted[a] for a in sc.protocol.arms])
    index_convicted = u_index[:, 0] < by_arm[people["arm"]]
    index_custody = np.flatnonzero(index_convicted & (u_index[:, 1] < sc.index_offence.custody))
    index_sigma = sc.index_offence.sentence_days_after_assignment.sample(streams("index_sentence"), shape).ravel()
    index_length = _length(sc, streams("index_length"), shape).ravel()

    # after assignment, to the end of the window (or earlier death / extraction)
    hr = r.hazard_ratio_treated
    boost = np.where(people["held"], max(1.0, hr), 1.0)
    keep_p = np.where(people["held"], hr / max(1.0, hr), 1.0)
    rate_after = mu * boost  # the intensity of every piece after assignment
    for_records = scope == "records"
    post = _piece(sc, mix, streams, "post", np.zeros(size), split, rate_after, keep_p, shape, types=for_records)
    pieces = [post]

    # after the window, up to the latest conviction of an offence in it
    late_end = split
    if scope == "records" or not sc.extraction.include_unconvicted:
        # (over every drawn offence, kept or thinned away, so that the piece is the same for every effect)
        latest = _kernels.latest_conviction(post["count"], post["sigma"], split)
        late_end = np.maximum(np.minimum(latest, horizon), split)
        pieces.append(_piece(sc, mix, streams, "late", split, late_end, rate_after, keep_p, shape, types=for_records))

    pause_who = [prior_who, index_custody] + [piece["pause_who"] for piece in pieces]
    pause_sigma = [prior_sigma, index_sigma[index_custody]] + [piece["pause_sigma"] for piece in pieces]
    pause_length = [prior_length, index_length[index_custody]] + [piece["pause_length"] for piece in pieces]

    if scope == "followup":
        offsets, s, w, before0 = _clock(pause_who, pause_sigma, pause_length, size)
        o_offsets = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(post["count"], out=o_offsets[1:])
        cutoff = extraction_day - sc.analysis.conviction_lag_days - people["assigned_day"]
        out = np.empty((len(FOLLOWUP_COLUMNS), size), dtype=np.int64)
        _kernels.followup(
            offsets,
            s,
            w,
            before0,
            o_offsets,
            post["street"],
            post["sigma"],
            post["keep"],
            horizon_ext,
            death,
            cutoff,
            int(window),
            bool(sc.extraction.include_unconvicted),
            out,
        )
        result = {name: out[j].reshape(shape) for j, name in enumerate(FOLLOWUP_COLUMNS)}
        result["event"] = result["event"].astype(bool)
        return result

    # records only: before assignment without custody, after the window, the index offence's date
    other_n = _counts(streams("other_count"), mu * ((1.0 - mix.q * mix.custody) * history))
    other_who = _kernels.owners(other_n)
    u = streams("other_marks").random((other_who.size, 2))  # position, (type, convicted)
    other_street = -history * (1.0 - u[:, 0])
    cells = np.cumsum(np.concatenate([mix.pi * mix.q * (1.0 - mix.c), mix.pi * (1.0 - mix.q)]))  # convicted first
    cells /= max(cells[-1], 1e-300)
    other_kind = _kernels.categories(u[:, 1], cells, mix.codes)
    other_convicted = u[:, 1] < cells[mix.codes.size - 1]
    del u  # (the records of a million people are large: free each piece's draws when done)
    other_lag = sc.conviction.lag_days.sample(streams("other_lag"), int(np.count_nonzero(other_convicted)))
    other_sigma = _kernels.convictions(other_street, other_convicted, other_lag)

    after = _piece(sc, mix, streams, "after", late_end, np.maximum(horizon, late_end), rate_after, keep_p, shape)
    pieces.append(after)
    pause_who.append(after["pause_who"])
    pause_sigma.append(after["pause_sigma"])
    pause_length.append(after["pause_length"])

    index_street = -np.maximum(
        sc.index_offence.days_before_assignment.sample(streams("index_date"), shape).ravel(), 1e-6
    )
    index_kind = np.array([types.index(t) for t in sc.referrals.offence_mix])[people["index_type"]]
    everyone = np.ones(0, dtype=bool)  # no thinning
    pieces_out = [  # who, street point, conviction street point (nan: never convicted), type, kept
        (prior_who, prior_street, prior_sigma, mix.prior_kind(prior_u[:, 1]), everyone),
        (other_who, other_street, other_sigma, other_kind, everyone),
        (np.arange(size), index_street, np.where(index_convicted, index_sigma, np.nan), index_kind, everyone),
    ] + [(p["who"], p["street"], p["sigma"], mix.kind(p["v"]), p["keep"]) for p in pieces]
    clock = _clock(pause_who, pause_sigma, pause_length, size)
    return _records(
        sc, people, clock, pieces_out, horizon_ext=horizon_ext, death=death, horizon=horizon, frailty=frailty, mu=mu
    )


def _records(sc, people, clock, pieces, *, horizon_ext, death, horizon, frailty, mu) -> dict[str, Any]:
    """The records extract of the people: offences, convictions, custody spells, deaths, priors.

    ``pieces``: ``(who, street, sigma, kind, kept)`` per kind of offence, each ordered by
    person (``kept``: false for offences thinned away, or empty when none is). Returns ``who, offence_day,
    conviction_day`` (NaT as int64 min), ``type``, ``bounds`` (the pieces' rows), ``custody_who,
    custody_start, custody_end`` (inclusive days, in order of person and start),
    ``died_day``, ``death`` (days after assignment, inf if none), ``prior`` (convictions known
    at assignment, by person and type), ``frailty`` and ``annual_rate`` (untreated offences
    per street year).
    """
    nat = np.iinfo(np.int64).min
    size = horizon.size
    assigned = people["assigned_day"]
    n_types = len(sc.offence_types)
    prior = np.zeros((size, n_types), dtype=np.int64)
    total = sum(piece[0].size for piece in pieces)
    columns = {
        "who": np.empty(total, dtype=np.int64),
        "offence_day": np.empty(total, dtype=np.int64),
        "conviction_day": np.empty(total, dtype=np.int64),
        "type": np.empty(total, dtype=np.min_scalar_type(-n_types)),
    }
    bounds = [0]
    for who, street, sigma, kind, kept in pieces:
        bounds.append(
            _kernels.extract(
                *clock,
                who,
                street,
                sigma,
                kept,
                kind,
                assigned,
                horizon,
                bool(sc.extraction.include_unconvicted),
                int(sc.analysis.prior_window_days),
                columns["who"],
                columns["offence_day"],
                columns["conviction_day"],
                columns["type"],
                bounds[-1],
                prior,
            )
        )
    died = death < horizon_ext
    died_rel = np.floor(np.where(died, death, 0)).astype(np.int64)
    died_day = np.where(died, assigned + died_rel, nat)
    spell_who, start, end = _kernels.spells(*clock, horizon, np.where(died, died_rel, horizon_ext))
    return {
        **{k: v[: bounds[-1]] for k, v in columns.items()},
        "bounds": np.asarray(bounds, dtype=np.int64),
        "custody_who": spell_who,
        "custody_start": assigned[spell_who] + start,
        "custody_end": assigned[spell_who] + end,
        "died_day": died_day,
        "death": death,
        "prior": prior,
        "frailty": frailty,
        "annual_rate": mu * 365.25,
    }
