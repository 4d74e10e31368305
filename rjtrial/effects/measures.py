"""One entry point for every measure, as R ``escalc(measure=...)``: :func:`effect_size`.

:data:`MEASURES` maps each measure's full name to the function that computes it, the R
``escalc`` code it reproduces and the inputs it takes; :func:`effect_size` looks the measure up
and calls the function with the rest of the arguments.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

from rjtrial.effects import binary, change, continuous, correlations, means, proportions, rates, time_to_event

__all__ = ["MEASURES", "Measure", "effect_size"]

TWO_BY_TWO = ("events_treatment", "n_treatment", "events_control", "n_control")
MEANS = ("mean_treatment", "sd_treatment", "n_treatment", "mean_control", "sd_control", "n_control")
RATES = ("events_treatment", "person_time_treatment", "events_control", "person_time_control")


@dataclass(frozen=True)
class Measure:
    """One effect-size measure: its function, R ``escalc`` code (None where escalc has none),
    the inputs it needs and fixed options (the standardiser of a standardised mean change)."""

    function: Callable[..., pd.DataFrame]
    escalc: str | None
    inputs: tuple[str, ...]
    options: dict = field(default_factory=dict)


#: Every measure by its full name (``attrs["measure"]`` of the frame it produces).
MEASURES: dict[str, Measure] = {
    "log_odds_ratio": Measure(binary.log_odds_ratio, "OR", TWO_BY_TWO),
    "log_risk_ratio": Measure(binary.log_risk_ratio, "RR", TWO_BY_TWO),
    "risk_difference": Measure(binary.risk_difference, "RD", TWO_BY_TWO),
    "peto_log_odds_ratio": Measure(binary.peto_log_odds_ratio, "PETO", TWO_BY_TWO),
    "arcsine_risk_difference": Measure(binary.arcsine_risk_difference, "AS", TWO_BY_TWO),
    "mean_difference": Measure(means.mean_difference, "MD", MEANS),
    "hedges_g": Measure(continuous.hedges_g, "SMD", MEANS),
    "cohens_d": Measure(continuous.cohens_d, None, MEANS),
    "log_ratio_of_means": Measure(means.log_ratio_of_means, "ROM", MEANS),
    "standardised_mean_change_change_score": Measure(
        change.standardised_mean_change,
        "SMCC",
        ("mean_before", "mean_after", "n", "sd_before", "sd_after", "correlation"),
        {"standardiser": "change_score"},
    ),
    "standardised_mean_change_raw_score": Measure(
        change.standardised_mean_change,
        "SMCR",
        ("mean_before", "mean_after", "n", "sd_before", "correlation"),
        {"standardiser": "raw_score"},
    ),
    "correlation": Measure(correlations.correlation, "COR", ("correlation", "n")),
    "fisher_z": Measure(correlations.fisher_z, "ZCOR", ("correlation", "n")),
    "proportion": Measure(proportions.proportion, "PR", ("events", "n")),
    "log_proportion": Measure(proportions.log_proportion, "PLN", ("events", "n")),
    "logit_proportion": Measure(proportions.logit_proportion, "PLO", ("events", "n")),
    "arcsine_proportion": Measure(proportions.arcsine_proportion, "PAS", ("events", "n")),
    "freeman_tukey_proportion": Measure(proportions.freeman_tukey_proportion, "PFT", ("events", "n")),
    "incidence_rate": Measure(rates.incidence_rate, "IR", ("events", "person_time")),
    "log_incidence_rate": Measure(rates.log_incidence_rate, "IRLN", ("events", "person_time")),
    "log_incidence_rate_ratio": Measure(rates.log_incidence_rate_ratio, "IRR", RATES),
    "incidence_rate_difference": Measure(rates.incidence_rate_difference, "IRD", RATES),
    "log_hazard_ratio": Measure(time_to_event.log_hazard_ratio, None, ("hazard_ratio", "ci_lower", "ci_upper")),
}

_BY_CODE = {measure.escalc: name for name, measure in MEASURES.items() if measure.escalc}


def effect_size(data: pd.DataFrame | None = None, *, measure: str, **inputs) -> pd.DataFrame:
    """Effect sizes of any measure by name: R ``escalc(measure=...)`` with full names.

    Parameters
    ----------
    data : pandas.DataFrame, optional
        If given, the inputs may be column names of ``data``.
    measure : str
        A key of :data:`MEASURES`: ``"log_odds_ratio"``, ``"log_risk_ratio"``,
        ``"risk_difference"``, ``"peto_log_odds_ratio"``, ``"arcsine_risk_difference"``,
        ``"mean_difference"``, ``"hedges_g"``, ``"cohens_d"``, ``"log_ratio_of_means"``,
        ``"standardised_mean_change_change_score"``, ``"standardised_mean_change_raw_score"``,
        ``"correlation"``, ``"fisher_z"``, ``"proportion"``, ``"log_proportion"``,
        ``"logit_proportion"``, ``"arcsine_proportion"``, ``"freeman_tukey_proportion"``,
        ``"incidence_rate"``, ``"log_incidence_rate"``, ``"log_incidence_rate_ratio"``,
        ``"incidence_rate_difference"``, ``"log_hazard_ratio"``.
    **inputs
        The measure's inputs and options, named as its function names them
        (``events_treatment=...``, ``variance_type="UB"``, ``study=``, ``na_action=``...).

    Returns
    -------
    pandas.DataFrame
        The frame the measure's function returns: ``estimate``, ``variance``, the inputs,
        ``attrs["measure"]``.

    Raises
    ------
    ValueError
        An unknown measure (an R ``escalc`` code names the measure to use instead), or inputs
        the measure's function does not take.

    Notes
    -----
    Every measure agrees with R ``metafor::escalc`` (the code in :data:`MEASURES`) to 1e-12
    (tests/validation/).

    Examples
    --------
    >>> es = effect_size(measure="log_ratio_of_means", mean_treatment=[3.1], sd_treatment=[2.5],
    ...                  n_treatment=[60], mean_control=[4.0], sd_control=[2.9], n_control=[58])
    >>> print(es.attrs["measure"], round(es.loc[0, "estimate"], 4))
    log_ratio_of_means -0.2549
    """
    entry = MEASURES.get(measure)
    if entry is None:
        hint = f" (R escalc's {measure!r} is measure={_BY_CODE[measure]!r})" if measure in _BY_CODE else ""
        raise ValueError(f"measure={measure!r}{hint}: choose one of {', '.join(map(repr, MEASURES))}")
    clash = sorted(set(entry.options) & set(inputs))
    if clash:
        raise ValueError(f"measure={measure!r} fixes {', '.join(clash)}; leave it out")
    try:
        inspect.signature(entry.function).bind(data, **inputs, **entry.options)
    except TypeError as exc:
        raise ValueError(f"measure={measure!r} ({entry.function.__name__}): {exc}") from None
    return entry.function(data, **inputs, **entry.options)
