"""Day numbers of dated records and the checks that name where a record is wrong.

The follow-up builder (:mod:`rjtrial.followup`) reads participants, offences and custody
spells as whole days since 1970-01-01 (int64, :data:`NAT` for a missing date). Every check
raises one :class:`~rjtrial.errors.DataError` naming the table, the 1-based row and the
column of the first bad record, with how many more are like it.
"""

from __future__ import annotations

import numbers
from datetime import date, datetime

import numpy as np
import pandas as pd

from rjtrial.errors import DataError

#: A missing day (numpy's NaT as int64).
NAT = np.iinfo(np.int64).min


def positive_int(name: str, value, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, not {value!r}")
    return int(value)


def require(frame: pd.DataFrame, table: str, columns) -> None:
    for column in columns:
        if column not in frame.columns:
            have = ", ".join(map(str, frame.columns)) or "none"
            raise DataError(f"missing column (the table has: {have})", table=table, column=column)


def more(count: int) -> str:
    return f" ({count - 1} more rows like it)" if count > 1 else ""


def fail(table: str, column: str, mask: np.ndarray, message: str, ids=None, values=None) -> None:
    """Raise a DataError for the first row where ``mask`` is true (1-based position)."""
    bad = np.flatnonzero(mask)
    if bad.size == 0:
        return
    pos = int(bad[0])
    if values is not None:
        message += f" {values[pos]!r}"
    if ids is not None:
        message += f" (id {ids[pos]!r})"
    raise DataError(message + more(bad.size), table=table, row=pos + 1, column=column)


class Latest:
    """The last day a record can be dated: the extraction date, or today without one."""

    def __init__(self, day: int, kind: str):
        self.day, self.kind = day, kind

    def check(self, table: str, column: str, days: np.ndarray, rows: np.ndarray, what: str, ids) -> None:
        bad = np.flatnonzero(rows & (days != NAT) & (days > self.day))
        if bad.size == 0:
            return
        pos = int(bad[0])
        when = (
            f"after the extraction date {iso(self.day)}"
            if self.kind == "extraction"
            else f"in the future (after today, {iso(self.day)})"
        )
        raise DataError(
            f"{what} {iso(days[pos])} is {when} (id {ids[pos]!r})" + more(bad.size),
            table=table,
            row=pos + 1,
            column=column,
        )


def stamp_day(stamp: pd.Timestamp) -> int:
    if stamp.tzinfo is not None:
        stamp = stamp.tz_localize(None)
    return int(np.datetime64(stamp.to_datetime64(), "D").astype(np.int64))


def iso(day: int) -> str:
    return str(np.datetime64(int(day), "D"))


def to_datetime(days: np.ndarray) -> np.ndarray:
    return days.astype("datetime64[D]").astype("datetime64[ns]")  # NAT maps to NaT


def days(frame: pd.DataFrame, table: str, column: str, *, check=None, ids=None):
    """Day numbers (days since 1970-01-01) of a date column, and where a date is present.

    Missing dates become ``NAT``. Unparsable values in rows selected by ``check``
    (default: all rows) raise a DataError.
    """
    series = frame[column]
    dtype = series.dtype
    late: dict[int, int] = {}  # ISO dates beyond pandas' range, by position
    if isinstance(dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(dtype):
        if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            rows = np.ones(len(series), bool) if check is None else check
            rows = rows & series.notna().to_numpy()
            fail(
                table,
                column,
                rows,
                f"dates must be dates or ISO 8601 text, not {dtype} such as",
                ids,
                series.to_numpy(),
            )
        try:
            parsed = pd.to_datetime(series, errors="coerce", format="ISO8601")
        except (TypeError, ValueError) as exc:  # e.g. mixed time zones
            raise DataError(f"dates could not be read: {exc}", table=table, column=column) from exc
        unparsable = (parsed.isna() & series.notna()).to_numpy()
        if check is not None:
            unparsable &= check
        late = {int(i): day for i in np.flatnonzero(unparsable) if (day := beyond_pandas(series.iloc[i])) is not None}
        unparsable[list(late)] = False
        fail(table, column, unparsable, "unparsable date", ids, series.to_numpy())
        series = parsed.dt.tz_localize(None) if isinstance(parsed.dtype, pd.DatetimeTZDtype) else parsed
    values = series.to_numpy().astype("datetime64[D]").astype(np.int64)
    for i, day in late.items():
        values[i] = day
    return values, values != NAT


def beyond_pandas(value) -> int | None:
    """Day number of an ISO 8601 date outside pandas' range (1677-09-22 to 2262-04-11), such as
    2999-01-01, so that it is reported as late (after the extraction, in the future), not unparsable."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    if isinstance(value, datetime):
        value = value.date()
    if not isinstance(value, date) or pd.Timestamp.min.date() <= value <= pd.Timestamp.max.date():
        return None
    return (value - date(1970, 1, 1)).days
