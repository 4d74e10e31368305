"""Conversions between a standardised mean difference and a log odds ratio."""

from __future__ import annotations

import math

import pandas as pd

#: Scale factors: log OR = factor * d.
FACTORS = {"logistic": math.pi / math.sqrt(3), "cox": 1.65}
D_MEASURES = ("hedges_g", "cohens_d")
LOG_OR_MEASURES = ("log_odds_ratio",)


def _check(effects, allowed: tuple[str, ...], method: str) -> None:
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
    out.attrs = {"measure": "log_odds_ratio", "converted_from": effects.attrs.get("measure", "d"),
                 "conversion": method}
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
    out.attrs = {"measure": "cohens_d", "converted_from": effects.attrs.get("measure", "log_odds_ratio"),
                 "conversion": method}
    return out
