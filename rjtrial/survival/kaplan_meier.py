"""Kaplan–Meier estimates by arm: :func:`kaplan_meier` and :class:`KaplanMeierResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import norm_isf
from rjtrial._result import Result, jsonable
from rjtrial.survival import _checks

_TOLERANCE = np.sqrt(np.finfo(float).eps)  # R quantile.survfit's default tolerance


CONF_TYPES = ("log-log", "log", "plain", "logit", "arcsin")


def _interval(surv: np.ndarray, se_cumhaz: np.ndarray, z: float, conf_type: str) -> tuple[np.ndarray, np.ndarray]:
    """Pointwise interval of S from the standard error of ``-log S``, as R ``survfit_confint``
    (survival 3.5-3, ``logse = TRUE``): NaN where R gives ``NA``/``NaN``."""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if conf_type == "plain":
            half = surv * se_cumhaz * z
            return np.maximum(surv - half, 0.0), np.minimum(surv + half, 1.0)
        if conf_type == "log":
            xx = np.where(surv == 0, np.nan, surv)
            return np.exp(np.log(xx) - z * se_cumhaz), np.minimum(np.exp(np.log(xx) + z * se_cumhaz), 1.0)
        if conf_type == "log-log":
            xx = np.where((surv == 0) | (surv == 1), np.nan, surv)
            se2 = z * se_cumhaz / np.log(xx)
            return np.exp(-np.exp(np.log(-np.log(xx)) - se2)), np.exp(-np.exp(np.log(-np.log(xx)) + se2))
        if conf_type == "logit":
            xx = np.where(surv == 0, np.nan, surv)
            se2 = z * se_cumhaz * (1 + xx / (1 - xx))
            logit = np.log(surv / (1 - surv))
            return 1 - 1 / (1 + np.exp(logit - se2)), 1 - 1 / (1 + np.exp(logit + se2))
        # arcsin
        xx = np.where(surv == 0, np.nan, surv)
        se2 = 0.5 * z * se_cumhaz * np.sqrt(xx / (1 - xx))
        angle = np.arcsin(np.sqrt(xx))
        return np.sin(np.maximum(0.0, angle - se2)) ** 2, np.sin(np.minimum(np.pi / 2, angle + se2)) ** 2


def _findq(x: np.ndarray, y: np.ndarray, p: float, tol: float = _TOLERANCE) -> float:
    """Port of R ``survival:::findq``: first x where y (= 1 - S) reaches p, midpoint rule on flats."""
    if np.all(np.isnan(y)) or np.nanmax(y) < p:
        return np.nan
    xmax = x[-1]
    # duplicated(y), NA treated as a value
    seen: set = set()
    first_seen = []
    for i, v in enumerate(y):
        k = "NA" if np.isnan(v) else v
        first_seen.append(k not in seen)
        seen.add(k)
    keep = np.array(first_seen)
    x, y = x[keep], y[keep]
    valid = ~np.isnan(y)
    positions = np.flatnonzero(valid)

    def approx_constant_right(shift: float) -> float:
        xs = y[valid] + shift
        if p < xs[0] or p > xs[-1]:
            return np.nan
        return positions[np.searchsorted(xs, p, side="left")]

    i1 = approx_constant_right(tol)
    i2 = approx_constant_right(-tol)
    if p == 0:
        return float(x[0])
    if not np.isnan(y[-1]) and abs(p - y[-1]) < tol and not np.isnan(i1):
        return float((x[int(i1)] + xmax) / 2)
    if np.isnan(i1) or np.isnan(i2):
        return np.nan
    return float((x[int(i1)] + x[int(i2)]) / 2)


@dataclass(frozen=True)
class KaplanMeierResult(Result):
    """Kaplan–Meier curves, one per group.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per group and distinct observed time (event or censoring), columns

        ``group``      the group label (``"all"`` when no group column was given);
        ``time``       the time;
        ``at_risk``    number at risk just before ``time``;
        ``events``     events at ``time``;
        ``censored``   censorings at ``time``;
        ``survival``   Kaplan–Meier estimate of S(time);
        ``std_error``  Greenwood standard error **of S** (``S * sqrt(sum d / (n (n - d)))``;
        NaN where S = 0);
        ``ci_lower``, ``ci_upper``  confidence interval of S of type ``conf_type`` (NaN
        where R gives NA).

        ``attrs``: ``alpha``, ``conf_type``, ``time``, ``event``, ``group``.
    groups : list
        Group labels in order (a categorical's order, else sorted).
    n : dict
        Number of rows per group.
    alpha : float
    conf_type : str
        ``"log-log"`` (rjtrial's default), ``"log"`` (R's default), ``"plain"``,
        ``"logit"`` or ``"arcsin"``.
    n_omitted : int
        Rows left out for a missing value.
    """

    table: pd.DataFrame = field(repr=False, compare=False)
    groups: list
    n: dict
    alpha: float
    columns: dict
    conf_type: str = "log-log"
    n_omitted: int = 0

    def summary_frame(self) -> pd.DataFrame:
        """The curves as a tidy table: :attr:`table` (a copy)."""
        return self.table.copy()

    def format(self, digits: int = 4) -> str:
        """Per group: n, events, median time with its interval."""
        medians = self.median().set_index("group")
        events = self.table.groupby("group", sort=False)["events"].sum()
        lines = [
            f"Kaplan-Meier estimate of {self.columns['time']} (event {self.columns['event']!r})"
            + (f" by {self.columns['group']}" if self.columns.get("group") else "")
            + f"; {self.conf_type} {1 - self.alpha:.0%} intervals"
            + (f"; {self.n_omitted} rows omitted for missing values" if self.n_omitted else ""),
        ]
        for g in self.groups:
            m = medians.loc[g]
            lines.append(
                f"  {g}: n = {self.n[g]}, events = {int(events.get(g, 0))}, median = {m['estimate']:.{digits}g} "
                f"({m['ci_lower']:.{digits}g} to {m['ci_upper']:.{digits}g})"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready: groups, sizes, medians and the curves."""
        return {
            "model": "kaplan_meier",
            "alpha": self.alpha,
            "conf_type": self.conf_type,
            "columns": self.columns,
            "groups": jsonable(self.groups),
            "n": jsonable(self.n),
            "n_omitted": self.n_omitted,
            "median": jsonable(self.median()),
            "curves": jsonable(self.table),
        }

    def _curve(self, group) -> pd.DataFrame:
        return self.table[self.table["group"] == group]

    def quantile(self, probability: float = 0.5) -> pd.DataFrame:
        """Survival-time quantile with its confidence interval, per group.

        The time at which the curve reaches ``1 - probability``; where the curve is flat at
        exactly that level the midpoint of the flat stretch is returned; the interval is the
        same rule applied to the interval's bounds (Brookmeyer–Crowley). NaN when not reached.

        Returns
        -------
        pandas.DataFrame
            Columns ``group, estimate, ci_lower, ci_upper``; ``attrs``: ``alpha``,
            ``probability``.

        Notes
        -----
        Port of R ``quantile.survfit`` (``survival:::findq``, tolerance ``sqrt(eps)``);
        equals R exactly on the Rossi data and the generated trial.
        """
        if not (isinstance(probability, (int, float)) and 0 <= probability <= 1):
            raise ValueError(f"probability must be between 0 and 1, got {probability!r}")
        rows = []
        for g in self.groups:
            c = self._curve(g)
            x = np.concatenate([[0.0], c["time"].to_numpy()])
            rows.append(
                (
                    g,
                    _findq(x, np.concatenate([[0.0], 1 - c["survival"].to_numpy()]), probability),
                    _findq(x, np.concatenate([[0.0], 1 - c["ci_lower"].to_numpy()]), probability),
                    _findq(x, np.concatenate([[0.0], 1 - c["ci_upper"].to_numpy()]), probability),
                )
            )
        out = pd.DataFrame(rows, columns=["group", "estimate", "ci_lower", "ci_upper"])
        out.attrs.update(alpha=self.alpha, probability=probability)
        return out

    def median(self) -> pd.DataFrame:
        """Median time to event with confidence interval, per group (R ``quantile(fit, 0.5)``)."""
        return self.quantile(0.5)

    def survival_at(self, times: float | Sequence[float] | np.ndarray) -> pd.DataFrame:
        """Survival at chosen times, per group (R ``summary(fit, times = ...)``).

        Returns
        -------
        pandas.DataFrame
            Columns ``group, time, at_risk, survival, std_error, ci_lower, ci_upper``: the
            estimate in force at ``time`` (the last step at or before it), the number at
            risk at ``time``, the Greenwood SE of S. Before the first observed time S = 1
            with interval (1, 1), as R. After a group's last observed time the values are
            NaN (R drops such rows).
        """
        times = np.atleast_1d(np.asarray(times, dtype=float))
        if np.isnan(times).any() or (times < 0).any():
            raise ValueError("times must be non-negative numbers")
        rows = []
        for g in self.groups:
            c = self._curve(g)
            t = c["time"].to_numpy()
            at = np.searchsorted(t, times, side="right") - 1  # last row with time <= requested
            n_after = np.concatenate([c["at_risk"].to_numpy(), [0]])[np.searchsorted(t, times, side="left")]
            for k, when in enumerate(times):
                if at[k] < 0:
                    values = (1.0, 0.0, 1.0, 1.0)
                elif when > t[-1]:
                    values = (np.nan,) * 4
                else:
                    r = c.iloc[at[k]]
                    values = (r["survival"], r["std_error"], r["ci_lower"], r["ci_upper"])
                rows.append((g, when, int(n_after[k]) if at[k] >= 0 else self.n[g], *values))
        out = pd.DataFrame(rows, columns=["group", "time", "at_risk", "survival", "std_error", "ci_lower", "ci_upper"])
        out.attrs.update(alpha=self.alpha, conf_type=self.conf_type)
        return out

    def plot(
        self,
        *,
        ax=None,
        ci: bool = True,
        censor_marks: bool = True,
        at_risk: bool = True,
        at_risk_times=None,
        control=None,
        xlabel: str | None = None,
    ):
        """Step plot of the curves with a numbers-at-risk table underneath; returns the Axes.

        See :func:`rjtrial.survival.plots.plot_kaplan_meier`.
        """
        from rjtrial.survival.plots import plot_kaplan_meier

        return plot_kaplan_meier(
            self,
            ax=ax,
            ci=ci,
            censor_marks=censor_marks,
            at_risk=at_risk,
            at_risk_times=at_risk_times,
            control=control,
            xlabel=xlabel,
        )

    def __repr__(self) -> str:
        return f"<KaplanMeierResult groups={self.groups!r} n={self.n!r}>"


def kaplan_meier(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    group: str | None = None,
    alpha: float = 0.05,
    conf_type: str = "log-log",
    na_action: str = "omit",
    event_coding: str = "0/1",
) -> KaplanMeierResult:
    """Kaplan–Meier estimate of time to reoffending, per arm.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant.
    time : str
        Column of times (event or censoring), non-negative numbers.
    event : str
        Column coded 1 (event, e.g. reoffence) / 0 (censored).
    group : str, optional
        Column of the arm (or any grouping); one curve per level. None: one curve, "all".
    alpha : float
        1 - confidence level of the pointwise intervals.
    conf_type : {"log-log", "log", "plain", "logit", "arcsin"}
        Scale of the pointwise interval (R ``conf.type``). rjtrial's default is
        ``"log-log"``, which stays inside (0, 1) and behaves well in the tails; R's default
        is ``"log"`` -- pass ``conf_type="log"`` to reproduce R's printed intervals.
    na_action : {"omit", "raise"}
        Rows with a missing time, event or group: left out and counted in ``n_omitted``
        (R's default), or an error naming the first.
    event_coding : {"0/1", "r"}
        As :func:`~rjtrial.survival.cox`.

    Returns
    -------
    KaplanMeierResult
        ``.table`` with columns ``group, time, at_risk, events, censored, survival,
        std_error, ci_lower, ci_upper``; verbs ``median()``, ``quantile(p)``,
        ``survival_at(times)``, ``plot()``.

    Notes
    -----
    The survival estimates and the event table (numbers at risk, events, censorings) come
    from lifelines ``KaplanMeierFitter``; the Greenwood standard error and the log-log
    interval are computed here from that table with R's conventions:
    ``var(-log S) = sum d / (n (n - d))``, ``std_error = S * sqrt(var)``, and the interval
    of R ``survfit_confint`` for the chosen ``conf_type`` (log-log:
    ``S ** exp(+-z sqrt(var) / log S)``, undefined (NaN) where S is 0 or 1). Agrees with R
    ``survfit(Surv(time, event) ~ group, conf.type = "log-log")`` (survival 3.5-3) to 1e-12
    in S, its standard error (R ``std.err`` is the SE of ``-log S``; ours is ``S`` times it)
    and the interval, on Rossi and the generated trial.

    References
    ----------
    Kaplan, E. L., & Meier, P. (1958). Nonparametric estimation from incomplete
    observations. JASA, 53(282), 457–481. doi:10.1080/01621459.1958.10501452

    Examples
    --------
    >>> from lifelines.datasets import load_rossi
    >>> km = kaplan_meier(load_rossi(), time="week", event="arrest", group="fin")
    >>> list(km.table.columns)
    ['group', 'time', 'at_risk', 'events', 'censored', 'survival', 'std_error', 'ci_lower', 'ci_upper']
    >>> round(float(km.survival_at([52]).loc[1, "survival"]), 4)
    0.7778
    """
    from lifelines import KaplanMeierFitter

    alpha = _checks.alpha_value(alpha)
    conf_type = _checks.choice("conf_type", conf_type, CONF_TYPES)
    df, n_omitted = _checks.prepare(df, {"time": time, "event": event, "group": group}, na_action=na_action)
    t = _checks.times(df, time)
    e = _checks.events(df, event, event_coding)
    if group is None:
        labels = pd.Series(["all"] * len(df), index=df.index)
        groups = ["all"]
    else:
        labels = _checks.labels(df, group, role="group")
        groups = _checks.group_levels(labels)
    z = norm_isf(alpha / 2)
    pieces = []
    n = {}
    label_values = labels.to_numpy()
    for g in groups:
        mask = label_values == g
        n[g] = int(mask.sum())
        kmf = KaplanMeierFitter().fit(t[mask], e[mask])
        table = kmf.event_table
        table = table[table["removed"] > 0]  # lifelines adds a time-0 row
        s = kmf.survival_function_.iloc[:, 0].reindex(table.index).to_numpy()
        at_risk = table["at_risk"].to_numpy(dtype=float)
        d = table["observed"].to_numpy(dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            increment = np.where(at_risk > d, d / (at_risk * (at_risk - d)), np.where(d > 0, np.inf, 0.0))
        var_cumhaz = np.cumsum(increment)
        se_cumhaz = np.sqrt(var_cumhaz)
        lower, upper = _interval(s, se_cumhaz, z, conf_type)
        with np.errstate(invalid="ignore"):
            se_surv = np.where(np.isinf(se_cumhaz), np.nan, s * se_cumhaz)
        pieces.append(
            pd.DataFrame(
                {
                    "group": g,
                    "time": table.index.to_numpy(dtype=float),
                    "at_risk": at_risk.astype(np.int64),
                    "events": d.astype(np.int64),
                    "censored": table["censored"].to_numpy(dtype=np.int64),
                    "survival": s,
                    "std_error": se_surv,
                    "ci_lower": lower,
                    "ci_upper": upper,
                }
            )
        )
    out = pd.concat(pieces, ignore_index=True)
    out.attrs.update(alpha=alpha, conf_type=conf_type, time=time, event=event, group=group)
    return KaplanMeierResult(
        out, groups, n, alpha, {"time": time, "event": event, "group": group}, conf_type=conf_type, n_omitted=n_omitted
    )
