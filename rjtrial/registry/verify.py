"""Verification of a registry: audit chain, signatures, commitments and every record.

:func:`verify` runs at one of two levels, plus two optional anchors:

**keyless** (anyone with a copy of the database) recomputes

1. the trial commitment from the stored protocol, schedule record, ciphertext, slot
   commitments and audit public key;
2. the audit log's hash chain, entry by entry, each entry's Ed25519 signature under
   the trial's audit public key (only an export or an account change made without
   the key may be unsigned), and the head that points at the chain's end;
3. every enrolment against the referrals table (field for field) and against the
   protocol: a canonical referral id, unique once normalised; strata that exist;
   answers to every question, eligible for a randomised referral and giving the
   recorded reasons for an ineligible one; the sequence key (slot) of its strata;
   sequence numbers 1, 2, 3...; each sequence's slots used in order; the revealed
   value and nonce reproduce the slot's commitment fixed at initialisation; the
   arm is the committed arm (for minimisation: the arm its committed draw gives
   after the history before it);
4. times: no entry logged before the one before it or in the future (beyond
   :data:`CLOCK_SKEW`), no record dated after the entry that logged it,
   randomisations in time order, events not before their referral's randomisation;
5. every post-randomisation event against its audit entry; ``closed`` against the
   unseal entry;
6. protocol amendments (:mod:`rjtrial.registry.amend`): each amendment's protocol is the
   one before it with the amendment applied, its sealed segment's slot commitments are
   in ``rj_slots``, its commitment chains to the one before; records after it follow the
   amended protocol (closed levels, new questions, slots sealed by then, not dated before
   it took effect); no slot outside the first schedule and the segments;
7. blinding (:mod:`rjtrial.registry.blinding`): an unblinding opens the blinding's
   commitment and names an analysis plan frozen before it;
8. personal fields and erasures (:mod:`rjtrial.registry.retention`): fields present match
   their salted digests, fields absent were erased by an erasure entry after them, which
   reaches no record dated on or after its retention date.

**with the published commitment** (``expected_commitment=``): the stored commitment
is the one published at registration, so the protocol, the slot commitments and the
audit public key are those fixed before the first referral: a store re-signed under a
replaced key fails. The commitment of an amendment, published with it, is accepted too:
it chains to every commitment before it.

**with receipts** (``receipts=``): each receipt handed to an enroller is still in the
log. Receipts are the only anchor against *truncation* (deleting the last entries and
rewinding the head), which no chain or signature can detect by itself.

**keyed** (``key``): also each entry's HMAC; that the audit public key is the one
derived from the key; that the slot commitments are those of the sealed schedule and of
each amendment's sealed segment, which regenerates from its seed; the sealed blinding
mapping opens its commitment; and, when the key file records that it unsealed the
trial, that the unseal entry is still in the log.

Entries of the randomisation service (log-ins, account changes; see
:meth:`Registry.record_access`) carry no allocation: they are checked as links of the
chain and by their signatures; the account tables must be exactly what the account
entries of the log say (:func:`rjtrial.registry.accounts.check`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import select

from rjtrial._canonical import canonical_json
from rjtrial.errors import KeyFileError
from rjtrial.randomise import choose
from rjtrial.randomise.schedule import minimisation_probabilities_for
from rjtrial.registry import accounts, amend, audit, blinding, retention, seal, segments, store

MAX_PROBLEMS = 50
#: Clock difference tolerated between the writers of one store (and the verifier).
CLOCK_SKEW = timedelta(minutes=5)

#: What each level of ``verify`` detects (printed by ``rjtrial verify --help``).
LEVELS_HELP = """\
levels of check (the level run is printed with the result):
  keyless      (default; anyone with a copy of the database) the hash chain and
               every entry's Ed25519 signature under the trial's public key; every
               record against the protocol and the sealed slot commitments (strata
               that exist and match the sequence the slot belongs to; answers that
               make a randomised referral eligible; slots used in order; the arm the
               committed value gives); canonical referral ids, unique once
               normalised; times in order, none in the future; each protocol
               amendment (its amended protocol, sealed segment, chained commitment)
               and the records after it against the amended protocol; an unblinding
               after a frozen analysis plan; personal data erased only by an audited
               erasure before its retention date. Detects any edit, insertion,
               deletion or reordering made without the key, even a log rewritten with
               recomputed hashes. Cannot detect: a whole store forged under a new
               signing key (use --commitment), or the last entries cut off (use
               --receipt).
  --commitment the stored commitment is the one published at registration (or an
               amendment's, published with it): the protocol, slot commitments and
               signing key are those fixed before the first referral, so a forged
               store fails too.
  --receipt    each receipt handed out at enrolment is still in the log: the only
               check that detects truncation (the last enrolments deleted and the
               head rewound).
  --key        (keyed; the trial statistician) also each entry's HMAC, that the
               signing key and the slot commitments are those of the sealed schedule
               and of each amendment's segment (which regenerates from its seed), the
               sealed blinding, and that a trial this key file unsealed has not been
               reopened.
"""


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`; ``problems`` names the first bad record first.

    ``key_checked``, ``commitment_checked`` and ``receipts_checked`` say which level of
    check ran (:attr:`level`); see the module notes for what each detects.
    """

    ok: bool
    problems: tuple[str, ...]
    commitment: str
    audit_entries: int
    referrals: int
    randomised: int
    key_checked: bool
    commitment_checked: bool = False
    receipts_checked: int = 0
    amendments: int = 0

    @property
    def level(self) -> str:
        """The checks run, e.g. ``"keyless + published commitment + 3 receipts"``."""
        parts = ["keyed" if self.key_checked else "keyless"]
        if self.commitment_checked:
            parts.append("published commitment")
        if self.receipts_checked:
            parts.append(f"{self.receipts_checked} receipt{'s' if self.receipts_checked != 1 else ''}")
        return " + ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "commitment": self.commitment,
            "audit_entries": self.audit_entries,
            "referrals": self.referrals,
            "randomised": self.randomised,
            "key_checked": self.key_checked,
            "commitment_checked": self.commitment_checked,
            "receipts_checked": self.receipts_checked,
            "amendments": self.amendments,
            "level": self.level,
        }

    def format(self) -> str:
        state = "INTACT" if self.ok else "FAILED"
        cannot = []
        if not self.commitment_checked:
            cannot.append("a store forged under a new signing key (give --commitment)")
        if not self.receipts_checked:
            cannot.append("the last entries cut off (give --receipt)")
        lines = [
            f"verification {state}: {self.audit_entries} audit entries, {self.referrals} referrals, "
            f"{self.randomised} randomised"
            + (
                f", {self.amendments} protocol amendment{'s' if self.amendments != 1 else ''}"
                if self.amendments
                else ""
            ),
            f"checks run: {self.level}; key {'checked' if self.key_checked else 'not given'}",
        ]
        if cannot:
            lines.append(f"not detectable at this level: {'; '.join(cannot)}")
        lines.append(f"commitment {self.commitment}")
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def _slot_order(protocol, rows):
    order = {k: i for i, k in enumerate(protocol.sequence_keys())}
    return sorted(rows, key=lambda r: (order.get(r[0], len(order)), r[0], r[1]))


def initial_slots(protocol) -> set[tuple[str, int]]:
    """The slots sealed at initialisation (amendments seal more, in segments)."""
    return {(k, s) for k in protocol.sequence_keys() for s in range(protocol.randomisation.capacity)}


def recompute_commitment(registry, trial_row=None, slot_rows=None) -> str:
    """The commitment recomputed from what the store holds now (the slots sealed at initialisation)."""
    with store.read_transaction(registry._engine) as conn:
        if trial_row is None:
            trial_row = conn.execute(select(store.trial)).mappings().one()
        if slot_rows is None:
            slot_rows = [
                tuple(r)
                for r in conn.execute(select(store.slots.c.sequence_key, store.slots.c.slot, store.slots.c.commitment))
            ]
    protocol = registry.initial_protocol
    first = initial_slots(protocol)
    digest = seal.slots_digest(_slot_order(protocol, [r for r in slot_rows if (r[0], r[1]) in first]))
    return seal.trial_commitment(
        trial_row["protocol"], trial_row["schedule"], trial_row["sealed"], digest, trial_row["audit_public_key"]
    )


def _time(value) -> datetime | None:
    """A stored ISO-8601 time as an aware datetime, or None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def verify(registry, *, expected_commitment: str | None = None, receipts=()) -> VerifyResult:
    """Check a registry's audit chain, sealed slots and allocations (:meth:`rjtrial.registry.Registry.verify`)."""
    protocol = registry.initial_protocol
    key = registry._key
    receipts = [r for r in receipts]
    checked: dict[str, Any] = {"commitment_checked": expected_commitment is not None, "receipts_checked": len(receipts)}
    rows = _read(registry)
    # 1. the trial row and its commitment
    if len(rows.trial) != 1:
        problems = [f"table {store.trial.name}: expected one trial row, found {len(rows.trial)}"]
        return _result(problems, "", rows.audit, rows.referrals, key, 0, checked)
    trial_row = rows.trial[0]
    commitment = trial_row["commitment"]
    problems = _trial_checks(registry, trial_row, rows.slots, key)
    slot_commitments = {(k, s): c for k, s, c in rows.slots}
    # 2. the chain, its signatures and its head
    entries, chain_problems = _chain_checks(rows, trial_row, key)
    problems += chain_problems
    # 3-5. every entry against the protocol, the tables and the clock
    records = _Records(protocol, slot_commitments, rows.referrals, rows.events, commitment)
    for entry in entries:
        records.check(entry)
    problems += records.problems
    problems += records.leftovers()
    problems += blinding.check_entries(entries, protocol, key=key)
    problems += retention.check(entries, rows.personal)
    problems += _commitment_slot_and_head_checks(
        records, protocol, slot_commitments, rows.head, commitment, expected_commitment
    )
    problems += _receipt_checks(entries, receipts)
    # with the key: the slot commitments are those of the sealed schedule; an unseal stays
    if key is not None:
        problems += _keyed_checks(registry, trial_row, slot_commitments, {e.seq: e for e in entries})
        problems += _keyed_segment_checks(registry, records.amendment_records, slot_commitments)
    checked["amendments"] = len(records.amendment_records)
    # the service's accounts: the tables must be the replay of the account entries of the log
    problems += accounts.check(rows.audit, rows.users, rows.tokens, key_checked=key is not None)
    return _result(problems, commitment, rows.audit, rows.referrals, key, records.randomised, checked)


@dataclass(frozen=True)
class _Rows:
    """Every table of the store, read in one transaction."""

    trial: list
    slots: list
    audit: list
    referrals: dict
    events: dict
    head: list
    users: list
    tokens: list
    personal: Any


def _read(registry) -> _Rows:
    with store.read_transaction(registry._engine) as conn:
        trial_rows = conn.execute(select(store.trial)).mappings().all()
        slot_rows = [
            tuple(r)
            for r in conn.execute(select(store.slots.c.sequence_key, store.slots.c.slot, store.slots.c.commitment))
        ]
        audit_rows = conn.execute(select(store.audit).order_by(store.audit.c.seq)).mappings().all()
        referral_rows = {r["referral_id"]: dict(r) for r in conn.execute(select(store.referrals)).mappings()}
        event_rows = {r["audit_seq"]: dict(r) for r in conn.execute(select(store.events)).mappings()}
        head_rows = conn.execute(select(store.head)).mappings().all()
        user_rows, token_rows = accounts.read_rows(conn)  # the service's accounts (registry.accounts)
        personal_rows = retention.read_rows(conn)
    return _Rows(
        list(trial_rows),
        slot_rows,
        list(audit_rows),
        referral_rows,
        event_rows,
        list(head_rows),
        list(user_rows),
        list(token_rows),
        personal_rows,
    )


def _trial_checks(registry, trial_row, slot_rows, key) -> list[str]:
    """Step 1: the commitment recomputed from the trial row and the slots; the audit key's origin."""
    problems = []
    if recompute_commitment(registry, trial_row, slot_rows) != trial_row["commitment"]:
        problems.append(
            f"table {store.trial.name}: the commitment does not match the protocol, sealed sequence, slot commitments "
            "and audit public key (trial row or rj_slots edited)"
        )
    if key is not None and trial_row["audit_public_key"] != seal.public_key(key):
        problems.append(
            f"table {store.trial.name}: the audit public key is not the one derived from the trial key (replaced)"
        )
    return problems


def _chain_checks(rows: _Rows, trial_row, key):
    """Step 2: the hash chain and its signatures, its first entry, and the head pointing at its end."""
    public_key = trial_row["audit_public_key"]
    entries, problems = audit.check_chain(rows.audit, key=key, public_key=public_key)
    if not entries or entries[0].action != "init":
        problems.append("audit log entry 1: missing or not the initialisation entry")
    elif entries[0].payload.get("commitment") != trial_row["commitment"]:
        problems.append("audit log entry 1 (init): logs a different commitment from the trial row's")
    elif entries[0].payload.get("audit_public_key") != public_key:
        problems.append("audit log entry 1 (init): logs a different audit public key from the trial row's")
    if len(rows.head) != 1:
        problems.append(f"table {store.head.name}: expected one row, found {len(rows.head)}")
    elif entries:
        head_row = rows.head[0]
        if head_row["audit_seq"] != entries[-1].seq or head_row["audit_hash"] != entries[-1].hash:
            problems.append(
                f"table {store.head.name}: points at audit entry {head_row['audit_seq']}, but the log ends at "
                f"entry {entries[-1].seq} (entries deleted or appended)"
            )
    return entries, problems


def _commitment_slot_and_head_checks(
    records, protocol, slot_commitments, head_rows, commitment, expected_commitment
) -> list[str]:
    """The published commitment (the trial's or an amendment's), no unsealed slot, and the head's
    counters equal to what the log replayed."""
    problems = []
    if expected_commitment is not None and expected_commitment.strip().lower() not in records.chain_commitments:
        problems.append(
            f"table {store.trial.name}: stored commitment {commitment} differs from the published {expected_commitment}"
            + (
                f" (nor is it the commitment of any of the {len(records.chain_commitments) - 1} amendments)"
                if len(records.chain_commitments) > 1
                else ""
            )
        )
    sealed = initial_slots(protocol) | records.segment_slots
    extra = sorted(k for k in slot_commitments if k not in sealed)
    if extra:
        problems.append(
            f"table {store.slots.name}: slot {extra[0][1]} of sequence {extra[0][0]!r} belongs to no sealed schedule "
            f"or amendment segment (inserted{f'; {len(extra)} such slots' if len(extra) > 1 else ''})"
        )
    if len(head_rows) != 1:
        return problems
    head = head_rows[0]
    if head["sequence_number"] != records.sequence_number:
        problems.append(
            f"table {store.head.name}: next sequence number follows {head['sequence_number']}, "
            f"but the log randomised {records.sequence_number}"
        )
    if head["last_randomised_at"] != records.last_logged_at:
        problems.append(
            f"table {store.head.name}: last_randomised_at is {head['last_randomised_at'] or 'empty'}, "
            f"but the last randomisation logged was at {records.last_logged_at or 'none'}"
        )
    unsealed = bool(records.unseals)
    if bool(head["closed"]) != unsealed:
        problems.append(
            f"table {store.head.name}: enrolment is marked {'closed' if head['closed'] else 'open'}, "
            f"but the log {'has' if unsealed else 'has no'} unseal entry"
        )
    return problems


def _receipt_checks(entries, receipts) -> list[str]:
    """Receipts handed out are external anchors: each must still be in the log."""
    problems = []
    logged = {audit.receipt_for(e.hash) for e in entries if e.action == "enrolment"}
    restored = {
        r: e.seq
        for e in entries
        if e.action == "data_access" and e.payload.get("what") == "restore"
        for r in ((e.payload.get("detail") or {}).get("missing_receipts") or [])
    }
    for line in receipts:
        receipt, label = audit.split_receipt(line)
        if receipt not in logged:
            name = f"receipt {receipt}" + (f" ({label})" if label else "")
            if receipt in restored:
                problems.append(
                    f"{name}: not in the log: an allocation made after the backup this store was restored from "
                    f"(audit entry {restored[receipt]}); re-enter it"
                )
            else:
                problems.append(f"{name}: no enrolment in the audit log has it (enrolment deleted or log rewritten)")
    return problems


def _keyed_segment_checks(registry, amendment_records, slot_commitments) -> list[str]:
    """With the key: each amendment's segment opens, commits to its slots and regenerates from its seed."""
    protocol = registry.initial_protocol
    problems = []
    for record in amendment_records:
        where = f"audit log entry {record.audit_seq} (amendment {record.number})"
        try:
            segment = segments.open_segment(record.payload["sealed"], registry._key, protocol.id, record.number)
        except KeyFileError as exc:
            problems.append(f"{where}: {exc}")
            continue
        if [list(r) for r in segment.ranges] != record.payload["segment"]["ranges"]:
            problems.append(f"{where}: its sealed segment covers other slots than its public record says")
        for k, s, c in segments.segment_slot_commitments(segment, protocol.id, protocol.arms):
            if slot_commitments.get((k, s)) != c:
                problems.append(
                    f"table {store.slots.name}: slot {s} of sequence {k!r} does not commit to the "
                    f"allocation sealed by amendment {record.number}"
                )
                break
        if not segments.regenerated_matches(segment, record.protocol):
            problems.append(f"{where}: its sealed segment does not regenerate from its seed")
    return problems


def _keyed_checks(registry, trial_row, slot_commitments, entries_by_seq) -> list[str]:
    protocol = registry.initial_protocol
    problems = []
    try:
        opened = seal.unseal_schedule(trial_row["sealed"], registry._key, protocol.id)
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
    mark = registry._unseal_mark()
    if mark is not None:
        entry = entries_by_seq.get(mark.seq) if mark.seq is not None else None
        if entry is None or entry.action != "unseal" or (mark.hash is not None and entry.hash != mark.hash):
            where = f"audit log entry {mark.seq}" if mark.seq is not None else "an audit log entry"
            problems.append(
                f"the key file records that it unsealed the trial at {where}, but the log has no such unseal entry "
                "(deleted: the trial was reopened after its sequence was revealed)"
            )
    return problems


class _Records:
    """Walks the audit entries in order, checking each record; collects the problems."""

    def __init__(self, protocol, slot_commitments, referral_rows, event_rows, commitment=""):
        self.protocol = protocol  # the protocol in force: the trial's, then each amendment's
        self.slot_commitments = slot_commitments
        self.referral_rows = referral_rows
        self.event_rows = dict(event_rows)
        self.problems: list[str] = []
        self.arm_index = {arm: i for i, arm in enumerate(protocol.arms)}
        self.seen: dict[str, datetime | None] = {}  # referral id -> randomised at (None: ineligible)
        self.keys_seen: dict[str, str] = {}  # normalised id -> id
        self.next_slot: dict[str, int] = {}
        # minimisation depends only on the counts by (strata, arm): keep them as they grow
        self.history_counts: dict[tuple[str, int], int] = {}
        self.history_strata: dict[str, Any] = {}
        self.sequence_number = 0
        self.randomised = 0
        self.last_logged_at = ""  # the last randomisation's time as logged (the head must hold it)
        self.last_valid_at: datetime | None = None  # the last one not dated in the future
        self.previous_entry_at: datetime | None = None
        self.unseals: list[int] = []
        self.now = datetime.now(timezone.utc)
        # amendments: the chain of commitments, closed levels, the slots sealed so far
        self.chain_commitments = [commitment]
        self.closed: dict[str, tuple[str, ...]] = {}
        self.sealed_to = {k: protocol.randomisation.capacity for k in protocol.sequence_keys()}
        self.segment_slots: set[tuple[str, int]] = set()
        self.amendment_records: list = []
        self.amended_at: datetime | None = None
        self.chain_broken = False

    def check(self, entry) -> None:
        logged_at = self._entry_time(entry)
        if entry.action == "enrolment":
            self._enrolment(entry, logged_at)
        elif entry.action == "event":
            self._event(entry, logged_at)
        elif entry.action == "unseal":
            self.unseals.append(entry.seq)
        elif entry.action == amend.ACTION:
            self._amendment(entry, logged_at)

    # ---------------------------------------------------------------- amendments
    def _amendment(self, entry, logged_at) -> None:
        number = len(self.amendment_records) + 1
        where = f"audit log entry {entry.seq} (amendment {number})"
        if self.chain_broken:
            self.problems.append(f"{where}: follows a broken amendment")
            return
        if self.unseals:
            self.problems.append(f"{where}: logged after the trial was unsealed")
        before = self.protocol
        try:
            record = amend.parse_record(
                entry.seq, entry.at, entry.payload, before, self.closed, self.chain_commitments[-1]
            )
            if record.number != number:
                raise ValueError(f"it is numbered {record.number}, expected {number}")
            ranges = [tuple(r) for r in entry.payload["segment"]["ranges"]]
        except (ValueError, KeyError, TypeError) as exc:
            self.problems.append(f"{where}: {exc}")
            self.chain_broken = True
            return
        if ranges != [tuple(r) for r in segments.segment_ranges(before, record.protocol)]:
            self.problems.append(f"{where}: its sealed segment does not cover exactly the slots the amendment needs")
        rows = [(k, s, self.slot_commitments.get((k, s))) for k, a, b in ranges for s in range(a, b)]
        if (
            any(c is None for _, _, c in rows)
            or seal.slots_digest(rows) != entry.payload.get("slots_sha256")
            or len(rows) != entry.payload.get("slots")
        ):
            self.problems.append(
                f"{where}: the slot commitments of its sealed segment in table {store.slots.name} are not those it "
                "logged (edited, deleted or inserted)"
            )
        effective = _time(record.effective_at)
        if effective is None:
            self.problems.append(
                f"{where}: effective time {record.effective_at!r} is not an ISO-8601 time with a time zone"
            )
        else:
            if logged_at is not None and effective > logged_at + CLOCK_SKEW:
                self.problems.append(f"{where}: effective {record.effective_at}, after it was logged ({entry.at})")
            if self.last_valid_at is not None and effective < self.last_valid_at:
                self.problems.append(
                    f"{where}: effective {record.effective_at}, before the last randomisation logged before it "
                    f"({self.last_valid_at.isoformat()})"
                )
            if self.amended_at is not None and effective < self.amended_at:
                self.problems.append(f"{where}: effective {record.effective_at}, before the amendment before it")
            self.amended_at = effective
        for k, a, b in ranges:
            self.sealed_to[k] = max(self.sealed_to.get(k, 0), b)
            self.segment_slots.update((k, s) for s in range(a, b))
        self.amendment_records.append(record)
        self.chain_commitments.append(record.commitment)
        self.protocol, self.closed = record.protocol, dict(record.closed)

    # ---------------------------------------------------------------------- time
    def _entry_time(self, entry) -> datetime | None:
        where = f"audit log entry {entry.seq} ({entry.action})"
        at = _time(entry.at)
        if at is None:
            self.problems.append(f"{where}: logged at {entry.at!r}, not an ISO-8601 time with a time zone")
            return None
        if at > self.now + CLOCK_SKEW:
            self.problems.append(f"{where}: logged at {entry.at}, in the future (verified at {self.now.isoformat()})")
        if self.previous_entry_at is not None and at < self.previous_entry_at - CLOCK_SKEW:
            self.problems.append(
                f"{where}: logged at {entry.at}, before the entry before it ({self.previous_entry_at.isoformat()}): "
                "back-dated or reordered"
            )
        self.previous_entry_at = max(at, self.previous_entry_at) if self.previous_entry_at else at
        return at

    # ---------------------------------------------------------------- enrolments
    def _enrolment(self, entry, logged_at) -> None:
        from rjtrial.registry.core import is_referral_id, referral_key, referral_row

        record = entry.payload
        rid = record.get("referral_id")
        where = f"referral {rid!r} (audit log entry {entry.seq})"
        problems = self.problems
        if not is_referral_id(rid):
            problems.append(
                f"{where}: not a canonical referral id (letters, digits, '_ . : / -'; no spaces or line breaks)"
            )
        if rid in self.seen:
            problems.append(f"{where}: enrolled twice in the audit log")
        elif isinstance(rid, str):
            normalised = referral_key(rid)
            if normalised in self.keys_seen:
                problems.append(
                    f"{where}: the same referral as {self.keys_seen[normalised]!r} once normalised (enrolled twice)"
                )
            self.keys_seen.setdefault(normalised, rid)
        row = self.referral_rows.get(rid)
        if row is None:
            problems.append(f"{where}: missing from table {store.referrals.name} (deleted)")
        else:
            try:
                expected = {**referral_row(record), "receipt": audit.receipt_for(entry.hash), "audit_seq": entry.seq}
            except (KeyError, TypeError, ValueError):
                expected = None
                problems.append(f"{where}: malformed enrolment record in the audit log")
            if expected is not None:
                changed = [c for c, v in expected.items() if row.get(c) != v]
                if changed:
                    problems.append(
                        f"{where}: table {store.referrals.name} row differs from the audit log in column(s) "
                        f"{', '.join(changed)} (edited)"
                    )
        status = record.get("status")
        at = _time(record.get("at"))
        self.seen[rid] = at if status == "randomised" else None
        strata, answers = record.get("strata"), record.get("answers")
        if not isinstance(strata, dict) or not isinstance(answers, dict):
            problems.append(f"{where}: strata and answers must be tables of text")
            strata, answers = {}, {}
        strata_problems = self.protocol.check_strata(strata)
        if strata_problems:
            problems.append(f"{where}: strata not in the protocol: {strata_problems[0]}")
        closed = [f"{name}={strata.get(name)}" for name, levels in self.closed.items() if strata.get(name) in levels]
        if closed:
            problems.append(f"{where}: enrolled at {closed[0]}, a level an amendment before it had closed")
        answer_problems, reasons = self.protocol.check_answers(answers)
        if answer_problems:
            problems.append(f"{where}: answers not in the protocol: {answer_problems[0]}")
        if at is None:
            problems.append(f"{where}: time {record.get('at')!r} is not an ISO-8601 time with a time zone")
        elif logged_at is not None and at > logged_at + CLOCK_SKEW:
            problems.append(f"{where}: dated {record.get('at')}, after it was logged ({entry.at}): future-dated")
        if status == "ineligible":
            if not reasons or list(reasons) != list(record.get("reasons") or []):
                problems.append(
                    f"{where}: screened out for {record.get('reasons')!r}, but its answers give {reasons!r}"
                )
            if any(record.get(c) is not None for c in ("sequence_number", "sequence_key", "slot", "arm")):
                problems.append(f"{where}: screened out, yet holds an allocation")
            return
        if status != "randomised":
            problems.append(f"{where}: status {status!r} is neither randomised nor ineligible")
            return
        if reasons:
            problems.append(f"{where}: randomised, but its answers make it ineligible ({', '.join(reasons)})")
        self._allocation(record, where, at, strata)

    def _allocation(self, record, where, at, strata) -> None:
        protocol, problems = self.protocol, self.problems
        self.randomised += 1
        self.sequence_number += 1
        if at is not None and self.amended_at is not None and at < self.amended_at:
            problems.append(
                f"{where}: randomised at {record.get('at')}, before the amendment logged before it took effect "
                f"({self.amended_at.isoformat()})"
            )
        if at is not None and self.last_valid_at is not None and at < self.last_valid_at:
            problems.append(
                f"{where}: randomised at {record.get('at')}, before the randomisation logged before it "
                f"({self.last_valid_at.isoformat()})"
            )
        self.last_logged_at = str(record.get("at"))
        if at is not None and at <= self.now + CLOCK_SKEW:
            self.last_valid_at = at if self.last_valid_at is None else max(at, self.last_valid_at)
        if record.get("sequence_number") != self.sequence_number:
            problems.append(
                f"{where}: sequence number {record.get('sequence_number')}, expected {self.sequence_number}"
            )
        key_name, slot = record.get("sequence_key"), record.get("slot")
        if not self.protocol.check_strata(strata):
            belongs = protocol.sequence_key(strata)
            if key_name != belongs:
                problems.append(
                    f"{where}: drew slot {slot} of sequence {key_name!r}, but its strata belong to sequence {belongs!r}"
                )
        expected_slot = self.next_slot.get(key_name, 0)
        if protocol.randomisation.is_adaptive:
            expected_slot = self.sequence_number - 1
        if slot != expected_slot:
            problems.append(f"{where}: used slot {slot} of sequence {key_name!r}, expected slot {expected_slot}")
        self.next_slot[key_name] = (slot if isinstance(slot, int) else expected_slot) + 1
        committed = self.slot_commitments.get((key_name, slot))
        value, reveal = record.get("value"), record.get("reveal")
        if committed is None:
            problems.append(f"{where}: slot {slot} of sequence {key_name!r} was never sealed")
        elif not isinstance(slot, int) or not 0 <= slot < self.sealed_to.get(key_name, 0):
            problems.append(f"{where}: slot {slot} of sequence {key_name!r} was not yet sealed when it was used")
        elif seal.slot_commitment(protocol.id, key_name, slot, str(value), str(reveal)) != committed:
            problems.append(f"{where}: the revealed allocation does not match the sealed commitment of its slot")
        arm = record.get("arm")
        if protocol.randomisation.is_adaptive:
            try:
                draw = float.fromhex(value)
                cells = list(self.history_counts)
                probs = minimisation_probabilities_for(
                    protocol,
                    [self.history_strata[text] for text, _ in cells],
                    [a for _, a in cells],
                    strata,
                    multiplicity=[self.history_counts[c] for c in cells],
                )
                expected_arm = protocol.arms[choose(probs, draw)]
            except (TypeError, ValueError, KeyError):
                expected_arm = None
            if arm != expected_arm:
                problems.append(f"{where}: arm {arm!r} is not the arm its committed draw gives ({expected_arm!r})")
            if not self.protocol.check_strata(strata):
                text = json.dumps(strata, sort_keys=True, default=str)
                self.history_strata[text] = strata
                cell = (text, self.arm_index.get(arm, 0))
                self.history_counts[cell] = self.history_counts.get(cell, 0) + 1
        elif arm != value:
            problems.append(f"{where}: arm {arm!r} differs from the committed arm {value!r}")

    # -------------------------------------------------------------------- events
    def _event(self, entry, logged_at) -> None:
        from rjtrial.registry.core import EVENT_KINDS

        row = self.event_rows.pop(entry.seq, None)
        where = f"event (audit log entry {entry.seq})"
        p = entry.payload
        if row is None:
            self.problems.append(f"{where}: missing from table {store.events.name} (deleted)")
        else:
            expected = {
                "referral_id": p.get("referral_id"),
                "kind": p.get("kind"),
                "detail": canonical_json(p.get("detail")),
                "at": p.get("at"),
                "by": p.get("by"),
            }
            changed = [c for c, v in expected.items() if row.get(c) != v]
            if changed:
                self.problems.append(
                    f"{where}: table {store.events.name} row differs in column(s) {', '.join(changed)} (edited)"
                )
        if p.get("kind") not in EVENT_KINDS:
            self.problems.append(f"{where}: unknown kind {p.get('kind')!r}")
        rid = p.get("referral_id")
        randomised_at = self.seen.get(rid)
        if randomised_at is None:
            self.problems.append(f"{where}: referral {rid!r} was not randomised before it")
        at = _time(p.get("at"))
        if at is None:
            self.problems.append(f"{where}: time {p.get('at')!r} is not an ISO-8601 time with a time zone")
            return
        if logged_at is not None and at > logged_at + CLOCK_SKEW:
            self.problems.append(f"{where}: dated {p.get('at')}, after it was logged ({entry.at}): future-dated")
        if randomised_at is not None and at < randomised_at:
            self.problems.append(
                f"{where}: dated {p.get('at')}, before referral {rid!r} was randomised ({randomised_at.isoformat()})"
            )

    def leftovers(self) -> list[str]:
        """Rows of the tables that no audit entry logged, and non-canonical ids among them."""
        from rjtrial.registry.core import is_referral_id, referral_key

        out = []
        for rid, row in self.referral_rows.items():
            if rid not in self.seen:
                out.append(
                    f"referral {rid!r} (table {store.referrals.name}): has no enrolment entry in the audit log (inserted)"
                )
            if not is_referral_id(rid):
                out.append(f"referral {rid!r} (table {store.referrals.name}): not a canonical referral id")
            elif row.get("referral_key") != referral_key(rid):
                out.append(f"referral {rid!r} (table {store.referrals.name}): referral_key is not its normalised id")
        for seq in self.event_rows:
            out.append(f"event with audit_seq {seq} (table {store.events.name}): has no audit log entry (inserted)")
        return out


def _result(problems, commitment, audit_rows, referral_rows, key, randomised, checked) -> VerifyResult:
    shown = problems[:MAX_PROBLEMS]
    if len(problems) > MAX_PROBLEMS:
        shown.append(f"... and {len(problems) - MAX_PROBLEMS} more problems")
    return VerifyResult(
        ok=not problems,
        problems=tuple(shown),
        commitment=commitment,
        audit_entries=len(audit_rows),
        referrals=len(referral_rows),
        randomised=randomised,
        key_checked=key is not None,
        **checked,
    )
