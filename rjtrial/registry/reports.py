"""What the registry reports: the participants table and the CONSORT flow counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

import pandas as pd
from sqlalchemy import select

from rjtrial.registry import store
from rjtrial.registry.amend import history
from rjtrial.registry.reads import decode_list, decode_map


def participants_frame(registry) -> pd.DataFrame:
    """One row per randomised referral, in sequence order.

    Columns
    -------
    id : str
        The referral id.
    arm : str
        The allocated arm (intention to treat: never changed by later events).
    sequence_number : int
        Order of random assignment, 1, 2, 3...
    randomised_at : datetime64[ns, UTC]
        Time of random assignment.
    randomised_on : datetime64[ns]
        Its date (the start of follow-up).
    <one column per stratum> : str
    treatment_received : boolean (nullable)
        From the latest ``treatment_received``/``treatment_not_received`` event; NA if none.
    conference_held : int
        1 when the latest such event is ``treatment_received``, else 0 (none recorded counts
        as not held, as the report counts it): ready for arithmetic and for
        :func:`rjtrial.compliance.cace`'s ``treated``.
    withdrawn : bool
        Whether a withdrawal was recorded.
    receipt : str
        The enrolment receipt.
    """
    with store.read_transaction(registry._engine) as conn:
        rows = (
            conn.execute(
                select(store.referrals)
                .where(store.referrals.c.status == "randomised")
                .order_by(store.referrals.c.sequence_number)
            )
            .mappings()
            .all()
        )
        event_rows = conn.execute(select(store.events).order_by(store.events.c.audit_seq)).mappings().all()
    treated: dict[str, bool] = {}
    withdrawn: set[str] = set()
    for ev in event_rows:
        if ev["kind"] == "treatment_received":
            treated[ev["referral_id"]] = True
        elif ev["kind"] == "treatment_not_received":
            treated[ev["referral_id"]] = False
        elif ev["kind"] == "withdrawal":
            withdrawn.add(ev["referral_id"])
    strata_names = list(registry.protocol.strata)
    records = []
    for r in rows:
        strata = decode_map(r["strata"])
        records.append(
            {
                "id": r["referral_id"],
                "arm": r["arm"],
                "sequence_number": r["sequence_number"],
                "randomised_at": r["at"],
                **{name: strata.get(name) for name in strata_names},
                "treatment_received": treated.get(r["referral_id"], pd.NA),
                "withdrawn": r["referral_id"] in withdrawn,
                "receipt": r["receipt"],
            }
        )
    columns = [
        "id",
        "arm",
        "sequence_number",
        "randomised_at",
        *strata_names,
        "treatment_received",
        "withdrawn",
        "receipt",
    ]
    frame = pd.DataFrame.from_records(records, columns=columns)
    frame["randomised_at"] = pd.to_datetime(frame["randomised_at"], utc=True, format="ISO8601")
    frame.insert(4, "randomised_on", frame["randomised_at"].dt.tz_localize(None).dt.normalize())
    frame["sequence_number"] = frame["sequence_number"].astype("int64")
    frame["treatment_received"] = frame["treatment_received"].astype("boolean")
    frame.insert(
        frame.columns.get_loc("treatment_received") + 1,
        "conference_held",
        frame["treatment_received"].fillna(False).astype("int64"),
    )
    frame["withdrawn"] = frame["withdrawn"].astype(bool)
    frame.attrs["trial_id"] = registry.trial_id
    frame.attrs["commitment"] = registry.commitment
    return frame


def participants_csv(frame: pd.DataFrame) -> str:
    """The participants table as CSV: ``randomised_at`` in ISO 8601 UTC, ``randomised_on`` a date."""
    out = frame.copy()
    out["randomised_at"] = out["randomised_at"].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    out["randomised_on"] = out["randomised_on"].dt.strftime("%Y-%m-%d")
    return out.to_csv(index=False)


@dataclass(frozen=True)
class ConsortCounts:
    """The CONSORT flow as the registry counts it.

    ``referred`` counts every referral recorded (randomised or screened out);
    ``screened_out_by_reason`` counts each failed eligibility answer (a referral
    may fail several); ``refusals`` counts enrolment attempts refused (invalid or
    duplicate input), which are not referrals.
    """

    trial_id: str
    arms: tuple[str, ...]
    referred: int
    screened_out: int
    screened_out_by_reason: Mapping[str, int]
    refusals: int
    randomised: int
    randomised_by_arm: Mapping[str, int]
    treatment_received_by_arm: Mapping[str, int] = field(default_factory=dict)
    treatment_not_received_by_arm: Mapping[str, int] = field(default_factory=dict)
    treatment_unknown_by_arm: Mapping[str, int] = field(default_factory=dict)
    withdrawn_by_arm: Mapping[str, int] = field(default_factory=dict)
    #: The protocol amendments, in order (:meth:`rjtrial.registry.amend.AmendmentRecord.to_dict`).
    amendments: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "trial_id": self.trial_id,
            "arms": list(self.arms),
            "referred": self.referred,
            "screened_out": self.screened_out,
            "screened_out_by_reason": dict(self.screened_out_by_reason),
            "refusals": self.refusals,
            "randomised": self.randomised,
            "randomised_by_arm": dict(self.randomised_by_arm),
            "treatment_received_by_arm": dict(self.treatment_received_by_arm),
            "treatment_not_received_by_arm": dict(self.treatment_not_received_by_arm),
            "treatment_unknown_by_arm": dict(self.treatment_unknown_by_arm),
            "withdrawn_by_arm": dict(self.withdrawn_by_arm),
            "amendments": [dict(a) for a in self.amendments],
        }

    def format(self) -> str:
        width = max(len(a) for a in self.arms)
        lines = [
            f"CONSORT flow: {self.trial_id}",
            f"  referred                 {self.referred}",
            f"  screened out             {self.screened_out}",
        ]
        for reason, n in sorted(self.screened_out_by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
            lines.append(f"    {reason:<30} {n}")
        lines.append(f"  randomised               {self.randomised}")
        for arm in self.arms:
            lines.append(
                f"    {arm:<{width}}  {self.randomised_by_arm.get(arm, 0):>5} randomised, "
                f"{self.treatment_received_by_arm.get(arm, 0)} treated, "
                f"{self.treatment_not_received_by_arm.get(arm, 0)} not treated, "
                f"{self.treatment_unknown_by_arm.get(arm, 0)} not yet recorded, "
                f"{self.withdrawn_by_arm.get(arm, 0)} withdrawn"
            )
        if self.refusals:
            lines.append(f"  (enrolment attempts refused for invalid input: {self.refusals})")
        if self.amendments:
            lines.append("  protocol amendments:")
        for a in self.amendments:
            lines.append(f"    amendment {a['number']} ({a['id']}): {'; '.join(a['changes'])}")
            lines.append(f"      effective {a['effective_at']}, by {a['by']}: {a['reason']}")
        return "\n".join(lines)


def consort_counts(registry) -> ConsortCounts:
    """CONSORT flow counts of a registry (see :meth:`rjtrial.registry.Registry.consort`)."""
    with store.read_transaction(registry._engine) as conn:
        rows = conn.execute(
            select(
                store.referrals.c.referral_id,
                store.referrals.c.status,
                store.referrals.c.arm,
                store.referrals.c.reasons,
            )
        ).all()
        refusals = conn.execute(select(store.audit.c.seq).where(store.audit.c.action == "refusal")).all()
    frame = participants_frame(registry)
    arms = registry.protocol.arms
    reasons: Counter[str] = Counter()
    screened = 0
    for r in rows:
        if r.status == "ineligible":
            screened += 1
            reasons.update(decode_list(r.reasons))
    by_arm = Counter(frame["arm"])
    treated = frame["treatment_received"]
    return ConsortCounts(
        trial_id=registry.trial_id,
        arms=arms,
        referred=len(rows),
        screened_out=screened,
        screened_out_by_reason=dict(reasons),
        refusals=len(refusals),
        randomised=len(frame),
        randomised_by_arm={a: int(by_arm.get(a, 0)) for a in arms},
        treatment_received_by_arm={a: int((treated[frame["arm"] == a] == True).sum()) for a in arms},  # noqa: E712
        treatment_not_received_by_arm={a: int((treated[frame["arm"] == a] == False).sum()) for a in arms},  # noqa: E712
        treatment_unknown_by_arm={a: int(treated[frame["arm"] == a].isna().sum()) for a in arms},
        withdrawn_by_arm={a: int(frame.loc[frame["arm"] == a, "withdrawn"].sum()) for a in arms},
        amendments=tuple(history(registry)),
    )
