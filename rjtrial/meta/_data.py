"""The inputs of a meta-analysis, checked once: study estimates, variances, moderators, counts."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rjtrial.errors import DataError

TABLE = "effects"
BINARY_COUNTS = ("events_treatment", "n_treatment", "events_control", "n_control")
RATE_COUNTS = ("events_treatment", "person_time_treatment", "events_control", "person_time_control")


@dataclass(frozen=True, eq=False)
class MetaData:
    """Study rows of one analysis (all rows of the effects frame, in order).

    ``estimable`` marks rows with an estimate and variance (inverse-variance methods use
    only those); ``X`` is the design matrix (first column the intercept); ``counts`` holds
    the 2x2 or rate columns when present (Mantel-Haenszel and Peto use them).
    """

    yi: np.ndarray
    vi: np.ndarray
    X: np.ndarray
    names: tuple[str, ...]
    studies: pd.Index
    measure: str | None
    counts: pd.DataFrame | None = field(default=None, repr=False)
    frame: pd.DataFrame | None = field(default=None, repr=False)  # the effects frame (other columns: clusters)
    weights: np.ndarray | None = field(default=None, repr=False)  # user weights (metafor's rma(weights=))

    @property
    def estimable(self) -> np.ndarray:
        return np.isfinite(self.yi) & np.isfinite(self.vi)

    @property
    def n_rows(self) -> int:
        return len(self.yi)

    def subset(self, keep) -> "MetaData":
        """The rows where the boolean mask ``keep`` is True (positions of the effects frame)."""
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != (self.n_rows,):
            raise ValueError(f"the mask must have one entry per study ({self.n_rows}), got shape {keep.shape}")
        counts = self.counts.loc[keep] if self.counts is not None else None
        frame = self.frame.iloc[np.flatnonzero(keep)] if self.frame is not None else None
        weights = self.weights[keep] if self.weights is not None else None
        return MetaData(
            self.yi[keep],
            self.vi[keep],
            self.X[keep],
            self.names,
            self.studies[keep],
            self.measure,
            counts,
            frame,
            weights,
        )

    def intercept_only(self) -> "MetaData":
        return MetaData(
            self.yi,
            self.vi,
            self.X[:, :1],
            self.names[:1],
            self.studies,
            self.measure,
            self.counts,
            self.frame,
            self.weights,
        )


#: What double precision can pool: weights 1/v, their squares and sums, and y**2 / v stay finite
#: and accurate. Effect sizes on their own scale (log ratios, standardised differences) are
#: many orders of magnitude inside these limits.
ESTIMATE_LIMIT = 1e50
VARIANCE_RANGE = (1e-50, 1e50)


def _numbers(effects: pd.DataFrame, column: str) -> np.ndarray:
    """A column of numbers as float64 (missing = NaN); text or booleans are an error naming the study."""
    values = effects[column]
    if pd.api.types.is_numeric_dtype(values) and values.dtype != bool:
        return values.to_numpy(dtype=float, na_value=np.nan)
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values.to_numpy(dtype=object)):
        if value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and np.isnan(value)):
            continue
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
            _fail(f"not a number: {value!r}", row=effects.index[i], column=column)
        out[i] = float(value)
    return out


def _fail(message: str, *, row=None, column: str | None = None):
    raise DataError(message, table=TABLE, row=row, column=column)


NA_ACTIONS = ("omit", "raise")


def _design(effects: pd.DataFrame, moderators, na_action: str = "raise"):
    """Intercept plus moderator columns; categorical moderators become treatment-coded dummies.

    Returns ``(X, names, missing)``: ``missing`` marks rows with a missing moderator (their
    row of X is NaN). With ``na_action="raise"`` the first one raises a DataError instead.

    The reference level of a categorical moderator is the first category of a
    ``pd.Categorical`` (set its order to choose it); for text and boolean columns it is the
    first in Python's sorted order: Unicode code points, so upper case sorts before lower
    case and accented letters after ``z`` -- R's ``factor()`` sorts by the locale's collation
    and can differ for such labels (use a ``pd.Categorical`` to make both agree).
    """
    k = len(effects)
    columns: list[np.ndarray] = [np.ones(k)]
    names: list[str] = ["intercept"]
    missing_rows = np.zeros(k, dtype=bool)
    if moderators is None:
        return np.column_stack(columns), tuple(names), missing_rows
    if isinstance(moderators, str):
        moderators = [moderators]
    if isinstance(moderators, pd.Series):
        moderators = moderators.to_frame()
    if isinstance(moderators, pd.DataFrame):
        frame = moderators
        if len(frame) != k:
            raise ValueError(f"moderators have {len(frame)} rows but effects have {k}")
        if not frame.index.equals(effects.index):
            if set(frame.index) == set(effects.index) and frame.index.is_unique:
                frame = frame.loc[effects.index]
            else:
                frame = frame.set_axis(effects.index)
    elif isinstance(moderators, (list, tuple)) and all(isinstance(m, str) for m in moderators):
        missing = [m for m in moderators if m not in effects.columns]
        if missing:
            raise ValueError(
                f"moderators {missing} are not columns of effects (columns: {', '.join(map(str, effects.columns))})"
            )
        frame = effects[list(moderators)]
    else:
        array = np.asarray(moderators)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2 or array.shape[0] != k:
            raise ValueError(f"moderators must have one row per study ({k}), got shape {array.shape}")
        frame = pd.DataFrame(array, index=effects.index, columns=[f"x{j + 1}" for j in range(array.shape[1])])
    for name in frame.columns:
        col = frame[name]
        na = col.isna().to_numpy()
        if na.any():
            if na_action == "raise":
                row = col.index[np.flatnonzero(na)[0]]
                _fail("missing moderator value", row=row, column=str(name))
            missing_rows |= na
        if col.dtype == object:
            col = _text_or_numbers(col, str(name))
        if isinstance(col.dtype, pd.CategoricalDtype) or col.dtype == object or col.dtype == bool:
            if isinstance(col.dtype, pd.CategoricalDtype):
                levels = list(col.cat.categories)
            else:
                levels = sorted(col.dropna().unique())
            for level in levels[1:]:
                dummy = (col == level).to_numpy(dtype=float)
                dummy[na] = np.nan
                columns.append(dummy)
                names.append(f"{name}[{level}]")
        else:
            values = col.to_numpy(dtype=float)
            if not np.all(np.isfinite(values) | na):
                row = col.index[np.flatnonzero(~(np.isfinite(values) | na))[0]]
                _fail("moderator value is not finite", row=row, column=str(name))
            columns.append(values)
            names.append(str(name))
    return np.column_stack(columns), tuple(names), missing_rows


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _numeric_text(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


def _text_or_numbers(col: pd.Series, name: str) -> pd.Series:
    """An object moderator: labels (categorical), or numbers (numeric); never guessed between.

    Python numbers are numbers. Text that a CSV reader left as text because one cell is not a
    number, or numbers written as text, would silently become one dummy per distinct value:
    that is an error naming the cell, and the user says which is meant (numbers, or a
    ``pandas.Categorical`` of codes).
    """
    cells = col.to_numpy(dtype=object)
    present = ~col.isna().to_numpy()  # missing cells are na_action's business
    numbers = np.array([_is_number(v) for v in cells]) & present
    if (numbers | ~present).all():
        return col.astype(float)
    text_numbers = np.array([_numeric_text(v) for v in cells]) & present
    if (numbers | text_numbers | ~present).all():
        i = int(np.flatnonzero(text_numbers)[0])
        _fail(
            f"moderator holds numbers written as text ({cells[i]!r}): convert the column to numbers, or to a "
            "pandas Categorical if the codes are categories",
            row=col.index[i],
            column=name,
        )
    if (numbers | text_numbers).any():
        i = int(np.flatnonzero(~(numbers | text_numbers))[0])
        _fail(
            f"moderator mixes numbers and text, found {cells[i]!r}: a typo in a numeric column? (make it a "
            "pandas Categorical if the values are labels)",
            row=col.index[i],
            column=name,
        )
    return col


def _weights(effects: pd.DataFrame, weights) -> np.ndarray:
    """User weights: a column of ``effects`` or one value per row; positive and finite."""
    if isinstance(weights, str):
        if weights not in effects.columns:
            raise ValueError(f"weights={weights!r} is not a column of effects")
        values = pd.to_numeric(effects[weights], errors="coerce").to_numpy(dtype=float)
        column = weights
    else:
        values = np.asarray(weights.to_numpy() if isinstance(weights, pd.Series) else weights, dtype=float)
        if values.shape != (len(effects),):
            raise ValueError(f"weights must have one value per study ({len(effects)}), got shape {values.shape}")
        column = "weights"
    bad = ~(np.isfinite(values) & (values > 0))
    if bad.any():
        i = np.flatnonzero(bad)[0]
        _fail(f"weight must be positive and finite, got {values[i]}", row=effects.index[i], column=column)
    return values


def prepare(effects: pd.DataFrame, moderators=None, weights=None, na_action: str = "raise") -> MetaData:
    """Check an effect-size frame (``estimate``, ``variance``) and build the analysis inputs.

    Rows whose estimate and variance are both missing (a double-zero table) are never
    estimable. With ``na_action="omit"`` so are rows with either missing or a missing
    moderator (metafor's ``na.omit``); with ``"raise"`` these raise a DataError naming the row.
    Infinite values and non-positive variances always raise.
    """
    if na_action not in NA_ACTIONS:
        raise ValueError(f"na_action={na_action!r}: choose one of {', '.join(map(repr, NA_ACTIONS))}")
    if not isinstance(effects, pd.DataFrame):
        raise TypeError(f"effects must be a pandas DataFrame (from rjtrial.effects), not {type(effects).__name__}")
    missing = [c for c in ("estimate", "variance") if c not in effects.columns]
    if missing:
        raise ValueError(f"effects lack column(s) {missing}; build them with rjtrial.effects")
    if len(effects) == 0:
        raise ValueError("effects has no rows")
    yi = _numbers(effects, "estimate")
    vi = _numbers(effects, "variance")
    studies = effects.index
    nan_y, nan_v = np.isnan(yi), np.isnan(vi)
    skip = nan_y & nan_v  # not estimable (e.g. a double-zero table): left out of inverse-variance pooling
    if na_action == "omit":
        skip = skip | nan_y | nan_v
    low, high = VARIANCE_RANGE
    with np.errstate(invalid="ignore", over="ignore"):
        bad = ~skip & (
            ~np.isfinite(yi) | ~np.isfinite(vi) | (vi <= 0) | (np.abs(yi) > ESTIMATE_LIMIT) | (vi < low) | (vi > high)
        )
    if bad.any():  # the first offending row, reported as the row-by-row check always did
        i = int(np.flatnonzero(bad)[0])
        if not np.isfinite(yi[i]):
            _fail(f"estimate is {yi[i]} but the variance is {vi[i]}", row=studies[i], column="estimate")
        if not np.isfinite(vi[i]):
            _fail(f"variance is {vi[i]}", row=studies[i], column="variance")
        if vi[i] <= 0:
            _fail(f"variance must be positive, got {vi[i]:g}", row=studies[i], column="variance")
        if abs(yi[i]) > ESTIMATE_LIMIT:
            _fail(
                f"estimate {yi[i]:g} is too large to pool (|estimate| at most {ESTIMATE_LIMIT:g}): "
                "is it on the measure's own scale (log ratios, standardised differences)?",
                row=studies[i],
                column="estimate",
            )
        _fail(
            f"variance {vi[i]:g} is too {'small' if vi[i] < low else 'large'} to pool (between {low:g} and "
            f"{high:g}): is it a variance on the measure's scale?",
            row=studies[i],
            column="variance",
        )
    X, names, missing_moderator = _design(effects, moderators, na_action)
    omit = skip | missing_moderator
    if omit.any():
        yi = np.where(omit, np.nan, yi)
        vi = np.where(omit, np.nan, vi)
    counts = None
    for columns in (BINARY_COUNTS, RATE_COUNTS):
        if all(c in effects.columns for c in columns):
            counts = effects[list(columns)].astype(float)
            break
    user_weights = None if weights is None else _weights(effects, weights)
    return MetaData(yi, vi, X, names, studies, effects.attrs.get("measure"), counts, effects, user_weights)


def group_labels(effects: pd.DataFrame, subgroup) -> pd.Series:
    """Subgroup label per study: a column name of ``effects`` or an array/Series aligned by row."""
    if isinstance(subgroup, str):
        if subgroup not in effects.columns:
            raise ValueError(f"subgroup={subgroup!r} is not a column of effects")
        labels = effects[subgroup]
    elif isinstance(subgroup, pd.Series) and subgroup.index.equals(effects.index):
        labels = subgroup
    else:
        values = subgroup.to_numpy() if isinstance(subgroup, pd.Series) else np.asarray(subgroup)
        if values.shape != (len(effects),):
            raise ValueError(f"subgroup must have one label per study ({len(effects)}), got shape {values.shape}")
        labels = pd.Series(values, index=effects.index)
    if labels.isna().any():
        row = labels.index[np.flatnonzero(labels.isna().to_numpy())[0]]
        _fail("missing subgroup label", row=row, column=subgroup if isinstance(subgroup, str) else "subgroup")
    return labels
