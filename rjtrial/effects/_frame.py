"""Shared plumbing of the effect-size functions: inputs, validation naming the row, output frame.

Every public function in :mod:`rjtrial.effects` takes an optional ``data`` frame first and
then keyword-only inputs, each either a column name of ``data`` or an array / Series /
scalar. The output is one row per study, indexed like the input, with ``estimate`` and
``variance`` (plus the inputs MH/Peto pooling needs) and ``attrs["measure"]``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from rjtrial._checks import first_non_number
from rjtrial.errors import DataError

TABLE = "effects"


class Inputs:
    """Resolved numeric inputs of one call: arrays of equal length and the study labels."""

    def __init__(self, data, arguments: Mapping[str, object], study=None):
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
        """Raise for the first row where ``ok`` is False; ``message(i)`` builds the text."""
        bad = np.flatnonzero(~np.asarray(ok, dtype=bool))
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


def output(inputs: Inputs, estimate, variance, *, measure: str, extra: Mapping[str, np.ndarray] | None = None,
           attrs: Mapping[str, object] | None = None) -> pd.DataFrame:
    """The effect-size frame: ``estimate, variance`` then ``extra`` columns; attrs record the measure."""
    columns = {"estimate": np.asarray(estimate, dtype=float), "variance": np.asarray(variance, dtype=float)}
    if extra:
        columns.update({k: np.asarray(v, dtype=float) for k, v in extra.items()})
    frame = pd.DataFrame(columns, index=inputs.index)
    frame.attrs["measure"] = measure
    if attrs:
        frame.attrs.update(attrs)
    return frame


def check_positive_variance(inputs: Inputs, variance: np.ndarray, *, hint: str = "") -> None:
    """Zero (or undefined) sampling variance makes a study unusable: name its row."""
    ok = np.isnan(variance) | (variance > 0)
    inputs.require(ok & ~np.isinf(variance), None,
                   lambda i: f"sampling variance is {variance[i]:g}; the study carries no usable information"
                   + (f" ({hint})" if hint else ""))
