"""Events, power and detectable effects of a time-to-event trial: Schoenfeld's approximation.

:func:`schoenfeld_power`, :func:`schoenfeld_events` and :func:`schoenfeld_sample_size` plan a
trial; :func:`minimum_detectable_hazard_ratio` says what a finished trial could have detected.
The power engine (:mod:`rjtrial.simulate.power`) prints them beside its simulated power.
"""

from __future__ import annotations

import math

from scipy import special


def minimum_detectable_hazard_ratio(
    events: float, *, allocation: float = 0.5, alpha: float = 0.05, power: float = 0.8
) -> float:
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


def _check_alpha(alpha: float, name: str = "alpha") -> float:
    alpha = float(alpha)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {alpha!r}")
    return alpha


def schoenfeld_power(hazard_ratio: float, events: float, *, allocation: float = 0.5, alpha: float = 0.05) -> float:
    """Power of the two-sided log-rank (or Cox) test by Schoenfeld's approximation.

    Parameters
    ----------
    hazard_ratio : float
        The hazard ratio to detect (> 0).
    events : float
        Expected number of events in the trial (>= 0).
    allocation : float
        Share of participants in one arm (0.5 for 1:1; 2/3 for 1:2).
    alpha : float
        Two-sided significance level.

    Returns
    -------
    float
        ``Phi(|log HR| sqrt(D p (1 - p)) - z_{1 - alpha/2})``, the usual one-tail form (the
        other tail adds at most ``alpha / 2``); ``alpha / 2`` when the hazard ratio is 1.

    Notes
    -----
    Schoenfeld (1983): the log-rank statistic is approximately normal with mean
    ``log(HR) sqrt(D p (1 - p))`` and variance 1, for D events and allocation share p.
    It assumes proportional hazards and ignores how the arms' risk sets drift apart
    over follow-up; :func:`rjtrial.simulate.power` shows where that misleads.

    References
    ----------
    Schoenfeld, D. A. (1983). Sample-size formula for the proportional-hazards regression
    model. *Biometrics*, 39(2), 499-503. https://doi.org/10.2307/2531021

    Examples
    --------
    >>> round(schoenfeld_power(0.7, 247), 3)
    0.8
    """
    hazard_ratio, events, allocation = float(hazard_ratio), float(events), float(allocation)
    if not hazard_ratio > 0 or not math.isfinite(hazard_ratio):
        raise ValueError(f"hazard_ratio must be positive, got {hazard_ratio!r}")
    if not events >= 0:
        raise ValueError(f"events must be non-negative, got {events!r}")
    _check_alpha(allocation, "allocation")
    alpha = _check_alpha(alpha)
    shift = abs(math.log(hazard_ratio)) * math.sqrt(events * allocation * (1.0 - allocation))
    return float(special.ndtr(shift - special.ndtri(1.0 - alpha / 2.0)))


def schoenfeld_events(hazard_ratio: float, power: float, *, allocation: float = 0.5, alpha: float = 0.05) -> float:
    """Events needed for ``power`` by Schoenfeld's formula (not rounded).

    ``D = (z_{1 - alpha/2} + z_{power})^2 / (p (1 - p) log(HR)^2)``; round up to plan a trial.

    Examples
    --------
    >>> math.ceil(schoenfeld_events(0.7, 0.8))    # HR 0.7, 80% power, 5% two-sided, 1:1
    247
    """
    hazard_ratio = float(hazard_ratio)
    if not hazard_ratio > 0 or hazard_ratio == 1.0 or not math.isfinite(hazard_ratio):
        raise ValueError(f"hazard_ratio must be positive and not 1, got {hazard_ratio!r}")
    power = _check_alpha(power, "power")
    allocation = _check_alpha(allocation, "allocation")
    alpha = _check_alpha(alpha)
    z = special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power)
    return float(z * z / (allocation * (1.0 - allocation) * math.log(hazard_ratio) ** 2))


def schoenfeld_sample_size(
    hazard_ratio: float, power: float, events_per_participant: float, *, allocation: float = 0.5, alpha: float = 0.05
) -> int:
    """Participants needed for ``power`` by Schoenfeld's formula: the events needed
    (:func:`schoenfeld_events`) over the events expected per participant, rounded up.

    Examples
    --------
    >>> schoenfeld_sample_size(0.7, 0.8, 0.5)   # 247 events at half an event per participant
    494
    """
    per = float(events_per_participant)
    if not per > 0 or not math.isfinite(per):
        raise ValueError(f"events_per_participant must be positive, got {events_per_participant!r}")
    return int(math.ceil(schoenfeld_events(hazard_ratio, power, allocation=allocation, alpha=alpha) / per - 1e-9))
