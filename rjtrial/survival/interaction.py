"""Does the treatment effect differ between subgroups? The likelihood-ratio test of the
arm-by-subgroup interaction in a Cox model (:func:`interaction_test`)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Sequence

import pandas as pd

from rjtrial._checks import chi2_sf
from rjtrial._result import Result, jsonable
from rjtrial.errors import DataError, RjtrialWarning
from rjtrial.survival import _checks
from rjtrial.survival.cox import cox


@dataclass(frozen=True)
class InteractionTestResult(Result):
    """Result of :func:`interaction_test`.

    Attributes
    ----------
    group, by : str
        The arm column and the subgroup column.
    levels : int
        Levels of ``by`` compared.
    statistic : float
        ``2 (loglik(group * by) - loglik(group + by))``.
    df : int
        Estimable interaction columns (aliased ones are not counted, as R).
    p_value : float
        Upper-tail chi-square probability.
    n, events, n_omitted : int
    notes : tuple of str
        What the two fits said (e.g. a level where an arm has no event makes an interaction
        coefficient tend to infinity; the likelihood-ratio test stays valid in the limit).
    """

    group: str
    by: str
    levels: int
    statistic: float
    df: int
    p_value: float
    n: int
    events: int
    n_omitted: int = 0
    notes: tuple = ()
    method: str = "likelihood ratio"

    def summary_frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "term": f"{self.group}:{self.by}",
                    "statistic": self.statistic,
                    "df": self.df,
                    "p_value": self.p_value,
                    "n": self.n,
                    "events": self.events,
                }
            ]
        )

    def format(self, digits: int = 4) -> str:
        lines = [
            f"Interaction of {self.group} with {self.by} ({self.levels} levels), {self.method} test: "
            f"chi-square = {self.statistic:.{digits}g} on {self.df} df, p = {self.p_value:.{digits}g}"
        ]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def to_dict(self) -> dict:
        return {
            k: jsonable(getattr(self, k))
            for k in (
                "group",
                "by",
                "levels",
                "statistic",
                "df",
                "p_value",
                "n",
                "events",
                "n_omitted",
                "notes",
                "method",
            )
        }


def interaction_test(
    df: pd.DataFrame,
    *,
    time: str,
    event: str,
    group: str,
    by: str,
    covariates: Sequence[str] = (),
    strata: str | Sequence[str] | None = None,
    ties: str = "efron",
    na_action: str = "omit",
) -> InteractionTestResult:
    """Likelihood-ratio test that the hazard ratio between arms is the same in every subgroup.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per participant.
    time, event : str
        Time to the event and its indicator (0/1), as :func:`~rjtrial.survival.cox`.
    group : str
        The arm.
    by : str
        The subgroup variable (treated as categorical: its levels are compared).
    covariates : sequence of str
        Further adjustment terms, in both models.
    strata, ties, na_action
        As :func:`~rjtrial.survival.cox`.

    Returns
    -------
    InteractionTestResult
        ``statistic, df, p_value`` and the ``notes`` of the two fits.

    Notes
    -----
    Fits ``group * C(by) + covariates`` and ``group + C(by) + covariates`` and compares
    their partial log-likelihoods: R ``anova(coxph(Surv(t, e) ~ arm * by), coxph(Surv(t, e) ~
    arm + by))``. A subgroup in which an arm has no event makes its interaction coefficient
    tend to infinity (a :class:`~rjtrial.errors.ConvergenceWarning` in :func:`cox`); the
    likelihood ratio still converges, so the test is reported, with the warning in ``notes``.

    Examples
    --------
    >>> from lifelines.datasets import load_rossi
    >>> res = interaction_test(load_rossi(), time="week", event="arrest", group="fin", by="wexp")
    >>> res.df
    1
    """
    strata_cols = [strata] if isinstance(strata, str) else list(strata or [])
    data, n_omitted = _checks.prepare(
        df,
        {"time": time, "event": event, "group": group, "by": by, "covariates": list(covariates), "strata": strata_cols},
        na_action=na_action,
    )
    data = data.assign(**{by: data[by].astype(str)}) if not isinstance(data[by].dtype, pd.CategoricalDtype) else data
    levels = data[by].nunique()
    if levels < 2:
        raise DataError(f"needs at least two subgroups to compare, found {levels}", table=_checks.TABLE, column=by)
    extra = "".join(f" + {c}" for c in covariates)
    notes: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RjtrialWarning)
        full = cox(data, f"{group} * C({by}){extra}", time=time, event=event, strata=strata, ties=ties)
        reduced = cox(data, f"{group} + C({by}){extra}", time=time, event=event, strata=strata, ties=ties)
    for warning in caught:
        if issubclass(warning.category, RjtrialWarning):
            notes.append(str(warning.message))
        else:  # pragma: no cover - not ours: pass it on
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    statistic = max(2 * (full.log_likelihood_ - reduced.log_likelihood_), 0.0)
    dof = len(full.estimable_params_) - len(reduced.estimable_params_)
    return InteractionTestResult(
        group=group,
        by=by,
        levels=int(levels),
        statistic=float(statistic),
        df=dof,
        p_value=float(chi2_sf(statistic, dof)) if dof > 0 else float("nan"),
        n=full.n,
        events=full.n_events,
        n_omitted=n_omitted,
        notes=tuple(dict.fromkeys(notes)),
    )
