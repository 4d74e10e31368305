"""Log incidence rate ratio from event counts and person-time."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rjtrial.effects._frame import Inputs, check_positive_variance, output
from rjtrial.effects.binary import _validate_choice

RATE_COLUMNS = ("events_treatment", "person_time_treatment", "events_control", "person_time_control")


def log_incidence_rate_ratio(
    data: pd.DataFrame | None = None,
    *,
    events_treatment,
    person_time_treatment,
    events_control,
    person_time_control,
    study=None,
    na_action: str = "omit",
    add: float = 0.5,
    to: str = "only_zero",
    drop_double_zero: bool = False,
) -> pd.DataFrame:
    """Log incidence rate ratio (treatment vs control) from event counts and person-time.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    events_treatment, person_time_treatment, events_control, person_time_control : str or array-like
        Events (e.g. reoffences) and time at risk (e.g. person-years of street time) per arm.
    study : str or array-like, optional
        Study labels.
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.
    add : float, default 0.5
        Added to both counts of the studies chosen by ``to``.
    to : {"only_zero", "all", "if_any_zero", "none"}, default "only_zero"
        Which studies are corrected: those with a zero count, all, all if any has a zero
        count, or none (a zero count is then an error naming the study).
    drop_double_zero : bool, default False
        If True, studies without events in either arm get a missing estimate.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (log IRR), ``variance``, and the inputs ``events_treatment,
        person_time_treatment, events_control, person_time_control`` (for Mantel-Haenszel
        pooling); ``attrs["measure"] = "log_incidence_rate_ratio"``.

    Notes
    -----
    ``estimate = log(x1 / t1) - log(x2 / t2)``, ``variance = 1/x1 + 1/x2`` after the
    correction. Agrees with R ``escalc(measure="IRR")`` to 1e-12
    (tests/validation/test_metafor_hart1999.py).

    Examples
    --------
    >>> es = log_incidence_rate_ratio(events_treatment=[9], person_time_treatment=[413],
    ...                               events_control=[19], person_time_control=[398])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -0.7842    0.1637
    """
    _validate_choice(to)
    if not np.isfinite(add) or add < 0:
        raise ValueError(f"add must be a non-negative number, got {add!r}")
    inputs = Inputs(data, {"events_treatment": events_treatment, "person_time_treatment": person_time_treatment,
                           "events_control": events_control, "person_time_control": person_time_control},
                    study=study, na_action=na_action)
    inputs.finite(*RATE_COLUMNS)
    inputs.non_negative("events_treatment", "events_control")
    inputs.whole("events_treatment", "events_control")
    inputs.positive("person_time_treatment", "person_time_control", what="person-time")
    x1, x2 = inputs["events_treatment"].copy(), inputs["events_control"].copy()
    t1, t2 = inputs["person_time_treatment"], inputs["person_time_control"]
    dropped = (x1 == 0) & (x2 == 0) & bool(drop_double_zero)
    has_zero = ((x1 == 0) | (x2 == 0)) & ~dropped
    if to == "all":
        target = ~dropped
    elif to == "only_zero":
        target = has_zero
    elif to == "if_any_zero":
        target = ~dropped if has_zero.any() else np.zeros_like(has_zero)
    else:
        target = np.zeros_like(has_zero)
    x1 = x1 + np.where(target, add, 0.0)
    x2 = x2 + np.where(target, add, 0.0)
    inputs.require(~(((x1 == 0) | (x2 == 0)) & ~dropped), None,
                   "a zero count leaves the log rate ratio undefined without a correction (to='none')")
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(dropped, np.nan, np.log(x1 / t1) - np.log(x2 / t2))
        variance = np.where(dropped, np.nan, 1 / x1 + 1 / x2)
    check_positive_variance(inputs, variance)
    return output(inputs, estimate, variance, measure="log_incidence_rate_ratio",
                  extra={name: inputs[name] for name in RATE_COLUMNS},
                  attrs={"zero_cell_correction": {"add": float(add), "to": to,
                                                  "drop_double_zero": bool(drop_double_zero)}})
