"""The demonstration trial: referrals randomised through a concealed SQLite registry.

``rjtrial demo`` creates a registry from the JRC London burglary example protocol,
generates a stream of referrals arriving over eighteen months at three sites
(some screened out by the eligibility questions), enrols every one through
:meth:`Registry.enrol`, records whether a conference was held for those assigned
to one, verifies the store, and writes the participants table and the CONSORT
counts. The referral stream's rates are illustrative assumptions, not published
figures; the generator of later issues (``rjtrial.simulate``) replaces them.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from rjtrial.errors import RjtrialError
from rjtrial.protocol import Protocol
from rjtrial.registry import Registry
from rjtrial.registry.reports import participants_csv

# Assumptions of the demo (illustrative, not from a publication).
SITE_SHARES = {"london": 0.5, "northumbria": 0.3, "thames_valley": 0.2}
OFFENCE_SHARES = {"property": 0.6, "violence": 0.4}
P_SCREENED = {"admitted": 0.05, "offender_consent": 0.10, "victim_consent": 0.15, "domestic_abuse": 0.04}
P_CONFERENCE_HELD = 0.85
INTAKE_DAYS = 540
START = datetime(2025, 1, 6, 9, 0, tzinfo=timezone.utc)


def default_protocol_path() -> Path:
    """The shipped example protocol (in the source tree's ``synthetic/protocols``)."""
    path = Path(__file__).resolve().parents[1] / "synthetic" / "protocols" / "jrc-london-burglary.toml"
    if not path.exists():
        raise RjtrialError(
            f"the demo protocol {path} is not here (rjtrial runs the demo from a source checkout); "
            "pass --protocol PROTOCOL.toml"
        )
    return path


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


def _referrals(protocol: Protocol, n: int, rng: np.random.Generator):
    """Yield (referral id, arrival time, strata, answers) in arrival order."""
    gaps = rng.exponential(INTAKE_DAYS / n, size=n)
    arrivals = np.cumsum(gaps)
    for i, day in enumerate(arrivals):
        strata = {}
        for name, levels in protocol.strata.items():
            shares = SITE_SHARES if name == "site" else OFFENCE_SHARES if name == "offence" else None
            p = None if shares is None else np.array([shares.get(level, 0.0) for level in levels])
            if p is not None and p.sum() > 0:
                p = p / p.sum()
            else:
                p = None
            strata[name] = str(rng.choice(levels, p=p))
        answers = {}
        for q in protocol.eligibility:
            screened = rng.random() < P_SCREENED.get(q.id, 0.05)
            not_eligible = [a for a in q.answers if a not in q.eligible_if]
            answers[q.id] = not_eligible[0] if screened and not_eligible else q.eligible_if[0]
        yield f"REF-{i + 1:04d}", START + timedelta(days=float(day)), strata, answers


def run_demo(
    output: str | Path = "rjtrial-demo",
    *,
    seed: int = 2026,
    n_referrals: int = 240,
    protocol_path: str | Path | None = None,
    progress: bool = True,
) -> dict:
    """Run the demonstration trial into ``output``; return a summary dict.

    Writes ``trial.db`` (the registry), ``trial.key`` (its key), ``participants.csv``,
    ``consort.json`` and ``summary.json``. An existing demo folder is replaced.
    """
    def say(message: str) -> None:
        if progress:
            print(message, flush=True)

    if n_referrals < 1:
        raise ValueError(f"n_referrals must be positive, got {n_referrals}")
    out = Path(output)
    if out.exists():
        marker = out / "summary.json"
        if not marker.exists() and any(out.iterdir()):
            raise RjtrialError(f"{out} exists and is not an rjtrial demo folder; choose another with -o")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    protocol = Protocol.from_toml(protocol_path or default_protocol_path())
    say(f"rjtrial demo: {protocol.name}")
    say(f"  [1/4] sealing the allocation sequence ({protocol.randomisation.method}, "
        f"{len(protocol.sequence_keys())} strata) in {out / 'trial.db'}")
    registry = Registry.create(out / "trial.db", protocol, key_path=out / "trial.key", seed=seed, by="demo")
    say(f"        commitment {registry.commitment}")

    say(f"  [2/4] enrolling {n_referrals} referrals as they arrive")
    statuses = {"randomised": 0, "ineligible": 0, "refused": 0}
    for i, (rid, at, strata, answers) in enumerate(_referrals(protocol, n_referrals, rng), start=1):
        result = registry.enrol(rid, strata=strata, answers=answers, by=f"coordinator-{strata.get('site', 'site')}", at=at)
        statuses[result.status] += 1
        if result.status == "randomised" and result.arm != protocol.arms[0]:
            held = rng.random() < P_CONFERENCE_HELD
            registry.record_event(
                rid,
                "treatment_received" if held else "treatment_not_received",
                by="facilitator",
                at=at + timedelta(days=float(rng.integers(7, 60))),
            )
        if progress and (i % 60 == 0 or i == n_referrals):
            print(f"        {i:>4}/{n_referrals} referrals: {statuses['randomised']} randomised, "
                  f"{statuses['ineligible']} screened out", flush=True)

    say("  [3/4] verifying the audit chain and every allocation")
    verification = registry.verify()
    say(f"        {'intact' if verification.ok else 'FAILED'}: {verification.audit_entries} audit entries")

    say("  [4/4] exporting participants and CONSORT counts")
    participants = registry.export(by="demo")
    (out / "participants.csv").write_text(participants_csv(participants), encoding="utf-8")
    consort = registry.consort()
    (out / "consort.json").write_text(json.dumps(consort.to_dict(), indent=2) + "\n", encoding="utf-8")
    registry.close()

    summary = {
        "trial_id": protocol.id,
        "commitment": registry.commitment,
        "verified": verification.ok,
        "referred": consort.referred,
        "screened_out": consort.screened_out,
        "randomised_by_arm": dict(consort.randomised_by_arm),
        "conference_held": consort.treatment_received_by_arm.get(protocol.arms[-1], 0),
        "seed": seed,
        "seconds": round(time.perf_counter() - started, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    if progress:
        print()
        print(consort.format())
        print()
        print(f"done in {summary['seconds']} s. Open:")
        print(f"  {out / 'participants.csv'}   the participants table (one row per randomised referral)")
        print(f"  {out / 'consort.json'}        the CONSORT flow counts")
        print(f"  {out / 'trial.db'}            the sealed registry; check it with:")
        print(f"      {_command_name()} verify --db {out / 'trial.db'}")
        sys.stdout.flush()
    return summary
