"""The trial generator: a scenario → the tables of a trial, as real data would have them.

:func:`simulate_trial` draws the referral stream, screens it with the protocol's
eligibility questions, allocates the eligible referrals (through a real registry when a
``registry`` folder is given; otherwise in memory, by the protocol's own law from the
trial's seeded streams, :mod:`rjtrial.simulate._allocation`), records which conferences
were held, and generates each offender's criminal record, custody spells, death or
emigration, and the victims' answers. Power by simulation draws its replicate trials with
the same code (:mod:`rjtrial.simulate._replicates`).

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
the assignment day is day 0; :mod:`rjtrial.simulate._kernels`). Spells therefore never
overlap; a lag counts days at liberty (proceedings wait while the person is in custody
for something else), so a conviction never falls inside a custody spell. The index
offence is dated ``days_before_assignment`` before assignment; it is convicted with
probability ``index_offence.convicted`` (a number, or a table by arm: diversion), on the
sentence date ``sentence_days_after_assignment`` after assignment, followed by custody
with probability ``index_offence.custody``. How the process is drawn (in independent
pieces, so that a replicate trial draws only what its follow-up needs) is in
:mod:`rjtrial.simulate._offending`.

Death or emigration comes at an exponential time (``censoring.annual_rate``); the
participant's ``died_on`` is then set and nothing is recorded after it. The extract
holds the offences convicted before the extraction date (plus, with
``include_unconvicted``, the others committed before it, without a conviction date).

Randomness
----------
``rng`` seeds a :class:`numpy.random.SeedSequence`; each quantity (arrivals, attributes,
allocation, frailty, offences of each kind, victims...) is drawn from its own stream named
after it (:mod:`rjtrial.simulate._streams`). A trial of a scenario and a trial of the same
scenario with more participants, from one seed, share their first participants.
"""

from __future__ import annotations

import datetime as _dt
import json
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
from scipy import optimize, special

from rjtrial.simulate._people import (
    day_to_date as _day_to_date,
)
from rjtrial.simulate._people import (
    draw_people,
    eligible_answers,
    ineligible_referrals,
)
from rjtrial.simulate._streams import Streams, seed_label, seed_sequence
from rjtrial.simulate.scenario import DAYS_PER_MONTH, SEXES, Scenario, ScenarioError, load_scenario

__all__ = ["SimulatedTrial", "simulate_trial", "TABLES"]

#: The tables of a simulated trial, in the order they are written.
TABLES = ("referrals", "participants", "offences", "custody", "victims", "costs")
_NAT = np.iinfo(np.int64).min


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
        kwargs: dict[str, Any] = {
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
    rng : int, numpy.random.SeedSequence or numpy.random.Generator
        All randomness of the trial (see "Randomness" in the module notes).
    overrides : dict, optional
        Dotted scenario keys to replace, e.g. ``{"reoffending.hazard_ratio_treated": 1.0}``.
    registry : folder, optional
        Randomise through a real registry: ``trial.db`` and ``trial.key`` are created in
        this folder (which must not hold them already) and every referral is enrolled by
        :meth:`rjtrial.registry.Registry.enrol` at its referral time, conferences recorded
        by ``record_event``; the participants table is the registry's export, the arms
        those of the registry's sealed sequence (seeded from ``rng``). Without it, the
        trial is allocated in memory by the protocol's own law
        (:mod:`rjtrial.simulate._allocation`); the referrals are the same either way.
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


def generate(
    scenario: Scenario,
    *,
    rng,
    registry: str | Path | None = None,
    allocation: str = "protocol",
    lean: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SimulatedTrial:
    """The tables of one trial, without the Monte Carlo truth (``truth`` holds what was realised).

    ``allocation="simple"`` allocates by simple randomisation with the protocol's ratio
    (used for large populations, where the allocation method is immaterial).
    ``lean=True`` keeps only what the follow-up builder needs (integer ids; participants
    ``id, arm, randomised_on, died_on``; offences and custody unsorted; the other tables
    empty): the same draws.
    """
    if allocation not in ("protocol", "simple"):
        raise ValueError(f"allocation must be 'protocol' or 'simple', got {allocation!r}")
    seed = seed_sequence(rng)
    streams = Streams(seed)
    n = scenario.referrals.randomised
    people = draw_people(scenario, n, 1, streams)
    # Without a registry nothing before the records needs the referral stream: a helper
    # thread draws it (and later builds the referrals table) while this one allocates and
    # draws the offending, whose compiled kernels and array work release the GIL. Every
    # quantity has its own named stream, so the draws do not depend on the order.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rjtrial-simulate") as helper:
        return _generate(scenario, people, streams, seed, rng, registry, allocation, lean, progress, helper)


def _generate(scenario, people, streams, seed, rng, registry, allocation, lean, progress, helper) -> SimulatedTrial:
    """:func:`generate` after the people are drawn, with a ``helper`` thread."""
    from rjtrial.simulate._allocation import REGISTRY_SEED, allocate
    from rjtrial.simulate._offending import offending

    protocol = scenario.protocol
    n = scenario.referrals.randomised
    stream: Future | None = None
    if registry is not None:
        ref = _referral_stream(scenario, people, streams)
        schedule_seed = int(streams("allocation", REGISTRY_SEED).integers(0, 2**63))
        arm, reg = _enrol_in_registry(scenario, ref, schedule_seed, Path(registry), progress=progress)
    else:
        ref = None
        if not lean:
            stream = helper.submit(_referral_stream, scenario, people, streams)
        arm = allocate(
            protocol, people.strata, streams, n=n, replicates=1, method="simple" if allocation == "simple" else None
        )[:, 0]
        reg = None
    arm = np.asarray(arm, dtype=np.int64)
    held = (arm == 1) & (streams("treatment").random((n, 1))[:, 0] < scenario.treatment.conference_held)
    flat = {
        "assigned_day": people.assigned_day[:, 0],
        "age": people.age[:, 0],
        "male": people.male[:, 0],
        "index_type": people.offence[:, 0],
        "site": people.site[:, 0],
        "arm": arm,
        "held": held,
        "shape": (n, 1),
    }
    records = offending(scenario, flat, streams, scope="records")
    realised = {"randomised": n, "seed": seed_label(rng, seed)}
    if lean:
        ids = np.arange(n, dtype=np.int64)
        participants = pd.DataFrame(
            {
                "id": ids,
                "arm": np.asarray(protocol.arms, dtype=object)[arm],
                "randomised_on": _days_to_datetime(flat["assigned_day"]),
                "died_on": _days_to_datetime(records["died_day"]),
            }
        )
        offences, custody = _record_frames(scenario, ids, records, sort=False)
        empty = pd.DataFrame()
        if reg is not None:
            reg.close()
        return SimulatedTrial(
            scenario, empty, participants, offences, custody, empty, empty, empty, {"realised": realised}
        )
    if stream is not None:
        ref = stream.result()
    if ref is None:  # pragma: no cover - only a lean trial without a registry has no referral stream
        raise RuntimeError("no referral stream was drawn")
    referrals_table = helper.submit(_referrals_frame, scenario, ref, arm)
    eligible = ref["eligible"]
    ids = ref["id"][eligible]
    conference_delay = scenario.treatment.days_to_conference.sample(streams("conference_delay"), n)
    if reg is not None:
        participants = _registry_participants(reg, ref, arm, held, conference_delay)
        reg.close()
    else:
        participants = _participants_frame(scenario, ref, arm, held)
    participants = _add_covariates(participants, scenario, flat, records)
    # at national scale the tables and their sources take gigabytes: each source is freed
    # once its table is made, and the records table is made after the referral stream's
    referrals = referrals_table.result()
    stream_facts = {
        "referrals": int(len(ref["id"])),
        "first_referral": str(_day_to_date(int(ref["assigned_day"][0]))),
        "last_assignment": str(_day_to_date(int(ref["assigned_day"][eligible][-1]))),
    }
    del ref, referrals_table
    offences, custody = _record_frames(scenario, ids, records)
    for done in ("who", "offence_day", "conviction_day", "type", "custody_who", "custody_start", "custody_end"):
        del records[done]
    costs = pd.DataFrame(
        {
            "id": ids,
            "arm": np.asarray(protocol.arms, dtype=object)[arm],
            "conference_held": held,
            "programme_cost": np.where(
                held, scenario.costs.conference_held, np.where(arm == 1, scenario.costs.assigned_not_held, 0.0)
            ),
        }
    )
    costs.attrs["currency"] = scenario.costs.currency
    victim_frame, shift = _victims(scenario, ids, arm, held, streams("victims"))
    latent = pd.DataFrame(
        {
            "id": ids,
            "frailty": records["frailty"],
            "annual_rate": records["annual_rate"],
            "treated": held,
            "death_day": records["death"],
        }
    )
    realised.update(
        {
            "referrals": stream_facts["referrals"],
            "randomised_by_arm": {a: int((arm == k).sum()) for k, a in enumerate(protocol.arms)},
            "conferences_held": int(held.sum()),
            "first_referral": stream_facts["first_referral"],
            "last_assignment": stream_facts["last_assignment"],
            "extraction_date": str(scenario.extraction.date),
            "offences": int(len(offences)),
            "custody_spells": int(len(custody)),
            "victims": int(len(victim_frame)),
            "ies_r_shift_conference": shift,
            "allocation": "registry" if registry is not None else allocation,
        }
    )
    return SimulatedTrial(
        scenario, referrals, participants, offences, custody, victim_frame, costs, latent, {"realised": realised}
    )


# ----------------------------------------------------------------------------- referrals
def _referral_stream(sc: Scenario, people, streams: Streams) -> dict[str, Any]:
    """Every referral of the trial (randomised and ineligible), in arrival order."""
    other = ineligible_referrals(sc, people, streams)
    n, m = people.arrival.shape[0], other["arrival"].size
    arrival = np.concatenate([people.arrival[:, 0], other["arrival"]])
    order = np.argsort(arrival, kind="stable")
    eligible = np.concatenate([np.ones(n, dtype=bool), np.zeros(m, dtype=bool)])[order]
    origin = int(people.assigned_day[0, 0]) - int(np.floor(people.arrival[0, 0]))
    arrival = arrival[order]
    day = np.floor(arrival).astype(np.int64)
    mine = eligible_answers(sc, n, streams)
    answers = {}
    for q in sc.protocol.eligibility:
        ok = np.concatenate([mine[q.id][0], other["answers"][q.id][0]])[order]
        pick = np.concatenate([mine[q.id][1], other["answers"][q.id][1]])[order]
        answers[q.id] = (ok, pick)
    return {
        "id": _ids("R-", arrival.size),
        "eligible": eligible,
        "assigned_day": origin + day,
        # referral times during working hours, 09:00-17:00, in arrival order within a day
        "seconds": np.floor((9 + 8 * (arrival - day)) * 3600).astype(np.int64),
        "elapsed": arrival - arrival[0] if arrival.size else arrival,  # days since the first referral
        "site": np.concatenate([people.site[:, 0], other["site"]])[order],
        "answers": answers,
        "strata": {k: np.concatenate([people.strata[k][:, 0], other["strata"][k]])[order] for k in people.strata},
    }


def late_levels(sc: Scenario) -> list[tuple[float, str, str]]:
    """(days after the first referral, stratum, level) of each site that joins late, in time order."""
    out = []
    for site, months in sc.referrals.joins.items():
        for name, src in sc.strata.items():
            if src.source == "site":
                out.append((months * DAYS_PER_MONTH, name, src.map[site]))
    return sorted(out)


def _ids(prefix: str, n: int) -> np.ndarray:
    """``prefix`` followed by 1..n zero-padded to at least six digits, as Python strings.

    The characters are laid out as fixed-width strings by a compiled kernel and turned into
    Python strings by numpy in one pass (3 million ids in 0.2 s, against 0.6-0.9 s for a
    Python loop formatting each number)."""
    from rjtrial.simulate import _kernels

    width = len(prefix) + max(6, len(str(n)))
    codes = np.empty((n, width), dtype=np.uint32)
    codes[:, : len(prefix)] = [ord(c) for c in prefix]
    _kernels.count_digits(codes, len(prefix))
    return codes.view(np.dtype(f"U{width}")).ravel().astype(object)


def _answer_codes(q, ok: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Index of each answer in ``q.answers``."""
    good = np.asarray([q.answers.index(a) for a in q.eligible_if], dtype=np.int64)
    bad = np.asarray([i for i, a in enumerate(q.answers) if a not in q.eligible_if] or [0], dtype=np.int64)
    return np.where(ok, good[np.minimum(pick, good.size - 1)], bad[np.minimum(pick, bad.size - 1)])


def _answer_strings(sc: Scenario, ref) -> dict[str, np.ndarray]:
    return {
        q.id: np.asarray(q.answers, dtype=object)[_answer_codes(q, *ref["answers"][q.id])]
        for q in sc.protocol.eligibility
    }


def _strata_strings(sc: Scenario, codes: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {name: np.asarray(sc.protocol.strata[name], dtype=object)[c] for name, c in codes.items()}


def _timestamps(ref) -> pd.Series:
    ns = (ref["assigned_day"] * 86400 + ref["seconds"]) * 1_000_000_000
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True))


# ----------------------------------------------------------------------------- allocation
def _enrol_in_registry(sc: Scenario, ref, schedule_seed: int, folder: Path, *, progress=None):
    """Enrol every referral through a new registry (its own sealed schedule, from ``schedule_seed``)."""
    from rjtrial.errors import RjtrialError
    from rjtrial.registry import Registry

    protocol = sc.protocol
    eligible = ref["eligible"]
    strata = _strata_strings(sc, ref["strata"])
    if protocol.randomisation.is_adaptive:
        needed = int(eligible.sum())
    else:
        rows = [dict(zip(strata, values)) for values in zip(*(v[eligible] for v in strata.values()))]
        keys = [protocol.sequence_key(row) for row in rows] if strata else ["all"] * int(eligible.sum())
        needed = max(pd.Series(keys).value_counts()) if keys else 0
    if needed > protocol.randomisation.capacity:
        raise ScenarioError(
            [
                f"protocol: randomisation.capacity {protocol.randomisation.capacity} is too small for this trial "
                f"({needed} allocations in one sealed sequence); raise it or randomise in memory"
            ],
            source=sc.source,
        )
    folder.mkdir(parents=True, exist_ok=True)
    late = late_levels(sc)
    initial = protocol
    if late:  # the protocol begins without the sites that join late; an amendment adds each when it joins
        data = protocol.to_dict()
        for _, name, level in late:
            data["strata"][name] = [lv for lv in data["strata"][name] if lv != level]
        initial = type(protocol).from_dict(data)
    reg = Registry.create(
        folder / "trial.db", initial, key_path=folder / "trial.key", seed=schedule_seed, by="simulate"
    )
    answers = _answer_strings(sc, ref)
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    times = [epoch + _dt.timedelta(seconds=int(x)) for x in ref["assigned_day"] * 86400 + ref["seconds"]]
    sites = np.asarray(list(sc.referrals.sites), dtype=object)[ref["site"]]
    arms = []
    for i, rid in enumerate(ref["id"]):
        # a site joins at the first referral made after its joining time, on the clock that drew
        # the sites (days since the first referral; referral times keep to working hours)
        while late and ref["elapsed"][i] >= late[0][0]:
            _, name, level = late.pop(0)
            _join(reg, name, level, times[i], schedule_seed)
        result = reg.enrol(
            rid,
            strata={k: v[i] for k, v in strata.items()},
            answers={k: v[i] for k, v in answers.items()},
            by=f"coordinator-{sites[i]}",
            at=times[i],
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
    amendment = Amendment.from_dict(
        {"amendment": {"id": f"{level}-joins".replace("_", "-"), "title": title}, "strata": {"add": {stratum: [level]}}}
    )
    reg.amend(amendment, by="trial manager", reason=f"{level.replace('_', ' ')} starts referring", at=at, seed=seed)


def _registry_participants(reg, ref, arm, held, delay) -> pd.DataFrame:
    """Record whether each conference was held (``record_event``), then export the participants."""
    eligible = ref["eligible"]
    ids = ref["id"][eligible]
    epoch = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    seconds = (ref["assigned_day"] * 86400 + ref["seconds"])[eligible] + np.rint(np.asarray(delay) * 86400).astype(
        np.int64
    )
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
    frame = pd.DataFrame(
        {
            "id": ref["id"][eligible],
            "arm": np.asarray(sc.protocol.arms, dtype=object)[arm],
            "sequence_number": np.arange(1, n + 1, dtype=np.int64),
            "randomised_at": at,
        }
    )
    frame["randomised_on"] = frame["randomised_at"].dt.tz_localize(None).dt.normalize()
    for name, values in _strata_strings(sc, {k: v[eligible] for k, v in ref["strata"].items()}).items():
        frame[name] = values
    treated = pd.array(held, dtype="boolean")
    treated[arm == 0] = pd.NA
    frame["treatment_received"] = treated
    frame["conference_held"] = treated.fillna(False).astype("int64")
    frame["withdrawn"] = np.zeros(n, dtype=bool)
    frame["receipt"] = np.full(n, None, dtype=object)
    return frame


def _add_covariates(frame: pd.DataFrame, sc: Scenario, people, records) -> pd.DataFrame:
    """``frame`` (made for it: changed in place) with the participants' covariates and death."""
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
    # the reasons of each referral: one number per combination of failed answers, worded once each
    combination = np.zeros(len(eligible), dtype=np.int64)
    questions = sc.protocol.eligibility
    for q in questions:
        ok, pick = ref["answers"][q.id]
        codes = _answer_codes(q, ok, pick)
        frame[f"answer_{q.id}"] = pd.Categorical.from_codes(codes, categories=list(q.answers))
        combination = combination * (len(q.answers) + 1) + np.where(ok, 0, codes + 1)
    seen, where = _distinct(combination)
    words = []
    for value in seen.tolist():
        tags = []
        for q in reversed(questions):
            value, code = divmod(value, len(q.answers) + 1)
            if code:
                tags.append(f"{q.id}={q.answers[code - 1]}")
        words.append("; ".join(reversed(tags)))
    frame["status"] = pd.Categorical.from_codes((~eligible).astype(np.int8), categories=["randomised", "ineligible"])
    frame["reasons"] = np.asarray(words, dtype=object)[where]
    arms = np.full(len(eligible), None, dtype=object)
    arms[eligible] = np.asarray(sc.protocol.arms, dtype=object)[arm]
    frame["arm"] = arms
    seq = np.zeros(len(eligible), dtype=np.int64)
    seq[eligible] = np.arange(1, int(eligible.sum()) + 1)
    frame["sequence_number"] = pd.arrays.IntegerArray(seq, mask=~eligible)  # Int64, missing when not randomised
    return frame


def _distinct(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``numpy.unique(codes, return_inverse=True)`` for non-negative codes of a small range (a
    referral's combination of answers), by counting instead of sorting millions of them."""
    if codes.size == 0 or int(codes.max()) > 1_000_000:
        seen, where = np.unique(codes, return_inverse=True)
        return seen, where.ravel()
    seen = np.flatnonzero(np.bincount(codes))
    position = np.zeros(int(seen[-1]) + 1, dtype=np.int64)
    position[seen] = np.arange(seen.size)
    return seen, position[codes]


# ----------------------------------------------------------------------------- records
def _record_frames(sc: Scenario, ids, records, *, sort: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The offences (by person, then offence date) and custody spells (by person, then start) tables."""
    from rjtrial.simulate import _kernels

    order = (
        _kernels.order_runs(records["who"], records["offence_day"], records["bounds"], len(ids))
        if sort
        else slice(None)
    )
    types = pd.Categorical.from_codes(records["type"][order], categories=list(sc.offence_types))
    offences = pd.DataFrame(
        {
            "id": ids[records["who"][order]],
            "offence_date": _days_to_datetime(records["offence_day"][order]),
            "conviction_date": _days_to_datetime(records["conviction_day"][order]),
            "offence_type": types,
        }
    )
    custody = pd.DataFrame(
        {  # already in order of person and start (the street clock's)
            "id": ids[records["custody_who"]],
            "start": _days_to_datetime(records["custody_start"]),
            "end": _days_to_datetime(records["custody_end"]),
        }
    )
    return offences, custody


# ----------------------------------------------------------------------------- victims
def _truncated_normal(gen, mean, sd, low, high, size):
    a, b = special.ndtr((low - mean) / sd), special.ndtr((high - mean) / sd)
    return mean + sd * special.ndtri(a + (b - a) * gen.random(size))


def _ies_r_shift(v) -> float:
    """Shift of the follow-up IES-R score for a held conference giving the stated risk ratio of
    a score at or above the threshold (after rounding to whole points), over the baseline
    distribution (truncated normal on 0-88, rounded)."""
    x = np.arange(0, 89)
    lo, hi = (
        special.ndtr((x - 0.5 - v.ies_r_baseline_mean) / v.ies_r_baseline_sd),
        special.ndtr((x + 0.5 - v.ies_r_baseline_mean) / v.ies_r_baseline_sd),
    )
    w = (hi - lo) / (hi - lo).sum()
    cut = v.ies_r_threshold - 0.5

    def above(shift):
        z = (cut - v.ies_r_followup_intercept - v.ies_r_followup_slope * x - shift) / v.ies_r_residual_sd
        return float(np.sum(w * special.ndtr(-z)))

    target = v.ies_r_risk_ratio_conference * above(0.0)
    if not 0.0 < target < 1.0:
        raise ScenarioError(
            [
                f"victims.ies_r_risk_ratio_conference: {v.ies_r_risk_ratio_conference} is impossible when "
                f"{above(0.0):.3f} of untreated victims are above the threshold"
            ]
        )
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
    follow = (
        v.ies_r_followup_intercept
        + v.ies_r_followup_slope * baseline
        + v.ies_r_residual_sd * gen.standard_normal(m)
        + shift * had
    )
    follow = np.clip(np.rint(follow), 0, 88)
    frame = pd.DataFrame(
        {
            "victim_id": _ids("V-", m),
            "id": ids[case],
            "arm": np.asarray(sc.protocol.arms, dtype=object)[arm[case]],
            "conference_held": had,
            "satisfied": satisfied,
            "would_recommend": recommend,
            "ies_r_baseline": np.clip(baseline, 0, 88).astype(np.int64),
            "ies_r_followup": follow.astype(np.int64),
        }
    )
    return frame, shift


# ----------------------------------------------------------------------------- dates
def _days_to_datetime(days: np.ndarray) -> np.ndarray:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype("datetime64[ns]")
