"""The randomisation web service through a real HTTP server on loopback.

uvicorn serves ``create_app`` in a thread on a free port (``rjtrial serve`` in a
subprocess for the concurrency test); httpx talks HTTP to it. What a coordinator,
manager and auditor may and may not do; that every route refuses anonymous callers
(the routes are read from the application, so a new route is covered without editing
this file); CSRF; a double-submitted form; hostile input. What the pages show is
checked against the store itself, read with SQLAlchemy.
"""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
import web_fixtures as wf
from web_fixtures import ELIGIBLE, INELIGIBLE, PASSWORD

PUBLIC_PATHS = {"/login", "/api/health", "/openapi.json", "/api/openapi.json"}
SCRIPT = "<script>alert(1)</script>"


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """One trial, four users (coordinators carol@london and nina@northumbria, manager mary,
    auditor alan), their API tokens, and the app served on loopback."""
    folder = tmp_path_factory.mktemp("web")
    db, key = wf.make_trial(folder)
    wf.standard_users(db)
    tokens = {name: wf.user_token(db, name) for name in ("carol", "nina", "mary", "alan")}
    with wf.LiveServer(db, key) as server:
        server.db, server.key, server.tokens = db, key, tokens
        yield server


def rid(prefix: str = "R") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def carol(service):
    client = wf.logged_in_client(service.url, "carol")
    yield client
    client.close()


@pytest.fixture(scope="module")
def mary(service):
    client = wf.logged_in_client(service.url, "mary")
    yield client
    client.close()


@pytest.fixture(scope="module")
def alan(service):
    client = wf.logged_in_client(service.url, "alan")
    yield client
    client.close()


def enrol_form(client: httpx.Client) -> wf.Form:
    page = client.get("/enrol")
    assert page.status_code == 200, page.text[:300]
    return wf.form_with(page.text, "referral")


def post_enrol(client, referral_id, strata, answers, *, form=None) -> tuple[httpx.Response, dict]:
    """Fill in the form, send it and, when the confirmation page answers, confirm (what a
    coordinator does); (the last response, the data it posted)."""
    form = form or enrol_form(client)
    data = wf.fill_enrol_form(form, referral_id, strata, answers)
    checked = client.post(form.action or "/enrol", data=data)
    if checked.status_code != 200 or 'id="confirm-form"' not in checked.text:
        return checked, data
    data = wf.confirmation(checked.text)
    return client.post(form.action or "/enrol", data=data), data


def text_of(html: str) -> str:
    """The visible text of a page (tags dropped, whitespace collapsed)."""
    import html as html_module

    body = re.sub(r"(?is)<(script|style)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", html_module.unescape(re.sub(r"<[^>]+>", " ", body)))


def session_csrf(client: httpx.Client) -> tuple[str, str]:
    """The session's CSRF field, from the log-out form on the dashboard."""
    home = client.get("/")
    logout = [f for f in wf.forms(home.text) if f.action.rstrip("/").endswith("/logout")]
    assert logout, "no log-out form on the dashboard"
    return logout[0].csrf()


# ------------------------------------------------------------ enrolment flow
def test_coordinator_enrols_through_the_form_and_sees_allocation_and_receipt(service, carol):
    form = enrol_form(carol)
    name, token = form.csrf()
    assert len(token) >= 20
    referral = rid()
    response, _ = post_enrol(carol, referral, {"site": "london", "offence": "property"}, ELIGIBLE, form=form)
    assert response.status_code in (200, 201), response.text[:500]
    row = wf.referral_rows(service.db)[referral]
    assert row["status"] == "randomised"
    shown = text_of(response.text)
    assert row["receipt"] in shown
    assert re.search(rf"number at its site\W+{wf.site_number(service.db, referral)}\b", shown, re.I)
    assert "sequence number" not in shown.lower()  # a coordinator sees the site's numbers only
    assert row["arm"] in shown
    other = {"control", "conference"} - {row["arm"]}
    # the allocation shown is the stored one: the other arm is not announced as the result
    assert not re.search(rf"(allocated|assigned|arm)\W+{other.pop()}\b", shown, re.I)
    # the referral is listed on the coordinator's page of enrolments
    assert referral in carol.get("/enrolments").text


def test_ineligible_referral_is_recorded_as_screened_out_with_reasons(service, carol):
    referral = rid()
    before = wf.head_sequence_number(service.db)
    response, _ = post_enrol(carol, referral, {"site": "london", "offence": "violence"}, INELIGIBLE)
    assert response.status_code in (200, 201), response.text[:500]
    row = wf.referral_rows(service.db)[referral]
    assert row["status"] == "ineligible" and row["sequence_number"] is None and row["arm"] is None
    assert wf.head_sequence_number(service.db) == before
    shown = text_of(response.text)
    assert "ineligible" in shown.lower() or "screened out" in shown.lower()
    assert row["receipt"] in shown
    # the reasons name exactly the questions whose answers excluded it (by id or by their text)
    from rjtrial import Protocol

    for question in Protocol.from_toml(wf.PROTOCOL_PATH).eligibility:
        named = question.id in shown or question.question in shown
        assert named == (INELIGIBLE[question.id] not in question.eligible_if), question.id


def test_api_enrolment_returns_the_stored_result(service):
    referral = rid()
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["mary"]), timeout=30) as api:
        response = api.post(
            "/api/enrolments", json=wf.api_enrol_body(referral, {"site": "thames_valley", "offence": "violence"})
        )
    assert response.status_code == 201, response.text
    body = response.json()
    row = wf.referral_rows(service.db)[referral]
    assert (body["status"], body["arm"], body["sequence_number"], body["receipt"]) == (
        "randomised",
        row["arm"],
        row["sequence_number"],
        row["receipt"],
    )
    assert body["replayed"] is False


def test_double_submitted_form_randomises_once(service, carol):
    form = enrol_form(carol)
    referral = rid()
    data = wf.fill_enrol_form(form, referral, {"site": "london", "offence": "property"}, ELIGIBLE)
    data = wf.confirmation(carol.post(form.action or "/enrol", data=data).text)
    before = wf.head_sequence_number(service.db)
    first = carol.post(form.action or "/enrol", data=data)
    second = carol.post(form.action or "/enrol", data=data)  # the same confirmation, submitted again
    assert first.status_code in (200, 201) and second.status_code in (200, 201), (first.status_code, second.status_code)
    assert wf.head_sequence_number(service.db) == before + 1  # one sequence number consumed
    row = wf.referral_rows(service.db)[referral]
    for page in (first, second):
        shown = text_of(page.text)
        assert row["receipt"] in shown and re.search(
            rf"number at its site\W+{wf.site_number(service.db, referral)}\b", shown, re.I
        )
        assert "already enrolled" not in shown.lower()


def test_a_form_submitted_several_times_at_once_randomises_once(service, carol):
    """A frantic double (or quintuple) click: the same form posted concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    form = enrol_form(carol)
    referral = rid()
    data = wf.fill_enrol_form(form, referral, {"site": "london", "offence": "violence"}, ELIGIBLE)
    data = wf.confirmation(carol.post(form.action or "/enrol", data=data).text)
    before = wf.head_sequence_number(service.db)
    with ThreadPoolExecutor(5) as pool:
        pages = list(pool.map(lambda _: carol.post(form.action or "/enrol", data=data), range(5)))
    assert wf.head_sequence_number(service.db) == before + 1
    row = wf.referral_rows(service.db)[referral]
    assert [p.status_code for p in pages] == [200] * 5, [p.status_code for p in pages]
    for page in pages:
        assert row["receipt"] in text_of(page.text)


def test_repeated_api_request_is_replayed_not_randomised_again(service):
    referral = rid()
    body = wf.api_enrol_body(referral, {"site": "london", "offence": "violence"})
    before = wf.head_sequence_number(service.db)
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["carol"]), timeout=30) as api:
        first, second = api.post("/api/enrolments", json=body), api.post("/api/enrolments", json=body)
        different = api.post("/api/enrolments", json={**body, "strata": {"site": "london", "offence": "property"}})
    assert (first.status_code, second.status_code) == (201, 200), (first.text, second.text)
    assert second.json()["replayed"] is True
    assert {k: second.json()[k] for k in ("arm", "site_sequence_number", "receipt")} == {
        k: first.json()[k] for k in ("arm", "site_sequence_number", "receipt")
    }
    # the same id with different details is not a replay: it is refused, and nothing is consumed
    assert different.status_code == 422, different.text
    assert wf.head_sequence_number(service.db) == before + 1


# ------------------------------------------------------------------- roles
def test_coordinator_cannot_enrol_or_see_another_site(service, carol):
    other = rid("NORTH")
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["nina"]), timeout=30) as nina:
        assert (
            nina.post(
                "/api/enrolments", json=wf.api_enrol_body(other, {"site": "northumbria", "offence": "property"})
            ).status_code
            == 201
        )
    # the form refuses a site not hers
    refused = rid()
    response, _ = post_enrol(carol, refused, {"site": "northumbria", "offence": "property"}, ELIGIBLE)
    assert response.status_code == 403, response.status_code
    assert refused not in wf.referral_rows(service.db)
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["carol"]), timeout=30) as api:
        response = api.post(
            "/api/enrolments", json=wf.api_enrol_body(refused, {"site": "northumbria", "offence": "violence"})
        )
        assert response.status_code == 403, response.text
        listed = api.get("/api/enrolments")
    assert refused not in wf.referral_rows(service.db)
    assert listed.status_code == 200
    assert other not in listed.text
    for path in ("/enrolments", "/", "/enrolments?site=northumbria", f"/enrolments?referral_id={other}"):
        assert other not in carol.get(path).text, path
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["carol"]), timeout=30) as api:
        for query in ("?site=northumbria", f"?referral_id={other}", "?limit=1000"):
            assert other not in api.get("/api/enrolments" + query).text, query
        # re-using the other site's referral id at her own site is refused without revealing that referral
        taken = api.post("/api/enrolments", json=wf.api_enrol_body(other, {"site": "london", "offence": "property"}))
    stored = wf.referral_rows(service.db)[other]
    assert taken.status_code == 422, taken.text
    assert (taken.json()["arm"], taken.json()["site_sequence_number"], taken.json()["receipt"]) == (None, None, None)
    assert "sequence_number" not in taken.json()
    assert stored["receipt"] not in taken.text and "northumbria" not in taken.text
    response, _ = post_enrol(carol, other, {"site": "london", "offence": "violence"}, ELIGIBLE)
    assert response.status_code in (200, 409, 422), response.status_code
    without_menus = re.sub(r"(?is)<select\b.*?</select>", " ", response.text)
    assert stored["receipt"] not in response.text and "northumbria" not in text_of(without_menus)


MANAGER_ONLY_GETS = ["/export", "/users", "/assignments", "/events"]
AUDIT_GETS = ["/verify", "/audit"]


def test_coordinator_is_refused_export_user_management_and_manager_pages(service, carol):
    for path in MANAGER_ONLY_GETS + AUDIT_GETS:
        assert carol.get(path).status_code == 403, path
    csrf = session_csrf(carol)
    posts = {
        "/users": {"name": "mallory", "role": "manager", "password": PASSWORD},
        "/users/disable": {"name": "mary"},
        "/users/token": {"name": "mary"},
        "/events": {"referral_id": "X-1", "kind": "withdrawal"},
        "/assignments/email": {},
    }
    for path, data in posts.items():
        assert carol.post(path, data={**data, csrf[0]: csrf[1]}).status_code == 403, path
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["carol"]), timeout=30) as api:
        assert api.get("/api/verify").status_code == 403
        assert (
            api.post("/api/events", json={"referral_id": "X-1", "kind": "withdrawal", "detail": {}}).status_code == 403
        )
    names = {
        line.split()[0] for line in wf.run_cli("users", "list", "--db", service.db)[1].splitlines() if line.strip()
    }
    assert "mallory" not in names


def test_auditor_cannot_enrol_but_can_verify_and_read_the_audit_log(service, alan):
    assert alan.get("/enrol").status_code == 403
    name, token = session_csrf(alan)
    referral = rid()
    response = alan.post(
        "/enrol", data={name: token, "referral_id": referral, "site": "london", "offence": "property", **ELIGIBLE}
    )
    assert response.status_code == 403
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["alan"]), timeout=30) as api:
        response = api.post(
            "/api/enrolments", json=wf.api_enrol_body(referral, {"site": "london", "offence": "property"})
        )
        assert response.status_code == 403, response.text
        verified = api.get("/api/verify")
        assert verified.status_code == 200 and verified.json()["ok"] is True
        assert api.get("/api/enrolments").status_code == 403
    assert referral not in wf.referral_rows(service.db)
    for path in MANAGER_ONLY_GETS:
        assert alan.get(path).status_code == 403, path
    for path in AUDIT_GETS:
        assert alan.get(path).status_code == 200, path


def test_manager_may_do_everything(service, mary):
    for path in ["/", "/enrol", "/enrolments"] + MANAGER_ONLY_GETS + AUDIT_GETS:
        assert mary.get(path).status_code == 200, path
    export = mary.get("/export")
    assert export.headers["content-type"].startswith("text/csv")
    assert export.text.splitlines()[0].startswith("id,arm,sequence_number")


# ----------------------------------------------------------- anonymous access
def _walk_routes(routes):
    """(path, methods) of every endpoint, descending into included routers.

    FastAPI >= 0.16x keeps an included router as one lazy entry of ``app.routes``
    (``effective_candidates()`` lists its routes with their effective paths).
    """
    for route in routes:
        if hasattr(route, "effective_candidates"):
            for candidate in route.effective_candidates():
                if hasattr(candidate, "effective_candidates"):
                    yield from _walk_routes([candidate])
                else:
                    methods = getattr(candidate.starlette_route or candidate.original_route, "methods", None)
                    yield candidate.path or candidate.original_route.path, methods
        elif hasattr(route, "routes") and not hasattr(route, "methods") and getattr(route, "path", None) is None:
            yield from _walk_routes(route.routes)
        else:
            yield getattr(route, "path", None), getattr(route, "methods", None)


def concrete_routes(app) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, path parameters filled in."""
    out = []
    for path, methods in _walk_routes(app.routes):
        if not methods or not path:
            continue
        concrete = re.sub(r"\{[^}:]+(:path)?\}", "x", path)
        for method in sorted(set(methods) - {"HEAD", "OPTIONS"}):
            out.append((method, concrete))
    return sorted(set(out))


def test_every_route_refuses_anonymous_callers(service):
    routes = concrete_routes(service.app)
    documented = {
        ("GET", "/enrol"),
        ("POST", "/enrol"),
        ("GET", "/export"),
        ("GET", "/users"),
        ("GET", "/audit"),
        ("GET", "/verify"),
        ("POST", "/api/enrolments"),
        ("GET", "/api/enrolments"),
        ("GET", "/api/verify"),
    }
    assert documented <= set(routes), documented - set(routes)
    before = wf.head_sequence_number(service.db)
    checked = 0
    with httpx.Client(base_url=service.url, timeout=30, follow_redirects=False) as anonymous:
        for method, path in routes:
            if path in PUBLIC_PATHS or path.startswith("/static"):
                continue
            kwargs = {"json": {}} if path.startswith("/api") and method != "GET" else {}
            response = anonymous.request(method, path, **kwargs)
            checked += 1
            if path.startswith("/api"):
                assert response.status_code == 401, (method, path, response.status_code)
                assert response.headers["content-type"].startswith("application/json"), (method, path)
            elif method == "GET":
                assert response.status_code in (401, 302, 303, 307), (method, path, response.status_code)
                if response.status_code != 401:
                    assert response.headers["location"].split("?")[0].endswith("/login"), (method, path)
            else:  # a POST with neither session nor CSRF token
                assert response.status_code in (401, 403, 302, 303), (method, path, response.status_code)
                if response.status_code in (302, 303):
                    assert response.headers["location"].split("?")[0].endswith("/login"), (method, path)
            # a bad bearer token is no better than none
            if path.startswith("/api"):
                bad = anonymous.request(method, path, headers=wf.bearer("x" * 43), **kwargs)
                assert bad.status_code == 401, (method, path, bad.status_code)
        assert anonymous.get("/api/health").json() == {"status": "ok"}
        assert anonymous.get("/login").status_code == 200
    assert checked >= len(documented)
    assert wf.head_sequence_number(service.db) == before


def test_a_forged_or_tampered_session_cookie_is_no_session(service, carol):
    from rjtrial.web.security import SESSION_COOKIE

    genuine = carol.cookies.get(SESSION_COOKIE)
    assert genuine and carol.get("/enrol", follow_redirects=False).status_code == 200
    flipped = genuine[:-3] + ("A" if genuine[-3] != "A" else "B") + genuine[-2:]
    gets = [
        p
        for m, p in concrete_routes(service.app)
        if m == "GET" and p not in PUBLIC_PATHS and not p.startswith(("/api", "/static"))
    ]
    assert gets
    for cookie in (flipped, "garbage", genuine.split(".")[0] + ".e30." + "x" * 20, ""):
        with httpx.Client(base_url=service.url, timeout=30, cookies={SESSION_COOKIE: cookie}) as forged:
            for path in gets:
                response = forged.get(path, follow_redirects=False)
                assert response.status_code in (401, 302, 303, 307), (cookie[:20], path, response.status_code)


def test_every_response_carries_the_security_headers(service, carol):
    for response in (carol.get("/enrol"), carol.get("/login"), httpx.get(f"{service.url}/api/health")):
        csp = response.headers.get("content-security-policy", "")
        assert "script-src 'none'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers.get("x-content-type-options") == "nosniff"
        assert response.headers.get("x-frame-options") == "DENY"
    cookie = carol.cookies.jar
    assert any(c.has_nonstandard_attr("HttpOnly") or c.has_nonstandard_attr("httponly") for c in cookie)


def test_wrong_password_is_refused_and_no_session_given(service):
    with httpx.Client(base_url=service.url, timeout=30, follow_redirects=True) as client:
        response = wf.login(client, "carol", "not the password at all")
        assert "logout" not in response.text.lower()
        assert client.get("/enrol", follow_redirects=False).status_code in (401, 302, 303, 307)


def test_logout_ends_the_session(service):
    client = wf.logged_in_client(service.url, "nina")  # log-out ends all of a user's sessions
    try:
        name, token = session_csrf(client)
        client.post("/logout", data={name: token})
        assert client.get("/enrol", follow_redirects=False).status_code in (401, 302, 303, 307)
    finally:
        client.close()


# ---------------------------------------------------------------------- CSRF
def test_posts_without_or_with_a_wrong_csrf_token_are_refused(service, mary):
    form = enrol_form(mary)
    name, token = form.csrf()
    before = wf.head_sequence_number(service.db)
    attempts = {}
    for label, change in (("missing", None), ("wrong", "A" * len(token)), ("empty", "")):
        referral = rid()
        data = wf.fill_enrol_form(form, referral, {"site": "london", "offence": "property"}, ELIGIBLE)
        if change is None:
            del data[name]
        else:
            data[name] = change
        attempts[label] = (mary.post(form.action or "/enrol", data=data), referral)
    for label, (response, referral) in attempts.items():
        assert response.status_code in (400, 403), (label, response.status_code)
        assert referral not in wf.referral_rows(service.db), label
    page_posts = sorted(
        {p for m, p in concrete_routes(service.app) if m == "POST" and not p.startswith("/api")} - {"/login"}
    )
    for path in page_posts:
        response = mary.post(path, data={"name": "carol", "referral_id": "X-1", "kind": "withdrawal"})
        assert response.status_code in (400, 403), (path, response.status_code)
    assert wf.head_sequence_number(service.db) == before
    # still logged in: logout without a token did nothing
    assert mary.get("/enrol").status_code == 200


def test_a_csrf_token_of_another_session_is_refused(service, mary, carol):
    carol_form = enrol_form(carol)
    mary_form = enrol_form(mary)
    name, carols_token = carol_form.csrf()
    assert carols_token != mary_form.csrf()[1]
    referral = rid()
    data = wf.fill_enrol_form(mary_form, referral, {"site": "london", "offence": "property"}, ELIGIBLE)
    data[name] = carols_token
    assert mary.post(mary_form.action or "/enrol", data=data).status_code in (400, 403)
    assert referral not in wf.referral_rows(service.db)


def test_session_cookie_does_not_authenticate_the_api(service, mary):
    """The API takes bearer tokens only, so a cross-site form cannot use the cookie."""
    referral = rid()
    response = mary.post("/api/enrolments", json=wf.api_enrol_body(referral, {"site": "london", "offence": "property"}))
    assert response.status_code == 401
    assert referral not in wf.referral_rows(service.db)


# ------------------------------------------------------------- hostile input
HOSTILE_IDS = [
    "R" * 10_000,
    SCRIPT,
    "R-1<script>alert(1)</script>",
    "R-\x00-1",
    "\x00",
    "R-ré-ñ-😀",
    "Ｒ-１",
    "R-1\r\nSet-Cookie: a=b",
    "../../etc/passwd",
    " ",
    "",
    "R-1'; DROP TABLE rj_referrals; --",
]


def assert_safe(response: httpx.Response, *, where: str) -> None:
    """Not a server error; hostile text only inside JSON (not sniffable as HTML) or escaped in HTML."""
    assert response.status_code < 500, (where, response.status_code, response.text[:300])
    assert "Traceback" not in response.text, where
    kind = response.headers.get("content-type", "")
    if kind.startswith("application/json"):
        assert response.headers.get("x-content-type-options") == "nosniff", where
    else:
        assert "<script>alert" not in response.text, where


def test_hostile_api_input_is_refused_or_stored_safely(service, mary):
    strata = {"site": "london", "offence": "property"}
    bodies = [wf.api_enrol_body(bad, strata) for bad in HOSTILE_IDS]
    bodies += [
        wf.api_enrol_body(rid(), {"site": SCRIPT, "offence": "property"}),
        wf.api_enrol_body(rid(), {**strata, SCRIPT: "x"}),
        wf.api_enrol_body(rid(), strata, {**ELIGIBLE, "admitted": SCRIPT}),
        wf.api_enrol_body(rid(), strata, {**ELIGIBLE, SCRIPT: "yes"}),
        wf.api_enrol_body(rid(), {"site": "london\x00", "offence": "property"}),
        wf.api_enrol_body(rid(), strata, {**ELIGIBLE, "admitted": "y" * 100_000}),
        {"referral_id": 12345, "strata": strata, "answers": ELIGIBLE},
        {"referral_id": None, "strata": strata, "answers": ELIGIBLE},
        {"referral_id": ["R-1"], "strata": strata, "answers": ELIGIBLE},
        {"referral_id": rid(), "strata": ["london", "property"], "answers": ELIGIBLE},
        {"referral_id": rid(), "strata": "site=london", "answers": ELIGIBLE},
        {"referral_id": rid(), "strata": {"site": 1, "offence": True}, "answers": ELIGIBLE},
        {"referral_id": rid(), "strata": {"site": {"a": 1}, "offence": "property"}, "answers": ELIGIBLE},
        {"referral_id": rid(), "strata": strata, "answers": None},
        {"referral_id": rid(), "strata": strata, "answers": {**ELIGIBLE, "admitted": None}},
        {"referral_id": rid(), "strata": strata},
        {},
        [],
        "R-1",
        None,
        {"referral_id": rid(), "strata": strata, "answers": ELIGIBLE, "extra": "x" * 50},
    ]
    before = wf.referral_rows(service.db)
    with httpx.Client(base_url=service.url, headers=wf.bearer(service.tokens["mary"]), timeout=30) as api:
        for body in bodies:
            response = api.post("/api/enrolments", json=body)
            assert_safe(response, where=repr(body)[:120])
            if not (isinstance(body, dict) and body.get("extra")):
                assert 400 <= response.status_code < 500, (repr(body)[:120], response.status_code)
            assert response.headers["content-type"].startswith("application/json")  # 413 included
        raw = [
            b"{",
            b'{"referral_id": "R-1", ',
            b"\xff\xfe\x00",
            b"null",
            b"[1, 2",
            b'{"referral_id": "R\\u0000"}',
            b"x" * (70 * 1024),
        ]
        for content in raw:
            response = api.post("/api/enrolments", content=content, headers={"content-type": "application/json"})
            assert_safe(response, where=repr(content[:40]))
            assert 400 <= response.status_code < 500, (content[:40], response.status_code)
        response = api.post("/api/enrolments", content=b"referral_id=R-1", headers={"content-type": "text/plain"})
        assert 400 <= response.status_code < 500
        for query in ("?page=-1", "?page=abc", "?page=99999999999999999999999", "?page=%00", "?site=%3Cscript%3E"):
            assert_safe(api.get("/api/enrolments" + query), where=query)
    after = wf.referral_rows(service.db)
    new = {k: v for k, v in after.items() if k not in before}
    # only the well-formed request with an extra field may have enrolled anything
    assert len(new) <= 1, sorted(new)
    # the audit log records the refusals, hostile text and all, and its page shows it escaped
    audit = mary.get("/audit")
    assert_safe(audit, where="/audit")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in audit.text


def test_hostile_form_input_is_refused_or_echoed_escaped(service, mary):
    form = enrol_form(mary)
    strata = {"site": "london", "offence": "property"}
    cases = [(bad, strata, ELIGIBLE) for bad in HOSTILE_IDS]
    cases += [
        (rid(), {"site": SCRIPT, "offence": "property"}, ELIGIBLE),
        (rid(), strata, {**ELIGIBLE, "admitted": SCRIPT}),
        (rid(), {"site": "london\x00", "offence": "property"}, ELIGIBLE),
        (rid(), strata, {**ELIGIBLE, "victim_consent": "ÿ" * 5000}),
    ]
    before = wf.referral_rows(service.db)
    for referral, s, a in cases:
        data = wf.fill_enrol_form(form, referral, s, a)
        response = mary.post(form.action or "/enrol", data=data)
        assert_safe(response, where=repr(referral)[:80])  # refused (4xx or a page saying so), echoed only escaped
    # unknown extra fields and a form with nothing in it
    csrf = form.csrf()
    for data in ({csrf[0]: csrf[1]}, {csrf[0]: csrf[1], "referral_id": rid(), SCRIPT: SCRIPT}):
        assert_safe(mary.post(form.action or "/enrol", data=data), where=str(data)[:80])
    after = wf.referral_rows(service.db)
    assert {k for k in after if k not in before} == set()
    # the pages that list referrals and the audit log (which records refusals) escape everything
    for path in ("/", "/enrolments", "/audit", "/audit?page=2", "/assignments", "/verify"):
        assert_safe(mary.get(path), where=path)
    for path in (
        "/audit?page=-1",
        "/audit?page=abc",
        "/audit?page=99999999999999999999",
        "/enrolments?site=%3Cscript%3E",
    ):
        assert_safe(mary.get(path), where=path)


def test_hostile_login_input_is_refused_safely(service):
    with httpx.Client(base_url=service.url, timeout=30) as client:
        for name in (SCRIPT, "a" * 10_000, "carol\x00", "ca rol", "キャロル"):
            response = wf.login(client, name, "whatever password")
            assert_safe(response, where=repr(name)[:40])
            assert "logout" not in response.text.lower()


# ------------------------------------------------------ concurrency (SQLite)
@pytest.mark.slow
def test_sixteen_concurrent_http_clients_get_a_gap_free_sequence_on_sqlite(tmp_path):
    db, key = wf.make_trial(tmp_path)
    wf.add_user(db, "mary", "manager")
    token = wf.user_token(db, "mary")
    with wf.serve_process(db, key, log=tmp_path / "serve.log") as url:
        outcome = wf.concurrent_api_enrolments(url, token, clients=16, per_client=6, ineligible_every=5)
    wf.check_concurrent_outcome(db, key, outcome, clients=16, per_client=6, ineligible_every=5)


# ------------------------------------------------- log-in attacks (loopback)
def _login_clients(url: str, n: int) -> list[tuple[httpx.Client, dict]]:
    """``n`` clients, each with its own connection and session, holding the log-in form's fields."""
    out = []
    for _ in range(n):
        client = httpx.Client(base_url=url, timeout=120)
        form = wf.form_with(client.get("/login").text, "pass")
        out.append((client, dict(form.fields)))
    return out


@pytest.mark.slow
def test_eighty_simultaneous_log_ins_check_at_most_the_allowed_guesses(tmp_path):
    """79 wrong passwords, then the right one, at once from one address, through a real
    server: the lock holds — no more than ``login_failures`` passwords are ever checked."""
    import threading

    db, key = wf.make_trial(tmp_path)
    wf.add_user(db, "victim", "manager")
    with wf.LiveServer(db, key, config={"web": {"login_failures": 5, "login_lockout": 600}}) as server:
        accounts = server.app.state.service.accounts
        checked, lock = [], threading.Lock()
        real = accounts.authenticate

        def counting(name, password):
            with lock:
                checked.append(password)
            return real(name, password)

        accounts.authenticate = counting
        clients = _login_clients(server.url, 80)
        barrier = threading.Barrier(80)
        statuses: dict[int, int] = {}

        def attempt(i: int) -> None:
            client, fields = clients[i]
            data = {**fields, "username": "victim", "password": PASSWORD if i == 79 else f"wrong guess number {i:02d}"}
            barrier.wait(timeout=60)
            if i == 79:
                import time

                time.sleep(0.05)  # the right password comes last, while the others are in flight
            statuses[i] = client.post("/login", data=data).status_code

        threads = [threading.Thread(target=attempt, args=(i,), daemon=True) for i in range(80)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        for client, _ in clients:
            client.close()
    assert len(statuses) == 80
    assert len(checked) <= 5, f"{len(checked)} passwords were checked"
    assert sum(1 for s in statuses.values() if s in (401, 303)) == len(checked)
    assert sum(1 for s in statuses.values() if s == 429) == 80 - len(checked)


@pytest.mark.slow
def test_a_flood_of_failed_log_ins_leaves_the_audit_chain_alone_and_the_security_log_bounded(tmp_path, capsys):
    """A few thousand failed and locked log-ins from one client, through a real server on
    loopback, while a manager enrols: the audit chain grows by the enrolments only, and the
    security log stays within its row cap and counts every attempt. The median enrolment
    latency before and during the flood is printed (a measurement, not an assertion)."""
    import statistics
    import threading
    import time

    attempts, cap, enrolments = 3000, 100, 25
    db, key = wf.make_trial(tmp_path)
    wf.add_user(db, "mary", "manager")
    wf.add_user(db, "carol", "coordinator", sites=("london",))
    token = wf.user_token(db, "mary")
    config = tmp_path / "service.toml"
    config.write_text(f"[web]\nsecurity_log_rows = {cap}\n", encoding="utf-8")
    statuses: list[int] = []
    with wf.serve_process(db, key, config=config, log=tmp_path / "serve.log") as url:
        api = httpx.Client(base_url=url, headers=wf.bearer(token), timeout=60)

        def enrol_many(prefix: str) -> list[float]:
            latencies = []
            for i in range(enrolments):
                body = wf.api_enrol_body(f"{prefix}-{i}", wf.STRATA[i % len(wf.STRATA)])
                start = time.perf_counter()
                assert api.post("/api/enrolments", json=body).status_code == 201
                latencies.append(time.perf_counter() - start)
                time.sleep(0.05)
            return latencies

        before = enrol_many("QUIET")
        chain = audit_length(db)
        stop = time.monotonic() + 240  # bounded in time as well as in count

        def flood() -> None:
            ((client, fields),) = _login_clients(url, 1)
            try:
                for i in range(attempts):
                    if time.monotonic() > stop:
                        break
                    # wrong passwords for a real user, and passwords typed as the name (each different)
                    name = "carol" if i % 3 == 0 else f"S3cret-passw0rd-{i}"
                    statuses.append(
                        client.post("/login", data={**fields, "username": name, "password": f"guess {i}"}).status_code
                    )
            finally:
                client.close()

        flooder = threading.Thread(target=flood, daemon=True)
        flood_start = time.perf_counter()
        flooder.start()
        time.sleep(1.0)
        during = enrol_many("BUSY")
        flooder.join(timeout=300)
        flood_seconds = time.perf_counter() - flood_start
        api.close()
    # the server has stopped (SIGTERM): its last buffered counts were flushed on the way out
    log_rows = table_rows(db, "SELECT kind, name, count FROM rj_web_security_log")
    assert len(statuses) == attempts and set(statuses) <= {401, 429}, set(statuses)
    assert audit_length(db) == chain + enrolments  # the enrolments, and nothing for the flood
    assert len(log_rows) <= cap
    counted = sum(r["count"] for r in log_rows if r["kind"] in ("failed", "locked"))
    assert counted == attempts
    assert not any("S3cret" in r["name"] for r in log_rows)
    with capsys.disabled():
        print(
            f"\nlog-in flood: {attempts} log-ins in {flood_seconds:.1f} s ({statuses.count(401)} failed, "
            f"{statuses.count(429)} locked); median enrolment latency {1000 * statistics.median(before):.1f} ms "
            f"before, {1000 * statistics.median(during):.1f} ms during; audit chain +{enrolments} "
            f"(the enrolments); security log {len(log_rows)} rows (cap {cap})"
        )


def audit_length(db: str) -> int:
    return table_rows(db, "SELECT count(*) AS n FROM rj_audit")[0]["n"]


def table_rows(db: str, sql: str) -> list[dict]:
    from sqlalchemy import create_engine, text

    from rjtrial.registry.store import database_url

    engine = create_engine(database_url(db))
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(text(sql)).mappings()]
    finally:
        engine.dispose()
