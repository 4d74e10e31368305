"""Individual-participant data, two-stage: each trial's follow-up table analysed on its own,
then the per-trial effects pooled.

:func:`two_stage` takes the follow-up tables of several trials (as
:func:`rjtrial.followup.build` makes them: one row per participant with ``arm``,
``time_at_risk``, ``event``, ``reoffences``, ``exposure_days``) and returns an effect-size
frame, one row per trial, in the shape :mod:`rjtrial.effects` produces, ready for
:func:`rjtrial.meta.pool`. Each trial is analysed with rjtrial's own functions:

=====================  ================================================================
measure                per-trial analysis
=====================  ================================================================
``log_hazard_ratio``   :func:`rjtrial.survival.cox` of ``time_at_risk`` / ``event`` on arm
                       (Efron ties), plus ``covariates``
``log_rate_ratio``     :func:`rjtrial.frequency.rate_ratio`: ``reoffences`` with
                       ``log(exposure_days)`` as offset (negative binomial or Poisson),
                       plus ``covariates``
``log_risk_ratio``     :func:`rjtrial.frequency.risk_ratio` of any reoffence (``event``)
``log_odds_ratio``     :func:`rjtrial.frequency.odds_ratio` of any reoffence
``risk_difference``    :func:`rjtrial.frequency.risk_difference` of any reoffence
=====================  ================================================================

``estimate`` is the treatment-versus-control coefficient on the log scale (the difference
itself for the risk difference) and ``variance`` its squared standard error.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import followup_frame
from rjtrial.errors import DataError

MEASURES = ("log_hazard_ratio", "log_rate_ratio", "log_risk_ratio", "log_odds_ratio", "risk_difference")
COUNT_MODELS = ("negative_binomial", "poisson")
_BINARY = {"log_risk_ratio": "risk_ratio", "log_odds_ratio": "odds_ratio", "risk_difference": "risk_difference"}
_NEEDS = {
    "log_hazard_ratio": ("time_at_risk", "event"),
    "log_rate_ratio": ("reoffences", "exposure_days"),
    "log_risk_ratio": ("event",),
    "log_odds_ratio": ("event",),
    "risk_difference": ("event",),
}


def two_stage(
    followups,
    *,
    measure: str = "log_hazard_ratio",
    control=None,
    treatment=None,
    covariates: Sequence[str] | None = None,
    count_model: str = "negative_binomial",
    arm: str = "arm",
    trial: str = "trial",
) -> pd.DataFrame:
    """Per-trial effects from individual participants' follow-up tables (first stage of a
    two-stage IPD meta-analysis).

    Parameters
    ----------
    followups : Mapping[str, DataFrame] or DataFrame
        Trial name -> follow-up table (from :func:`rjtrial.followup.build` or
        :meth:`rjtrial.simulate.SimulatedTrial.followup`), or one table with a ``trial``
        column. Trials keep their order (first appearance for a single table).
    measure : str, default "log_hazard_ratio"
        ``"log_hazard_ratio"``, ``"log_rate_ratio"``, ``"log_risk_ratio"``,
        ``"log_odds_ratio"`` or ``"risk_difference"`` (see the module table).
    control, treatment : label or Mapping[str, label], optional
        The arms compared, one label for every trial or a mapping trial -> label (trials name
        their arms differently: ``control``, ``court``...). Give either; the other is the
        trial's remaining arm. With neither, an arm named ``"control"`` is the control.
        Trials with more than two arms need both; rows of other arms are left out.
    covariates : list of str, optional
        Adjust the hazard and rate ratios for these columns (numeric ones linearly, others as
        treatment-coded dummies). The risk measures are unadjusted and refuse covariates.
    count_model : {"negative_binomial", "poisson"}, default "negative_binomial"
        Model of the reoffence counts for ``log_rate_ratio``.
    arm, trial : str
        Column names of the arm and (for a single table) the trial.

    Returns
    -------
    pandas.DataFrame
        One row per trial, indexed by ``study`` (the trial names): ``estimate``,
        ``variance``, ``events_treatment``, ``n_treatment``, ``events_control``,
        ``n_control`` (participants with a reoffence, and participants; for
        ``log_rate_ratio`` ``events_*`` count reoffences and ``person_time_treatment``,
        ``person_time_control`` add the exposure), ``treatment``, ``control`` (the arm
        labels). ``attrs``: ``measure``, ``two_stage`` (covariates, count model).

    Raises
    ------
    rjtrial.errors.DataError
        Naming the trial as the table: a missing column, a trial with one arm only, with no
        events, or (hazard and rate ratios) no events in one arm, whose ratio is then
        infinite; a bad cell, naming the trial, the row (its index label) and the column: an
        ``event`` other than 0/1 or False/True (read strictly, never by truthiness), a blank, a
        time or count that is not a number, a fractional or negative count, a duplicate ``id``;
        and any error of the per-trial analysis.
    ValueError
        An unknown measure or count model, or arms that are not in a trial.

    Notes
    -----
    The per-trial estimate equals calling the function in the table above on the trial's
    table with the arm coded ``[control, treatment]``; its standard error is the model-based
    one (inverse information), as for a published trial. Warnings of a per-trial fit (e.g. a
    negative binomial at no overdispersion, reported as Poisson) are re-issued naming the
    trial. The second stage is :func:`rjtrial.meta.pool`; tests/test_meta_ipd.py checks both
    stages against R ``survival::coxph``, ``MASS::glm.nb``, ``metafor::escalc`` and ``rma``.

    References
    ----------
    Riley, R. D., Lambert, P. C., & Abo-Zaid, G. (2010). Meta-analysis of individual
    participant data: rationale, conduct, and reporting. BMJ, 340, c221. doi:10.1136/bmj.c221

    Examples
    --------
    >>> from rjtrial.simulate import simulate_trial
    >>> from rjtrial.meta import pool
    >>> tables = {name: simulate_trial(f"synthetic/{name}.toml", rng=3, truth=False).followup()
    ...           for name in ("jrc-london-burglary", "canberra-youth-violence")}
    >>> es = two_stage(tables, measure="log_hazard_ratio", treatment="conference")
    >>> list(es.index), list(es["control"])
    (['jrc-london-burglary', 'canberra-youth-violence'], ['control', 'court'])
    >>> res = pool(es, method="REML")
    >>> res.k
    2
    """
    if measure not in MEASURES:
        raise ValueError(f"measure={measure!r}: choose one of {', '.join(map(repr, MEASURES))}")
    if count_model not in COUNT_MODELS:
        raise ValueError(f"count_model={count_model!r}: choose one of {', '.join(map(repr, COUNT_MODELS))}")
    covariates = [covariates] if isinstance(covariates, str) else list(covariates or [])
    if covariates and measure in _BINARY:
        raise ValueError(
            f"measure={measure!r} is an unadjusted comparison of proportions: covariates apply to "
            "'log_hazard_ratio' and 'log_rate_ratio'"
        )
    tables = _split(followups, trial)
    rows = []
    for name, table in tables.items():
        rows.append(
            _analyse(
                name,
                table,
                measure=measure,
                control=_pick(control, name, "control"),
                treatment=_pick(treatment, name, "treatment"),
                covariates=covariates,
                count_model=count_model,
                arm=arm,
            )
        )
    effects = pd.DataFrame(rows, index=pd.Index(list(tables), name="study"))
    effects.attrs["measure"] = measure
    effects.attrs["two_stage"] = {
        "covariates": covariates,
        "count_model": count_model if measure == "log_rate_ratio" else None,
    }
    return effects


def _split(followups, trial: str) -> dict[str, pd.DataFrame]:
    if isinstance(followups, pd.DataFrame):
        if trial not in followups.columns:
            raise DataError(
                f"one follow-up table needs a {trial!r} column naming each row's trial "
                "(or pass a mapping trial name -> table)",
                table="followups",
                column=trial,
            )
        labels = followups[trial]
        if labels.isna().any():
            row = followups.index[np.flatnonzero(labels.isna().to_numpy())[0]]
            raise DataError("missing trial name", table="followups", row=row, column=trial)
        tables = {key: group for key, group in followups.groupby(trial, sort=False, observed=True)}
    elif isinstance(followups, Mapping):
        tables = dict(followups)
        for name, table in tables.items():
            if not isinstance(table, pd.DataFrame):
                raise TypeError(f"followups[{name!r}] must be a pandas DataFrame, not {type(table).__name__}")
    else:
        raise TypeError(
            "followups must be a mapping trial name -> follow-up table, or one DataFrame with a "
            f"trial column; got {type(followups).__name__}"
        )
    if not tables:
        raise ValueError("followups holds no trial")
    return tables


def _pick(value, name, role: str):
    if isinstance(value, Mapping):
        if name not in value:
            raise ValueError(f"{role}= is a mapping without trial {name!r}; it names {', '.join(map(repr, value))}")
        return value[name]
    return value


def _arms(name, table: pd.DataFrame, arm: str, control, treatment) -> tuple[object, object]:
    if arm not in table.columns:
        raise DataError(
            f"no {arm!r} column: is this a follow-up table from rjtrial.followup.build?", table=name, column=arm
        )
    labels = table[arm]
    if labels.isna().any():
        row = table.index[np.flatnonzero(labels.isna().to_numpy())[0]]
        raise DataError("missing arm", table=name, row=row, column=arm)
    levels = sorted(pd.unique(labels).tolist(), key=str)
    if not levels:
        raise DataError("no participants", table=name, column=arm)
    if len(levels) < 2:
        raise DataError(
            f"only one arm ({levels[0]!r}) among its {len(table)} participants: a comparison needs two",
            table=name,
            column=arm,
        )
    for role, value in (("control", control), ("treatment", treatment)):
        if value is not None and value not in levels:
            raise ValueError(
                f"trial {name!r}: {role}={value!r} is not an arm; its arms are {', '.join(map(repr, levels))}"
            )
    if control is not None and treatment is not None:
        if control == treatment:
            raise ValueError(f"trial {name!r}: control and treatment are both {control!r}")
        return control, treatment
    if control is None and treatment is None and "control" in levels and len(levels) == 2:
        control = "control"
    if len(levels) != 2 or (control is None and treatment is None):
        message = (
            f"trial {name!r} has arms {', '.join(map(repr, levels))}: say which are compared "
            "with control= and/or treatment= (a label, or a mapping trial -> label)"
        )
        if len(levels) > 2:  # perhaps a typo: name the first row of the rarest arm
            sizes = labels.value_counts()
            odd = min(levels, key=lambda level: (sizes[level], -int(np.flatnonzero((labels == level).to_numpy())[0])))
            row = table.index[int(np.flatnonzero((labels == odd).to_numpy())[0])]
            raise DataError(f"{message}; arm {odd!r} ({sizes[odd]} row(s)) is here", table=name, row=row, column=arm)
        raise ValueError(message)
    if control is None:
        control = next(level for level in levels if level != treatment)
    else:
        treatment = next(level for level in levels if level != control)
    return control, treatment


def _analyse(name, table, *, measure, control, treatment, covariates, count_model, arm) -> dict:
    control, treatment = _arms(name, table, arm, control, treatment)
    missing = [c for c in (*_NEEDS[measure], *covariates) if c not in table.columns]
    if missing:
        raise DataError(f"missing column(s) {', '.join(map(repr, missing))} needed for {measure}", table=name)
    data = table.loc[table[arm].isin([control, treatment])]
    # strict codes and named rows, for every analysis column the table has (a bad cell is a bad table)
    checked = [
        c for c in ("time_at_risk", "event", "reoffences", "exposure_days") if c in _NEEDS[measure] or c in data.columns
    ]
    data = followup_frame(data, table=name, columns=checked, arm=None)
    data[arm] = pd.Categorical(data[arm], categories=[control, treatment])
    treated = (data[arm] == treatment).to_numpy()
    if measure == "log_rate_ratio":
        y = data["reoffences"].to_numpy(dtype=float)
        exposure = data["exposure_days"].to_numpy(dtype=float)
        counts = {
            "events_treatment": float(y[treated].sum()),
            "n_treatment": float(treated.sum()),
            "events_control": float(y[~treated].sum()),
            "n_control": float((~treated).sum()),
            "person_time_treatment": float(exposure[treated].sum()),
            "person_time_control": float(exposure[~treated].sum()),
        }
        what = "reoffences"
    else:
        event = data["event"].to_numpy(dtype=bool)
        counts = {
            "events_treatment": float(event[treated].sum()),
            "n_treatment": float(treated.sum()),
            "events_control": float(event[~treated].sum()),
            "n_control": float((~treated).sum()),
        }
        what = "events (reoffenders)"
    if counts["events_treatment"] + counts["events_control"] == 0:
        raise DataError(f"no {what} in either arm: the trial has no information on {measure}", table=name)
    if measure in ("log_hazard_ratio", "log_rate_ratio"):
        for label, key in ((control, "events_control"), (treatment, "events_treatment")):
            if counts[key] == 0:
                raise DataError(
                    f"no {what} in arm {label!r}: the {measure.replace('_', ' ')} is infinite; "
                    "leave the trial out or use a risk measure (with its 0.5 correction)",
                    table=name,
                    column=arm,
                )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimate, variance = _fit(
                data,
                measure,
                control=control,
                treatment=treatment,
                covariates=covariates,
                count_model=count_model,
                arm=arm,
            )
        except DataError as exc:
            raise DataError(str(exc), table=name, row=exc.row, column=exc.column) from exc
    for warning in caught:
        warnings.warn(f"trial {name!r}: {warning.message}", warning.category, stacklevel=4)
    return {"estimate": estimate, "variance": variance, **counts, "treatment": treatment, "control": control}


def _fit(data, measure, *, control, treatment, covariates, count_model, arm) -> tuple[float, float]:
    """(estimate, variance) of the treatment arm against control in one trial."""
    term = f"{arm}[T.{treatment}]"
    if measure == "log_hazard_ratio":
        from rjtrial.survival import cox

        hazards = cox(data, " + ".join([arm, *covariates]), time="time_at_risk", event="event")
        if not hazards.converged:
            warnings.warn("the Cox model did not converge", RuntimeWarning, stacklevel=2)
        return float(hazards.params_[term]), float(hazards.variance_.loc[term, term])
    if measure == "log_rate_ratio":
        from rjtrial.frequency import rate_ratio

        rates = rate_ratio(
            data,
            count="reoffences",
            exposure="exposure_days",
            group=arm,
            covariates=covariates,
            model=count_model,
            control=control,
        )
        return float(rates.params_[term]), float(rates.variance_.loc[term, term])
    from rjtrial import frequency

    fit = getattr(frequency, _BINARY[measure])(data, outcome="event", group=arm, control=control)
    estimate = fit.estimate if measure == "risk_difference" else np.log(fit.estimate)
    return float(estimate), float(fit.std_error**2)
