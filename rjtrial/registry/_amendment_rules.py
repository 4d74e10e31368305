"""Applying a protocol amendment: what may change in a running trial, and the words for it.

:func:`apply_amendment` checks an :class:`~rjtrial.registry.amend.Amendment` against the
protocol in force and returns the amended protocol (or every reason it is refused);
:func:`describe` says in words what changed. Both are re-exported by
:mod:`rjtrial.registry.amend`, where amendments are parsed, chained and applied to a registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from rjtrial.errors import AmendmentError, ProtocolError
from rjtrial.protocol import Protocol

if TYPE_CHECKING:
    from rjtrial.registry.amend import Amendment


def apply_amendment(
    protocol: Protocol, closed: Mapping[str, tuple[str, ...]], amendment: Amendment, *, source: str | None = None
) -> tuple[Protocol, dict[str, tuple[str, ...]]]:
    """The amended protocol and closed levels, or :class:`AmendmentError` with every reason it is refused.

    Parameters
    ----------
    protocol : Protocol
        The protocol in force (the trial's, with every earlier amendment applied).
    closed : dict
        Strata levels closed by earlier amendments.
    amendment : Amendment

    Returns
    -------
    (Protocol, dict)
        The amended protocol (new levels appended after the existing ones, so that every
        sequence key and every earlier record stays valid) and the closed levels.
    """
    problems: list[str] = []
    if amendment.arms is not None and tuple(amendment.arms) != tuple(protocol.arms):
        removed = [a for a in protocol.arms if a not in amendment.arms]
        added = [a for a in amendment.arms if a not in protocol.arms]
        if removed:
            problems.append(
                f"trial.arms: removing arm(s) {', '.join(map(repr, removed))} is refused: participants allocated to "
                "them stay in the trial and are analysed by intention to treat; close strata or end the trial instead"
            )
        if added:
            problems.append(
                f"trial.arms: adding arm(s) {', '.join(map(repr, added))} is refused: the sealed sequences allocate "
                "among the arms fixed at initialisation; a new arm needs a new trial"
            )
        if not removed and not added:
            problems.append("trial.arms: the order of the arms is fixed (the first is the control)")
    if amendment.ratio is not None and tuple(amendment.ratio) != tuple(protocol.ratio):
        problems.append(
            f"trial.ratio: changing the allocation ratio of ongoing strata ({':'.join(map(str, protocol.ratio))} to "
            f"{':'.join(map(str, amendment.ratio))}) is refused: their sealed blocks and the allocations already "
            "made follow the ratio fixed at initialisation"
        )
    closed_now = {k: tuple(v) for k, v in closed.items()}
    data = protocol.to_dict()
    strata = data["strata"]
    for name, levels in amendment.add_levels.items():
        if name not in strata:
            problems.append(f"strata.add.{name}: no such stratum (strata: {', '.join(strata) or 'none'})")
            continue
        existing = [lv for lv in levels if lv in strata[name]]
        if existing:
            problems.append(f"strata.add.{name}: level(s) {', '.join(map(repr, existing))} already in the protocol")
            continue
        strata[name] = list(strata[name]) + list(levels)
    for name, levels in amendment.close_levels.items():
        if name not in strata:
            problems.append(f"strata.close.{name}: no such stratum (strata: {', '.join(strata) or 'none'})")
            continue
        unknown = [lv for lv in levels if lv not in strata[name]]
        if unknown:
            problems.append(
                f"strata.close.{name}: no level(s) {', '.join(map(repr, unknown))} (levels: {', '.join(strata[name])})"
            )
            continue
        already = [lv for lv in levels if lv in closed_now.get(name, ())]
        if already:
            problems.append(f"strata.close.{name}: level(s) {', '.join(map(repr, already))} already closed")
            continue
        now = tuple(closed_now.get(name, ())) + tuple(levels)
        if set(now) >= set(strata[name]):
            problems.append(
                f"strata.close.{name}: closing every level of stratum {name!r} would end enrolment; "
                "end the trial by unsealing it"
            )
            continue
        closed_now[name] = now
    capacity = protocol.randomisation.capacity
    if amendment.capacity is not None:
        if amendment.capacity < capacity:
            problems.append(
                f"randomisation.capacity: {amendment.capacity} is below the {capacity} slots already sealed per "
                "sequence; capacity can only be raised (close strata to stop enrolment)"
            )
        elif amendment.capacity == capacity:
            problems.append(f"randomisation.capacity: already {capacity}")
        else:
            data["randomisation"]["capacity"] = amendment.capacity
    if amendment.eligibility is not None:
        data["eligibility"] = [dict(q) for q in amendment.eligibility]
    if problems:
        raise AmendmentError(problems, source=source)
    try:
        amended = Protocol.from_dict(data)
    except ProtocolError as exc:
        raise AmendmentError([f"the amended protocol is invalid: {p}" for p in exc.problems], source=source) from None
    if amended == protocol and closed_now == {k: tuple(v) for k, v in closed.items()}:
        raise AmendmentError(["it changes nothing"], source=source)
    return amended, closed_now


def describe(amendment: Amendment, before: Protocol, after: Protocol) -> list[str]:
    """What an amendment changed, in words (one item per change)."""
    out = []
    for name, levels in amendment.add_levels.items():
        out.append(f"adds {name} level(s) {', '.join(levels)}")
    for name, levels in amendment.close_levels.items():
        out.append(f"closes {name} level(s) {', '.join(levels)}")
    if after.randomisation.capacity != before.randomisation.capacity:
        out.append(
            f"raises capacity from {before.randomisation.capacity} to {after.randomisation.capacity} slots per sequence"
        )
    if amendment.eligibility is not None:
        old = {q.id for q in before.eligibility}
        new = {q.id for q in after.eligibility}
        parts = []
        if new - old:
            parts.append(f"adds {', '.join(sorted(new - old))}")
        if old - new:
            parts.append(f"drops {', '.join(sorted(old - new))}")
        changed = [q.id for q in after.eligibility if q.id in old and q not in before.eligibility]
        if changed:
            parts.append(f"changes {', '.join(changed)}")
        out.append("eligibility questions: " + ("; ".join(parts) if parts else "unchanged"))
    return out
