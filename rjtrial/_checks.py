"""Input checks and small helpers shared by the analysis modules.

Used by :mod:`rjtrial.frequency`, :mod:`rjtrial.compliance`, :mod:`rjtrial.costs`
and :mod:`rjtrial.victims`: each check raises :class:`rjtrial.errors.DataError`
naming the table, row and column, or ``ValueError`` naming the allowed options.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.errors import DataError

TABLE = "data"


def _frame(df) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise DataError("the table has no rows", table=TABLE)
    return df


def _require(df: pd.DataFrame, *, table: str = TABLE, **roles) -> None:
    """Each role's column(s) exist: ``_require(df, count="reoffences", covariates=[...])``."""
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


def _first_bad(df: pd.DataFrame, mask: np.ndarray):
    return df.index[int(np.flatnonzero(mask)[0])]


def _numeric(df, column, *, role, nonnegative=False, integer=False) -> np.ndarray:
    """A complete numeric column as float64 (booleans count as 0/1 only when ``integer``)."""
    values = df[column]
    if not pd.api.types.is_numeric_dtype(values) or (values.dtype == bool and not integer):
        raise DataError(f"{role} must be numeric, found dtype {values.dtype}", table=TABLE, column=column)
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataError(f"{role} is missing or not finite", table=TABLE, row=_first_bad(df, bad), column=column)
    if nonnegative and (out < 0).any():
        bad = out < 0
        raise DataError(f"{role} is negative ({out[bad][0]:g})", table=TABLE, row=_first_bad(df, bad), column=column)
    if integer and (out != np.round(out)).any():
        bad = out != np.round(out)
        raise DataError(
            f"{role} must be a whole number (a count), found {out[bad][0]:g}",
            table=TABLE, row=_first_bad(df, bad), column=column,
        )
    return out


def _binary(df, column, *, role) -> np.ndarray:
    """A 0/1 (or False/True) column as a boolean array."""
    values = df[column]
    if values.dtype == bool:
        return values.to_numpy()
    if not pd.api.types.is_numeric_dtype(values):
        raise DataError(f"{role} must be coded 0/1 or False/True, found dtype {values.dtype}", table=TABLE, column=column)
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(out)
    if bad.any():
        raise DataError(f"{role} is missing", table=TABLE, row=_first_bad(df, bad), column=column)
    bad = ~np.isin(out, (0.0, 1.0))
    if bad.any():
        hint = f"; for 'any reoffence' from a count pass (df[{column!r}] > 0)" if np.nanmax(out) > 1 else ""
        raise DataError(
            f"{role} must be 0 or 1, found {out[bad][0]!r}{hint}", table=TABLE, row=_first_bad(df, bad), column=column
        )
    return out == 1.0


def _groups(df, column, *, control=None, exactly_two=False, role="group") -> tuple[list, np.ndarray]:
    """Levels with the control first, and each row's level position (0 = control)."""
    values = df[column]
    bad = values.isna().to_numpy()
    if bad.any():
        raise DataError(f"{role} is missing", table=TABLE, row=_first_bad(df, bad), column=column)
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
            table=TABLE, column=column,
        )
    codes = pd.Categorical(values, categories=levels).codes.astype(int)
    return levels, codes


def _design(df, group, levels, codes, covariates) -> tuple[np.ndarray, list[str]]:
    """Model matrix with R's treatment contrasts: intercept, ``group[T.level]``, covariates."""
    columns = [np.ones(len(df))] + [(codes == k).astype(float) for k in range(1, len(levels))]
    names = ["Intercept"] + [f"{group}[T.{level}]" for level in levels[1:]]
    for name in covariates:
        values = df[name]
        if pd.api.types.is_numeric_dtype(values) and values.dtype != bool:
            columns.append(_numeric(df, name, role="covariate"))
            names.append(name)
            continue
        cov_levels, cov_codes = _groups(df, name, role="covariate")
        for k, level in enumerate(cov_levels[1:], start=1):
            columns.append((cov_codes == k).astype(float))
            names.append(f"{name}[T.{level}]")
    X = np.column_stack(columns)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        raise DataError(f"the model matrix ({', '.join(names)}) is rank deficient: a covariate is collinear", table=TABLE)
    return X, names


def _covariate_list(covariates) -> list[str]:
    if covariates is None:
        return []
    if isinstance(covariates, str):
        return [covariates]
    return list(covariates)


def _alpha(alpha) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise ValueError(f"alpha must be a number between 0 and 1 (exclusive), got {alpha!r}")
    return float(alpha)


def _choice(name, value, options) -> str:
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value


def _wald(estimate, std_error, alpha, *, exponentiate=False):
    """(statistic, p_value, ci_lower, ci_upper) of a normal-theory Wald interval."""
    z = stats.norm.isf(alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = np.divide(estimate, std_error)
    p_value = 2 * stats.norm.sf(np.abs(statistic))
    lower, upper = estimate - z * std_error, estimate + z * std_error
    if exponentiate:
        lower, upper = np.exp(lower), np.exp(upper)
    return statistic, p_value, lower, upper
