"""Input checks and small helpers shared by the analysis modules.

Used by :mod:`rjtrial.frequency`, :mod:`rjtrial.compliance`, :mod:`rjtrial.costs`
and :mod:`rjtrial.victims`: each check raises :class:`rjtrial.errors.DataError`
naming the table, row and column, or ``ValueError`` naming the allowed options.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import special

from rjtrial.errors import DataError

TABLE = "data"


def check_frame(df) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise DataError("the table has no rows", table=TABLE)
    return df


def require_columns(df: pd.DataFrame, *, table: str = TABLE, **roles) -> None:
    """Each role's column(s) exist: ``require_columns(df, count="reoffences", covariates=[...])``."""
    for role, names in roles.items():
        if names is None:
            continue
        for name in [names] if isinstance(names, str) else list(names):
            if not isinstance(name, str):
                raise ValueError(f"{role} must name a column (a string), got {name!r}")
            if name not in df.columns:
                raise DataError(
                    f"no column {name!r} (given as {role}=); the columns are {', '.join(map(str, df.columns))}",
                    table=table,
                    column=name,
                )


def first_bad_row(df: pd.DataFrame, mask: np.ndarray):
    return df.index[int(np.flatnonzero(mask)[0])]


#: Text read as an indicator when a whole column is such text (a CSV column pandas did not
#: turn into booleans, e.g. because it also holds a blank or a typo).
TEXT_CODES = {"0": False, "1": True, "False": False, "True": True}
_MISSING, _BOOL, _NUMBER, _TEXT01, _TEXT_TF, _BAD = range(6)
_CLASS_NAMES = {_BOOL: "False/True", _NUMBER: "0/1", _TEXT01: "'0'/'1' text", _TEXT_TF: "'False'/'True' text"}
#: Largest whole number a float64 holds exactly: a larger "count" has lost its units digit.
MAX_COUNT = 2.0**53


def _show(value) -> str:
    """A cell as the user typed it: numbers plainly (2, 0.5, inf), text quoted."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return f"{float(value):g}"
    return repr(value)


def is_missing(value) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)) and np.isnan(value):
        return True
    return isinstance(value, str) and value.strip() == ""


def _classify(value) -> tuple[int, bool | None]:
    """(class, truth) of one cell under the default coding."""
    if is_missing(value):
        return _MISSING, None
    if isinstance(value, (bool, np.bool_)):
        return _BOOL, bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return (_NUMBER, value == 1) if value in (0, 1) else (_BAD, None)
    if isinstance(value, str):
        if value in ("0", "1"):
            return _TEXT01, value == "1"
        if value in ("False", "True"):
            return _TEXT_TF, value == "True"
    return _BAD, None


def _check_coding(coding) -> dict:
    if not isinstance(coding, Mapping) or not coding:
        raise ValueError(
            f"coding must map each code to True or False, e.g. {{'yes': True, 'no': False}}; got {coding!r}"
        )
    if not all(isinstance(v, (bool, np.bool_)) for v in coding.values()) or set(map(bool, coding.values())) != {
        True,
        False,
    }:
        raise ValueError(
            f"coding must map codes to True and to False (both), e.g. {{'yes': True, 'no': False}}; got {coding!r}"
        )
    return {k: bool(v) for k, v in coding.items()}


def indicator(
    df: pd.DataFrame, column, *, table: str = TABLE, role: str | None = None, coding=None, hint: str | None = None
) -> np.ndarray:
    """Read a yes/no column strictly, as a boolean array; anything else is a :class:`DataError`.

    Accepted without being asked: a boolean column; numbers 0 and 1; and, when the whole
    column is such text (as a CSV column is read when pandas cannot make it boolean), the
    text ``"0"``/``"1"`` or ``"False"``/``"True"`` — one coding for the whole column. A blank
    cell (NaN, None, NA, empty text) is an error: a caller with a missing-value policy drops
    those rows first and says so. Any other value (``2``, ``"maybe"``, ``"yes"``, ``"false"``,
    ``" True"``) is an error naming the table, the row (its index label) and the column: it is
    never read by truthiness, which would make every non-empty text True.

    Parameters
    ----------
    df : DataFrame
    column : str
    table : str
        The table's name in error messages.
    role : str, optional
        What the column is, in messages (default: the column's name).
    coding : mapping, optional
        Another coding, stated: ``{"yes": True, "no": False}``. It replaces the default
        codes (they are not guessed beside it).
    hint : str, optional
        Appended to the message about a wrong value; by default, for text, how to state a coding.

    Returns
    -------
    numpy.ndarray of bool
    """
    role = column if role is None else role
    values = df[column]
    n = len(values)
    if coding is not None:
        codes = _check_coding(coding)
        cells = values.to_numpy(dtype=object)
        out = np.zeros(n, dtype=bool)
        allowed = " or ".join(f"{k!r} ({v})" for k, v in codes.items())
        for i, value in enumerate(cells):
            if is_missing(value):
                fail_at(df, i, f"{role} is missing (a blank cell)", table, column)
            try:
                out[i] = codes[value]
            except (KeyError, TypeError):
                fail_at(df, i, f"{role} must be coded {allowed}, found {_show(value)}", table, column)
        return out
    if values.dtype == bool:
        return values.to_numpy()
    if pd.api.types.is_bool_dtype(values.dtype) or (
        pd.api.types.is_numeric_dtype(values.dtype) and not isinstance(values.dtype, pd.CategoricalDtype)
    ):
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        bad = np.isnan(numbers)
        if bad.any():
            fail_at(df, int(np.flatnonzero(bad)[0]), f"{role} is missing (a blank cell)", table, column)
        bad = ~np.isin(numbers, (0.0, 1.0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail_at(
                df, i, f"{role} must be 0 or 1 (or False/True), found {_show(numbers[i])}" + (hint or ""), table, column
            )
        return numbers == 1.0
    cells = values.to_numpy(dtype=object)
    out = np.zeros(n, dtype=bool)
    first_class = first_row = None
    for i, value in enumerate(cells):
        kind, truth = _classify(value)
        if kind == _MISSING:
            fail_at(df, i, f"{role} is missing (a blank cell)", table, column)
        if kind == _BAD:
            extra = hint
            if extra is None:
                extra = (
                    "; a coding other than 0/1 or False/True must be stated, e.g. coding={'yes': True, 'no': False}"
                    if isinstance(value, str)
                    else ""
                )
            fail_at(df, i, f"{role} must be 0 or 1 (or False/True), found {_show(value)}{extra}", table, column)
        if first_class is None:
            first_class, first_row = kind, i
        elif kind != first_class:
            fail_at(
                df,
                i,
                f"{role} must be 0 or 1 (or False/True) with one coding for the whole column, "
                f"found {_show(value)} where row {df.index[first_row]} has {_show(cells[first_row])} "
                f"({_CLASS_NAMES[first_class]})",
                table,
                column,
            )
        out[i] = truth
    return out


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _reads_as_number(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def first_non_number(cells) -> int | None:
    """Position of the cell to blame in a column that should hold numbers, or None if all do.

    A CSV column with one bad cell is read as text throughout: blame the first cell that is
    not a number even as text (``"two"`` rather than the ``"3"`` above it), or a blank; if
    every cell is a number written as text, the first of them."""
    first_text = None
    for i, value in enumerate(cells):
        if is_missing(value):
            return i
        if _is_number(value):
            continue
        if not _reads_as_number(value):
            return i
        if first_text is None:
            first_text = i
    return first_text


def fail_at(df: pd.DataFrame, position: int, message: str, table: str, column) -> None:
    raise DataError(message, table=table, row=df.index[position], column=column)


def numeric(df, column, *, role, nonnegative=False, integer=False, table: str = TABLE) -> np.ndarray:
    """A complete numeric column as float64 (booleans count as 0/1 only when ``integer``).

    A text cell, a blank, an infinite value, a negative one (``nonnegative``), a fraction or a
    count too large to be exact (``integer``) is an error naming the first such row.
    """
    values = df[column]
    if not pd.api.types.is_numeric_dtype(values) or isinstance(values.dtype, pd.CategoricalDtype):
        cells = values.to_numpy(dtype=object)
        i = first_non_number(cells)
        if i is not None:
            if is_missing(cells[i]):
                fail_at(df, i, f"{role} is missing", table, column)
            fail_at(df, i, f"{role} must be numeric, found {_show(cells[i])}", table, column)
        try:
            values = pd.Series(cells.astype(float), index=values.index)
        except (TypeError, ValueError):
            raise DataError(f"{role} must be numeric, found dtype {values.dtype}", table=table, column=column) from None
    elif values.dtype == bool and not integer:
        raise DataError(f"{role} must be numeric, found dtype {values.dtype}", table=table, column=column)
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(out)
    if bad.any():
        raise DataError(f"{role} is missing", table=table, row=first_bad_row(df, bad), column=column)
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataError(
            f"{role} is not finite ({out[bad][0]:g})", table=table, row=first_bad_row(df, bad), column=column
        )
    if nonnegative and (out < 0).any():
        bad = out < 0
        raise DataError(f"{role} is negative ({out[bad][0]:g})", table=table, row=first_bad_row(df, bad), column=column)
    if integer and (out != np.round(out)).any():
        bad = out != np.round(out)
        raise DataError(
            f"{role} must be a whole number (a count), found {out[bad][0]:g}",
            table=table,
            row=first_bad_row(df, bad),
            column=column,
        )
    if integer and (np.abs(out) > MAX_COUNT).any():
        bad = np.abs(out) > MAX_COUNT
        raise DataError(
            f"{role} {out[bad][0]:g} is too large to be a count (more than 2**53)",
            table=table,
            row=first_bad_row(df, bad),
            column=column,
        )
    return out


def binary(df, column, *, role, table: str = TABLE, coding=None) -> np.ndarray:
    """A 0/1 (or False/True) column as a boolean array: :func:`indicator`, with a hint for counts."""
    values = df[column]
    hint = None
    if pd.api.types.is_numeric_dtype(values) and values.dtype != bool and coding is None:
        numbers = values.to_numpy(dtype=float, na_value=np.nan)
        if np.nanmax(numbers, initial=0) > 1 and np.all(numbers[np.isfinite(numbers)] >= 0):
            hint = f"; for 'any reoffence' from a count pass (df[{column!r}] > 0)"
    return indicator(df, column, table=table, role=role, coding=coding, hint=hint)


def groups(df, column, *, control=None, exactly_two=False, role="group") -> tuple[list, np.ndarray]:
    """Levels with the control first, and each row's level position (0 = control)."""
    values = df[column]
    bad = values.isna().to_numpy()
    if bad.any():
        raise DataError(f"{role} is missing", table=TABLE, row=first_bad_row(df, bad), column=column)
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.unique())
        levels = [level for level in values.cat.categories if level in present]
    else:
        levels = sorted(values.unique().tolist())
    if len(levels) < 2:
        what = "needs two groups to compare" if role == "group" else f"{role} needs at least two values"
        raise DataError(f"{what}, found {len(levels)} ({levels!r})", table=TABLE, column=column)
    if control is not None:
        if control not in levels:
            raise ValueError(f"control={control!r} is not a level of column {column!r}; the levels are {levels!r}")
        levels = [control] + [level for level in levels if level != control]
    if exactly_two and len(levels) > 2:
        raise DataError(
            f"compares two arms, found {len(levels)} ({levels!r}); select the rows of two arms first",
            table=TABLE,
            column=column,
        )
    codes = pd.Categorical(values, categories=levels).codes.astype(int)
    return levels, codes


def design_matrix(df, group, levels, codes, covariates) -> tuple[np.ndarray, list[str]]:
    """Model matrix with R's treatment contrasts: intercept, ``group[T.level]``, covariates."""
    columns = [np.ones(len(df))] + [(codes == k).astype(float) for k in range(1, len(levels))]
    names = ["Intercept"] + [f"{group}[T.{level}]" for level in levels[1:]]
    for name in covariates:
        values = df[name]
        if pd.api.types.is_numeric_dtype(values) and values.dtype != bool:
            columns.append(numeric(df, name, role="covariate"))
            names.append(name)
            continue
        cov_levels, cov_codes = groups(df, name, role="covariate")
        for k, level in enumerate(cov_levels[1:], start=1):
            columns.append((cov_codes == k).astype(float))
            names.append(f"{name}[T.{level}]")
    X = np.column_stack(columns)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise DataError(
            f"the model matrix ({', '.join(names)}) is rank deficient: a covariate is collinear", table=TABLE
        )
    return X, names


def covariate_list(covariates) -> list[str]:
    if covariates is None:
        return []
    if isinstance(covariates, str):
        return [covariates]
    return list(covariates)


def check_alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number between 0 and 1 (exclusive), got {alpha!r}")
    return float(alpha)


def check_choice(name, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value


# The normal and chi-square tails scipy.stats computes (``norm.sf``, ``norm.isf``, ``chi2.sf``),
# by the same scipy.special functions it calls, bit for bit: importing scipy.stats costs a
# third of a second, which every ``rjtrial`` command that fits a model would pay.
def norm_sf(x):
    """Upper tail of the standard normal, as ``scipy.stats.norm.sf``."""
    return special.ndtr(-np.asarray(x, dtype=float))[()]


def norm_isf(q):
    """Upper quantile of the standard normal, as ``scipy.stats.norm.isf``."""
    return -special.ndtri(np.asarray(q, dtype=float))[()]


def chi2_sf(x, df):
    """Upper tail of the chi-square distribution, as ``scipy.stats.chi2.sf`` (1 below zero)."""
    return special.chdtrc(np.asarray(df, dtype=float), np.maximum(np.asarray(x, dtype=float), 0.0))[()]


def wald(estimate, std_error, alpha, *, exponentiate=False):
    """(statistic, p_value, ci_lower, ci_upper) of a normal-theory Wald interval."""
    z = norm_isf(alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.divide(estimate, std_error)
    p_value = 2 * norm_sf(np.abs(statistic))
    lower, upper = estimate - z * std_error, estimate + z * std_error
    if exponentiate:
        lower, upper = np.exp(lower), np.exp(upper)
    return statistic, p_value, lower, upper


# ------------------------------------------------------------------ follow-up tables
#: The analysis columns of a follow-up table (:func:`rjtrial.followup.build`) and how
#: messages call them.
FOLLOWUP_COLUMNS = {
    "time_at_risk": "time at risk",
    "event": "event (a reoffence)",
    "reoffences": "reoffences",
    "exposure_days": "exposure (street days)",
}


def followup_frame(
    df: pd.DataFrame,
    *,
    table: str = "followup",
    columns=tuple(FOLLOWUP_COLUMNS),
    arm: str | None = "arm",
    id_column: str | None = "id",
) -> pd.DataFrame:
    """Check a follow-up table's analysis columns; a copy with ``event`` boolean and the numbers float.

    Checks, each error naming ``table``, the row (index label) and the column: no rows;
    ``id_column`` (when the table has it) present and unique; ``arm`` present in every row;
    ``event`` strictly 0/1 or False/True (:func:`indicator`); ``time_at_risk`` and
    ``exposure_days`` finite and non-negative numbers, ``reoffences`` a whole non-negative
    number; time at risk no longer than the street days observed (``exposure_days``).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    needed = [c for c in (arm, *columns) if c is not None]
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"missing column(s) {', '.join(map(repr, missing))}: is this a follow-up table from `rjtrial followup`?",
            table=table,
        )
    if len(df) == 0:
        raise DataError("the table has no rows", table=table)
    if id_column is not None and id_column in df.columns:
        ids = df[id_column]
        bad = ids.isna().to_numpy()
        if bad.any():
            fail_at(df, int(np.flatnonzero(bad)[0]), "the participant id is missing", table, id_column)
        twice = ids.duplicated(keep="first").to_numpy()
        if twice.any():
            i = int(np.flatnonzero(twice)[0])
            first = int(np.flatnonzero((ids == ids.iloc[i]).to_numpy())[0])
            fail_at(
                df,
                i,
                f"duplicate participant id {ids.iloc[i]!r} (first on row {df.index[first]}); "
                "a follow-up table has one row per participant",
                table,
                id_column,
            )
    if arm is not None:
        bad = df[arm].isna().to_numpy()
        if bad.any():
            fail_at(df, int(np.flatnonzero(bad)[0]), "the arm is missing", table, arm)
    out = df.copy()
    if "event" in columns:
        out["event"] = indicator(df, "event", table=table, role=FOLLOWUP_COLUMNS["event"], hint="")
    for column, integer in (("time_at_risk", False), ("reoffences", True), ("exposure_days", False)):
        if column in columns:
            out[column] = numeric(
                df, column, role=FOLLOWUP_COLUMNS[column], nonnegative=True, integer=integer, table=table
            )
    if "time_at_risk" in columns and "exposure_days" in columns:
        longer = (out["time_at_risk"] > out["exposure_days"]).to_numpy()
        if longer.any():
            i = int(np.flatnonzero(longer)[0])
            fail_at(
                df,
                i,
                f"time at risk {out['time_at_risk'].iloc[i]:g} is longer than the "
                f"{out['exposure_days'].iloc[i]:g} street days observed (exposure_days): time at risk counts "
                "street days up to the first reoffence",
                table,
                "time_at_risk",
            )
    return out


def in_table(exc: DataError, table: str) -> DataError:
    """The same error (message, row, column) naming another table: a verb's own check, told as
    the caller's table (``"followup"`` rather than ``"data"``)."""
    where = []
    if exc.table is not None:
        where.append(f"table {exc.table}")
    if exc.row is not None:
        where.append(f"row {exc.row}")
    if exc.column is not None:
        where.append(f"column {exc.column!r}")
    text, prefix = str(exc), f"{', '.join(where)}: " if where else ""
    return DataError(
        text[len(prefix) :] if text.startswith(prefix) else text, table=table, row=exc.row, column=exc.column
    )


NA_ACTIONS = ("omit", "raise")


def complete_rows(df: pd.DataFrame, columns, *, na_action: str = "omit", table: str = TABLE):
    """Rows without a missing value in ``columns``, as R's ``na.omit`` (``na_action="omit"``),
    or an error at the first missing value naming its row and column (``"raise"``).

    Returns ``(table, n_omitted)``; the table keeps its index (row labels).
    """
    if na_action not in NA_ACTIONS:
        raise ValueError(f"na_action must be one of 'omit', 'raise'; got {na_action!r}")
    used = list(dict.fromkeys(c for c in columns if c is not None))
    missing = df[used].isna().to_numpy() if used else np.zeros((len(df), 0), dtype=bool)
    rows = missing.any(axis=1)
    if not rows.any():
        return df, 0
    if na_action == "raise":
        i = int(np.flatnonzero(rows)[0])
        raise DataError(
            "missing value (na_action='raise'; na_action='omit' leaves such rows out, as R does)",
            table=table,
            row=df.index[i],
            column=used[int(np.flatnonzero(missing[i])[0])],
        )
    kept = df.loc[~rows]
    if len(kept) == 0:
        raise DataError(f"every row has a missing value in a column used ({', '.join(used)})", table=table)
    return kept, int(rows.sum())
