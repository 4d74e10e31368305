"""The randomisation service in process (FastAPI TestClient): pages, API, roles, CSRF.

What a page or response shows is checked against the registry's own tables (read
with sqlite3) and against ``Registry.enrol`` results, never against the web code.
"""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import tomllib
from fastapi.testclient import TestClient

from rjtrial import Protocol
from rjtrial.registry import Registry
from rjtrial.web import create_app
from rjtrial.web.accounts import Accounts

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple"
ELIGIBLE = {"admitted": "yes", "offender_consent": "yes", "victim_consent": "yes", "domestic_abuse": "no"}
LONDON = {"site": "london", "offence": "property"}


def small_jrc_protocol() -> Protocol:
    """synthetic/protocols/jrc-london-burglary.toml with fewer sealed slots (quick to seal)."""
    data = tomllib.loads((ROOT / "synthetic/protocols/jrc-london-burglary.toml").read_text(encoding="utf-8"))
    data["randomisation"]["capacity"] = 60
    return Protocol.from_dict(data)


USERS = [
    ("carol", "coordinator", ["london"]),
    ("nina", "coordinator", ["northumbria"]),
    ("mary", "manager", []),
    ("alan", "auditor", []),
]


class Trial:
    """A registry of the JRC London protocol with users (coordinators carol@london and
    nina@northumbria, manager mary, auditor alan) and their API tokens."""

    def __init__(self, folder: Path, users=USERS):
        self.db, self.key = folder / "trial.db", folder / "trial.key"
        Registry.create(self.db, small_jrc_protocol(), key_path=self.key, seed=20261122).close()
        self.tokens = {}
        with Registry.open(self.db, key_path=self.key) as registry:
            accounts = Accounts(registry)
            for name, role, sites in users:
                accounts.add(name, role=role, sites=sites, password=PASSWORD)
                self.tokens[name] = accounts.issue_token(name)

    def rows(self, sql, *params):
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params)]

    def referral(self, referral_id):
        found = self.rows("SELECT * FROM rj_referrals WHERE referral_id = ?", referral_id)
        return found[0] if found else None

    def sequence_number(self):
        return self.rows("SELECT sequence_number FROM rj_head")[0]["sequence_number"]

    def audit(self, action):
        return [
            json.loads(r["payload"]) | {"actor": r["actor"]}
            for r in self.rows("SELECT * FROM rj_audit WHERE action = ? ORDER BY seq", action)
        ]

    def security(self, app, kind):
        """The security log's rows of one kind (flushed first)."""
        app.state.service.security_log.flush()
        return self.rows("SELECT * FROM rj_web_security_log WHERE kind = ? ORDER BY last_at", kind)

    def accounts(self):
        """Accounts over the registry opened with the key (account changes are signed)."""
        return Accounts(Registry.open(self.db, key_path=self.key))


@pytest.fixture(scope="module")
def trial(tmp_path_factory):
    return Trial(tmp_path_factory.mktemp("webapp"))


@pytest.fixture(scope="module")
def app(trial):
    return create_app(trial.db, trial.key)


def client_for(app) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def form_token_of(html: str) -> str:
    match = re.search(r'name="form_token" value="([^"]+)"', html)
    assert match, "no form token in the page"
    return match.group(1)


def login(client, name, password=PASSWORD):
    page = client.get("/login")
    return client.post("/login", data={"username": name, "password": password, "csrf": csrf_of(page.text)})


def logged_in(app, name) -> TestClient:
    client = client_for(app)
    response = login(client, name)
    assert response.status_code == 303 and response.headers["location"] == "/", response.text[:300]
    return client


def enrol_fields(page_html, referral_id, strata=LONDON, answers=ELIGIBLE, *, confirmed="yes"):
    """The fields of the enrolment form, filled in; ``confirmed="yes"``: as the confirmation
    page posts them (tests/test_web_coordinator.py checks that it does), None: as the form does."""
    fields = {"csrf": csrf_of(page_html), "form_token": form_token_of(page_html), "referral_id": referral_id}
    if confirmed is not None:
        fields["confirmed"] = confirmed
    fields.update({f"stratum.{k}": v for k, v in strata.items()})
    fields.update({f"answer.{k}": v for k, v in answers.items()})
    return fields


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def site_number(trial, referral_id):
    """A randomised referral's number at its site, from the stored rows (what coordinators see)."""
    rows = trial.rows(
        "SELECT referral_id, strata FROM rj_referrals WHERE sequence_number IS NOT NULL ORDER BY sequence_number"
    )
    site = {r["referral_id"]: json.loads(r["strata"])["site"] for r in rows}
    return [r for r in site if site[r] == site[referral_id]].index(referral_id) + 1


def text_of(html):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.fixture(scope="module")
def carol(app):
    return logged_in(app, "carol")


@pytest.fixture(scope="module")
def mary(app):
    return logged_in(app, "mary")


@pytest.fixture(scope="module")
def alan(app):
    return logged_in(app, "alan")


# ------------------------------------------------------------------ log-in
def test_pages_need_a_log_in(app):
    client = client_for(app)
    for path in ("/", "/enrol", "/enrolments", "/assignments", "/events", "/export", "/verify", "/audit", "/users"):
        response = client.get(path)
        assert response.status_code == 303 and response.headers["location"] == "/login", path


def test_log_in_is_audited_and_failed_log_ins_are_counted_in_the_security_log(app, trial):
    client = client_for(app)
    before_ok, chain = len(trial.audit("login")), trial.rows("SELECT count(*) AS n FROM rj_audit")[0]["n"]
    failed = login(client, "nina", "wrong password here")
    assert failed.status_code == 401 and "Wrong user name or password" in failed.text
    assert login(client_for(app), "no-such-user", "whatever at all").status_code == 401
    assert trial.rows("SELECT count(*) AS n FROM rj_audit")[0]["n"] == chain  # no audit entry for a failure
    failures = trial.security(app, "failed")
    assert any(r["name"] == "nina" and r["count"] >= 1 for r in failures)
    assert any(r["name"].startswith("unknown-") for r in failures) and not any(
        "no-such-user" in r["name"] for r in failures
    )
    assert login(client, "nina").status_code == 303
    assert len(trial.audit("login")) == before_ok + 1 and trial.audit("login")[-1]["user"] == "nina"
    home = client.get("/")
    assert home.status_code == 200 and "nina" in home.text and "northumbria" in home.text


def test_a_password_typed_as_the_user_name_is_never_stored_nor_shown(app, trial, mary):
    secret = "My-Secret-Passw0rd-typed-in-the-wrong-box"
    for _ in range(2):
        assert login(client_for(app), secret, "").status_code in (401, 422, 429)
    assert login(client_for(app), secret + "\n", "x").status_code in (401, 429)
    app.state.service.security_log.flush()
    stored = b"".join(p.read_bytes() for p in trial.db.parent.glob(trial.db.name + "*"))
    assert secret.encode() not in stored
    for path in ("/audit", "/security"):
        page = mary.get(path)
        assert page.status_code == 200 and secret not in page.text, path


def test_log_in_without_csrf_is_refused(app, trial):
    client = client_for(app)
    client.get("/login")
    before = len(trial.audit("login"))
    response = client.post("/login", data={"username": "carol", "password": PASSWORD})
    assert response.status_code == 403
    assert len(trial.audit("login")) == before
    assert client.get("/").status_code == 303


def test_throttling_locks_after_failures_even_for_the_right_password(trial):
    app = create_app(trial.db, trial.key, config={"web": {"login_failures": 3, "login_lockout": 60}})
    trial.accounts().add("locky", role="auditor", password=PASSWORD)
    chain = trial.rows("SELECT count(*) AS n FROM rj_audit")[0]["n"]
    client = client_for(app)
    assert [login(client, "locky", "not the password").status_code for _ in range(3)] == [401, 401, 401]
    locked = login(client, "locky")
    assert locked.status_code == 429 and "Too many failed log-ins" in locked.text
    assert client.get("/").status_code == 303  # not logged in
    assert trial.rows("SELECT count(*) AS n FROM rj_audit")[0]["n"] == chain  # neither failures nor locks
    assert [(r["name"], r["address"], r["count"]) for r in trial.security(app, "lockout")] == [
        ("locky", "testclient", 1)
    ]
    assert [(r["name"], r["count"]) for r in trial.security(app, "locked") if r["name"] == "locky"] == [("locky", 1)]
    assert [(r["name"], r["count"]) for r in trial.security(app, "failed") if r["name"] == "locky"] == [("locky", 3)]


def test_a_session_ends_at_its_absolute_lifetime_however_active(trial, monkeypatch):
    from rjtrial.web import security

    app = create_app(trial.db, trial.key, config={"web": {"session_lifetime": 3600, "session_max_age": 600}})
    client = logged_in(app, "carol")
    start = time.time()
    for minutes in (0, 20, 40, 59):  # used every 20 minutes: never idle for 10
        monkeypatch.setattr(security, "now", lambda m=minutes: start + 60 * m)
        assert client.get("/").status_code == 200, minutes
    monkeypatch.setattr(security, "now", lambda: start + 3601)
    assert client.get("/").status_code == 303  # an hour after the log-in: over, however active
    monkeypatch.setattr(security, "now", lambda: start - 60)
    assert client.get("/").status_code == 303  # and a log-in time in the future is no session either


def test_the_default_absolute_lifetime_is_twelve_hours():
    from rjtrial.web.app import WebConfig

    assert WebConfig.load(None).session_lifetime == 12 * 3600


def test_a_session_cookie_without_a_log_in_time_is_no_session(trial):
    """A cookie signed by an older version (no log-in time) would otherwise live forever."""
    import base64

    from itsdangerous import TimestampSigner

    secret = "a session secret of some length"
    app = create_app(trial.db, trial.key, config={"web": {"session_secret": secret}})
    epoch = trial.accounts().get("carol").session_epoch
    data = base64.b64encode(json.dumps({"user": "carol", "epoch": epoch, "csrf": "x" * 32}).encode())
    client = client_for(app)
    client.cookies.set("rjtrial_session", TimestampSigner(secret).sign(data).decode())
    assert client.get("/").status_code == 303


@pytest.mark.parametrize(
    "host, trusted, secure, expected",
    [
        ("127.0.0.1", [], False, []),
        ("::1", [], False, []),
        ("localhost", [], False, []),
        ("0.0.0.0", [], True, ["trusted_proxies"]),
        ("0.0.0.0", [], False, ["secure_cookies", "trusted_proxies"]),
        ("192.0.2.10", ["192.0.2.1"], True, []),
        ("::", ["192.0.2.1"], False, ["secure_cookies"]),
    ],
)
def test_serve_warns_when_it_listens_beyond_loopback_without_trusted_proxies(host, trusted, secure, expected):
    from rjtrial.web.security import startup_warnings

    warnings = startup_warnings(host, secure_cookies=secure, trusted_proxies=trusted)
    assert [w for w in expected if any(w in text for text in warnings)] == expected and len(warnings) == len(expected)
    if "trusted_proxies" in expected:
        assert any("lock" in w and "every" in w for w in warnings)


def test_log_out_ends_the_session_even_if_the_cookie_is_replayed(app):
    client = logged_in(app, "alan")
    cookie = client.cookies.get("rjtrial_session")
    home = client.get("/")
    assert client.post("/logout", data={"csrf": csrf_of(home.text)}).status_code == 303
    replay = client_for(app)
    replay.cookies.set("rjtrial_session", cookie)
    assert replay.get("/").status_code == 303


def test_disabling_a_user_ends_their_session_and_tokens(app, trial, mary):
    accounts = trial.accounts()
    accounts.add("temp", role="coordinator", sites=["london"], password=PASSWORD)
    token = accounts.issue_token("temp")
    temp = logged_in(app, "temp")
    assert temp.get("/enrol").status_code == 200
    users = mary.get("/users")
    assert mary.post("/users/disable", data={"csrf": csrf_of(users.text), "name": "temp"}).status_code == 200
    assert temp.get("/enrol").status_code == 303
    assert client_for(app).get("/api/enrolments", headers=bearer(token)).status_code == 401


# ---------------------------------------------------------------- enrolment
def test_enrolment_form_shows_the_protocol_and_no_allocation(app, carol, trial):
    page = carol.get("/enrol")
    assert page.status_code == 200
    protocol = small_jrc_protocol()
    for q in protocol.eligibility:
        assert q.question in page.text and f'name="answer.{q.id}"' in page.text
    # a coordinator is offered only their own site
    assert re.findall(r'<option value="([^"]+)"', page.text.split('name="stratum.site"')[1].split("</select>")[0]) == [
        "london"
    ]
    assert "Allocated to" not in page.text and not re.search(r"RJ-[0-9A-F]{4}-", page.text)


def test_eligible_referral_is_randomised_once_even_if_submitted_twice(app, carol, trial):
    page = carol.get("/enrol")
    fields = enrol_fields(page.text, "W-0001")
    before = trial.sequence_number()
    first = carol.post("/enrol", data=fields)
    assert first.status_code == 200, first.text[:500]
    row = trial.referral("W-0001")
    assert row["status"] == "randomised" and row["by"] == "carol"
    shown = text_of(first.text)
    assert f"Allocated to {row['arm']}" in shown
    assert f"Number at its site {site_number(trial, 'W-0001')}" in shown and row["receipt"] in shown
    assert "Sequence number" not in shown  # a coordinator never sees the trial-wide position
    again = carol.post("/enrol", data=fields)  # double click / reload: the same form token
    assert again.status_code == 200 and 'id="replayed"' in again.text and row["receipt"] in again.text
    back = carol.get("/enrol")  # the back button: a new form, the same referral and answers
    third = carol.post("/enrol", data=enrol_fields(back.text, "W-0001"))
    assert third.status_code == 200 and 'id="replayed"' in third.text and row["receipt"] in third.text
    assert trial.sequence_number() == before + 1
    assert len([e for e in trial.audit("enrolment") if e["referral_id"] == "W-0001"]) == 1


def test_simultaneous_double_submission_randomises_once(app, trial):
    clients = [logged_in(app, "carol")]
    page = clients[0].get("/enrol")
    fields = enrol_fields(page.text, "W-0002", {"site": "london", "offence": "violence"})
    twin = client_for(app)
    twin.cookies.set("rjtrial_session", clients[0].cookies.get("rjtrial_session"))
    clients.append(twin)
    before = trial.sequence_number()
    responses = [None, None]

    def submit(i):
        responses[i] = clients[i].post("/enrol", data=fields)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    receipt = trial.referral("W-0002")["receipt"]
    assert [r.status_code for r in responses] == [200, 200]
    assert all(receipt in r.text for r in responses)
    assert trial.sequence_number() == before + 1


def test_ineligible_referral_is_screened_out_with_reasons(app, carol, trial):
    before = trial.sequence_number()
    page = carol.get("/enrol")
    response = carol.post(
        "/enrol", data=enrol_fields(page.text, "W-0003", answers={**ELIGIBLE, "victim_consent": "no"})
    )
    assert response.status_code == 200 and "Screened out" in response.text
    row = trial.referral("W-0003")
    assert row["status"] == "ineligible" and row["arm"] is None
    assert json.loads(row["reasons"]) == ["victim_consent=no"] and "victim_consent=no" in response.text
    assert trial.sequence_number() == before


def test_refusal_shows_the_form_again_with_reasons_escaped(app, carol, trial):
    page = carol.get("/enrol")
    response = carol.post("/enrol", data=enrol_fields(page.text, "<script>alert(1)</script>"))
    assert response.status_code == 422
    assert "<script>alert" not in response.text and "&lt;script&gt;" in response.text
    assert trial.rows("SELECT count(*) AS n FROM rj_referrals WHERE referral_id LIKE '<script>%'")[0]["n"] == 0
    missing = carol.post(
        "/enrol",
        data={k: v for k, v in enrol_fields(carol.get("/enrol").text, "W-0004").items() if k != "answer.admitted"},
    )
    assert missing.status_code == 422 and "missing answer to &#39;admitted&#39;" in missing.text
    assert trial.referral("W-0004") is None


def test_coordinator_cannot_enrol_at_another_site(app, carol, trial):
    page = carol.get("/enrol")
    response = carol.post(
        "/enrol", data=enrol_fields(page.text, "W-0005", {"site": "northumbria", "offence": "property"})
    )
    assert response.status_code == 403
    assert trial.referral("W-0005") is None


def test_enrolment_post_needs_csrf(app, carol, trial):
    page = carol.get("/enrol")
    fields = enrol_fields(page.text, "W-0006")
    fields["csrf"] = "forged-token-forged-token"
    assert carol.post("/enrol", data=fields).status_code == 403
    del fields["csrf"]
    assert carol.post("/enrol", data=fields).status_code == 403
    assert trial.referral("W-0006") is None


def test_coordinators_see_only_their_sites(app, trial):
    nina_api = client_for(app)
    body = {"referral_id": "W-N001", "strata": {"site": "northumbria", "offence": "violence"}, "answers": ELIGIBLE}
    assert nina_api.post("/api/enrolments", json=body, headers=bearer(trial.tokens["nina"])).status_code == 201
    carol = logged_in(app, "carol")
    listing = carol.get("/enrolments")
    assert listing.status_code == 200 and "W-0001" in listing.text and "W-N001" not in listing.text
    api = client_for(app).get("/api/enrolments", headers=bearer(trial.tokens["carol"])).json()
    london = trial.rows('SELECT referral_id FROM rj_referrals WHERE strata LIKE \'%"site":"london"%\'')
    assert {e["referral_id"] for e in api["enrolments"]} == {r["referral_id"] for r in london}
    assert api["total"] == len(london)
    manager = client_for(app).get("/api/enrolments", headers=bearer(trial.tokens["mary"])).json()
    assert manager["total"] == trial.rows("SELECT count(*) AS n FROM rj_referrals")[0]["n"]


def test_a_taken_id_at_another_site_is_not_described(app, trial):
    body = {"referral_id": "W-N001", "strata": LONDON, "answers": ELIGIBLE}
    response = client_for(app).post("/api/enrolments", json=body, headers=bearer(trial.tokens["carol"]))
    assert response.status_code == 422
    assert response.json()["reasons"] == ["referral id 'W-N001' is already in use"]


@pytest.mark.parametrize(
    "probe",
    [
        {"strata": {"site": "london", "offence": "nonsense"}, "answers": ELIGIBLE},  # an invalid stratum
        {"strata": LONDON, "answers": {**ELIGIBLE, "admitted": "perhaps"}},  # an invalid answer
        {"strata": LONDON, "answers": {"admitted": "yes"}},  # answers missing
    ],
)
def test_a_coordinator_cannot_tell_whether_an_id_exists_at_another_site(app, trial, probe):
    """A refused probe reads the same for an id taken at another site and for an id never used."""
    nina = bearer(trial.tokens["nina"])
    client_for(app).post(
        "/api/enrolments",
        json={
            "referral_id": "P-ELSEWHERE",
            "answers": ELIGIBLE,
            "strata": {"site": "northumbria", "offence": "violence"},
        },
        headers=nina,
    )
    assert trial.referral("P-ELSEWHERE") is not None
    carol = bearer(trial.tokens["carol"])
    answers = {}
    for referral_id in ("P-ELSEWHERE", "P-NEVER-USED"):
        response = client_for(app).post("/api/enrolments", json={"referral_id": referral_id, **probe}, headers=carol)
        body = response.json()
        answers[referral_id] = (
            response.status_code,
            body["status"],
            [r.replace(referral_id, "ID") for r in body["reasons"]],
        )
    assert answers["P-ELSEWHERE"] == answers["P-NEVER-USED"]
    assert answers["P-NEVER-USED"][0] == 422 and trial.referral("P-NEVER-USED") is None


def test_a_coordinators_form_probe_reads_the_same_too(app, trial):
    client_for(app).post(
        "/api/enrolments",
        json={
            "referral_id": "F-ELSEWHERE",
            "answers": ELIGIBLE,
            "strata": {"site": "northumbria", "offence": "violence"},
        },
        headers=bearer(trial.tokens["nina"]),
    )
    carol = logged_in(app, "carol")
    pages = {}
    for referral_id in ("F-ELSEWHERE", "F-NEVER-USED"):
        form = carol.get("/enrol")
        fields = enrol_fields(form.text, referral_id, answers={**ELIGIBLE, "admitted": "perhaps"})
        page = carol.post("/enrol", data=fields)
        errors = re.findall(r"<li>(.*?)</li>", page.text.split('class="error', 1)[-1].split("</ul>")[0])
        pages[referral_id] = (page.status_code, [e.replace(referral_id, "ID") for e in errors])
    assert pages["F-ELSEWHERE"] == pages["F-NEVER-USED"] and pages["F-NEVER-USED"][0] == 422
    assert pages["F-NEVER-USED"][1]  # the refusal's reasons were read


# ---------------------------------------------------------------------- API
def test_api_enrolment_matches_the_registry(app, trial):
    api = client_for(app)
    body = {"referral_id": "A-0001", "strata": {"site": "london", "offence": "violence"}, "answers": ELIGIBLE}
    response = api.post("/api/enrolments", json=body, headers=bearer(trial.tokens["carol"]))
    assert response.status_code == 201
    data = response.json()
    row = trial.referral("A-0001")
    assert (data["status"], data["arm"], data["site_sequence_number"], data["receipt"]) == (
        row["status"],
        row["arm"],
        site_number(trial, "A-0001"),
        row["receipt"],
    )
    assert "sequence_number" not in data
    assert data["randomised_on"] == row["at"] and data["strata"] == body["strata"] and data["replayed"] is False
    repeat = api.post("/api/enrolments", json=body, headers=bearer(trial.tokens["carol"]))
    assert repeat.status_code == 200 and repeat.json() == {**data, "replayed": True}
    changed = api.post(
        "/api/enrolments",
        json={**body, "answers": {**ELIGIBLE, "admitted": "no"}},
        headers=bearer(trial.tokens["carol"]),
    )
    assert changed.status_code == 422 and changed.json()["status"] == "refused"
    assert "already enrolled" in changed.json()["reasons"][0]


def test_api_result_has_the_fields_of_registry_enrol(app, trial, tmp_path):
    """The API returns what Registry.enrol returns: same keys, same kind of values."""
    twin = tmp_path / "twin.db"
    with Registry.create(twin, small_jrc_protocol(), key_path=tmp_path / "twin.key", seed=1) as registry:
        direct = registry.enrol("T-1", strata=LONDON, answers=ELIGIBLE, by="x").to_dict()
    body = {"referral_id": "A-0002", "strata": LONDON, "answers": ELIGIBLE}
    served = client_for(app).post("/api/enrolments", json=body, headers=bearer(trial.tokens["mary"])).json()
    assert set(served) == set(direct) | {"replayed", "site_sequence_number"}
    assert all(type(served[k]) is type(direct[k]) for k in direct)


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer rjt_wrong"}, {"Authorization": "Basic eDp5"}, {"Authorization": "Bearer"}]
)
def test_api_needs_a_valid_token(app, trial, headers):
    api = client_for(app)
    before = trial.sequence_number()
    body = {"referral_id": "A-401", "strata": LONDON, "answers": ELIGIBLE}
    for method, path, kwargs in [
        ("POST", "/api/enrolments", {"json": body}),
        ("GET", "/api/enrolments", {}),
        ("GET", "/api/verify", {}),
        ("GET", "/api/protocol", {}),
        ("POST", "/api/enrolments", {"content": b"not json"}),
    ]:
        response = api.request(method, path, headers=headers, **kwargs)
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer", (method, path)
    assert trial.sequence_number() == before


def test_api_session_cookie_is_not_a_credential(app, carol):
    assert carol.get("/api/enrolments").status_code == 401


def test_api_roles(app, trial):
    api = client_for(app)
    body = {"referral_id": "A-403", "strata": LONDON, "answers": ELIGIBLE}
    assert api.post("/api/enrolments", json=body, headers=bearer(trial.tokens["alan"])).status_code == 403
    assert api.get("/api/enrolments", headers=bearer(trial.tokens["alan"])).status_code == 403
    assert api.get("/api/verify", headers=bearer(trial.tokens["carol"])).status_code == 403
    nina_body = {**body, "strata": {"site": "london", "offence": "violence"}}
    assert api.post("/api/enrolments", json=nina_body, headers=bearer(trial.tokens["nina"])).status_code == 403
    assert trial.referral("A-403") is None
    verified = api.get("/api/verify", headers=bearer(trial.tokens["alan"]))
    assert verified.status_code == 200 and verified.json()["ok"] is True and verified.json()["key_checked"] is True
    with Registry.open(trial.db) as registry:
        assert verified.json()["commitment"] == registry.commitment


@pytest.mark.parametrize(
    "body",
    [
        {"referral_id": "A-1", "strata": {"site": 1, "offence": "property"}, "answers": ELIGIBLE},
        {"referral_id": "A-1", "strata": LONDON, "answers": ELIGIBLE, "extra": 1},
        {"referral_id": "A-1\x00", "strata": LONDON, "answers": ELIGIBLE},
        {"referral_id": "A-1", "strata": {"site": "london\ud800", "offence": "property"}, "answers": ELIGIBLE},
        {"referral_id": "", "strata": LONDON, "answers": ELIGIBLE},
        {"referral_id": "A-1", "strata": ["london"], "answers": ELIGIBLE},
        {"referral_id": "A-1", "strata": {f"k{i}": "v" for i in range(60)}, "answers": ELIGIBLE},
        [],
    ],
)
def test_api_malformed_body_is_422_and_records_nothing(app, trial, body):
    before = trial.rows("SELECT count(*) AS n FROM rj_audit")[0]["n"]
    response = client_for(app).post(
        "/api/enrolments",
        content=json.dumps(body).encode(),
        headers={**bearer(trial.tokens["mary"]), "content-type": "application/json"},
    )
    assert response.status_code == 422
    assert trial.rows("SELECT count(*) AS n FROM rj_audit")[0]["n"] == before


def test_oversized_body_is_413(app, trial):
    body = {"referral_id": "A-big", "strata": LONDON, "answers": {**ELIGIBLE, "admitted": "y" * 70_000}}
    response = client_for(app).post("/api/enrolments", json=body, headers=bearer(trial.tokens["mary"]))
    assert response.status_code == 413
    assert response.json() == {"detail": "request body too large"}  # the API answers in JSON
    assert trial.referral("A-big") is None


def test_api_events_by_managers_only(app, trial):
    api = client_for(app)
    event = {"referral_id": "W-0001", "kind": "treatment_received", "detail": {"note": "held"}}
    assert api.post("/api/events", json=event, headers=bearer(trial.tokens["carol"])).status_code == 403
    response = api.post("/api/events", json=event, headers=bearer(trial.tokens["mary"]))
    assert response.status_code == 201
    (row,) = trial.rows("SELECT * FROM rj_events WHERE audit_seq = ?", response.json()["audit_seq"])
    assert (row["referral_id"], row["kind"], json.loads(row["detail"]), row["by"]) == (
        "W-0001",
        "treatment_received",
        {"note": "held"},
        "mary",
    )
    screened = api.post("/api/events", json={**event, "referral_id": "W-0003"}, headers=bearer(trial.tokens["mary"]))
    assert screened.status_code == 422 and "not randomised" in screened.json()["detail"]


def test_openapi_describes_the_api(app):
    schema = client_for(app).get("/api/openapi.json").json()
    assert client_for(app).get("/openapi.json").json() == schema
    post = schema["paths"]["/api/enrolments"]["post"]
    request_schema = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][request_schema]["properties"]) == {"referral_id", "strata", "answers"}
    assert {"201", "200", "401", "403", "422"} <= set(post["responses"])
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    assert not [p for p in schema["paths"] if not p.startswith("/api/")]  # pages stay out of the API description


# ------------------------------------------------------------- manager pages
def test_manager_pages(app, mary, trial):
    assignments = mary.get("/assignments")
    assert assignments.status_code == 200 and 'http-equiv="refresh"' in assignments.text
    for row in trial.rows("SELECT * FROM rj_referrals WHERE status = 'randomised'"):
        assert row["receipt"] in assignments.text and row["referral_id"] in assignments.text
    export = mary.get("/export")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    exported = {line.split(",")[0] for line in export.text.splitlines()[1:]}
    assert exported == {r["referral_id"] for r in trial.rows("SELECT * FROM rj_referrals WHERE status = 'randomised'")}
    assert trial.audit("export")[-1]["actor"] == "mary"
    events = mary.get("/events")
    recorded = mary.post(
        "/events",
        data={"csrf": csrf_of(events.text), "referral_id": "W-0002", "kind": "withdrawal", "note": "moved away"},
    )
    assert recorded.status_code == 200 and "Recorded withdrawal" in recorded.text
    assert trial.rows("SELECT kind FROM rj_events WHERE referral_id = 'W-0002'") == [{"kind": "withdrawal"}]


def test_manager_adds_a_user_who_issues_their_own_token_shown_once(app, mary, trial):
    page = mary.get("/users")
    added = mary.post(
        "/users",
        data={
            "csrf": csrf_of(page.text),
            "name": "tess",
            "role": "coordinator",
            "sites": "thames_valley",
            "password": PASSWORD,
            "email": "tess@example.org",
        },
    )
    assert added.status_code == 200 and "added user tess" in added.text
    assert trial.rows("SELECT role, sites, email FROM rj_web_users WHERE name = 'tess'") == [
        {"role": "coordinator", "sites": '["thames_valley"]', "email": "tess@example.org"}
    ]
    assert trial.audit("user_added")[-1] | {"password": ""} == {
        "user": "tess",
        "role": "coordinator",
        "sites": ["thames_valley"],
        "email": "tess@example.org",
        "password": "",
        "actor": "mary",
    }
    tess = logged_in(app, "tess")
    tokens_page = tess.get("/tokens")
    assert tokens_page.status_code == 200 and "No tokens" in tokens_page.text
    issued = tess.post("/tokens", data={"csrf": csrf_of(tokens_page.text)})
    token = re.search(r"rjt_[A-Za-z0-9_-]+", issued.text).group(0)
    body = {"referral_id": "T-0001", "strata": {"site": "thames_valley", "offence": "property"}, "answers": ELIGIBLE}
    assert client_for(app).post("/api/enrolments", json=body, headers=bearer(token)).status_code == 201
    listed = tess.get("/tokens")
    assert token not in listed.text and token not in mary.get("/users").text
    assert trial.audit("token_issued")[-1]["actor"] == "tess" and trial.audit("token_issued")[-1]["user"] == "tess"
    token_id = re.search(r'name="id" value="([0-9a-f]{12})"', listed.text).group(1)
    revoked = tess.post("/tokens/revoke", data={"csrf": csrf_of(listed.text), "id": token_id})
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert client_for(app).post("/api/enrolments", json=body, headers=bearer(token)).status_code == 401


def test_a_manager_cannot_issue_a_token_to_act_as_another_user(app, mary, trial):
    before = trial.rows("SELECT count(*) AS n FROM rj_web_tokens WHERE user_name = 'carol'")[0]["n"]
    page = mary.get("/users")
    assert 'action="/users/token"' not in page.text  # no such button for other users
    refused = mary.post("/users/token", data={"csrf": csrf_of(page.text), "name": "carol"})
    assert refused.status_code == 403 and "rjt_" not in refused.text
    assert trial.rows("SELECT count(*) AS n FROM rj_web_tokens WHERE user_name = 'carol'")[0]["n"] == before
    assert any(r["name"] == "mary" for r in trial.security(app, "token_refused"))
    own = mary.post("/users/token", data={"csrf": csrf_of(page.text), "name": "mary"})
    assert own.status_code == 200 and re.search(r"rjt_[A-Za-z0-9_-]+", own.text)


@pytest.mark.parametrize("path", ["/assignments", "/events", "/export", "/users", "/verify", "/audit"])
def test_coordinators_may_not_open_manager_or_auditor_pages(carol, path):
    assert carol.get(path).status_code == 403


@pytest.mark.parametrize("path", ["/enrol", "/enrolments", "/assignments", "/export", "/users"])
def test_auditors_may_not_enrol_or_manage(alan, path):
    assert alan.get(path).status_code == 403


def test_auditor_verifies_and_reads_the_audit_log(alan, trial):
    verify = alan.get("/verify")
    assert verify.status_code == 200 and "INTACT" in verify.text
    audit = alan.get("/audit")
    assert audit.status_code == 200
    last = trial.rows("SELECT * FROM rj_audit ORDER BY seq DESC LIMIT 1")[0]
    assert last["hash"][:16] in audit.text


def test_verify_page_reports_tampering(tmp_path):
    trial = Trial(tmp_path, users=[("alan", "auditor", [])])
    with Registry.open(trial.db, key_path=trial.key) as registry:
        registry.enrol("X-1", strata=LONDON, answers=ELIGIBLE, by="carol")
    with sqlite3.connect(trial.db) as conn:
        arms = {"control": "conference", "conference": "control"}
        arm = conn.execute("SELECT arm FROM rj_referrals WHERE referral_id = 'X-1'").fetchone()[0]
        conn.execute("UPDATE rj_referrals SET arm = ? WHERE referral_id = 'X-1'", (arms[arm],))
    page = logged_in(create_app(trial.db, trial.key), "alan").get("/verify")
    assert "FAILED" in page.text and "X-1" in page.text


# ------------------------------------------------------------ nothing leaks
def test_security_headers_on_every_response(app, carol):
    for response in (
        carol.get("/"),
        carol.get("/enrol"),
        client_for(app).get("/login"),
        client_for(app).get("/api/health"),
        client_for(app).get("/nowhere"),
    ):
        assert "default-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["cache-control"] == "no-store"


def test_no_page_serves_the_key_or_shows_an_unmade_allocation(app, trial, mary):
    key_text = trial.key.read_text().strip()
    probes = [
        "/static/../trial.key",
        "/static/%2e%2e/trial.key",
        "/trial.key",
        "/static/style.css",
        "/docs",
        "/redoc",
        "/nowhere",
        "/api/nowhere",
    ]
    for path in probes:
        response = client_for(app).get(path)
        assert key_text not in response.text, path
        assert response.status_code in (200, 404), path
    # everything a manager can read lists only referrals already enrolled
    used = {r["receipt"] for r in trial.rows("SELECT receipt FROM rj_referrals")}
    for path in ("/", "/enrolments", "/assignments", "/audit", "/verify", "/export"):
        page = mary.get(path).text
        assert key_text not in page
        assert set(re.findall(r"RJ-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}", page)) <= used, path


def test_mail_report_of_assignments(trial, mary):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    with socket.socket() as probe:  # a free port (aiosmtpd cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = {
            "smtp": {
                "host": "127.0.0.1",
                "port": port,
                "from": "randomiser@example.org",
                "to": ["team@example.org"],
                "notify_each": True,
            }
        }
        app = create_app(trial.db, trial.key, config=config)
        manager = logged_in(app, "mary")
        page = manager.get("/assignments")
        sent = manager.post("/assignments/email", data={"csrf": csrf_of(page.text)})
        assert sent.status_code == 303, sent.text[:300]
        report = received[-1]
        assert report["To"] == "team@example.org"
        body = report.get_payload(decode=True).decode()
        for row in trial.rows("SELECT * FROM rj_referrals WHERE status = 'randomised'"):
            assert row["referral_id"] in body and row["receipt"] in body
        assert "W-0003" not in body  # screened out: not an assignment
        count = len(received)
        body = {"referral_id": "M-0001", "strata": LONDON, "answers": ELIGIBLE}
        made = client_for(app).post("/api/enrolments", json=body, headers=bearer(trial.tokens["carol"])).json()
        deadline = time.time() + 10
        while len(received) == count and time.time() < deadline:
            time.sleep(0.05)
        note = received[-1].get_payload(decode=True).decode()
        assert "M-0001" in note and made["arm"] in note and made["receipt"] in note
    finally:
        controller.stop()


# ------------------------------------------------------------------ receipts
def smtp_server():
    """An SMTP server on a free loopback port collecting messages: (controller, port, received)."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Collect(Message):
        def handle_message(self, message):
            received.append(message)

    with socket.socket() as probe:  # a free port (aiosmtpd cannot start on port 0)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    return controller, port, received


def test_a_printable_receipt_for_the_coordinators_own_referral(app, trial):
    carol = logged_in(app, "carol")
    form = carol.get("/enrol")
    made = carol.post("/enrol", data=enrol_fields(form.text, "RC-0001"))
    row = trial.referral("RC-0001")
    assert made.status_code == 200 and "/receipt?referral_id=RC-0001" in made.text
    page = carol.get("/receipt", params={"referral_id": "RC-0001"})
    assert page.status_code == 200
    assert re.search(rf'id="site-sequence-number">{site_number(trial, "RC-0001")}<', page.text)
    for shown in (
        row["receipt"],
        row["arm"],
        "rjtrial verify",
        trial.rows("SELECT commitment FROM rj_trial")[0]["commitment"],
    ):
        assert shown in page.text
    # made for printing, from this site only: a print style sheet, no script, no external asset
    assert re.search(r'<link rel="stylesheet" href="/static/print\.css" media="print">', page.text)
    assert "<script" not in page.text and "<style" not in page.text and " style=" not in page.text
    assert all(u.startswith("/") for u in re.findall(r'(?:href|src)="([^"]+)"', page.text))
    assert page.headers["content-security-policy"] == carol.get("/").headers["content-security-policy"]
    css = carol.get("/static/print.css")
    assert css.status_code == 200 and "@page" in css.text and "display: none" in css.text
    assert "url(" not in css.text and "@import" not in css.text


def test_a_receipt_at_another_site_reads_exactly_as_one_that_does_not_exist(app, trial):
    client_for(app).post(
        "/api/enrolments",
        json={"referral_id": "RN-0001", "answers": ELIGIBLE, "strata": {"site": "northumbria", "offence": "violence"}},
        headers=bearer(trial.tokens["nina"]),
    )
    carol = logged_in(app, "carol")
    elsewhere = carol.get("/receipt", params={"referral_id": "RN-0001"})
    nowhere = carol.get("/receipt", params={"referral_id": "RN-NEVER"})
    assert elsewhere.status_code == nowhere.status_code == 404
    assert elsewhere.text.replace("RN-0001", "ID") == nowhere.text.replace("RN-NEVER", "ID")
    assert trial.referral("RN-0001")["receipt"] not in elsewhere.text
    manager = logged_in(app, "mary").get("/receipt", params={"referral_id": "RN-0001"})
    assert manager.status_code == 200 and trial.referral("RN-0001")["receipt"] in manager.text
    assert logged_in(app, "alan").get("/receipt", params={"referral_id": "RN-0001"}).status_code == 403


def test_a_receipt_is_e_mailed_to_the_users_own_address(trial):
    controller, port, received = smtp_server()
    try:
        config = {
            "smtp": {"host": "127.0.0.1", "port": port, "from": "randomiser@example.org", "to": ["team@example.org"]}
        }
        app = create_app(trial.db, trial.key, config=config)
        trial.accounts().set_email("carol", "carol@example.org")
        carol = logged_in(app, "carol")
        form = carol.get("/enrol")
        carol.post("/enrol", data=enrol_fields(form.text, "RE-0001"))
        row = trial.referral("RE-0001")
        page = carol.get("/receipt", params={"referral_id": "RE-0001"})
        assert "E-mail this receipt to carol@example.org" in page.text
        sent = carol.post("/receipt/email", data={"csrf": csrf_of(page.text), "referral_id": "RE-0001"})
        assert sent.status_code == 303 and sent.headers["location"] == "/receipt?referral_id=RE-0001&sent=1"
        message = received[-1]
        assert message["To"] == "carol@example.org" and row["receipt"] in message["Subject"]
        body = message.get_payload(decode=True).decode()
        assert row["receipt"] in body and row["arm"] in body and f"--receipt {row['receipt']}" in body
        # another site's referral cannot be mailed, and a user without an address is told why
        client_for(app).post(
            "/api/enrolments",
            json={
                "referral_id": "RE-N001",
                "answers": ELIGIBLE,
                "strata": {"site": "northumbria", "offence": "violence"},
            },
            headers=bearer(trial.tokens["nina"]),
        )
        count = len(received)
        refused = carol.post("/receipt/email", data={"csrf": csrf_of(page.text), "referral_id": "RE-N001"})
        assert refused.status_code == 404 and len(received) == count
        trial.accounts().set_email("carol", "")
        carol_again = logged_in(app, "carol")
        page = carol_again.get("/receipt", params={"referral_id": "RE-0001"})
        assert "E-mail this receipt" not in page.text
        no_address = carol_again.post("/receipt/email", data={"csrf": csrf_of(page.text), "referral_id": "RE-0001"})
        assert no_address.status_code == 409 and "e-mail address" in no_address.text and len(received) == count
        no_csrf = carol_again.post("/receipt/email", data={"referral_id": "RE-0001"})
        assert no_csrf.status_code == 403
    finally:
        controller.stop()


def test_the_security_log_page_is_for_auditors_and_managers(app, alan, carol):
    assert login(client_for(app), "carol", "wrong password, once").status_code == 401
    page = alan.get("/security")
    assert page.status_code == 200 and "carol" in page.text and "failed" in page.text
    assert carol.get("/security").status_code == 403


# ---------------------------------------------------------------- PostgreSQL


@pytest.fixture
def postgres_database():
    """A fresh database on the test server (skipped without one, a failure in CI)."""
    from registry_fixtures import fresh_postgres_database, postgres_url_or_skip

    with fresh_postgres_database(postgres_url_or_skip()) as url:
        yield url


@pytest.mark.postgres
def test_the_service_on_postgres(postgres_database, tmp_path):
    from sqlalchemy import create_engine, text

    key = tmp_path / "pg.key"
    Registry.create(postgres_database, small_jrc_protocol(), key_path=key, seed=11).close()
    with Registry.open(postgres_database, key_path=key) as registry:
        accounts = Accounts(registry)
        accounts.add("carol", role="coordinator", sites=["london"], password=PASSWORD)
        token = accounts.issue_token("carol")
    app = create_app(postgres_database, key, config={"web": {"login_failures": 2}})
    carol = logged_in(app, "carol")
    page = carol.get("/enrol")
    fields = enrol_fields(page.text, "PG-1")
    first, second = carol.post("/enrol", data=fields), carol.post("/enrol", data=fields)
    api = client_for(app)
    body = {"referral_id": "PG-2", "strata": LONDON, "answers": ELIGIBLE}
    made, again = (api.post("/api/enrolments", json=body, headers=bearer(token)) for _ in range(2))
    stranger = client_for(app)
    locked = [login(stranger, "carol", "not the password").status_code for _ in range(3)]
    engine = create_engine(postgres_database)
    with engine.connect() as conn:
        rows = {r.referral_id: r for r in conn.execute(text("SELECT * FROM rj_referrals"))}
    engine.dispose()
    assert set(rows) == {"PG-1", "PG-2"}
    assert rows["PG-1"].receipt in first.text and rows["PG-1"].receipt in second.text and "replayed" in second.text
    assert (made.status_code, again.status_code) == (201, 200) and made.json()["receipt"] == rows["PG-2"].receipt
    assert locked == [401, 401, 429]
    with Registry.open(postgres_database, key_path=key) as registry:
        assert registry.verify().ok


# ------------------------------------------------------ errors, rjtrial serve
def test_an_internal_error_is_a_generic_page_without_details(trial, monkeypatch):
    app = create_app(trial.db, trial.key)
    manager = TestClient(app, base_url="http://127.0.0.1", follow_redirects=False, raise_server_exceptions=False)
    assert login(manager, "mary").status_code == 303
    secret = "secret-detail-in-the-exception"

    def broken(*args, **kwargs):
        raise RuntimeError(secret)

    monkeypatch.setattr(app.state.service.registry, "verify", broken)
    page = manager.get("/verify")
    assert page.status_code == 500 and "Something went wrong" in page.text
    assert secret not in page.text and "Traceback" not in page.text
    api = TestClient(app, raise_server_exceptions=False).get("/api/verify", headers=bearer(trial.tokens["alan"]))
    assert api.status_code == 500 and api.json() == {"detail": "internal error"}


@pytest.mark.slow
def test_rjtrial_serve_prints_where_it_listens_and_never_the_key(trial, tmp_path):
    import subprocess
    import sys

    import httpx

    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys; from rjtrial.cli import main; sys.exit(main())",
                "serve",
                "--db",
                str(trial.db),
                "--key",
                str(trial.key),
                "--port",
                "0",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        deadline, url = time.time() + 60, None
        while url is None and time.time() < deadline and process.poll() is None:
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+/)", log.read_text())
            url = found.group(1) if found else time.sleep(0.1)
        assert url, log.read_text()
        assert httpx.get(url + "api/health", timeout=10).json() == {"status": "ok"}
        response = httpx.get(url + "api/enrolments", headers=bearer(trial.tokens["mary"]), timeout=10)
        total = trial.rows("SELECT count(*) AS n FROM rj_referrals")[0]["n"]
        assert response.status_code == 200 and response.json()["total"] == total
    finally:
        process.terminate()
        process.wait(timeout=30)
    output = log.read_text()
    assert trial.key.read_text().strip() not in output and "trial.key" not in output


# ----------------------------------------------------------- configuration
@pytest.mark.parametrize(
    "config, message",
    [
        ({"wbe": {}}, "unknown table"),
        ({"web": {"login_failure": 3}}, "unknown key"),
        ({"web": {"login_failures": 0}}, "login_failures must be a number >= 1"),
        ({"web": {"session_secret": "short"}}, "at least 16"),
        ({"web": {"secure_cookies": "yes"}}, "true or false"),
        ({"web": {"trusted_proxies": "10.0.0.1"}}, "list of addresses"),
        ({"smtp": {"host": "h", "from": "a@b"}}, "to is required"),
        ({"smtp": {"host": "h", "from": "a@b", "to": "c@d", "port": 70000}}, "port must be"),
        ({"smtp": {"host": "h", "from": "a@b", "to": "c@d", "username": "u"}}, "go together"),
        ({"smtp": {"host": "h", "from": "nobody", "to": "c@d"}}, "from must be an e-mail address"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key(config, message):
    from rjtrial.errors import RjtrialError
    from rjtrial.web.app import WebConfig

    with pytest.raises(RjtrialError, match=message):
        WebConfig.load(config)


def test_configuration_file_is_read(tmp_path):
    from rjtrial.web.app import WebConfig

    path = tmp_path / "service.toml"
    path.write_text(
        "[web]\nlogin_failures = 7\nsecure_cookies = true\n"
        '[smtp]\nhost = "mail.example.org"\nport = 587\nfrom = "r@example.org"\nto = ["t@example.org"]\n'
        "starttls = true\n",
        encoding="utf-8",
    )
    config = WebConfig.load(path)
    assert (config.throttle.failures, config.secure_cookies) == (7, True)
    assert (config.smtp.host, config.smtp.port, config.smtp.recipients, config.smtp.starttls) == (
        "mail.example.org",
        587,
        ("t@example.org",),
        True,
    )
