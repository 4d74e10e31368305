"""The concealed randomiser: create a sealed registry, enrol referrals, record events.

>>> import tempfile, pathlib
>>> from rjtrial import Protocol, Registry
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> protocol = Protocol.from_toml("synthetic/protocols/jrc-london-burglary.toml")
>>> reg = Registry.create(tmp / "trial.db", protocol, key_path=tmp / "trial.key")
>>> result = reg.enrol("R-001", strata={"site": "london", "offence": "property"},
...                    answers={"admitted": "yes", "offender_consent": "yes",
...                             "victim_consent": "yes", "domestic_abuse": "no"}, by="coordinator")
>>> result.status, result.sequence_number, result.arm in protocol.arms
('randomised', 1, True)
>>> reg.verify().ok
True
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from rjtrial._canonical import canonical_json
from rjtrial.errors import KeyFileError, ProtocolError, RegistryError
from rjtrial.protocol import Protocol
from rjtrial.randomise import choose, make_schedule, new_seed
from rjtrial.randomise.schedule import minimisation_probabilities_for
from rjtrial.registry import amend as amendments
from rjtrial.registry import audit, reads, retention, seal, store
from rjtrial.registry.reads import SITE_STRATUM, decode_map

STATUSES = ("randomised", "ineligible", "refused")
EVENT_KINDS = ("treatment_received", "treatment_not_received", "withdrawal", "crossover", "note")
FUTURE_TOLERANCE = timedelta(minutes=5)  # clock skew between the enroller and the store
#: A referral id, matched in full (``re.fullmatch``: no newline may end it).
REFERRAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:/-]{0,99}")


def is_referral_id(value) -> bool:
    """Is ``value`` a canonical referral id (1-100 characters of ``A-Za-z0-9_.:/-``, starting alphanumeric)?"""
    return isinstance(value, str) and REFERRAL_ID.fullmatch(value) is not None


def referral_key(referral_id: str) -> str:
    """The referral id normalised (NFKC, case-folded, outer white space removed).

    Two ids with the same key are one referral: ``R-0002`` and ``r-0002`` cannot both
    be enrolled.
    """
    return unicodedata.normalize("NFKC", str(referral_id)).strip().casefold()


def now_utc() -> str:
    """The current time in UTC as ISO-8601 text, to the microsecond."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _timestamp(at: datetime | str | None) -> str:
    """An ISO-8601 UTC timestamp; naive datetimes are taken as UTC."""
    if at is None:
        return now_utc()
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise ValueError(f"at={at!r} is not an ISO-8601 date-time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class EnrolmentResult:
    """What an enrolment returns.

    ``status`` is "randomised" (``arm``, ``sequence_number`` and ``receipt`` set),
    "ineligible" (screened out; ``reasons`` lists the answers that excluded it;
    ``receipt`` set) or "refused" (nothing recorded but the refusal in the audit
    log; ``reasons`` says why).
    """

    status: str
    referral_id: str
    arm: str | None = None
    sequence_number: int | None = None
    receipt: str | None = None
    reasons: tuple[str, ...] = ()
    randomised_on: str | None = None
    strata: Mapping[str, str] = field(default_factory=dict)
    site_sequence_number: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "referral_id": self.referral_id,
            "arm": self.arm,
            "sequence_number": self.sequence_number,
            "receipt": self.receipt,
            "reasons": list(self.reasons),
            "randomised_on": self.randomised_on,
            "strata": dict(self.strata),
        }

    def coordinator_dict(self) -> dict[str, Any]:
        """What a coordinator may be shown: :meth:`to_dict` with ``site_sequence_number``
        in place of the trial-wide ``sequence_number``.

        When one sequence is shared by several sites, the trial-wide position of an
        allocation tells a coordinator how far the sequence has moved at the other
        sites, and so where their next referral falls in its block. Coordinators see
        the allocation's number at its own site instead.
        """
        out = self.to_dict()
        del out["sequence_number"]
        out["site_sequence_number"] = self.site_sequence_number
        return out


@dataclass(frozen=True)
class UnsealResult:
    """The revealed schedule, checked against the commitment."""

    commitment_ok: bool
    regenerated: bool | None  # None: recorded numpy version differs, not checked
    seed: int
    sequences: Mapping[str, list[str]]
    draws: list[float] | None
    problems: tuple[str, ...] = ()
    segment_seeds: tuple[int, ...] = ()  # the seeds of the amendments' sealed segments, in order

    @property
    def ok(self) -> bool:
        return self.commitment_ok and self.regenerated is not False and not self.problems


class Registry:
    """A trial's concealed randomiser over a SQLite file or a PostgreSQL database.

    Create with :meth:`create` (fixes and seals the sequence, writes the key file)
    and reopen with :meth:`open`. Enrolment needs the key; verification, export and
    CONSORT counts do not.
    """

    def __init__(
        self,
        engine,
        protocol: Protocol,
        trial_row: Mapping[Any, Any],
        key: bytes | None,
        db: str,
        key_path: str | Path | None = None,
    ):
        self._engine = engine
        #: The protocol in force: the trial's, with every amendment applied (:meth:`refresh`).
        self.protocol = protocol
        #: The protocol the trial was initialised with (covered by :attr:`commitment`).
        self.initial_protocol = protocol
        self._chain = amendments.ChainState(protocol, protocol, {}, [], [], trial_row["commitment"])
        self._trial = dict(trial_row)
        self._key = key
        self._key_path = None if key is None or key_path is None else Path(key_path)
        self._opened: seal.Opened | None = None
        self.db = db

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(
        cls,
        db: str | Path,
        protocol: Protocol | str | Path,
        *,
        key_path: str | Path,
        seed: int | None = None,
        by: str = "system",
    ) -> "Registry":
        """Fix the whole allocation schedule, seal it, and write a new key file.

        Parameters
        ----------
        db : str or path
            A SQLite file (created) or a SQLAlchemy database URL.
        protocol : Protocol or path to a protocol TOML file
        key_path : path
            Where to write the new key file (must not exist; mode 0600).
        seed : int, optional
            The schedule's seed. Leave it out in a real trial: a fresh 128-bit seed
            from the operating system is used and kept only inside the seal.
        by : str
            Who initialised the trial (audit log).

        Returns
        -------
        Registry
            Opened with the key; ``.commitment`` is the value to publish.
        """
        if not isinstance(protocol, Protocol):
            protocol = Protocol.from_toml(protocol)
        sqlite_file = store.sqlite_path(db)
        existed = sqlite_file is not None and sqlite_file.exists()
        created_file = False
        if sqlite_file is not None and not sqlite_file.parent.is_dir():
            raise RegistryError(f"cannot create {sqlite_file}: folder {sqlite_file.parent} does not exist")
        engine = store.make_engine(db)
        if existed and store.has_registry(engine):
            raise RegistryError(f"{db} already holds a trial registry; use a new database")
        if not existed and sqlite_file is None and store.has_registry(engine):
            raise RegistryError(f"{store._redact(str(db))} already holds a trial registry; use a new database")
        key = seal.create_key_file(key_path)
        try:
            if sqlite_file is not None and not existed:
                try:  # claim the new file: a create racing this one then finds it existing
                    os.close(os.open(sqlite_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                    created_file = True
                except FileExistsError:
                    pass
            schedule = make_schedule(protocol, seed=new_seed() if seed is None else seed)
            sealed, opened = seal.seal(schedule, key, protocol.id)
            # Not key-sorted: the order of strata and levels is part of the protocol.
            protocol_json = json.dumps(protocol.to_dict(), separators=(",", ":"), ensure_ascii=False)
            public = {k: v for k, v in schedule.record.items() if k != "seed"}
            schedule_json = canonical_json(public)
            keys = protocol.sequence_keys()
            capacity = protocol.randomisation.capacity
            slot_rows = list(seal.slot_commitments(opened, protocol.id, protocol.arms, keys, capacity))
            public_key = seal.public_key(key)
            commitment = seal.trial_commitment(
                protocol_json, schedule_json, sealed, seal.slots_digest(slot_rows), public_key
            )
            at = now_utc()
            with engine.begin() as conn:
                store.metadata.create_all(conn)
                conn.execute(
                    insert(store.trial).values(
                        id=protocol.id,
                        schema_version=store.SCHEMA_VERSION,
                        protocol=protocol_json,
                        schedule=schedule_json,
                        sealed=sealed,
                        commitment=commitment,
                        created_at=at,
                        audit_public_key=public_key,
                    )
                )
                conn.execute(
                    insert(store.slots),
                    [{"sequence_key": k, "slot": s, "commitment": c} for k, s, c in slot_rows],
                )
                conn.execute(
                    insert(store.head).values(
                        id=1, audit_seq=0, audit_hash=audit.GENESIS, sequence_number=0, last_randomised_at="", closed=0
                    )
                )
                head_row = conn.execute(select(store.head)).mappings().one()
                audit.append(
                    conn,
                    head_row,
                    key=key,
                    at=at,
                    actor=by,
                    action="init",
                    payload={
                        "trial_id": protocol.id,
                        "commitment": commitment,
                        "schedule": public,
                        "audit_public_key": public_key,
                    },
                )
        except BaseException as exc:
            Path(key_path).unlink(missing_ok=True)
            engine.dispose()
            if created_file and not _holds_registry(db):
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(str(sqlite_file) + suffix).unlink(missing_ok=True)
            if isinstance(exc, IntegrityError):
                raise RegistryError(
                    f"{db} already holds a trial registry (created meanwhile by another process)"
                ) from None
            raise
        registry = cls.open(db, key_path=key_path)
        return registry

    @classmethod
    def open(cls, db: str | Path, *, key_path: str | Path | None = None) -> "Registry":
        """Open an existing registry; with ``key_path`` it can enrol and unseal."""
        sqlite_file = store.sqlite_path(db)
        if sqlite_file is not None and not sqlite_file.exists():
            raise RegistryError(f"no registry at {sqlite_file} (file not found); create one with `rjtrial init`")
        engine = store.make_engine(db)
        if not store.has_registry(engine):
            raise RegistryError(f"{db} holds no trial registry")
        with store.read_transaction(engine) as conn:
            versions = conn.execute(select(store.trial.c.schema_version)).scalars().all()
            if len(versions) == 1 and versions[0] != store.SCHEMA_VERSION:
                raise RegistryError(
                    f"{db}: the registry has schema version {versions[0]}; this rjtrial reads version "
                    f"{store.SCHEMA_VERSION} only (create the trial again with this version)"
                )
            rows = conn.execute(select(store.trial)).mappings().all()
        if len(rows) != 1:
            raise RegistryError(f"{db}: expected one trial in table {store.trial.name}, found {len(rows)}")
        row = rows[0]
        try:
            protocol = Protocol.from_dict(json.loads(row["protocol"]))
        except (ValueError, ProtocolError) as exc:
            raise RegistryError(f"{db}: the stored protocol is unreadable ({exc})") from None
        key = None
        if key_path is not None:
            key = seal.read_key_file(key_path)
        registry = cls(engine, protocol, row, key, str(db), key_path=key_path)
        if key is not None:
            registry._opened = seal.unseal_schedule(row["sealed"], key, protocol.id)
        registry.refresh()
        return registry

    def refresh(self) -> None:
        """Read the amendments logged since this registry was opened (another process may have
        amended the protocol); :attr:`protocol` is then the protocol in force."""
        with store.read_transaction(self._engine) as conn:
            self._refresh(conn)

    def _refresh(self, conn) -> None:
        self._chain = amendments.load_state(conn, self.initial_protocol, self.commitment, key=self._key)
        self.protocol = self._chain.protocol

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- properties
    @property
    def commitment(self) -> str:
        """SHA-256 commitment over the sealed schedule and the trial parameters."""
        return self._trial["commitment"]

    @property
    def current_commitment(self) -> str:
        """The commitment of the latest amendment (:attr:`commitment` before any): publish it with the amendment."""
        return self._chain.commitment

    @property
    def trial_id(self) -> str:
        return self.protocol.id

    @property
    def has_key(self) -> bool:
        return self._key is not None

    def _require_key(self, what: str) -> bytes:
        if self._key is None:
            raise KeyFileError(f"{what} needs the trial's key file (--key or ${seal.KEY_ENV})")
        return self._key

    def _require_opened(self, what: str) -> seal.Opened:
        """The unsealed schedule (open() unseals it whenever it reads a key)."""
        if self._opened is None:
            raise KeyFileError(f"{what} needs the trial's key file (--key or ${seal.KEY_ENV})")
        return self._opened

    # ----------------------------------------------------------------- enrolment
    def enrol(
        self,
        referral_id: str,
        *,
        strata: Mapping[str, str],
        answers: Mapping[str, str],
        by: str = "unknown",
        at: datetime | str | None = None,
        site_stratum: str | None = SITE_STRATUM,
        personal: Mapping[str, str] | None = None,
    ) -> EnrolmentResult:
        """Screen a referral and, if eligible, randomise it — in one transaction.

        Parameters
        ----------
        referral_id : str
            The referral's identifier (letters, digits, ``_ . : / -``); each may be
            enrolled once.
        strata : dict
            The referral's level of every stratum in the protocol.
        answers : dict
            The answer to every eligibility question.
        by : str
            Who is enrolling (audit log).
        at : datetime or ISO string, optional
            Time of random assignment (default: now). Must not precede the last
            randomisation: the sequence is consumed in time order.
        site_stratum : str, optional
            The stratum whose levels are sites, for ``site_sequence_number``.
        personal : dict, optional
            Free text that identifies people (names, notes), kept erasably: the audit log
            holds only its salted digest (:mod:`rjtrial.registry.retention`).

        Returns
        -------
        EnrolmentResult
            status "randomised", "ineligible" or "refused". A refusal (unknown
            strata, missing or invalid answers, duplicate referral, exhausted
            sequence, closed trial) writes nothing but its audit entry.
            ``site_sequence_number`` numbers the randomisations at the referral's
            level of ``site_stratum`` (the whole trial's when the protocol has no
            such stratum).
        """
        from rjtrial.registry.enrolment import enrol

        return enrol(
            self,
            referral_id,
            strata=strata,
            answers=answers,
            by=by,
            at=at,
            site_stratum=site_stratum,
            personal=personal,
        )

    def amend(self, amendment, *, by: str, reason: str, at: datetime | str | None = None, seed: int | None = None):
        """Amend the protocol by appending a sealed segment. See :func:`rjtrial.registry.amend.amend`."""
        return amendments.amend(self, amendment, by=by, reason=reason, at=at, seed=seed)

    def amendments(self) -> list[dict[str, Any]]:
        """The amendment history: what changed, when, by whom, why. See :func:`rjtrial.registry.amend.history`."""
        return amendments.history(self)

    def _site_count(self, conn, strata: Mapping[str, str], site_stratum: str | None) -> int:
        """Randomisations so far at the referral's site (the whole trial's without a site stratum)."""
        rows = conn.execute(
            select(store.referrals.c.strata, func.count().label("n"))
            .where(store.referrals.c.sequence_number.is_not(None))
            .group_by(store.referrals.c.strata)
        ).all()
        if site_stratum is None or site_stratum not in self.protocol.strata:
            return sum(int(r.n) for r in rows)
        site = strata.get(site_stratum)
        return sum(int(r.n) for r in rows if decode_map(r.strata).get(site_stratum) == site)

    def site_sequence_numbers(self, *, site_stratum: str = SITE_STRATUM) -> dict[str, int]:
        """Each randomised referral's number at its own site: 1, 2, 3... per level of ``site_stratum``.

        What coordinators are shown in place of the trial-wide ``sequence_number``
        (see :meth:`EnrolmentResult.coordinator_dict`). Without a ``site_stratum`` in
        the protocol the numbers are the trial-wide ones.
        """
        with store.read_transaction(self._engine) as conn:
            return reads._site_numbers(conn, self.protocol, site_stratum)

    def _unseal_mark(self) -> seal.UnsealMark | None:
        """The key file's record of having unsealed the trial (read afresh each time)."""
        if self._key_path is None:
            return None
        return seal.read_unseal_mark(self._key_path)

    def _adaptive_arm(self, conn, strata: Mapping[str, str], draw: float) -> int:
        # Minimisation needs only the counts by strata and arm: the database aggregates
        # (a few dozen rows back, however long the trial), not the whole history.
        rows = conn.execute(
            select(store.referrals.c.strata, store.referrals.c.arm, func.count().label("n"))
            .where(store.referrals.c.sequence_number.is_not(None))
            .group_by(store.referrals.c.strata, store.referrals.c.arm)
        ).all()
        arm_index = {arm: i for i, arm in enumerate(self.protocol.arms)}
        history = [decode_map(r.strata) for r in rows]
        arms = [arm_index[r.arm] for r in rows]
        probabilities = minimisation_probabilities_for(
            self.protocol, history, arms, strata, multiplicity=[int(r.n) for r in rows]
        )
        return choose(probabilities, draw)

    # -------------------------------------------------------------------- events
    def record_event(
        self,
        referral_id: str,
        kind: str,
        *,
        by: str = "unknown",
        detail: Mapping[str, Any] | None = None,
        at: datetime | str | None = None,
        personal: Mapping[str, str] | None = None,
    ) -> int:
        """Record a post-randomisation event; the allocation itself never changes.

        ``kind`` is one of ``treatment_received`` (e.g. the conference was held),
        ``treatment_not_received``, ``withdrawal``, ``crossover`` or ``note``.
        ``at`` (default now) may not be in the future nor before the referral's
        random assignment. ``personal``: free text identifying people, kept erasably (as
        :meth:`enrol`). Returns the event's audit sequence number.
        """
        key = self._require_key("recording an event")
        if kind not in EVENT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(EVENT_KINDS)}; got {kind!r}")
        detail = dict(detail or {})
        try:
            canonical_json(detail)
        except (TypeError, ValueError):
            raise ValueError("detail must be JSON-serialisable (text, numbers, lists, tables)") from None
        personal_logged, personal_row = retention.prepare(personal)
        when = _timestamp(at)
        if when > _timestamp(datetime.now(timezone.utc) + FUTURE_TOLERANCE):
            raise ValueError(f"at={when} is in the future (now {now_utc()})")
        by = str(by)[:100] or "unknown"
        with store.write_transaction(self._engine) as (conn, head_row):
            row = conn.execute(
                select(store.referrals.c.status, store.referrals.c.at).where(
                    store.referrals.c.referral_id == referral_id
                )
            ).first()
            if row is None or row.status != "randomised":
                state = "not enrolled" if row is None else f"{row.status}, not randomised"
                raise RegistryError(f"cannot record {kind} for referral {referral_id!r}: {state}")
            if when < row.at:
                raise RegistryError(
                    f"cannot record {kind} for referral {referral_id!r} at {when}: before its random assignment ({row.at})"
                )
            payload = {"referral_id": referral_id, "kind": kind, "detail": detail, "at": when, "by": by}
            if personal_logged is not None:
                payload["personal"] = personal_logged
            entry = audit.append(conn, head_row, key=key, at=now_utc(), actor=by, action="event", payload=payload)
            if personal_row is not None:
                retention.store_row(conn, entry.seq, referral_id, personal_row)
            conn.execute(
                insert(store.events).values(
                    audit_seq=entry.seq,
                    referral_id=referral_id,
                    kind=kind,
                    detail=canonical_json(detail),
                    at=when,
                    by=by,
                )
            )
        return entry.seq

    # ------------------------------------------------------------- access log
    def record_access(self, action: str, *, by: str, detail: Mapping[str, Any] | None = None) -> int:
        """Log a log-in or an account change of the randomisation service.

        ``action`` is one of ``audit.ACCESS_ACTIONS`` (``login``, ``login_failed``,
        ``login_locked``, ``logout``: need the key) or ``audit.ACCOUNT_ACTIONS``
        (``user_added``, ``user_disabled``, ``user_password``, ``token_issued``:
        logged unsigned when the registry was opened without the key). The entry
        carries no allocation; ``verify`` checks it as part of the chain. Returns
        its audit sequence number.
        """
        if action not in audit.ACCESS_ACTIONS + audit.ACCOUNT_ACTIONS:
            known = ", ".join(audit.ACCESS_ACTIONS + audit.ACCOUNT_ACTIONS)
            raise ValueError(f"action must be one of {known}; got {action!r}")
        key = self._key if action in audit.ACCOUNT_ACTIONS else self._require_key(f"logging {action}")
        detail = dict(detail or {})
        try:
            canonical_json(detail)
        except (TypeError, ValueError):
            raise ValueError("detail must be JSON-serialisable (text, numbers, lists, tables)") from None
        by = str(by)[:100] or "unknown"
        with store.write_transaction(self._engine) as (conn, head_row):
            entry = audit.append(conn, head_row, key=key, at=now_utc(), actor=by, action=action, payload=detail)
        return entry.seq

    # ----------------------------------------------------------- reading, verify
    def participants(self):
        """The randomised participants, one row per referral in sequence order, without an
        audit entry (a read of what ``verify`` and the reports read; :meth:`export` is the
        logged hand-over of the table). See :func:`rjtrial.registry.reports.participants_frame`."""
        from rjtrial.registry.reports import participants_frame

        return participants_frame(self)

    def export(self, *, by: str = "unknown", blinded: bool = False):
        """The participants table, logged in the audit log. See :func:`rjtrial.registry.reports.participants_frame`;
        ``blinded=True``: arms replaced by neutral codes (needs the key), :func:`rjtrial.registry.blinding.blinded_export`."""
        from rjtrial.registry.reports import participants_frame

        if blinded:
            from rjtrial.registry.blinding import blinded_export

            return blinded_export(self, by=by)

        frame = participants_frame(self)
        with store.write_transaction(self._engine) as (conn, head_row):
            audit.append(
                conn,
                head_row,
                key=self._key,
                at=now_utc(),
                actor=str(by)[:100] or "unknown",
                action="export",
                payload={"rows": int(len(frame)), "columns": list(frame.columns)},
            )
        return frame

    def freeze_sap(self, plan, *, by: str = "unknown", name: str | None = None):
        """Record the analysis plan's SHA-256 before unblinding. See :func:`rjtrial.registry.blinding.freeze_sap`."""
        from rjtrial.registry.blinding import freeze_sap

        return freeze_sap(self, plan, by=by, name=name)

    def unblind(self, *, by: str, reason: str):
        """Reveal which code is which arm (key, reason, a frozen plan). See :func:`rjtrial.registry.blinding.unblind`."""
        from rjtrial.registry.blinding import unblind

        return unblind(self, by=by, reason=reason)

    def consort(self):
        """CONSORT flow counts from the registry. See :func:`rjtrial.registry.reports.consort_counts`."""
        from rjtrial.registry.reports import consort_counts

        return consort_counts(self)

    def verify(self, *, expected_commitment: str | None = None, receipts=()):
        """Check the audit chain and every allocation. See :func:`rjtrial.registry.verify.verify`."""
        from rjtrial.registry.verify import verify

        return verify(self, expected_commitment=expected_commitment, receipts=receipts)

    def referrals(
        self,
        *,
        status: str | None = None,
        sites=None,
        site_stratum: str | None = SITE_STRATUM,
        newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ):
        """The referrals, newest first, strata decoded and numbered per site; a read (no audit entry).

        See :func:`rjtrial.registry.reads.referrals` for the parameters; returns a
        :class:`~rjtrial.registry.reads.ReferralPage` (``referrals``, ``total``).
        """
        return reads.referrals(
            self,
            status=status,
            sites=sites,
            site_stratum=site_stratum,
            newest_first=newest_first,
            limit=limit,
            offset=offset,
        )

    def find(self, referral_id: str, *, site_stratum: str | None = SITE_STRATUM):
        """The :class:`~rjtrial.registry.reads.Referral` whose id is ``referral_id`` once normalised, or None."""
        return reads.find(self, referral_id, site_stratum=site_stratum)

    def audit_page(self, *, limit: int = 100, offset: int = 0, newest_first: bool = True):
        """A page of the audit log, payloads decoded (:class:`~rjtrial.registry.reads.AuditPage`)."""
        return reads.audit_page(self, limit=limit, offset=offset, newest_first=newest_first)

    def audit_log(self):
        """The audit log as a DataFrame (seq, at, actor, action, payload, hash)."""
        import pandas as pd

        with store.read_transaction(self._engine) as conn:
            rows = conn.execute(select(store.audit).order_by(store.audit.c.seq)).mappings().all()
        return pd.DataFrame([dict(r) for r in rows], columns=[c.name for c in store.audit.columns])

    # ---------------------------------------------------------- interim looks
    def record_interim_look(self, summary: Mapping[str, Any], *, by: str) -> int:
        """Log an interim look's summary. See :func:`rjtrial.registry.monitoring.record`."""
        from rjtrial.registry.monitoring import record

        return record(self, summary, by=by)

    def interim_looks(self, *, design_fingerprint: str | None = None) -> list[dict[str, Any]]:
        """The interim looks logged, in order. See :func:`rjtrial.registry.monitoring.interim_looks`."""
        from rjtrial.registry.monitoring import interim_looks

        return interim_looks(self, design_fingerprint=design_fingerprint)

    # -------------------------------------------------------------------- unseal
    def unseal(self, *, by: str = "unknown") -> UnsealResult:
        """Reveal the schedule after the trial, check it against the commitment, close enrolment.

        Irreversible: the unseal entry joins the audit chain (every later entry chains
        from it) and the key file records it (``unsealed <trial> <entry> <hash>``), in
        the same transaction. Enrolment with that key file is refused from then on,
        whatever the database says, and ``verify`` with it fails if the unseal entry
        has gone (a trial "reopened" by deleting it and clearing ``closed``).
        """
        from rjtrial.registry.unseal import unseal

        return unseal(self, by=by)


def _unsealed_in_log(conn) -> bool:
    """Does the audit log hold an unseal entry (whatever ``closed`` says)?"""
    return conn.execute(select(store.audit.c.seq).where(store.audit.c.action == "unseal").limit(1)).first() is not None


def _last_randomised_at(conn, head_row: Mapping[str, Any], latest: str) -> str:
    """The time the next randomisation must not precede.

    The head's ``last_randomised_at``, unless it lies in the future (which no
    enrolment can write: the store was edited). Then the latest randomisation time
    that is not in the future: a time planted in 2099 cannot stop the trial.
    """
    last = head_row["last_randomised_at"]
    if last <= latest:
        return last
    found = conn.execute(
        select(func.max(store.referrals.c.at)).where(
            store.referrals.c.sequence_number.is_not(None), store.referrals.c.at <= latest
        )
    ).scalar()
    return found or ""


def _holds_registry(db) -> bool:
    engine = store.make_engine(db)
    try:
        return store.has_registry(engine)
    finally:
        engine.dispose()


def referral_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The rj_referrals columns of an enrolment record (as logged in its audit entry)."""
    return {
        "referral_id": record["referral_id"],
        "referral_key": referral_key(record["referral_id"]),
        "status": record["status"],
        "at": record["at"],
        "by": record["by"],
        "strata": canonical_json(record["strata"]),
        "answers": canonical_json(record["answers"]),
        "reasons": canonical_json(record["reasons"]),
        "sequence_number": record["sequence_number"],
        "sequence_key": record["sequence_key"],
        "slot": record["slot"],
        "arm": record["arm"],
        "value": record["value"],
        "reveal": record["reveal"],
    }


def key_path_from_env(explicit: str | os.PathLike | None) -> str | None:
    """The key path given, else the ``RJTRIAL_KEY`` environment variable, else None."""
    if explicit:
        return str(explicit)
    return os.environ.get(seal.KEY_ENV) or None
