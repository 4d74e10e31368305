"""Competing risks: the data every competing-risks verb reads, checked in one place.

In a trial of restorative justice, death, deportation or a long custodial sentence can end
follow-up before a reoffence could be observed: they *compete* with reoffending. The verbs
(each in its own module, all exported by :mod:`rjtrial.survival`):

* :func:`~rjtrial.survival.competing_incidence.cumulative_incidence` -- Aalen–Johansen
  cumulative incidence of each cause, per arm, with variance and confidence intervals
  (R ``survfit`` multi-state and ``cmprsk::cuminc``);
* :func:`~rjtrial.survival.gray_test.gray_test` -- Gray's test that the cumulative
  incidence of a cause is the same in every arm (``cmprsk::cuminc(...)$Tests``);
* :func:`~rjtrial.survival.fine_gray.fine_gray` -- the Fine–Gray proportional
  subdistribution-hazards model (``cmprsk::crr``, or ``survival::finegray`` + ``coxph``).

Every verb takes the data in one shape: one row per participant, a column of times and a
column of event codes, **0 for censored and 1, 2, ... for the causes** (R's
``Surv(time, factor(event))``, cmprsk's ``fstatus`` with ``cencode = 0``), and reads it
through :func:`competing_data`, the one function that checks it. A missing value anywhere
it reads raises :class:`~rjtrial.errors.DataError` naming the row and the column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from rjtrial.errors import DataError
from rjtrial.survival import _checks


@dataclass(frozen=True)
class CompetingData:
    """Checked competing-risks data: arrays in the input row order.

    Attributes
    ----------
    time : ndarray of float
        Times, with those within floating-point noise of each other tied (R ``aeqSurv``).
    code : ndarray of int
        Event codes: 0 censored, 1, 2, ... the causes.
    causes : tuple of int
        The causes asked for, each occurring at least once.
    all_causes : tuple of int
        Every cause occurring in the data, ascending.
    group, strata, cluster : pandas.Series or None
        The grouping columns, without missing values.
    frame : pandas.DataFrame
        The rows used (for the model matrix).
    """

    time: np.ndarray
    code: np.ndarray
    causes: tuple
    all_causes: tuple
    group: pd.Series | None
    strata: pd.Series | None
    cluster: pd.Series | None
    frame: pd.DataFrame


def event_codes(df: pd.DataFrame, column: str) -> np.ndarray:
    """Event codes as integers: 0 (censored) and positive whole numbers (causes).

    False/True are read as 0/1. Anything else -- text, a missing value, a negative or
    fractional code -- raises :class:`~rjtrial.errors.DataError` naming the row and column.
    """
    values = df[column]
    if values.dtype == bool:
        return values.to_numpy().astype(np.int64)
    if not pd.api.types.is_numeric_dtype(values):
        raise DataError(
            f"event must be coded 0 (censored) and 1, 2, ... (the causes), found dtype {values.dtype}",
            table=_checks.TABLE,
            column=column,
        )
    out = values.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(out)
    if bad.any():
        raise DataError("event is missing", table=_checks.TABLE, row=_checks.first_bad_row(df, bad), column=column)
    bad = (out < 0) | (out != np.round(out))
    if bad.any():
        raise DataError(
            f"event must be 0 (censored) or a cause 1, 2, ..., found {out[bad][0]:g}",
            table=_checks.TABLE,
            row=_checks.first_bad_row(df, bad),
            column=column,
        )
    return out.astype(np.int64)


def _cause_list(cause) -> list[int] | None:
    """``cause`` as a list of positive whole numbers, or None for every cause."""
    if cause is None:
        return None
    items = [cause] if isinstance(cause, (int, np.integer)) and not isinstance(cause, bool) else cause
    try:
        items = list(items)
    except TypeError:
        items = [items]
    if not items:
        raise ValueError("cause must be a cause code 1, 2, ..., a list of them, or None for every cause")
    out = []
    for item in items:
        if isinstance(item, bool) or not isinstance(item, (int, np.integer)) or item < 1:
            raise ValueError(f"cause must be a positive whole number (a code in the event column), got {item!r}")
        out.append(int(item))
    return out


def competing_data(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    cause: int | Sequence[int] | None = 1,
    group: str | None = None,
    strata: str | None = None,
    cluster: str | None = None,
    covariates: Sequence[str] = (),
) -> CompetingData:
    """Check competing-risks data and return it as arrays.

    Parameters
    ----------
    df : pandas.DataFrame
    time : str
        Column of times (non-negative, finite).
    event : str
        Column of event codes: 0 censored, 1, 2, ... causes.
    cause : int, sequence of int or None
        Cause(s) asked for; each must occur in ``event``. None: every cause that occurs.
    group, strata, cluster : str, optional
        Grouping columns (no missing values).
    covariates : sequence of str
        Further columns that must be present and complete (a model's variables).

    Returns
    -------
    CompetingData

    Raises
    ------
    DataError
        A missing column, a missing or invalid time, event code, group, stratum, cluster or
        covariate (naming its row and column), or a cause asked for that never occurs
        (naming the event column).
    ValueError
        ``cause`` is not a positive whole number (or a list of them).
    """
    df = _checks.check_frame(df)
    wanted = _cause_list(cause)
    _checks.require_columns(
        df,
        {
            "time": time,
            "event": event,
            "group": group,
            "strata": strata,
            "cluster": cluster,
            "formula": list(covariates),
        },
    )
    # Every missing-value check is here, in column order of the roles: to omit incomplete
    # rows instead (R's na.omit), filter `df` by these masks before reading the arrays.
    times = _checks.times(df, time)
    codes = event_codes(df, event)
    labels = {}
    for role, column in (("group", group), ("strata", strata), ("cluster", cluster)):
        labels[role] = _checks.labels(df, column, role=role) if column is not None else None
    for column in covariates:
        _checks.labels(df, column, role="covariate")
    times, _ = _checks.aeq_times(times, index=df.index, column=time)
    present = sorted(int(c) for c in np.unique(codes) if c > 0)
    if wanted is None:
        if not present:
            raise DataError("no event of any cause occurs (every row is censored)", table=_checks.TABLE, column=event)
        causes = present
    else:
        absent = [c for c in wanted if c not in present]
        if absent:
            raise DataError(
                f"cause {absent[0]} never occurs; the causes present are "
                f"{', '.join(map(str, present)) if present else 'none (every row is censored)'}",
                table=_checks.TABLE,
                column=event,
            )
        causes = wanted
    return CompetingData(
        time=times,
        code=codes,
        causes=tuple(causes),
        all_causes=tuple(present),
        group=labels["group"],
        strata=labels["strata"],
        cluster=labels["cluster"],
        frame=df,
    )


def confidence_limits(estimate: np.ndarray, std_error: np.ndarray, z: float, conf_type: str):
    """Pointwise limits of a probability as R ``survival:::survfit_confint(logse = FALSE)``.

    ``"log"``: ``p exp(-+z se/p)``, upper capped at 1; ``"log-log"``: ``p ** exp(+-z se/(p log p))``;
    ``"plain"``: ``p -+ z se`` within [0, 1]; ``"logit"`` and ``"arcsin"`` as R. NaN where the
    transform is undefined (p = 0, and p = 1 for log-log), as R's NA.
    """
    p = np.asarray(estimate, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.where(std_error == 0, 0.0, std_error / p)  # SE of log p, as R
        if conf_type == "plain":
            half = se * p * z
            return np.maximum(p - half, 0.0), np.minimum(p + half, 1.0)
        if conf_type == "log":
            xx = np.where(p == 0, np.nan, p)
            return np.exp(np.log(xx) - z * se), np.minimum(np.exp(np.log(xx) + z * se), 1.0)
        if conf_type == "log-log":
            xx = np.where((p == 0) | (p == 1), np.nan, p)
            half = z * se / np.log(xx)
            return np.exp(-np.exp(np.log(-np.log(xx)) - half)), np.exp(-np.exp(np.log(-np.log(xx)) + half))
        if conf_type == "logit":
            xx = np.where(p == 0, np.nan, p)
            half = z * se * (1 + xx / (1 - xx))
            logit = np.log(p / (1 - p))
            return 1 - 1 / (1 + np.exp(logit - half)), 1 - 1 / (1 + np.exp(logit + half))
        if conf_type == "arcsin":
            xx = np.where(p == 0, np.nan, p)
            half = 0.5 * z * se * np.sqrt(xx / (1 - xx))
            angle = np.arcsin(np.sqrt(xx))
            return np.sin(np.maximum(0.0, angle - half)) ** 2, np.sin(np.minimum(np.pi / 2, angle + half)) ** 2
    raise ValueError(f"conf_type must be one of 'log-log', 'log', 'plain', 'logit', 'arcsin'; got {conf_type!r}")


CONF_TYPES = ("log-log", "log", "plain", "logit", "arcsin")
