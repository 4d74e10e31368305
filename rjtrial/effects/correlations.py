"""Correlation coefficients and Fisher's z (metafor's COR and ZCOR).

Each study reports a Pearson correlation ``correlation`` between two variables measured on
``n`` participants (e.g. victims' satisfaction and their fear of revictimisation). The raw
correlation's variance depends on the correlation itself; Fisher's z stabilises it to
``1 / (n - 3)`` and is the scale on which correlations are usually pooled (back-transform with
``numpy.tanh``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rjtrial.effects._frame import (
    Inputs,
    check_positive_variance,
    check_variance_type,
    output,
    require_defined,
    weighted_mean,
)

__all__ = ["correlation", "fisher_z"]

_PARAMETERS = """
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    correlation : str or array-like
        Pearson correlation of each study, in [-1, 1].
    n : str or array-like
        Sample size of each study (at least 4: R ``escalc`` gives no variance for n <= 3).
    study : str or array-like, optional
        Study labels (the index of the result and named in errors).
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column."""


def _with_parameters(func):
    func.__doc__ = func.__doc__.replace("    %(parameters)s", _PARAMETERS.strip("\n"))
    return func


def _inputs(data, correlation_, n, study, na_action) -> Inputs:
    inputs = Inputs(data, {"correlation": correlation_, "n": n}, study=study, na_action=na_action)
    inputs.finite("correlation", "n")
    r, size = inputs["correlation"], inputs["n"]
    inputs.require(np.abs(r) <= 1, "correlation", lambda i: f"correlation {r[i]:g} is not in [-1, 1]")
    inputs.require(
        size > 3,
        "n",
        lambda i: f"sample size {size[i]:g}: a correlation needs at least 4 participants for a sampling variance",
    )
    return inputs


@_with_parameters
def correlation(
    data: pd.DataFrame | None = None,
    *,
    correlation,
    n,
    study=None,
    na_action: str = "omit",
    variance_type: str = "LS",
) -> pd.DataFrame:
    """Raw correlation coefficient of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s
    variance_type : {"LS", "AV"}, default "LS"
        ``"LS"`` the large-sample ``(1 - r^2)^2 / (n - 1)``; ``"AV"`` the same with the
        sample-size weighted average correlation of all studies in place of r.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate`` (r), ``variance``, ``n``; ``attrs["measure"] =
        "correlation"``, ``attrs["variance_type"]``, ``attrs["n_omitted"]`` and
        ``attrs["omitted"]``.

    Raises
    ------
    rjtrial.errors.DataError
        Missing values (with ``na_action="raise"``), a correlation outside [-1, 1], a
        sample size below 4, a correlation of exactly -1 or 1 (variance 0:
        ``escalc`` keeps it, but it cannot be pooled); the message names the study row and
        column.

    Notes
    -----
    Agrees with R ``metafor::escalc(measure="COR", ri=, ni=, vtype=)`` to 1e-12
    (tests/validation/test_molloy2014_correlations.py).

    Examples
    --------
    >>> es = correlation(correlation=[0.19, -0.05], n=[109, 65])
    >>> es[["estimate", "variance"]].round(5)
       estimate  variance
    0      0.19   0.00860
    1     -0.05   0.01555
    """
    variance_type = check_variance_type(variance_type, ("LS", "AV"), "correlation")
    inputs = _inputs(data, correlation, n, study, na_action)
    r, size = inputs["correlation"], inputs["n"]
    if variance_type == "LS":
        variance = (1 - r**2) ** 2 / (size - 1)
    else:
        average = weighted_mean(np.where(inputs.omitted, np.nan, r), size)
        variance = (1 - average**2) ** 2 / (size - 1)
    check_positive_variance(inputs, variance, hint="a correlation of -1 or 1")
    return output(inputs, r, variance, measure="correlation", extra={"n": size}, attrs={"variance_type": variance_type})


@_with_parameters
def fisher_z(
    data: pd.DataFrame | None = None,
    *,
    correlation,
    n,
    study=None,
    na_action: str = "omit",
) -> pd.DataFrame:
    """Fisher's z-transformed correlation ``atanh(r)`` of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s

    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate`` (z), ``variance`` (``1 / (n - 3)``), ``n``;
        ``attrs["measure"] = "fisher_z"``, ``attrs["n_omitted"]`` and ``attrs["omitted"]``.
        ``numpy.tanh`` turns z (and a pooled z and its limits) back into correlations.

    Raises
    ------
    rjtrial.errors.DataError
        As :func:`correlation`; a correlation of -1 or 1 has an infinite z.

    Notes
    -----
    ``estimate = atanh(r) = log((1 + r) / (1 - r)) / 2`` (Fisher 1921). Agrees with R
    ``escalc(measure="ZCOR")`` to 1e-12.

    References
    ----------
    Fisher, R. A. (1921). On the "probable error" of a coefficient of correlation deduced from
    a small sample. Metron, 1, 3-32.

    Examples
    --------
    >>> es = fisher_z(correlation=[0.19, -0.05], n=[109, 65])
    >>> es[["estimate", "variance"]].round(5)
       estimate  variance
    0   0.19234   0.00943
    1  -0.05004   0.01613
    """
    inputs = _inputs(data, correlation, n, study, na_action)
    r, size = inputs["correlation"], inputs["n"]
    with np.errstate(divide="ignore"):
        estimate = np.arctanh(r)
    require_defined(inputs, estimate, "correlation", lambda i: f"correlation {r[i]:g} has an infinite Fisher's z")
    return output(inputs, estimate, 1 / (size - 3), measure="fisher_z", extra={"n": size})
