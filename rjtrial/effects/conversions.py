"""Conversions between a standardised mean difference (d), a log odds ratio, a correlation and Fisher's z.

Each takes an effect-size frame (``estimate``, ``variance``; the measure in ``attrs``) and
returns one on the new scale, other columns unchanged, with ``attrs["converted_from"]``:

=============================================  ==========================================
d <-> log odds ratio                           :func:`d_to_log_odds_ratio`, :func:`log_odds_ratio_to_d`
d <-> correlation (point-biserial)             :func:`d_to_correlation`, :func:`correlation_to_d`
log odds ratio <-> correlation                 :func:`log_odds_ratio_to_correlation`,
                                               :func:`correlation_to_log_odds_ratio`
correlation <-> Fisher's z                     :func:`correlation_to_fisher_z`, :func:`fisher_z_to_correlation`
=============================================  ==========================================

Variances follow by the delta method (Borenstein et al. 2009, chapter 7), except Fisher's z,
whose variance is ``1 / (n - 3)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rjtrial.effects.continuous import correction_factor

#: Scale factors: log OR = factor * d.
FACTORS = {"logistic": math.pi / math.sqrt(3), "cox": 1.65}
D_MEASURES = ("hedges_g", "cohens_d")
LOG_OR_MEASURES = ("log_odds_ratio",)
CORRELATION_MEASURES = ("correlation",)
FISHER_Z_MEASURES = ("fisher_z",)
#: Attributes an effect-size frame keeps through a conversion (the studies omitted for missing inputs).
KEPT_ATTRS = ("n_omitted", "omitted")


def _check(effects, allowed: tuple[str, ...], method: str = "logistic") -> None:
    if not isinstance(effects, pd.DataFrame) or not {"estimate", "variance"} <= set(effects.columns):
        raise TypeError("effects must be a DataFrame with columns 'estimate' and 'variance' (from rjtrial.effects)")
    if method not in FACTORS:
        raise ValueError(f"method={method!r}: choose one of {', '.join(map(repr, FACTORS))}")
    measure = effects.attrs.get("measure")
    if measure is not None and measure not in allowed:
        raise ValueError(f"effects hold measure {measure!r}; this conversion needs one of {', '.join(allowed)}")


def d_to_log_odds_ratio(effects: pd.DataFrame, *, method: str = "logistic") -> pd.DataFrame:
    """Convert standardised mean differences to log odds ratios.

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` and ``variance`` of d or g (e.g. from :func:`cohens_d`).
    method : {"logistic", "cox"}, default "logistic"
        ``"logistic"``: log OR = pi / sqrt(3) d, variance times pi^2 / 3 (Hasselblad & Hedges
        1995; Chinn 2000); ``"cox"``: log OR = 1.65 d, variance times 1.65^2 (Cox 1970).

    Returns
    -------
    pandas.DataFrame
        ``estimate`` and ``variance`` on the log odds ratio scale, other columns unchanged;
        ``attrs["measure"] = "log_odds_ratio"`` and ``attrs["converted_from"]``.

    Notes
    -----
    Applied to Cohen's d, agrees with R ``escalc(measure="D2ORL")`` (logistic) and
    ``"D2ORN"`` (cox) to 1e-12.

    References
    ----------
    Chinn, S. (2000). A simple method for converting an odds ratio to effect size for use in
    meta-analysis. Statistics in Medicine, 19(22), 3127-3131.
    doi:10.1002/1097-0258(20001130)19:22<3127::AID-SIM784>3.0.CO;2-M

    Examples
    --------
    >>> d = pd.DataFrame({"estimate": [0.5], "variance": [0.04]})
    >>> d_to_log_odds_ratio(d).round(4)
       estimate  variance
    0    0.9069    0.1316
    """
    _check(effects, D_MEASURES, method)
    factor = FACTORS[method]
    out = effects.copy()
    out["estimate"] = effects["estimate"] * factor
    out["variance"] = effects["variance"] * factor**2
    out.attrs = _attrs(effects, "log_odds_ratio", effects.attrs.get("measure", "d"), method)
    return out


def log_odds_ratio_to_d(effects: pd.DataFrame, *, method: str = "logistic") -> pd.DataFrame:
    """Convert log odds ratios to standardised mean differences (d).

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` and ``variance`` of log odds ratios (e.g. from :func:`log_odds_ratio`).
    method : {"logistic", "cox"}, default "logistic"
        ``"logistic"``: d = sqrt(3) / pi log OR, variance times 3 / pi^2; ``"cox"``:
        d = log OR / 1.65, variance / 1.65^2.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` and ``variance`` on the d scale, other columns unchanged;
        ``attrs["measure"] = "cohens_d"`` and ``attrs["converted_from"]``.

    Notes
    -----
    Agrees with R ``escalc(measure="OR2DL")`` and ``"OR2DN"`` to 1e-12.

    Examples
    --------
    >>> lor = pd.DataFrame({"estimate": [0.9069], "variance": [0.1316]})
    >>> log_odds_ratio_to_d(lor).round(3)
       estimate  variance
    0       0.5      0.04
    """
    _check(effects, LOG_OR_MEASURES, method)
    factor = FACTORS[method]
    out = effects.copy()
    out["estimate"] = effects["estimate"] / factor
    out["variance"] = effects["variance"] / factor**2
    out.attrs = _attrs(effects, "cohens_d", effects.attrs.get("measure", "log_odds_ratio"), method)
    return out


def _attrs(effects: pd.DataFrame, measure: str, converted_from: str, conversion: str) -> dict:
    attrs = {"measure": measure, "converted_from": converted_from, "conversion": conversion}
    attrs.update({key: effects.attrs[key] for key in KEPT_ATTRS if key in effects.attrs})
    return attrs


def _group_sizes(effects: pd.DataFrame, n_treatment, n_control):
    """Group sizes from the arguments or the frame's ``n_treatment``/``n_control`` columns; None if neither."""
    if (n_treatment is None) != (n_control is None):
        raise ValueError("give both n_treatment and n_control, or neither")
    if n_treatment is None:
        if {"n_treatment", "n_control"} <= set(effects.columns):
            n_treatment, n_control = effects["n_treatment"], effects["n_control"]
        else:
            return None
    sizes = []
    for name, value in (("n_treatment", n_treatment), ("n_control", n_control)):
        array = np.broadcast_to(np.asarray(value, dtype=float), (len(effects),))
        if np.any(array[np.isfinite(array)] <= 0):
            raise ValueError(f"{name} must be positive")
        sizes.append(array)
    n1, n2 = sizes
    if np.any(n1 + n2 <= 2):
        raise ValueError("n_treatment + n_control must exceed 2")
    return n1, n2


def _h(effects, n_treatment, n_control) -> tuple[np.ndarray | float, str]:
    """``h`` of ``r = d / sqrt(d^2 + h)``: ``m (1/n1 + 1/n2)`` with ``m = n1 + n2 - 2`` when the
    group sizes are known (the exact point-biserial correlation), else 4 (equal groups)."""
    sizes = _group_sizes(effects, n_treatment, n_control)
    if sizes is None:
        return 4.0, "equal groups (h = 4)"
    n1, n2 = sizes
    m = n1 + n2 - 2
    return m / n1 + m / n2, "group sizes"


def _cohens_d(effects: pd.DataFrame, n_treatment, n_control) -> tuple[np.ndarray, np.ndarray]:
    """d and its variance; Hedges' g is turned back into d (``g / J``, variance ``/ J^2``)."""
    d = effects["estimate"].to_numpy(dtype=float)
    v = effects["variance"].to_numpy(dtype=float)
    if effects.attrs.get("measure") == "hedges_g":
        sizes = _group_sizes(effects, n_treatment, n_control)
        if sizes is None:
            raise ValueError(
                "converting Hedges' g needs the group sizes (n_treatment, n_control) to undo its "
                "small-sample correction"
            )
        j = correction_factor(sizes[0] + sizes[1] - 2)
        d, v = d / j, v / j**2
    return d, v


def d_to_correlation(effects: pd.DataFrame, *, n_treatment=None, n_control=None) -> pd.DataFrame:
    """Convert standardised mean differences to (point-biserial) correlations.

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` and ``variance`` of d or g (e.g. from :func:`rjtrial.effects.cohens_d`).
        Hedges' g is first turned back into d with the group sizes.
    n_treatment, n_control : array-like, optional
        Group sizes; default the frame's ``n_treatment`` and ``n_control`` columns (the
        frames of :mod:`rjtrial.effects` carry them). Without sizes the groups are taken as
        equal (``h = 4``, Borenstein et al.'s formula).

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (r) and ``variance``, other columns unchanged; ``attrs["measure"] =
        "correlation"``, ``attrs["converted_from"]``, ``attrs["conversion"]``.

    Notes
    -----
    ``r = d / sqrt(d^2 + h)`` with ``h = m (1/n1 + 1/n2)``, ``m = n1 + n2 - 2``: the
    point-biserial correlation of the sample, exactly (the large-sample ``h`` is
    ``(n1 + n2)^2 / (n1 n2)``, 4 for equal groups); ``variance = h^2 v_d / (d^2 + h)^3``
    (delta method). Applied to Cohen's d, agrees with R
    ``escalc(measure="RPB", m1i=, m2i=, sd1i=, sd2i=, n1i=, n2i=)`` to 1e-12
    (tests/validation/test_normand1999_conversions.py).

    References
    ----------
    Borenstein, M., Hedges, L. V., Higgins, J. P. T., & Rothstein, H. R. (2009). Introduction
    to Meta-Analysis, chapter 7. Wiley. doi:10.1002/9780470743386

    Examples
    --------
    >>> d = pd.DataFrame({"estimate": [0.5], "variance": [0.04]})
    >>> d_to_correlation(d).round(4)
       estimate  variance
    0    0.2425    0.0083
    """
    _check(effects, D_MEASURES)
    h, source = _h(effects, n_treatment, n_control)
    d, v = _cohens_d(effects, n_treatment, n_control)
    out = effects.copy()
    out["estimate"] = d / np.sqrt(d**2 + h)
    out["variance"] = h**2 * v / (d**2 + h) ** 3
    out.attrs = _attrs(effects, "correlation", effects.attrs.get("measure", "d"), f"point-biserial, {source}")
    return out


def correlation_to_d(effects: pd.DataFrame, *, n_treatment=None, n_control=None) -> pd.DataFrame:
    """Convert (point-biserial) correlations to standardised mean differences (d).

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` and ``variance`` of correlations.
    n_treatment, n_control : array-like, optional
        Group sizes, as in :func:`d_to_correlation`; without them the groups are taken as equal.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (d) and ``variance``, other columns unchanged; ``attrs["measure"] =
        "cohens_d"``, ``attrs["converted_from"]``, ``attrs["conversion"]``.

    Notes
    -----
    The inverse of :func:`d_to_correlation`: ``d = r sqrt(h) / sqrt(1 - r^2)``,
    ``variance = h v_r / (1 - r^2)^3``; with ``h = 4``, Borenstein et al.'s
    ``d = 2 r / sqrt(1 - r^2)``, ``v_d = 4 v_r / (1 - r^2)^3``.

    Examples
    --------
    >>> r = pd.DataFrame({"estimate": [0.2425], "variance": [0.0083]})
    >>> correlation_to_d(r).round(3)
       estimate  variance
    0       0.5      0.04
    """
    _check(effects, CORRELATION_MEASURES)
    h, source = _h(effects, n_treatment, n_control)
    r = effects["estimate"].to_numpy(dtype=float)
    if np.any(np.abs(r[np.isfinite(r)]) >= 1):
        raise ValueError("a correlation of -1 or 1 has no finite d")
    out = effects.copy()
    out["estimate"] = r * np.sqrt(h) / np.sqrt(1 - r**2)
    out["variance"] = h * effects["variance"].to_numpy(dtype=float) / (1 - r**2) ** 3
    out.attrs = _attrs(effects, "cohens_d", effects.attrs.get("measure", "correlation"), f"point-biserial, {source}")
    return out


def log_odds_ratio_to_correlation(
    effects: pd.DataFrame, *, method: str = "logistic", n_treatment=None, n_control=None
) -> pd.DataFrame:
    """Convert log odds ratios to correlations, through d.

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` and ``variance`` of log odds ratios.
    method : {"logistic", "cox"}, default "logistic"
        The log OR to d conversion (:func:`log_odds_ratio_to_d`).
    n_treatment, n_control : array-like, optional
        Group sizes (default the frame's columns), as in :func:`d_to_correlation`.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (r) and ``variance``; ``attrs["measure"] = "correlation"``.

    Notes
    -----
    :func:`log_odds_ratio_to_d` then :func:`d_to_correlation` (Borenstein et al. 2009,
    chapter 7).

    Examples
    --------
    >>> lor = pd.DataFrame({"estimate": [0.9069], "variance": [0.1316]})
    >>> log_odds_ratio_to_correlation(lor).round(4)
       estimate  variance
    0    0.2425    0.0083
    """
    d = log_odds_ratio_to_d(effects, method=method)
    out = d_to_correlation(d, n_treatment=n_treatment, n_control=n_control)
    out.attrs["converted_from"] = effects.attrs.get("measure", "log_odds_ratio")
    out.attrs["conversion"] = f"{method}, then {out.attrs['conversion']}"
    return out


def correlation_to_log_odds_ratio(
    effects: pd.DataFrame, *, method: str = "logistic", n_treatment=None, n_control=None
) -> pd.DataFrame:
    """Convert correlations to log odds ratios, through d.

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` and ``variance`` of correlations.
    method : {"logistic", "cox"}, default "logistic"
        The d to log OR conversion (:func:`d_to_log_odds_ratio`).
    n_treatment, n_control : array-like, optional
        Group sizes, as in :func:`correlation_to_d`.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (log OR) and ``variance``; ``attrs["measure"] = "log_odds_ratio"``.

    Notes
    -----
    :func:`correlation_to_d` then :func:`d_to_log_odds_ratio`.

    Examples
    --------
    >>> r = pd.DataFrame({"estimate": [0.2425], "variance": [0.0083]})
    >>> correlation_to_log_odds_ratio(r).round(2)
       estimate  variance
    0      0.91      0.13
    """
    d = correlation_to_d(effects, n_treatment=n_treatment, n_control=n_control)
    out = d_to_log_odds_ratio(d, method=method)
    out.attrs["converted_from"] = effects.attrs.get("measure", "correlation")
    out.attrs["conversion"] = f"{d.attrs['conversion']}, then {method}"
    return out


def _sample_size(effects: pd.DataFrame, n) -> np.ndarray:
    if n is None:
        if "n" in effects.columns:
            n = effects["n"]
        elif {"n_treatment", "n_control"} <= set(effects.columns):
            n = effects["n_treatment"].to_numpy(dtype=float) + effects["n_control"].to_numpy(dtype=float)
        else:
            raise ValueError(
                "Fisher's z needs the sample sizes: give n, or a frame with column n (or n_treatment and n_control)"
            )
    n = np.broadcast_to(np.asarray(n, dtype=float), (len(effects),))
    if np.any(n[np.isfinite(n)] <= 3):
        raise ValueError("Fisher's z needs sample sizes above 3")
    return n


def correlation_to_fisher_z(effects: pd.DataFrame, *, n=None) -> pd.DataFrame:
    """Convert correlations to Fisher's z.

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` (r) and ``variance`` of correlations.
    n : array-like, optional
        Sample sizes; default the frame's ``n`` column (from :func:`rjtrial.effects.correlation`)
        or ``n_treatment + n_control``.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (``atanh(r)``) and ``variance`` (``1 / (n - 3)``), other columns
        unchanged; ``attrs["measure"] = "fisher_z"``.

    Notes
    -----
    Applied to :func:`rjtrial.effects.correlation`, gives :func:`rjtrial.effects.fisher_z`
    of the same data exactly (R ``escalc(measure="ZCOR")``).

    Examples
    --------
    >>> r = pd.DataFrame({"estimate": [0.19], "variance": [0.0086], "n": [109]})
    >>> correlation_to_fisher_z(r).round(5)
       estimate  variance    n
    0   0.19234   0.00943  109
    """
    _check(effects, CORRELATION_MEASURES)
    size = _sample_size(effects, n)
    r = effects["estimate"].to_numpy(dtype=float)
    if np.any(np.abs(r[np.isfinite(r)]) >= 1):
        raise ValueError("a correlation of -1 or 1 has an infinite Fisher's z")
    out = effects.copy()
    out["estimate"] = np.arctanh(r)
    out["variance"] = np.where(np.isnan(r), np.nan, 1 / (size - 3))
    out.attrs = _attrs(effects, "fisher_z", effects.attrs.get("measure", "correlation"), "atanh")
    return out


def fisher_z_to_correlation(effects: pd.DataFrame, *, n=None) -> pd.DataFrame:
    """Convert Fisher's z values to correlations.

    Parameters
    ----------
    effects : pandas.DataFrame
        ``estimate`` (z) and ``variance`` of Fisher's z values.
    n : array-like, optional
        Sample sizes; default the frame's ``n`` column or ``n_treatment + n_control``.

    Returns
    -------
    pandas.DataFrame
        ``estimate`` (``tanh(z)``) and ``variance`` (``(1 - r^2)^2 / (n - 1)``, the
        large-sample variance of r), other columns unchanged; ``attrs["measure"] =
        "correlation"``.

    Notes
    -----
    The inverse of :func:`correlation_to_fisher_z`: applied to
    :func:`rjtrial.effects.fisher_z`, gives :func:`rjtrial.effects.correlation` of the same
    data exactly (R ``escalc(measure="COR")``). A pooled z and its interval are turned into
    correlations with ``numpy.tanh`` (not with this function).

    Examples
    --------
    >>> z = pd.DataFrame({"estimate": [0.19234], "variance": [0.00943], "n": [109]})
    >>> fisher_z_to_correlation(z).round(4)
       estimate  variance    n
    0      0.19    0.0086  109
    """
    _check(effects, FISHER_Z_MEASURES)
    size = _sample_size(effects, n)
    r = np.tanh(effects["estimate"].to_numpy(dtype=float))
    out = effects.copy()
    out["estimate"] = r
    out["variance"] = (1 - r**2) ** 2 / (size - 1)
    out.attrs = _attrs(effects, "correlation", effects.attrs.get("measure", "fisher_z"), "tanh")
    return out
