"""Standardised mean differences: Hedges' g and Cohen's d, from means and SDs, t or p values."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import special, stats

from rjtrial.effects._frame import Inputs, check_positive_variance, check_variance_type, output, weighted_mean

ALTERNATIVES = ("two-sided", "greater", "less")


def correction_factor(df) -> np.ndarray:
    """Hedges' exact small-sample correction J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2)).

    ``m`` is the degrees of freedom of the pooled SD, n_treatment + n_control - 2; J < 1 and
    J -> 1 as m grows (J ~ 1 - 3 / (4m - 1)). Equal to metafor's internal ``.cmicalc(m)``.

    Examples
    --------
    >>> print(round(float(correction_factor(10)), 6))
    0.922746
    """
    m = np.asarray(df, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(
            m > 1, np.exp(special.gammaln(m / 2) - np.log(np.sqrt(m / 2)) - special.gammaln((m - 1) / 2)), np.nan
        )


def _sizes(inputs: Inputs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    inputs.finite("n_treatment", "n_control")
    inputs.positive("n_treatment", "n_control", what="group size")
    n1, n2 = inputs["n_treatment"], inputs["n_control"]
    m = n1 + n2 - 2
    inputs.require(
        m > 1, "n_control", lambda i: f"n_treatment + n_control = {n1[i] + n2[i]:g}: at least 4 participants are needed"
    )
    return n1, n2, m


#: metafor's variance types of the standardised mean difference (``escalc(measure="SMD", vtype=)``).
SMD_VARIANCE_TYPES = ("LS", "LS2", "UB", "AV")


def _smd_frame(inputs, d, n1, n2, m, *, corrected: bool, variance_type: str = "LS") -> pd.DataFrame:
    check_variance_type(variance_type, SMD_VARIANCE_TYPES, "hedges_g")
    if not corrected and variance_type != "LS":
        raise ValueError(
            f"variance_type={variance_type!r} is for Hedges' g (small_sample_correction=True); "
            "Cohen's d has the large-sample variance only"
        )
    j = correction_factor(m)
    estimate = j * d if corrected else d
    n = n1 + n2
    if variance_type == "LS":
        variance = 1 / n1 + 1 / n2 + estimate**2 / (2 * n)
    elif variance_type == "LS2":
        variance = j**2 * (1 / n1 + 1 / n2 + d**2 / (2 * n))
    elif variance_type == "UB":
        variance = 1 / n1 + 1 / n2 + (1 - (m - 2) / (m * j**2)) * estimate**2
    else:
        average = weighted_mean(np.where(inputs.omitted, np.nan, estimate), n)
        variance = 1 / n1 + 1 / n2 + average**2 / (2 * n)
    check_positive_variance(inputs, variance)
    attrs = {"variance_type": variance_type} if corrected else None
    return output(
        inputs,
        estimate,
        variance,
        measure="hedges_g" if corrected else "cohens_d",
        extra={"n_treatment": n1, "n_control": n2},
        attrs=attrs,
    )


def _from_means(data, mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control, study, na_action):
    inputs = Inputs(
        data,
        {
            "mean_treatment": mean_treatment,
            "sd_treatment": sd_treatment,
            "n_treatment": n_treatment,
            "mean_control": mean_control,
            "sd_control": sd_control,
            "n_control": n_control,
        },
        study=study,
        na_action=na_action,
    )
    inputs.finite("mean_treatment", "sd_treatment", "mean_control", "sd_control")
    inputs.non_negative("sd_treatment", "sd_control", what="standard deviation")
    n1, n2, m = _sizes(inputs)
    s1, s2 = inputs["sd_treatment"], inputs["sd_control"]
    pooled_sd = np.sqrt(((n1 - 1) * s1**2 + (n2 - 1) * s2**2) / m)
    inputs.require(
        pooled_sd > 0, "sd_treatment", "both standard deviations are 0: the standardised mean difference is undefined"
    )
    d = (inputs["mean_treatment"] - inputs["mean_control"]) / pooled_sd
    return inputs, d, n1, n2, m


def hedges_g(
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
    """Hedges' g: standardised mean difference with the exact small-sample correction.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control : str or array-like
        Group means, standard deviations and sizes.
    study : str or array-like, optional
        Study labels (index of the result and named in errors).
    variance_type : {"LS", "LS2", "UB", "AV"}, default "LS"
        metafor's variance types (``escalc(measure="SMD", vtype=)``): ``"LS"`` the
        large-sample ``1/n1 + 1/n2 + g^2 / (2 n)``; ``"LS2"`` that of d scaled by the
        correction, ``J^2 (1/n1 + 1/n2 + d^2 / (2 n))``; ``"UB"`` the unbiased
        ``1/n1 + 1/n2 + (1 - (m - 2) / (m J^2)) g^2`` (Hedges 1983); ``"AV"`` the large-sample
        variance with the sample-size weighted average g of all studies in place of g.
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate`` (g), ``variance``, ``n_treatment``, ``n_control``;
        ``attrs["measure"] = "hedges_g"``.

    Raises
    ------
    rjtrial.errors.DataError
        Missing values, negative SDs, group sizes below 1 or fewer than 4 participants, both
        SDs zero; the message names the study row and column.

    Notes
    -----
    ``d = (mean_treatment - mean_control) / s_pooled`` with
    ``s_pooled^2 = ((n1 - 1) s1^2 + (n2 - 1) s2^2) / m``, ``m = n1 + n2 - 2``;
    ``g = J(m) d`` with the exact ``J(m) = Gamma(m/2) / (sqrt(m/2) Gamma((m-1)/2))``
    (:func:`correction_factor`), and (``"LS"``) ``variance = 1/n1 + 1/n2 + g^2 / (2 (n1 + n2))``.
    Agrees with R ``metafor::escalc(measure="SMD", vtype=)`` for each variance type to 1e-12
    (tests/validation/test_metafor_normand1999.py, test_normand1999_mean_differences.py).

    References
    ----------
    Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and
    related estimators. Journal of Educational Statistics, 6(2), 107-128.
    doi:10.3102/10769986006002107

    Hedges, L. V. (1983). A random effects model for effect sizes. Psychological Bulletin,
    93(2), 388-395. doi:10.1037/0033-2909.93.2.388

    Examples
    --------
    >>> es = hedges_g(mean_treatment=[55], sd_treatment=[47], n_treatment=[155],
    ...               mean_control=[75], sd_control=[64], n_control=[156])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0   -0.3552    0.0131
    """
    inputs, d, n1, n2, m = _from_means(
        data, mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control, study, na_action
    )
    return _smd_frame(inputs, d, n1, n2, m, corrected=True, variance_type=variance_type)


def cohens_d(
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
) -> pd.DataFrame:
    """Cohen's d: standardised mean difference without the small-sample correction.

    Parameters and errors are those of :func:`hedges_g`, without ``variance_type``.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (d), ``variance``, ``n_treatment``, ``n_control``;
        ``attrs["measure"] = "cohens_d"``.

    Notes
    -----
    ``d = (mean_treatment - mean_control) / s_pooled`` and
    ``variance = 1/n1 + 1/n2 + d^2 / (2 (n1 + n2))`` (the large-sample variance, as for g).
    Equal to R ``escalc(measure="SMD")$yi / J(m)`` to 1e-12.

    Examples
    --------
    >>> es = cohens_d(mean_treatment=[55], sd_treatment=[47], n_treatment=[155],
    ...               mean_control=[75], sd_control=[64], n_control=[156])
    >>> print(round(es.loc[0, "estimate"], 4))
    -0.356
    """
    inputs, d, n1, n2, m = _from_means(
        data, mean_treatment, sd_treatment, n_treatment, mean_control, sd_control, n_control, study, na_action
    )
    return _smd_frame(inputs, d, n1, n2, m, corrected=False)


def smd_from_t(
    data: pd.DataFrame | None = None,
    *,
    t_statistic,
    n_treatment,
    n_control,
    study=None,
    na_action: str = "omit",
    small_sample_correction: bool = True,
    variance_type: str = "LS",
) -> pd.DataFrame:
    """Standardised mean difference from a two-sample t statistic (treatment minus control).

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    t_statistic : str or array-like
        Pooled-variance two-sample t statistic; its sign gives the direction.
    n_treatment, n_control : str or array-like
        Group sizes.
    study : str or array-like, optional
        Study labels.
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.
    small_sample_correction : bool, default True
        True gives Hedges' g (``measure="hedges_g"``), False Cohen's d.
    variance_type : {"LS", "LS2", "UB", "AV"}, default "LS"
        The variance of g, as in :func:`hedges_g` (Cohen's d has ``"LS"`` only).

    Returns
    -------
    pandas.DataFrame
        ``estimate``, ``variance``, ``n_treatment``, ``n_control``.

    Notes
    -----
    ``d = t sqrt(1/n1 + 1/n2)``, then as :func:`hedges_g` / :func:`cohens_d`. Agrees with
    R ``escalc(measure="SMD", ti=, n1i=, n2i=)`` to 1e-12.

    Examples
    --------
    >>> es = smd_from_t(t_statistic=[2.5], n_treatment=[20], n_control=[22])
    >>> print(round(es.loc[0, "estimate"], 4))
    0.7578
    """
    inputs = Inputs(
        data,
        {"t_statistic": t_statistic, "n_treatment": n_treatment, "n_control": n_control},
        study=study,
        na_action=na_action,
    )
    inputs.finite("t_statistic")
    n1, n2, m = _sizes(inputs)
    d = inputs["t_statistic"] * np.sqrt(1 / n1 + 1 / n2)
    return _smd_frame(inputs, d, n1, n2, m, corrected=small_sample_correction, variance_type=variance_type)


def smd_from_p(
    data: pd.DataFrame | None = None,
    *,
    p_value,
    n_treatment,
    n_control,
    sign=None,
    alternative: str = "two-sided",
    study=None,
    na_action: str = "omit",
    small_sample_correction: bool = True,
    variance_type: str = "LS",
) -> pd.DataFrame:
    """Standardised mean difference from the p value of a two-sample t test.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    p_value : str or array-like
        p value of the pooled-variance t test, in (0, 1].
    n_treatment, n_control : str or array-like
        Group sizes.
    sign : str or array-like of +1/-1, optional
        Direction of the effect (+1: treatment mean higher). Required for two-sided p values,
        which do not carry it; ignored for one-sided ones.
    alternative : {"two-sided", "greater", "less"}, default "two-sided"
        The test's alternative: ``"greater"`` means p = P(T >= t), ``"less"`` p = P(T <= t).
    study : str or array-like, optional
        Study labels.
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.
    small_sample_correction : bool, default True
        True gives Hedges' g, False Cohen's d.
    variance_type : {"LS", "LS2", "UB", "AV"}, default "LS"
        The variance of g, as in :func:`hedges_g` (Cohen's d has ``"LS"`` only).

    Returns
    -------
    pandas.DataFrame
        ``estimate``, ``variance``, ``n_treatment``, ``n_control``.

    Notes
    -----
    The t statistic is recovered with the t distribution on n1 + n2 - 2 df
    (two-sided: ``t = sign * t_{1 - p/2}``), then :func:`smd_from_t`. Agrees with R
    ``escalc(measure="SMD", ti = sign * qt(p/2, n1 + n2 - 2, lower.tail = FALSE))`` to 1e-10.
    A p value reported as an inequality ("p < 0.05") gives only a bound; do not enter it.

    Examples
    --------
    >>> es = smd_from_p(p_value=[0.0166], sign=[1], n_treatment=[20], n_control=[22])
    >>> print(round(es.loc[0, "estimate"], 2))
    0.76
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative={alternative!r}: choose one of {', '.join(map(repr, ALTERNATIVES))}")
    arguments = {"p_value": p_value, "n_treatment": n_treatment, "n_control": n_control}
    if alternative == "two-sided":
        if sign is None:
            raise ValueError("a two-sided p value carries no direction: give sign (+1 or -1 per study)")
        arguments["sign"] = sign
    inputs = Inputs(data, arguments, study=study, na_action=na_action)
    inputs.finite("p_value")
    p = inputs["p_value"]
    inputs.require((p > 0) & (p <= 1), "p_value", lambda i: f"p value {p[i]:g} is not in (0, 1]")
    n1, n2, m = _sizes(inputs)
    t: float | np.ndarray
    if alternative == "two-sided":
        inputs.finite("sign")
        s = inputs["sign"]
        inputs.require(np.isin(s, (-1.0, 1.0)), "sign", lambda i: f"sign must be +1 or -1, got {s[i]:g}")
        t = s * stats.t.isf(p / 2, m)
    elif alternative == "greater":
        t = stats.t.isf(p, m)
    else:
        t = stats.t.ppf(p, m)
    d = t * np.sqrt(1 / n1 + 1 / n2)
    inputs.require(np.isfinite(d), "p_value", "p value too extreme to recover the t statistic")
    return _smd_frame(inputs, d, n1, n2, m, corrected=small_sample_correction, variance_type=variance_type)
