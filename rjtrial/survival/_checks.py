"""Input checks shared by the survival verbs.

Every check raises :class:`rjtrial.errors.DataError` (a ``ValueError``) whose message names
the column and, for a bad value, the row label of the first offending row.
"""

from __future__ import annotations

import re
from typing import Sequence

import numpy as np
import pandas as pd

from rjtrial import _checks as common
from rjtrial._checks import first_bad_row, indicator, numeric
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
    common.require_columns(df, table=TABLE, **roles)


def times(df: pd.DataFrame, column: str, *, role: str = "time") -> np.ndarray:
    """Finite, non-negative numeric times as float64."""
    values = df[column]
    if values.dtype == bool:
        raise DataError(f"{role} must be numeric, found dtype {values.dtype}", table=TABLE, column=column)
    if not pd.api.types.is_numeric_dtype(values):  # name the first cell that is not a number
        numeric(df, column, role=role, table=TABLE)
        raise DataError(f"{role} must be numeric, found dtype {values.dtype}", table=TABLE, column=column)
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataError(f"{role} is missing or not finite", table=TABLE, row=first_bad_row(df, bad), column=column)
    bad = out < 0
    if bad.any():
        raise DataError(
            f"{role} is negative ({out[bad][0]:g}); times are measured from random assignment",
            table=TABLE,
            row=first_bad_row(df, bad),
            column=column,
        )
    return out


def aeq_times(
    stop: np.ndarray,
    start: np.ndarray | None = None,
    *,
    index=None,
    column: str | None = None,
    tolerance: float = np.sqrt(np.finfo(float).eps),
):
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


EVENT_CODINGS = ("0/1", "r")
NA_ACTIONS = ("omit", "raise")


def events(df: pd.DataFrame, column: str, coding: str = "0/1") -> np.ndarray:
    """Event indicators as a boolean array.

    ``coding="0/1"`` (the default) accepts 0 (censored) / 1 (event) and False / True;
    ``coding="r"`` is R's other coding, 1 (censored) / 2 (event), as in R's ``lung$status``.
    Nothing else is accepted, and a coding is never guessed from the values: a column of
    1s and 2s read as 0/1 is an error, not "everyone had an event".
    """
    choice("event_coding", coding, EVENT_CODINGS)
    allowed = (0.0, 1.0) if coding == "0/1" else (1.0, 2.0)
    values = df[column]
    if values.dtype == bool:
        if coding == "r":
            raise DataError(
                "event is True/False, but event_coding='r' expects 1 (censored) / 2 (event)",
                table=TABLE,
                column=column,
            )
        return values.to_numpy()
    if not pd.api.types.is_numeric_dtype(values) and coding == "0/1":
        # text read from a file: '0'/'1' or 'False'/'True' when the whole column is such; any
        # other cell is an error naming its row (never read by truthiness)
        return indicator(
            df,
            column,
            table=TABLE,
            role="event",
            hint="event must be coded 0/1 or False/True (for R's 1/2 coding pass event_coding='r')",
        )
    if not pd.api.types.is_numeric_dtype(values):
        meaning = "0/1 or False/True" if coding == "0/1" else "1 (censored) / 2 (event) (event_coding='r')"
        raise DataError(f"event must be coded {meaning}, found dtype {values.dtype}", table=TABLE, column=column)
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isin(out, allowed)
    if bad.any():
        if coding == "0/1":
            hint = (
                " (for R's 1 = censored / 2 = event coding pass event_coding='r')"
                if np.isin(out, (1.0, 2.0)).all()
                else ""
            )
            message = f"event must be 0 (censored) or 1 (event), found {out[bad][0]!r}{hint}"
        else:
            message = f"event must be 1 (censored) or 2 (event) with event_coding='r', found {out[bad][0]!r}"
        raise DataError(message, table=TABLE, row=first_bad_row(df, bad), column=column)
    return out == allowed[1]


def formula_columns(df: pd.DataFrame, formula: str) -> list[str]:
    """The data columns a right-hand-side formula uses, in the order of the data.

    formulaic reads ``ph.ecog`` as an attribute of ``ph``; a column of that name is meant,
    as in R, so names with dots are resolved against the data's columns. Names quoted as
    ``Q("ph.ecog")`` or in backticks are taken as they are. An unknown name is an error
    naming it.
    """
    import formulaic

    try:
        parsed = formulaic.Formula(formula)
        required = set(parsed.required_variables)
    except Exception as exc:  # formulaic's parse errors are not ValueErrors
        raise ValueError(f"cannot parse formula {formula!r}: {exc}") from exc
    quoted = set(re.findall(r"""Q\(\s*["']([^"']+)["']\s*\)|`([^`]+)`""", formula))
    named = {a or b for a, b in quoted}
    columns = [str(c) for c in df.columns]
    used = set()
    # formulaic reports Q("ph.ecog") as needing "ph": the quoted names stand for themselves
    required = {r for r in required if not any(q == r or q.startswith(r + ".") for q in named)}
    for name in sorted(named) + sorted(required):
        if name in columns:
            used.add(name)
            continue
        dotted = [c for c in columns if c.startswith(name + ".") and c in formula]
        if dotted:
            used.update(dotted)
            continue
        if name == "Q" or name in {"C", "np"}:  # formulaic's own functions
            continue
        raise DataError(
            f"no column {name!r} (named in the formula); the columns are {', '.join(columns)}",
            table=TABLE,
            column=name,
        )
    return [c for c in columns if c in used]


def quote_dotted_names(formula: str, columns) -> str:
    """Put column names containing dots (R's ``ph.ecog``) in backticks, so that formulaic
    reads a column, not an attribute, everywhere -- ``C(ph.ecog)`` and ``ph.ecog:age`` too.
    Names already quoted (backticks or ``Q("...")``) are left as they are."""
    for name in sorted((str(c) for c in columns if "." in str(c)), key=len, reverse=True):
        pattern = r"(?<![\w.`'\"])" + re.escape(name) + r"(?![\w.`'\"])"
        formula = re.sub(pattern, f"`{name}`", formula)
    return formula


def prepare(
    df: pd.DataFrame,
    roles: dict[str, str | Sequence[str] | None],
    *,
    formula: str | None = None,
    na_action: str = "omit",
) -> tuple[pd.DataFrame, int]:
    """Check the table and its columns, and deal with missing values as R does.

    ``roles`` maps each role to its column(s) (``{"time": "week", "strata": ["site"]}``);
    with ``formula`` its columns join them. ``na_action="omit"`` (R's default,
    ``na.omit``) drops every row with a missing value in a column the analysis uses and
    returns how many were dropped; ``"raise"`` stops at the first, naming row and column.
    Returns ``(table, n_omitted)``; the table keeps its index (row labels).
    """
    df = check_frame(df)
    choice("na_action", na_action, NA_ACTIONS)
    require_columns(df, roles)
    used: list[str] = []
    for names in roles.values():
        for name in [names] if isinstance(names, str) else list(names or []):
            if name not in used:
                used.append(name)
    if formula is not None:
        used += [c for c in formula_columns(df, formula) if c not in used]
    missing = df[used].isna().to_numpy() if used else np.zeros((len(df), 0), dtype=bool)
    rows = missing.any(axis=1)
    if not rows.any():
        return df, 0
    if na_action == "raise":
        i = int(np.flatnonzero(rows)[0])
        column = used[int(np.flatnonzero(missing[i])[0])]
        raise DataError(
            "missing value (na_action='raise'; na_action='omit' leaves such rows out, as R does)",
            table=TABLE,
            row=df.index[i],
            column=column,
        )
    kept = df.loc[~rows]
    if len(kept) == 0:
        raise DataError(f"every row has a missing value in a column used ({', '.join(used)})", table=TABLE)
    return kept, int(rows.sum())


def labels(df: pd.DataFrame, column: str, *, role: str) -> pd.Series:
    """A grouping column without missing values."""
    values = df[column]
    bad = values.isna().to_numpy()
    if bad.any():
        raise DataError(f"{role} is missing", table=TABLE, row=first_bad_row(df, bad), column=column)
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
