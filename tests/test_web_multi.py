"""Several trials on one service (issue 15 part 5): each its own registry, key, accounts.

The attack throughout: carol is a coordinator in trial ``a`` (and an account of the same
name and password exists in ``b``); with her session of ``a`` and her API token of ``a``
she tries every route of ``b`` (read from ``b``'s route table) and must get nothing.
"""

from __future__ import annotations

import re
import subprocess

import httpx
import pytest
import web_fixtures as wf
from test_web_app import ELIGIBLE, PASSWORD, Trial, bearer, client_for, csrf_of

from rjtrial.errors import RjtrialError
from rjtrial.web.multi import create_server_app, read_server_config

LONDON = {"site": "london", "offence": "property"}


@pytest.fixture(scope="module")
def trials(tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    out = {}
    for name in ("a", "b"):
        (folder / name).mkdir()
        out[name] = Trial(folder / name)
    return out


@pytest.fixture(scope="module")
def server_app(trials):
    return create_server_app(
        {
            "trials": {n: {"db": str(t.db), "key": str(t.key)} for n, t in trials.items()},
            "web": {"session_secret": "s" * 32},
        }
    )


def log_in(client, trial, name="carol"):
    page = client.get(f"/t/{trial}/login")
    response = client.post(
        f"/t/{trial}/login", data={"username": name, "password": PASSWORD, "csrf": csrf_of(page.text)}
    )
    assert response.status_code == 303 and response.headers["location"] == f"/t/{trial}/", response.text[:300]
    return response


def routes_of(app):
    """(method, path) of every route of a trial's application (tests/test_web_http.py walks them)."""
    from test_web_http import concrete_routes

    return [(m, p) for m, p in concrete_routes(app) if not p.startswith("/static")]


PUBLIC = {
    ("GET", "/login"),
    ("POST", "/login"),
    ("GET", "/api/health"),
    ("GET", "/api/openapi.json"),
    ("GET", "/openapi.json"),
}


def test_each_trial_is_served_under_its_name_and_the_root_lists_them(server_app, trials):
    client = client_for(server_app)
    listing = client.get("/")
    assert listing.status_code == 200
    assert re.findall(r'href="(/t/[^"]+/)"', listing.text) == ["/t/a/", "/t/b/"]
    assert client.get("/t/a/enrol").headers["location"] == "/t/a/login"
    login = client.get("/t/b/login")
    assert 'action="/t/b/login"' in login.text and 'href="/t/b/static/style.css"' in login.text
    assert "content-security-policy" in listing.headers and "content-security-policy" in login.headers


def test_an_enrolment_in_one_trial_is_in_its_registry_only(server_app, trials):
    carol = bearer(trials["a"].tokens["carol"])
    response = client_for(server_app).post(
        "/api/t/a/enrolments", headers=carol, json={"referral_id": "MA-1", "strata": LONDON, "answers": ELIGIBLE}
    )
    assert response.status_code == 201 and "sequence_number" not in response.json()
    assert trials["a"].referral("MA-1")["status"] == "randomised" and trials["b"].referral("MA-1") is None
    same = client_for(server_app).post(
        "/t/a/api/enrolments", headers=carol, json={"referral_id": "MA-1", "strata": LONDON, "answers": ELIGIBLE}
    )
    assert same.status_code == 200 and same.json()["replayed"]  # /t/a/api is the same API


def test_a_coordinator_of_one_trial_reaches_nothing_of_another(server_app, trials):
    """Every route of trial b, with carol's session and token of trial a: a log-in page, 401 or 403."""
    mary_b = bearer(trials["b"].tokens["mary"])
    made = client_for(server_app).post(
        "/api/t/b/enrolments", headers=mary_b, json={"referral_id": "MB-SECRET", "strata": LONDON, "answers": ELIGIBLE}
    )
    assert made.status_code == 201
    secret = trials["b"].referral("MB-SECRET")
    carol = client_for(server_app)
    log_in(carol, "a")
    session_a = carol.cookies.get("rjtrial_session_a")
    assert session_a
    # her cookie of a, also under b's cookie name (an account "carol" exists in b too)
    carol.cookies.set("rjtrial_session_b", session_a)
    headers = bearer(trials["a"].tokens["carol"])
    checked = 0
    for method, path in routes_of(server_app.state.trials["b"]):
        if (method, path) in PUBLIC:
            continue
        urls = [f"/t/b{path}"]
        if path.startswith("/api/"):
            urls.append(f"/api/t/b{path[4:]}")
        for url in urls:
            response = carol.request(
                method,
                url,
                headers=headers,
                params={"referral_id": "MB-SECRET"},
                data={"referral_id": "MB-SECRET", "name": "carol"} if method == "POST" else None,
            )
            if path.startswith("/api/"):
                assert response.status_code == 401, (method, url, response.status_code)
            else:
                assert response.status_code in (303, 403), (method, url, response.status_code)
                assert response.status_code == 403 or response.headers["location"] == "/t/b/login", (method, url)
            for hidden in (secret["receipt"], secret["arm"] + "<", "MB-SECRET"):
                assert hidden not in response.text, (method, url)
            checked += 1
    assert checked >= 30
    assert client_for(server_app).get("/api/t/b/enrolments", headers=mary_b).json()["total"] >= 1  # b works


def test_her_own_trial_still_works_after_the_attempts(server_app, trials):
    carol = client_for(server_app)
    log_in(carol, "a")
    assert carol.get("/t/a/enrolments").status_code == 200
    assert carol.get("/t/b/enrolments").headers["location"] == "/t/b/login"


@pytest.mark.parametrize(
    "config, message",
    [
        ({}, "no [trials.NAME] table"),
        ({"trials": {"a b": {"db": "x.db", "key": "x.key"}}}, "[trials.a b]: a trial's name must be"),
        ({"trials": {"a": {"db": "x.db"}}}, "[trials.a]: key is missing"),
        ({"trials": {"a": {"db": "x.db", "key": "k", "port": 1}}}, "[trials.a]: unknown key(s) port"),
    ],
)
def test_a_careless_server_configuration_is_one_clear_error(config, message):
    with pytest.raises(RjtrialError) as info:
        read_server_config(config)
    assert message in str(info.value)


def test_rjtrial_serve_serves_the_trials_of_a_configuration_file(trials, tmp_path):
    """Through the running service (HTTP), started as users start it."""
    config = tmp_path / "server.toml"
    config.write_text(
        "".join(f'[trials.{n}]\ndb = "{t.db}"\nkey = "{t.key}"\n\n' for n, t in trials.items()), encoding="utf-8"
    )
    process = subprocess.Popen(
        [wf.rjtrial_script(), "serve", "--config", str(config), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(3)]
        found = re.search(r"listening on (http://\S+?)/ ", lines[-1])
        assert found, lines
        url = found.group(1)
        assert "at /t/a/" in lines[0] and "at /t/b/" in lines[1]
        with httpx.Client(base_url=url, timeout=30) as client:
            assert client.get("/").status_code == 200
            own = client.get("/api/t/a/enrolments", headers=bearer(trials["a"].tokens["carol"]))
            other = client.get("/api/t/b/enrolments", headers=bearer(trials["a"].tokens["carol"]))
        assert own.status_code == 200 and other.status_code == 401
        assert all(str(t.key) not in "".join(lines) for t in trials.values())
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_serve_without_db_or_trials_is_one_clear_error():
    done = subprocess.run([wf.rjtrial_script(), "serve"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("rjtrial: error: serve needs --db DB --key KEYFILE")
