"""The typed sections of a scenario and the constants of its format (no validation here).

:mod:`rjtrial.simulate._validate` builds these from the TOML tables and
:mod:`rjtrial.simulate.scenario` assembles them into a :class:`~rjtrial.simulate.scenario.Scenario`;
both import this module, so neither imports the other.
"""

from __future__ import annotations

import datetime as _dt
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from rjtrial.errors import RjtrialError

#: Sections whose keys are parameters of the data-generating process (need provenance).
PARAMETER_SECTIONS = (
    "referrals",
    "eligibility",
    "treatment",
    "offenders",
    "index_offence",
    "reoffending",
    "custody",
    "conviction",
    "censoring",
    "extraction",
    "analysis",
    "victims",
    "costs",
)
_STRUCTURAL = ("scenario", "protocol", "strata")
#: Parameters that are choices of format rather than claims about the world.
_NO_PROVENANCE = {"costs.currency", "extraction.include_unconvicted"}
STRATUM_SOURCES = ("site", "offence_type", "sex", "age", "shares")
DISTRIBUTIONS = {
    "fixed": ("value",),
    "exponential": ("mean",),
    "gamma": ("mean", "shape"),
    "lognormal": ("median", "sigma"),
    "uniform": ("low", "high"),
}
SEXES = ("female", "male")
DAYS_PER_MONTH = 365.25 / 12


class ScenarioError(RjtrialError, ValueError):
    """A scenario is invalid; ``problems`` lists every problem, each naming its key."""

    def __init__(self, problems: list[str], source: str | None = None):
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        if len(self.problems) == 1:
            message = f"{where}invalid scenario: {self.problems[0]}"
        else:
            message = f"{where}invalid scenario ({len(self.problems)} problems): " + "; ".join(self.problems)
        super().__init__(message)


# ----------------------------------------------------------------------------- distributions
@dataclass(frozen=True)
class Distribution:
    """A distribution of non-negative durations (days).

    Examples
    --------
    >>> d = Distribution("gamma", {"mean": 60.0, "shape": 2.0})
    >>> d.mean, d.sample(1, 3).shape
    (60.0, (3,))
    """

    distribution: str
    parameters: Mapping[str, float]

    @property
    def mean(self) -> float:
        p = self.parameters
        if self.distribution == "fixed":
            return float(p["value"])
        if self.distribution in ("exponential", "gamma"):
            return float(p["mean"])
        if self.distribution == "lognormal":
            return float(p["median"] * math.exp(p["sigma"] ** 2 / 2))
        return float((p["low"] + p["high"]) / 2)

    def sample(self, rng, size: int | tuple[int, ...]) -> np.ndarray:
        """``size`` draws (float days) from ``rng`` (seed or Generator); ``size`` may be a shape."""
        gen = rng if hasattr(rng, "gamma") else np.random.default_rng(rng)
        p = self.parameters
        if self.distribution == "fixed":
            return np.full(size, float(p["value"]))
        if self.distribution == "exponential":
            return gen.exponential(p["mean"], size) if p["mean"] > 0 else np.zeros(size)
        if self.distribution == "gamma":
            return gen.gamma(p["shape"], p["mean"] / p["shape"], size)
        if self.distribution == "lognormal":
            return p["median"] * np.exp(p["sigma"] * gen.standard_normal(size))
        return gen.uniform(p["low"], p["high"], size)

    def to_dict(self) -> dict[str, Any]:
        return {"distribution": self.distribution, **{k: float(v) for k, v in self.parameters.items()}}


# ----------------------------------------------------------------------------- sections
@dataclass(frozen=True)
class StratumSource:
    """How a protocol stratum is derived from a referral."""

    source: str
    breaks: tuple[float, ...] = ()
    map: Mapping[str, str] = field(default_factory=dict)
    shares: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Referrals:
    randomised: int
    rate_per_month: float
    sites: Mapping[str, float]
    offence_mix: Mapping[str, float]
    start: _dt.date | None = None
    #: site -> months after the first referral when it starts referring (a protocol amendment adds it)
    joins: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Treatment:
    conference_held: float
    days_to_conference: Distribution


@dataclass(frozen=True)
class Offenders:
    age_mean: float
    age_sd: float
    age_min: float
    age_max: float
    male: float


@dataclass(frozen=True)
class IndexOffence:
    days_before_assignment: Distribution
    convicted: Mapping[str, float]  # by arm
    sentence_days_after_assignment: Distribution
    custody: float


@dataclass(frozen=True)
class Reoffending:
    annual_rate: float
    reference_age: float
    log_rate_per_year_of_age: float
    log_rate_male: float
    log_rate_by_offence: Mapping[str, float]
    log_rate_by_site: Mapping[str, float]
    frailty_variance: float
    hazard_ratio_treated: float
    offence_mix: Mapping[str, float]


@dataclass(frozen=True)
class Custody:
    probability: Mapping[str, float]  # by offence type
    length_days: Distribution


@dataclass(frozen=True)
class Conviction:
    never_convicted: float
    lag_days: Distribution


@dataclass(frozen=True)
class Censoring:
    annual_rate: float


@dataclass(frozen=True)
class Extraction:
    date: _dt.date
    days_after_last_assignment: int | None = None
    include_unconvicted: bool = False


@dataclass(frozen=True)
class Analysis:
    window_days: int = 730
    conviction_lag_days: int = 183
    prior_window_days: int = 730


@dataclass(frozen=True)
class Victims:
    per_offender: float
    satisfied_conference: float
    satisfied_otherwise: float
    recommend_conference: float
    recommend_otherwise: float
    ies_r_baseline_mean: float
    ies_r_baseline_sd: float
    ies_r_followup_intercept: float
    ies_r_followup_slope: float
    ies_r_residual_sd: float
    ies_r_threshold: float
    ies_r_risk_ratio_conference: float


@dataclass(frozen=True)
class Costs:
    currency: str
    conference_held: float
    assigned_not_held: float
