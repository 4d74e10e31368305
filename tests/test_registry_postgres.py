"""The registry on PostgreSQL: the same code as on SQLite, through a database URL.

Needs a server: set ``RJTRIAL_TEST_POSTGRES_URL`` (``.ci/run`` starts one with
``scripts/postgres.sh``). Outside CI the tests are skipped, with that reason, when
it is unset; in CI (``CI=true``) an unset URL is a failure, never a silent skip.
"""

from __future__ import annotations

import multiprocessing

import pytest

from rjtrial import Protocol
from rjtrial.registry import Registry

pytestmark = pytest.mark.postgres

PROTOCOL = """
[trial]
id = "pg-trial"
name = "PostgreSQL trial"
arms = ["control", "conference"]

[randomisation]
method = "{method}"
{params}
capacity = 400

[strata]
site = ["london", "northumbria"]
offence = ["property", "violence"]

[[eligibility]]
id = "victim_consent"
question = "Has the victim consented?"
eligible_if = "yes"
"""
PARAMS = {"stratified_blocks": "block_sizes = [2, 4]", "minimisation": "probability = 0.8"}
ANSWERS = {"victim_consent": "yes"}


def _strata(i: int) -> dict[str, str]:
    return {"site": ["london", "northumbria"][i % 2], "offence": ["property", "violence"][(i // 2) % 2]}


@pytest.fixture
def database():
    from registry_fixtures import fresh_postgres_database, postgres_url_or_skip

    with fresh_postgres_database(postgres_url_or_skip()) as url:
        yield url


def _protocol(method: str) -> Protocol:
    return Protocol.from_toml_string(PROTOCOL.format(method=method, params=PARAMS[method]))


@pytest.mark.parametrize("method", ["stratified_blocks", "minimisation"])
def test_enrol_verify_export_on_postgres(database, tmp_path, method):
    protocol = _protocol(method)
    reg = Registry.create(database, protocol, key_path=tmp_path / "k.key", seed=7)
    for i in range(30):
        assert reg.enrol(f"R{i}", strata=_strata(i), answers=ANSWERS, by="t").status == "randomised"
    assert reg.enrol("X", strata=_strata(0), answers={"victim_consent": "no"}).status == "ineligible"
    assert reg.enrol("R1", strata=_strata(0), answers=ANSWERS).status == "refused"
    reg.record_event("R3", "treatment_received", by="t")
    assert reg.verify().ok
    frame = reg.export()
    assert frame["sequence_number"].tolist() == list(range(1, 31))
    assert bool(frame.loc[frame["id"] == "R3", "treatment_received"].item())
    reg.close()


@pytest.mark.parametrize("method", ["stratified_blocks", "minimisation"])
def test_same_seed_gives_same_allocations_on_postgres_and_sqlite(database, tmp_path, method):
    protocol = _protocol(method)
    arms = []
    for db, key in ((database, tmp_path / "pg.key"), (tmp_path / "t.db", tmp_path / "sq.key")):
        with Registry.create(db, protocol, key_path=key, seed=11) as reg:
            arms.append([reg.enrol(f"R{i}", strata=_strata(i * 7 % 5), answers=ANSWERS).arm for i in range(40)])
            assert reg.verify().ok
    assert arms[0] == arms[1]


def test_tampered_allocation_fails_verify_on_postgres(database, tmp_path):
    from sqlalchemy import create_engine, text

    reg = Registry.create(database, _protocol("stratified_blocks"), key_path=tmp_path / "k.key", seed=3)
    results = [reg.enrol(f"R{i}", strata=_strata(i), answers=ANSWERS) for i in range(6)]
    engine = create_engine(database)
    other = "control" if results[2].arm == "conference" else "conference"
    with engine.begin() as conn:
        conn.execute(text("UPDATE rj_referrals SET arm = :arm WHERE referral_id = 'R2'"), {"arm": other})
    engine.dispose()
    result = Registry.open(database).verify()
    assert not result.ok
    assert "'R2'" in result.problems[0]
    reg.close()


def _writer(url: str, key: str, worker: int, count: int, queue) -> None:
    try:
        with Registry.open(url, key_path=key) as reg:
            out = [
                reg.enrol(
                    f"W{worker}-{i}", strata=_strata(worker + i), answers=ANSWERS, by=f"w{worker}"
                ).sequence_number
                for i in range(count)
            ]
        queue.put(("ok", out))
    except Exception as exc:  # pragma: no cover - reported to the parent
        queue.put(("error", repr(exc)))


@pytest.mark.slow
def test_eight_concurrent_writers_on_postgres(database, tmp_path):
    key = tmp_path / "k.key"
    Registry.create(database, _protocol("stratified_blocks"), key_path=key, seed=5).close()
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_writer, args=(database, str(key), w, 25, queue)) for w in range(8)]
    for p in workers:
        p.start()
    outcomes = [queue.get(timeout=120) for _ in workers]
    for p in workers:
        p.join(timeout=60)
    errors = [detail for status, detail in outcomes if status != "ok"]
    assert not errors
    numbers = sorted(n for _, out in outcomes for n in out)
    assert numbers == list(range(1, 8 * 25 + 1))
    with Registry.open(database, key_path=key) as reg:
        assert reg.verify().ok
        frame = reg.export()
    for _, group in frame.groupby(["site", "offence"]):
        assert sorted(group["sequence_number"]) == group["sequence_number"].tolist()


CLIENTS = 16


def _thread_client(url: str, key: str, worker: int, count: int, barrier, out: list) -> None:
    """One of the concurrent clients: its own Registry (own engine, own connection)."""
    import time

    with Registry.open(url, key_path=key) as reg:
        barrier.wait(timeout=60)
        start = time.monotonic()
        results = []
        for i in range(count):
            if i == count // 2:
                results.append(reg.enrol("SHARED-1", strata=_strata(0), answers=ANSWERS, by=f"c{worker}"))
            answers = ANSWERS if (worker + i) % 7 else {"victim_consent": "no"}
            results.append(
                reg.enrol(f"C{worker}-{i}", strata=_strata(worker * 3 + i), answers=answers, by=f"c{worker}")
            )
        out.append((start, time.monotonic(), results))


@pytest.mark.slow
@pytest.mark.parametrize("method", ["stratified_blocks", "minimisation"])
def test_sixteen_concurrent_clients_share_one_gap_free_sequence_on_postgres(database, tmp_path, method):
    import threading
    from collections import Counter

    key = tmp_path / "k.key"
    Registry.create(database, _protocol(method), key_path=key, seed=19).close()
    per_client = 12
    barrier = threading.Barrier(CLIENTS)
    outputs: list = []
    errors: list = []

    def run(worker):
        try:
            _thread_client(database, str(key), worker, per_client, barrier, outputs)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(repr(exc))
            barrier.abort()

    threads = [threading.Thread(target=run, args=(w,)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(outputs) == CLIENTS
    # the clients really overlapped in time
    for start, end, _ in outputs:
        assert sum(1 for s, e, _ in outputs if s < end and start < e) > 1
    results = [r for _, _, rs in outputs for r in rs]
    shared = Counter(r.status for r in results if r.referral_id == "SHARED-1")
    assert shared == {"randomised": 1, "refused": CLIENTS - 1}
    own = [r for r in results if r.referral_id != "SHARED-1"]
    assert Counter(r.status for r in own) == {
        "randomised": sum(1 for w in range(CLIENTS) for i in range(per_client) if (w + i) % 7),
        "ineligible": sum(1 for w in range(CLIENTS) for i in range(per_client) if not (w + i) % 7),
    }
    randomised = [r for r in results if r.status == "randomised"]
    numbers = sorted(r.sequence_number for r in randomised)
    assert numbers == list(range(1, len(randomised) + 1))  # no duplicate, no gap
    with Registry.open(database, key_path=key) as reg:
        check = reg.verify()
        assert check.ok, check.problems
        frame = reg.export()
    stored = frame.dropna(subset=["sequence_number"])
    told = {r.referral_id: (r.arm, r.sequence_number) for r in randomised}
    assert {
        rid: (arm, int(n)) for rid, arm, n in stored[["id", "arm", "sequence_number"]].itertuples(index=False)
    } == told


@pytest.mark.slow
def test_sixteen_concurrent_http_clients_through_rjtrial_serve_on_postgres(database, tmp_path):
    """``rjtrial serve`` backed by PostgreSQL; 16 HTTP clients POST /api/enrolments at once."""
    import web_fixtures as wf

    db, key = wf.make_trial(tmp_path, db=database)
    wf.add_user(db, "mary", "manager")
    token = wf.user_token(db, "mary")
    with wf.serve_process(db, key, log=tmp_path / "serve.log") as url:
        outcome = wf.concurrent_api_enrolments(url, token, clients=CLIENTS, per_client=6, ineligible_every=5)
    wf.check_concurrent_outcome(db, key, outcome, clients=CLIENTS, per_client=6, ineligible_every=5)


def test_capacity_events_consort_unseal_on_postgres(database, tmp_path):
    """The rest of a trial's life on PostgreSQL: exhaustion, events, CONSORT, unsealing, closing."""
    from sqlalchemy import create_engine, text

    protocol = Protocol.from_toml_string(
        PROTOCOL.format(method="stratified_blocks", params=PARAMS["stratified_blocks"]).replace(
            "capacity = 400", "capacity = 4"
        )
    )
    reg = Registry.create(database, protocol, key_path=tmp_path / "k.key", seed=23)
    london = {"site": "london", "offence": "property"}
    results = [reg.enrol(f"L{i}", strata=london, answers=ANSWERS, by="t") for i in range(5)]
    assert [r.status for r in results] == ["randomised"] * 4 + ["refused"]
    other = reg.enrol("N0", strata=_strata(1), answers=ANSWERS)
    assert other.status == "randomised"  # the other strata carry on
    assert reg.enrol("X0", strata=_strata(1), answers={"victim_consent": "no"}).status == "ineligible"
    reg.record_event("L0", "treatment_received", by="t")
    reg.record_event("L1", "withdrawal", by="t")
    counts = reg.consort()
    assert (counts.referred, counts.screened_out, counts.randomised, counts.refusals) == (6, 1, 5, 1)
    from collections import Counter

    assert dict(counts.randomised_by_arm) == {
        **{a: 0 for a in protocol.arms},
        **Counter(r.arm for r in [*results[:4], other]),
    }
    assert counts.treatment_received_by_arm[results[0].arm] == 1
    assert counts.withdrawn_by_arm[results[1].arm] == 1
    assert reg.verify(receipts=[r.receipt for r in results[:4]]).ok

    revealed = reg.unseal(by="t")
    assert revealed.ok, revealed.problems
    engine = create_engine(database)
    with engine.connect() as conn:
        used = conn.execute(text("SELECT sequence_key, slot, arm FROM rj_referrals WHERE status = 'randomised'")).all()
    engine.dispose()
    assert len(used) == 5
    for key, slot, arm in used:  # every allocation is the sealed sequence's entry at its slot
        assert revealed.sequences[key][slot] == arm
    assert reg.enrol("L9", strata=_strata(3), answers=ANSWERS).status == "refused"  # enrolment closed
    assert reg.verify().ok
    reg.close()


def test_interim_looks_on_postgres(database, tmp_path):
    key = tmp_path / "pg.key"
    with Registry.create(database, _protocol("stratified_blocks"), key_path=key, by="tester") as reg:
        for i in range(4):
            reg.enrol(f"R-{i}", strata=_strata(i), answers=ANSWERS, by="tester")
    look = {"look": 1, "events": 40, "design_fingerprint": "f" * 64, "decision": "continue"}
    with Registry.open(database) as reg:  # without the key: logged unsigned
        seq = reg.record_interim_look(look, by="dmc")
        reg.record_interim_look({**look, "look": 2, "events": 80}, by="dmc")
        assert [(x["look"], x["events"], x["by"]) for x in reg.interim_looks()] == [(1, 40, "dmc"), (2, 80, "dmc")]
    with Registry.open(database, key_path=key) as reg:
        assert reg.verify().ok and seq > 4
