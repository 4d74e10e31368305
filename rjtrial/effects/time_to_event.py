"""Log hazard ratios: from a published hazard ratio with its confidence interval, or log-rank O - E and V."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from rjtrial.effects._frame import Inputs, check_positive_variance, output


def log_hazard_ratio(
    data: pd.DataFrame | None = None,
    *,
    hazard_ratio,
    ci_lower,
    ci_upper,
    alpha: float = 0.05,
    study=None,
    na_action: str = "omit",
) -> pd.DataFrame:
    """Log hazard ratio and its variance from a published hazard ratio and confidence interval.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    hazard_ratio, ci_lower, ci_upper : str or array-like
        Hazard ratio (treatment vs control) and the limits of its (1 - alpha) confidence
        interval, on the ratio scale.
    alpha : float, default 0.05
        1 - the confidence level of the published interval (0.05 for a 95% CI).
    study : str or array-like, optional
        Study labels.
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (log HR) and ``variance``; ``attrs["measure"] = "log_hazard_ratio"``.

    Raises
    ------
    rjtrial.errors.DataError
        A missing or non-positive value, ``ci_lower >= ci_upper``, or an interval that does
        not contain the hazard ratio; the message names the study row.

    Notes
    -----
    ``estimate = log(HR)``, ``std_error = (log(upper) - log(lower)) / (2 z_{1 - alpha/2})``
    (the interval's width, which is robust to the rounding of a published HR). Parmar et al.
    (1998), method of their section 3.

    References
    ----------
    Parmar, M. K. B., Torri, V., & Stewart, L. (1998). Extracting summary statistics to
    perform meta-analyses of the published literature for survival endpoints. Statistics in
    Medicine, 17(24), 2815-2834. doi:10.1002/(SICI)1097-0258(19981230)17:24<2815::AID-SIM110>3.0.CO;2-8

    Examples
    --------
    >>> es = log_hazard_ratio(hazard_ratio=[0.75], ci_lower=[0.60], ci_upper=[0.94])
    >>> es.round(5)
       estimate  variance
    0  -0.28768   0.01312
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    inputs = Inputs(
        data,
        {"hazard_ratio": hazard_ratio, "ci_lower": ci_lower, "ci_upper": ci_upper},
        study=study,
        na_action=na_action,
    )
    inputs.finite("hazard_ratio", "ci_lower", "ci_upper")
    inputs.positive("hazard_ratio", "ci_lower", "ci_upper", what="a ratio")
    hr, lower, upper = inputs["hazard_ratio"], inputs["ci_lower"], inputs["ci_upper"]
    inputs.require(lower < upper, "ci_lower", lambda i: f"ci_lower {lower[i]:g} is not below ci_upper {upper[i]:g}")
    inputs.require(
        (lower <= hr) & (hr <= upper),
        "hazard_ratio",
        lambda i: f"the confidence interval [{lower[i]:g}, {upper[i]:g}] does not contain the hazard ratio {hr[i]:g}",
    )
    se = (np.log(upper) - np.log(lower)) / (2 * stats.norm.isf(alpha / 2))
    return output(inputs, np.log(hr), se**2, measure="log_hazard_ratio")


def log_hazard_ratio_logrank(
    data: pd.DataFrame | None = None,
    *,
    observed_minus_expected,
    logrank_variance,
    study=None,
    na_action: str = "omit",
) -> pd.DataFrame:
    """Log hazard ratio from the log-rank statistics O - E and V (Peto's method).

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    observed_minus_expected : str or array-like
        Observed minus expected events in the treatment arm (log-rank O - E).
    logrank_variance : str or array-like
        Its hypergeometric variance V (> 0).
    study : str or array-like, optional
        Study labels.
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.

    Returns
    -------
    pandas.DataFrame
        ``estimate = (O - E) / V`` and ``variance = 1 / V``;
        ``attrs["measure"] = "log_hazard_ratio"``.

    Notes
    -----
    The one-step estimate of the log hazard ratio (Yusuf et al. 1985), as in metadat's
    ``dat.pignon2000`` (``yi = OmE / V``, ``vi = 1 / V``); checked against it in
    tests/validation/test_metafor_pignon2000.py.

    Examples
    --------
    >>> es = log_hazard_ratio_logrank(observed_minus_expected=[-1.8], logrank_variance=[14.5])
    >>> es.round(4)
       estimate  variance
    0   -0.1241     0.069
    """
    inputs = Inputs(
        data,
        {"observed_minus_expected": observed_minus_expected, "logrank_variance": logrank_variance},
        study=study,
        na_action=na_action,
    )
    inputs.finite("observed_minus_expected", "logrank_variance")
    v = inputs["logrank_variance"]
    inputs.require(v > 0, "logrank_variance", lambda i: f"log-rank variance {v[i]:g} must be positive")
    variance = 1 / v
    check_positive_variance(inputs, variance)
    return output(inputs, inputs["observed_minus_expected"] / v, variance, measure="log_hazard_ratio")
