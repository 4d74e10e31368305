"""Reading the registry: its referrals, one referral, pages of the audit log.

The registry's one door for readers (the randomisation service, reports): nothing
outside :mod:`rjtrial.registry` queries its tables. The strata, answers and reasons
of a referral are stored as JSON text; they are decoded here, by :func:`decode_map`
and :func:`decode_list`, and nowhere else.

>>> import tempfile, pathlib
>>> from rjtrial import Protocol, Registry
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> reg = Registry.create(tmp / "t.db", Protocol.from_toml("synthetic/protocols/jrc-london-burglary.toml"),
...                       key_path=tmp / "t.key", seed=1)
>>> answers = {"admitted": "yes", "offender_consent": "yes", "victim_consent": "yes", "domestic_abuse": "no"}
>>> for i, site in enumerate(["london", "northumbria", "london"]):
...     _ = reg.enrol(f"R-{i}", strata={"site": site, "offence": "property"}, answers=answers)
>>> [(r.referral_id, r.sequence_number, r.site_sequence_number) for r in reg.referrals().referrals]
[('R-2', 3, 2), ('R-1', 2, 1), ('R-0', 1, 1)]
>>> reg.find("r-1").referral_id  # ids are found once normalised
'R-1'
>>> page = reg.audit_page(limit=2)
>>> page.total, [e.action for e in page.entries]
(4, ['enrolment', 'enrolment'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from sqlalchemy import func, select

from rjtrial.registry import store

STATUSES = ("randomised", "ineligible")
#: The stratum whose levels are sites (per-site numbers).
SITE_STRATUM = "site"


def decode_map(text: str, order: Iterable[str] = ()) -> dict[str, Any]:
    """A stored JSON object (a referral's strata or answers) as a dict, keys in ``order`` first.

    Parameters
    ----------
    text : str
        The stored JSON text.
    order : iterable of str
        Keys to put first, in this order (the protocol's order of strata); the others follow.

    Returns
    -------
    dict
        Empty when the text is not a JSON object (a damaged row; ``verify`` reports it).
    """
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    if not isinstance(value, dict):
        return {}
    return {k: value[k] for k in order if k in value} | value


def decode_list(text: str) -> list[Any]:
    """A stored JSON list (a referral's reasons) as a list; empty when it is not one."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


@dataclass(frozen=True)
class Referral:
    """One referral as the registry holds it (randomised or screened out).

    Attributes
    ----------
    referral_id : str
    status : str
        ``randomised`` or ``ineligible`` (screened out).
    at : str
        When it was randomised or screened out (ISO 8601, UTC).
    by : str
        Who enrolled it.
    strata : dict
        Its level of every stratum, in the protocol's order.
    answers : dict
        Its answer to every eligibility question.
    reasons : tuple of str
        Why it was screened out (``question=answer``); empty when randomised.
    arm : str or None
        The allocated arm (randomised only).
    sequence_number : int or None
        The trial-wide order of random assignment (randomised only). Not for
        coordinators: see :meth:`coordinator_dict`.
    site_sequence_number : int or None
        Its number among the randomisations at its own site (the trial-wide number when
        the protocol has no site stratum); None when screened out.
    receipt : str
        The receipt handed to whoever enrolled it.
    audit_seq : int
        Its entry in the audit log.
    """

    referral_id: str
    status: str
    at: str
    by: str
    strata: Mapping[str, str] = field(default_factory=dict)
    answers: Mapping[str, str] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    arm: str | None = None
    sequence_number: int | None = None
    site_sequence_number: int | None = None
    receipt: str = ""
    audit_seq: int = 0

    @property
    def randomised_on(self) -> str | None:
        """The time of random assignment; None when screened out."""
        return self.at if self.status == "randomised" else None

    def to_dict(self) -> dict[str, Any]:
        """Everything but the answers (for managers): JSON-ready."""
        return {
            "status": self.status,
            "referral_id": self.referral_id,
            "arm": self.arm,
            "sequence_number": self.sequence_number,
            "site_sequence_number": self.site_sequence_number,
            "receipt": self.receipt,
            "reasons": list(self.reasons),
            "randomised_on": self.randomised_on,
            "strata": dict(self.strata),
            "at": self.at,
            "by": self.by,
        }

    def coordinator_dict(self) -> dict[str, Any]:
        """What a coordinator may be shown: :meth:`to_dict` without the trial-wide
        ``sequence_number`` (see :meth:`rjtrial.registry.EnrolmentResult.coordinator_dict`)."""
        out = self.to_dict()
        del out["sequence_number"]
        return out


@dataclass(frozen=True)
class ReferralPage:
    """Some referrals and how many match in all.

    Attributes
    ----------
    referrals : tuple of Referral
        The page asked for, newest first unless asked otherwise.
    total : int
        How many referrals match the filters, on every page.
    """

    referrals: tuple[Referral, ...]
    total: int


@dataclass(frozen=True)
class LogEntry:
    """One entry of the audit log as it is stored (see :class:`rjtrial.registry.audit.AuditEntry`).

    ``payload`` is the decoded JSON object (the stored text when it is not one);
    ``signed`` says whether the entry carries a signature.
    """

    seq: int
    at: str
    actor: str
    action: str
    payload: Any
    prev_hash: str
    hash: str
    signed: bool


@dataclass(frozen=True)
class AuditPage:
    """Some entries of the audit log and how many there are in all."""

    entries: tuple[LogEntry, ...]
    total: int


def _site_numbers(conn, protocol, site_stratum: str | None) -> dict[str, int]:
    """Each randomised referral's number at its own site (the trial-wide one without a site stratum)."""
    rows = conn.execute(
        select(store.referrals.c.referral_id, store.referrals.c.strata)
        .where(store.referrals.c.sequence_number.is_not(None))
        .order_by(store.referrals.c.sequence_number)
    ).all()
    by_site = site_stratum in protocol.strata
    counts: dict[Any, int] = {}
    out = {}
    for referral_id, strata_json in rows:
        site = decode_map(strata_json).get(site_stratum) if by_site and site_stratum is not None else None
        counts[site] = counts.get(site, 0) + 1
        out[referral_id] = counts[site]
    return out


def _referral(row: Mapping[Any, Any], protocol, site_numbers: Mapping[str, int]) -> Referral:
    return Referral(
        referral_id=row["referral_id"],
        status=row["status"],
        at=row["at"],
        by=row["by"],
        strata=decode_map(row["strata"], protocol.strata),
        answers=decode_map(row["answers"], (q.id for q in protocol.eligibility)),
        reasons=tuple(str(r) for r in decode_list(row["reasons"])),
        arm=row["arm"],
        sequence_number=row["sequence_number"],
        site_sequence_number=site_numbers.get(row["referral_id"]),
        receipt=row["receipt"],
        audit_seq=row["audit_seq"],
    )


def referrals(
    registry,
    *,
    status: str | None = None,
    sites: Iterable[str] | None = None,
    site_stratum: str | None = SITE_STRATUM,
    newest_first: bool = True,
    limit: int | None = None,
    offset: int = 0,
) -> ReferralPage:
    """The referrals (randomised and screened out) of a registry, a page at a time.

    Parameters
    ----------
    registry : rjtrial.registry.Registry
    status : {"randomised", "ineligible"}, optional
        Only referrals with this status (default: both).
    sites : iterable of str, optional
        Only referrals at these levels of ``site_stratum`` (default: every site; ignored
        when the protocol has no such stratum).
    site_stratum : str, optional
        The stratum whose levels are sites (for ``site_sequence_number`` and ``sites``).
    newest_first : bool
        In the order of the audit log, newest first (default) or oldest first.
    limit, offset : int, optional
        The page: at most ``limit`` referrals (default: all) after skipping ``offset``.

    Returns
    -------
    ReferralPage
        ``referrals`` (:class:`Referral`: strata in the protocol's order, per-site numbers
        set) and ``total``, how many match the filters.
    """
    if status is not None and status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)} or None; got {status!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a whole number >= 0 or None; got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a whole number >= 0; got {offset!r}")
    protocol = registry.protocol
    table = store.referrals
    query = select(table)
    if status is not None:
        query = query.where(table.c.status == status)
    query = query.order_by(table.c.audit_seq.desc() if newest_first else table.c.audit_seq)
    wanted = None if sites is None else set(sites)
    if wanted is not None and (site_stratum is None or site_stratum not in protocol.strata):
        wanted = None  # no site stratum: every referral is at "the" site
    with store.read_transaction(registry._engine) as conn:
        numbers = _site_numbers(conn, protocol, site_stratum)
        if wanted is None:
            count = select(func.count()).select_from(table)
            if status is not None:
                count = count.where(table.c.status == status)
            total = int(conn.execute(count).scalar_one())
            if limit is not None:
                query = query.limit(limit)
            rows = conn.execute(query.offset(offset)).mappings().all()
            return ReferralPage(tuple(_referral(r, protocol, numbers) for r in rows), total)
        # sites live inside the strata JSON: filtered here, after decoding (portable across back ends)
        rows = conn.execute(query).mappings().all()
    stratum = site_stratum or ""  # not None here: a site filter needs the site stratum
    mine = [r for r in (_referral(row, protocol, numbers) for row in rows) if r.strata.get(stratum) in wanted]
    end = None if limit is None else offset + limit
    return ReferralPage(tuple(mine[offset:end]), len(mine))


def find(registry, referral_id: str, *, site_stratum: str | None = SITE_STRATUM) -> Referral | None:
    """The referral whose id is ``referral_id`` once normalised (NFKC, case-folded), or None."""
    from rjtrial.registry.core import referral_key

    if not isinstance(referral_id, str) or not 0 < len(referral_id) <= 400:
        return None
    with store.read_transaction(registry._engine) as conn:
        row = (
            conn.execute(select(store.referrals).where(store.referrals.c.referral_key == referral_key(referral_id)))
            .mappings()
            .first()
        )
        if row is None:
            return None
        numbers = _site_numbers(conn, registry.protocol, site_stratum) if row["sequence_number"] is not None else {}
    return _referral(row, registry.protocol, numbers)


def audit_page(registry, *, limit: int = 100, offset: int = 0, newest_first: bool = True) -> AuditPage:
    """A page of the audit log (``limit`` entries after ``offset``), newest first by default."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a whole number >= 0; got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ValueError(f"offset must be a whole number >= 0; got {offset!r}")
    table = store.audit
    with store.read_transaction(registry._engine) as conn:
        total = int(conn.execute(select(func.count()).select_from(table)).scalar_one())
        rows = (
            conn.execute(
                select(table).order_by(table.c.seq.desc() if newest_first else table.c.seq).limit(limit).offset(offset)
            )
            .mappings()
            .all()
        )
    entries = []
    for r in rows:
        try:
            payload = json.loads(r["payload"])
        except (TypeError, ValueError):
            payload = r["payload"]
        entries.append(
            LogEntry(
                r["seq"], r["at"], r["actor"], r["action"], payload, r["prev_hash"], r["hash"], bool(r["signature"])
            )
        )
    return AuditPage(tuple(entries), total)
