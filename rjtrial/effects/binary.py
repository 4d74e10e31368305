"""Effect sizes from 2x2 counts: log odds ratio, log risk ratio, risk difference, Peto's log OR."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rjtrial.effects._frame import Inputs, check_positive_variance, output

#: Which tables receive the zero-cell correction ``add`` (metafor's ``to`` argument).
CORRECTION_TARGETS = ("only_zero", "all", "if_any_zero", "none")
COUNT_COLUMNS = ("events_treatment", "n_treatment", "events_control", "n_control")

_CORRECTION_DOC = """
    add : float, default 0.5
        Zero-cell correction: the amount added to each of the four cells (events and
        non-events in both arms) of the tables chosen by ``to``.
    to : {"only_zero", "all", "if_any_zero", "none"}, default "only_zero"
        Which tables are corrected: only those with a zero cell (the default), all tables,
        all tables if any has a zero cell, or none (a zero cell that leaves the measure
        undefined is then an error naming the study).
    drop_double_zero : bool, default False
        If True, tables with no events in either arm (or only events in both) get a missing
        ``estimate`` and ``variance``; :func:`rjtrial.meta.pool` leaves such studies out of
        inverse-variance pooling. Mantel-Haenszel and Peto pooling always leave them out of
        the heterogeneity statistic, as R ``rma.mh`` and ``rma.peto`` do.
"""


def _with_correction_doc(func):
    func.__doc__ = func.__doc__.replace("    %(correction)s\n", _CORRECTION_DOC.lstrip("\n"))
    return func


def _validate_choice(to: str) -> None:
    if to not in CORRECTION_TARGETS:
        raise ValueError(f"to={to!r}: choose one of {', '.join(map(repr, CORRECTION_TARGETS))}")


def _counts(data, events_treatment, n_treatment, events_control, n_control, study, na_action) -> Inputs:
    inputs = Inputs(
        data,
        {
            "events_treatment": events_treatment,
            "n_treatment": n_treatment,
            "events_control": events_control,
            "n_control": n_control,
        },
        study=study,
        na_action=na_action,
    )
    inputs.finite(*COUNT_COLUMNS)
    inputs.non_negative(*COUNT_COLUMNS)
    inputs.whole(*COUNT_COLUMNS)
    inputs.positive("n_treatment", "n_control", what="group size")
    for events, n in (("events_treatment", "n_treatment"), ("events_control", "n_control")):
        e, m = inputs[events], inputs[n]
        inputs.require(e <= m, events, lambda i, e=e, m=m, n=n: f"{e[i]:g} events exceed {n} = {m[i]:g}")
    return inputs


def _corrected_cells(inputs: Inputs, *, add: float, to: str, drop_double_zero: bool):
    """Cells a, b, c, d after metafor's zero-cell handling (escalc add/to/drop00)."""
    _validate_choice(to)
    if not np.isfinite(add) or add < 0:
        raise ValueError(f"add must be a non-negative number, got {add!r}")
    a = inputs["events_treatment"].copy()
    b = inputs["n_treatment"] - a
    c = inputs["events_control"].copy()
    d = inputs["n_control"] - c
    double = ((a == 0) & (c == 0)) | ((b == 0) & (d == 0))
    dropped = double if drop_double_zero else np.zeros_like(double)
    has_zero = ((a == 0) | (b == 0) | (c == 0) | (d == 0)) & ~dropped
    if to == "all":
        target = ~dropped
    elif to == "only_zero":
        target = has_zero
    elif to == "if_any_zero":
        target = ~dropped if has_zero.any() else np.zeros_like(has_zero)
    else:
        target = np.zeros_like(has_zero)
    a, b, c, d = (x + np.where(target, add, 0.0) for x in (a, b, c, d))
    return a, b, c, d, dropped


def _binary_output(inputs, estimate, variance, dropped, *, measure, add, to, drop_double_zero):
    estimate = np.where(dropped, np.nan, estimate)
    variance = np.where(dropped, np.nan, variance)
    check_positive_variance(inputs, variance)
    return output(
        inputs,
        estimate,
        variance,
        measure=measure,
        extra={name: inputs[name] for name in COUNT_COLUMNS},
        attrs={"zero_cell_correction": {"add": float(add), "to": to, "drop_double_zero": bool(drop_double_zero)}},
    )


def _undefined(inputs: Inputs, bad: np.ndarray, dropped: np.ndarray, measure: str) -> None:
    inputs.require(
        ~(bad & ~dropped),
        None,
        f"a zero cell leaves the {measure} undefined without a correction (to='none'); "
        "use to='only_zero' or leave the study out",
    )


@_with_correction_doc
def log_odds_ratio(
    data: pd.DataFrame | None = None,
    *,
    events_treatment,
    n_treatment,
    events_control,
    n_control,
    study=None,
    na_action: str = "omit",
    add: float = 0.5,
    to: str = "only_zero",
    drop_double_zero: bool = False,
) -> pd.DataFrame:
    """Log odds ratio (treatment vs control) of each study from its 2x2 table.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the count arguments may be column names of ``data``.
    events_treatment, n_treatment, events_control, n_control : str or array-like
        Events and group sizes per arm (arrays, Series, scalars or column names).
    study : str or array-like, optional
        Study labels (used as the index and in error messages); default the index of
        ``data`` (or of the first Series given).
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.
    %(correction)s
    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate`` (log OR), ``variance``, and the counts
        ``events_treatment, n_treatment, events_control, n_control`` as given (needed by
        Mantel-Haenszel and Peto pooling). ``attrs["measure"] = "log_odds_ratio"``,
        ``attrs["zero_cell_correction"]`` records ``add, to, drop_double_zero``.

    Raises
    ------
    rjtrial.errors.DataError
        Missing or negative counts, events exceeding the group size, an empty group, or a
        zero sampling variance; the message names the study row and column.

    Notes
    -----
    With cells a, b (events, non-events, treatment) and c, d (control), after the
    correction: ``estimate = log(a d / (b c))``, ``variance = 1/a + 1/b + 1/c + 1/d``
    (Woolf). Agrees with R ``metafor::escalc(measure="OR", add=1/2, to="only0")``
    to 1e-12 (tests/validation/test_metafor_bcg.py, test_metafor_collins1985a.py).

    References
    ----------
    Woolf, B. (1955). On estimating the relation between blood group and disease.
    Annals of Human Genetics, 19(4), 251-253. doi:10.1111/j.1469-1809.1955.tb01348.x

    Examples
    --------
    >>> es = log_odds_ratio(events_treatment=[4, 0], n_treatment=[123, 50],
    ...                     events_control=[11, 3], n_control=[139, 50])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -0.9387    0.3571
    1   -2.0072    2.3266
    """
    inputs = _counts(data, events_treatment, n_treatment, events_control, n_control, study, na_action)
    a, b, c, d, dropped = _corrected_cells(inputs, add=add, to=to, drop_double_zero=drop_double_zero)
    _undefined(inputs, (a == 0) | (b == 0) | (c == 0) | (d == 0), dropped, "log odds ratio")
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.log(a * d / (b * c))
        variance = 1 / a + 1 / b + 1 / c + 1 / d
    return _binary_output(
        inputs, estimate, variance, dropped, measure="log_odds_ratio", add=add, to=to, drop_double_zero=drop_double_zero
    )


def log_risk_ratio(
    data: pd.DataFrame | None = None,
    *,
    events_treatment,
    n_treatment,
    events_control,
    n_control,
    study=None,
    na_action: str = "omit",
    add: float = 0.5,
    to: str = "only_zero",
    drop_double_zero: bool = False,
) -> pd.DataFrame:
    """Log risk ratio (treatment vs control) of each study from its 2x2 table.

    Parameters are those of :func:`log_odds_ratio`.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (log RR), ``variance`` and the four counts; ``attrs["measure"] =
        "log_risk_ratio"``.

    Notes
    -----
    ``estimate = log(a / n1) - log(c / n2)``, ``variance = 1/a - 1/n1 + 1/c - 1/n2`` with
    the corrected cells (n1 = a + b, n2 = c + d). Agrees with R ``escalc(measure="RR")`` to
    1e-12.

    Examples
    --------
    >>> es = log_risk_ratio(events_treatment=[4], n_treatment=[123], events_control=[11], n_control=[139])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -0.8893    0.3256
    """
    inputs = _counts(data, events_treatment, n_treatment, events_control, n_control, study, na_action)
    a, b, c, d, dropped = _corrected_cells(inputs, add=add, to=to, drop_double_zero=drop_double_zero)
    _undefined(inputs, (a == 0) | (c == 0), dropped, "log risk ratio")
    n1, n2 = a + b, c + d
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = np.log(a / n1) - np.log(c / n2)
        variance = 1 / a - 1 / n1 + 1 / c - 1 / n2
    return _binary_output(
        inputs, estimate, variance, dropped, measure="log_risk_ratio", add=add, to=to, drop_double_zero=drop_double_zero
    )


def risk_difference(
    data: pd.DataFrame | None = None,
    *,
    events_treatment,
    n_treatment,
    events_control,
    n_control,
    study=None,
    na_action: str = "omit",
    add: float = 0.5,
    to: str = "only_zero",
    drop_double_zero: bool = False,
) -> pd.DataFrame:
    """Risk difference (treatment minus control) of each study from its 2x2 table.

    Parameters are those of :func:`log_odds_ratio`. As in R ``escalc``, the zero-cell
    correction also applies to the risk difference of tables with a zero cell; pass
    ``to="none"`` for the uncorrected proportions.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (risk difference), ``variance`` and the four counts;
        ``attrs["measure"] = "risk_difference"``.

    Notes
    -----
    ``estimate = p1 - p2``, ``variance = p1 (1 - p1) / n1 + p2 (1 - p2) / n2`` (large-sample,
    escalc's ``vtype="LS"``). Agrees with R ``escalc(measure="RD")`` to 1e-12.

    Examples
    --------
    >>> es = risk_difference(events_treatment=[4], n_treatment=[123], events_control=[11], n_control=[139])
    >>> print(round(es.loc[0, "estimate"], 4))
    -0.0466
    """
    inputs = _counts(data, events_treatment, n_treatment, events_control, n_control, study, na_action)
    a, b, c, d, dropped = _corrected_cells(inputs, add=add, to=to, drop_double_zero=drop_double_zero)
    n1, n2 = a + b, c + d
    p1, p2 = a / n1, c / n2
    estimate = p1 - p2
    variance = p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2
    return _binary_output(
        inputs,
        estimate,
        variance,
        dropped,
        measure="risk_difference",
        add=add,
        to=to,
        drop_double_zero=drop_double_zero,
    )


def peto_log_odds_ratio(
    data: pd.DataFrame | None = None,
    *,
    events_treatment,
    n_treatment,
    events_control,
    n_control,
    study=None,
    na_action: str = "omit",
    add: float = 0.5,
    to: str = "none",
    drop_double_zero: bool = True,
) -> pd.DataFrame:
    """Peto's one-step log odds ratio of each study: (O - E) / V from its 2x2 table.

    Parameters
    ----------
    data, events_treatment, n_treatment, events_control, n_control, study, na_action
        As in :func:`log_odds_ratio`.
    add : float, default 0.5
        Zero-cell correction added to the four cells of the tables chosen by ``to``.
    to : {"none", "only_zero", "all", "if_any_zero"}, default "none"
        Peto's method needs no correction, so none is applied by default (R ``escalc``
        applies ``to="only0"`` to every 2x2 measure, Peto's included: pass
        ``to="only_zero"`` to reproduce it). Pooling with ``method="Peto"`` always uses the
        uncorrected counts, as R ``rma.peto`` does.
    drop_double_zero : bool, default True
        Tables with no events (or only events) in both arms have V = 0 and no estimate: by
        default they get a missing ``estimate`` and ``variance``; with False they are an
        error naming the study.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` ((O - E) / V), ``variance`` (1 / V) and the four counts;
        ``attrs["measure"] = "peto_log_odds_ratio"``.

    Notes
    -----
    O = a events in the treatment arm, E = (a + c) n1 / N its expectation under no
    effect, V = (a + c)(b + d) n1 n2 / (N^2 (N - 1)) the hypergeometric variance. Agrees with
    R ``escalc(measure="PETO", to="none")`` (and with its default ``to="only0"`` when
    ``to="only_zero"``) to 1e-12.

    References
    ----------
    Yusuf, S., Peto, R., Lewis, J., Collins, R., & Sleight, P. (1985). Beta blockade during
    and after myocardial infarction. Progress in Cardiovascular Diseases, 27(5), 335-371.
    doi:10.1016/S0033-0620(85)80003-7

    Examples
    --------
    >>> es = peto_log_odds_ratio(events_treatment=[4], n_treatment=[123], events_control=[11], n_control=[139])
    >>> print(round(es.loc[0, "estimate"], 4))
    -0.8604
    """
    inputs = _counts(data, events_treatment, n_treatment, events_control, n_control, study, na_action)
    a, b, c, d, dropped = _corrected_cells(inputs, add=add, to=to, drop_double_zero=drop_double_zero)
    n1, n2 = a + b, c + d
    N = n1 + n2
    inputs.require(N > 1, None, "Peto's method needs at least two participants")
    expected = (a + c) * n1 / N
    V = (a + c) * (b + d) * (n1 / N) * (n2 / N) / (N - 1)
    inputs.require(
        (V > 0) | dropped,
        None,
        "no events (or only events) in both arms: Peto's variance is 0 "
        "(pass drop_double_zero=True or leave the study out)",
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        estimate = (a - expected) / V
        variance = 1 / V
    return _binary_output(
        inputs,
        estimate,
        variance,
        dropped,
        measure="peto_log_odds_ratio",
        add=add,
        to=to,
        drop_double_zero=drop_double_zero,
    )


def arcsine_risk_difference(
    data: pd.DataFrame | None = None,
    *,
    events_treatment,
    n_treatment,
    events_control,
    n_control,
    study=None,
    na_action: str = "omit",
    add: float = 0.0,
    to: str = "only_zero",
    drop_double_zero: bool = False,
) -> pd.DataFrame:
    """Arcsine square-root transformed risk difference (treatment minus control) from 2x2 tables.

    Parameters are those of :func:`log_odds_ratio`, except that ``add`` defaults to 0: the
    arcsine difference is defined for risks of 0 and 1, so no correction is needed (R
    ``escalc`` sets ``add = 0`` for this measure unless one is given).

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (arcsine difference, radians), ``variance`` and the four counts;
        ``attrs["measure"] = "arcsine_risk_difference"``.

    Notes
    -----
    ``estimate = asin(sqrt(p1)) - asin(sqrt(p2))``, ``variance = 1 / (4 n1) + 1 / (4 n2)``
    (Rücker et al. 2009). Agrees with R ``escalc(measure="AS")`` to 1e-12
    (tests/validation/test_collins1985a_arcsine.py).

    References
    ----------
    Rücker, G., Schwarzer, G., Carpenter, J., & Olkin, I. (2009). Why add anything to nothing?
    The arcsine difference as a measure of treatment effect in meta-analysis with zero cells.
    Statistics in Medicine, 28(5), 721-738. doi:10.1002/sim.3511

    Examples
    --------
    >>> es = arcsine_risk_difference(events_treatment=[4, 0], n_treatment=[123, 50],
    ...                              events_control=[11, 3], n_control=[139, 50])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -0.1038    0.0038
    1   -0.2475    0.0100
    """
    inputs = _counts(data, events_treatment, n_treatment, events_control, n_control, study, na_action)
    a, b, c, d, dropped = _corrected_cells(inputs, add=add, to=to, drop_double_zero=drop_double_zero)
    n1, n2 = a + b, c + d
    estimate = np.arcsin(np.sqrt(a / n1)) - np.arcsin(np.sqrt(c / n2))
    variance = 1 / (4 * n1) + 1 / (4 * n2)
    return _binary_output(
        inputs,
        estimate,
        variance,
        dropped,
        measure="arcsine_risk_difference",
        add=add,
        to=to,
        drop_double_zero=drop_double_zero,
    )
