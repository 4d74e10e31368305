"""The demonstration trial, end to end: referrals to a report a funder can read.

``rjtrial demo`` runs a whole JRC-style trial on a synthetic population, through the
same code a real trial uses:

1. the scenario (``synthetic/jrc-multisite.toml`` by default) generates a stream of
   referrals at three sites; victim and offender consent is asked *before* assignment;
2. a registry is created in embedded SQLite, the allocation sequence sealed under a new
   key, and every referral is screened and, if eligible, randomised by
   :meth:`rjtrial.registry.Registry.enrol` as it arrives; whether each conference was
   held is recorded by :meth:`~rjtrial.registry.Registry.record_event`;
   the last site of the scenario (Thames Valley) joins six months after the first
   referral, by a protocol amendment (:meth:`~rjtrial.registry.Registry.amend`) that
   appends a sealed segment without touching what was allocated;
3. the criminal-records extract (offences, custody) is generated for everyone
   randomised, with the scenario's known effect among those who had a conference;
4. the two-year follow-up table is built (:func:`rjtrial.followup.build`);
5. the data monitoring committee takes one interim look halfway through follow-up, on the
   records as they stood then, against a three-look O'Brien–Fleming design
   (:func:`rjtrial.monitor.look`), and the look is recorded in the audit log
   (:meth:`~rjtrial.registry.Registry.record_interim_look`);
6. the store is verified (the amendment chain and the look included);
7. the statistician works blind: a blinded export (arms coded A/B, the mapping sealed
   under the key), the analysis plan frozen in the registry, then unblinding, logged with
   its reason (:mod:`rjtrial.registry.blinding`);
8. the trial is analysed by intention to treat (:func:`rjtrial.primary.primary_results`)
   and written up as one self-contained HTML report (:func:`rjtrial.report.build_report`),
   which shows the amendment history, the interim look beside the design's boundaries, and
   that the plan was frozen before unblinding.

Because the data are synthetic the true effects are known, and the demo prints them
beside the estimates (the truth is a Monte Carlo value on a large population,
:func:`rjtrial.simulate.truth.compute_truth`).
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from pathlib import Path

from rjtrial.errors import RjtrialError

DEFAULT_SCENARIO = "jrc-multisite.toml"
DEFAULT_PARTICIPANTS = 600
TRUTH_POPULATION = 200_000
MARKER = "summary.json"
#: Months after the first referral when the scenario's last site joins (by a protocol amendment).
JOIN_MONTHS = 6
ANALYSIS_PLAN = """# Statistical analysis plan (demonstration)

Primary outcome: time to first proven reoffence within two years of random assignment, days at
liberty, compared by intention to treat with a Cox model (Efron ties); log-rank test.
Secondary: frequency of reoffending (negative binomial, street-time offset), prevalence (risk
ratio), restricted mean survival time to day 730, complier average causal effect (2SLS).
Written and tested on the blinded export (groups A and B) before unblinding.
"""


def synthetic_path(name: str) -> Path:
    """A shipped file of ``synthetic/`` (scenarios, protocols, costs), installed or in a checkout."""
    from rjtrial import scenarios

    return scenarios.path(name)


def _command_name() -> str:
    """How to call rjtrial here: ``rjtrial`` when on PATH, else the script that is running."""
    if shutil.which("rjtrial"):
        return "rjtrial"
    script = Path(sys.argv[0])
    if script.name == "rjtrial":
        try:
            return str(script.resolve().relative_to(Path.cwd()))
        except ValueError:
            return str(script)
    return "rjtrial"


def _prepare(out: Path) -> None:
    """Make ``out`` empty: a previous demo there is replaced, anything else is refused."""
    if out.exists():
        if not out.is_dir():
            raise RjtrialError(f"{out} is a file; choose a folder with -o")
        if any(out.iterdir()) and not (out / MARKER).exists():
            raise RjtrialError(f"{out} exists and is not an rjtrial demo folder; choose another with -o")
        shutil.rmtree(out)
    out.mkdir(parents=True)


class _Progress:
    """Numbered steps and an in-place counter on a terminal (plain lines otherwise)."""

    def __init__(self, enabled: bool, steps: int):
        self.enabled = enabled
        self.steps = steps
        self.step = 0
        self.tty = enabled and sys.stdout.isatty()
        self._last = -1

    def say(self, message: str) -> None:
        if self.enabled:
            print(message, flush=True)

    def begin(self, message: str) -> None:
        self.step += 1
        self.say(f"  [{self.step}/{self.steps}] {message}")

    def count(self, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.tty:
            print(f"\r        {done:>5}/{total} referrals screened", end="" if done < total else "\n", flush=True)
        else:
            tenth = 10 * done // total
            if tenth != self._last and (tenth % 5 == 0 or done == total):
                self._last = tenth
                print(f"        {done:>5}/{total} referrals screened", flush=True)


def run_demo(
    output: str | Path = "rjtrial-demo",
    *,
    seed: int = 2026,
    participants: int = DEFAULT_PARTICIPANTS,
    scenario_path: str | Path | None = None,
    progress: bool = True,
    truth_population: int = TRUTH_POPULATION,
) -> dict:
    """Run the demonstration trial into ``output``; return a summary dict.

    Parameters
    ----------
    output : folder
        Created (a previous demo folder there is replaced; any other folder is refused).
    seed : int
        The seed of everything random in the trial (referrals, sequence, outcomes) and
        of the report's bootstrap.
    participants : int
        How many referrals are randomised.
    scenario_path : path, optional
        A scenario TOML (default ``synthetic/jrc-multisite.toml``).
    progress : bool
        Print the steps and the headline results.
    truth_population : int
        People simulated for the true effects (cached per scenario and size).

    Writes ``registry/trial.db`` and ``registry/trial.key`` (the sealed registry and its
    key), ``data/`` (referrals, participants, offences, custody, victims, costs,
    follow-up, truth, the blinded participants and the analysis plan), ``report.html`` and
    ``summary.json``.
    """
    from rjtrial import outcome
    from rjtrial.registry import Registry
    from rjtrial.report import build_report
    from rjtrial.simulate import load_scenario, simulate_trial

    if participants < 20:
        raise ValueError(f"participants must be at least 20 (two arms to compare), got {participants}")
    if truth_population < 1000:
        raise ValueError(f"truth_population must be at least 1000, got {truth_population}")
    started = time.perf_counter()
    scenario = load_scenario(scenario_path or synthetic_path(DEFAULT_SCENARIO))
    overrides: dict[str, object] = {"referrals.randomised": participants}
    sites = list(scenario.referrals.sites)
    if len(sites) > 1 and not scenario.referrals.joins and any(s.source == "site" for s in scenario.strata.values()):
        overrides["referrals.joins"] = {sites[-1]: JOIN_MONTHS}  # a site joins half-way: a protocol amendment
    scenario = scenario.with_overrides(overrides)
    out = Path(output)
    _prepare(out)
    show = _Progress(progress, steps=7)
    show.say(f"rjtrial demo: {scenario.name}")
    show.say(
        f"  protocol {scenario.protocol.id}: {scenario.protocol.randomisation.method}, "
        f"arms {' / '.join(scenario.protocol.arms)}; {participants} offenders to randomise"
    )

    show.begin(f"sealing the sequence and randomising referrals as they arrive ({out / 'registry' / 'trial.db'})")
    trial = simulate_trial(
        scenario,
        rng=seed,
        registry=out / "registry",
        truth=True,
        truth_population=truth_population,
        progress=show.count,
    )
    registry_db, key = out / "registry" / "trial.db", out / "registry" / "trial.key"
    realised = trial.truth["realised"]
    show.say(
        f"        {realised['referrals']} referred, {realised['randomised']} randomised "
        f"({', '.join(f'{a} {n}' for a, n in realised['randomised_by_arm'].items())}); "
        f"{realised['conferences_held']} conferences held"
    )
    with Registry.open(registry_db) as reg:
        amendments = reg.amendments()
    for a in amendments:
        show.say(
            f"        amendment {a['number']} on {a['effective_at'][:10]}: {a['title']} ({'; '.join(a['changes'])})"
        )

    show.begin("generating two years of criminal records and building the follow-up table")
    data = out / "data"
    trial.write(data)
    followup_table = trial.followup()
    followup_path = data / "followup.csv"
    followup_table.to_csv(followup_path, index=False, date_format="%Y-%m-%d")
    outcome.write_definition(followup_table, followup_path)  # the definition travels with the table
    show.say(
        f"        {realised['offences']} offences, {realised['custody_spells']} custody spells; "
        f"{int(followup_table['event'].sum())} of {len(followup_table)} reoffended within the window"
    )

    show.begin("an interim look halfway through follow-up (group-sequential design; logged in the audit log)")
    interim = interim_look(trial, registry_db, key, data)
    show.say(f"        {interim['text']}")

    show.begin(
        "verifying the registry (audit chain, amendments, interim looks, every allocation against its commitment)"
    )
    with_key = Registry.open(registry_db, key_path=key)
    try:
        verification = with_key.verify()
        commitment = with_key.commitment
    finally:
        with_key.close()
    if not verification.ok:  # pragma: no cover - the demo's own store
        raise RjtrialError(f"the demo registry failed verification: {verification.problems[:1]}")
    show.say(f"        intact: {verification.audit_entries} audit entries; commitment {commitment[:16]}...")

    show.begin("blinded analysis: blinded export, analysis plan frozen, then unblinded")
    blinding = _blinded_analysis(registry_db, key, data)
    show.say(
        f"        {blinding['blinded_file']} (arms coded {', '.join(blinding['codes'])}); plan frozen "
        f"(SHA-256 {blinding['sap_sha256'][:16]}...); unblinded: {blinding['mapping_text']}"
    )

    show.begin("analysing by intention to treat and writing the report")
    costs = Path(scenario.source).parent / "costs" / f"{scenario.id}.toml" if scenario.source else None
    costs = costs if costs is not None and costs.exists() else None
    command = shlex.join(
        [
            _command_name(),
            "report",
            "--db",
            str(registry_db),
            "--followup",
            str(followup_path),
            "--victims",
            str(data / "victims.csv"),
            *(["--costs", str(costs)] if costs else []),
            "--design",
            str(data / "design.json"),
            "-o",
            str(out / "report.html"),
            "--seed",
            str(seed),
        ]
    )
    report = build_report(
        registry_db,
        followup_path,
        victims=data / "victims.csv",
        costs=costs,
        key=key,
        seed=seed,
        command=_demo_command(out, seed, participants, scenario_path),
        by="demo",
        sequential_design=data / "design.json",
    )
    report.write(out / "report.html")

    show.begin("writing the summary")
    truth = trial.truth.get("itt") or {}
    numbers = {k: _plain(v) for k, v in report.numbers.items()}
    summary = {
        "scenario": scenario.id,
        "trial_id": scenario.protocol.id,
        "commitment": commitment,
        "verified": verification.ok,
        "referred": realised["referrals"],
        "randomised_by_arm": realised["randomised_by_arm"],
        "conferences_held": realised["conferences_held"],
        "amendments": amendments,
        "blinding": {k: v for k, v in blinding.items() if k != "mapping_text"},
        "results": numbers,
        "truth": {k: _plain(truth.get(k)) for k in ("hazard_ratio", "rate_ratio", "rmst_difference_days")},
        "interim_look": interim["summary"],
        "seed": seed,
        "report": str(out / "report.html"),
        "report_command": command,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / MARKER).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if progress:
        _print_headline(out, summary)
    return summary


def interim_look(trial, registry_db: Path, key: Path, data: Path) -> dict:
    """The demo's interim look: a three-look O'Brien–Fleming design (two-sided 5%, 80% power at a
    hazard ratio of 0.7, the protocol's allocation) written to ``data/design.json``; the follow-up
    as the records stood halfway between the first randomisation and the extraction date
    (``data/followup-interim.csv``: those randomised by then, records convicted by then); the look
    (:func:`rjtrial.monitor.look`) recorded in the registry's audit log, as ``rjtrial monitor look``
    does. Returns the look's summary and a line for the progress output."""
    import pandas as pd

    from rjtrial import followup, outcome
    from rjtrial.monitor import design, look
    from rjtrial.registry import Registry

    scenario = trial.scenario
    ratio = scenario.protocol.ratio
    plan = design(
        3, spending="obrien-fleming", alpha=0.05, power=0.8, hazard_ratio=0.7, allocation=ratio[1] / sum(ratio)
    )
    (data / "design.json").write_text(json.dumps(plan.to_dict(), indent=2) + "\n", encoding="utf-8")
    randomised = pd.to_datetime(trial.participants["randomised_on"])
    start, end = randomised.min(), pd.Timestamp(scenario.extraction.date)
    on = (start + (end - start) / 2).normalize()
    known = trial.participants[randomised < on].copy()
    if "died_on" in known.columns:  # a death after the look was not known at the look
        known.loc[pd.to_datetime(known["died_on"]) >= on, "died_on"] = pd.NaT
    offences = trial.offences[trial.offences["id"].isin(known["id"])]
    convicted = pd.to_datetime(offences["conviction_date"])
    offences = offences[convicted.lt(on) | (convicted.isna() & pd.to_datetime(offences["offence_date"]).lt(on))]
    custody = trial.custody[
        trial.custody["id"].isin(known["id"]) & pd.to_datetime(trial.custody["start"]).lt(on)
    ].copy()
    custody["end"] = pd.to_datetime(custody["end"]).clip(upper=on - pd.Timedelta(days=1)).dt.date
    analysis = scenario.analysis
    table = followup.build(
        known,
        offences,
        custody=custody,
        window_days=analysis.window_days,
        extraction_date=on.date(),
        conviction_lag_days=analysis.conviction_lag_days,
        prior_window_days=analysis.prior_window_days,
    )
    path = data / "followup-interim.csv"
    table.to_csv(path, index=False, date_format="%Y-%m-%d")
    outcome.write_definition(table, path)
    if table["event"].sum() < 10 or table["arm"].nunique() < 2:  # a very small demo trial
        return {"summary": None, "text": f"{on.date()}: no interim look (fewer than 10 first reoffences so far)"}
    with Registry.open(registry_db, key_path=key) as registry:
        result = look(plan, table, control=registry.protocol.arms[0])
        summary = {
            **result.to_dict(),
            "design": plan.settings,
            "followup": {"file": path.name, "extracted_on": str(on.date()), "rows": len(table)},
        }
        seq = registry.record_interim_look(summary, by="DMC statistician (demo)")
    text = (
        f"{on.date()}: {result.events} first reoffences of {plan.max_events:.0f} planned (information "
        f"{result.information_fraction:.2f}), hazard ratio {result.hazard_ratio:.2f}, boundary "
        f"{result.efficacy_hazard_ratio:.2f}: {result.decision}; audit entry {seq}"
    )
    return {
        "summary": {
            k: summary[k]
            for k in (
                "look",
                "events",
                "information_fraction",
                "statistic",
                "hazard_ratio",
                "critical_value",
                "decision",
            )
        }
        | {"audit_seq": seq},
        "text": text,
    }


def _blinded_analysis(registry_db: Path, key: Path, data: Path) -> dict:
    """The statistician's blinded steps: a blinded export, the plan frozen, then unblinding."""
    from rjtrial._files import write_private
    from rjtrial.registry import Registry, participants_csv

    with Registry.open(registry_db, key_path=key) as reg:
        blinded = reg.export(blinded=True, by="statistician")
        write_private(data / "participants-blinded.csv", participants_csv(blinded))
        # The interim look (interim_look, taken earlier by the DMC's unblinded statistician) precedes the freeze.
        write_private(data / "analysis-plan.md", ANALYSIS_PLAN)
        frozen = reg.freeze_sap(data / "analysis-plan.md", by="statistician")
        unblinded = reg.unblind(by="statistician", reason="final analysis: follow-up complete, analysis plan frozen")
    mapping = dict(unblinded.mapping)
    return {
        "blinded_file": str(data / "participants-blinded.csv"),
        "codes": sorted(mapping.values()),
        "sap_sha256": frozen.sha256,
        "sap_audit_seq": frozen.audit_seq,
        "unblind_audit_seq": unblinded.audit_seq,
        "mapping": mapping,
        "mapping_text": ", ".join(f"{c} = {a}" for a, c in sorted(mapping.items(), key=lambda kv: kv[1])),
    }


def _demo_command(out: Path, seed: int, participants: int, scenario_path) -> str:
    parts = [_command_name(), "demo", "-o", str(out), "--seed", str(seed), "--participants", str(participants)]
    if scenario_path is not None:
        parts += ["--scenario", str(scenario_path)]
    return shlex.join(parts)


def _plain(value):
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return value


def _interval(numbers: dict, name: str, lower: str, upper: str, digits: int = 2) -> str:
    estimate = numbers.get(name)
    if estimate is None:
        return "n/a"
    text = f"{estimate:.{digits}f}"
    if numbers.get(lower) is not None and numbers.get(upper) is not None:
        text += f" (95% CI {numbers[lower]:.{digits}f} to {numbers[upper]:.{digits}f})"
    return text


def _print_headline(out: Path, summary: dict) -> None:
    n, t = summary["results"], summary["truth"]
    print()
    print("Headline results (intention to treat; the truth is known because the data are synthetic):")
    for label, name, lower, upper, truth in (
        ("hazard ratio of reoffending", "hazard_ratio", "hr_ci_lower", "hr_ci_upper", "hazard_ratio"),
        ("rate ratio of reoffences", "rate_ratio", "rate_ci_lower", "rate_ci_upper", "rate_ratio"),
    ):
        line = f"  {label:<30}{_interval(n, name, lower, upper)}"
        if t.get(truth) is not None:
            line += f"   truth {t[truth]:.2f}"
        print(line)
    if n.get("logrank_p") is not None:
        print(f"  log-rank p = {n['logrank_p']:.3g}")
    print()
    print(f"done in {summary['seconds']} s. Open:")
    print(f"  {out / 'report.html'}   the trial report (one self-contained HTML file)")
    print(
        f"  {out / 'data'}/          the tables: referrals, participants (and blinded), offences, custody, victims, costs, followup, analysis plan"
    )
    print(f"  {out / 'registry' / 'trial.db'}   the sealed registry; check it with:")
    print(f"      {_command_name()} verify --db {out / 'registry' / 'trial.db'}")
    sys.stdout.flush()
