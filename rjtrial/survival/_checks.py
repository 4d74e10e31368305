"""Input checks shared by the survival verbs.

Every check raises :class:`rjtrial.errors.DataError` (a ``ValueError``) whose message names
the column and, for a bad value, the row label of the first offending row.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import _first_bad, _require
from rjtrial.errors import DataError

TABLE = "survival data"


def check_frame(df) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise DataError("the table has no rows", table=TABLE)
    return df


def require_columns(df: pd.DataFrame, roles: dict[str, str | Sequence[str] | None]) -> None:
    """Each role's column(s) must be present: ``{"time": "week", "strata": ["site"]}``."""
    _require(df, table=TABLE, **roles)


def times(df: pd.DataFrame, column: str, *, role: str = "time") -> np.ndarray:
    """Finite, non-negative numeric times as float64."""
    values = df[column]
    if values.dtype == bool or not pd.api.types.is_numeric_dtype(values):
        raise DataError(f"{role} must be numeric, found dtype {values.dtype}", table=TABLE, column=column)
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataError(f"{role} is missing or not finite", table=TABLE, row=_first_bad(df, bad), column=column)
    bad = out < 0
    if bad.any():
        raise DataError(
            f"{role} is negative ({out[bad][0]:g}); times are measured from random assignment",
            table=TABLE,
            row=_first_bad(df, bad),
            column=column,
        )
    return out


def aeq_times(stop: np.ndarray, start: np.ndarray | None = None, *, index=None, column: str | None = None,
              tolerance: float = np.sqrt(np.finfo(float).eps)):
    """Merge times that differ only by floating-point noise, as R ``aeqSurv`` (``timefix = TRUE``).

    The sorted unique values of ``stop`` and ``start`` are compared; two neighbours within
    ``tolerance`` (absolutely, or relative to the mean absolute time) are one time, the
    smaller. Times such as ``0.1 + 0.2`` and ``0.3``, or days divided by 365.25 in two
    ways, then tie as R ties them. Returns ``(stop, start)``, unchanged when nothing merges.
    """
    values = stop if start is None else np.concatenate([stop, start])
    y = np.unique(values[np.isfinite(values)])
    if len(y) < 2:
        return stop, start
    dy = np.diff(y)
    tied = (dy <= tolerance) | (dy / np.mean(np.abs(y)) <= tolerance)
    if not tied.any():
        return stop, start
    cuts = y[np.concatenate([[True], ~tied])]
    new_stop = cuts[np.searchsorted(cuts, stop, side="right") - 1]
    if start is None:
        return new_stop, None
    new_start = cuts[np.searchsorted(cuts, start, side="right") - 1]
    collapsed = (new_start >= new_stop) & (start < stop)
    if collapsed.any():
        i = int(np.flatnonzero(collapsed)[0])
        raise DataError(
            f"the interval ({start[i]!r}, {stop[i]!r}] has a length within floating-point noise of 0",
            table=TABLE,
            row=index[i] if index is not None else i,
            column=column,
        )
    return new_stop, new_start


def events(df: pd.DataFrame, column: str) -> np.ndarray:
    """Event indicators coded 0/1 (or False/True), as a boolean array."""
    values = df[column]
    if values.dtype == bool:
        return values.to_numpy()
    if not pd.api.types.is_numeric_dtype(values):
        raise DataError(
            f"event must be coded 0/1 or False/True, found dtype {values.dtype}", table=TABLE, column=column
        )
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(out, (0.0, 1.0))
    if bad.any():
        raise DataError(
            f"event must be 0 (censored) or 1 (event), found {out[bad][0]!r}",
            table=TABLE,
            row=_first_bad(df, bad),
            column=column,
        )
    return out == 1.0


def labels(df: pd.DataFrame, column: str, *, role: str) -> pd.Series:
    """A grouping column without missing values."""
    values = df[column]
    bad = values.isna().to_numpy()
    if bad.any():
        raise DataError(f"{role} is missing", table=TABLE, row=_first_bad(df, bad), column=column)
    return values


def group_levels(values: pd.Series) -> list:
    """Levels in the order R uses for a factor: categorical order, else sorted."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.unique())
        return [level for level in values.cat.categories if level in present]
    return sorted(values.unique().tolist())


def need_two_groups(levels: list, column: str) -> None:
    if len(levels) < 2:
        raise DataError(
            f"needs at least two groups to compare, found {len(levels)} ({levels!r})", table=TABLE, column=column
        )


def alpha_value(alpha: float) -> float:
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):
        raise ValueError(f"alpha must be a number between 0 and 1 (exclusive), got {alpha!r}")
    return float(alpha)


def choice(name: str, value, options: Sequence[str]) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value
