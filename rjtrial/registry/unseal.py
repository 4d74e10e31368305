"""Unsealing: reveal the schedule after the trial, check it, and close enrolment for good.

See :meth:`rjtrial.registry.Registry.unseal`.
"""

from __future__ import annotations

import json

from rjtrial.registry import audit, seal, segments, store
from rjtrial.registry.core import UnsealResult, now_utc


def unseal(registry, *, by: str = "unknown") -> UnsealResult:
    """Reveal the first schedule and every amendment's segment, check them against the commitments
    and the seeds, log the unseal entry and mark the key file (in one transaction)."""
    from rjtrial.registry.verify import recompute_commitment

    key = registry._require_key("unsealing")
    registry.refresh()
    opened, initial, chain = registry._opened, registry.initial_protocol, registry._chain
    problems = [] if chain.problem is None else [f"amendment chain: {chain.problem}"]
    problems += segments.unsealed_slots_problems(registry)
    commitment_ok = recompute_commitment(registry) == registry.commitment
    regenerated = seal.regenerated_matches(opened, initial, json.loads(registry._trial["schedule"]))
    for segment, record in zip(chain.segments, chain.records):
        if not segments.regenerated_matches(segment, record.protocol):
            regenerated = False
    with store.write_transaction(registry._engine) as (conn, head_row):
        entry = audit.append(
            conn,
            head_row,
            key=key,
            at=now_utc(),
            actor=str(by)[:100] or "unknown",
            action="unseal",
            payload={
                "seed": str(opened.seed),
                "segment_seeds": [str(segment.seed) for segment in chain.segments],
                "commitment_ok": commitment_ok,
                "regenerated": regenerated,
                "problems": problems,
            },
            head_updates={"closed": 1},
        )
        if registry._key_path is not None and registry._unseal_mark() is None:
            # before the commit: a crash between the two leaves the key marked, the trial closed
            seal.mark_unsealed(registry._key_path, registry.trial_id, entry.seq, entry.hash)
    sequences, draws = segments.whole_schedule(opened, chain.segments, initial.arms)
    return UnsealResult(
        commitment_ok,
        regenerated,
        opened.seed,
        sequences,
        draws,
        tuple(problems),
        segment_seeds=tuple(segment.seed for segment in chain.segments),
    )
