"""Verification of a registry: audit chain, commitments and every allocation.

:func:`verify` needs no key. It recomputes

1. the trial commitment from the stored protocol, schedule record, ciphertext and
   slot commitments (and compares it with the published value when given);
2. the audit log's hash chain, entry by entry, and the head that points at its end;
3. every enrolment: the referrals table must hold exactly the records the audit log
   logged, field for field; sequence numbers run 1, 2, 3... and each sequence's
   slots are used in order; the revealed value and nonce of each used slot must
   reproduce the slot's commitment fixed at initialisation; the arm must be the
   committed arm (or, for minimisation, the arm that the committed draw gives
   after the history before it);
4. every post-randomisation event against its audit entry;
5. every receipt given (``receipts=``): a receipt handed to an enroller is an
   anchor outside the database, so deleting the last enrolments and rewinding the
   chain — which no hash chain can detect by itself — is caught.

With the key it also checks each audit entry's HMAC (so a log rewritten by someone
without the key fails) and that the slot commitments are those of the sealed
schedule. Entries of the randomisation service (log-ins, account changes; see
:meth:`Registry.record_access`) carry no allocation: they are checked as links of
the chain, and each must be signed; the account tables must be exactly what the
account entries of the log say (:func:`rjtrial.registry.accounts.check`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from rjtrial._canonical import canonical_json
from rjtrial.errors import KeyFileError
from rjtrial.randomise import choose
from rjtrial.randomise.schedule import minimisation_probabilities_for
from rjtrial.registry import accounts, audit, seal, store

MAX_PROBLEMS = 50


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`; ``problems`` names the first bad record first."""

    ok: bool
    problems: tuple[str, ...]
    commitment: str
    audit_entries: int
    referrals: int
    randomised: int
    key_checked: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "commitment": self.commitment,
            "audit_entries": self.audit_entries,
            "referrals": self.referrals,
            "randomised": self.randomised,
            "key_checked": self.key_checked,
        }

    def format(self) -> str:
        state = "INTACT" if self.ok else "FAILED"
        lines = [
            f"verification {state}: {self.audit_entries} audit entries, {self.referrals} referrals, "
            f"{self.randomised} randomised; key {'checked' if self.key_checked else 'not given'}",
            f"commitment {self.commitment}",
        ]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def _slot_order(protocol, rows):
    order = {k: i for i, k in enumerate(protocol.sequence_keys())}
    return sorted(rows, key=lambda r: (order.get(r[0], len(order)), r[0], r[1]))


def recompute_commitment(registry, trial_row=None, slot_rows=None) -> str:
    """The commitment recomputed from what the store holds now."""
    with store.read_transaction(registry._engine) as conn:
        if trial_row is None:
            trial_row = conn.execute(select(store.trial)).mappings().one()
        if slot_rows is None:
            slot_rows = [tuple(r) for r in conn.execute(select(store.slots.c.sequence_key, store.slots.c.slot, store.slots.c.commitment))]
    digest = seal.slots_digest(_slot_order(registry.protocol, slot_rows))
    return seal.trial_commitment(trial_row["protocol"], trial_row["schedule"], trial_row["sealed"], digest)


def verify(registry, *, expected_commitment: str | None = None, receipts=()) -> VerifyResult:
    protocol = registry.protocol
    key = registry._key
    problems: list[str] = []
    with store.read_transaction(registry._engine) as conn:
        trial_rows = conn.execute(select(store.trial)).mappings().all()
        slot_rows = [tuple(r) for r in conn.execute(select(store.slots.c.sequence_key, store.slots.c.slot, store.slots.c.commitment))]
        audit_rows = conn.execute(select(store.audit).order_by(store.audit.c.seq)).mappings().all()
        referral_rows = {r["referral_id"]: dict(r) for r in conn.execute(select(store.referrals)).mappings()}
        event_rows = {r["audit_seq"]: dict(r) for r in conn.execute(select(store.events)).mappings()}
        head_rows = conn.execute(select(store.head)).mappings().all()
        user_rows, token_rows = accounts.read_rows(conn)  # the service's accounts (registry.accounts)

    # 1. the trial row and its commitment
    if len(trial_rows) != 1:
        problems.append(f"table {store.trial.name}: expected one trial row, found {len(trial_rows)}")
        return _result(False, problems, "", audit_rows, referral_rows, key)
    trial_row = trial_rows[0]
    commitment = trial_row["commitment"]
    recomputed = recompute_commitment(registry, trial_row, slot_rows)
    if recomputed != commitment:
        problems.append(
            f"table {store.trial.name}: the commitment does not match the protocol, sealed sequence and slot commitments "
            "(trial row or rj_slots edited)"
        )
    if expected_commitment is not None and expected_commitment.strip().lower() != commitment:
        problems.append(
            f"table {store.trial.name}: stored commitment {commitment} differs from the published {expected_commitment}"
        )
    slot_commitments = {(k, s): c for k, s, c in slot_rows}

    # 2. the chain and its head
    entries, chain_problems = audit.check_chain(audit_rows, key=key)
    problems += chain_problems
    if not entries or entries[0].action != "init":
        problems.append("audit log entry 1: missing or not the initialisation entry")
    elif entries[0].payload.get("commitment") != commitment:
        problems.append("audit log entry 1 (init): logs a different commitment from the trial row's")
    if len(head_rows) != 1:
        problems.append(f"table {store.head.name}: expected one row, found {len(head_rows)}")
    elif entries:
        head_row = head_rows[0]
        if head_row["audit_seq"] != entries[-1].seq or head_row["audit_hash"] != entries[-1].hash:
            problems.append(
                f"table {store.head.name}: points at audit entry {head_row['audit_seq']}, but the log ends at "
                f"entry {entries[-1].seq} (entries deleted or appended)"
            )

    # 3. enrolments against the referrals table, allocations against commitments
    arm_index = {arm: i for i, arm in enumerate(protocol.arms)}
    seen: set[str] = set()
    next_slot: dict[str, int] = {}
    # minimisation depends only on the counts by (strata, arm): keep them as they grow
    history_counts: dict[tuple[str, int], int] = {}
    history_strata: dict[str, Any] = {}
    sequence_number = 0
    randomised = 0
    last_at = ""
    for entry in entries:
        if entry.action == "enrolment":
            record = entry.payload
            rid = record.get("referral_id")
            where = f"referral {rid!r} (audit log entry {entry.seq})"
            if rid in seen:
                problems.append(f"{where}: enrolled twice in the audit log")
            seen.add(rid)
            row = referral_rows.get(rid)
            if row is None:
                problems.append(f"{where}: missing from table {store.referrals.name} (deleted)")
            else:
                try:
                    expected = {**_referral_row(record), "receipt": audit.receipt_for(entry.hash), "audit_seq": entry.seq}
                except (KeyError, TypeError):
                    expected = None
                    problems.append(f"{where}: malformed enrolment record in the audit log")
                if expected is not None:
                    changed = [c for c, v in expected.items() if row.get(c) != v]
                    if changed:
                        problems.append(
                            f"{where}: table {store.referrals.name} row differs from the audit log in column(s) "
                            f"{', '.join(changed)} (edited)"
                        )
            if record.get("status") != "randomised":
                continue
            randomised += 1
            sequence_number += 1
            if str(record.get("at")) < last_at:
                problems.append(f"{where}: randomised at {record.get('at')}, before the randomisation logged before it")
            last_at = str(record.get("at"))
            if record.get("sequence_number") != sequence_number:
                problems.append(f"{where}: sequence number {record.get('sequence_number')}, expected {sequence_number}")
            key_name, slot = record.get("sequence_key"), record.get("slot")
            expected_slot = next_slot.get(key_name, 0)
            if protocol.randomisation.is_adaptive:
                expected_slot = sequence_number - 1
            if slot != expected_slot:
                problems.append(f"{where}: used slot {slot} of sequence {key_name!r}, expected slot {expected_slot}")
            next_slot[key_name] = (slot if isinstance(slot, int) else expected_slot) + 1
            committed = slot_commitments.get((key_name, slot))
            value, reveal = record.get("value"), record.get("reveal")
            if committed is None:
                problems.append(f"{where}: slot {slot} of sequence {key_name!r} was never sealed")
            elif seal.slot_commitment(protocol.id, key_name, slot, str(value), str(reveal)) != committed:
                problems.append(f"{where}: the revealed allocation does not match the sealed commitment of its slot")
            arm = record.get("arm")
            if protocol.randomisation.is_adaptive:
                try:
                    draw = float.fromhex(value)
                    cells = list(history_counts)
                    probs = minimisation_probabilities_for(
                        protocol, [history_strata[text] for text, _ in cells], [a for _, a in cells],
                        record["strata"], multiplicity=[history_counts[c] for c in cells])
                    expected_arm = protocol.arms[choose(probs, draw)]
                except (TypeError, ValueError, KeyError):
                    expected_arm = None
                if arm != expected_arm:
                    problems.append(f"{where}: arm {arm!r} is not the arm its committed draw gives ({expected_arm!r})")
                strata = record.get("strata", {})
                text = json.dumps(strata, sort_keys=True, default=str)
                history_strata[text] = strata
                cell = (text, arm_index.get(arm, 0))
                history_counts[cell] = history_counts.get(cell, 0) + 1
            elif arm != value:
                problems.append(f"{where}: arm {arm!r} differs from the committed arm {value!r}")
        elif entry.action == "event":
            row = event_rows.pop(entry.seq, None)
            where = f"event (audit log entry {entry.seq})"
            if row is None:
                problems.append(f"{where}: missing from table {store.events.name} (deleted)")
            else:
                p = entry.payload
                expected = {
                    "referral_id": p.get("referral_id"),
                    "kind": p.get("kind"),
                    "detail": canonical_json(p.get("detail")),
                    "at": p.get("at"),
                    "by": p.get("by"),
                }
                changed = [c for c, v in expected.items() if row.get(c) != v]
                if changed:
                    problems.append(f"{where}: table {store.events.name} row differs in column(s) {', '.join(changed)} (edited)")
    for rid, row in referral_rows.items():
        if rid not in seen:
            problems.append(
                f"referral {rid!r} (table {store.referrals.name}): has no enrolment entry in the audit log (inserted)"
            )
    for seq in event_rows:
        problems.append(f"event with audit_seq {seq} (table {store.events.name}): has no audit log entry (inserted)")
    if len(head_rows) == 1:
        if head_rows[0]["sequence_number"] != sequence_number:
            problems.append(
                f"table {store.head.name}: next sequence number follows {head_rows[0]['sequence_number']}, "
                f"but the log randomised {sequence_number}"
            )
        if head_rows[0]["last_randomised_at"] != last_at:
            problems.append(
                f"table {store.head.name}: last_randomised_at is {head_rows[0]['last_randomised_at'] or 'empty'}, "
                f"but the last randomisation logged was at {last_at or 'none'}"
            )
        unsealed = any(e.action == "unseal" for e in entries)
        if bool(head_rows[0]["closed"]) != unsealed:
            problems.append(
                f"table {store.head.name}: enrolment is marked {'closed' if head_rows[0]['closed'] else 'open'}, "
                f"but the log {'has' if unsealed else 'has no'} unseal entry"
            )

    # 4. receipts handed out are external anchors: each must still be in the log
    logged = {audit.receipt_for(e.hash) for e in entries if e.action == "enrolment"}
    for receipt in receipts:
        if receipt.strip().upper() not in logged:
            problems.append(
                f"receipt {receipt.strip()}: no enrolment in the audit log has it (enrolment deleted or log rewritten)"
            )

    # 5. with the key: the slot commitments are those of the sealed schedule
    if key is not None:
        try:
            opened = seal.unseal_schedule(trial_row["sealed"], key, protocol.id)
        except KeyFileError as exc:
            problems.append(f"table {store.trial.name}: {exc}")
        else:
            keys = protocol.sequence_keys()
            capacity = protocol.randomisation.capacity
            for k, s, c in seal.slot_commitments(opened, protocol.id, protocol.arms, keys, capacity):
                if slot_commitments.get((k, s)) != c:
                    problems.append(
                        f"table {store.slots.name}: slot {s} of sequence {k!r} does not commit to the sealed allocation"
                    )
                    break

    # 6. the service's accounts: the tables must be the replay of the account entries
    problems += accounts.check(audit_rows, user_rows, token_rows, key_checked=key is not None)
    return _result(not problems, problems, commitment, audit_rows, referral_rows, key, randomised)


def _referral_row(record):
    from rjtrial.registry.core import referral_row

    return referral_row(record)


def _result(ok, problems, commitment, audit_rows, referral_rows, key, randomised=0) -> VerifyResult:
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
    return VerifyResult(
        ok=ok,
        problems=tuple(shown),
        commitment=commitment,
        audit_entries=len(audit_rows),
        referrals=len(referral_rows),
        randomised=randomised,
        key_checked=key is not None,
    )
