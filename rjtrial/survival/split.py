"""Counting-process rows from a follow-up table and dated events: :func:`split_followup`.

R users build such tables with ``survival::tmerge``; this is the same operation, with the
same rules, so that a table built here and one built by ``tmerge`` agree row for row. The
variables it adds are made by four small functions, R's four:

=============================  ===========================  ====================================
here                           R ``tmerge``                 the variable
=============================  ===========================  ====================================
:func:`event`                  ``event(time, value)``       1 (or ``value``) on the interval
                                                            ending at the event, else 0
:func:`cumulative_event`       ``cumevent(time, value)``    the running count (or sum of
                                                            ``value``) of the events so far
:func:`covariate`              ``tdc(time, value, init)``   a time-dependent covariate: 0
                                                            before ``time``, 1 (or ``value``)
                                                            from it on
:func:`cumulative_covariate`   ``cumtdc(time, value, init)`` the running count (or sum) of
                                                            the dated records so far
=============================  ===========================  ====================================
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import first_bad_row
from rjtrial.errors import DataError, RjtrialWarning

START, STOP = "tstart", "tstop"
KINDS = ("event", "cumulative_event", "covariate", "cumulative_covariate")
COUNT_COLUMNS = ("early", "late", "gap", "within", "boundary", "leading", "trailing", "tied", "missid")
NA_ACTIONS = ("omit", "raise")


@dataclass(frozen=True)
class SplitVariable:
    """A variable for :func:`split_followup` to add: made by :func:`event`,
    :func:`cumulative_event`, :func:`covariate` or :func:`cumulative_covariate`."""

    kind: str
    time: str
    value: str | None = None
    initial: Any = None


def event(time: str, value: str | None = None) -> SplitVariable:
    """An event indicator (R ``tmerge``'s ``event()``).

    Parameters
    ----------
    time : str
        Column of the events table holding each event's time.
    value : str, optional
        Column holding the value to record (a cause, a seriousness); by default 1.

    Returns
    -------
    SplitVariable
        For ``variables=`` of :func:`split_followup`: the interval ending at an event's time
        gets 1 (or the value), every other interval 0 (or ``False``, ``""``, or the first
        category).

    Examples
    --------
    >>> event("day")
    SplitVariable(kind='event', time='day', value=None, initial=None)
    """
    return SplitVariable("event", _name(time, "time"), _name(value, "value", optional=True))


def cumulative_event(time: str, value: str | None = None) -> SplitVariable:
    """A running count of events (R ``cumevent()``): the interval ending at the ``k``-th
    event gets ``k`` (or the running sum of ``value``), other intervals 0.

    Parameters
    ----------
    time : str
        Column of the events table holding each event's time.
    value : str, optional
        Column of amounts to add up; by default 1 per event.

    Returns
    -------
    SplitVariable

    Examples
    --------
    >>> cumulative_event("day").kind
    'cumulative_event'
    """
    return SplitVariable("cumulative_event", _name(time, "time"), _name(value, "value", optional=True))


def covariate(time: str, value: str | None = None, *, initial: Any = None) -> SplitVariable:
    """A time-dependent covariate (R ``tdc()``): it takes its value at ``time`` and keeps
    it until the next record of the same person.

    Parameters
    ----------
    time : str
        Column of the events table holding the time each value takes effect.
    value : str, optional
        Column of values. Without it the covariate is 0 before the person's first time and
        1 from it on (a programme started, released from custody).
    initial : optional
        The value before the first time when ``value`` is given (R's ``init``); missing
        (NaN) by default, as in R.

    Returns
    -------
    SplitVariable

    Examples
    --------
    >>> covariate("day", "in_custody", initial=0).initial
    0
    """
    return SplitVariable("covariate", _name(time, "time"), _name(value, "value", optional=True), initial)


def cumulative_covariate(time: str, value: str | None = None, *, initial: Any = None) -> SplitVariable:
    """A cumulative time-dependent covariate (R ``cumtdc()``): from each time on, the count
    of the person's records so far (or the running sum of ``value``).

    Parameters
    ----------
    time : str
        Column of the events table holding each record's time.
    value : str, optional
        Column of amounts to add up; by default 1 per record.
    initial : optional
        The value before the first record when ``value`` is given (R's ``init``); missing
        by default, as in R. Without ``value`` the count starts at 0.

    Returns
    -------
    SplitVariable

    Examples
    --------
    >>> cumulative_covariate("day").kind
    'cumulative_covariate'
    """
    return SplitVariable("cumulative_covariate", _name(time, "time"), _name(value, "value", optional=True), initial)


def _name(value, role: str, optional: bool = False):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{role} must be a column name (a string), got {value!r}")
    return value


def split_followup(
    table: pd.DataFrame,
    events: pd.DataFrame | None = None,
    *,
    id: str,
    stop: str | None = None,
    start: str | None = None,
    variables: Mapping[str, SplitVariable] | Iterable[tuple[str, SplitVariable]] | None = None,
    event_columns: Sequence[str] | None = None,
    delay: float = 0.0,
    na_action: str = "omit",
) -> pd.DataFrame:
    """Split follow-up into counting-process intervals at dated events (R ``tmerge``).

    Parameters
    ----------
    table : pandas.DataFrame
        Either one row per person (the first call: give ``stop``), or a table this function
        returned (a later call, adding variables to it: leave ``stop`` out).
    events : pandas.DataFrame, optional
        The dated records: ``id``, the time columns and value columns the variables name.
        By default ``table`` itself (a column of event times in wide data, R's ``cgd0``).
        Records of an id not in ``table`` are left out and counted (``missid``).
    id : str
        Column identifying the person in both tables.
    stop : str, optional
        First call: column of the end of each person's follow-up.
    start : str, optional
        First call: column of its start; 0 when not given (random assignment).
    variables : dict or list of (name, SplitVariable), optional
        The variables to add, made by :func:`event`, :func:`cumulative_event`,
        :func:`covariate` or :func:`cumulative_covariate`; processed in order. A list may
        name one variable several times (R's ``infect = event(etime1), infect =
        event(etime2)``).
    event_columns : list of str, optional
        Later calls: the columns of ``table`` that are event variables (an interval split
        in two keeps the event on its second part only). Read from ``table.attrs`` when
        ``table`` came from this function.
    delay : float
        Covariates (not events) take effect this long after their time, unless the time is
        at or before the start of follow-up (R's ``delay`` option).
    na_action : {"omit", "raise"}
        A record with a missing *value*: left out (R's default, ``na.rm = TRUE``) or an
        error naming its row. A missing *time* always means "no such record" (wide data
        have them) and is left out.

    Returns
    -------
    pandas.DataFrame
        The rows of ``table`` split at the variables' times, each person's intervals
        ``(tstart, tstop]`` in time order and persons in the order of ``table``, with the
        columns of ``table`` and

        ``tstart``, ``tstop``  each interval's start and end;
        one column per variable, named by ``variables``.

        ``attrs["counts"]`` is R's ``attr(x, "tcount")``: per variable, how many records
        fell before follow-up (``early``), after it (``late``), in a gap between intervals
        (``gap``), inside an interval (``within``, which split it), on a boundary between
        two intervals (``boundary``), on the start (``leading``) or end (``trailing``) of
        follow-up, how many repeated a time of the same person (``tied``) and how many had
        an id not in the table (``missid``). ``attrs["split_followup"]`` records the id and
        the event and covariate columns for later calls.

    Notes
    -----
    R's rules, which every record follows: an event counts on the interval *ending* at its
    time; one at or before the start of follow-up, or after its end, is not recorded (it is
    counted as ``leading``, ``early`` or ``late``); one in a gap is not recorded. A
    covariate takes its value on the intervals *starting* at or after its time (the value
    in force at an interval's start holds through it), so a record before follow-up sets
    the value from the start. Records of one person at the same time: the last one (in the
    order of ``events``) wins. Agrees with R ``survival::tmerge`` 3.5-3 row for row on the
    examples of the "Using Time Dependent Covariates" vignette (``cgd0``; ``jasa``;
    ``pbc`` with ``pbcseq``) and on a generated trial with offences before, on and after
    follow-up, tied days and custody spells (tests/validation/test_tmerge_split_followup.py).

    References
    ----------
    Therneau, T., Crowson, C., & Atkinson, E. (2023). Using time dependent covariates and
    time dependent coefficients in the Cox model. Vignette of R package survival 3.5.
    https://CRAN.R-project.org/package=survival/vignettes/timedep.pdf

    Examples
    --------
    >>> import pandas as pd
    >>> followup = pd.DataFrame({"id": [1, 2], "arm": ["rj", "control"], "days": [730, 400]})
    >>> offences = pd.DataFrame({"id": [1, 1, 2, 2], "day": [-30, 120, 90, 500]})
    >>> table = split_followup(followup, offences, id="id", stop="days",
    ...                        variables={"reoffence": event("day")})
    >>> print(table[["id", "arm", "tstart", "tstop", "reoffence"]].to_string(index=False))
     id     arm  tstart  tstop  reoffence
      1      rj     0.0  120.0          1
      1      rj   120.0  730.0          0
      2 control     0.0   90.0          1
      2 control    90.0  400.0          0
    >>> table.attrs["counts"].loc["reoffence", ["early", "within", "late"]].tolist()
    [1, 2, 1]
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(table).__name__}")
    if na_action not in NA_ACTIONS:
        raise ValueError(f"na_action must be one of 'omit', 'raise'; got {na_action!r}")
    if not (isinstance(delay, (int, float)) and np.isfinite(delay) and delay >= 0):
        raise ValueError(f"delay must be a number >= 0, got {delay!r}")
    items = _variables(variables)
    _require(table, "follow-up table", [id])
    if stop is not None:
        state = _first_call(table, id=id, stop=stop, start=start)
    else:
        if start is not None:
            raise ValueError(
                "start= and stop= establish the follow-up on the first call only; leave both out when "
                "adding variables to a table split_followup returned"
            )
        state = _later_call(table, id=id, event_columns=event_columns)
    if events is None:
        events = table
    elif not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    counts = []
    for name, spec in items:
        counts.append(_add_variable(state, events, name, spec, id=id, delay=float(delay), na_action=na_action))
    out = state.frame.reset_index(drop=True)
    previous = table.attrs.get("counts") if stop is None else None
    new_counts = pd.DataFrame(
        [c for _, c in counts], columns=list(COUNT_COLUMNS), index=pd.Index([n for n, _ in counts], name="variable")
    )
    out.attrs = {
        "counts": new_counts
        if previous is None or not isinstance(previous, pd.DataFrame)
        else pd.concat([previous, new_counts]),
        "split_followup": {"id": id, "events": dict(state.events), "covariates": list(state.covariates)},
    }
    return out


# ---------------------------------------------------------------------------- the table
class _State:
    """The table being split: rows sorted by person (in order of first appearance) and time."""

    def __init__(self, frame: pd.DataFrame, id: str, events: dict, covariates: list):
        self.id = id
        self.events = events  # event column -> its "no event" value
        self.covariates = covariates
        self.set_frame(frame)

    def set_frame(self, frame: pd.DataFrame) -> None:
        self.frame = frame.reset_index(drop=True)
        self.uniques = pd.unique(self.frame[self.id])
        self.code = pd.Index(self.uniques).get_indexer(self.frame[self.id]).astype(np.int64)
        self.start = self.frame[START].to_numpy(dtype=float)
        self.stop = self.frame[STOP].to_numpy(dtype=float)


def _require(df: pd.DataFrame, table: str, columns) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"no column {missing[0]!r}; the columns are {', '.join(map(str, df.columns))}",
            table=table,
            column=missing[0],
        )


def _numeric_times(df: pd.DataFrame, column: str, table: str, *, allow_missing: bool) -> np.ndarray:
    values = df[column]
    if pd.api.types.is_datetime64_any_dtype(values) or pd.api.types.is_timedelta64_dtype(values):
        raise DataError(
            f"times must be numbers (days since random assignment), found dtype {values.dtype}; convert dates first, "
            "e.g. (offence_date - randomised_on).dt.days",
            table=table,
            column=column,
        )
    if values.dtype == bool:
        raise DataError("times must be numbers, found True/False", table=table, column=column)
    if not pd.api.types.is_numeric_dtype(values):  # text: every cell must read as a number (or be empty)
        converted = pd.to_numeric(values, errors="coerce")
        bad = converted.isna().to_numpy() & values.notna().to_numpy()
        if bad.any():
            raise DataError(
                f"times must be numbers, found {values[bad].iloc[0]!r}",
                table=table,
                row=first_bad_row(df, bad),
                column=column,
            )
        values = converted
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isinf(out) | (np.isnan(out) if not allow_missing else np.zeros(len(out), dtype=bool))
    if bad.any():
        raise DataError("time is missing or not finite", table=table, row=first_bad_row(df, bad), column=column)
    return out


def _first_call(table: pd.DataFrame, *, id: str, stop: str, start: str | None) -> _State:
    name = "follow-up table"
    _require(table, name, [stop] + ([start] if start is not None else []))
    if len(table) == 0:
        raise DataError("the table has no rows", table=name)
    ids = table[id]
    bad = ids.isna().to_numpy()
    if bad.any():
        raise DataError("id is missing", table=name, row=first_bad_row(table, bad), column=id)
    dup = ids.duplicated().to_numpy()
    if dup.any():
        raise DataError(
            f"id {ids[dup].iloc[0]!r} appears twice; the first call (which sets each person's follow-up) "
            "takes one row per person",
            table=name,
            row=first_bad_row(table, dup),
            column=id,
        )
    end = _numeric_times(table, stop, name, allow_missing=False)
    begin = np.zeros(len(table)) if start is None else _numeric_times(table, start, name, allow_missing=False)
    bad = begin >= end
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "follow-up must end after it starts" + ("" if start is not None else " (at 0)")
        raise DataError(
            f"{what}; found start {begin[i]:g} >= end {end[i]:g}",
            table=name,
            row=first_bad_row(table, bad),
            column=stop,
        )
    frame = table.copy()
    frame[START] = begin
    frame[STOP] = end
    return _State(frame, id, {}, [])


def _later_call(table: pd.DataFrame, *, id: str, event_columns) -> _State:
    name = "split table"
    info = table.attrs.get("split_followup")
    if event_columns is not None:
        events = {c: _censor_value(table[c]) for c in event_columns}
        _require(table, name, list(event_columns))
        covariates = list(info.get("covariates", [])) if isinstance(info, dict) else []
    elif isinstance(info, dict):
        events = dict(info.get("events", {}))
        covariates = list(info.get("covariates", []))
    else:
        raise ValueError(
            "table is not one split_followup returned (its attrs are gone): give stop= (and start=) to start from "
            "one row per person, or event_columns= to say which of its columns are events"
        )
    _require(table, name, [START, STOP])
    bad = table[id].isna().to_numpy()
    if bad.any():
        raise DataError("id is missing", table=name, row=first_bad_row(table, bad), column=id)
    begin = _numeric_times(table, START, name, allow_missing=False)
    end = _numeric_times(table, STOP, name, allow_missing=False)
    bad = begin >= end
    if bad.any():
        raise DataError("an interval must end after it starts", table=name, row=first_bad_row(table, bad), column=STOP)
    code = pd.factorize(table[id], sort=False)[0]
    order = np.lexsort((begin, code))
    sorted_code, sorted_begin, sorted_end = code[order], begin[order], end[order]
    overlap = (sorted_code[1:] == sorted_code[:-1]) & (sorted_begin[1:] < sorted_end[:-1])
    if overlap.any():
        row = table.index[order[1:][overlap][0]]
        raise DataError(
            f"this interval overlaps an earlier interval of the same {id}", table=name, row=row, column=START
        )
    return _State(table.iloc[order], id, events, covariates)


def _censor_value(column: pd.Series):
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.categories[0]
    if column.dtype == bool:
        return False
    if pd.api.types.is_numeric_dtype(column):
        return 0
    return ""


def _variables(variables) -> list[tuple[str, SplitVariable]]:
    if variables is None:
        return []
    items = list(variables.items()) if isinstance(variables, Mapping) else list(variables)
    out = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2):
            raise ValueError("variables must be a dict {name: event(...)} or a list of (name, event(...)) pairs")
        name, spec = item
        if not isinstance(name, str) or not name:
            raise ValueError(f"a variable's name must be a non-empty string, got {name!r}")
        if not isinstance(spec, SplitVariable):
            raise ValueError(
                f"variable {name!r} must be made by event(), cumulative_event(), covariate() or "
                f"cumulative_covariate(), got {spec!r}"
            )
        if name in (START, STOP):
            raise ValueError(f"{name!r} is the name of the interval column; choose another name for the variable")
        out.append((name, spec))
    return out


# ---------------------------------------------------------------------------- one variable
def _add_variable(
    state: _State, events: pd.DataFrame, name: str, spec: SplitVariable, *, id: str, delay: float, na_action: str
):
    table = "events"
    _require(events, table, [id, spec.time] + ([spec.value] if spec.value is not None else []))
    if name == id:
        raise ValueError(f"a variable cannot be named like the id column {id!r}")
    code = pd.Index(state.uniques).get_indexer(events[id])
    missid = int(np.sum(code < 0))
    if missid == len(events) and len(events):
        raise DataError(
            f"no {id} of the events table is in the follow-up table (compare their types: "
            f"{events[id].dtype} and {state.frame[id].dtype})",
            table=table,
            column=id,
        )
    etime = _numeric_times(events, spec.time, table, allow_missing=True)
    keep = (code >= 0) & ~np.isnan(etime)
    value = None
    if spec.value is not None:
        value = events[spec.value]
        missing = value.isna().to_numpy()
        if na_action == "raise" and (missing & keep).any():
            raise DataError(
                "missing value (na_action='raise'; na_action='omit' leaves such records out, as R does)",
                table=table,
                row=first_bad_row(events, missing & keep),
                column=spec.value,
            )
        keep &= ~missing
    rows = np.flatnonzero(keep)
    order = rows[np.lexsort((etime[rows], code[rows]))]  # by person, then time; ties in the table's order
    ecode, t = code[order], etime[order]
    values = None if value is None else value.iloc[order].reset_index(drop=True)
    if delay > 0 and spec.kind in ("covariate", "cumulative_covariate"):
        first = np.full(len(state.uniques), np.inf)
        np.minimum.at(first, state.code, state.start)
        t = np.where(t <= first[ecode], t, t + delay)

    itype, subtype, indx1, indx2 = _classify(state, ecode, t)
    tied = int(np.sum((ecode[1:] == ecode[:-1]) & (t[1:] == t[:-1]))) if len(t) > 1 else 0
    kinds = itype + subtype
    count = [int(np.sum(kinds == k)) for k in (1, 2, 3, 4, 6, 7, 8)] + [tied, missid]
    within = itype == 4
    if within.any():
        _split_rows(state, indx1[within], t[within])
        itype, subtype, indx1, indx2 = _classify(state, ecode, t)

    frame = state.frame
    n = len(frame)
    if spec.kind in ("event", "cumulative_event"):
        if name in state.covariates:
            raise ValueError(f"{name!r} is a time-dependent covariate; it cannot become an event variable")
        incr = pd.Series(np.ones(len(t), dtype=np.int64)) if values is None else values
        assign = (subtype == 1) | (subtype == 3)
        if spec.kind == "cumulative_event":
            numbers = pd.to_numeric(incr.astype(float) if incr.dtype == bool else incr, errors="coerce")
            if numbers.isna().any():
                raise DataError(
                    f"a cumulative event's value must be numeric; {spec.value!r} is not", table=table, column=spec.value
                )
            assign &= numbers.to_numpy() != 0
            incr = numbers.groupby(ecode).cumsum().reset_index(drop=True)
        if name in frame.columns and name in state.events:
            column = frame[name].copy()
        else:
            column = _zeros(incr, n)
            state.events[name] = _censor_value(column)
        target = indx2[assign]
        source = np.flatnonzero(assign)
        last = pd.Series(source, index=target).groupby(level=0).last()  # several at one time: the last wins
        column = _set(column, last.index.to_numpy(), incr.iloc[last.to_numpy()])
        frame[name] = column.to_numpy() if not isinstance(column.dtype, pd.CategoricalDtype) else column.values
    else:
        if name in state.events:
            raise ValueError(f"{name!r} is an event variable; it cannot become a time-dependent covariate")
        existing = name in frame.columns
        if name not in state.covariates:
            state.covariates.append(name)
            if existing and spec.kind == "covariate":
                warnings.warn(
                    f"column {name!r} of the table is replaced by the time-dependent covariate {name!r}",
                    RjtrialWarning,
                    stacklevel=3,
                )
                existing = False
        if spec.kind == "covariate":
            frame[name] = _covariate(frame[name] if existing else None, state, ecode, t, values, spec, n)
        else:
            frame[name] = _cumulative(frame[name] if existing else None, state, ecode, t, values, spec, itype, n)
    state.set_frame(frame)
    return name, count


def _classify(state: _State, ecode: np.ndarray, t: np.ndarray):
    """R ``tmerge``'s classification of each record against the person's intervals.

    ``indx1``: the last interval starting at or before ``t``; ``indx2``: the first ending
    at or after it (-1 for none). ``itype`` 1 early, 2 late, 3 in a gap, 4 within an
    interval, 5 on a boundary; for 5, ``subtype`` 1 between two intervals, 2 at the start
    (leading), 3 at the end (trailing).
    """
    indx1 = _asof(state.code, state.start, ecode, t, direction="backward")
    indx2 = _asof(state.code, state.stop, ecode, t, direction="forward")
    itype = np.where(indx1 < 0, 1, np.where(indx2 < 0, 2, np.where(indx2 > indx1, 3, 4)))
    ok = itype == 4
    on_edge = np.zeros(len(t), dtype=bool)
    on_edge[ok] = (t[ok] == state.start[indx1[ok]]) | (t[ok] == state.stop[indx2[ok]])
    itype = np.where(on_edge, 5, itype)
    subtype = np.zeros(len(t), dtype=np.int64)
    five = itype == 5
    subtype[five] = np.where(indx1[five] == indx2[five] + 1, 1, np.where(t[five] == state.start[indx1[five]], 2, 3))
    return itype, subtype, indx1, indx2


def _asof(row_code, row_time, ecode, t, *, direction: str) -> np.ndarray:
    """For each record, the row of the same person whose time is the last <= ``t``
    (``backward``) or the first >= ``t`` (``forward``); -1 when there is none."""
    if len(t) == 0:
        return np.zeros(0, dtype=np.int64)
    rows = pd.DataFrame({"code": row_code, "time": row_time, "row": np.arange(len(row_code))})
    rows = rows.sort_values("time", kind="stable")
    left = pd.DataFrame({"code": ecode, "time": t, "i": np.arange(len(t))}).sort_values("time", kind="stable")
    merged = pd.merge_asof(left, rows, on="time", by="code", direction=direction, allow_exact_matches=True)
    out = np.full(len(t), -1, dtype=np.int64)
    found = merged["row"].notna().to_numpy()
    out[merged["i"].to_numpy()[found]] = merged["row"].to_numpy()[found].astype(np.int64)
    return out


def _split_rows(state: _State, rows: np.ndarray, cuts: np.ndarray) -> None:
    """Split each interval at the (distinct) times strictly inside it; event columns are
    set to their "no event" value on every piece but the last."""
    pairs = pd.DataFrame({"row": rows, "cut": cuts}).drop_duplicates().sort_values(["row", "cut"])
    n_cuts = np.bincount(pairs["row"].to_numpy(), minlength=len(state.frame))
    repeat = 1 + n_cuts
    position = np.repeat(np.arange(len(state.frame)), repeat)
    frame = state.frame.iloc[position].reset_index(drop=True)
    starts = np.repeat(state.start, repeat)
    stops = np.repeat(state.stop, repeat)
    first_piece = np.concatenate([[0], np.cumsum(repeat)[:-1]])
    # piece j (1..k) of a row starts at its j-th cut; piece j-1 ends there
    offset = pairs.groupby("row").cumcount().to_numpy() + 1
    at = first_piece[pairs["row"].to_numpy()] + offset
    starts[at] = pairs["cut"].to_numpy()
    stops[at - 1] = pairs["cut"].to_numpy()
    frame[START] = starts
    frame[STOP] = stops
    not_last = np.ones(len(frame), dtype=bool)
    not_last[np.cumsum(repeat) - 1] = False
    for column, censor in state.events.items():
        values = frame[column].copy()
        values[not_last] = censor
        frame[column] = values
    state.set_frame(frame)


def _zeros(like: pd.Series, n: int) -> pd.Series:
    if isinstance(like.dtype, pd.CategoricalDtype):
        return pd.Series(pd.Categorical([like.cat.categories[0]] * n, categories=like.cat.categories))
    if like.dtype == bool:
        return pd.Series(np.zeros(n, dtype=bool))
    if pd.api.types.is_integer_dtype(like):
        return pd.Series(np.zeros(n, dtype=np.int64))
    if pd.api.types.is_numeric_dtype(like):
        return pd.Series(np.zeros(n, dtype=float))
    return pd.Series([""] * n, dtype=object)


def _set(column: pd.Series, positions: np.ndarray, values: pd.Series) -> pd.Series:
    column = column.reset_index(drop=True)
    if len(positions) == 0:
        return column
    values = values.reset_index(drop=True)
    if pd.api.types.is_integer_dtype(column) and not pd.api.types.is_integer_dtype(values):
        column = column.astype(float)
    if isinstance(column.dtype, pd.CategoricalDtype):
        new = [v for v in pd.unique(values) if v not in column.cat.categories]
        if new:
            column = column.cat.add_categories(new)
    column.iloc[positions] = values.to_numpy()
    return column


def _last_record_at_start(state: _State, ecode, t) -> np.ndarray:
    """Per row, the last record of its person at or before the row's start (-1 for none)."""
    if len(t) == 0:
        return np.full(len(state.frame), -1, dtype=np.int64)
    return _asof(ecode, t, state.code, state.start, direction="backward")


def _covariate(current, state: _State, ecode, t, values, spec: SplitVariable, n: int) -> np.ndarray:
    index = _last_record_at_start(state, ecode, t)
    found = index >= 0
    if current is None:
        if values is None:
            return found.astype(np.int64)
        initial = spec.initial
        out = pd.Series([np.nan] * n if initial is None else [initial] * n, dtype=object)
        out[found] = values.iloc[index[found]].to_numpy()
        return _tidy(out, values)
    out = current.reset_index(drop=True).copy()
    if values is None:
        out = out.astype(float) if out.dtype == bool else out
        out[found] = 1
        return out.to_numpy()
    out = out.astype(object)
    out[found] = values.iloc[index[found]].to_numpy()
    return _tidy(out, values)


def _tidy(out: pd.Series, like: pd.Series):
    """An object column back to the values' type (numbers with NaN as float)."""
    if isinstance(like.dtype, pd.CategoricalDtype):
        return pd.Categorical(out, categories=like.cat.categories)
    if pd.api.types.is_numeric_dtype(like) and like.dtype != bool:
        numeric = pd.to_numeric(out, errors="coerce")
        if pd.api.types.is_integer_dtype(like) and not numeric.isna().any():
            return numeric.astype(np.int64).to_numpy()
        return numeric.astype(float).to_numpy()
    return out.to_numpy()


def _cumulative(current, state: _State, ecode, t, values, spec: SplitVariable, itype, n: int) -> np.ndarray:
    keep = itype != 2  # records after follow-up ends do not count
    ecode, t = ecode[keep], t[keep]
    if values is None:
        incr = np.ones(len(t))
    else:
        v = values[keep]
        incr = pd.to_numeric(v.astype(float) if v.dtype == bool else v, errors="coerce").to_numpy(dtype=float)
        if np.isnan(incr).any():
            raise DataError(
                f"a cumulative covariate's value must be numeric; {spec.value!r} is not",
                table="events",
                column=spec.value,
            )
    running = pd.Series(incr).groupby(ecode).cumsum().to_numpy() if len(t) else np.zeros(0)
    index = _last_record_at_start(state, ecode, t)
    found = index >= 0
    if current is None:
        if values is None:
            out = np.zeros(n)
        else:
            out = np.full(n, np.nan if spec.initial is None else float(spec.initial))
    else:
        out = pd.to_numeric(current.reset_index(drop=True), errors="coerce").to_numpy(dtype=float).copy()
    total = running[index[found]]
    out[found] = np.where(np.isnan(out[found]), total, out[found] + total)
    return out
