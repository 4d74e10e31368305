"""What a trial with a given number of events can detect: Schoenfeld's approximation."""

from __future__ import annotations

import math

from scipy import special


def minimum_detectable_hazard_ratio(events: float, *, allocation: float = 0.5, alpha: float = 0.05,
                                    power: float = 0.8) -> float:
    """The hazard ratio (below 1) that a two-sided log-rank test on ``events`` events detects with
    ``power``, by Schoenfeld's approximation.

    Parameters
    ----------
    events : float
        Events observed (or expected), ``D > 0``.
    allocation : float
        Share of participants in one arm, ``p`` (0.5 for 1:1; 2/3 for 2:1).
    alpha : float
        Two-sided significance level.
    power : float
        Power, e.g. 0.8.

    Returns
    -------
    float
        ``exp(-(z_{1 - alpha/2} + z_{power}) / sqrt(D p (1 - p)))``; its reciprocal is the
        detectable hazard ratio above 1.

    Notes
    -----
    Inverts Schoenfeld's ``D = (z_{1-alpha/2} + z_power)^2 / (p (1 - p) log(HR)^2)``; the trial
    report uses it to say, in words, which effects a finished trial could have detected.

    References
    ----------
    Schoenfeld, D. A. (1983). Sample-size formula for the proportional-hazards regression
    model. *Biometrics*, 39(2), 499-503. https://doi.org/10.2307/2531021

    Examples
    --------
    >>> round(minimum_detectable_hazard_ratio(247), 3)   # 247 events, 1:1, 5% two-sided, 80% power
    0.7
    """
    events = float(events)
    if not (events > 0 and math.isfinite(events)):
        raise ValueError(f"events must be a positive number, got {events!r}")
    for name, value in (("allocation", allocation), ("alpha", alpha), ("power", power)):
        if not (isinstance(value, (int, float)) and 0 < value < 1):
            raise ValueError(f"{name} must lie strictly between 0 and 1, got {value!r}")
    z = special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power)
    return float(math.exp(-z / math.sqrt(events * allocation * (1.0 - allocation))))
