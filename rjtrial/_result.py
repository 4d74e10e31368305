"""The one shape every result object has (see CONTRIBUTING.md, "Result objects").

A result is a frozen dataclass that mixes in :class:`Result` and gives

* ``summary_frame()`` -- a tidy :class:`pandas.DataFrame` in the package's column
  vocabulary (``term, estimate, std_error, statistic, p_value, ci_lower, ci_upper`` and
  counts ``n, events``): ``estimate`` on the model's own scale (log hazard ratio, log rate
  ratio, d), a ratio in its own column (``hazard_ratio``), the confidence level in
  ``attrs["alpha"]``, never in a column name;
* ``format()`` -- what a person reads; the CLI prints it;
* ``to_dict()`` -- JSON-ready (no NaN, no numpy scalars); what ``--json`` prints.

:class:`Result` supplies ``to_dict()`` from the dataclass fields and ``summary_frame()``,
``__str__`` from ``format()``, and :func:`jsonable`, used by every ``to_dict``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pandas as pd


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: NaN and NA become None, numpy scalars Python numbers,
    arrays and Series lists, DataFrames lists of records, dataclasses dicts."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, pd.DataFrame):
        return [jsonable(row) for row in value.to_dict(orient="records")]
    if isinstance(value, (pd.Series, pd.Index, np.ndarray, list, tuple)):
        return [jsonable(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if hasattr(value, "to_dict") and not isinstance(value, type):
        return jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value) if not f.name.startswith("_")
        }
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (pd.Timestamp,)):
        return value.isoformat()
    return str(value)


class Result:
    """Mixin for result dataclasses: ``to_dict()`` and ``__str__`` from the class's own
    ``summary_frame()`` and ``format()``."""

    def summary_frame(self) -> pd.DataFrame:  # pragma: no cover - every result overrides it
        raise NotImplementedError

    def format(self, digits: int = 4) -> str:
        """Default: the class name and the summary table."""
        table = self.summary_frame()
        return f"{type(self).__name__}\n" + table.to_string(index=False, float_format=lambda v: f"{v:.{digits}g}")

    def to_dict(self) -> dict[str, Any]:
        """The scalar fields and the summary table (as records), JSON-ready.

        Fields holding DataFrames, result objects or private data (a leading underscore)
        are left out except through ``summary``; classes with more to say override this.
        """
        out: dict[str, Any] = {}
        if dataclasses.is_dataclass(self):
            for field in dataclasses.fields(self):
                if field.name.startswith("_"):
                    continue
                value = getattr(self, field.name)
                if isinstance(value, (pd.DataFrame, pd.Series)) or hasattr(value, "summary_frame"):
                    continue
                out[field.name] = jsonable(value)
        frame = self.summary_frame()
        out["summary"] = jsonable(frame)
        if frame.attrs:
            out["attrs"] = jsonable(dict(frame.attrs))
        return out

    def __str__(self) -> str:
        return self.format()
