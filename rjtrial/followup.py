"""Follow-up: criminal records → one analysis row per trial participant.

:func:`build` joins the participants table (one row per random assignment, as
:meth:`rjtrial.Registry.export` produces it) with offence records and, optionally,
custody spells, and returns the participants table with the follow-up columns
added: time to first reoffence counted in street time, the event indicator, counts
of reoffences and prior offences, exposure and custody days.
:func:`proven_reoffending` is the England and Wales *proven reoffending* preset.

Whole-array operations throughout (sorting, ``np.searchsorted``, ``np.bincount``): no
Python loop over people, offences or days.

Notes
-----
**Days.** Every date is a calendar date; a time of day is dropped (a timezone-aware
value is taken at its own wall-clock date). Day *k* of a participant is the date
``randomised_on + k`` days; day 0 is the assignment day.

**Window.** Follow-up covers days ``0, 1, ..., window_days - 1``. Observation ends
earlier (the end is *exclusive*: ``followup_days`` is the number of days observed)
at the first of

- the end of the window, day ``window_days`` (``end_reason = "window_end"``);
- the day after the participant's censor date (death, emigration: the censor date
  itself is observed) — ``end_reason = "censor_date"``;
- the follow-up cut-off ``extraction_date - conviction_lag_days``: the days before
  the cut-off are observed, the cut-off itself is not (records extracted on a day
  are complete up to the day before) — ``end_reason = "extraction"``.

Ties are reported in that order. A participant whose cut-off falls on or before
the assignment day is observed for 0 days (event ``False``, time 0).

**Nothing after the extraction.** Records cannot be dated after they were extracted: an
assignment, a censor date, an offence or the start of a custody spell after the
extraction date (without ``extraction_date``: after today, UTC) is an error naming its
row, and so is an extraction date before every randomisation. A conviction dated after
the extraction is not an error (the record is ignored as unknown at extraction, below)
unless it is also after today; a custody spell may end after the extraction (a release
date still to come).

**Custody.** ``start`` and ``end`` are inclusive dates: every day from ``start``
to ``end`` is a day in custody (if your records give the release date as the first
day at liberty, pass ``end - 1``). Overlapping and adjacent spells of a person are
merged before counting, so no day is counted twice. A *street day* is an observed
day not in custody.

**Which offences count.** Each offence is dated by its *basis date*: the offence
date (``date_basis="offence"``, the default) or the conviction date
(``date_basis="conviction"``). A record counts as a reoffence when its basis date
falls on an observed day (``0 <= day < followup_days``), and as a prior offence
when it falls on one of the ``prior_window_days`` days before the assignment day
(days ``-prior_window_days ... -1``), provided that

- it is *known*: when ``extraction_date`` is given, a record whose conviction date is
  on or after the extraction date did not exist at extraction and is ignored;
- with ``offence_types``, its type is one of them (for reoffences and priors alike);
- with ``date_basis="conviction"``: it has a conviction date (an unconvicted offence
  is not a conviction) and, for a reoffence, the offence was committed on or after
  the assignment day (a conviction after assignment for an earlier offence is not a
  *re*-offence; it is counted neither as a reoffence nor as a prior);
- with ``proven_within_days`` (reoffences only): the offence is proven, i.e. has a
  conviction date before day ``window_days + proven_within_days``.

A missing conviction date means "not (yet) convicted"; with
``date_basis="offence"`` and no proven requirement the offence counts all the same.
Several records on one day count as several offences. An offence on a custody day
counts, but that day is not at risk. An offence on the assignment day is a
reoffence (day 0 is in the window; the records cannot order it against the moment
of assignment): remove the index offence from ``offences``, or date it before
assignment, if it is recorded on that day. The index offence, when dated before
assignment, is one of the ``prior_offences``.

**Time at risk** (a day is one unit of exposure). ``exposure_days`` is the number of
street days observed. With an event, ``time_at_risk`` is the number of street days
from day 0 *to the first reoffence's day inclusive*: a first reoffence on day *d*
outside custody gives ``d + 1`` minus the custody days before it; a reoffence on the
assignment day gives 1. Without an event ``time_at_risk = exposure_days``. So a
participant seen through day *d* has been at risk for ``d + 1`` days whether or not
they offended that day, the offence day is counted as a day lived at liberty, event
and censoring times on the same day tie (the censored person is still in the risk
set at the event, as Kaplan–Meier and Cox assume), and event times are never 0
unless the first reoffence happens in custody before any street day. A time of 0
(e.g. custody for the whole follow-up) is reported as it is: lifelines and R's
``coxph``/``survfit`` accept it, R's ``survreg`` does not; the Campbell review's
sensitivity analysis excluded offenders with no street time. We chose ``d + 1``
over ``d`` (which makes a reoffence on the assignment day a zero time) and over
``d + 0.5`` (a non-integer artefact).

**Rows in error messages** are 1-based positions in the input table, in its order
(row 1 is the first data row, as in a spreadsheet below its header), whatever the
index. Rows of offences and custody belonging to people who are not participants
are not checked: they are ignored and counted in a :class:`FollowupWarning`.

References
----------
Ministry of Justice (2024). *Proven reoffending statistics: guide to proven
reoffending statistics*. https://www.gov.uk/government/collections/proven-reoffending-statistics

Sherman, L. W., Strang, H., Mayo-Wilson, E., Woods, D. J. and Ariel, B. (2015). Are
restorative justice conferences effective in reducing repeat offending? Findings
from a Campbell systematic review. *Journal of Quantitative Criminology* 31, 1–24.
doi:10.1007/s10940-014-9222-9
"""

from __future__ import annotations

import sys
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from types import FrameType
from typing import Collection, TypedDict

import numpy as np
import pandas as pd

from rjtrial._record_days import NAT as _NAT
from rjtrial._record_days import Latest as _Latest
from rjtrial._record_days import days as _days
from rjtrial._record_days import fail as _fail
from rjtrial._record_days import iso as _iso
from rjtrial._record_days import more as _more
from rjtrial._record_days import positive_int as _positive_int
from rjtrial._record_days import require as _require
from rjtrial._record_days import stamp_day as _stamp_day
from rjtrial._record_days import to_datetime as _to_datetime
from rjtrial._version import __version__
from rjtrial.errors import DataError, RjtrialWarning

__all__ = ["FollowupWarning", "OUTPUT_COLUMNS", "PROVEN_REOFFENDING", "build", "proven_reoffending"]

#: Columns :func:`build` adds, in order, after the participants' own columns.
OUTPUT_COLUMNS = (
    "time_at_risk",
    "event",
    "first_reoffence_on",
    "reoffences",
    "prior_offences",
    "exposure_days",
    "days_in_custody",
    "followup_days",
    "end_on",
    "end_reason",
)


#: England and Wales proven reoffending: a one-year follow-up, offences proven within
#: it or a further six-month waiting period (six months taken as 183 days).
class _Preset(TypedDict):
    window_days: int
    date_basis: str
    proven_within_days: int


PROVEN_REOFFENDING: _Preset = {"window_days": 365, "date_basis": "offence", "proven_within_days": 183}

END_REASONS = ("window_end", "censor_date", "extraction")
DATE_BASES = ("offence", "conviction")
_NO_EVENT = np.iinfo(np.int64).max


class FollowupWarning(RjtrialWarning):
    """Records were ignored by the follow-up builder (e.g. people who are not participants)."""


class _DefaultCensor(str):
    """The default ``censor_column``: ``"died_on"``, used only when that column exists."""


_DIED_ON = _DefaultCensor("died_on")


def build(
    participants: pd.DataFrame,
    offences: pd.DataFrame,
    *,
    custody: pd.DataFrame | None = None,
    window_days: int = 730,
    date_basis: str = "offence",
    conviction_lag_days: int = 0,
    extraction_date=None,
    prior_window_days: int = 730,
    proven_within_days: int | None = None,
    allow_future_extraction: bool = False,
    offence_types: Collection[str] | None = None,
    censor_column: str | None = _DIED_ON,
    id_column: str = "id",
    assigned_on_column: str = "randomised_on",
    offence_date_column: str = "offence_date",
    conviction_date_column: str = "conviction_date",
    offence_type_column: str = "offence_type",
    custody_start_column: str = "start",
    custody_end_column: str = "end",
) -> pd.DataFrame:
    """One analysis row per participant: time to first reoffence in street time, counts, exposure.

    The conventions (days, window, custody, which offences count, time at risk) are
    defined in the module's Notes (``help(rjtrial.followup)``).

    Parameters
    ----------
    participants : DataFrame
        One row per participant: ``id`` (unique, not missing) and ``randomised_on``
        (the assignment date, not missing); any other columns are passed through.
        The table from :meth:`rjtrial.Registry.export` is accepted as it is.
    offences : DataFrame
        One row per offence: ``id``, ``offence_date`` (required),
        ``conviction_date`` (missing = not convicted; the column is needed only with
        ``date_basis="conviction"`` or ``proven_within_days``), ``offence_type``
        (needed only with ``offence_types``).
    custody : DataFrame, optional
        Custody spells: ``id``, ``start``, ``end`` (inclusive dates, both required).
    window_days : int, default 730
        Length of follow-up in days (the JRC trials followed offenders for 2 years).
    date_basis : {"offence", "conviction"}, default "offence"
        Which date places an offence in the window.
    conviction_lag_days : int, default 0
        Follow-up is censored at ``extraction_date - conviction_lag_days``, because
        offences committed later may not yet be proven (counted back from today when no
        ``extraction_date`` is given).
    extraction_date : date-like, optional
        When the records were extracted. Records convicted on or after it are ignored and
        follow-up is censored there (``end_reason = "extraction"``). Default: today (UTC),
        recorded in ``attrs`` (``extraction_date_source = "today"``) -- follow-up never runs
        into the future. A date after today is refused unless ``allow_future_extraction``.
    prior_window_days : int, default 730
        Days before assignment in which ``prior_offences`` are counted.
    proven_within_days : int, optional
        Count a reoffence only if it is proven (convicted or cautioned) before day
        ``window_days + proven_within_days``. Only with ``date_basis="offence"``.
    allow_future_extraction : bool, default False
        Accept an extraction date after today (simulated records only).
    offence_types : collection of str, optional
        Count only offences of these types.
    censor_column : str or None, default "died_on"
        Participants column holding the last day observed (death, emigration);
        missing values mean no such date. The default is used only if the column
        exists; ``None`` ignores it.
    id_column, assigned_on_column, offence_date_column, conviction_date_column, \
offence_type_column, custody_start_column, custody_end_column : str
        Column names, if not the defaults. ``id_column`` names the person in all
        three tables.

    Returns
    -------
    DataFrame
        The participants table (same rows, order and index, every column kept),
        followed by:

        - ``time_at_risk`` (int): street days from the assignment day to the first
          reoffence inclusive, or to the end of observation;
        - ``event`` (bool): a reoffence was observed;
        - ``first_reoffence_on`` (datetime64): basis date of the first reoffence, or NaT;
        - ``reoffences`` (int): reoffences observed;
        - ``prior_offences`` (int): offences in the ``prior_window_days`` before assignment;
        - ``exposure_days`` (int): street days observed;
        - ``days_in_custody`` (int): custody days observed;
        - ``followup_days`` (int): days observed, ``exposure_days + days_in_custody``;
        - ``end_on`` (datetime64): first day *not* observed, ``randomised_on + followup_days``;
        - ``end_reason`` (category): ``"window_end"``, ``"censor_date"`` or ``"extraction"``.

        ``attrs`` keeps the participants' attrs and records every parameter, the
        follow-up cut-off, the counts of records ignored and the rjtrial version.

    Raises
    ------
    DataError
        Bad input, naming the table (``participants``, ``offences``, ``custody``), the
        row (1-based position in the input) and the column: a missing column,
        missing or unparsable dates, a participant without an assignment date,
        duplicate or missing participant ids, a missing person id in offences or
        custody, custody ending before it starts, a conviction before its offence, a
        censor date before assignment, a participants column clashing with an output; no
        participants; an assignment, censor date, offence or custody start dated after the
        extraction date (without one: after today), a conviction dated after today, and an
        extraction date before every randomisation. A date beyond pandas' range (e.g.
        2999-01-01) is reported as such a late date, not as unparsable.
    ValueError
        A parameter outside its allowed values.

    Warns
    -----
    FollowupWarning
        Offences or custody spells of people who are not participants were ignored
        (with their count).

    Examples
    --------
    >>> import pandas as pd
    >>> from rjtrial import followup
    >>> participants = pd.DataFrame({"id": ["a", "b"], "arm": ["rj", "control"],
    ...                              "randomised_on": pd.to_datetime(["2020-01-01", "2020-01-01"])})
    >>> offences = pd.DataFrame({"id": ["a", "a", "b"],
    ...                          "offence_date": ["2019-06-01", "2020-03-01", "2023-01-01"],
    ...                          "conviction_date": ["2019-09-01", "2020-05-01", None]})
    >>> custody = pd.DataFrame({"id": ["a"], "start": ["2020-01-11"], "end": ["2020-01-20"]})
    >>> table = followup.build(participants, offences, custody=custody)
    >>> table[["id", "time_at_risk", "event", "reoffences", "prior_offences", "exposure_days"]]
      id  time_at_risk  event  reoffences  prior_offences  exposure_days
    0  a            51   True           1               1            720
    1  b           730  False           0               0            730

    ``a`` reoffended on 2020-03-01, day 60 (31 days of January + 29 of February): 61
    days to that day inclusive, less 10 days in custody (11–20 January), gives 51.
    """
    columns = {
        "id": id_column,
        "assigned_on": assigned_on_column,
        "offence_date": offence_date_column,
        "conviction_date": conviction_date_column,
        "offence_type": offence_type_column,
        "custody_start": custody_start_column,
        "custody_end": custody_end_column,
    }
    settings = _settings(
        window_days,
        conviction_lag_days,
        prior_window_days,
        date_basis,
        proven_within_days,
        extraction_date,
        allow_future_extraction,
        offence_types,
    )
    for name, frame in (("participants", participants), ("offences", offences), ("custody", custody)):
        if frame is not None and not isinstance(frame, pd.DataFrame):
            raise TypeError(f"{name} must be a pandas DataFrame, not {type(frame).__name__}")
    people = _participants(participants, settings, columns, censor_column)
    record = _reoffending(offences, people, settings, columns)
    custody_before, ignored = _custody(custody, people, settings, columns)
    return _table(
        participants,
        people,
        record,
        custody_before,
        settings,
        columns,
        {"offences": record.ignored, **({"custody": ignored} if ignored is not None else {})},
    )


@dataclass(frozen=True)
class _Settings:
    """The checked parameters of :func:`build`."""

    window: int
    lag: int
    prior_window: int
    date_basis: str
    proven: int | None
    today: int
    extraction: int
    extraction_source: str
    latest: _Latest
    types: list[str] | None


@dataclass(frozen=True)
class _People:
    """The participants: ids, assignment days, and how long each is followed (days after assignment)."""

    n: int
    index: pd.Index
    assigned: np.ndarray
    end: np.ndarray
    reason: np.ndarray
    censor_name: str | None
    cutoff: int | None


@dataclass(frozen=True)
class _Reoffending:
    """Counted from the offences: first reoffence (days after assignment), counts, ignored rows."""

    first: np.ndarray
    event: np.ndarray
    reoffences: np.ndarray
    prior_offences: np.ndarray
    ignored: dict[str, int]


def _settings(
    window_days,
    conviction_lag_days,
    prior_window_days,
    date_basis,
    proven_within_days,
    extraction_date,
    allow_future_extraction,
    offence_types,
) -> _Settings:
    """Step 1 of :func:`build`: the parameters checked; the extraction day (default today)."""
    window = _positive_int("window_days", window_days, minimum=1)
    lag = _positive_int("conviction_lag_days", conviction_lag_days, minimum=0)
    prior_window = _positive_int("prior_window_days", prior_window_days, minimum=0)
    if date_basis not in DATE_BASES:
        raise ValueError(f"date_basis must be one of {DATE_BASES}, not {date_basis!r}")
    proven = None
    if proven_within_days is not None:
        proven = _positive_int("proven_within_days", proven_within_days, minimum=0)
        if date_basis != "offence":
            raise ValueError('proven_within_days needs date_basis="offence" (a conviction is proven by definition)')
    today = _stamp_day(pd.Timestamp(datetime.now(timezone.utc).date()))
    extraction_source = "given"
    if extraction_date is not None:
        try:
            stamp = pd.Timestamp(extraction_date)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"extraction_date is not a date: {extraction_date!r}") from exc
        if pd.isna(stamp):
            raise ValueError("extraction_date is missing (NaT)")
        extraction = _stamp_day(stamp)
        if extraction > today and not allow_future_extraction:
            raise ValueError(
                f"extraction_date {_iso(extraction)} is in the future (today is {_iso(today)}): records cannot have "
                "been extracted yet; for simulated records pass allow_future_extraction=True"
            )
    else:  # records are extracted when they are read: follow-up cannot run past today
        extraction, extraction_source = today, "today"
    # No record can be dated after the extraction.
    latest = _Latest(extraction, "extraction" if extraction_source == "given" else "today")
    if isinstance(offence_types, str):
        offence_types = [offence_types]
    types = None if offence_types is None else list(offence_types)
    return _Settings(window, lag, prior_window, date_basis, proven, today, extraction, extraction_source, latest, types)


def _participants(participants: pd.DataFrame, settings: _Settings, columns: dict[str, str], censor_column) -> _People:
    """Step 2 of :func:`build`: participants checked; each one's end of follow-up and its reason."""
    id_column, assigned_on_column = columns["id"], columns["assigned_on"]
    window, extraction, latest = settings.window, settings.extraction, settings.latest
    _require(participants, "participants", [id_column, assigned_on_column])
    if len(participants) == 0:
        raise DataError("the table has no rows: there is nobody to follow up", table="participants")
    for name in OUTPUT_COLUMNS:
        if name in participants.columns:
            raise DataError(
                "clashes with an output column of the follow-up; rename it", table="participants", column=name
            )
    pid = participants[id_column]
    _fail("participants", id_column, pid.isna().to_numpy(), "missing participant id")
    duplicated = pid.duplicated(keep="first").to_numpy()
    if duplicated.any():
        pos = int(np.flatnonzero(duplicated)[0])
        first_row = int(np.flatnonzero((pid == pid.iloc[pos]).to_numpy())[0])
        raise DataError(
            f"duplicate participant id {pid.iloc[pos]!r} (first on row {first_row + 1})" + _more(int(duplicated.sum())),
            table="participants",
            row=pos + 1,
            column=id_column,
        )
    n = len(participants)
    pid_values = pid.to_numpy()
    assigned, present = _days(participants, "participants", assigned_on_column, ids=pid_values)
    _fail("participants", assigned_on_column, ~present, "participant without an assignment date", pid_values)
    if (assigned > extraction).all():
        raise DataError(
            f"the extraction date {_iso(extraction)} is before every randomisation (the earliest on "
            f"{_iso(assigned.min())}): nobody can have been followed up; check extraction_date",
            table="participants",
            column=assigned_on_column,
        )
    latest.check("participants", assigned_on_column, assigned, present, "randomised on", pid_values)

    end = np.full(n, window, dtype=np.int64)
    reason = np.zeros(n, dtype=np.int8)
    censor_name = censor_column
    if isinstance(censor_column, _DefaultCensor) and censor_column not in participants.columns:
        censor_name = None
    if censor_name is not None:
        _require(participants, "participants", [censor_name])
        censor, has_censor = _days(participants, "participants", censor_name, ids=pid_values)
        latest.check("participants", censor_name, censor, has_censor, "censor date", pid_values)
        censor_rel = censor - assigned
        _fail(
            "participants",
            censor_name,
            has_censor & (censor_rel < 0),
            "censor date before the assignment date",
            pid_values,
        )
        censor_end = np.where(has_censor, censor_rel + 1, window)  # the censor date itself is observed
        reason[censor_end < end] = 1
        end = np.minimum(end, censor_end)
    cutoff = extraction - settings.lag
    cut_end = cutoff - assigned  # days before the cut-off are observed
    reason[cut_end < end] = 2
    end = np.clip(np.minimum(end, cut_end), 0, None)
    return _People(n, pd.Index(pid_values), assigned, end, reason, censor_name, cutoff)


def _reoffending(offences: pd.DataFrame, people: _People, settings: _Settings, columns: dict[str, str]) -> _Reoffending:
    """Step 3 of :func:`build`: the offences that count, the first reoffence and the counts."""
    id_column, offence_date_column = columns["id"], columns["offence_date"]
    conviction_date_column, offence_type_column = columns["conviction_date"], columns["offence_type"]
    date_basis, proven, types, latest = settings.date_basis, settings.proven, settings.types, settings.latest
    extraction, today, n, assigned, end = settings.extraction, settings.today, people.n, people.assigned, people.end
    need_conviction = date_basis == "conviction" or proven is not None
    off_columns = [id_column, offence_date_column]
    off_columns += [conviction_date_column] if need_conviction else []
    off_columns += [offence_type_column] if types is not None else []
    _require(offences, "offences", off_columns)
    who, member = _members(offences, "offences", id_column, people.index)
    off_ids = offences[id_column].to_numpy()
    committed, _ = _days(offences, "offences", offence_date_column, check=member, ids=off_ids)
    _fail("offences", offence_date_column, member & (committed == _NAT), "missing offence date", off_ids)
    latest.check("offences", offence_date_column, committed, member, "offence date", off_ids)
    if conviction_date_column in offences.columns:
        convicted, has_conviction = _days(offences, "offences", conviction_date_column, check=member, ids=off_ids)
        # a conviction after the extraction is ignored below (unknown then), but none is after today
        known = latest if extraction >= today else _Latest(today, "today")
        known.check("offences", conviction_date_column, convicted, member & has_conviction, "conviction date", off_ids)
        _fail(
            "offences",
            conviction_date_column,
            member & has_conviction & (convicted < committed),
            "conviction date before the offence date",
            off_ids,
        )
    else:
        convicted = np.full(len(offences), _NAT, dtype=np.int64)
        has_conviction = np.zeros(len(offences), dtype=bool)
    unknown = member & has_conviction & (convicted >= extraction)  # not known at extraction
    counts = {"not_participant": int((~member).sum()), "convicted_after_extraction": int(unknown.sum())}
    keep = member & ~unknown
    if types is not None:
        keep &= offences[offence_type_column].isin(types).to_numpy()
    p = who[keep]
    assigned_p = assigned[p]
    committed_rel = committed[keep] - assigned_p
    if date_basis == "offence":
        basis_rel = committed_rel
        valid = np.ones(p.size, dtype=bool)
    else:
        basis_rel = np.where(has_conviction[keep], convicted[keep] - assigned_p, _NAT)
        valid = has_conviction[keep]
    prior_mask = valid & (basis_rel >= -settings.prior_window) & (basis_rel < 0)
    prior_offences = np.bincount(p[prior_mask], minlength=n)
    re_mask = valid & (basis_rel >= 0) & (basis_rel < end[p])
    if date_basis == "conviction":
        re_mask &= committed_rel >= 0
    if proven is not None:
        re_mask &= has_conviction[keep] & (convicted[keep] - assigned_p < settings.window + proven)
    p_re = p[re_mask]
    reoffences = np.bincount(p_re, minlength=n)
    first = np.full(n, _NO_EVENT, dtype=np.int64)
    np.minimum.at(first, p_re, basis_rel[re_mask])
    return _Reoffending(first, first != _NO_EVENT, reoffences, prior_offences, counts)


def _custody(custody: pd.DataFrame | None, people: _People, settings: _Settings, columns: dict[str, str]):
    """Step 4 of :func:`build`: a counter of custody days before a day, and the rows ignored."""
    if custody is None:
        return _no_custody, None
    id_column, start_column, end_column = columns["id"], columns["custody_start"], columns["custody_end"]
    _require(custody, "custody", [id_column, start_column, end_column])
    c_who, c_member = _members(custody, "custody", id_column, people.index)
    c_ids = custody[id_column].to_numpy()
    c_start, _ = _days(custody, "custody", start_column, check=c_member, ids=c_ids)
    _fail("custody", start_column, c_member & (c_start == _NAT), "missing custody start date", c_ids)
    settings.latest.check("custody", start_column, c_start, c_member, "custody start", c_ids)
    c_end, _ = _days(custody, "custody", end_column, check=c_member, ids=c_ids)
    _fail(
        "custody",
        end_column,
        c_member & (c_end == _NAT),
        "missing custody end date (for a spell still running, give the extraction date)",
        c_ids,
    )
    _fail("custody", end_column, c_member & (c_end < c_start), "custody ends before it starts", c_ids)
    cp = c_who[c_member]
    assigned = people.assigned
    counter = _custody_counter(cp, c_start[c_member] - assigned[cp], c_end[c_member] - assigned[cp], settings.window)
    return counter, {"not_participant": int((~c_member).sum())}


def _table(
    participants: pd.DataFrame,
    people: _People,
    record: _Reoffending,
    custody_before,
    settings: _Settings,
    columns: dict[str, str],
    ignored: dict,
) -> pd.DataFrame:
    """Step 5 of :func:`build`: street time at risk, and the follow-up columns and attributes."""
    end, first, event, assigned = people.end, record.first, record.event, people.assigned
    days_in_custody = custody_before(np.arange(people.n), end)
    exposure = end - days_in_custody
    time_at_risk = exposure.copy()
    ev = np.flatnonzero(event)
    time_at_risk[ev] = first[ev] + 1 - custody_before(ev, first[ev] + 1)
    first_on = np.where(event, assigned + np.where(event, first, 0), _NAT)
    added = {
        "time_at_risk": time_at_risk,
        "event": event,
        "first_reoffence_on": _to_datetime(first_on),
        "reoffences": record.reoffences.astype(np.int64),
        "prior_offences": record.prior_offences.astype(np.int64),
        "exposure_days": exposure,
        "days_in_custody": days_in_custody,
        "followup_days": end,
        "end_on": _to_datetime(assigned + end),
        "end_reason": pd.Categorical.from_codes(people.reason, categories=list(END_REASONS)),
    }
    out = participants.copy()  # positional assignment: any index, even with repeated labels
    for name, values in added.items():
        out[name] = values
    out.attrs = {
        **participants.attrs,
        "preset": None,
        "window_days": settings.window,
        "date_basis": settings.date_basis,
        "conviction_lag_days": settings.lag,
        "extraction_date": _iso(settings.extraction),
        "extraction_date_source": settings.extraction_source,
        "followup_cutoff": None if people.cutoff is None else _iso(people.cutoff),
        "prior_window_days": settings.prior_window,
        "proven_within_days": settings.proven,
        "offence_types": settings.types,
        "censor_column": people.censor_name,
        "columns": dict(columns),
        "time_unit": "days",
        "records_ignored": ignored,
        "rjtrial_version": __version__,
    }
    return out


def proven_reoffending(
    participants: pd.DataFrame,
    offences: pd.DataFrame,
    *,
    custody: pd.DataFrame | None = None,
    extraction_date=None,
    **options,
) -> pd.DataFrame:
    """Follow-up by the England and Wales *proven reoffending* definition.

    Offences committed in a one-year follow-up (365 days from the assignment day)
    that are proven — by conviction or caution, both given as ``conviction_date`` —
    within that year or a further six-month waiting period (183 days): this is
    :func:`build` with ``window_days=365``, ``date_basis="offence"``,
    ``proven_within_days=183`` and, when ``extraction_date`` is given,
    ``conviction_lag_days=183``, so that a participant whose year plus waiting
    period is not over at extraction is censored 183 days before it.

    Parameters
    ----------
    participants, offences, custody, extraction_date
        As for :func:`build`.
    **options
        Other keywords of :func:`build` (``prior_window_days``, ``offence_types``,
        ``censor_column``, column names). The preset's own parameters cannot be changed.

    Returns
    -------
    DataFrame
        As :func:`build`; ``attrs["preset"]`` is ``"proven_reoffending"``.

    Notes
    -----
    The Ministry of Justice starts its cohorts at release from custody, a
    non-custodial court disposal or a caution; in a trial the follow-up starts at
    random assignment. "Six months" is taken as 183 days (a calendar half-year has
    181 to 184). MoJ's binary measure is ``event``; its frequency measure is
    ``reoffences``.

    References
    ----------
    Ministry of Justice (2024). *Guide to proven reoffending statistics*.
    https://www.gov.uk/government/collections/proven-reoffending-statistics
    """
    fixed = set(PROVEN_REOFFENDING) | {"conviction_lag_days"}
    clash = sorted(fixed & set(options))
    if clash:
        raise ValueError(f"proven_reoffending fixes {', '.join(clash)}; use build() to change them")
    lag = PROVEN_REOFFENDING["proven_within_days"] if extraction_date is not None else 0
    table = build(
        participants,
        offences,
        custody=custody,
        extraction_date=extraction_date,
        conviction_lag_days=lag,
        **PROVEN_REOFFENDING,
        **options,
    )
    table.attrs["preset"] = "proven_reoffending"
    return table


# ---- helpers ---------------------------------------------------------------------------


def _members(frame: pd.DataFrame, table: str, id_column: str, index: pd.Index):
    """Position of each row's person among the participants (-1 if none), and whether found."""
    ids = frame[id_column]
    _fail(table, id_column, ids.isna().to_numpy(), "missing person id")
    who = index.get_indexer(ids)
    member = who >= 0
    outside = int((~member).sum())
    if outside:
        people = int(pd.unique(ids.to_numpy()[~member]).size)
        hint = ""
        if not member.any() and len(index) and ids.dtype != index.dtype:
            hint = f"; no id matched: the ids are {ids.dtype} here but {index.dtype} in participants"
        warnings.warn(
            f"{outside} {table} record(s) of {people} people who are not participants were ignored{hint}",
            FollowupWarning,
            stacklevel=_outside_stacklevel(),
        )
    return who, member


def _outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside this module."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return level


def _no_custody(people: np.ndarray, upto: np.ndarray) -> np.ndarray:
    return np.zeros(len(people), dtype=np.int64)


def _custody_counter(person: np.ndarray, start: np.ndarray, end: np.ndarray, window: int):
    """A function ``(people, upto) -> custody days on days 0 .. upto-1`` of each person.

    ``start``/``end`` are inclusive day numbers relative to each spell's person's
    assignment day. Spells are clipped to the window and laid out on one global
    day line, person ``p`` on ``[p * stride, p * stride + window)`` with a one-day
    gap between people, so a single running maximum merges overlapping and
    adjacent spells of each person (never across people), and cumulative lengths
    of the merged spells answer every query with one ``searchsorted``.
    """
    stride = np.int64(window + 1)
    start = np.maximum(start, 0)
    end = np.minimum(end, window - 1)
    inside = start <= end
    base = person[inside].astype(np.int64) * stride
    g_start = base + start[inside]
    g_end = base + end[inside]
    order = np.argsort(g_start, kind="stable")
    g_start, g_end = g_start[order], g_end[order]
    if g_start.size == 0:
        return _no_custody
    reach = np.maximum.accumulate(g_end)
    new = np.ones(g_start.size, dtype=bool)
    new[1:] = g_start[1:] > reach[:-1] + 1  # a gap of at least one day starts a new merged spell
    heads = np.flatnonzero(new)
    m_start = g_start[heads]
    m_end = reach[np.append(heads[1:], g_start.size) - 1]
    cumulative = np.concatenate([[0], np.cumsum(m_end - m_start + 1)])

    def before(x: np.ndarray) -> np.ndarray:
        """Custody days on global days < x."""
        k = np.searchsorted(m_start, x, side="left")  # merged spells starting before x
        total = cumulative[k]
        last = np.maximum(k - 1, 0)
        spill = np.where(k > 0, np.maximum(m_end[last] - x + 1, 0), 0)
        return total - spill

    def counter(people: np.ndarray, upto: np.ndarray) -> np.ndarray:
        origin = people.astype(np.int64) * stride
        return before(origin + upto) - before(origin)

    return counter
