"""Incidence rates: the log rate ratio and rate difference of two arms, the rate and log rate of one."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rjtrial.effects._frame import (
    Inputs,
    check_correction,
    check_positive_variance,
    correction_mask,
    output,
    require_defined,
)
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
    inputs = Inputs(
        data,
        {
            "events_treatment": events_treatment,
            "person_time_treatment": person_time_treatment,
            "events_control": events_control,
            "person_time_control": person_time_control,
        },
        study=study,
        na_action=na_action,
    )
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
    inputs.require(
        ~(((x1 == 0) | (x2 == 0)) & ~dropped),
        None,
        "a zero count leaves the log rate ratio undefined without a correction (to='none')",
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.where(dropped, np.nan, np.log(x1 / t1) - np.log(x2 / t2))
        variance = np.where(dropped, np.nan, 1 / x1 + 1 / x2)
    check_positive_variance(inputs, variance)
    return output(
        inputs,
        estimate,
        variance,
        measure="log_incidence_rate_ratio",
        extra={name: inputs[name] for name in RATE_COLUMNS},
        attrs={"zero_cell_correction": {"add": float(add), "to": to, "drop_double_zero": bool(drop_double_zero)}},
    )


def _one_arm(data, events, person_time, study, na_action, add, to):
    check_correction(add, to)
    inputs = Inputs(data, {"events": events, "person_time": person_time}, study=study, na_action=na_action)
    inputs.finite("events", "person_time")
    inputs.non_negative("events")
    inputs.whole("events")
    inputs.positive("person_time", what="person-time")
    x = inputs["events"]
    target = correction_mask(x == 0, to, eligible=~inputs.omitted)
    return inputs, x + np.where(target, float(add), 0.0), inputs["person_time"]


def _one_arm_frame(inputs, estimate, variance, *, measure, add, to, what):
    require_defined(
        inputs,
        estimate,
        "events",
        f"no events leave the {what} undefined without a correction "
        "(to='none'): use to='only_zero' or leave the study out",
    )
    check_positive_variance(inputs, variance, hint="no events and no correction")
    return output(
        inputs,
        estimate,
        variance,
        measure=measure,
        extra={"events": inputs["events"], "person_time": inputs["person_time"]},
        attrs={"zero_cell_correction": {"add": float(add), "to": to}},
    )


_ONE_ARM_PARAMETERS = """
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    events, person_time : str or array-like
        Events (e.g. reoffences) and time at risk (e.g. person-years of street time) of each study.
    study : str or array-like, optional
        Study labels.
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.
    add : float, default 0.5
        Added to the events of the studies chosen by ``to``.
    to : {"only_zero", "all", "if_any_zero", "none"}, default "only_zero"
        Which studies are corrected: those without events, all, all if any has none, or none
        (a study without events is then an error naming it)."""

_ONE_ARM_RETURNS = """
    Returns
    -------
    pandas.DataFrame
        ``estimate``, ``variance`` and the inputs ``events``, ``person_time``;
        ``attrs["measure"] = "{measure}"``, ``attrs["zero_cell_correction"]``,
        ``attrs["n_omitted"]`` and ``attrs["omitted"]``.

    Raises
    ------
    rjtrial.errors.DataError
        Missing values (with ``na_action="raise"``), negative or fractional counts,
        person-time that is not positive, or no events left uncorrected; the message names the
        study row and column."""


def _one_arm_doc(func, measure):
    func.__doc__ = func.__doc__.replace("    %(parameters)s", _ONE_ARM_PARAMETERS.strip("\n")).replace(
        "    %(returns)s", _ONE_ARM_RETURNS.format(measure=measure).strip("\n")
    )
    return func


def incidence_rate(
    data: pd.DataFrame | None = None,
    *,
    events,
    person_time,
    study=None,
    na_action: str = "omit",
    add: float = 0.5,
    to: str = "only_zero",
) -> pd.DataFrame:
    """Incidence rate ``events / person_time`` of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s

    %(returns)s

    Notes
    -----
    ``estimate = x / t``, ``variance = x / t^2`` (Poisson) with the corrected count ``x``.
    Agrees with R ``metafor::escalc(measure="IR", xi=, ti=)`` to 1e-12
    (tests/validation/test_hart1999_incidence_rates.py).

    Examples
    --------
    >>> es = incidence_rate(events=[9, 0], person_time=[413, 398])
    >>> es[["estimate", "variance"]].round(6)
       estimate  variance
    0  0.021792  0.000053
    1  0.001256  0.000003
    """
    inputs, x, t = _one_arm(data, events, person_time, study, na_action, add, to)
    return _one_arm_frame(inputs, x / t, x / t**2, measure="incidence_rate", add=add, to=to, what="rate")


_one_arm_doc(incidence_rate, "incidence_rate")


def log_incidence_rate(
    data: pd.DataFrame | None = None,
    *,
    events,
    person_time,
    study=None,
    na_action: str = "omit",
    add: float = 0.5,
    to: str = "only_zero",
) -> pd.DataFrame:
    """Log incidence rate ``log(events / person_time)`` of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s

    %(returns)s

    Notes
    -----
    ``estimate = log(x / t)``, ``variance = 1 / x`` with the corrected count ``x``. Agrees
    with R ``escalc(measure="IRLN")`` to 1e-12.

    Examples
    --------
    >>> es = log_incidence_rate(events=[9, 0], person_time=[413, 398])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -3.8262    0.1111
    1   -6.6796    2.0000
    """
    inputs, x, t = _one_arm(data, events, person_time, study, na_action, add, to)
    with np.errstate(divide="ignore"):
        estimate, variance = np.log(x / t), 1 / x
    return _one_arm_frame(inputs, estimate, variance, measure="log_incidence_rate", add=add, to=to, what="log rate")


_one_arm_doc(log_incidence_rate, "log_incidence_rate")


def incidence_rate_difference(
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
    """Incidence rate difference (treatment minus control) from event counts and person-time.

    Parameters are those of :func:`log_incidence_rate_ratio`; as in R ``escalc``, the
    correction ``add`` also applies to both counts of a study with a zero count (pass
    ``to="none"`` for the uncorrected rates).

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (rate difference, events per unit of person-time), ``variance`` and the
        four inputs; ``attrs["measure"] = "incidence_rate_difference"``,
        ``attrs["zero_cell_correction"]``, ``attrs["n_omitted"]`` and ``attrs["omitted"]``.

    Raises
    ------
    rjtrial.errors.DataError
        As :func:`log_incidence_rate_ratio`; also a zero variance (no events in either arm
        and no correction).

    Notes
    -----
    ``estimate = x1 / t1 - x2 / t2``, ``variance = x1 / t1^2 + x2 / t2^2`` after the
    correction. Agrees with R ``escalc(measure="IRD")`` to 1e-12.

    Examples
    --------
    >>> es = incidence_rate_difference(events_treatment=[9], person_time_treatment=[413],
    ...                                events_control=[19], person_time_control=[398])
    >>> es[["estimate", "variance"]].round(6)
       estimate  variance
    0 -0.025947  0.000173
    """
    check_correction(add, to)
    inputs = Inputs(
        data,
        {
            "events_treatment": events_treatment,
            "person_time_treatment": person_time_treatment,
            "events_control": events_control,
            "person_time_control": person_time_control,
        },
        study=study,
        na_action=na_action,
    )
    inputs.finite(*RATE_COLUMNS)
    inputs.non_negative("events_treatment", "events_control")
    inputs.whole("events_treatment", "events_control")
    inputs.positive("person_time_treatment", "person_time_control", what="person-time")
    x1, x2 = inputs["events_treatment"], inputs["events_control"]
    t1, t2 = inputs["person_time_treatment"], inputs["person_time_control"]
    dropped = (x1 == 0) & (x2 == 0) & bool(drop_double_zero)
    target = correction_mask((x1 == 0) | (x2 == 0), to, eligible=~dropped & ~inputs.omitted)
    x1, x2 = x1 + np.where(target, float(add), 0.0), x2 + np.where(target, float(add), 0.0)
    estimate = np.where(dropped, np.nan, x1 / t1 - x2 / t2)
    variance = np.where(dropped, np.nan, x1 / t1**2 + x2 / t2**2)
    check_positive_variance(inputs, variance, hint="no events in either arm and no correction")
    return output(
        inputs,
        estimate,
        variance,
        measure="incidence_rate_difference",
        extra={name: inputs[name] for name in RATE_COLUMNS},
        attrs={"zero_cell_correction": {"add": float(add), "to": to, "drop_double_zero": bool(drop_double_zero)}},
    )
