"""Costs and benefits: crimes prevented, valued at a cost per offence, against programme cost.

:func:`benefit_cost` returns a :class:`BenefitCostResult`: crimes prevented by offence type,
their value, and the benefit–cost ratio ("£8 saved per £1 spent", as the Sheffield evaluation
of the JRC trials put it) with a bootstrap confidence interval.

No cost-of-crime figures are bundled: published unit costs (e.g. the Home Office's
*Economic and social costs of crime*) depend on the edition, the year's prices and which
components are counted, and must be chosen, cited and entered by the analyst.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import check_alpha, check_frame, groups, numeric, require_columns
from rjtrial._result import Result, jsonable
from rjtrial._version import __version__
from rjtrial.errors import DataError

__all__ = ["BenefitCostResult", "benefit_cost"]

_CHUNK = 4_000_000  # bootstrap multiplicities held at once (replicates x participants)


@dataclass(frozen=True)
class BenefitCostResult(Result):
    """Benefit–cost analysis of a trial (from :func:`benefit_cost`).

    Fitted attributes
    -----------------
    ratio_ : float
        Benefit–cost ratio: value of the crimes prevented per unit of programme cost.
    ci_lower, ci_upper : float
        Percentile bootstrap interval of ``ratio_`` (NaN without bootstrap).
    benefit_, programme_cost_ : float
        Value of the crimes prevented in the treatment arm, and the programme's total cost.
    bootstrap_ratios_ : ndarray
        The ``n_bootstrap`` replicate ratios.
    seed : int or None
        The seed given as ``rng`` (None when a Generator was passed).
    versions : dict
        rjtrial and numpy versions that produced the result.
    alpha, n_bootstrap, levels, n_treatment, n_control
        Significance level, bootstrap replicates, arms (control first) and their sizes.
    """

    ratio_: float
    ci_lower: float
    ci_upper: float
    benefit_: float
    programme_cost_: float
    bootstrap_ratios_: np.ndarray = field(repr=False, compare=False)
    seed: int | None
    versions: dict[str, str]
    alpha: float
    n_bootstrap: int
    levels: list
    n_treatment: int
    n_control: int
    _summary: pd.DataFrame = field(repr=False, compare=False)
    _prevented: pd.DataFrame = field(repr=False, compare=False)

    def summary_frame(self) -> pd.DataFrame:
        """Rows (index ``quantity``) ``benefit_cost_ratio``, ``benefit``, ``programme_cost``,
        ``net_benefit``; columns ``estimate, std_error, ci_lower, ci_upper`` (bootstrap standard
        deviation and percentile interval; the programme cost is fixed). ``attrs``: ``alpha``,
        ``n_bootstrap``, ``ci_method`` (``"percentile"``), ``seed``."""
        return self._summary.copy()

    def prevented_frame(self) -> pd.DataFrame:
        """Per offence type: ``offence_type, mean_control, mean_treatment, prevented`` (crimes
        prevented in the treatment arm), ``ci_lower, ci_upper`` (bootstrap, of ``prevented``),
        ``cost_per_offence, benefit`` (``prevented * cost_per_offence``)."""
        return self._prevented.copy()

    def format(self, digits: int = 4) -> str:
        fmt = lambda v: f"{v:,.{digits}g}"  # noqa: E731
        return "\n".join(
            [
                f"benefit-cost ratio {self.ratio_:.3g} ({1 - self.alpha:.0%} CI {self.ci_lower:.3g} to "
                f"{self.ci_upper:.3g}; {self.n_bootstrap} bootstrap replicates within arm)",
                self._summary.to_string(float_format=fmt),
                self._prevented.set_index("offence_type").to_string(float_format=fmt),
            ]
        )

    def to_dict(self) -> dict[str, Any]:
        """The scalars (not the replicate ratios), ``summary`` (with its ``quantity``) and
        ``prevented`` (by offence type), JSON-ready."""
        out = {
            name: jsonable(getattr(self, name))
            for name in (
                "ratio_",
                "ci_lower",
                "ci_upper",
                "benefit_",
                "programme_cost_",
                "seed",
                "versions",
                "alpha",
                "n_bootstrap",
                "levels",
                "n_treatment",
                "n_control",
            )
        }
        out["summary"] = jsonable(self._summary.reset_index())
        out["prevented"] = jsonable(self._prevented)
        return out

    def __repr__(self) -> str:
        return f"<BenefitCostResult ratio={self.ratio_:.4g}, n_bootstrap={self.n_bootstrap}>"


def _count_columns(offence_counts) -> dict[str, str]:
    if isinstance(offence_counts, str):
        offence_counts = [offence_counts]
    if isinstance(offence_counts, Mapping):
        mapping = {str(k): str(v) for k, v in offence_counts.items()}
    elif isinstance(offence_counts, Sequence):
        mapping = {str(c): str(c) for c in offence_counts}
    else:
        raise ValueError("offence_counts must be a list of count columns or a mapping column -> offence type")
    if not mapping:
        raise ValueError("offence_counts names no column")
    return mapping


def _cost_table(costs) -> dict[str, float]:
    if isinstance(costs, pd.DataFrame):
        missing = [c for c in ("offence_type", "cost") if c not in costs.columns]
        if missing:
            raise ValueError(
                f"a costs table needs columns 'offence_type' and 'cost'; missing {missing}, found {list(costs.columns)}"
            )
        if costs["offence_type"].duplicated().any():
            dup = costs.loc[costs["offence_type"].duplicated(), "offence_type"].iloc[0]
            raise DataError(f"offence type {dup!r} appears twice", table="costs", column="offence_type")
        costs = dict(zip(costs["offence_type"], costs["cost"]))
    elif isinstance(costs, pd.Series):
        costs = costs.to_dict()
    if not isinstance(costs, Mapping):
        raise ValueError(
            "costs must be a mapping offence type -> cost per offence, or a DataFrame with "
            "columns 'offence_type' and 'cost'"
        )
    out = {}
    for key, value in costs.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise DataError(
                f"cost of {key!r} must be a finite number >= 0, got {value!r}", table="costs", column="cost"
            )
        out[str(key)] = float(value)
    return out


def _positive(name, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _bootstrap_means(counts: np.ndarray, n_bootstrap: int, rng: np.random.Generator) -> np.ndarray:
    """Means of ``counts`` (n × m) over ``n_bootstrap`` resamples of its rows: (B × m)."""
    n = counts.shape[0]
    out = np.empty((n_bootstrap, counts.shape[1]))
    step = max(1, _CHUNK // max(n, 1))
    for start in range(0, n_bootstrap, step):
        b = min(step, n_bootstrap - start)
        draws = rng.integers(0, n, size=(b, n))
        weights = np.bincount((draws + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        out[start : start + b] = weights @ counts / n
    return out


def benefit_cost(
    df: pd.DataFrame,
    *,
    offence_counts: Sequence[str] | Mapping[str, str],
    costs: Mapping[str, float] | pd.DataFrame,
    group: str,
    rng: int | np.random.Generator,
    programme_cost_per_participant: float | None = None,
    programme_cost_total: float | None = None,
    control=None,
    n_bootstrap: int = 2000,
    alpha: float = 0.05,
) -> BenefitCostResult:
    """Benefit–cost ratio of a programme: cost of crimes prevented per unit spent.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant with counts of reoffences by type over the same follow-up
        window for everyone.
    offence_counts : list of str or mapping
        The count columns; a list when each column's name is its offence type in ``costs``,
        or a mapping ``column -> offence type`` (several columns may share a type).
    costs : mapping or DataFrame
        Cost per offence by type: ``{"burglary": ..., ...}`` or a DataFrame with columns
        ``offence_type`` and ``cost``. Every type used must be there; costs are >= 0. No
        default is provided: cite the source of the figures you use.
    group : str
        Column of the two arms.
    rng : int or numpy.random.Generator
        Seed or generator for the bootstrap (required: results must be reproducible).
    programme_cost_per_participant, programme_cost_total : float
        Cost of the programme, per participant *assigned* to the treatment arm or in total;
        give exactly one. (With a cost per conference held, pass the total.)
    control : optional
        The control arm; by default the first level of ``group``.
    n_bootstrap : int
        Bootstrap replicates (0: no interval).
    alpha : float
        The interval covers ``1 - alpha``.

    Returns
    -------
    BenefitCostResult
        ``ratio_``, ``ci_lower``, ``ci_upper``, ``benefit_``, ``programme_cost_``,
        ``summary_frame()`` (benefit_cost_ratio, benefit, programme_cost, net_benefit with
        estimate, std_error, ci_lower, ci_upper) and ``prevented_frame()`` (by offence type).

    Notes
    -----
    For offence type j with mean counts ``m_Cj`` (control) and ``m_Tj`` (treatment) per
    participant, crimes prevented in the treatment arm are ``P_j = n_T (m_Cj − m_Tj)``
    (negative when the treatment arm offended more); the benefit is ``B = Σ_j P_j c_j`` for
    costs per offence ``c_j``, and the ratio ``B / K`` for programme cost ``K``
    (``K = n_T k`` for a cost ``k`` per participant). This is an intention-to-treat benefit:
    prevented crimes among everyone assigned, against the cost of everyone assigned.

    The interval is the percentile bootstrap: participants are resampled with replacement
    within each arm (arm sizes fixed, as randomised), the ratio is recomputed
    ``n_bootstrap`` times, and its ``alpha/2`` and ``1 − alpha/2`` quantiles (numpy's default,
    linear interpolation; R ``quantile(type = 7)``) are reported. The programme cost is taken
    as known.

    Examples
    --------
    The costs below are **illustrative numbers, not estimates of anything**:

    >>> import pandas as pd
    >>> df = pd.DataFrame({"arm": ["control"] * 4 + ["rj"] * 4,
    ...                    "violence": [2, 1, 0, 3, 1, 0, 1, 1],
    ...                    "burglary": [1, 2, 2, 1, 1, 1, 0, 1]})
    >>> illustrative = {"violence": 10_000.0, "burglary": 4_000.0}
    >>> res = benefit_cost(df, offence_counts=["violence", "burglary"], costs=illustrative,
    ...                    group="arm", programme_cost_per_participant=1_000.0, rng=1)
    >>> res.ratio_
    10.5
    >>> res.prevented_frame()[["offence_type", "prevented", "benefit"]]
      offence_type  prevented  benefit
    0     violence        3.0  30000.0
    1     burglary        3.0  12000.0
    """
    df = check_frame(df)
    alpha = check_alpha(alpha)
    mapping = _count_columns(offence_counts)
    cost = _cost_table(costs)
    require_columns(df, offence_counts=list(mapping), group=group)
    types = list(dict.fromkeys(mapping.values()))
    missing = [t for t in types if t not in cost]
    if missing:
        raise DataError(
            f"no cost for offence type(s) {missing!r}; the costs table has {sorted(cost)!r}",
            table="costs",
            column="offence_type",
        )
    if (programme_cost_per_participant is None) == (programme_cost_total is None):
        raise ValueError("give exactly one of programme_cost_per_participant and programme_cost_total")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, numbers.Integral) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a whole number >= 0, got {n_bootstrap!r}")
    seed = int(rng) if isinstance(rng, numbers.Integral) and not isinstance(rng, bool) else None
    if seed is None and not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be an int seed or a numpy.random.Generator, got {rng!r}")
    generator = np.random.default_rng(rng)

    levels, codes = groups(df, group, control=control, exactly_two=True)
    counts = np.zeros((len(df), len(types)))
    for column, offence_type in mapping.items():
        counts[:, types.index(offence_type)] += numeric(
            df, column, role="offence count", nonnegative=True, integer=True
        )
    n_t = int((codes == 1).sum())
    if programme_cost_total is None:
        programme = _positive("programme_cost_per_participant", programme_cost_per_participant) * n_t
    else:
        programme = _positive("programme_cost_total", programme_cost_total)
    unit_cost = np.array([cost[t] for t in types])

    mean_c, mean_t = counts[codes == 0].mean(axis=0), counts[codes == 1].mean(axis=0)
    prevented = n_t * (mean_c - mean_t)
    benefit = float(prevented @ unit_cost)
    ratio = benefit / programme

    q = [alpha / 2, 1 - alpha / 2]
    if n_bootstrap > 0:
        boot_c = _bootstrap_means(counts[codes == 0], n_bootstrap, generator)
        boot_t = _bootstrap_means(counts[codes == 1], n_bootstrap, generator)
        boot_prevented = n_t * (boot_c - boot_t)
        boot_benefit = boot_prevented @ unit_cost
        boot_ratio = boot_benefit / programme
        prevented_ci = np.quantile(boot_prevented, q, axis=0)
        benefit_ci, ratio_ci = np.quantile(boot_benefit, q), np.quantile(boot_ratio, q)
        benefit_sd, ratio_sd = (
            boot_benefit.std(ddof=1) if n_bootstrap > 1 else np.nan,
            (boot_ratio.std(ddof=1) if n_bootstrap > 1 else np.nan),
        )
    else:
        boot_ratio = np.empty(0)
        prevented_ci = np.full((2, len(types)), np.nan)
        benefit_ci = ratio_ci = np.array([np.nan, np.nan])
        benefit_sd = ratio_sd = np.nan

    summary = pd.DataFrame(
        {
            "estimate": [ratio, benefit, programme, benefit - programme],
            "std_error": [ratio_sd, benefit_sd, 0.0, benefit_sd],
            "ci_lower": [ratio_ci[0], benefit_ci[0], programme, benefit_ci[0] - programme],
            "ci_upper": [ratio_ci[1], benefit_ci[1], programme, benefit_ci[1] - programme],
        },
        index=pd.Index(["benefit_cost_ratio", "benefit", "programme_cost", "net_benefit"], name="quantity"),
    )
    summary.attrs.update(alpha=alpha, n_bootstrap=int(n_bootstrap), ci_method="percentile", seed=seed)
    prevented_table = pd.DataFrame(
        {
            "offence_type": types,
            "mean_control": mean_c,
            "mean_treatment": mean_t,
            "prevented": prevented,
            "ci_lower": prevented_ci[0],
            "ci_upper": prevented_ci[1],
            "cost_per_offence": unit_cost,
            "benefit": prevented * unit_cost,
        }
    )
    prevented_table.attrs.update(alpha=alpha, treatment=levels[1], control=levels[0])
    return BenefitCostResult(
        ratio_=ratio,
        ci_lower=float(ratio_ci[0]),
        ci_upper=float(ratio_ci[1]),
        benefit_=benefit,
        programme_cost_=programme,
        bootstrap_ratios_=boot_ratio,
        seed=seed,
        versions={"rjtrial": __version__, "numpy": np.__version__},
        alpha=alpha,
        n_bootstrap=int(n_bootstrap),
        levels=levels,
        n_treatment=n_t,
        n_control=int((codes == 0).sum()),
        _summary=summary,
        _prevented=prevented_table,
    )
