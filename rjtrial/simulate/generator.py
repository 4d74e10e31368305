"""The trial generator: a scenario → the tables of a trial, as real data would have them.

:func:`simulate_trial` draws the referral stream, screens it with the protocol's
eligibility questions, allocates the eligible referrals with rjtrial's own engines
(the registry itself when a ``registry`` folder is given, otherwise
:func:`rjtrial.randomise.allocate_cohort`, which follows the same sealed schedule
and rules), records which conferences were held, and generates each offender's
criminal record, custody spells, death or emigration, and the victims' answers.

The reoffending process
-----------------------
Person *i* offends as a Poisson process in **street time** (days at liberty) with
intensity ``mu_i = annual_rate / 365.25 * exp(x_i' beta) * Z_i``, where ``x_i`` holds
age (centred at ``reference_age``), sex, the index offence type and the site, and
``Z_i ~ Gamma(1/v, v)`` is a frailty with mean 1 and variance ``v`` (so counts over a
fixed time are negative binomial, over-dispersed with ``alpha = v``). After random
assignment the intensity of those who had a conference is multiplied by
``hazard_ratio_treated`` (from the assignment day). The process runs from
``prior_window_days + 365`` street days before assignment (so the prior counts share
the frailty) to the extraction date or death.

Each offence is convicted with probability ``1 - never_convicted``, after
``lag_days`` days at liberty; a conviction leads with probability
``custody.probability[type]`` to a custody spell of ``length_days`` days starting on
the conviction date, during which the street clock stops: no offending. Working in
street time keeps this vectorised: offences and convictions are points on each
person's street line, each custody spell is a pause inserted at its conviction's
point, and calendar time is street time plus the pauses before it (anchored so that
the assignment day is day 0). Spells therefore never overlap; a lag counts days at
liberty (proceedings wait while the person is in custody for something else), so a
conviction never falls inside a custody spell. The index offence is dated
``days_before_assignment`` before assignment; it is convicted with probability
``index_offence.convicted`` (a number, or a table by arm: diversion), on the
sentence date ``sentence_days_after_assignment`` after assignment, followed by custody
with probability ``index_offence.custody``.

Death or emigration comes at an exponential time (``censoring.annual_rate``); the
participant's ``died_on`` is then set and nothing is recorded after it. The extract
holds the offences convicted before the extraction date (plus, with
``include_unconvicted``, the others committed before it, without a conviction date).
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy import optimize, special

from rjtrial.simulate.scenario import DAYS_PER_MONTH, SEXES, Scenario, ScenarioError, load_scenario

__all__ = ["SimulatedTrial", "simulate_trial", "TABLES"]

#: The tables of a simulated trial, in the order they are written.
TABLES = ("referrals", "participants", "offences", "custody", "victims", "costs")
HISTORY_MARGIN_DAYS = 365  # the process starts this long before the prior window
STREAMS = ("referrals", "allocation", "treatment", "offending", "victims")
_NAT = np.iinfo(np.int64).min
_EPOCH = np.datetime64("1970-01-01", "D")


@dataclass(frozen=True)
class SimulatedTrial:
    """A simulated trial: its tables, the truth and the scenario.

    Attributes
    ----------
    referrals : DataFrame
        Every referral in arrival order: ``id, referred_at, <strata>, answer_<question>...,
        status`` ("randomised" or "ineligible"), ``reasons``, ``arm``, ``sequence_number``.
    participants : DataFrame
        The registry's export columns ``id, arm, sequence_number, randomised_at,
        randomised_on, <strata>, treatment_received, withdrawn, receipt`` (receipts only
        when a registry issued them), then ``age, sex, prior_<type>...`` (offences of the
        prior window convicted before assignment, by type) and ``died_on`` (death or
        emigration; NaT if none before extraction).
    offences : DataFrame
        ``id, offence_date, conviction_date, offence_type``: the records extract.
    custody : DataFrame
        ``id, start, end`` (inclusive dates).
    victims : DataFrame
        ``victim_id, id`` (the offender), ``arm, conference_held, satisfied,
        would_recommend, ies_r_baseline, ies_r_followup``.
    costs : DataFrame
        ``id, arm, conference_held, programme_cost``.
    latent : DataFrame
        What no real dataset holds: ``id, frailty, annual_rate`` (untreated offences per
        year at liberty), ``treated`` (had a conference), ``death_day`` (days after
        assignment, inf if none).
    truth : dict
        See :func:`rjtrial.simulate.truth.truth_record`.
    """

    scenario: Scenario
    referrals: pd.DataFrame
    participants: pd.DataFrame
    offences: pd.DataFrame
    custody: pd.DataFrame
    victims: pd.DataFrame
    costs: pd.DataFrame
    latent: pd.DataFrame
    truth: Mapping[str, Any] = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    def followup(self, **options) -> pd.DataFrame:
        """:func:`rjtrial.followup.build` with the scenario's analysis plan (``[analysis]``)."""
        from rjtrial import followup

        plan = self.scenario.analysis
        kwargs = {
            "window_days": plan.window_days,
            "extraction_date": self.scenario.extraction.date,
            "conviction_lag_days": plan.conviction_lag_days,
            "prior_window_days": plan.prior_window_days,
        }
        kwargs.update(options)
        return followup.build(self.participants, self.offences, custody=self.custody, **kwargs)

    def write(self, directory: str | Path, *, format: str = "csv", latent: bool = False) -> list[Path]:
        """Write every table (``csv``, or ``parquet`` when pyarrow is installed) and ``truth.json``."""
        if format not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = []
        tables = self.tables()
        if latent:
            tables["latent"] = self.latent
        for name, frame in tables.items():
            path = out / f"{name}.{format}"
            if format == "parquet":
                frame.to_parquet(path, index=False)
            else:
                frame = frame.copy()
                for column in frame.columns:
                    if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
                        frame[column] = frame[column].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                frame.to_csv(path, index=False, date_format="%Y-%m-%d")
            written.append(path)
        path = out / "truth.json"
        path.write_text(json.dumps(self.truth, indent=2, default=_json_default) + "\n", encoding="utf-8")
        written.append(path)
        return written


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (_dt.date, _dt.datetime, pd.Timestamp)):
        return value.isoformat()
    return str(value)


# ----------------------------------------------------------------------------- entry point
def simulate_trial(
    scenario: Scenario | str | Path,
    *,
    rng,
    overrides: Mapping[str, Any] | None = None,
    registry: str | Path | None = None,
    truth: bool = True,
    truth_population: int = 2_000_000,
    truth_rng=None,
    truth_cache_dir: str | Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedTrial:
    """Simulate one trial of ``scenario``.

    Parameters
    ----------
    scenario : Scenario or path to a scenario TOML
    rng : int or numpy.random.Generator
        All randomness of the trial (resolved with ``numpy.random.default_rng``).
    overrides : dict, optional
        Dotted scenario keys to replace, e.g. ``{"reoffending.hazard_ratio_treated": 1.0}``.
    registry : folder, optional
        Randomise through a real registry: ``trial.db`` and ``trial.key`` are created in
        this folder (which must not hold them already) and every referral is enrolled by
        :meth:`rjtrial.registry.Registry.enrol` at its referral time, conferences recorded
        by ``record_event``; the participants table is the registry's export. Without it,
        :func:`rjtrial.randomise.allocate_cohort` allocates in memory: for the same ``rng``
        the two give the same arms and the same tables (receipts aside).
    truth : bool
        Compute the intention-to-treat truth by Monte Carlo (cached per scenario, see
        :func:`rjtrial.simulate.truth.compute_truth`); if False ``truth["itt"]`` is None.
    truth_population, truth_rng, truth_cache_dir
        Passed to :func:`~rjtrial.simulate.truth.compute_truth`.
    progress : callable, optional
        With ``registry``, called as ``progress(done, total)`` after each referral is
        enrolled (for a progress display).

    Returns
    -------
    SimulatedTrial

    Examples
    --------
    >>> trial = simulate_trial("synthetic/canberra-youth-violence.toml", rng=1, truth=False)
    >>> len(trial.participants), sorted(trial.participants["arm"].unique())
    (121, ['conference', 'court'])
    >>> table = trial.followup()
    >>> int(table["event"].sum()) > 0
    True
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    if overrides:
        scenario = scenario.with_overrides(overrides)
    trial = generate(scenario, rng=rng, registry=registry, progress=progress)
    record = None
    if truth:
        from rjtrial.simulate.truth import compute_truth

        record = compute_truth(scenario, population=truth_population, rng=truth_rng, cache_dir=truth_cache_dir)
    from rjtrial.simulate.truth import truth_record

    info = trial.truth.get("realised", {})
    return SimulatedTrial(**{**trial.__dict__, "truth": truth_record(scenario, itt=record, realised=info, rng=rng)})


def generate(scenario: Scenario, *, rng, registry: str | Path | None = None, allocation: str = "protocol",
             lean: bool = False, progress: Callable[[int, int], None] | None = None) -> SimulatedTrial:
    """The tables of one trial, without the Monte Carlo truth (``truth`` holds what was realised).

    ``allocation="simple"`` allocates by simple randomisation with the protocol's ratio
    (used for the truth's large populations, where the allocation method is immaterial).
    ``lean=True`` keeps only what the follow-up builder needs (integer ids; participants
    ``id, arm, randomised_on, died_on``; offences and custody unsorted; the other tables
    empty): the same draws, for the truth's populations.
    """
    if allocation not in ("protocol", "simple"):
        raise ValueError(f"allocation must be 'protocol' or 'simple', got {allocation!r}")
    gen = np.random.default_rng(rng)
    seeds = dict(zip(STREAMS, (int(s) for s in gen.integers(0, 2**63, size=len(STREAMS)))))
    protocol = scenario.protocol
    ref = _referrals(scenario, np.random.default_rng(seeds["referrals"]))
    eligible = ref["eligible"]
    n = int(eligible.sum())
    strata_codes = {name: codes[eligible] for name, codes in ref["strata"].items()}
    if registry is not None:
        arm, reg = _enrol_in_registry(scenario, ref, seeds["allocation"], Path(registry), progress=progress)
    elif allocation == "simple":
        from rjtrial.randomise import engines

        arm, reg = engines.simple(protocol.ratio, n, rng=seeds["allocation"]), None
    else:
        from rjtrial.randomise import allocate_cohort

        rows = _strata_rows(protocol, strata_codes)
        arm, reg = allocate_cohort(protocol, rows, rng=seeds["allocation"]), None
    arm = np.asarray(arm, dtype=np.int64)

    tgen = np.random.default_rng(seeds["treatment"])
    held = (arm == 1) & (tgen.random(n) < scenario.treatment.conference_held)
    conference_delay = scenario.treatment.days_to_conference.sample(tgen, n)

    people = {
        "assigned_day": ref["assigned_day"][eligible],
        "age": ref["age"][eligible],
        "male": ref["male"][eligible],
        "index_type": ref["offence"][eligible],
        "site": ref["site"][eligible],
        "arm": arm,
        "held": held,
    }
    records = _offending(scenario, people, np.random.default_rng(seeds["offending"]))
    if lean:
        ids = np.arange(n, dtype=np.int64)
        participants = pd.DataFrame({"id": ids, "arm": np.asarray(protocol.arms, dtype=object)[arm],
                                     "randomised_on": _days_to_datetime(people["assigned_day"]),
                                     "died_on": _days_to_datetime(records["died_day"])})
        offences, custody = _record_frames(scenario, ids, records, sort=False)
        empty = pd.DataFrame()
        return SimulatedTrial(scenario, empty, participants, offences, custody, empty, empty, empty,
                              {"realised": {"randomised": n, "seeds": {k: str(v) for k, v in seeds.items()}}})
    ids = ref["id"][eligible]
    if reg is not None:
        participants = _registry_participants(reg, ref, arm, held, conference_delay)
        reg.close()
    else:
        participants = _participants_frame(scenario, ref, arm, held)
    participants = _add_covariates(participants, scenario, people, records)
    offences, custody = _record_frames(scenario, ids, records)
    referrals = _referrals_frame(scenario, ref, arm)
    costs = pd.DataFrame({
        "id": ids,
        "arm": np.asarray(protocol.arms, dtype=object)[arm],
        "conference_held": held,
        "programme_cost": np.where(held, scenario.costs.conference_held,
                                   np.where(arm == 1, scenario.costs.assigned_not_held, 0.0)),
    })
    costs.attrs["currency"] = scenario.costs.currency
    victim_frame, shift = _victims(scenario, ids, arm, held, np.random.default_rng(seeds["victims"]))
    latent = pd.DataFrame({"id": ids, "frailty": records["frailty"], "annual_rate": records["annual_rate"],
                           "treated": held, "death_day": records["death"]})
    realised = {
        "referrals": int(len(ref["id"])),
        "randomised": n,
        "randomised_by_arm": {a: int((arm == k).sum()) for k, a in enumerate(protocol.arms)},
        "conferences_held": int(held.sum()),
        "first_referral": str(_day_to_date(int(ref["assigned_day"][0]))),
        "last_assignment": str(_day_to_date(int(ref["assigned_day"][eligible][-1]))),
        "extraction_date": str(scenario.extraction.date),
        "offences": int(len(offences)),
        "custody_spells": int(len(custody)),
        "victims": int(len(victim_frame)),
        "ies_r_shift_conference": shift,
        "allocation": "registry" if registry is not None else allocation,
        "seeds": {k: str(v) for k, v in seeds.items()},
    }
    return SimulatedTrial(scenario, referrals, participants, offences, custody, victim_frame, costs, latent,
                          {"realised": realised})


# ----------------------------------------------------------------------------- referrals
def _truncated_normal(gen, mean, sd, low, high, size):
    a, b = special.ndtr((low - mean) / sd), special.ndtr((high - mean) / sd)
    return mean + sd * special.ndtri(a + (b - a) * gen.random(size))


def _draw_referrals(sc: Scenario, m: int, gen: np.random.Generator) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["gap"] = gen.exponential(DAYS_PER_MONTH / sc.referrals.rate_per_month, m)
    out["site"] = gen.choice(len(sc.referrals.sites), m, p=list(sc.referrals.sites.values()))
    out["offence"] = gen.choice(len(sc.referrals.offence_mix), m, p=list(sc.referrals.offence_mix.values()))
    o = sc.offenders
    out["age"] = np.floor(_truncated_normal(gen, o.age_mean, o.age_sd, o.age_min, o.age_max, m)).astype(np.int64)
    out["age"] = np.minimum(out["age"], int(math.ceil(o.age_max)) - 1)
    out["male"] = gen.random(m) < o.male
    answers, eligible = {}, np.ones(m, dtype=bool)
    for q in sc.protocol.eligibility:
        ok = gen.random(m) < sc.eligibility[q.id]
        bad = [a for a in q.answers if a not in q.eligible_if]
        pick_ok = gen.integers(0, len(q.eligible_if), m)
        pick_bad = gen.integers(0, len(bad), m)
        answers[q.id] = (ok, pick_ok, pick_bad)
        eligible &= ok
    out["answers"], out["eligible"] = answers, eligible
    strata = {}
    for name, src in sc.strata.items():
        levels = sc.protocol.strata[name]
        if src.source == "shares":
            strata[name] = gen.choice(len(levels), m, p=[src.shares[lvl] for lvl in levels])
        elif src.source == "age":
            strata[name] = np.searchsorted(np.asarray(src.breaks), out["age"], side="right")
        else:
            values = {"site": list(sc.referrals.sites), "offence_type": list(sc.referrals.offence_mix),
                      "sex": list(SEXES)}[src.source]
            lookup = np.array([levels.index(src.map[v]) for v in values])
            codes = {"site": out["site"], "offence_type": out["offence"], "sex": out["male"].astype(np.int64)}[src.source]
            strata[name] = lookup[codes]
    out["strata"] = strata
    return out


def _referrals(sc: Scenario, gen: np.random.Generator) -> dict[str, Any]:
    """Referrals in arrival order, up to the one that fills the trial; their days and ids."""
    need = sc.referrals.randomised
    p = math.prod(sc.eligibility.values()) if sc.eligibility else 1.0
    if p <= 0:
        raise ScenarioError(["eligibility: with these probabilities no referral is ever eligible"], source=sc.source)
    batches, have = [], 0
    while have < need:
        m = int((need - have) / p * 1.1) + 32
        batch = _draw_referrals(sc, m, gen)
        batches.append(batch)
        have += int(batch["eligible"].sum())
    ref = _concat(batches)
    last = int(np.flatnonzero(ref["eligible"])[need - 1])
    ref = _take(ref, slice(0, last + 1))
    arrival = np.cumsum(ref.pop("gap"))
    if sc.referrals.joins:
        _late_sites(sc, ref, arrival - arrival[0], gen)
    day = np.floor(arrival).astype(np.int64)
    if sc.referrals.start is not None:
        origin = _date_to_day(sc.referrals.start) - day[0]
    else:
        origin = _date_to_day(sc.extraction.date) - sc.extraction.days_after_last_assignment - day[-1]
    ref["assigned_day"] = origin + day
    # referral times during working hours, 09:00-17:00, in arrival order within a day
    ref["seconds"] = np.floor((9 + 8 * (arrival - day)) * 3600).astype(np.int64)
    last_day = int(ref["assigned_day"][-1])
    if last_day >= _date_to_day(sc.extraction.date):
        raise ScenarioError([
            f"referrals.start: the trial would still be randomising on {_day_to_date(last_day)}, "
            f"after extraction.date {sc.extraction.date}; start earlier or raise referrals.rate_per_month"
        ], source=sc.source)
    ref["id"] = _ids("R-", len(day))
    return ref


def _late_sites(sc: Scenario, ref, elapsed: np.ndarray, gen: np.random.Generator) -> None:
    """Sites that join late (``referrals.joins``): a referral drawn at a site before it joined is drawn
    again among the sites referring by then (shares renormalised); site-derived strata follow."""
    names = list(sc.referrals.sites)
    shares = np.asarray(list(sc.referrals.sites.values()))
    joined_at = np.array([sc.referrals.joins.get(name, 0.0) * DAYS_PER_MONTH for name in names])
    early = elapsed < joined_at[ref["site"]]
    for threshold in np.unique(joined_at):  # referrals grouped by the sites open to them
        open_then = joined_at <= threshold
        upper = joined_at[joined_at > threshold].min() if (joined_at > threshold).any() else np.inf
        chosen = early & (elapsed >= threshold) & (elapsed < upper)
        if chosen.any():
            p = np.where(open_then, shares, 0.0)
            ref["site"][chosen] = gen.choice(len(names), int(chosen.sum()), p=p / p.sum())
    for name, src in sc.strata.items():
        if src.source == "site":
            levels = sc.protocol.strata[name]
            lookup = np.array([levels.index(src.map[v]) for v in names])
            ref["strata"][name] = lookup[ref["site"]]


def late_levels(sc: Scenario) -> list[tuple[float, str, str]]:
    """(days after the first referral, stratum, level) of each site that joins late, in time order."""
    out = []
    for site, months in sc.referrals.joins.items():
        for name, src in sc.strata.items():
            if src.source == "site":
                out.append((months * DAYS_PER_MONTH, name, src.map[site]))
    return sorted(out)


def _ids(prefix: str, n: int) -> np.ndarray:
    """``prefix`` followed by 1..n zero-padded to at least six digits, as Python strings (vectorised)."""
    width = max(6, len(str(n)))
    digits = (np.arange(1, n + 1, dtype=np.int64)[:, None] // 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)) % 10
    codes = np.empty((n, len(prefix) + width), dtype=np.uint32)
    codes[:, : len(prefix)] = [ord(c) for c in prefix]
    codes[:, len(prefix):] = digits + ord("0")
    return codes.view(f"<U{len(prefix) + width}").ravel().astype(object)


def _concat(batches):
    first = batches[0]
    out = {}
    for key, value in first.items():
        if isinstance(value, dict):
            out[key] = {
                k: (tuple(np.concatenate([b[key][k][j] for b in batches]) for j in range(len(v)))
                    if isinstance(v, tuple) else np.concatenate([b[key][k] for b in batches]))
                for k, v in value.items()
            }
        else:
            out[key] = np.concatenate([b[key] for b in batches])
    return out


def _take(ref, index):
    out = {}
    for key, value in ref.items():
        if isinstance(value, dict):
            out[key] = {k: (tuple(x[index] for x in v) if isinstance(v, tuple) else v[index]) for k, v in value.items()}
        else:
            out[key] = value[index]
    return out


def _answer_strings(sc: Scenario, ref) -> dict[str, np.ndarray]:
    out = {}
    for q in sc.protocol.eligibility:
        ok, pick_ok, pick_bad = ref["answers"][q.id]
        good = np.asarray(q.eligible_if, dtype=object)
        bad = np.asarray([a for a in q.answers if a not in q.eligible_if], dtype=object)
        out[q.id] = np.where(ok, good[pick_ok], bad[pick_bad])
    return out


def _strata_strings(sc: Scenario, codes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.asarray(sc.protocol.strata[name], dtype=object)[c] for name, c in codes.items()}


def _strata_rows(protocol, codes: Mapping[str, np.ndarray]) -> list[dict[str, str]]:
    names = list(protocol.strata)
    if not names:
        return [{} for _ in range(len(next(iter(codes.values()), [])))]
    columns = [np.asarray(protocol.strata[name], dtype=object)[codes[name]] for name in names]
    return [dict(zip(names, values)) for values in zip(*columns)]


def _timestamps(ref) -> pd.Series:
    ns = (ref["assigned_day"] * 86400 + ref["seconds"]) * 1_000_000_000
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True))


# ----------------------------------------------------------------------------- allocation
def _enrol_in_registry(sc: Scenario, ref, allocation_seed: int, folder: Path, *, progress=None):
    """Enrol every referral through a new registry; the schedule seed is the one
    :func:`rjtrial.randomise.allocate_cohort` would draw from the same ``rng``."""
    from rjtrial.errors import RjtrialError
    from rjtrial.registry import Registry

    protocol = sc.protocol
    eligible = ref["eligible"]
    if protocol.randomisation.is_adaptive:
        needed = int(eligible.sum())
    else:
        keys = [protocol.sequence_key(row) for row in _strata_rows(protocol, {k: v[eligible] for k, v in ref["strata"].items()})]
        needed = max(pd.Series(keys).value_counts()) if keys else 0
    if needed > protocol.randomisation.capacity:
        raise ScenarioError([
            f"protocol: randomisation.capacity {protocol.randomisation.capacity} is too small for this trial "
            f"({needed} allocations in one sealed sequence); raise it or randomise in memory"
        ], source=sc.source)
    folder.mkdir(parents=True, exist_ok=True)
    schedule_seed = int(np.random.default_rng(allocation_seed).integers(0, 2**63))
    late = late_levels(sc)
    initial = protocol
    if late:  # the protocol begins without the sites that join late; an amendment adds each when it joins
        data = protocol.to_dict()
        for _, name, level in late:
            data["strata"][name] = [lv for lv in data["strata"][name] if lv != level]
        initial = type(protocol).from_dict(data)
    reg = Registry.create(folder / "trial.db", initial, key_path=folder / "trial.key", seed=schedule_seed, by="simulate")
    answers = _answer_strings(sc, ref)
    strata = _strata_strings(sc, ref["strata"])
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    times = [epoch + _dt.timedelta(seconds=int(x)) for x in ref["assigned_day"] * 86400 + ref["seconds"]]
    sites = np.asarray(list(sc.referrals.sites), dtype=object)[ref["site"]]
    first = times[0] if times else None
    arms = []
    for i, rid in enumerate(ref["id"]):
        while late and times[i] >= first + _dt.timedelta(days=late[0][0]):
            days, name, level = late.pop(0)
            _join(reg, name, level, first + _dt.timedelta(days=days), schedule_seed)
        result = reg.enrol(
            rid, strata={k: v[i] for k, v in strata.items()}, answers={k: v[i] for k, v in answers.items()},
            by=f"coordinator-{sites[i]}", at=times[i],
        )
        expected = "randomised" if eligible[i] else "ineligible"
        if result.status != expected:
            reg.close()
            raise RjtrialError(f"registry {result.status} referral {rid}: {'; '.join(result.reasons)}")
        if result.status == "randomised":
            arms.append(protocol.arms.index(result.arm))
        if progress is not None:
            progress(i + 1, len(ref["id"]))
    return np.asarray(arms, dtype=np.int64), reg


def _join(reg, stratum: str, level: str, at, seed: int) -> None:
    """A late site joins: a protocol amendment adds its level. Its new sequences are drawn from the
    schedule's own seed, so the arms are those :func:`rjtrial.randomise.allocate_cohort` gives (a real
    trial's amendment draws a fresh seed)."""
    from rjtrial.registry.amend import Amendment

    title = f"{level.replace('_', ' ').title()} joins the trial"
    amendment = Amendment.from_dict({"amendment": {"id": f"{level}-joins".replace("_", "-"), "title": title},
                                     "strata": {"add": {stratum: [level]}}})
    reg.amend(amendment, by="trial manager", reason=f"{level.replace('_', ' ')} starts referring", at=at, seed=seed)


def _registry_participants(reg, ref, arm, held, delay) -> pd.DataFrame:
    """Record whether each conference was held (``record_event``), then export the participants."""
    eligible = ref["eligible"]
    ids = ref["id"][eligible]
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    seconds = (ref["assigned_day"] * 86400 + ref["seconds"])[eligible] + np.rint(np.asarray(delay) * 86400).astype(np.int64)
    for i in np.flatnonzero(arm == 1):
        at = epoch + _dt.timedelta(seconds=int(seconds[i]))
        reg.record_event(ids[i], "treatment_received" if held[i] else "treatment_not_received", by="facilitator", at=at)
    frame = reg.export(by="simulate")
    if list(frame["id"]) != list(ids):
        raise RuntimeError("the registry's participants are not the referrals randomised, in order")
    return frame


def _participants_frame(sc: Scenario, ref, arm, held) -> pd.DataFrame:
    """The columns of :meth:`rjtrial.registry.Registry.export`, built without a registry."""
    eligible = ref["eligible"]
    n = int(eligible.sum())
    at = _timestamps(ref)[eligible].reset_index(drop=True)
    frame = pd.DataFrame({
        "id": ref["id"][eligible],
        "arm": np.asarray(sc.protocol.arms, dtype=object)[arm],
        "sequence_number": np.arange(1, n + 1, dtype=np.int64),
        "randomised_at": at,
    })
    frame["randomised_on"] = frame["randomised_at"].dt.tz_localize(None).dt.normalize()
    for name, values in _strata_strings(sc, {k: v[eligible] for k, v in ref["strata"].items()}).items():
        frame[name] = values
    treated = pd.array(held, dtype="boolean")
    treated[arm == 0] = pd.NA
    frame["treatment_received"] = treated
    frame["withdrawn"] = np.zeros(n, dtype=bool)
    frame["receipt"] = pd.Series([None] * n, dtype=object)
    return frame


def _add_covariates(frame: pd.DataFrame, sc: Scenario, people, records) -> pd.DataFrame:
    frame = frame.copy()
    frame["age"] = people["age"]
    frame["sex"] = np.asarray(SEXES, dtype=object)[people["male"].astype(np.int64)]
    for k, t in enumerate(sc.offence_types):
        frame[f"prior_{t}"] = records["prior"][:, k]
    frame["died_on"] = _days_to_datetime(records["died_day"])
    return frame


def _referrals_frame(sc: Scenario, ref, arm) -> pd.DataFrame:
    eligible = ref["eligible"]
    frame = pd.DataFrame({"id": ref["id"], "referred_at": _timestamps(ref)})
    for name, codes in ref["strata"].items():
        frame[name] = pd.Categorical.from_codes(codes, categories=list(sc.protocol.strata[name]))
    reasons = np.full(len(eligible), "", dtype=object)
    for q in sc.protocol.eligibility:
        ok, pick_ok, pick_bad = ref["answers"][q.id]
        good = [q.answers.index(a) for a in q.eligible_if]
        bad = [i for i, a in enumerate(q.answers) if a not in q.eligible_if]
        codes = np.where(ok, np.asarray(good)[pick_ok], np.asarray(bad)[pick_bad])
        frame[f"answer_{q.id}"] = pd.Categorical.from_codes(codes, categories=list(q.answers))
        failed = np.flatnonzero(~ok)
        tags = np.asarray([f"{q.id}={a}" for a in q.answers], dtype=object)[codes[failed]]
        reasons[failed] = np.where(reasons[failed] == "", tags, reasons[failed] + "; " + tags)
    frame["status"] = pd.Categorical.from_codes((~eligible).astype(np.int8), categories=["randomised", "ineligible"])
    frame["reasons"] = reasons
    arms = np.full(len(eligible), None, dtype=object)
    arms[eligible] = np.asarray(sc.protocol.arms, dtype=object)[arm]
    frame["arm"] = arms
    seq = np.zeros(len(eligible), dtype=np.int64)
    seq[eligible] = np.arange(1, int(eligible.sum()) + 1)
    frame["sequence_number"] = pd.array(seq, dtype="Int64")
    frame.loc[~eligible, "sequence_number"] = pd.NA
    return frame


# ----------------------------------------------------------------------------- reoffending
def _offending(sc: Scenario, people, gen: np.random.Generator) -> dict[str, Any]:
    """Offences, convictions, custody spells and deaths, all people at once (see the module notes)."""
    r, n = sc.reoffending, len(people["age"])
    types = sc.offence_types
    index_types = list(sc.referrals.offence_mix)
    by_offence = np.array([r.log_rate_by_offence.get(t, 0.0) for t in index_types])
    by_site = np.array([r.log_rate_by_site.get(s, 0.0) for s in sc.referrals.sites])
    linear = (r.log_rate_per_year_of_age * (people["age"] - r.reference_age) + r.log_rate_male * people["male"]
              + by_offence[people["index_type"]] + by_site[people["site"]])
    v = r.frailty_variance
    frailty = gen.gamma(1.0 / v, v, n) if v > 0 else np.ones(n)
    mu = r.annual_rate / 365.25 * np.exp(linear) * frailty  # per street day, untreated
    mu_post = mu * np.where(people["held"], r.hazard_ratio_treated, 1.0)

    extraction_day = _date_to_day(sc.extraction.date)
    horizon_ext = (extraction_day - people["assigned_day"]).astype(float)
    rate = sc.censoring.annual_rate
    death = gen.exponential(365.25 / rate, n) if rate > 0 else np.full(n, np.inf)
    horizon = np.minimum(horizon_ext, death)  # calendar days after the assignment day's start
    history = float(sc.analysis.prior_window_days + HISTORY_MARGIN_DAYS)

    n_pre = gen.poisson(mu * history)
    n_post = gen.poisson(mu_post * horizon)
    who = np.concatenate([np.repeat(np.arange(n), n_pre), np.repeat(np.arange(n), n_post), np.arange(n)])
    n_pre_total, n_post_total = int(n_pre.sum()), int(n_post.sum())
    street = np.concatenate([
        -history * (1.0 - gen.random(n_pre_total)),
        np.repeat(horizon, n_post) * gen.random(n_post_total),
        -np.maximum(sc.index_offence.days_before_assignment.sample(gen, n), 1e-6),
    ])
    mix = list(r.offence_mix.values())
    type_map = np.array([types.index(t) for t in r.offence_mix])
    index_code = np.array([types.index(t) for t in index_types])
    kind = np.concatenate([type_map[gen.choice(len(mix), n_pre_total + n_post_total, p=mix)],
                           index_code[people["index_type"]]])
    is_index = np.zeros(who.size, dtype=bool)
    is_index[-n:] = True

    # convictions (points on the street line) and custody pauses
    n_ev = who.size - n
    convicted = np.concatenate([gen.random(n_ev) >= sc.conviction.never_convicted,
                                gen.random(n) < _index_conviction_probability(sc, people["arm"])])
    sigma = np.concatenate([street[:n_ev] + sc.conviction.lag_days.sample(gen, n_ev),
                            sc.index_offence.sentence_days_after_assignment.sample(gen, n)])
    p_custody = np.array([sc.custody.probability[t] for t in types])
    custody_p = np.where(is_index, sc.index_offence.custody, p_custody[kind])
    custody = convicted & (gen.random(who.size) < custody_p)
    length = np.maximum(1.0, np.rint(sc.custody.length_days.sample(gen, who.size)))
    top = max(float(np.max(sigma, initial=0.0)), float(np.max(street, initial=0.0)))
    clock = _StreetClock(who[custody], sigma[custody], length[custody], n=n, history=history, top=top)

    offence_cal = clock.calendar(who, street)
    conviction_cal = clock.calendar(who, sigma)
    h = horizon[who]
    committed = offence_cal < h
    known = convicted & (conviction_cal < h)
    assigned = people["assigned_day"]
    offence_day = assigned[who] + np.floor(offence_cal).astype(np.int64)
    conviction_day = np.where(known, assigned[who] + np.floor(np.where(known, conviction_cal, 0)).astype(np.int64), _NAT)

    died = death < horizon_ext
    died_day = np.where(died, assigned + np.floor(np.where(died, death, 0)).astype(np.int64), _NAT)

    # prior convictions known at assignment: offences of the prior window convicted before it
    prior_mask = (known & (conviction_cal < 0) & (offence_cal < 0)
                  & (offence_day >= assigned[who] - sc.analysis.prior_window_days))
    prior = np.bincount(who[prior_mask] * len(types) + kind[prior_mask], minlength=n * len(types)).reshape(n, len(types))

    keep = committed & (known | sc.extraction.include_unconvicted)
    spell = custody & known
    start_day = assigned[who[spell]] + np.floor(conviction_cal[spell]).astype(np.int64)
    end_day = start_day + length[spell].astype(np.int64) - 1
    cap = np.where(died[who[spell]], died_day[who[spell]], extraction_day)
    end_day = np.minimum(end_day, cap)
    return {
        "who": who[keep], "offence_day": offence_day[keep], "conviction_day": conviction_day[keep],
        "type": kind[keep], "custody_who": who[spell], "custody_start": start_day, "custody_end": end_day,
        "died_day": died_day, "death": death, "prior": prior, "frailty": frailty, "annual_rate": mu * 365.25,
    }


def _index_conviction_probability(sc: Scenario, arm: np.ndarray) -> np.ndarray:
    by_arm = np.array([sc.index_offence.convicted[a] for a in sc.protocol.arms])
    return by_arm[arm]


class _StreetClock:
    """Maps street time to calendar time, given custody pauses (person, street point, length).

    Calendar time is counted from the start of the assignment day:
    ``cal(u) = u + B(u) - B(0)``, where ``B(u)`` is the total length of the person's
    pauses at street points before ``u``. One sorted array of keys
    ``person * stride + (point + offset)`` answers every query with one ``searchsorted``.
    """

    def __init__(self, person, point, length, *, n: int, history: float, top: float):
        self.offset = history + 1.0  # every point and query lies in [-history, top]
        self.stride = 2.0 ** math.ceil(math.log2(max(top + self.offset + 1.0, 2.0)))
        keys = person * self.stride + (point + self.offset)
        order = np.argsort(keys, kind="stable")
        self.keys = keys[order]
        self.cumulative = np.concatenate([[0.0], np.cumsum(length[order])])
        # B(0) of each person: pauses before the assignment day
        self.before_0 = self.cumulative[np.searchsorted(self.keys, np.arange(n) * self.stride + self.offset, side="left")]

    def calendar(self, person, u):
        query = person * self.stride + (np.maximum(u, -self.offset + 0.5) + self.offset)
        return u + self.cumulative[np.searchsorted(self.keys, query, side="left")] - self.before_0[person]


def _person_order(person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Order by person, then day (days fit in 32 bits: years 1970 +- 5.8 million)."""
    return np.argsort(person.astype(np.int64) * (1 << 32) + (day + (1 << 31)), kind="stable")


def _record_frames(sc: Scenario, ids, records, *, sort: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    order = _person_order(records["who"], records["offence_day"]) if sort else slice(None)
    types = pd.Categorical.from_codes(records["type"][order], categories=list(sc.offence_types))
    offences = pd.DataFrame({
        "id": ids[records["who"][order]],
        "offence_date": _days_to_datetime(records["offence_day"][order]),
        "conviction_date": _days_to_datetime(records["conviction_day"][order]),
        "offence_type": types,
    })
    order = _person_order(records["custody_who"], records["custody_start"]) if sort else slice(None)
    custody = pd.DataFrame({
        "id": ids[records["custody_who"][order]],
        "start": _days_to_datetime(records["custody_start"][order]),
        "end": _days_to_datetime(records["custody_end"][order]),
    })
    return offences, custody


# ----------------------------------------------------------------------------- victims
def _ies_r_shift(v) -> float:
    """Shift of the follow-up IES-R score for a held conference giving the stated risk ratio of
    a score at or above the threshold (after rounding to whole points), over the baseline
    distribution (truncated normal on 0-88, rounded)."""
    x = np.arange(0, 89)
    lo, hi = special.ndtr((x - 0.5 - v.ies_r_baseline_mean) / v.ies_r_baseline_sd), special.ndtr((x + 0.5 - v.ies_r_baseline_mean) / v.ies_r_baseline_sd)
    w = (hi - lo) / (hi - lo).sum()
    cut = v.ies_r_threshold - 0.5

    def above(shift):
        z = (cut - v.ies_r_followup_intercept - v.ies_r_followup_slope * x - shift) / v.ies_r_residual_sd
        return float(np.sum(w * special.ndtr(-z)))

    target = v.ies_r_risk_ratio_conference * above(0.0)
    if not 0.0 < target < 1.0:
        raise ScenarioError([f"victims.ies_r_risk_ratio_conference: {v.ies_r_risk_ratio_conference} is impossible when "
                             f"{above(0.0):.3f} of untreated victims are above the threshold"])
    return float(optimize.brentq(lambda s: above(s) - target, -500.0, 500.0, xtol=1e-12))


def _victims(sc: Scenario, ids, arm, held, gen) -> tuple[pd.DataFrame, float]:
    v = sc.victims
    count = gen.poisson(v.per_offender, len(ids))
    case = np.repeat(np.arange(len(ids)), count)
    m = case.size
    had = held[case]
    satisfied = gen.random(m) < np.where(had, v.satisfied_conference, v.satisfied_otherwise)
    recommend = gen.random(m) < np.where(had, v.recommend_conference, v.recommend_otherwise)
    shift = _ies_r_shift(v)
    baseline = np.rint(_truncated_normal(gen, v.ies_r_baseline_mean, v.ies_r_baseline_sd, -0.5, 88.5, m))
    follow = (v.ies_r_followup_intercept + v.ies_r_followup_slope * baseline
              + v.ies_r_residual_sd * gen.standard_normal(m) + shift * had)
    follow = np.clip(np.rint(follow), 0, 88)
    frame = pd.DataFrame({
        "victim_id": _ids("V-", m),
        "id": ids[case],
        "arm": np.asarray(sc.protocol.arms, dtype=object)[arm[case]],
        "conference_held": had,
        "satisfied": satisfied,
        "would_recommend": recommend,
        "ies_r_baseline": np.clip(baseline, 0, 88).astype(np.int64),
        "ies_r_followup": follow.astype(np.int64),
    })
    return frame, shift


# ----------------------------------------------------------------------------- dates
def _date_to_day(date: _dt.date) -> int:
    return int((np.datetime64(date, "D") - _EPOCH).astype(np.int64))


def _day_to_date(day: int) -> _dt.date:
    return (_EPOCH + np.timedelta64(int(day), "D")).astype(_dt.date)


def _days_to_datetime(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
