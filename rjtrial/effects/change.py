"""Standardised mean change: before-after comparisons in one group, and the difference between two groups.

Criminology often reports offending before and after an intervention (the JRC trials compared
the two years before random assignment with the two after). For one group, the standardised
mean change ``(mean_after - mean_before) / s`` standardises by

* the SD of the change scores (``standardiser="change_score"``; metafor's ``SMCC``, Gibbons et
  al. 1993), or
* the SD before (``standardiser="raw_score"``; metafor's ``SMCR``, Becker 1988), comparable with
  a between-group d;

each multiplied by the small-sample correction ``J(n - 1)``. For a randomised trial with
before and after measures in both arms, :func:`standardised_mean_change_difference` is the
treatment arm's change minus the control arm's, with the sum of their variances (Becker 1988;
Morris 2008's d_ppc1, the analysis of metafor's own Morris (2008) example).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rjtrial.effects._frame import Inputs, check_positive_variance, check_variance_type, output
from rjtrial.effects.continuous import correction_factor

__all__ = ["STANDARDISERS", "standardised_mean_change", "standardised_mean_change_difference"]

#: How the mean change is standardised: by the SD of the change scores or by the SD before.
STANDARDISERS = ("raw_score", "change_score")
VARIANCE_TYPES = ("LS", "LS2")

_MEASURE = "standardised_mean_change_{standardiser}"


def _check_options(standardiser: str, variance_type: str) -> None:
    if standardiser not in STANDARDISERS:
        raise ValueError(f"standardiser={standardiser!r}: choose one of {', '.join(map(repr, STANDARDISERS))}")
    check_variance_type(variance_type, VARIANCE_TYPES, "standardised_mean_change")


def _arm_arguments(
    standardiser: str, suffix: str, *, mean_before, mean_after, n, sd_before, sd_after, correlation, sd_change
) -> dict:
    """The inputs one arm needs, by name (``mean_before`` + suffix...); a ValueError names what is missing."""
    given = {"mean_before": mean_before, "mean_after": mean_after, "n": n}
    if standardiser == "raw_score":
        needed = {"sd_before": sd_before, "correlation": correlation}
    elif sd_change is not None:
        needed = {"sd_change": sd_change}
    else:
        needed = {"sd_before": sd_before, "sd_after": sd_after, "correlation": correlation}
    absent = [name + suffix for name, value in needed.items() if value is None]
    if absent:
        hint = " (or sd_change" + suffix + ")" if standardiser == "change_score" and sd_change is None else ""
        raise ValueError(f"standardiser={standardiser!r} needs {', '.join(absent)}{hint}")
    return {name + suffix: value for name, value in {**given, **needed}.items()}


def _arm(inputs: Inputs, standardiser: str, variance_type: str, suffix: str):
    """(estimate, variance) of one arm's standardised mean change, every input checked by row."""
    names = [name for name in inputs.values if name.endswith(suffix) or not suffix]
    inputs.finite(*names)
    n = inputs["n" + suffix]
    inputs.positive("n" + suffix, what="sample size")
    inputs.require(
        n > 2, "n" + suffix, lambda i: f"sample size {n[i]:g}: a standardised mean change needs at least 3 participants"
    )
    sds = [name for name in ("sd_before", "sd_after", "sd_change") if name + suffix in inputs.values]
    inputs.non_negative(*(name + suffix for name in sds), what="standard deviation")
    if "correlation" + suffix in inputs.values:
        r = inputs["correlation" + suffix]
        inputs.require(np.abs(r) <= 1, "correlation" + suffix, lambda i: f"correlation {r[i]:g} is not in [-1, 1]")
    change = inputs["mean_after" + suffix] - inputs["mean_before" + suffix]
    if standardiser == "raw_score":
        sd, column = inputs["sd_before" + suffix], "sd_before" + suffix
    elif "sd_change" + suffix in inputs.values:
        sd, column = inputs["sd_change" + suffix], "sd_change" + suffix
    else:
        before, after, r = inputs["sd_before" + suffix], inputs["sd_after" + suffix], inputs["correlation" + suffix]
        sd, column = np.sqrt(np.maximum(after**2 + before**2 - 2 * r * after * before, 0.0)), "sd_after" + suffix
    inputs.require(sd > 0, column, "the standardiser (an SD) is 0: the standardised mean change is undefined")
    with np.errstate(divide="ignore", invalid="ignore"):
        d = change / sd
    j = correction_factor(n - 1)
    estimate = j * d
    sampling = 2 * (1 - inputs["correlation" + suffix]) / n if standardiser == "raw_score" else 1 / n
    if variance_type == "LS":
        variance = sampling + estimate**2 / (2 * n)
    else:
        variance = j**2 * (sampling + d**2 / (2 * n))
    return estimate, variance


def standardised_mean_change(
    data: pd.DataFrame | None = None,
    *,
    mean_before,
    mean_after,
    n,
    sd_before=None,
    sd_after=None,
    correlation=None,
    sd_change=None,
    standardiser: str = "raw_score",
    variance_type: str = "LS",
    study=None,
    na_action: str = "omit",
) -> pd.DataFrame:
    """Standardised mean change from before to after in one group, and its sampling variance.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    mean_before, mean_after : str or array-like
        Means at the two occasions (before and after an intervention, or the two members of
        matched pairs); the change is ``mean_after - mean_before``.
    n : str or array-like
        Number of participants measured on both occasions (at least 3).
    sd_before, sd_after : str or array-like, optional
        Standard deviations on each occasion. ``"raw_score"`` standardises by ``sd_before``
        (pass the post-test SD as ``sd_before`` to standardise by it instead);
        ``"change_score"`` needs both (with ``correlation``) unless ``sd_change`` is given.
    correlation : str or array-like, optional
        Correlation between the two occasions' measurements; needed by ``"raw_score"`` (its
        variance) and by ``"change_score"`` without ``sd_change``.
    sd_change : str or array-like, optional
        The SD of the change scores, where a study reports it (``"change_score"`` only).
    standardiser : {"raw_score", "change_score"}, default "raw_score"
        Standardise by the SD before (Becker 1988; R ``escalc`` ``"SMCR"``), comparable with a
        between-group d, or by the SD of the change scores (``"SMCC"``).
    variance_type : {"LS", "LS2"}, default "LS"
        ``"LS"``: ``a / n + g^2 / (2 n)``; ``"LS2"``: ``J^2 (a / n + d^2 / (2 n))``, with
        ``a = 2 (1 - r)`` for ``"raw_score"`` and ``a = 1`` for ``"change_score"``
        (metafor's ``vtype``).
    study : str or array-like, optional
        Study labels (the index of the result and named in errors).
    na_action : {"omit", "raise"}, default "omit"
        A study with a missing input keeps its row, with a missing estimate and variance,
        counted in ``attrs["n_omitted"]`` and listed in ``attrs["omitted"]``, with a warning
        (``"omit"``, as R ``escalc``); or raises a DataError naming the row and column.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate`` (g, the corrected standardised change), ``variance``,
        ``n``; ``attrs["measure"]`` is ``"standardised_mean_change_raw_score"`` or
        ``"standardised_mean_change_change_score"`` (the two are not on one scale: do not pool
        them together), with ``attrs["variance_type"]``, ``attrs["n_omitted"]`` and
        ``attrs["omitted"]``.

    Raises
    ------
    ValueError
        An unknown ``standardiser`` or ``variance_type``, or an input the standardiser needs
        not given.
    rjtrial.errors.DataError
        Missing values (with ``na_action="raise"``), negative SDs, a correlation outside
        [-1, 1], fewer than 3 participants, a standardising SD of 0; the message names the
        study row and column.

    Notes
    -----
    ``d = (mean_after - mean_before) / s`` with ``s = sd_before`` (raw score) or
    ``s = sqrt(sd_after^2 + sd_before^2 - 2 r sd_after sd_before)`` (change score), and
    ``g = J(n - 1) d`` with the exact correction of :func:`rjtrial.effects.correction_factor`.
    Agrees with R ``metafor::escalc(measure="SMCR" | "SMCC", m1i = mean_after,
    m2i = mean_before, sd1i = sd_before (SMCR) or sd_after (SMCC), sd2i = sd_before, ni = n,
    ri = correlation, vtype=)`` to 1e-12 (tests/validation/test_morris2008_mean_change.py).
    Beware escalc's argument order: ``m1i`` is the *after* mean and, for SMCR, ``sd1i`` the
    SD used to standardise (usually the *before* SD).

    References
    ----------
    Becker, B. J. (1988). Synthesizing standardized mean-change measures. British Journal of
    Mathematical and Statistical Psychology, 41(2), 257-278.
    doi:10.1111/j.2044-8317.1988.tb00901.x

    Gibbons, R. D., Hedeker, D. R., & Davis, J. M. (1993). Estimation of effect size from a
    series of experiments involving paired comparisons. Journal of Educational Statistics,
    18(3), 271-279. doi:10.3102/10769986018003271

    Examples
    --------
    >>> es = standardised_mean_change(mean_before=[30.6], mean_after=[38.5], sd_before=[15.0],
    ...                               correlation=[0.47], n=[20])
    >>> es[["estimate", "variance"]].round(4)
       estimate  variance
    0    0.5056    0.0594
    """
    _check_options(standardiser, variance_type)
    arguments = _arm_arguments(
        standardiser,
        "",
        mean_before=mean_before,
        mean_after=mean_after,
        n=n,
        sd_before=sd_before,
        sd_after=sd_after,
        correlation=correlation,
        sd_change=sd_change,
    )
    inputs = Inputs(data, arguments, study=study, na_action=na_action)
    estimate, variance = _arm(inputs, standardiser, variance_type, "")
    check_positive_variance(inputs, variance)
    return output(
        inputs,
        estimate,
        variance,
        measure=_MEASURE.format(standardiser=standardiser),
        extra={"n": inputs["n"]},
        attrs={"variance_type": variance_type},
    )


def standardised_mean_change_difference(
    data: pd.DataFrame | None = None,
    *,
    mean_before_treatment,
    mean_after_treatment,
    n_treatment,
    mean_before_control,
    mean_after_control,
    n_control,
    sd_before_treatment=None,
    sd_after_treatment=None,
    correlation_treatment=None,
    sd_change_treatment=None,
    sd_before_control=None,
    sd_after_control=None,
    correlation_control=None,
    sd_change_control=None,
    standardiser: str = "raw_score",
    variance_type: str = "LS",
    study=None,
    na_action: str = "omit",
) -> pd.DataFrame:
    """Difference in standardised mean change, treatment minus control (pre-post-control designs).

    Each arm's standardised mean change is computed as by :func:`standardised_mean_change`
    (the ``*_treatment`` and ``*_control`` arguments are that function's, for each arm); the
    effect is their difference and its variance the sum of theirs (the arms are independent).

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the other arguments may be column names of ``data``.
    mean_before_treatment, mean_after_treatment, n_treatment : str or array-like
        The treatment arm's means before and after and its size.
    mean_before_control, mean_after_control, n_control : str or array-like
        The same for the control arm.
    sd_before_treatment, sd_after_treatment, correlation_treatment, sd_change_treatment : str or array-like, optional
        The treatment arm's SDs and before-after correlation, as the standardiser needs them
        (see :func:`standardised_mean_change`).
    sd_before_control, sd_after_control, correlation_control, sd_change_control : str or array-like, optional
        The same for the control arm.
    standardiser : {"raw_score", "change_score"}, default "raw_score"
        As in :func:`standardised_mean_change`.
    variance_type : {"LS", "LS2"}, default "LS"
        As in :func:`standardised_mean_change`.
    study : str or array-like, optional
        Study labels.
    na_action : {"omit", "raise"}, default "omit"
        As in :func:`standardised_mean_change`.

    Returns
    -------
    pandas.DataFrame
        One row per study: ``estimate`` (treatment change minus control change),
        ``variance``, ``n_treatment``, ``n_control``; ``attrs["measure"]`` is
        ``"standardised_mean_change_difference_raw_score"`` or ``..._change_score``, with
        ``attrs["variance_type"]``, ``attrs["n_omitted"]`` and ``attrs["omitted"]``.

    Raises
    ------
    ValueError, rjtrial.errors.DataError
        As :func:`standardised_mean_change`, naming the arm's column.

    Notes
    -----
    Reproduces Morris (2008), Table 1 (the raw-score d_ppc1 of five studies: 0.74, 0.95,
    1.81, 1.15, 0.51), and R ``escalc("SMCR", ...)$yi`` of the treatment arms minus that of
    the control arms (variances added) to 1e-12, as metafor's Morris (2008) example
    (tests/validation/test_morris2008_mean_change.py).

    References
    ----------
    Morris, S. B. (2008). Estimating effect sizes from pretest-posttest-control group designs.
    Organizational Research Methods, 11(2), 364-386. doi:10.1177/1094428106291059

    Examples
    --------
    >>> es = standardised_mean_change_difference(
    ...     mean_before_treatment=[30.6], mean_after_treatment=[38.5], sd_before_treatment=[15.0],
    ...     correlation_treatment=[0.47], n_treatment=[20],
    ...     mean_before_control=[23.1], mean_after_control=[19.7], sd_before_control=[13.8],
    ...     correlation_control=[0.47], n_control=[20])
    >>> es[["estimate", "variance"]].round(2)
       estimate  variance
    0      0.74      0.11
    """
    _check_options(standardiser, variance_type)
    arguments = {
        **_arm_arguments(
            standardiser,
            "_treatment",
            mean_before=mean_before_treatment,
            mean_after=mean_after_treatment,
            n=n_treatment,
            sd_before=sd_before_treatment,
            sd_after=sd_after_treatment,
            correlation=correlation_treatment,
            sd_change=sd_change_treatment,
        ),
        **_arm_arguments(
            standardiser,
            "_control",
            mean_before=mean_before_control,
            mean_after=mean_after_control,
            n=n_control,
            sd_before=sd_before_control,
            sd_after=sd_after_control,
            correlation=correlation_control,
            sd_change=sd_change_control,
        ),
    }
    inputs = Inputs(data, arguments, study=study, na_action=na_action)
    treatment, treatment_variance = _arm(inputs, standardiser, variance_type, "_treatment")
    control, control_variance = _arm(inputs, standardiser, variance_type, "_control")
    variance = treatment_variance + control_variance
    check_positive_variance(inputs, variance)
    return output(
        inputs,
        treatment - control,
        variance,
        measure=f"standardised_mean_change_difference_{standardiser}",
        extra={"n_treatment": inputs["n_treatment"], "n_control": inputs["n_control"]},
        attrs={"variance_type": variance_type},
    )
