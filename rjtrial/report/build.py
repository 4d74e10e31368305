""":func:`build_report`: a registry and its follow-up → one self-contained HTML report."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from rjtrial import outcome
from rjtrial._version import __version__
from rjtrial.errors import RjtrialError
from rjtrial.report import DEFAULT_SEED, sections
from rjtrial.report import data as inputs
from rjtrial.report.html import TrialReport, render
from rjtrial.report.monitoring import monitoring_section, read_design

__all__ = ["DEFAULT_SEED", "build_report"]
LIBRARIES = (
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "lifelines",
    "linearmodels",
    "formulaic",
    "SQLAlchemy",
    "matplotlib",
    "Jinja2",
)


def _versions() -> dict[str, str]:
    out = {"rjtrial": __version__, "python": platform.python_version()}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def _shown_location(db) -> str:
    """The registry's file or URL as printed in the report: a URL's password is hidden, a file
    is shown relative to the working folder (never the machine's absolute path)."""
    text = str(db)
    if "://" in text:
        from sqlalchemy.engine import make_url

        try:
            return make_url(text).render_as_string(hide_password=True)
        except Exception:  # noqa: BLE001 - an unparsable URL was already refused by Registry.open
            return text.split("://", 1)[0] + "://..."
    return _relative(text) or text


def _relative(path) -> str | None:
    """A file as the report shows it: relative to the working folder when inside it, else its
    name only (an absolute path says where a machine keeps criminal-record files)."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_absolute():
        return str(path)
    try:
        return str(file.relative_to(Path.cwd()))
    except ValueError:
        return file.name


def _numbers(primary: dict, compliance: dict, victims: dict | None, costs: dict | None) -> dict[str, float]:
    """The headline numbers, as floats, keyed as :attr:`TrialReport.numbers` documents."""
    frame = primary["frame"]
    out: dict[str, float] = {}
    for measure, name, prefix in (
        ("log_hazard_ratio", "hazard_ratio", "hr"),
        ("rmst_difference", "rmst_difference", "rmst"),
        ("log_rate_ratio", "rate_ratio", "rate"),
        ("log_risk_ratio", "risk_ratio", "risk"),
    ):
        row = frame.loc[measure]
        out[name] = float(row["ratio"] if name != measure else row["estimate"])
        out[f"{prefix}_ci_lower"] = float(row["ci_lower"])
        out[f"{prefix}_ci_upper"] = float(row["ci_upper"])
        out[f"{prefix}_p_value"] = float(row["p_value"])
    out["logrank_statistic"] = float(frame.loc["logrank", "statistic"])
    out["logrank_p"] = float(frame.loc["logrank", "p_value"])
    out["rmst_tau"] = float(primary["tau"])
    for row in compliance["rows"]:
        suffix = "" if row["outcome"] == "reoffended" else f"_{row['outcome']}"
        for kind in ("itt", "cace"):
            out[f"{kind}{suffix}"] = float(row[kind]["estimate"])
            out[f"{kind}{suffix}_ci_lower"] = float(row[kind]["ci_lower"])
            out[f"{kind}{suffix}_ci_upper"] = float(row[kind]["ci_upper"])
            out[f"{kind}{suffix}_p_value"] = float(row[kind]["p_value"])
        if not suffix:
            out["uptake_difference"] = float(row["uptake"]["estimate"])
    if victims:
        for item in victims["binary"]:
            rr = item["result"].risk_ratio
            out[f"victims_{item['key']}_risk_ratio"] = float(rr.estimate)
            out[f"victims_{item['key']}_ci_lower"] = float(rr.ci_lower)
            out[f"victims_{item['key']}_ci_upper"] = float(rr.ci_upper)
        if victims["ancova"]:
            res = victims["ancova"]["result"]
            out["victims_ies_r_difference"] = float(res.estimate)
            out["victims_ies_r_ci_lower"] = float(res.ci_lower)
            out["victims_ies_r_ci_upper"] = float(res.ci_upper)
    if costs:
        res = costs["result"]
        out.update(
            benefit_cost_ratio=float(res.ratio_),
            bcr_ci_lower=float(res.ci_lower),
            bcr_ci_upper=float(res.ci_upper),
            benefit=float(res.benefit_),
            programme_cost=float(res.programme_cost_),
        )
    return out


def build_report(
    db,
    followup,
    *,
    victims=None,
    costs=None,
    key=None,
    seed: int = DEFAULT_SEED,
    command: str | None = None,
    output=None,
    allow_missing: bool = False,
    alpha: float = 0.05,
    tau: float | None = None,
    synthetic: bool | None = None,
    sequential_design=None,
    by: str | None = None,
) -> TrialReport:
    """Build the trial report: design, verification, CONSORT flow, baseline, ITT results, CACE,
    subgroups, victims and benefit–cost, with the versions, seed and command that made it.

    Parameters
    ----------
    db : str or path
        The registry: a SQLite file or a database URL (opened read-only in effect: the
        report adds nothing to the audit log).
    followup : DataFrame or path
        The follow-up table (:func:`rjtrial.followup.build`): one row per randomised
        participant with ``id, arm, time_at_risk, event, reoffences, exposure_days``; ``age``,
        ``sex`` and ``prior_*`` columns go into the baseline table.
    victims : DataFrame or path, optional
        One row per victim: the offender's ``id`` (and ``arm``), any of ``satisfied``,
        ``would_recommend``, ``ies_r_baseline``, ``ies_r_followup``.
    costs : path or dict, optional
        Unit costs for the benefit–cost ratio (format: :func:`rjtrial.report.data.read_costs`).
    key : path, optional
        The trial's key file: ``verify`` then also checks the sealed sequence.
    seed : int
        Seed of the benefit–cost bootstrap, the report's only random step.
    command : str, optional
        The command that produced the report, printed in it (the CLI passes its own).
    output : path, optional
        Also write the report there (atomically).
    allow_missing : bool
        Accept a follow-up table lacking some randomised participants (the report then
        says how many; by default this is an error, since intention to treat needs all).
    alpha : float
        1 − confidence level of every interval.
    tau : float, optional
        RMST horizon in days (default: :func:`rjtrial.primary.primary_results`' default).
    synthetic : bool, optional
        The data come from the simulator: every page says SYNTHETIC. Default: True when a
        ``truth.json`` (written by ``rjtrial simulate`` and the demo) lies beside the follow-up
        file, else False.
    sequential_design : SequentialDesign, dict or path, optional
        The trial's group-sequential design (``rjtrial monitor design -o``): the report shows its
        boundaries beside the interim looks logged in the registry (without it, the design
        recorded with the looks; with neither a design nor a look, no monitoring section).
    by : str, optional
        Who makes the report: the registry's access log then records that ``by`` read every
        participant's data for it (:mod:`rjtrial.registry.access`; ``rjtrial report`` always
        gives it). Without it the registry is only read.

    Returns
    -------
    TrialReport
        ``.html``, ``.numbers`` (floats: ``hazard_ratio, hr_ci_lower, hr_ci_upper, hr_p_value,
        logrank_statistic, logrank_p, rmst_difference, rmst_ci_lower, rmst_ci_upper, rmst_tau,
        rate_ratio, rate_ci_lower, rate_ci_upper, risk_ratio, risk_ci_lower, risk_ci_upper,
        itt, cace`` (any reoffence, risk-difference scale) ``and their _ci_lower/_ci_upper/_p_value,
        itt_reoffences, cace_reoffences, uptake_difference``; with victims
        ``victims_<outcome>_risk_ratio``, ``victims_ies_r_difference``; with costs
        ``benefit_cost_ratio, bcr_ci_lower, bcr_ci_upper, benefit, programme_cost``),
        ``.write(path)``.

    Raises
    ------
    RjtrialError
        Missing files, a registry that cannot be opened, or a follow-up/victims table that
        does not belong to the registry's trial (:class:`~rjtrial.errors.DataError`, naming
        the file, row and column).

    Examples
    --------
    A synthetic trial enrolled through a registry, and its report:

    >>> import pathlib, tempfile
    >>> from rjtrial.simulate import simulate_trial
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> trial = simulate_trial("synthetic/jrc-london-burglary.toml", rng=7, registry=folder, truth=False,
    ...                        overrides={"referrals.randomised": 60})
    >>> report = build_report(folder / "trial.db", trial.followup(), output=folder / "report.html")
    >>> (folder / "report.html").is_file(), report.html.startswith("<!DOCTYPE html>")
    (True, True)
    >>> import shutil; shutil.rmtree(folder)
    """
    from rjtrial.registry import Registry
    from rjtrial.registry import blinding as registry_blinding

    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    seed = int(seed)
    followup_table = inputs.read_table(followup, table="followup")
    defn = outcome.definition(followup) if isinstance(followup, pd.DataFrame) else outcome.read_definition(followup)
    if synthetic is None:
        synthetic = not isinstance(followup, pd.DataFrame) and (Path(followup).parent / "truth.json").is_file()
    victims_table = None if victims is None else inputs.read_table(victims, table="victims")
    cost_settings = None if costs is None else inputs.read_costs(costs)
    if key is not None and not Path(key).is_file():
        raise RjtrialError(f"key file {key} not found")
    with Registry.open(db, key_path=key) as registry:
        verification = registry.verify()
        counts = registry.consort()
        participants = registry.participants()
        design = sections.design(registry, verification)
        looks = registry.interim_looks()
        blind = registry_blinding.status(registry)
        arm_codes = registry_blinding.mapping(registry) if key is not None and blind.active else None
        if by is not None:  # every participant's allocation is read: an access the data-protection officer sees
            from rjtrial.registry import access

            access.record(registry, "report", by=by, detail={"output": None if output is None else str(output)})
    arms = list(design["arms"])
    if len(arms) != 2:
        raise RjtrialError(f"the report handles two-arm trials; trial {design['trial_id']} has arms {arms}")
    blinded = inputs.is_blinded(followup_table, arms, blind)
    design["blinding"] = sections.blinding(blind, blinded=blinded, arms=arms, ratio=design["ratio"])
    if blinded:  # the analysis sees codes only: A, B... in place of the arms
        participants = inputs.blind_participants(participants, followup_table, arm_codes)
        counts = sections.blinded_counts(counts, participants, list(blind.codes))
        design.update(protocol_arms=arms, arms=list(blind.codes))
        arms = list(blind.codes)
    strata = list(design["strata"])
    followup_frame = inputs.check_followup(
        followup_table, participants, design["trial_id"], allow_missing=allow_missing
    )
    victims_frame = (
        None if victims_table is None else inputs.check_victims(victims_table, participants, design["trial_id"])
    )
    data = sections.analysis_frame(followup_frame, participants)
    if cost_settings is not None:
        inputs.check_cost_columns(cost_settings, followup_table)

    primary = sections.primary(data, arms, alpha=alpha, tau=tau)
    overall = primary["frame"].loc["log_hazard_ratio"]
    context: dict[str, Any] = {
        "design": design,
        "consort": sections.consort(counts, data, blinded=blinded),
        "baseline": sections.baseline(data, arms, strata),
        "primary": primary,
        "compliance": (sections.WITHHELD_COMPLIANCE if blinded else sections.complier_effect(data, arms, alpha=alpha)),
        "subgroups": sections.subgroups(
            data,
            arms,
            strata,
            alpha=alpha,
            overall={
                "estimate": float(overall["ratio"]),
                "ci_lower": float(overall["ci_lower"]),
                "ci_upper": float(overall["ci_upper"]),
            },
        ),
        "victims": None if victims_frame is None else sections.victim_outcomes(victims_frame, arms, alpha=alpha),
        "costs": None
        if cost_settings is None or blinded
        else sections.benefit_cost(data, cost_settings, counts, arms, seed=seed, alpha=alpha),
        "costs_withheld": cost_settings is not None and blinded,
        "blinding": design["blinding"],
    }
    numbers = _numbers(primary, context["compliance"], context["victims"], context["costs"])
    power = sections.power_statement(
        sum(primary["results"].events.values()), primary["results"].n[arms[-1]] / len(data), alpha=alpha
    )
    numbers.update(mdhr_80=power["mdhr"], mdhr_80_above=power["mdhr_above"])
    missing = len(participants) - len(followup_frame)
    context.update(
        synthetic=bool(synthetic),
        outcome=outcome.describe(defn),
        outcome_definition=defn,
        power=power,
        missing_data=sections.missing_data(missing, len(participants), context["victims"], followup_frame),
        subgroup_caption=sections.subgroup_caption(strata, context["subgroups"]["age_source"]),
        glossary=sections.GLOSSARY,
        monitoring=monitoring_section(read_design(sequential_design), looks, blinded=blinded),
    )
    context.update(
        numbers=numbers,
        level=f"{100 * (1 - alpha):g}%",
        alpha=alpha,
        missing_followup=missing,
        provenance={
            "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "seed": seed,
            "command": command or "rjtrial.report.build_report(...) from Python",
            "versions": _versions(),
            "inputs": [
                {"role": "registry", "name": _shown_location(db), "sha256": None},
                {
                    "role": "follow-up",
                    "name": _relative(followup_table.path) or "DataFrame",
                    "sha256": followup_table.sha256,
                },
                *(
                    []
                    if victims_table is None
                    else [
                        {
                            "role": "victims",
                            "name": _relative(victims_table.path) or "DataFrame",
                            "sha256": victims_table.sha256,
                        }
                    ]
                ),
                *(
                    []
                    if cost_settings is None
                    else [
                        {
                            "role": "costs",
                            "name": _relative(cost_settings.path) or "dict",
                            "sha256": cost_settings.sha256,
                        }
                    ]
                ),
            ],
            "key_given": key is not None,
        },
    )
    report = TrialReport(html=render(context), numbers=numbers, sections=context)
    if output is not None:
        report.write(output)
    return report
