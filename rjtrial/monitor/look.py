"""One interim analysis of a group-sequential trial: :func:`look` and its result, :class:`InterimLook`.

At a look the committee sees: how far the trial has come (the information fraction, events
so far over the design's maximum), the log-rank statistic, the boundary the design allows at
that fraction (the Lan–DeMets spending recomputed at the fraction actually reached, not the
planned one), what to do, how likely the trial is to succeed if it goes on (conditional
power, under the design's effect and under the effect seen so far), and a repeated
confidence interval (valid whenever the trial stops, whatever the looks).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rjtrial._result import Result, jsonable
from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.monitor import _boundaries
from rjtrial.monitor.design import SequentialDesign, increments
from rjtrial.monitor.spending import spending_function

__all__ = ["DECISIONS", "InterimLook", "boundaries_at", "look"]

#: What a look can conclude.
DECISIONS = {
    "efficacy": "stop: the efficacy boundary is crossed (the conference arm reoffends less)",
    "harm": "stop: the harm boundary is crossed (the conference arm reoffends more)",
    "futility": "the futility boundary is crossed",
    "continue": "continue to the next look",
    "no_effect_shown": "final analysis: no effect shown at the design's level",
}


@dataclass(frozen=True)
class InterimLook(Result):
    """An interim (or the final) analysis of a group-sequential design (from :func:`look`).

    Attributes
    ----------
    look, looks : int
        This look's number and the design's number of looks.
    events : int
        Events (first reoffences) observed so far, both arms.
    previous_events : tuple of int
        Events at the earlier looks.
    information_fraction : float
        ``events / max_events`` of the design (may exceed 1 when the trial over-runs).
    final : bool
        Whether this is the final analysis (it then spends all the alpha left).
    statistic : float
        The log-rank ``z``, ``(O - E) / sqrt(V)`` of the conference arm: its sign is the sign of
        the log hazard ratio (negative: the conference arm reoffends less).
    hazard_ratio : float
        ``exp(statistic / sqrt(p (1 - p) events))`` (rpact's estimate from the log-rank statistic).
    critical_value : float
        The efficacy bound at this look, on the design's oriented ``Z`` scale.
    efficacy_hazard_ratio, harm_hazard_ratio, futility_hazard_ratio : float
        The bounds as hazard ratios (NaN where there is none).
    futility_bound : float
        The futility bound at this look (NaN without futility, or at the final look).
    alpha_spent : float
        Cumulative alpha spent by this look.
    decision : str
        One of ``DECISIONS``: ``efficacy``, ``harm``, ``futility``, ``continue``,
        ``no_effect_shown``.
    conditional_power_design, conditional_power_trend : float
        Probability of crossing an efficacy bound at a later look given the statistic now,
        under the design's hazard ratio and under the one estimated now (NaN at the final look).
    ci_lower, ci_upper : float
        Repeated confidence interval of the hazard ratio at this look:
        ``exp((statistic -/+ critical_value) / sqrt(p (1 - p) events))``.
    boundaries : DataFrame
        Every look of the design as it now stands: earlier looks and this one at their actual
        information, later ones at their planned information (:meth:`boundaries_frame`).
    method : str
        Where the statistic came from (``"log-rank"`` from a follow-up table, ``"given"``).
    n : int or None
        Participants in the follow-up table (None when the statistic was given).
    design_fingerprint : str
        :attr:`SequentialDesign.fingerprint` of the design used.
    notes : tuple of str
        What the look had to say (the trial over-ran the maximum, looks skipped).
    """

    look: int
    looks: int
    events: int
    previous_events: tuple
    information_fraction: float
    final: bool
    statistic: float
    hazard_ratio: float
    critical_value: float
    efficacy_hazard_ratio: float
    harm_hazard_ratio: float
    futility_bound: float
    futility_hazard_ratio: float
    alpha_spent: float
    decision: str
    conditional_power_design: float
    conditional_power_trend: float
    ci_lower: float
    ci_upper: float
    boundaries: pd.DataFrame
    method: str
    n: int | None
    design_fingerprint: str
    notes: tuple = ()

    @property
    def stop(self) -> bool:
        """Whether the design says to stop here (efficacy, harm, a binding futility bound, or the end)."""
        return self.decision != "continue" and not (self.decision == "futility" and not self._binding)

    @property
    def _binding(self) -> bool:
        return bool(self.boundaries.attrs.get("binding"))

    def summary_frame(self) -> pd.DataFrame:
        """One row: this look's estimate, boundary and decision.

        Returns
        -------
        pandas.DataFrame
            ``term`` (``"look k of K"``), ``estimate`` (log hazard ratio), ``std_error``
            (``1 / sqrt(p (1 - p) events)``), ``hazard_ratio``, ``ci_lower``, ``ci_upper``
            (repeated confidence interval of the hazard ratio), ``statistic`` (log-rank ``z``),
            ``events``, ``information_fraction``, ``critical_value``, ``efficacy_hazard_ratio``,
            ``futility_bound``, ``futility_hazard_ratio``, ``alpha_spent``, ``decision``,
            ``conditional_power_design``, ``conditional_power_trend``. ``attrs``:
            ``ci_scale`` (``"hazard_ratio"``), ``ci`` (``"repeated"``), ``final``, ``notes``.
        """
        frame = pd.DataFrame(
            [
                {
                    "term": f"look {self.look} of {self.looks}",
                    "estimate": math.log(self.hazard_ratio),
                    "std_error": self._std_error(),
                    "hazard_ratio": self.hazard_ratio,
                    "ci_lower": self.ci_lower,
                    "ci_upper": self.ci_upper,
                    "statistic": self.statistic,
                    "events": self.events,
                    "information_fraction": self.information_fraction,
                    "critical_value": self.critical_value,
                    "efficacy_hazard_ratio": self.efficacy_hazard_ratio,
                    "futility_bound": self.futility_bound,
                    "futility_hazard_ratio": self.futility_hazard_ratio,
                    "alpha_spent": self.alpha_spent,
                    "decision": self.decision,
                    "conditional_power_design": self.conditional_power_design,
                    "conditional_power_trend": self.conditional_power_trend,
                }
            ]
        )
        frame.attrs.update(ci_scale="hazard_ratio", ci="repeated", final=self.final, notes=self.notes)
        return frame

    def _std_error(self) -> float:
        attrs = self.boundaries.attrs
        return 1.0 / math.sqrt(attrs["allocation"] * (1 - attrs["allocation"]) * self.events)

    def boundaries_frame(self) -> pd.DataFrame:
        """Every look of the design as it now stands (a copy of :attr:`boundaries`).

        Columns ``look``, ``status`` (``done``, ``this look``, ``planned``), ``events``
        (actual, or planned for later looks), ``information_fraction``, ``critical_value``,
        ``efficacy_hazard_ratio``, ``futility_bound``, ``futility_hazard_ratio``,
        ``alpha_spent`` (cumulative).
        """
        frame = self.boundaries.copy()
        frame.attrs = dict(self.boundaries.attrs)
        return frame

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, the boundaries as records; what the audit log records of the look."""
        return {
            "look": self.look,
            "looks": self.looks,
            "events": self.events,
            "previous_events": list(self.previous_events),
            "information_fraction": jsonable(self.information_fraction),
            "final": self.final,
            "statistic": jsonable(self.statistic),
            "hazard_ratio": jsonable(self.hazard_ratio),
            "critical_value": jsonable(self.critical_value),
            "efficacy_hazard_ratio": jsonable(self.efficacy_hazard_ratio),
            "harm_hazard_ratio": jsonable(self.harm_hazard_ratio),
            "futility_bound": jsonable(self.futility_bound),
            "futility_hazard_ratio": jsonable(self.futility_hazard_ratio),
            "alpha_spent": jsonable(self.alpha_spent),
            "decision": self.decision,
            "stop": self.stop,
            "conditional_power_design": jsonable(self.conditional_power_design),
            "conditional_power_trend": jsonable(self.conditional_power_trend),
            "ci_lower": jsonable(self.ci_lower),
            "ci_upper": jsonable(self.ci_upper),
            "ci": "repeated",
            "method": self.method,
            "n": self.n,
            "design_fingerprint": self.design_fingerprint,
            "boundaries": jsonable(self.boundaries),
            "notes": list(self.notes),
        }

    def format(self, digits: int = 3) -> str:
        """The look as the committee reads it."""
        kind = "final analysis" if self.final else "interim look"
        lines = [
            f"{kind} {self.look} of {self.looks}: {self.events} events, information fraction "
            f"{self.information_fraction:.{digits}f}",
            f"log-rank z = {self.statistic:.{digits}f}, hazard ratio {self.hazard_ratio:.{digits}f} "
            f"(repeated CI {self.ci_lower:.{digits}f} to {self.ci_upper:.{digits}f})",
            f"efficacy boundary: z {self.critical_value:.{digits}f} (hazard ratio {self.efficacy_hazard_ratio:.{digits}f}); "
            f"alpha spent {self.alpha_spent:.{digits + 1}g}",
        ]
        if not math.isnan(self.harm_hazard_ratio):
            lines.append(f"harm boundary: hazard ratio {self.harm_hazard_ratio:.{digits}f}")
        if not math.isnan(self.futility_bound):
            lines.append(
                f"futility boundary: z {self.futility_bound:.{digits}f} "
                f"(hazard ratio {self.futility_hazard_ratio:.{digits}f}, "
                f"{'binding' if self._binding else 'non-binding'})"
            )
        lines.append(
            f"decision: {DECISIONS[self.decision]}"
            + (
                " (non-binding: the committee may continue)"
                if self.decision == "futility" and not self._binding
                else ""
            )
        )
        if not self.final:
            lines.append(
                f"conditional power: {self.conditional_power_design:.{digits}f} under the design's effect, "
                f"{self.conditional_power_trend:.{digits}f} under the current trend"
            )
        lines.extend(f"note: {note}" for note in self.notes)
        return "\n".join(lines)


# ----------------------------------------------------------------------------- inputs
def _whole(name: str, value, minimum: int = 1) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer, float, np.floating))
        or not float(value).is_integer()
        or value < minimum
    ):
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(value)


def logrank_statistic(
    followup: pd.DataFrame,
    *,
    time: str = "time_at_risk",
    event: str = "event",
    group: str = "arm",
    control: str | None = None,
    strata=None,
) -> dict:
    """The log-rank ``z`` of a follow-up table: ``(O - E) / sqrt(V)`` of the arm that is not
    ``control`` (default ``"control"`` if it is an arm, else the first in sorted order), with the
    events and participants; by :func:`rjtrial.survival.logrank`."""
    from rjtrial.survival import logrank

    if not isinstance(followup, pd.DataFrame):
        raise TypeError(f"followup must be a pandas DataFrame, got {type(followup).__name__}")
    if group not in followup.columns:
        raise DataError(
            f"no column {group!r} (given as group=); the columns are {', '.join(map(str, followup.columns))}",
            table="followup",
            column=group,
        )
    result = logrank(followup, time=time, event=event, group=group, strata=strata)
    table = result.table
    levels = [str(g) for g in table["group"]]
    if len(levels) != 2:
        raise DataError(
            f"an interim look compares two arms; found {len(levels)}: {', '.join(levels)}",
            table="followup",
            column=group,
        )
    if control is None:
        control = "control" if "control" in levels else sorted(levels)[0]
    control = str(control)
    if control not in levels:
        raise ValueError(f"control={control!r} is not an arm; arms: {', '.join(levels)}")
    row = table[[str(g) != control for g in table["group"]]].iloc[0]
    difference = float(row["observed"] - row["expected"])
    z = math.copysign(math.sqrt(result.statistic), difference) if difference else 0.0
    return {
        "statistic": z,
        "events": int(round(float(table["observed"].sum()))),
        "n": int(table["n"].sum()),
        "n_treatment": int(row["n"]),
        "treatment": str(row["group"]),
        "control": control,
        "n_omitted": result.n_omitted,
    }


def look(
    design: SequentialDesign,
    followup: pd.DataFrame | None = None,
    *,
    events: int | None = None,
    statistic: float | None = None,
    previous_events: Sequence[int] = (),
    final: bool | None = None,
    time: str = "time_at_risk",
    event: str = "event",
    group: str = "arm",
    control: str | None = None,
    strata=None,
) -> InterimLook:
    """An interim analysis of ``design``: boundary at the information reached, decision,
    conditional power and repeated confidence interval.

    Parameters
    ----------
    design : SequentialDesign
        The trial's design (:func:`~rjtrial.monitor.design`).
    followup : DataFrame, optional
        The follow-up table so far (:func:`rjtrial.followup.build` on the records extracted
        for this look): the log-rank statistic and the events are computed from it
        (:func:`rjtrial.survival.logrank`, columns ``time``, ``event``, ``group``).
    events, statistic : optional
        Instead of ``followup``: events observed (both arms) and the log-rank ``z`` (or a Cox
        Wald ``z``), whose sign is the sign of the log hazard ratio of the conference arm.
    previous_events : sequence of int
        Events at the earlier looks of this trial, in order (``rjtrial monitor look`` reads them
        from the registry's audit log). Their boundaries are recomputed from them, as they were.
    final : bool, optional
        Whether this is the final analysis (all the alpha left is spent). Default: when it is
        the design's last look, or the events reach the design's maximum.
    time, event, group, control, strata
        Columns of ``followup`` and the control arm, as :func:`rjtrial.survival.logrank`.

    Returns
    -------
    InterimLook
        The look's statistic, hazard ratio, boundaries, decision, conditional power and
        repeated confidence interval; ``boundaries_frame()`` has every look as it now stands.

    Notes
    -----
    Look ``k`` at ``d_k`` events has information fraction ``t_k = d_k / D`` (``D`` the
    design's maximum events). The efficacy bounds of looks ``1..k`` solve the Lan–DeMets
    equations at the actual fractions (the spending function evaluated at ``min(t_j, 1)``,
    at 1 for a final look; the correlation of the statistics from the actual events); later
    looks keep their planned fractions. Futility bounds spend the beta at the actual
    fractions under the design's effect with the design's maximum information kept fixed
    (the design's drift); the final look has none. Conditional power starts from
    ``Z_k`` and integrates over the later looks, futility bounds counting as stops (as rpact's
    ``getConditionalPower``), under the design's hazard ratio and under the estimate.
    Agrees with R rpact 3.3.4 (``getDesignGroupSequential`` at the actual information rates,
    ``asUser`` spending for a final look, ``getConditionalPower``,
    ``getRepeatedConfidenceIntervals``) to 1e-9 (``tests/validation/test_rpact_group_sequential.py``),
    also on Rossi et al.'s data analysed at week 26 and week 52.

    References
    ----------
    Lan, K. K. G., & DeMets, D. L. (1983). Discrete sequential boundaries for clinical trials.
    *Biometrika*, 70(3), 659–663. https://doi.org/10.1093/biomet/70.3.659

    Jennison, C., & Turnbull, B. W. (1989). Interim analyses: the repeated confidence interval
    approach. *JRSS B*, 51(3), 305–361. https://doi.org/10.1111/j.2517-6161.1989.tb01433.x

    Lachin, J. M. (2005). A review of methods for futility stopping based on conditional
    power. *Statistics in Medicine*, 24(18), 2747–2764. https://doi.org/10.1002/sim.2151

    Examples
    --------
    >>> from rjtrial.monitor import design
    >>> d = design(3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.8)
    >>> first = look(d, events=200, statistic=-2.1)
    >>> first.decision, round(first.critical_value, 4), round(first.conditional_power_design, 3)
    ('continue', 3.8381, 0.918)
    """
    if not isinstance(design, SequentialDesign):
        raise TypeError(f"design must be a SequentialDesign (from rjtrial.monitor.design), got {type(design).__name__}")
    n = None
    method = "given"
    notes: list[str] = []
    if followup is not None:
        if events is not None or statistic is not None:
            raise ValueError("give either a follow-up table or events= and statistic=, not both")
        found = logrank_statistic(followup, time=time, event=event, group=group, control=control, strata=strata)
        events, statistic, n, method = found["events"], found["statistic"], found["n"], "log-rank"
        share = found["n_treatment"] / found["n"]
        if abs(share - design.allocation) > 0.05:
            notes.append(
                f"{share:.0%} of the follow-up table is in the {found['treatment']} arm but the design "
                f"assumed {design.allocation:.0%}: the hazard ratio and its interval use the design's "
                "allocation (give the design the trial's own)"
            )
        if found["n_omitted"]:
            notes.append(f"{found['n_omitted']} rows of the follow-up table omitted for a missing value")
        if events == 0:
            raise DataError("no events yet: there is nothing to look at", table="followup", column=event)
    elif events is None or statistic is None:
        raise ValueError("give a follow-up table, or both events= and statistic=")
    events = _whole("events", events)
    if (
        isinstance(statistic, bool)
        or not isinstance(statistic, (int, float, np.integer, np.floating))
        or not math.isfinite(float(statistic))
    ):
        raise ValueError(f"statistic must be a finite number (the log-rank z), got {statistic!r}")
    statistic = float(statistic)
    previous = [_whole("previous_events", e) for e in previous_events]
    history = previous + [events]
    if any(b <= a for a, b in zip(history, history[1:])):
        raise ValueError(f"events must increase from look to look: earlier looks had {previous}, this one {events}")
    k = len(history)
    if k > design.looks:
        raise ValueError(f"the design has {design.looks} looks; this would be look {k}")
    info, final, walk, alpha_spent, schedule_notes = _schedule(design, history, final, design.max_events)
    notes.extend(schedule_notes)
    t_done = info[:k]
    sides = design.sides
    c, b = float(walk.critical[k - 1]), float(walk.futility[k - 1])
    has_futility = design.futility is not None and not (final or k == len(info))
    oriented = design.direction * statistic
    information = events * design.allocation * (1.0 - design.allocation)
    if oriented >= c:
        decision = "efficacy"
    elif sides == 2 and oriented <= -c:
        decision = "harm"
    elif has_futility and oriented <= b:
        decision = "futility"
    else:
        decision = "no_effect_shown" if final else "continue"
    if final:
        power_design = power_trend = math.nan
    else:
        later = slice(k, len(info))

        def conditional(drift: float) -> float:
            return float(
                _boundaries.conditional_power(
                    info[later],
                    walk.critical[later],
                    walk.futility[later],
                    sides=sides,
                    drift=drift,
                    start_info=t_done[-1],
                    start_z=oriented,
                )[-1]
            )

        power_design = conditional(design.drift)
        power_trend = conditional(oriented / math.sqrt(t_done[-1]))
    estimate = statistic / math.sqrt(information)
    half = c / math.sqrt(information)
    boundaries = _boundaries_frame(design, info, walk, alpha_spent, k, history, final, design.max_events)
    for note in notes:
        warnings.warn(note, RjtrialWarning, stacklevel=2)
    return InterimLook(
        look=k,
        looks=design.looks,
        events=events,
        previous_events=tuple(previous),
        information_fraction=t_done[-1],
        final=final,
        statistic=statistic,
        hazard_ratio=math.exp(estimate),
        critical_value=c,
        efficacy_hazard_ratio=float(design.hazard_ratio_at(c, events)),
        harm_hazard_ratio=float(design.hazard_ratio_at(-c, events)) if sides == 2 else math.nan,
        futility_bound=b if has_futility else math.nan,
        futility_hazard_ratio=float(design.hazard_ratio_at(b, events)) if has_futility else math.nan,
        alpha_spent=float(alpha_spent[k - 1]),
        decision=decision,
        conditional_power_design=power_design,
        conditional_power_trend=power_trend,
        ci_lower=math.exp(estimate - half),
        ci_upper=math.exp(estimate + half),
        boundaries=boundaries,
        method=method,
        n=n,
        design_fingerprint=design.fingerprint,
        notes=tuple(notes),
    )


def _schedule(design: SequentialDesign, history: list, final: bool | None, maximum: float):
    """Information of every look (done, then planned), whether this is the final look, the walk of
    the boundaries, the cumulative alpha spent and the notes."""
    notes = []
    k = len(history)
    t_done = [e / maximum for e in history]
    if any(t >= 1 for t in t_done[:-1]):
        raise ValueError("an earlier look reached the design's maximum events: it was the final analysis")
    if final is None:
        final = k == design.looks or t_done[-1] >= 1
        if t_done[-1] >= 1 and k < design.looks:
            notes.append(
                f"the events ({history[-1]}) reached the design's maximum ({maximum:.1f}) at look {k}: "
                "this is the final analysis"
            )
    elif not final and k == design.looks:
        raise ValueError(f"look {k} is the design's last: it is the final analysis (final=False was given)")
    elif not final and t_done[-1] >= 1:
        raise ValueError(
            f"the events ({history[-1]}) reached the design's maximum ({maximum:.1f}): this is the "
            "final analysis (final=False was given)"
        )
    final = bool(final)
    planned = [] if final else [t for t in design.information[k:] if t > t_done[-1]]
    if not final and len(planned) < design.looks - k:
        notes.append(
            f"{design.looks - k - len(planned)} planned look(s) fall before the information reached and are dropped"
        )
    info = t_done + planned
    spend_at = [min(t, 1.0) for t in info]
    if final:
        spend_at[-1] = 1.0
    alpha_spent = spending_function(design.spending).cumulative(spend_at, design.alpha, sides=design.sides)
    beta_due = None
    if design.futility is not None:
        beta_due = increments(spending_function(design.futility).cumulative(spend_at, 1.0 - design.power))[:-1]
    walk = _boundaries.walk(
        info, increments(alpha_spent), sides=design.sides, drift=design.drift, beta=beta_due, binding=design.binding
    )
    notes.extend(dict.fromkeys(walk.notes))
    return info, final, walk, alpha_spent, notes


def boundaries_at(
    design: SequentialDesign, events: Sequence[int], *, final: bool | None = None, max_events: float | None = None
) -> pd.DataFrame:
    """The boundaries of every look when the looks so far came at ``events`` (cumulative, in order).

    What :func:`look` computes for its last look, without a statistic: earlier looks and the last
    one at their actual information (``events / max_events``), later looks at their planned
    fractions. ``max_events`` (default the design's) is the maximum the fractions are taken of:
    a simulated trial whose final analysis has its own number of events passes that number.

    Returns
    -------
    pandas.DataFrame
        As :meth:`InterimLook.boundaries_frame`: ``look, status, events, information_fraction,
        critical_value, efficacy_hazard_ratio, futility_bound, futility_hazard_ratio,
        alpha_spent``; ``attrs``: ``binding``, ``allocation``, ``final``, ``notes``.

    Examples
    --------
    >>> from rjtrial.monitor import design
    >>> frame = boundaries_at(design(3), [200, 430, 640])
    >>> frame["status"].tolist(), [round(c, 3) for c in frame["critical_value"]]
    (['done', 'done', 'this look'], [3.838, 2.496, 1.995])
    """
    if not isinstance(design, SequentialDesign):
        raise TypeError(f"design must be a SequentialDesign, got {type(design).__name__}")
    history = [_whole("events", e) for e in events]
    if not history or any(b <= a for a, b in zip(history, history[1:])):
        raise ValueError(f"events must be one or more increasing counts, got {list(events)}")
    if len(history) > design.looks:
        raise ValueError(f"the design has {design.looks} looks; {len(history)} event counts were given")
    maximum = design.max_events if max_events is None else float(max_events)
    if not maximum > 0:
        raise ValueError(f"max_events must be positive, got {max_events!r}")
    info, final, walk, alpha_spent, notes = _schedule(design, history, final, maximum)
    frame = _boundaries_frame(design, info, walk, alpha_spent, len(history), history, final, maximum)
    frame.attrs["notes"] = tuple(notes)
    return frame


def _boundaries_frame(
    design: SequentialDesign, info, walk, alpha_spent, k: int, history, final: bool, maximum: float
) -> pd.DataFrame:
    looks = len(info)
    events = [float(e) for e in history] + [t * maximum for t in info[k:]]
    futility = np.where(np.isfinite(walk.futility), walk.futility, np.nan)
    if design.futility is None:
        futility[:] = np.nan
    futility[looks - 1] = np.nan
    frame = pd.DataFrame(
        {
            "look": np.arange(1, looks + 1),
            "status": ["done"] * (k - 1) + ["this look"] + ["planned"] * (looks - k),
            "events": events,
            "information_fraction": np.asarray(info, dtype=float),
            "critical_value": walk.critical,
            "efficacy_hazard_ratio": design.hazard_ratio_at(walk.critical, events),
            "futility_bound": futility,
            "futility_hazard_ratio": design.hazard_ratio_at(futility, events),
            "alpha_spent": np.asarray(alpha_spent, dtype=float),
        }
    )
    frame.attrs.update(binding=design.binding, allocation=design.allocation, final=final)
    return frame
