"""Shared plumbing of the effect-size functions: inputs, validation naming the row, output frame.

Every public function in :mod:`rjtrial.effects` takes an optional ``data`` frame first and
then keyword-only inputs, each either a column name of ``data`` or an array / Series /
scalar. The output is one row per study, indexed like the input, with ``estimate`` and
``variance`` (plus the inputs MH/Peto pooling needs) and ``attrs["measure"]``.

Missing inputs follow ``na_action``: ``"omit"`` (the default, as R ``escalc`` and
:func:`rjtrial.meta.pool`) keeps the study's row with a missing ``estimate`` and ``variance``,
counts it in ``attrs["n_omitted"]``, lists it in ``attrs["omitted"]`` (label and the first
missing column) and says so in an :class:`rjtrial.errors.RjtrialWarning`; ``"raise"`` raises a
:class:`rjtrial.errors.DataError` naming the first such row and column.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping
from types import FrameType

import numpy as np
import pandas as pd

from rjtrial._checks import first_non_number
from rjtrial.errors import DataError, RjtrialWarning

TABLE = "effects"
#: What a missing input does: leave the study out (counted, with a warning) or raise.
NA_ACTIONS = ("omit", "raise")


def check_na_action(na_action: str) -> str:
    if na_action not in NA_ACTIONS:
        raise ValueError(f"na_action={na_action!r}: choose one of {', '.join(map(repr, NA_ACTIONS))}")
    return na_action


class Inputs:
    """Resolved numeric inputs of one call: arrays of equal length and the study labels."""

    def __init__(self, data, arguments: Mapping[str, object], study=None, na_action: str = "raise"):
        self.na_action = check_na_action(na_action)
        if data is not None and not isinstance(data, pd.DataFrame):
            raise TypeError(f"data must be a pandas DataFrame or None, not {type(data).__name__}")
        self.data = data
        raw = {name: self._resolve(name, value) for name, value in arguments.items()}
        lengths = {name: len(v) for name, v in raw.items() if isinstance(v, pd.Series) or np.ndim(v) == 1}
        n = max(lengths.values()) if lengths else 1
        for name, length in lengths.items():
            if length != n:
                raise ValueError(f"{name} has {length} values but other inputs have {n}")
        self.n = n
        self.index = self._index(raw, study, n)
        self.values = {}
        for name, value in raw.items():
            array = value.to_numpy() if isinstance(value, pd.Series) else np.asarray(value)
            if array.ndim > 1:
                raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
            self._numbers_only(name, array)
            try:
                array = np.broadcast_to(np.asarray(array, dtype=float), (n,)).copy()
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be numeric") from exc
            self.values[name] = array
        #: Rows left out for a missing input (``na_action="omit"``) and the column that was missing.
        self.omitted = np.zeros(n, dtype=bool)
        self.omitted_column: dict[int, str] = {}
        if self.na_action == "omit":
            for name, array in self.values.items():
                for i in np.flatnonzero(np.isnan(array) & ~self.omitted):
                    self.omitted_column[int(i)] = name
                self.omitted |= np.isnan(array)

    def _numbers_only(self, name: str, array: np.ndarray) -> None:
        """Text or booleans where numbers are needed: name the first such row (they were turned
        into numbers, True as 1, or refused without saying where)."""
        bad: int | None
        if array.dtype == bool:
            bad = 0
        elif array.dtype.kind in "OUS":
            cells = [None if _missing(v) else v for v in array.tolist()]
            bad = first_non_number(cells)
            if bad is not None and cells[bad] is None:
                return  # a blank: "missing value" from finite(), naming the row
        else:
            return
        if bad is not None:
            where = bad if array.size == self.n else 0
            self.fail(where, name, f"{name} must be numeric, found {array.tolist()[bad]!r}")

    def _resolve(self, name, value):
        if isinstance(value, str):
            if self.data is None:
                raise ValueError(f"{name}={value!r} names a column but no data frame was given")
            if value not in self.data.columns:
                raise ValueError(
                    f"{name}={value!r}: no such column in data (columns: {', '.join(map(str, self.data.columns))})"
                )
            return self.data[value]
        if value is None:
            raise ValueError(f"{name} is required")
        return value

    def _index(self, raw, study, n) -> pd.Index:
        if study is not None:
            labels = self._resolve("study", study)
            labels = labels.to_numpy() if isinstance(labels, pd.Series) else np.asarray(labels)
            if labels.shape != (n,):
                raise ValueError(f"study has {labels.size} labels but the inputs have {n} rows")
            return pd.Index(labels, name="study")
        if self.data is not None:
            if len(self.data) != n:
                raise ValueError(f"data has {len(self.data)} rows but the inputs have {n}")
            return self.data.index
        for value in raw.values():
            if isinstance(value, pd.Series):
                return value.index
        return pd.RangeIndex(n)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    # ---- validation: the first offending row is named ----------------------------------------
    def fail(self, position: int, column: str | None, message: str):
        raise DataError(message, table=TABLE, row=self.index[position], column=column)

    def require(self, ok: np.ndarray, column: str | None, message) -> None:
        """Raise for the first row where ``ok`` is False; ``message(i)`` builds the text.

        Rows omitted for a missing input are not checked."""
        bad = np.flatnonzero(~np.asarray(ok, dtype=bool) & ~self.omitted)
        if bad.size:
            i = int(bad[0])
            self.fail(i, column, message(i) if callable(message) else message)

    def finite(self, *names: str) -> None:
        for name in names:
            x = self[name]
            self.require(~np.isnan(x), name, "missing value")
            self.require(np.isfinite(x), name, lambda i, x=x: f"value {x[i]} is not finite")

    def whole(self, *names: str, what: str = "count") -> None:
        """Counts are whole numbers (a fractional count is a typo or a pre-applied correction:
        the zero-cell correction is ``add``/``to``)."""
        for name in names:
            x = self[name]
            self.require(x == np.round(x), name, lambda i, x=x: f"a {what} must be a whole number, got {x[i]:g}")

    def non_negative(self, *names: str, what: str = "count") -> None:
        for name in names:
            x = self[name]
            self.require(x >= 0, name, lambda i, x=x: f"negative {what} {x[i]:g}")

    def positive(self, *names: str, what: str) -> None:
        for name in names:
            x = self[name]
            self.require(x > 0, name, lambda i, x=x: f"{what} must be positive, got {x[i]:g}")


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (float, np.floating)) and np.isnan(value))


def output(
    inputs: Inputs,
    estimate,
    variance,
    *,
    measure: str,
    extra: Mapping[str, np.ndarray] | None = None,
    attrs: Mapping[str, object] | None = None,
) -> pd.DataFrame:
    """The effect-size frame: ``estimate, variance`` then ``extra`` columns; attrs record the measure
    and the studies omitted for a missing input (``n_omitted``, ``omitted``), with a warning."""
    omitted = inputs.omitted
    estimate = np.where(omitted, np.nan, np.broadcast_to(np.asarray(estimate, dtype=float), omitted.shape))
    variance = np.where(omitted, np.nan, np.broadcast_to(np.asarray(variance, dtype=float), omitted.shape))
    columns = {"estimate": estimate, "variance": variance}
    if extra:
        columns.update({k: np.asarray(v, dtype=float) for k, v in extra.items()})
    frame = pd.DataFrame(columns, index=inputs.index)
    frame.attrs["measure"] = measure
    if attrs:
        frame.attrs.update(attrs)
    record_omitted(frame, inputs)
    return frame


def record_omitted(frame: pd.DataFrame, inputs: Inputs) -> None:
    """``attrs["n_omitted"]`` and ``attrs["omitted"]`` (one ``{"study", "column"}`` per row left
    out for a missing input), and a warning naming them: never silently."""
    positions = np.flatnonzero(inputs.omitted)
    frame.attrs["n_omitted"] = int(positions.size)
    frame.attrs["omitted"] = [
        {"study": _label(inputs.index[i]), "column": inputs.omitted_column[int(i)]} for i in positions
    ]
    if positions.size:
        shown = ", ".join(f"{item['study']} ({item['column']})" for item in frame.attrs["omitted"][:10])
        more = f" and {positions.size - 10} more" if positions.size > 10 else ""
        warnings.warn(
            f"{positions.size} of {len(frame)} studies omitted for a missing value (na_action='omit'; "
            f"na_action='raise' makes it an error): {shown}{more}",
            RjtrialWarning,
            stacklevel=outside_stacklevel(),
        )


def outside_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside :mod:`rjtrial.effects`."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("rjtrial.effects"):
        frame, level = frame.f_back, level + 1
    return level


def _label(value):
    """A study label as plain Python (JSON-ready: no numpy scalars)."""
    return value.item() if isinstance(value, np.generic) else value


def check_positive_variance(inputs: Inputs, variance: np.ndarray, *, hint: str = "") -> None:
    """Zero (or undefined) sampling variance makes a study unusable: name its row."""
    ok = np.isnan(variance) | (variance > 0)
    inputs.require(
        ok & ~np.isinf(variance),
        None,
        lambda i: (
            f"sampling variance is {variance[i]:g}; the study carries no usable information"
            + (f" ({hint})" if hint else "")
        ),
    )


# ---- shared by the measures: zero-count corrections, variance types, weighted means ------------------
#: Which studies receive the zero-count correction ``add`` (metafor's ``to``: only0, all, if0all, none).
CORRECTION_TARGETS = ("only_zero", "all", "if_any_zero", "none")


def check_correction(add: float, to: str) -> None:
    """``add`` a non-negative number and ``to`` one of :data:`CORRECTION_TARGETS` (ValueError otherwise)."""
    if to not in CORRECTION_TARGETS:
        raise ValueError(f"to={to!r}: choose one of {', '.join(map(repr, CORRECTION_TARGETS))}")
    if (
        isinstance(add, bool)
        or not isinstance(add, (int, float, np.integer, np.floating))
        or not np.isfinite(add)
        or add < 0
    ):
        raise ValueError(f"add must be a non-negative number, got {add!r}")


def correction_mask(has_zero: np.ndarray, to: str, *, eligible: np.ndarray | None = None) -> np.ndarray:
    """The studies that get the correction: those with a zero count (``"only_zero"``), all
    (``"all"``), all if any has a zero count (``"if_any_zero"``), or none. ``eligible`` leaves
    out rows that take no part (dropped double-zero tables, omitted studies)."""
    has_zero = np.asarray(has_zero, dtype=bool)
    eligible = np.ones_like(has_zero) if eligible is None else np.asarray(eligible, dtype=bool)
    has_zero = has_zero & eligible
    if to == "all":
        return eligible.copy()
    if to == "only_zero":
        return has_zero
    if to == "if_any_zero":
        return eligible.copy() if has_zero.any() else np.zeros_like(has_zero)
    return np.zeros_like(has_zero)


def check_variance_type(variance_type: str, allowed: tuple[str, ...], measure: str) -> str:
    if variance_type not in allowed:
        raise ValueError(
            f"variance_type={variance_type!r} for {measure}: choose one of {', '.join(map(repr, allowed))}"
        )
    return variance_type


def weighted_mean(values: np.ndarray, weights: np.ndarray) -> float:
    """sum(w x) / sum(w) over the rows where both are present (metafor's ``.wmean(na.rm = TRUE)``)."""
    values, weights = np.asarray(values, dtype=float), np.asarray(weights, dtype=float)
    keep = ~(np.isnan(values) | np.isnan(weights))
    return float(np.sum(values[keep] * weights[keep]) / np.sum(weights[keep]))


def require_defined(inputs: Inputs, values: np.ndarray, column: str | None, message) -> None:
    """An estimate or variance that the inputs leave undefined (infinite or NaN; R ``escalc``
    returns NA) is an error naming the study."""
    with np.errstate(invalid="ignore"):
        inputs.require(np.isfinite(values), column, message)
