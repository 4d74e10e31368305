"""The registry on PostgreSQL: the same code as on SQLite, through a database URL.

Needs a server: set ``RJTRIAL_TEST_POSTGRES_URL`` (``.ci/run`` starts one with
``scripts/postgres.sh``). Outside CI the tests are skipped, with that reason, when
it is unset; in CI (``CI=true``) an unset URL is a failure, never a silent skip.
"""

from __future__ import annotations

import multiprocessing
import os
import uuid

import pytest

from rjtrial import Protocol
from rjtrial.registry import Registry

URL = os.environ.get("RJTRIAL_TEST_POSTGRES_URL")

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
    if not URL:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("RJTRIAL_TEST_POSTGRES_URL is not set in CI: .ci/run must start PostgreSQL")
        pytest.skip("no PostgreSQL server: set RJTRIAL_TEST_POSTGRES_URL (see scripts/postgres.sh)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"rjtrial_t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
            out = [reg.enrol(f"W{worker}-{i}", strata=_strata(worker + i), answers=ANSWERS, by=f"w{worker}").sequence_number
                   for i in range(count)]
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
