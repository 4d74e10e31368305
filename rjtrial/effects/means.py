"""Raw mean differences and (log) ratios of means of two groups (metafor's MD and ROM).

Both take the groups' means, standard deviations and sizes, as :func:`rjtrial.effects.hedges_g`
does; the mean difference keeps the outcome's own units (days of street time, offences), the
ratio of means is for outcomes on a ratio scale (all values positive).
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

__all__ = ["log_ratio_of_means", "mean_difference"]

MEAN_COLUMNS = ("mean_treatment", "sd_treatment", "n_treatment", "mean_control", "sd_control", "n_control")

_PARAMETERS = """
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control : str or array-like
        Group means, standard deviations and sizes.
    study : str or array-like, optional
        Study labels (the index of the result and named in errors).
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column."""


def _with_parameters(func):
    func.__doc__ = func.__doc__.replace("    %(parameters)s", _PARAMETERS.strip("\n"))
    return func


def _means(data, arguments, study, na_action):
    inputs = Inputs(data, dict(zip(MEAN_COLUMNS, arguments)), study=study, na_action=na_action)
    inputs.finite(*MEAN_COLUMNS)
    inputs.non_negative("sd_treatment", "sd_control", what="standard deviation")
    inputs.positive("n_treatment", "n_control", what="group size")
    return inputs


def _pooled_sd(inputs) -> np.ndarray:
    n1, n2 = inputs["n_treatment"], inputs["n_control"]
    s1, s2 = inputs["sd_treatment"], inputs["sd_control"]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / (n1 + n2 - 2))


def _frame(inputs, estimate, variance, *, measure, variance_type):
    check_positive_variance(inputs, variance, hint="both standard deviations are 0")
    return output(
        inputs,
        estimate,
        variance,
        measure=measure,
        extra={name: inputs[name] for name in MEAN_COLUMNS},
        attrs={"variance_type": variance_type},
    )


@_with_parameters
def mean_difference(
    data: pd.DataFrame | None = None,
    *,
    mean_treatment,
    sd_treatment,
    n_treatment,
    mean_control,
    sd_control,
    n_control,
    study=None,
    na_action: str = "omit",
    variance_type: str = "LS",
) -> pd.DataFrame:
    """Raw mean difference (treatment minus control) of each study and its sampling variance.

    Parameters
    ----------
    %(parameters)s
    variance_type : {"LS", "HO"}, default "LS"
        ``"LS"``: ``s1^2 / n1 + s2^2 / n2``, each group with its own variance (unbiased; R's
        ``"UB"`` is the same); ``"HO"``: the pooled variance,
        ``s_pooled^2 (1 / n1 + 1 / n2)``, assuming equal variances in the two groups.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate`` (mean difference, in the outcome's units), ``variance``
        and the six inputs; ``attrs["measure"] = "mean_difference"``,
        ``attrs["variance_type"]``, ``attrs["n_omitted"]`` and ``attrs["omitted"]``.

    Raises
    ------
    rjtrial.errors.DataError
        Missing values (with ``na_action="raise"``), negative standard deviations, group sizes
        below 1, a zero variance (both SDs 0, or a group of one with ``"HO"``); the message
        names the study row and column.

    Notes
    -----
    Agrees with R ``metafor::escalc(measure="MD", vtype=)`` to 1e-12
    (tests/validation/test_normand1999_mean_differences.py).

    Examples
    --------
    >>> es = mean_difference(mean_treatment=[55], sd_treatment=[47], n_treatment=[155],
    ...                      mean_control=[75], sd_control=[64], n_control=[156])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0     -20.0    40.508
    """
    variance_type = check_variance_type(variance_type, ("LS", "HO"), "mean_difference")
    inputs = _means(
        data, (mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control), study, na_action
    )
    n1, n2 = inputs["n_treatment"], inputs["n_control"]
    estimate = inputs["mean_treatment"] - inputs["mean_control"]
    if variance_type == "LS":
        variance = inputs["sd_treatment"] ** 2 / n1 + inputs["sd_control"] ** 2 / n2
    else:
        inputs.require(n1 + n2 > 2, "n_control", "variance_type='HO' needs more than two participants")
        variance = _pooled_sd(inputs) ** 2 * (1 / n1 + 1 / n2)
    return _frame(inputs, estimate, variance, measure="mean_difference", variance_type=variance_type)


@_with_parameters
def log_ratio_of_means(
    data: pd.DataFrame | None = None,
    *,
    mean_treatment,
    sd_treatment,
    n_treatment,
    mean_control,
    sd_control,
    n_control,
    study=None,
    na_action: str = "omit",
    variance_type: str = "LS",
) -> pd.DataFrame:
    """Log ratio of means (treatment over control; the log response ratio) and its sampling variance.

    Parameters
    ----------
    %(parameters)s
    variance_type : {"LS", "HO", "AV", "AVHO"}, default "LS"
        ``"LS"``: ``s1^2 / (n1 m1^2) + s2^2 / (n2 m2^2)``; ``"HO"``: the pooled SD in both
        terms; ``"AV"``: ``cv1^2 / n1 + cv2^2 / n2`` with each group's coefficient of
        variation ``cv = s / m`` averaged over the studies (weights n); ``"AVHO"``: one
        average coefficient of variation over both groups and all studies,
        ``cv^2 (1 / n1 + 1 / n2)`` (metafor's ``vtype``).

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (log ratio of means), ``variance`` and the six inputs;
        ``attrs["measure"] = "log_ratio_of_means"``, ``attrs["variance_type"]``,
        ``attrs["n_omitted"]`` and ``attrs["omitted"]``; the ratio is ``exp(estimate)``.

    Raises
    ------
    rjtrial.errors.DataError
        As :func:`mean_difference`, and a study whose means are zero or of opposite signs (the
        ratio has no logarithm); the message names the study row.

    Notes
    -----
    ``estimate = log(m1 / m2)`` (Hedges, Gurevitch & Curtis 1999). Agrees with R
    ``escalc(measure="ROM", vtype=)`` to 1e-12 (tests/validation/test_curtis1998_ratio_of_means.py).
    As ``escalc``, two negative means give the log of their (positive) ratio; the measure is
    meant for outcomes on a ratio scale.

    References
    ----------
    Hedges, L. V., Gurevitch, J., & Curtis, P. S. (1999). The meta-analysis of response
    ratios in experimental ecology. Ecology, 80(4), 1150-1156.
    doi:10.1890/0012-9658(1999)080[1150:TMAORR]2.0.CO;2

    Examples
    --------
    >>> es = log_ratio_of_means(mean_treatment=[3.1], sd_treatment=[2.5], n_treatment=[60],
    ...                         mean_control=[4.0], sd_control=[2.9], n_control=[58])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -0.2549    0.0199
    """
    variance_type = check_variance_type(variance_type, ("LS", "HO", "AV", "AVHO"), "log_ratio_of_means")
    inputs = _means(
        data, (mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control), study, na_action
    )
    m1, m2 = inputs["mean_treatment"], inputs["mean_control"]
    s1, s2 = inputs["sd_treatment"], inputs["sd_control"]
    n1, n2 = inputs["n_treatment"], inputs["n_control"]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = m1 / m2
    inputs.require(
        (ratio > 0) & np.isfinite(ratio),
        "mean_control",
        lambda i: f"means {m1[i]:g} and {m2[i]:g}: the ratio of means needs two non-zero means of the same sign",
    )
    estimate = np.log(ratio)
    omitted = inputs.omitted
    with np.errstate(divide="ignore", invalid="ignore"):
        if variance_type == "LS":
            variance = s1**2 / (n1 * m1**2) + s2**2 / (n2 * m2**2)
        elif variance_type == "HO":
            inputs.require(n1 + n2 > 2, "n_control", "variance_type='HO' needs more than two participants")
            sp2 = _pooled_sd(inputs) ** 2
            variance = sp2 / (n1 * m1**2) + sp2 / (n2 * m2**2)
        else:
            cv1, cv2 = np.where(omitted, np.nan, s1 / m1), np.where(omitted, np.nan, s2 / m2)
            if variance_type == "AV":
                variance = weighted_mean(cv1, n1) ** 2 / n1 + weighted_mean(cv2, n2) ** 2 / n2
            else:
                keep = ~omitted
                cv = (np.sum(n1[keep] * cv1[keep]) + np.sum(n2[keep] * cv2[keep])) / np.sum(n1[keep] + n2[keep])
                variance = cv**2 * (1 / n1 + 1 / n2)
    require_defined(inputs, variance, None, "the sampling variance is undefined")
    return _frame(inputs, estimate, variance, measure="log_ratio_of_means", variance_type=variance_type)
