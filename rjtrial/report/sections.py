"""The report's sections: each function computes one section's content as plain data.

The numbers come from the library's own verbs (:func:`rjtrial.primary.primary_results`,
:mod:`rjtrial.survival`, :func:`rjtrial.compliance.cace`, :mod:`rjtrial.victims`,
:func:`rjtrial.costs.benefit_cost`); nothing here re-derives an estimate they give. The
only arithmetic of its own is descriptive: the baseline table's means, percentages and
standardised differences.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from rjtrial._checks import indicator
from rjtrial.errors import RjtrialError
from rjtrial.report import figures

__all__ = [
    "AGE_BREAKS",
    "AT_RISK_TIMES",
    "WITHHELD_COMPLIANCE",
    "baseline",
    "benefit_cost",
    "blinded_counts",
    "blinding",
    "complier_effect",
    "consort",
    "design",
    "primary",
    "subgroups",
    "victim_outcomes",
]

AGE_BREAKS = (25, 35)
AT_RISK_TIMES = (0, 182, 365, 547, 730)


def _f(value) -> float:
    """A float (NaN for None/NA)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


# ---------------------------------------------------------------------- design
def design(registry, verification) -> dict:
    """The trial's design from the protocol stored in the registry, and ``verify``'s result."""
    protocol = registry.protocol
    method = protocol.randomisation
    details = []
    if method.block_sizes:
        details.append(f"block sizes {', '.join(map(str, method.block_sizes))}")
    if method.stratify_by:
        details.append(f"stratified by {', '.join(method.stratify_by)}")
    if method.factors:
        details.append(f"minimising over {', '.join(method.factors)}")
    if method.probability is not None:
        details.append(f"probability {method.probability:g}")
    return {
        "trial_id": protocol.id,
        "name": protocol.name,
        "description": protocol.description,
        "registration": protocol.registration,
        "arms": list(protocol.arms),
        "ratio": ":".join(map(str, protocol.ratio)),
        "method": method.method.replace("_", " "),
        "method_details": "; ".join(details),
        "strata": {name: list(levels) for name, levels in protocol.strata.items()},
        "eligibility": [
            {"id": q.id, "question": q.question, "eligible_if": ", ".join(q.eligible_if)} for q in protocol.eligibility
        ],
        "commitment": registry.commitment,
        "current_commitment": registry.current_commitment,
        "amendments": registry.amendments(),
        "verification": verification.to_dict(),
    }


#: The complier section of a blinded report: whether a conference was held shows which group is the programme's.
WITHHELD_COMPLIANCE: dict[str, Any] = {
    "rows": [],
    "note": None,
    "withheld": (
        "withheld while the analysis is blinded: whether a conference was held shows which group is the programme's"
    ),
}


def blinding(status, *, blinded: bool, arms: Sequence[str], ratio: str) -> dict:
    """The blinding's record for the report: codes, plans frozen, unblindings, and whether this report is blinded."""
    out = {"blinded": blinded, **status.to_dict(), "active": status.active, "size_note": None}
    if blinded and len(set(ratio.split(":"))) > 1:
        out["size_note"] = (
            f"the allocation ratio is {ratio}: group sizes differ by design and suggest which code "
            "is which arm; blinding conceals the labels, not the sizes"
        )
    return out


def blinded_counts(counts, participants: pd.DataFrame, codes: Sequence[str]):
    """CONSORT counts by code for a blinded report: randomised and withdrawn per code; conference records withheld."""
    import dataclasses

    coded = participants.dropna(subset=["arm"])
    return dataclasses.replace(
        counts,
        arms=tuple(codes),
        randomised_by_arm={c: int((coded["arm"] == c).sum()) for c in codes},
        treatment_received_by_arm={},
        treatment_not_received_by_arm={},
        treatment_unknown_by_arm={},
        withdrawn_by_arm={c: int(coded.loc[coded["arm"] == c, "withdrawn"].sum()) for c in codes},
    )


def consort(counts, followup: pd.DataFrame, *, blinded: bool = False) -> dict:
    """CONSORT counts from the registry, analysed numbers from the follow-up, and the diagram
    (``blinded``: groups by code, conference records withheld)."""
    data = counts.to_dict()
    analysed = {arm: int((followup["arm"] == arm).sum()) for arm in counts.arms}
    data["analysed_by_arm"] = analysed
    data["blinded"] = blinded
    data["figure"] = figures.consort_figure(data, analysed)
    return data


# -------------------------------------------------------------------- baseline
def _smd_numeric(control: pd.Series, treatment: pd.Series) -> float:
    pooled = math.sqrt((control.var(ddof=1) + treatment.var(ddof=1)) / 2)
    return (treatment.mean() - control.mean()) / pooled if pooled > 0 else float("nan")


def _smd_binary(p_control: float, p_treatment: float) -> float:
    pooled = math.sqrt((p_control * (1 - p_control) + p_treatment * (1 - p_treatment)) / 2)
    return (p_treatment - p_control) / pooled if pooled > 0 else float("nan")


def baseline_variables(followup: pd.DataFrame, strata: Sequence[str]) -> list[str]:
    """Baseline columns: the registry's strata, ``age``, ``sex``, then ``prior_*`` counts."""
    names = [*strata, *(c for c in ("age", "sex") if c in followup.columns)]
    names += [c for c in followup.columns if c.startswith("prior_") and c not in names]
    return [n for n in names if n in followup.columns]


def baseline(followup: pd.DataFrame, arms: Sequence[str], strata: Sequence[str]) -> dict:
    """The baseline table by arm.

    Numeric columns: mean (SD); others: count (percentage) per level. The standardised
    difference is treatment minus control over the pooled SD,
    ``(m_T − m_C) / sqrt((s_T² + s_C²) / 2)``, and for each level of a categorical variable
    ``(p_T − p_C) / sqrt((p_T(1 − p_T) + p_C(1 − p_C)) / 2)`` (Austin 2009,
    doi:10.1002/sim.3697); ``|d|`` above 0.1 is the usual flag of imbalance.
    """
    control, treatment = arms[0], arms[-1]
    by_arm = {arm: followup[followup["arm"] == arm] for arm in arms}
    rows: list[dict[str, Any]] = [
        {"label": "n", "kind": "count", "values": {arm: f"{len(by_arm[arm])}" for arm in arms}, "smd": None}
    ]
    for name in baseline_variables(followup, strata):
        column = followup[name]
        missing = {arm: int(by_arm[arm][name].isna().sum()) for arm in arms}
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = {arm: f"{by_arm[arm][name].mean():.2f} ({by_arm[arm][name].std(ddof=1):.2f})" for arm in arms}
            smd = _smd_numeric(
                by_arm[control][name].dropna().astype(float), by_arm[treatment][name].dropna().astype(float)
            )
            rows.append(
                {"label": f"{name}, mean (SD)", "kind": "numeric", "values": values, "smd": smd, "missing": missing}
            )
            continue
        rows.append({"label": f"{name}, n (%)", "kind": "heading", "values": {}, "smd": None, "missing": missing})
        for level in sorted(column.dropna().astype(str).unique()):
            counts = {arm: int((by_arm[arm][name].astype(str) == level).sum()) for arm in arms}
            shares = {arm: counts[arm] / len(by_arm[arm]) if len(by_arm[arm]) else float("nan") for arm in arms}
            values = {arm: f"{counts[arm]} ({100 * shares[arm]:.1f}%)" for arm in arms}
            rows.append(
                {
                    "label": level,
                    "kind": "level",
                    "values": values,
                    "smd": _smd_binary(shares[control], shares[treatment]),
                }
            )
    for row in rows:
        if row.get("missing") and any(row["missing"].values()):
            row["label"] += f" — missing {', '.join(f'{a}: {m}' for a, m in row['missing'].items())}"
    return {"arms": list(arms), "rows": rows, "control": control, "treatment": treatment}


# --------------------------------------------------------------------- primary
def analysis_frame(followup: pd.DataFrame, participants: pd.DataFrame) -> pd.DataFrame:
    """The follow-up rows with the registry's strata and conference record joined by ``id``.

    Adds ``reoffended`` (0/1) and ``conference_held`` (0/1: a ``treatment_received`` event
    in the registry; no record counts as not held).
    """
    registry_columns = participants.set_index("id")
    data = followup.copy()
    for name in registry_columns.columns:
        if name in ("arm", "id"):
            continue
        data[name] = data["id"].map(registry_columns[name])  # the registry's record wins
    data["reoffended"] = indicator(data, "event", table="followup", hint="").astype(int)
    data["conference_held"] = data["treatment_received"].astype("boolean").fillna(False).astype(int)
    return data


def primary(data: pd.DataFrame, arms: Sequence[str], *, alpha: float, tau: float | None) -> dict:
    """ITT results of :func:`rjtrial.primary.primary_results` and the Kaplan–Meier figure."""
    from rjtrial import survival
    from rjtrial.primary import primary_results

    results = primary_results(data, control=arms[0], tau=tau, alpha=alpha)
    frame = results.summary_frame().set_index("measure")
    curve_data = data.assign(arm=pd.Categorical(data["arm"], categories=[results.control, results.treatment]))
    km = survival.kaplan_meier(curve_data, time="time_at_risk", event="reoffended", group="arm", alpha=alpha)
    longest = float(data["time_at_risk"].max())
    times: list[float] = [t for t in AT_RISK_TIMES if t <= longest] or [0.0]
    medians = km.median().set_index("group")
    rates = results.rate_ratio.rates_frame().set_index("group")
    rmst = results.rmst.table.set_index("group")
    arms_rows = []
    for arm in (results.control, results.treatment):
        arms_rows.append(
            {
                "arm": arm,
                "n": results.n[arm],
                "events": results.events[arm],
                "proportion": results.events[arm] / results.n[arm],
                "reoffences": int(data.loc[data["arm"] == arm, "reoffences"].sum()),
                "rate_per_year": _f(rates.loc[arm, "rate"]),
                "rmst": _f(rmst.loc[arm, "estimate"]),
                "median": _f(medians.loc[arm, "estimate"]) if arm in medians.index else float("nan"),
            }
        )
    return {
        "results": results,
        "frame": frame,
        "arms": arms_rows,
        "control": results.control,
        "treatment": results.treatment,
        "tau": results.tau,
        "count_model": results.rate_ratio.model_label(),
        "notes": results.notes,
        "figure": figures.kaplan_meier_figure(km, at_risk_times=times),
    }


def complier_effect(data: pd.DataFrame, arms: Sequence[str], *, alpha: float) -> dict:
    """ITT beside the complier average causal effect (2SLS) for any reoffence and the count."""
    from rjtrial.compliance import cace

    rows, note = [], None
    for outcome, label in (("reoffended", "any reoffence (proportion)"), ("reoffences", "reoffences per participant")):
        try:
            result = cace(
                data, outcome=outcome, assigned="arm", treated="conference_held", control=arms[0], alpha=alpha
            )
        except RjtrialError as exc:
            note = str(exc)
            break
        table = result.summary_frame()
        rows.append(
            {
                "outcome": outcome,
                "label": label,
                "itt": table.loc["itt_outcome"].to_dict(),
                "cace": table.loc["cace"].to_dict(),
                "uptake": table.loc["itt_uptake"].to_dict(),
                "first_stage_f": result.first_stage_f_,
                "uptake_frame": result.uptake_frame().to_dict(orient="records"),
            }
        )
    return {"rows": rows, "note": note}


# ------------------------------------------------------------------- subgroups
def age_band(age: pd.Series, breaks: Sequence[int] = AGE_BREAKS) -> pd.Series:
    """Age bands ``under 25``, ``25–34``, ``35 and over`` (for the default breaks)."""
    edges = [-np.inf, *breaks, np.inf]
    labels = [f"under {breaks[0]}"]
    labels += [f"{lo}\u2013{hi - 1}" for lo, hi in zip(breaks[:-1], breaks[1:])]
    labels.append(f"{breaks[-1]} and over")
    return pd.cut(age.astype(float), edges, right=False, labels=labels)


def subgroup_variables(data: pd.DataFrame, strata: Sequence[str]) -> dict[str, str]:
    """Pre-specified subgroups: offence type, site and age band when present (column -> title)."""
    titles = {"offence": "offence type", "site": "site", "age_band": "age band"}
    out = {name: titles.get(name, name.replace("_", " ")) for name in ("offence", "site", "age_band") if name in data}
    for name in strata:
        out.setdefault(name, name.replace("_", " "))
    return out


def _cox_arm(frame: pd.DataFrame, formula: str, alpha: float):
    from rjtrial import survival

    return survival.cox(frame, formula, time="time_at_risk", event="reoffended", alpha=alpha)


def subgroups(data: pd.DataFrame, arms: Sequence[str], strata: Sequence[str], *, alpha: float, overall: dict) -> dict:
    """Cox hazard ratio (treatment vs control) within each level of each subgroup variable,
    and the likelihood-ratio test of the arm-by-subgroup interaction.

    A level where an arm is empty or has no reoffence is shown as not estimable; the
    interaction test (:func:`rjtrial.survival.interaction_test`) keeps what its fits said in
    ``notes``.
    """
    import warnings

    from rjtrial import survival
    from rjtrial.errors import RjtrialWarning

    data = data.copy()
    age_source = "the registry's stratum age_band" if "age_band" in data.columns else None
    if age_source is None and "age" in data.columns:
        data["age_band"] = age_band(data["age"])
        age_source = f"cut from the follow-up's age at {', '.join(map(str, AGE_BREAKS))} years"
    data["arm"] = pd.Categorical(data["arm"], categories=[arms[0], arms[-1]])
    rows: list[dict] = [{"label": "All participants", "n": len(data), "overall": True, **overall}]
    tests = []
    for name, title in subgroup_variables(data, strata).items():
        if isinstance(data[name].dtype, pd.CategoricalDtype):
            levels = [str(c) for c in data[name].cat.categories if (data[name] == c).any()]
        else:
            levels = sorted(data[name].dropna().astype(str).unique())
        column = data[name].astype("string")
        rows.append({"label": title, "heading": True})
        for level in levels:
            subset = data[column == level]
            events = subset.groupby("arm", observed=False)["reoffended"].sum()
            sizes = subset.groupby("arm", observed=False).size()
            row = {
                "label": f"  {level}",
                "n": int(len(subset)),
                "estimate": float("nan"),
                "ci_lower": float("nan"),
                "ci_upper": float("nan"),
                "events": {str(k): int(v) for k, v in events.items()},
                "sizes": {str(k): int(v) for k, v in sizes.items()},
            }
            if (sizes > 0).all() and (events > 0).all():
                try:
                    with warnings.catch_warnings():  # a level's own fit: shown, or marked not estimable
                        warnings.simplefilter("ignore", RjtrialWarning)
                        fit = _cox_arm(subset, "arm", alpha).summary_frame().iloc[0]
                    row.update(
                        estimate=float(fit["hazard_ratio"]),
                        ci_lower=float(fit["ci_lower"]),
                        ci_upper=float(fit["ci_upper"]),
                    )
                except (RjtrialError, ValueError, np.linalg.LinAlgError):
                    pass
            rows.append(row)
        test = {
            "variable": title,
            "levels": len(levels),
            "statistic": float("nan"),
            "df": 0,
            "p_value": float("nan"),
            "notes": (),
        }
        if len(levels) > 1 and column.notna().all():
            try:
                result = survival.interaction_test(
                    data.assign(**{name: column.astype(object)}),
                    time="time_at_risk",
                    event="reoffended",
                    group="arm",
                    by=name,
                )
                test.update(statistic=result.statistic, df=result.df, p_value=result.p_value, notes=result.notes)
            except (RjtrialError, ValueError, np.linalg.LinAlgError):
                pass
        tests.append(test)
    level = f"{100 * (1 - alpha):g}%"
    return {
        "rows": rows,
        "tests": tests,
        "age_source": age_source,
        "figure": figures.forest_figure(rows, left=f"favours {arms[-1]}", right=f"favours {arms[0]}", level=level),
    }


# --------------------------------------------------------------------- victims
def victim_outcomes(victims: pd.DataFrame, arms: Sequence[str], *, alpha: float, threshold: float = 25.0) -> dict:
    """Victims' outcomes by arm: ``satisfied`` and ``would_recommend`` (yes/no), the share
    with IES-R at or above ``threshold`` at follow-up, and the ANCOVA of the IES-R score."""
    from rjtrial import victims as v

    control = arms[0]
    out: dict[str, Any] = {
        "n": {arm: int((victims["arm"] == arm).sum()) for arm in arms},
        "binary": [],
        "ancova": None,
        "offenders": int(victims["id"].nunique()),
    }
    labels = {"satisfied": "satisfied with how the case was dealt with", "would_recommend": "would recommend RJ"}
    for column, label in labels.items():
        if column in victims.columns:
            result = v.binary_outcome(
                victims.dropna(subset=[column]), outcome=column, group="arm", control=control, alpha=alpha
            )
            out["binary"].append(
                {
                    "key": column,
                    "label": label,
                    "result": result,
                    "proportions": result.proportions_frame().set_index("group"),
                }
            )
    if "ies_r_followup" in victims.columns:
        scored = victims.dropna(subset=["ies_r_followup"])
        result = v.above_threshold(
            scored, score="ies_r_followup", group="arm", threshold=threshold, control=control, alpha=alpha
        )
        out["binary"].append(
            {
                "key": "ies_r_above_threshold",
                "label": f"IES-R \u2265 {threshold:g} at follow-up",
                "result": result,
                "proportions": result.proportions_frame().set_index("group"),
            }
        )
        if "ies_r_baseline" in victims.columns:
            both = scored.dropna(subset=["ies_r_baseline"])
            fit = v.ancova(
                both, outcome="ies_r_followup", baseline="ies_r_baseline", group="arm", control=control, alpha=alpha
            )
            out["ancova"] = {"result": fit, "means": fit.means_frame().set_index("group")}
    return out


# ------------------------------------------------------------------------ costs
def programme_cost(settings, counts, treatment: str) -> tuple[float, str]:
    """The programme's total cost from the costs settings and the registry's counts."""
    n_treatment = counts.randomised_by_arm.get(treatment, 0)
    if settings.total is not None:
        return settings.total, "total given"
    if settings.per_participant is not None:
        return settings.per_participant * n_treatment, (
            f"{n_treatment} assigned to {treatment} \u00d7 {settings.per_participant:,.2f}"
        )
    held = sum(counts.treatment_received_by_arm.values())
    not_held = n_treatment - counts.treatment_received_by_arm.get(treatment, 0)
    total = held * settings.per_conference_held + not_held * settings.per_assigned_not_held
    return total, (
        f"{held} conferences held \u00d7 {settings.per_conference_held:,.2f} + {not_held} assigned "
        f"without one \u00d7 {settings.per_assigned_not_held:,.2f}"
    )


def benefit_cost(data: pd.DataFrame, settings, counts, arms: Sequence[str], *, seed: int, alpha: float) -> dict:
    """:func:`rjtrial.costs.benefit_cost` with the costs file's unit costs, seeded."""
    from rjtrial.costs import benefit_cost as compute

    total, how = programme_cost(settings, counts, arms[-1])
    if total <= 0:
        raise RjtrialError("the programme's cost is 0: the benefit–cost ratio is undefined")
    result = compute(
        data,
        offence_counts=list(settings.cost_per_offence),
        costs=dict(settings.cost_per_offence),
        group="arm",
        control=arms[0],
        rng=seed,
        programme_cost_total=total,
        n_bootstrap=settings.n_bootstrap,
        alpha=alpha,
    )
    return {
        "result": result,
        "summary": result.summary_frame(),
        "prevented": result.prevented_frame(),
        "settings": settings,
        "programme_how": how,
    }


# --------------------------------------------------------------------- words for a funder
#: Abbreviations and terms the report uses, spelled out (shown as its glossary).
GLOSSARY = {
    "RJ": "restorative justice: victim and offender (and supporters) meet or communicate about the harm, with a "
    "trained facilitator",
    "ITT": "intention to treat: everyone is analysed in the arm they were randomised to, whether or not a "
    "conference took place",
    "CACE": "complier average causal effect: the effect among those who would take part in a conference if offered "
    "one, estimated by two-stage least squares (2SLS) with random assignment as the instrument",
    "HR": "hazard ratio: how much more (above 1) or less (below 1) often a first reoffence happens, at any moment, in "
    "one arm than in the other (Cox model)",
    "CI": "confidence interval: the range of effects compatible with the data at the stated confidence level",
    "RMST": "restricted mean survival time: the average number of days free of reoffending up to a fixed day",
    "CONSORT": "Consolidated Standards of Reporting Trials: the flow of referrals from screening to analysis",
    "IES-R": "Impact of Event Scale - Revised: a victim's post-traumatic stress symptoms; 25 or more suggests "
    "clinically important distress",
    "2SLS": "two-stage least squares, the instrumental-variable estimator behind the CACE",
    "p": "p-value: how often a difference at least this large would arise by chance if the arms did not differ",
}


def power_statement(events: int, allocation: float, *, alpha: float) -> dict:
    """What the trial could detect with the first reoffences it observed: the minimum
    detectable hazard ratio at 80% power (Schoenfeld 1983), below and above 1."""
    from rjtrial.survival import minimum_detectable_hazard_ratio

    if events <= 0:
        return {"events": int(events), "mdhr": float("nan"), "mdhr_above": float("nan")}
    mdhr = minimum_detectable_hazard_ratio(events, allocation=allocation, alpha=alpha, power=0.8)
    return {"events": int(events), "mdhr": mdhr, "mdhr_above": 1.0 / mdhr}


def missing_data(missing_followup: int, randomised: int, victims: dict | None, followup: pd.DataFrame) -> list[str]:
    """Plain statements of what is missing: participants without follow-up, offenders whose
    victims were not surveyed, participants with no time at risk."""
    lines = []
    if missing_followup:
        lines.append(
            f"{missing_followup} of {randomised} randomised participants have no follow-up record and are "
            "not analysed (the analysis is then not a full intention-to-treat analysis)."
        )
    else:
        lines.append(f"Every one of the {randomised} randomised participants has a follow-up record.")
    zero = int((followup["exposure_days"] == 0).sum()) if "exposure_days" in followup else 0
    if zero:
        lines.append(
            f"{zero} participant(s) spent the whole follow-up in custody or died at once: they had no time "
            "at risk and add nothing to the rate ratio."
        )
    if victims is None:
        lines.append("No victim survey was given: victims' outcomes are not reported.")
    else:
        unsurveyed = randomised - int(victims["offenders"])
        lines.append(
            f"Victims were surveyed for {victims['offenders']} of the {randomised} offenders"
            + (
                f"; {unsurveyed} offenders have no surveyed victim (no victim, or no response)."
                if unsurveyed > 0
                else "."
            )
        )
    return lines


def subgroup_caption(strata: Sequence[str], age_source: str | None) -> str:
    """Where the subgroups come from, built from the trial's own strata."""
    named = [name.replace("_", " ") for name in strata]
    if not named:
        text = "The trial has no registry strata; subgroups come from the follow-up table's columns"
    elif len(named) == 1:
        text = f"{named[0].capitalize()} is the registry's stratum"
    else:
        text = f"{', '.join(named[:-1]).capitalize()} and {named[-1]} are the registry's strata"
    return text + (f"; age bands: {age_source}" if age_source else "") + "."
