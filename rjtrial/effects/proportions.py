"""Single proportions: raw, log, logit, arcsine and Freeman-Tukey (metafor's PR, PLN, PLO, PAS, PFT).

Each study reports ``events`` out of ``n`` (e.g. reoffenders among those followed up). The
zero-count correction follows R ``escalc``: ``add`` (default 1/2 for the raw, log and logit
proportions, 0 for the arcsine and Freeman-Tukey transformations, which need none) is added to
the events and the non-events of the studies chosen by ``to`` (default: those with no events
or only events).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rjtrial.effects._frame import (
    Inputs,
    check_correction,
    check_positive_variance,
    check_variance_type,
    correction_mask,
    output,
    require_defined,
    weighted_mean,
)

__all__ = ["arcsine_proportion", "freeman_tukey_proportion", "log_proportion", "logit_proportion", "proportion"]

_PARAMETERS = """
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    events, n : str or array-like
        Events (participants with the outcome) and sample size of each study.
    study : str or array-like, optional
        Study labels (the index of the result and named in errors).
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column."""

_CORRECTION = """
    add : float, default {add}
        Added to the events and the non-events of the studies chosen by ``to`` (R ``escalc``'s
        ``add``; its default for this measure).
    to : {{"only_zero", "all", "if_any_zero", "none"}}, default "only_zero"
        Which studies are corrected: those with no events or only events, all, all if any
        has a zero count, or none."""

_RETURNS = """
    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate``, ``variance``, and the inputs ``events``, ``n`` as
        given; ``attrs["measure"] = "{measure}"``, ``attrs["zero_cell_correction"]`` (``add``,
        ``to``){extra}, ``attrs["n_omitted"]`` and ``attrs["omitted"]``.

    Raises
    ------
    rjtrial.errors.DataError
        Missing values (with ``na_action="raise"``), negative, fractional or infinite counts,
        events exceeding ``n``, ``n`` below 1, or a study whose {what} is undefined or has no
        sampling variance (a proportion of 0 or 1 left uncorrected); the message names the
        study row and column."""


def _doc(func, *, add: str, measure: str, what: str, variance_type: bool = False):
    extra = ', ``attrs["variance_type"]``' if variance_type else ""
    func.__doc__ = (
        func.__doc__.replace("    %(parameters)s", _PARAMETERS.strip("\n"))
        .replace("    %(correction)s", _CORRECTION.format(add=add).strip("\n"))
        .replace("    %(returns)s", _RETURNS.format(measure=measure, extra=extra, what=what).strip("\n"))
    )
    return func


def _counts(data, events, n, study, na_action, add, to):
    """The checked counts and, after the correction, events ``x``, non-events ``m`` and size ``x + m``."""
    check_correction(add, to)
    inputs = Inputs(data, {"events": events, "n": n}, study=study, na_action=na_action)
    inputs.finite("events", "n")
    inputs.non_negative("events", "n")
    inputs.whole("events", "n")
    inputs.positive("n", what="sample size")
    x, size = inputs["events"], inputs["n"]
    inputs.require(x <= size, "events", lambda i: f"{x[i]:g} events exceed n = {size[i]:g}")
    non_events = size - x
    target = correction_mask((x == 0) | (non_events == 0), to, eligible=~inputs.omitted)
    shift = np.where(target, float(add), 0.0)
    return inputs, x + shift, non_events + shift


def _frame(inputs, estimate, variance, *, measure, add, to, variance_type=None, what):
    require_defined(
        inputs,
        estimate,
        "events",
        f"the {what} is undefined (a zero count without a correction: use to='only_zero' or leave the study out)",
    )
    check_positive_variance(inputs, variance, hint="a proportion of 0 or 1 without a correction")
    attrs = {"zero_cell_correction": {"add": float(add), "to": to}}
    if variance_type is not None:
        attrs["variance_type"] = variance_type
    return output(
        inputs, estimate, variance, measure=measure, extra={"events": inputs["events"], "n": inputs["n"]}, attrs=attrs
    )


def proportion(
    data: pd.DataFrame | None = None,
    *,
    events,
    n,
    study=None,
    na_action: str = "omit",
    variance_type: str = "LS",
    add: float = 0.5,
    to: str = "only_zero",
) -> pd.DataFrame:
    """Raw proportion ``events / n`` of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s
    variance_type : {"LS", "UB", "AV"}, default "LS"
        ``"LS"`` large-sample ``p (1 - p) / n``; ``"UB"`` unbiased ``p (1 - p) / (n - 1)``;
        ``"AV"`` with the sample-size weighted average proportion of all studies in place of
        ``p`` (metafor's ``vtype``).
    %(correction)s

    %(returns)s

    Notes
    -----
    With the corrected counts ``x`` and ``n``: ``estimate = p = x / n``. Agrees with R
    ``metafor::escalc(measure="PR", xi=, ni=)`` (and ``vtype=``) to 1e-12
    (tests/validation/test_pritz1997_proportions.py, test_escalc_boundary_cases.py).
    ``escalc`` returns a variance of 0 for an uncorrected proportion of 0 or 1; here that
    study is an error (it cannot be pooled).

    Examples
    --------
    >>> es = proportion(events=[16, 0], n=[17, 20])
    >>> es[["estimate", "variance"]].round(5)
       estimate  variance
    0   0.94118   0.00326
    1   0.02381   0.00111
    """
    variance_type = check_variance_type(variance_type, ("LS", "UB", "AV"), "proportion")
    inputs, x, m = _counts(data, events, n, study, na_action, add, to)
    size = x + m
    p = x / size
    with np.errstate(divide="ignore", invalid="ignore"):
        if variance_type == "LS":
            variance = p * (1 - p) / size
        elif variance_type == "UB":
            variance = p * (1 - p) / (size - 1)
        else:
            average = weighted_mean(np.where(inputs.omitted, np.nan, p), size)
            variance = average * (1 - average) / size
    return _frame(
        inputs, p, variance, measure="proportion", add=add, to=to, variance_type=variance_type, what="proportion"
    )


_doc(proportion, add="0.5", measure="proportion", what="proportion", variance_type=True)


def log_proportion(
    data: pd.DataFrame | None = None,
    *,
    events,
    n,
    study=None,
    na_action: str = "omit",
    variance_type: str = "LS",
    add: float = 0.5,
    to: str = "only_zero",
) -> pd.DataFrame:
    """Log proportion ``log(events / n)`` of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s
    variance_type : {"LS", "AV"}, default "LS"
        ``"LS"`` ``1 / x - 1 / n``; ``"AV"`` ``1 / (p_bar n) - 1 / n`` with the sample-size
        weighted average proportion ``p_bar`` of all studies.
    %(correction)s

    %(returns)s

    Notes
    -----
    ``estimate = log(x / n)`` with the corrected counts. Agrees with R
    ``escalc(measure="PLN")`` to 1e-12. An uncorrected proportion of 1 has variance 0 in
    ``escalc``; here it is an error naming the study.

    Examples
    --------
    >>> es = log_proportion(events=[16, 10], n=[17, 12])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -0.0606    0.0037
    1   -0.1823    0.0167
    """
    variance_type = check_variance_type(variance_type, ("LS", "AV"), "log_proportion")
    inputs, x, m = _counts(data, events, n, study, na_action, add, to)
    size = x + m
    p = x / size
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.log(p)
        if variance_type == "LS":
            variance = 1 / x - 1 / size
        else:
            average = weighted_mean(np.where(inputs.omitted, np.nan, p), size)
            variance = 1 / (average * size) - 1 / size
    return _frame(
        inputs,
        estimate,
        variance,
        measure="log_proportion",
        add=add,
        to=to,
        variance_type=variance_type,
        what="log proportion",
    )


_doc(log_proportion, add="0.5", measure="log_proportion", what="log proportion", variance_type=True)


def logit_proportion(
    data: pd.DataFrame | None = None,
    *,
    events,
    n,
    study=None,
    na_action: str = "omit",
    variance_type: str = "LS",
    add: float = 0.5,
    to: str = "only_zero",
) -> pd.DataFrame:
    """Logit (log odds) of the proportion ``log(x / (n - x))`` of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s
    variance_type : {"LS", "AV"}, default "LS"
        ``"LS"`` ``1 / x + 1 / (n - x)``; ``"AV"`` ``1 / (p_bar n) + 1 / ((1 - p_bar) n)``
        with the sample-size weighted average proportion ``p_bar`` of all studies.
    %(correction)s

    %(returns)s

    Notes
    -----
    ``estimate = log(p / (1 - p))`` with the corrected counts. Agrees with R
    ``escalc(measure="PLO")`` to 1e-12.

    Examples
    --------
    >>> es = logit_proportion(events=[16, 10], n=[17, 12])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0    2.7726    1.0625
    1    1.6094    0.6000
    """
    variance_type = check_variance_type(variance_type, ("LS", "AV"), "logit_proportion")
    inputs, x, m = _counts(data, events, n, study, na_action, add, to)
    size = x + m
    p = x / size
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.log(p / (1 - p))
        if variance_type == "LS":
            variance = 1 / x + 1 / m
        else:
            average = weighted_mean(np.where(inputs.omitted, np.nan, p), size)
            variance = 1 / (average * size) + 1 / ((1 - average) * size)
    return _frame(
        inputs,
        estimate,
        variance,
        measure="logit_proportion",
        add=add,
        to=to,
        variance_type=variance_type,
        what="logit of the proportion",
    )


_doc(logit_proportion, add="0.5", measure="logit_proportion", what="logit", variance_type=True)


def arcsine_proportion(
    data: pd.DataFrame | None = None,
    *,
    events,
    n,
    study=None,
    na_action: str = "omit",
    add: float = 0.0,
    to: str = "only_zero",
) -> pd.DataFrame:
    """Arcsine square-root transformed proportion ``asin(sqrt(events / n))`` and its variance.

    Parameters
    ----------
    %(parameters)s
    %(correction)s

    %(returns)s

    Notes
    -----
    ``estimate = asin(sqrt(x / n))``, ``variance = 1 / (4 n)`` (variance-stabilising: defined
    for proportions of 0 and 1, so no correction by default). Agrees with R
    ``escalc(measure="PAS")`` to 1e-12.

    Examples
    --------
    >>> es = arcsine_proportion(events=[16, 0], n=[17, 20])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0    1.3258    0.0147
    1    0.0000    0.0125
    """
    inputs, x, m = _counts(data, events, n, study, na_action, add, to)
    size = x + m
    estimate = np.arcsin(np.sqrt(x / size))
    return _frame(
        inputs, estimate, 1 / (4 * size), measure="arcsine_proportion", add=add, to=to, what="transformed proportion"
    )


_doc(arcsine_proportion, add="0", measure="arcsine_proportion", what="transformed proportion")


def freeman_tukey_proportion(
    data: pd.DataFrame | None = None,
    *,
    events,
    n,
    study=None,
    na_action: str = "omit",
    add: float = 0.0,
    to: str = "only_zero",
) -> pd.DataFrame:
    """Freeman-Tukey double-arcsine transformed proportion and its variance.

    Parameters
    ----------
    %(parameters)s
    %(correction)s

    %(returns)s

    Notes
    -----
    ``estimate = (asin(sqrt(x / (n + 1))) + asin(sqrt((x + 1) / (n + 1)))) / 2``,
    ``variance = 1 / (4 n + 2)`` (Freeman & Tukey 1950, halved as in ``escalc``). Agrees with R
    ``escalc(measure="PFT")`` to 1e-12.

    References
    ----------
    Freeman, M. F., & Tukey, J. W. (1950). Transformations related to the angular and the
    square root. The Annals of Mathematical Statistics, 21(4), 607-611.
    doi:10.1214/aoms/1177729756

    Examples
    --------
    >>> es = freeman_tukey_proportion(events=[16, 0], n=[17, 20])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0    1.2819    0.0143
    1    0.1100    0.0122
    """
    inputs, x, m = _counts(data, events, n, study, na_action, add, to)
    size = x + m
    estimate = (np.arcsin(np.sqrt(x / (size + 1))) + np.arcsin(np.sqrt((x + 1) / (size + 1)))) / 2
    return _frame(
        inputs,
        estimate,
        1 / (4 * size + 2),
        measure="freeman_tukey_proportion",
        add=add,
        to=to,
        what="transformed proportion",
    )


_doc(freeman_tukey_proportion, add="0", measure="freeman_tukey_proportion", what="transformed proportion")
