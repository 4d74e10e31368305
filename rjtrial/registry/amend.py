"""Protocol amendments without breaking the seal.

A trial that runs for two years meets changes its protocol did not foresee: a site joins
half-way, an eligibility question is reworded, the trial needs more slots, a site stops
referring. :func:`amend` (``rjtrial amend``) applies such a change **by appending**: the
allocations already made, the sequences already sealed and the commitment already
published are never rewritten.

Each amendment appends a *sealed segment*: the new slots it needs (the sequences of new
strata levels, or the slots beyond a raised capacity), drawn from a fresh seed, encrypted
under the trial key as the first schedule was, with a hiding commitment per slot in
``rj_slots``. The amendment, the amended protocol and the segment are recorded in one
signed audit entry (``amendment``) whose commitment chains to the one before it::

    commitment_n = SHA-256("rjtrial-amendment-v1", commitment_{n-1}, amendment record,
                           amended protocol, closed levels, segment record,
                           SHA-256(sealed segment), SHA-256(segment slot commitments))

with ``commitment_0`` the trial's published commitment. Publishing ``commitment_n`` with
the amendment (as trial registries record protocol amendments) anchors the whole chain up
to it: ``rjtrial verify --commitment`` accepts the published commitment of the trial or of
any amendment.

What an amendment may do (the TOML format, see ``synthetic/protocols/amendments/``)::

    [amendment]
    id = "west-yorkshire-joins"            # letters, digits, '_ . -'; unique in the trial
    title = "West Yorkshire joins the trial"
    description = "..."                    # optional
    effective = 2026-01-05T09:00:00Z       # optional: when it takes effect (default: when applied)

    [strata.add]                           # add levels to existing strata (e.g. a site joins)
    site = ["west_yorkshire"]

    [strata.close]                         # close levels: no more referrals there
    site = ["northumbria"]

    [randomisation]
    capacity = 2000                        # raise the slots sealed per sequence

    [[eligibility]]                        # the complete new list of questions (replaces the old)
    id = "admitted"
    question = "..."
    eligible_if = "yes"

Refused, with the reason: removing (or adding, or reordering) an arm, changing the
allocation ratio of ongoing strata, changing the randomisation method or its parameters,
removing a stratum or its levels (close them instead), adding a new stratum, lowering the
capacity, closing every level of a stratum, and anything that would edit a past
allocation. An amendment is refused once the trial has been unsealed.

``verify`` checks the chain at each level: keyless, each amendment entry's signature,
that its amended protocol is the previous protocol with the amendment applied, that its
segment's slot commitments are in ``rj_slots`` and that the commitment chains; records
logged after an amendment are checked against the amended protocol (closed levels, new
questions, slots sealed by then, not dated before the amendment took effect). With the
key, every segment decrypts and regenerates from its seed.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from sqlalchemy import insert, select

from rjtrial._result import Result
from rjtrial.errors import AmendmentError, KeyFileError, ProtocolError, RegistryError
from rjtrial.protocol import Protocol
from rjtrial.registry import audit, store
from rjtrial.registry._amendment_rules import apply_amendment, describe
from rjtrial.registry.segments import (
    OpenedSegment,
    chain_commitment,
    make_segment,
    open_segment,
    seal_segment,
    segment_ranges,
    segment_record,
    segment_slot_commitments,
)

__all__ = [
    "Amendment",
    "AmendmentResult",
    "ChainState",
    "amend",
    "apply_amendment",
    "history",
    "load_state",
]

ACTION = "amendment"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_TOP_KEYS = {"amendment", "strata", "randomisation", "eligibility", "trial"}
_AMENDMENT_KEYS = {"id", "title", "description", "effective"}
#: Keys that would rewrite what was allocated: refused with the reason.
_ALLOCATION_KEYS = {"allocation", "allocations", "referral", "referrals", "reallocate", "reallocation", "enrolments"}


# ------------------------------------------------------------------ the amendment
@dataclass(frozen=True)
class Amendment:
    """A protocol amendment as written in its TOML file (validated in form, not yet applied).

    Attributes
    ----------
    id, title, description : str
    add_levels : dict of str to tuple of str
        New levels of existing strata (``[strata.add]``).
    close_levels : dict of str to tuple of str
        Levels closed to new referrals (``[strata.close]``).
    eligibility : tuple of dict, or None
        The complete new list of eligibility questions (``[[eligibility]]``), or None to keep them.
    capacity : int or None
        The new number of slots per sequence (``[randomisation] capacity``), or None.
    arms, ratio : tuple or None
        Given only to be checked: an amendment that changes them is refused.
    effective : str or None
        When it takes effect (ISO 8601, UTC), or None for when it is applied.
    """

    id: str
    title: str
    description: str = ""
    add_levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    close_levels: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    eligibility: tuple[Mapping[str, Any], ...] | None = None
    capacity: int | None = None
    arms: tuple[str, ...] | None = None
    ratio: tuple[int, ...] | None = None
    effective: str | None = None

    @classmethod
    def from_toml(cls, path: str | Path) -> "Amendment":
        """Read an amendment file; raise :class:`AmendmentError` naming every problem and its key."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise AmendmentError([f"file not found: {path}"]) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise AmendmentError([f"cannot read {path}: {exc}"]) from None
        return cls.from_toml_string(text, source=str(path))

    @classmethod
    def from_toml_string(cls, text: str, *, source: str | None = None) -> "Amendment":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise AmendmentError([f"not valid TOML: {exc}"], source=source) from None
        return cls.from_dict(data, source=source)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> "Amendment":
        """Validate an amendment given as nested dicts (the parsed TOML)."""
        problems: list[str] = []
        amendment = _parse(data, problems)
        if problems or amendment is None:  # None only beside a problem
            raise AmendmentError(problems, source=source)
        return amendment

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; what the audit log records."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "add_levels": {k: list(v) for k, v in self.add_levels.items()},
            "close_levels": {k: list(v) for k, v in self.close_levels.items()},
            "eligibility": None if self.eligibility is None else [dict(q) for q in self.eligibility],
            "capacity": self.capacity,
            "arms": None if self.arms is None else list(self.arms),
            "ratio": None if self.ratio is None else list(self.ratio),
            "effective": self.effective,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "Amendment":
        """The amendment from :meth:`to_dict` (as logged); raises KeyError/TypeError/ValueError if malformed."""
        return cls(
            id=str(record["id"]),
            title=str(record["title"]),
            description=str(record.get("description") or ""),
            add_levels={str(k): tuple(map(str, v)) for k, v in dict(record.get("add_levels") or {}).items()},
            close_levels={str(k): tuple(map(str, v)) for k, v in dict(record.get("close_levels") or {}).items()},
            eligibility=None if record.get("eligibility") is None else tuple(dict(q) for q in record["eligibility"]),
            capacity=None if record.get("capacity") is None else int(record["capacity"]),
            arms=None if record.get("arms") is None else tuple(record["arms"]),
            ratio=None if record.get("ratio") is None else tuple(int(r) for r in record["ratio"]),
            effective=record.get("effective"),
        )


def _parse(data, problems: list[str]) -> Amendment | None:
    if not isinstance(data, Mapping):
        problems.append("the amendment must be a table")
        return None
    for key in data:
        if key in _ALLOCATION_KEYS:
            problems.append(
                f"{key}: an amendment never edits a past allocation (allocations stand, by intention to treat; "
                "record a crossover or withdrawal event instead)"
            )
        elif key not in _TOP_KEYS:
            problems.append(f"{key}: unknown section (expected: {', '.join(sorted(_TOP_KEYS))})")
    head = data.get("amendment")
    if not isinstance(head, Mapping):
        problems.append("amendment: missing section [amendment] (id and title)")
        head = {}
    for key in head:
        if key not in _AMENDMENT_KEYS:
            problems.append(f"amendment.{key}: unknown key (expected: {', '.join(sorted(_AMENDMENT_KEYS))})")
    ident = head.get("id")
    if not isinstance(ident, str) or not _ID.fullmatch(ident):
        problems.append(f"amendment.id: must be 1-100 letters, digits, '_', '.' or '-', got {ident!r}")
    title = head.get("title")
    if not isinstance(title, str) or not title.strip():
        problems.append(f"amendment.title: must be a non-empty string, got {title!r}")
    description = head.get("description", "")
    if not isinstance(description, str):
        problems.append(f"amendment.description: must be a string, got {description!r}")
    effective = _effective(head.get("effective"), problems)

    strata = data.get("strata", {})
    add: dict[str, tuple[str, ...]] = {}
    close: dict[str, tuple[str, ...]] = {}
    if not isinstance(strata, Mapping):
        problems.append("strata: must be a table with [strata.add] and/or [strata.close]")
        strata = {}
    for key, value in strata.items():
        if key in ("remove", "delete", "drop"):
            problems.append(
                f"strata.{key}: removing stratum levels is refused: referrals already enrolled in them keep "
                "their stratum; close the levels instead ([strata.close])"
            )
        elif key in ("add", "close"):
            target = add if key == "add" else close
            if not isinstance(value, Mapping):
                problems.append(f"strata.{key}: must be a table of stratum = [levels]")
                continue
            for name, levels in value.items():
                if (
                    not isinstance(levels, list)
                    or not levels
                    or not all(isinstance(v, str) and v.strip() for v in levels)
                ):
                    problems.append(f"strata.{key}.{name}: must be a non-empty list of level names, got {levels!r}")
                elif len(set(levels)) != len(levels):
                    problems.append(f"strata.{key}.{name}: a level is listed twice")
                else:
                    target[str(name)] = tuple(levels)
        else:
            problems.append(
                f"strata.{key}: adding a stratum is refused: referrals already enrolled have no level of it; "
                "add levels to an existing stratum ([strata.add]) or start a new trial"
            )

    capacity = None
    randomisation = data.get("randomisation", {})
    if not isinstance(randomisation, Mapping):
        problems.append("randomisation: must be a table (only capacity may be amended)")
        randomisation = {}
    for key, value in randomisation.items():
        if key == "capacity":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"randomisation.capacity: must be a positive integer, got {value!r}")
            else:
                capacity = value
        else:
            problems.append(
                f"randomisation.{key}: the randomisation method and its parameters are sealed with the sequence "
                "and cannot be amended (only capacity can be raised)"
            )

    eligibility = None
    if "eligibility" in data:
        questions = data["eligibility"]
        if not isinstance(questions, list) or not all(isinstance(q, Mapping) for q in questions):
            problems.append("eligibility: must be an array of tables ([[eligibility]]): the complete new list")
        else:
            eligibility = tuple(dict(q) for q in questions)

    arms = ratio = None
    trial = data.get("trial", {})
    if not isinstance(trial, Mapping):
        problems.append("trial: must be a table")
        trial = {}
    for key, value in trial.items():
        if key == "arms":
            arms = tuple(value) if isinstance(value, list) else (value,)
        elif key == "ratio":
            ratio = tuple(value) if isinstance(value, list) else (value,)
        else:
            problems.append(f"trial.{key}: the trial's {key} cannot be amended")
    if problems or not isinstance(ident, str) or not isinstance(title, str):  # (each not-text is a problem above)
        return None
    return Amendment(
        id=ident,
        title=title.strip(),
        description=description,
        add_levels=add,
        close_levels=close,
        eligibility=eligibility,
        capacity=capacity,
        arms=arms,
        ratio=ratio,
        effective=effective,
    )


def _effective(value, problems) -> str | None:
    if value is None:
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            problems.append(f"amendment.effective: {value!r} is not an ISO-8601 date-time")
            return None
    if not isinstance(value, datetime):
        problems.append(f"amendment.effective: must be a date-time, got {value!r}")
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")


# ------------------------------------------------------------------ the chain's state
@dataclass(frozen=True)
class AmendmentRecord:
    """One amendment as logged: its entry, the protocol and closed levels after it."""

    number: int
    audit_seq: int
    logged_at: str
    amendment: Amendment
    by: str
    reason: str
    effective_at: str
    protocol: Protocol
    closed: Mapping[str, tuple[str, ...]]
    changes: tuple[str, ...]
    slots: int
    commitment: str
    payload: Mapping[str, Any] = field(repr=False, default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "id": self.amendment.id,
            "title": self.amendment.title,
            "effective_at": self.effective_at,
            "logged_at": self.logged_at,
            "audit_seq": self.audit_seq,
            "by": self.by,
            "reason": self.reason,
            "changes": list(self.changes),
            "slots_sealed": self.slots,
            "commitment": self.commitment,
        }


@dataclass
class ChainState:
    """The protocol in force and how it got there: the trial's protocol and every amendment.

    ``problem`` is set (and enrolment refused) when an amendment entry cannot be read or
    does not follow from the one before it; ``verify`` names what is wrong.
    """

    initial: Protocol
    protocol: Protocol
    closed: dict[str, tuple[str, ...]]
    records: list[AmendmentRecord]
    segments: list[OpenedSegment]
    commitment: str
    problem: str | None = None

    def screen(self, strata: Mapping[str, Any], answers: Mapping[str, Any]) -> tuple[list[str], list[str]]:
        """(problems, ineligibility reasons) of a referral under the protocol in force."""
        if self.problem:
            return [f"the amendment chain is damaged ({self.problem}); run rjtrial verify"], []
        non_text = [f"{k}={v!r}" for k, v in {**strata, **answers}.items() if not isinstance(v, str)]
        if non_text:
            return [f"strata and answers must be text: {', '.join(non_text)}"], []
        problems = self.protocol.check_strata(strata)
        answer_problems, reasons = self.protocol.check_answers(answers)
        problems += answer_problems
        if not problems:
            problems += self.closed_levels_of(strata)
        return problems, reasons

    def closed_levels_of(self, strata: Mapping[str, Any]) -> list[str]:
        """Problems for a referral whose strata include a closed level."""
        out = []
        for name, levels in self.closed.items():
            if strata.get(name) in levels:
                which = next((r for r in reversed(self.records) if strata.get(name) in r.closed.get(name, ())), None)
                by = f" by amendment {which.number} ({which.amendment.id})" if which else ""
                out.append(f"{name} level {strata.get(name)!r} was closed{by}: no more referrals there")
        return out


def amendment_rows(conn) -> list[Mapping[str, Any]]:
    """The amendment entries of the audit log (seq, at, payload), in order."""
    return (
        conn.execute(
            select(store.audit.c.seq, store.audit.c.at, store.audit.c.payload)
            .where(store.audit.c.action == ACTION)
            .order_by(store.audit.c.seq)
        )
        .mappings()
        .all()
    )


def count(conn) -> int:
    """How many amendments the audit log holds."""
    from sqlalchemy import func

    return int(
        conn.execute(select(func.count()).select_from(store.audit).where(store.audit.c.action == ACTION)).scalar()
    )


def parse_record(
    seq: int, logged_at: str, payload: Any, previous: Protocol, closed, previous_commitment: str
) -> AmendmentRecord:
    """One logged amendment, re-applied to the protocol before it; ValueError naming what does not hold."""
    try:
        amendment = Amendment.from_record(payload["amendment"])
        number = int(payload["number"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"its record is malformed ({type(exc).__name__}: {exc})") from None
    try:
        protocol, closed_after = apply_amendment(previous, closed, amendment)
    except AmendmentError as exc:
        raise ValueError(f"it does not apply to the protocol before it ({exc})") from None
    try:
        logged_protocol = Protocol.from_dict(json.loads(payload["protocol"]))
        logged_closed = {str(k): tuple(v) for k, v in dict(payload["closed"]).items()}
        commitment = chain_commitment(previous_commitment, payload)
    except (ValueError, KeyError, TypeError, AttributeError, ProtocolError) as exc:
        raise ValueError(f"its record is malformed ({type(exc).__name__}: {exc})") from None
    if logged_protocol != protocol:
        raise ValueError("its protocol is not the protocol before it with the amendment applied")
    if logged_closed != closed_after:
        raise ValueError("its closed levels are not those before it with the amendment applied")
    if payload.get("previous_commitment") != previous_commitment:
        raise ValueError("it does not chain to the commitment before it")
    if payload.get("commitment") != commitment:
        raise ValueError("its commitment does not match its contents")
    return AmendmentRecord(
        number=number,
        audit_seq=seq,
        logged_at=logged_at,
        amendment=amendment,
        by=str(payload.get("by")),
        reason=str(payload.get("reason")),
        effective_at=str(payload.get("effective_at")),
        protocol=protocol,
        closed=closed_after,
        changes=tuple(describe(amendment, previous, protocol)),
        slots=int(payload.get("slots", 0)),
        commitment=commitment,
        payload=payload,
    )


def load_state(conn, initial: Protocol, initial_commitment: str, *, key: bytes | None = None) -> ChainState:
    """The chain's state from the audit log (read in ``conn``); with ``key`` the segments are opened."""
    state = ChainState(initial, initial, {}, [], [], initial_commitment)
    for row in amendment_rows(conn):
        number = len(state.records) + 1
        try:
            try:
                payload = json.loads(row["payload"])
            except ValueError:
                raise ValueError("its payload is not JSON") from None
            record = parse_record(row["seq"], row["at"], payload, state.protocol, state.closed, state.commitment)
            if record.number != number:
                raise ValueError(f"it is numbered {record.number}, expected {number}")
            segment = None
            if key is not None:
                segment = open_segment(record.payload["sealed"], key, initial.id, number)
        except (ValueError, KeyFileError) as exc:
            state.problem = f"audit log entry {row['seq']} (amendment {number}): {exc}"
            break
        state.records.append(record)
        if segment is not None:
            state.segments.append(segment)
        state.protocol, state.closed, state.commitment = record.protocol, dict(record.closed), record.commitment
    return state


# ------------------------------------------------------------------ amending
@dataclass(frozen=True)
class AmendmentResult(Result):
    """What :func:`amend` did.

    Attributes
    ----------
    number : int
        1 for the trial's first amendment, 2 for the next...
    id, title : str
    changes : tuple of str
        What changed, in words.
    effective_at : str
        When it took effect (ISO 8601, UTC).
    slots_sealed : int
        Slots of the new sealed segment (0 when no sequence needed new slots).
    commitment : str
        ``commitment_n``: publish it with the amendment.
    previous_commitment : str
    audit_seq : int
        The amendment's audit log entry.
    """

    number: int
    id: str
    title: str
    changes: tuple[str, ...]
    effective_at: str
    slots_sealed: int
    commitment: str
    previous_commitment: str
    audit_seq: int

    def summary_frame(self):
        import pandas as pd

        return pd.DataFrame(
            {"term": [f"change {i + 1}" for i in range(len(self.changes))], "change": list(self.changes)}
        )

    def format(self, digits: int = 4) -> str:
        lines = [
            f"amendment {self.number} ({self.id}: {self.title}) applied, audit entry {self.audit_seq}, "
            f"effective {self.effective_at}"
        ]
        lines += [f"  {change}" for change in self.changes]
        lines.append(f"  {self.slots_sealed} new slot(s) sealed" if self.slots_sealed else "  no new slots needed")
        lines.append(f"commitment (publish this with the amendment):\n{self.commitment}")
        return "\n".join(lines)


def amend(
    registry, amendment: Amendment | str | Path, *, by: str, reason: str, at=None, seed: int | None = None
) -> AmendmentResult:
    """Amend the protocol of a running trial by appending a sealed segment (see the module notes).

    Parameters
    ----------
    registry : Registry
        Opened with the key.
    amendment : Amendment or path to an amendment TOML file
    by : str
        Who amends (audit log).
    reason : str
        Why (audit log, CONSORT counts, the report).
    at : datetime or ISO string, optional
        When it takes effect: not before the last randomisation or the previous amendment,
        not in the future. Default: the file's ``effective``, else now.
    seed : int, optional
        The new segment's seed. Leave it out in a real trial (fresh 128 bits from the
        operating system, kept only inside the seal).

    Returns
    -------
    AmendmentResult

    Raises
    ------
    AmendmentError
        The amendment is refused; nothing is written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from rjtrial import Protocol, Registry
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> reg = Registry.create(tmp / "t.db", Protocol.from_toml("synthetic/protocols/jrc-london-burglary.toml"),
    ...                       key_path=tmp / "t.key", seed=1)
    >>> result = reg.amend(Amendment.from_dict({"amendment": {"id": "wy", "title": "West Yorkshire joins"},
    ...                                         "strata": {"add": {"site": ["west_yorkshire"]}}}),
    ...                    by="manager", reason="new site", seed=2)
    >>> result.number, result.changes, reg.protocol.strata["site"][-1]
    (1, ('adds site level(s) west_yorkshire',), 'west_yorkshire')
    >>> reg.verify().ok
    True
    """
    from rjtrial.randomise import new_seed
    from rjtrial.registry import core
    from rjtrial.registry.seal import slots_digest

    source = None
    if not isinstance(amendment, Amendment):
        source = str(amendment)
        amendment = Amendment.from_toml(amendment)
    key = registry._require_key("amending the protocol")
    by = str(by)[:100].strip() or "unknown"
    reason = str(reason or "").strip()
    if not reason:
        raise AmendmentError(["a reason is required (--reason): the audit log and the report show why"], source=source)
    trial_id = registry.trial_id
    with store.write_transaction(registry._engine) as (conn, head_row):
        state = load_state(conn, registry.initial_protocol, registry.commitment, key=key)
        if state.problem:
            raise RegistryError(f"the amendment chain is damaged ({state.problem}); run rjtrial verify")
        if head_row["closed"] or core._unsealed_in_log(conn) or registry._unseal_mark() is not None:
            raise AmendmentError(
                ["the trial has been unsealed: its sequence is known and enrolment is closed"], source=source
            )
        if any(r.amendment.id == amendment.id for r in state.records):
            raise AmendmentError(
                [f"amendment.id: {amendment.id!r} was already applied (ids are unique in a trial)"], source=source
            )
        protocol, closed = apply_amendment(state.protocol, state.closed, amendment, source=source)
        latest = core._timestamp(datetime.now(timezone.utc) + core.FUTURE_TOLERANCE)
        when = core._timestamp(at if at is not None else amendment.effective)  # None: now
        if when > latest:
            raise AmendmentError(
                [f"effective {when} is in the future: apply the amendment when it takes effect"], source=source
            )
        last = core._last_randomised_at(conn, head_row, latest)
        if when < last:
            raise AmendmentError(
                [
                    f"effective {when} is before the last randomisation ({last}): an amendment "
                    "cannot reach back over allocations already made"
                ],
                source=source,
            )
        if state.records and when < state.records[-1].effective_at:
            raise AmendmentError(
                [f"effective {when} is before amendment {state.records[-1].number} ({state.records[-1].effective_at})"],
                source=source,
            )
        number = len(state.records) + 1
        ranges = segment_ranges(state.protocol, protocol)
        segment = make_segment(number, protocol, ranges, seed=new_seed() if seed is None else seed)
        sealed = seal_segment(segment, key, trial_id)
        slot_rows = list(segment_slot_commitments(segment, trial_id, protocol.arms))
        if slot_rows:
            for key_name, start, _ in ranges:
                clash = conn.execute(
                    select(store.slots.c.sequence_key, store.slots.c.slot)
                    .where(store.slots.c.sequence_key == key_name, store.slots.c.slot >= start)
                    .limit(1)
                ).first()
                if clash is not None:
                    break
            if clash is not None:
                raise RegistryError(
                    f"table {store.slots.name}: slot {clash.slot} of sequence {clash.sequence_key!r} "
                    "already exists (the store was edited); run rjtrial verify"
                )
            conn.execute(
                insert(store.slots), [{"sequence_key": k, "slot": s, "commitment": c} for k, s, c in slot_rows]
            )
        payload = {
            "number": number,
            "amendment": amendment.to_dict(),
            "by": by,
            "reason": reason,
            "effective_at": when,
            "protocol": json.dumps(protocol.to_dict(), separators=(",", ":"), ensure_ascii=False),
            "closed": {k: list(v) for k, v in closed.items()},
            "segment": segment_record(segment, protocol),
            "sealed": sealed,
            "slots": len(slot_rows),
            "slots_sha256": slots_digest(slot_rows),
            "previous_commitment": state.commitment,
        }
        commitment = chain_commitment(state.commitment, payload)
        payload["commitment"] = commitment
        entry = audit.append(conn, head_row, key=key, at=core.now_utc(), actor=by, action=ACTION, payload=payload)
    registry.refresh()
    return AmendmentResult(
        number=number,
        id=amendment.id,
        title=amendment.title,
        changes=tuple(describe(amendment, state.protocol, protocol)),
        effective_at=when,
        slots_sealed=len(slot_rows),
        commitment=commitment,
        previous_commitment=state.commitment,
        audit_seq=entry.seq,
    )


def history(registry) -> list[dict[str, Any]]:
    """Every amendment applied, in order: what changed, when, by whom and why (:meth:`AmendmentRecord.to_dict`)."""
    with store.read_transaction(registry._engine) as conn:
        state = load_state(conn, registry.initial_protocol, registry.commitment)
    return [r.to_dict() for r in state.records]
