"""The primary results of a two-arm trial, by intention to treat, from its follow-up table.

:func:`primary_results` runs, on the table :func:`rjtrial.followup.build` produces,
the analyses the JRC and Sheffield evaluations reported: time to first reoffence
(Cox hazard ratio, log-rank test, restricted mean time to reoffence), frequency of
reoffending (rate ratio with street-time exposure as offset) and prevalence (risk
ratio of any reoffence). It calls the same functions a user calls
(:mod:`rjtrial.survival`, :mod:`rjtrial.frequency`), so its numbers are theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rjtrial import frequency, survival
from rjtrial._checks import followup_frame, in_table
from rjtrial._result import Result, jsonable
from rjtrial.errors import DataError
from rjtrial.outcome import definition, describe

REQUIRED = ("time_at_risk", "event", "reoffences", "exposure_days")
TABLE = "followup"


#: Measures that are ratios: their estimate is the log ratio, the ratio has its own column.
RATIOS = {"log_hazard_ratio": "hazard_ratio", "log_rate_ratio": "rate_ratio", "log_risk_ratio": "risk_ratio"}


@dataclass(frozen=True)
class PrimaryResults(Result):
    """Intention-to-treat results of a two-arm trial; ``summary_frame()`` has one row per measure.

    ``notes`` collects what the fits had to say (e.g. the count model's fallback from the
    negative binomial to the Poisson); ``format()``, ``to_dict()`` and the report show them.
    """

    control: str
    treatment: str
    n: dict
    events: dict
    tau: float
    alpha: float
    cox: Any
    logrank: Any
    rmst: Any
    rate_ratio: Any
    prevalence: Any
    outcome: dict | None = None

    @property
    def notes(self) -> tuple:
        return tuple(dict.fromkeys((*self.cox.notes, *self.rate_ratio.notes)))

    def summary_frame(self) -> pd.DataFrame:
        """One row per measure, treatment against control.

        Returns
        -------
        pandas.DataFrame
            Columns ``measure``; ``estimate`` on the model's own scale; ``std_error``;
            ``ratio`` (``exp(estimate)`` for ratio measures, else NaN); ``ci_lower``,
            ``ci_upper`` (the interval **of the ratio** for ratio measures, of the
            difference for ``rmst_difference``); ``statistic``; ``p_value``. Rows:
            ``log_hazard_ratio`` (Cox; z), ``logrank`` (chi-square statistic, 1 df; no
            estimate), ``rmst_difference`` (days, at ``tau``; z), ``log_rate_ratio``
            (negative binomial or Poisson with street-time offset; z), ``log_risk_ratio``
            (any reoffence). ``attrs``: ``alpha``, ``control``, ``treatment``, ``tau``,
            ``count_model`` (the model reported), ``notes``.
        """
        cox_row = self.cox.summary_frame().iloc[0]
        rmst_row = self.rmst.difference.iloc[0]
        rate_row = self.rate_ratio.summary_frame().set_index("term").iloc[-1]
        risk = self.prevalence
        log_risk = float(np.log(risk.estimate)) if risk.estimate > 0 else float("nan")
        rows = [
            (
                "log_hazard_ratio",
                cox_row["estimate"],
                cox_row["std_error"],
                cox_row["hazard_ratio"],
                cox_row["ci_lower"],
                cox_row["ci_upper"],
                cox_row["statistic"],
                cox_row["p_value"],
            ),
            ("logrank", np.nan, np.nan, np.nan, np.nan, np.nan, self.logrank.statistic, self.logrank.p_value),
            (
                "rmst_difference",
                rmst_row["estimate"],
                rmst_row["std_error"],
                np.nan,
                rmst_row["ci_lower"],
                rmst_row["ci_upper"],
                rmst_row["statistic"],
                rmst_row["p_value"],
            ),
            (
                "log_rate_ratio",
                rate_row["estimate"],
                rate_row["std_error"],
                rate_row["rate_ratio"],
                rate_row["ci_lower"],
                rate_row["ci_upper"],
                rate_row["statistic"],
                rate_row["p_value"],
            ),
            (
                "log_risk_ratio",
                log_risk,
                risk.std_error,
                risk.estimate,
                risk.ci_lower,
                risk.ci_upper,
                risk.statistic,
                risk.p_value,
            ),
        ]
        columns = ["measure", "estimate", "std_error", "ratio", "ci_lower", "ci_upper", "statistic", "p_value"]
        frame = pd.DataFrame(rows, columns=columns)
        frame.attrs.update(
            alpha=self.alpha,
            control=self.control,
            treatment=self.treatment,
            tau=self.tau,
            count_model=self.rate_ratio.model_fitted,
            notes=self.notes,
        )
        return frame

    def to_dict(self) -> dict:
        return {
            "control": self.control,
            "treatment": self.treatment,
            "n": self.n,
            "events": self.events,
            "tau_days": self.tau,
            "alpha": self.alpha,
            "count_model": self.rate_ratio.model_fitted,
            "count_model_label": self.rate_ratio.model_label(),
            "outcome": self.outcome,
            "outcome_description": describe(self.outcome),
            "notes": list(self.notes),
            "results": jsonable(self.summary_frame()),
        }

    def format(self, digits: int = 3) -> str:
        level = f"{100 * (1 - self.alpha):g}%"
        frame = self.summary_frame()
        labels = {
            "log_hazard_ratio": "Hazard ratio, first reoffence (Cox)",
            "logrank": "Log-rank test (chi-square, 1 df)",
            "rmst_difference": f"RMST difference to day {self.tau:g} (days)",
            "log_rate_ratio": "Rate ratio, reoffences per street day",
            "log_risk_ratio": "Risk ratio, any reoffence",
        }
        lines = [
            f"Intention to treat: {self.treatment} vs {self.control} (reference)",
            f"  outcome: {describe(self.outcome)}",
            "  "
            + ", ".join(
                f"{arm}: n = {self.n[arm]}, {self.events[arm]} reoffended" for arm in (self.control, self.treatment)
            ),
            "",
            f"  {'measure':<46} {'estimate':>10} {level + ' CI':>22} {'p':>8}",
        ]
        for row in frame.itertuples():
            shown = (
                row.statistic if row.measure == "logrank" else (row.ratio if row.measure in RATIOS else row.estimate)
            )
            ci = "" if np.isnan(row.ci_lower) else f"{row.ci_lower:.{digits}f} to {row.ci_upper:.{digits}f}"
            lines.append(f"  {labels[row.measure]:<46} {shown:>10.{digits}f} {ci:>22} {row.p_value:>8.4f}")
        lines.append(f"  (rate ratio by {self.rate_ratio.model_label()} regression, street-time offset)")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def primary_results(
    followup: pd.DataFrame,
    *,
    arm: str = "arm",
    control: str | None = None,
    tau: float | None = None,
    alpha: float = 0.05,
    count_model: str = "negative_binomial",
) -> PrimaryResults:
    """Run the primary ITT analyses on a follow-up table.

    Parameters
    ----------
    followup : DataFrame
        One row per participant with ``arm`` and the columns of
        :func:`rjtrial.followup.build`: time_at_risk, event, reoffences, exposure_days.
    arm : str
        The column holding the assigned arm (two arms).
    control : str, optional
        The reference arm; default ``"control"`` if it is an arm, else the first in sorted order.
    tau : float, optional
        RMST horizon in days; default the largest time at which both arms are still
        followed (the smaller of the two arms' longest times at risk).
    alpha : float
        1 - confidence level.
    count_model : {"negative_binomial", "poisson"}
        Model of the reoffence counts.

    Returns
    -------
    PrimaryResults
    """
    data = followup_frame(followup, table=TABLE, columns=REQUIRED, arm=arm)
    labels = data[arm].astype(str)
    levels = sorted(pd.unique(labels))
    if len(levels) != 2:
        message = f"the analysis needs exactly two arms, found {len(levels)}: {levels}"
        if len(levels) > 2:  # a typo is the rarest label: name its first row
            sizes = labels.value_counts()
            odd = min(levels, key=lambda level: (sizes[level], -int(np.flatnonzero(labels == level)[0])))
            raise DataError(
                f"{message}; arm {odd!r} is here",
                table=TABLE,
                row=data.index[int(np.flatnonzero(labels == odd)[0])],
                column=arm,
            )
        raise DataError(message, table=TABLE, column=arm)
    if control is None:
        control = "control" if "control" in levels else levels[0]
    if control not in levels:
        raise ValueError(f"control={control!r} is not an arm; arms: {', '.join(levels)}")
    treatment = next(level for level in levels if level != control)
    data[arm] = pd.Categorical(labels, categories=[control, treatment])
    _check_information(data, arm)
    data["_event"] = data["event"].astype(int)
    if tau is None:
        tau = float(data.groupby(arm, observed=True)["time_at_risk"].max().min())
    try:
        cox = survival.cox(data, arm, time="time_at_risk", event="event", alpha=alpha)
        try:
            logrank = survival.logrank(data, time="time_at_risk", event="event", group=arm)
        except np.linalg.LinAlgError:  # numpy's bare "Singular matrix"
            raise DataError(
                "the log-rank test has no information (its variance is 0): at every reoffence time either one arm "
                "has nobody left at risk or everyone at risk reoffended that day; check time_at_risk and event",
                table=TABLE,
                column="time_at_risk",
            ) from None
        rmst = survival.rmst(data, tau=tau, time="time_at_risk", event="event", group=arm, control=control, alpha=alpha)
        rate = frequency.rate_ratio(
            data,
            count="reoffences",
            exposure="exposure_days",
            group=arm,
            control=control,
            model=count_model,
            alpha=alpha,
        )
        prevalence = frequency.risk_ratio(data, outcome="event", group=arm, control=control, alpha=alpha)
    except DataError as exc:  # a verb's own check, told as this table
        raise in_table(exc, TABLE) from None
    counts = data.groupby(arm, observed=True)["_event"].agg(["size", "sum"])
    return PrimaryResults(
        control=control,
        treatment=treatment,
        n={k: int(v) for k, v in counts["size"].items()},
        events={k: int(v) for k, v in counts["sum"].items()},
        tau=tau,
        alpha=alpha,
        cox=cox,
        logrank=logrank,
        rmst=rmst,
        rate_ratio=rate,
        prevalence=prevalence,
        outcome=definition(followup),
    )


def _check_information(data: pd.DataFrame, arm: str) -> None:
    """Refuse, naming the column and why, a table whose time at risk carries no information."""
    time = data["time_at_risk"].to_numpy()
    if (time == 0).all():
        raise DataError(
            "time at risk is 0 for every participant: nobody was followed up, so there is nothing to analyse "
            "(were the records extracted before the randomisations, or everyone in custody throughout?)",
            table=TABLE,
            column="time_at_risk",
        )
    longest = data.groupby(arm, observed=True)["time_at_risk"].max()
    for level, value in longest.items():
        if value == 0:
            raise DataError(
                f"time at risk is 0 for everyone in arm {level!r}: nobody in that arm was followed up",
                table=TABLE,
                column="time_at_risk",
            )
