"""Restricted mean time to reoffence per arm and its difference between arms."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from rjtrial._checks import norm_isf, norm_sf
from rjtrial._result import Result, jsonable
from rjtrial.errors import DataError
from rjtrial.survival import _checks
from rjtrial.survival.kaplan_meier import kaplan_meier


@dataclass(frozen=True)
class RMSTResult(Result):
    """Result of :func:`rmst`.

    Attributes
    ----------
    tau : float
        Truncation time.
    table : pandas.DataFrame
        Per group: ``group, estimate, std_error, ci_lower, ci_upper, n, events``
        (``estimate`` is the area under the Kaplan–Meier curve from 0 to ``tau``).
    difference : pandas.DataFrame
        Per group other than the control: ``group, control, estimate`` (group minus
        control), ``std_error, ci_lower, ci_upper, statistic`` (z), ``p_value`` (two-sided).
    alpha : float
    n_omitted : int
        Rows left out for a missing value.
    """

    tau: float
    table: pd.DataFrame = field(compare=False, repr=False)
    difference: pd.DataFrame = field(compare=False, repr=False)
    alpha: float = 0.05
    n_omitted: int = 0

    def summary_frame(self) -> pd.DataFrame:
        """Tidy: one row per group (``term`` = the group, ``estimate`` its restricted mean)
        then one per difference (``term`` = ``"<group> - <control>"``), with ``std_error,
        ci_lower, ci_upper, statistic, p_value`` (NaN statistic/p for the group rows)."""
        groups = self.table.assign(term=self.table["group"].astype(str), statistic=np.nan, p_value=np.nan)
        diffs = self.difference.assign(
            term=self.difference["group"].astype(str) + " - " + self.difference["control"].astype(str)
        )
        columns = ["term", "estimate", "std_error", "ci_lower", "ci_upper", "statistic", "p_value"]
        out = pd.concat([groups[columns], diffs[columns]], ignore_index=True)
        out.attrs.update(alpha=self.alpha, tau=self.tau)
        return out

    def format(self, digits: int = 4) -> str:
        head = f"Restricted mean time free of the event up to tau = {self.tau:g}, {1 - self.alpha:.0%} intervals" + (
            f" ({self.n_omitted} rows omitted for missing values)" if self.n_omitted else ""
        )
        return head + "\n" + self.summary_frame().to_string(index=False, float_format=lambda v: f"{v:.{digits}g}")

    def to_dict(self) -> dict:
        return {
            "tau": self.tau,
            "alpha": self.alpha,
            "n_omitted": self.n_omitted,
            "groups": jsonable(self.table),
            "difference": jsonable(self.difference),
        }


def restricted_mean(time: np.ndarray, surv: np.ndarray, at_risk: np.ndarray, events: np.ndarray, tau: float):
    """Area under one Kaplan–Meier curve up to ``tau`` and its Greenwood-type SE.

    ``time`` etc. are one curve's rows (all distinct observed times, ascending). Port of
    the ``pfun`` step of R ``survival:::survmean``:
    ``var = sum_{t_i <= tau} A_i^2 d_i / (n_i (n_i - d_i))``, ``A_i`` the area under the
    curve from ``t_i`` to ``tau`` (terms with ``n_i = d_i`` are 0).
    """
    keep = time <= tau
    with np.errstate(divide="ignore", invalid="ignore"):
        hh = np.where(at_risk - events == 0, 0.0, events / (at_risk * (at_risk - events)))
    t = np.concatenate([time[keep], [tau]])
    s = np.concatenate([surv[keep], [surv[keep][-1]]]) if keep.any() else np.array([1.0])
    hh = np.concatenate([hh[keep], [0.0]])
    delta = np.diff(np.concatenate([[0.0], t]))
    rectangles = delta * np.concatenate([[1.0], s[:-1]])
    # area after each t_i: cumsum of the later rectangles
    area_after = np.cumsum(rectangles[1:][::-1])[::-1]
    variance = float(np.sum(area_after**2 * hh[:-1]))
    return float(rectangles.sum()), float(np.sqrt(variance))


def rmst(
    df: pd.DataFrame,
    *,
    tau: float,
    time: str,
    event: str,
    group: str,
    control=None,
    alpha: float = 0.05,
    na_action: str = "omit",
    event_coding: str = "0/1",
    reference=None,
) -> RMSTResult:
    """Restricted mean survival time (time free of reoffending up to ``tau``) per arm.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant.
    tau : float
        Truncation time, in the units of ``time`` (e.g. 365 days); at most the shortest of
        the groups' longest follow-up times (beyond that a curve is not estimated).
    time, event : str
        Columns of times and the event indicator (1/0).
    group : str
        Column of the arm; at least two levels.
    control : optional
        Level the others are compared with; default the first level (a categorical's
        first category, else the smallest).
    alpha : float
        1 - confidence level.
    na_action, event_coding : str
        As :func:`~rjtrial.survival.cox`.
    reference : optional
        Deprecated name of ``control`` (0.1); gives a ``DeprecationWarning``.

    Returns
    -------
    RMSTResult
        ``table`` per group (``group, estimate, std_error, ci_lower, ci_upper, n,
        events``) and ``difference`` (``group, control, estimate, std_error, ci_lower,
        ci_upper, statistic, p_value``); confidence level in ``attrs["alpha"]``.

    Notes
    -----
    ``estimate`` is the area under the Kaplan–Meier curve on ``[0, tau]``; its variance is
    the Greenwood-type ``sum_{t_i <= tau} A_i^2 d_i / (n_i (n_i - d_i))`` with ``A_i`` the
    area under the curve from ``t_i`` to ``tau``, as R ``survival:::survmean`` (``print`` /
    ``summary(survfit(...), rmean = tau)``, ``se(rmean)``) and survRM2. The difference
    between independent arms has standard error ``sqrt(se_1^2 + se_0^2)``, Wald interval
    and z test. Agrees with R to 1e-10 on Rossi and the generated trial.

    lifelines' ``restricted_mean_survival_time(..., return_variance=True)`` is not used:
    the "variance" it returns is that of ``min(T, tau)`` in the population (an integral of
    the survival curve), not the sampling variance of the estimate (lifelines issue #1682);
    it does not shrink with the sample size (tests/test_survival_rmst.py shows the gap).

    References
    ----------
    Royston, P., & Parmar, M. K. B. (2013). Restricted mean survival time: an alternative
    to the hazard ratio for the design and analysis of randomized trials with a
    time-to-event outcome. BMC Med Res Methodol, 13, 152. doi:10.1186/1471-2288-13-152

    Examples
    --------
    >>> from lifelines.datasets import load_rossi
    >>> res = rmst(load_rossi(), tau=52, time="week", event="arrest", group="fin")
    >>> round(float(res.difference.loc[0, "estimate"]), 3)
    2.042
    """
    alpha = _checks.alpha_value(alpha)
    if not isinstance(tau, (int, float, np.integer, np.floating)) or not np.isfinite(tau) or tau <= 0:
        raise ValueError(f"tau must be a positive number, got {tau!r}")
    if reference is not None:
        warnings.warn(
            "rmst(reference=) is now rmst(control=), as in every other verb; reference= will be removed",
            DeprecationWarning,
            stacklevel=2,
        )
        if control is not None:
            raise ValueError("give control= only (reference= is its deprecated name)")
        control = reference
    km = kaplan_meier(
        df, time=time, event=event, group=group, alpha=alpha, na_action=na_action, event_coding=event_coding
    )
    levels = km.groups
    _checks.need_two_groups(levels, group)
    if control is None:
        control = levels[0]
    elif control not in levels:
        raise ValueError(f"control must be one of {', '.join(map(repr, levels))}; got {control!r}")
    reference = control
    z = norm_isf(alpha / 2)
    rows = []
    for g in levels:
        c = km.table[km.table["group"] == g]
        last = float(c["time"].max())
        if tau > last:
            raise DataError(
                f"tau = {tau:g} is beyond the last follow-up time ({last:g}) of group {g!r}; "
                "choose tau no larger than the shortest group's follow-up",
                table=_checks.TABLE,
                column=time,
            )
        est, se = restricted_mean(
            c["time"].to_numpy(),
            c["survival"].to_numpy(),
            c["at_risk"].to_numpy(float),
            c["events"].to_numpy(float),
            tau,
        )
        rows.append((g, est, se, est - z * se, est + z * se, km.n[g], int(c["events"].sum())))
    table = pd.DataFrame(rows, columns=["group", "estimate", "std_error", "ci_lower", "ci_upper", "n", "events"])
    ref = table.set_index("group").loc[reference]
    diffs = []
    for _, r in table.iterrows():
        if r["group"] == reference:
            continue
        est = r["estimate"] - ref["estimate"]
        se = float(np.sqrt(r["std_error"] ** 2 + ref["std_error"] ** 2))
        stat = est / se
        diffs.append((r["group"], reference, est, se, est - z * se, est + z * se, stat, 2 * norm_sf(abs(stat))))
    difference = pd.DataFrame(
        diffs,
        columns=["group", "control", "estimate", "std_error", "ci_lower", "ci_upper", "statistic", "p_value"],
    )
    for frame in (table, difference):
        frame.attrs.update(alpha=alpha, tau=float(tau))
    return RMSTResult(tau=float(tau), table=table, difference=difference, alpha=alpha, n_omitted=km.n_omitted)
