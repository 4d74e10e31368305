"""Concurrent writers and crashes on one SQLite file (rjtrial/registry/store.py write_transaction).

Eight OS processes, each with its own Registry on the same file, enrol at once: the
sequence must come out gap-free and every slot used once. A writer killed with
SIGKILL at random moments must leave every enrolment either complete or absent.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from registry_fixtures import ELIGIBLE, KILL_WRITER, concurrent_worker, make_protocol, new_registry, rows

from rjtrial.registry import Registry

pytestmark = pytest.mark.slow

WORKERS = 8


def _check_store(db: Path, key: Path):
    """Invariants that hold after any set of concurrent or interrupted writers."""
    with Registry.open(db, key_path=key) as reg:
        result = reg.verify()
        assert result.ok, result.problems
        adaptive = reg.protocol.randomisation.is_adaptive
    used = rows(db, "SELECT * FROM rj_referrals WHERE status = 'randomised' ORDER BY sequence_number")
    numbers = [r["sequence_number"] for r in used]
    assert numbers == list(range(1, len(used) + 1))
    pairs = [(r["sequence_key"], r["slot"]) for r in used]
    assert len(set(pairs)) == len(pairs)
    by_key: dict[str, list[int]] = {}
    for k, s in pairs:
        by_key.setdefault(k, []).append(s)
    for k, slots in by_key.items():
        assert slots == list(range(len(slots))), k  # contiguous from 0, in sequence order
    if adaptive:
        assert [s for _, s in pairs] == list(range(len(pairs)))
    times = [r["at"] for r in used]
    assert times == sorted(times)
    # each referral row has its enrolment entry and each enrolment entry its row
    logged = [
        json.loads(r["payload"])["referral_id"]
        for r in rows(db, "SELECT payload FROM rj_audit WHERE action = 'enrolment'")
    ]
    stored = [r["referral_id"] for r in rows(db, "SELECT referral_id FROM rj_referrals")]
    assert sorted(logged) == sorted(stored) and len(set(stored)) == len(stored)
    (head,) = rows(db, "SELECT * FROM rj_head")
    (last,) = rows(db, "SELECT seq, hash FROM rj_audit ORDER BY seq DESC LIMIT 1")
    assert (head["audit_seq"], head["audit_hash"], head["sequence_number"]) == (last["seq"], last["hash"], len(used))
    return used


@pytest.mark.parametrize("method, per_worker", [("stratified_blocks", 40), ("minimisation", 20)])
def test_eight_processes_enrolling_at_once_share_one_gap_free_sequence(tmp_path, method, per_worker):
    with new_registry(tmp_path, make_protocol(method, capacity=400), seed=77):
        pass
    db, key = tmp_path / "trial.db", tmp_path / "trial.key"
    ctx = multiprocessing.get_context("spawn")
    ready, go = ctx.Queue(), ctx.Event()
    procs = [
        ctx.Process(
            target=concurrent_worker, args=(str(db), str(key), w, per_worker, str(tmp_path / f"w{w}.json"), ready, go)
        )
        for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    try:
        for _ in range(WORKERS):
            ready.get(timeout=60)
        go.set()
        for p in procs:
            p.join(timeout=90)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
    assert [p.exitcode for p in procs] == [0] * WORKERS

    outputs = [json.loads((tmp_path / f"w{w}.json").read_text()) for w in range(WORKERS)]
    # the writers really ran at the same time: each one's enrolments overlapped another's in time
    for o in outputs:
        assert any(p is not o and p["start"] < o["end"] and o["start"] < p["end"] for p in outputs)
    results = [r for o in outputs for r in o["results"]]
    assert len(results) == WORKERS * (per_worker + 1)
    shared = [r for r in results if r["referral_id"] == "SHARED-001"]
    assert Counter(r["status"] for r in shared) == {"randomised": 1, "refused": WORKERS - 1}
    assert all("already enrolled" in " ".join(r["reasons"]) for r in shared if r["status"] == "refused")
    own = [r for r in results if r["referral_id"] != "SHARED-001"]
    assert {r["status"] for r in own} <= {"randomised", "ineligible"}

    used = _check_store(db, key)
    randomised = [r for r in results if r["status"] == "randomised"]
    assert len(used) == len(randomised) > WORKERS * per_worker * 0.7
    # what each process was told is what the store holds
    stored = {r["referral_id"]: (r["arm"], r["sequence_number"], r["receipt"]) for r in used}
    assert {r["referral_id"]: (r["arm"], r["sequence_number"], r["receipt"]) for r in randomised} == stored
    assert {r["by"] for r in used} == {f"w{w}" for w in range(WORKERS)}


def test_a_writer_killed_with_sigkill_leaves_complete_or_absent_enrolments(tmp_path):
    with new_registry(tmp_path, make_protocol(capacity=1000), seed=78):
        pass
    db, key = tmp_path / "trial.db", tmp_path / "trial.key"
    rng = np.random.default_rng(5)
    delays = rng.uniform(0.02, 0.4, size=5)
    done_total = 0
    for round_, delay in enumerate(delays):
        out = tmp_path / f"writer{round_}.out"
        with open(out, "w") as handle:
            proc = subprocess.Popen(
                [sys.executable, "-c", KILL_WRITER, str(db), str(key), f"K{round_}"],
                stdout=handle,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 60
            while "ready" not in out.read_text():
                assert proc.poll() is None, out.read_text()
                assert time.monotonic() < deadline, "writer never became ready"
                time.sleep(0.01)
            time.sleep(float(delay))
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
        done = [line.split()[1] for line in out.read_text().splitlines() if line.startswith("done ")]
        done_total += len(done)

        used = _check_store(db, key)
        stored = {r["referral_id"] for r in rows(db, "SELECT referral_id FROM rj_referrals")}
        # every enrolment the writer saw return is durable; at most one more (committed, not yet printed)
        assert set(done) <= stored
        this_round = {rid for rid in stored if rid.startswith(f"K{round_}-")}
        assert len(done) <= len(this_round) <= len(done) + 1
        # and the registry carries on: the next enrolment takes the next sequence number
        with Registry.open(db, key_path=key) as reg:
            nxt = reg.enrol(f"AFTER-{round_}", strata={"site": "south", "offence": "violence"}, answers=ELIGIBLE)
        assert nxt.status == "randomised" and nxt.sequence_number == len(used) + 1
    assert done_total >= 5, "the writer was never killed in the middle of enrolling"
    _check_store(db, key)
