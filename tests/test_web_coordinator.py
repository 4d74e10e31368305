"""What a coordinator sees of the service: per-site numbers, never the trial-wide sequence
position (issue 17); the confirmation step and labels of the enrolment pages (issue 16).

Every number shown is checked against the registry's own tables (read with sqlite3).
"""

from __future__ import annotations

import re

import pytest
from test_web_app import ELIGIBLE, Trial, bearer, client_for, enrol_fields, logged_in, text_of

from rjtrial.web import create_app

NORTH = {"site": "northumbria", "offence": "violence"}
LONDON = {"site": "london", "offence": "property"}


@pytest.fixture
def trial(tmp_path):
    return Trial(tmp_path)


@pytest.fixture
def app(trial):
    return create_app(trial.db, trial.key)


def site_number(trial, referral_id):
    """The referral's number among the randomisations at its site, from the stored rows."""
    rows = trial.rows(
        "SELECT referral_id, strata, sequence_number FROM rj_referrals "
        "WHERE sequence_number IS NOT NULL ORDER BY sequence_number"
    )
    site = {r["referral_id"]: re.search(r'"site":"([^"]+)"', r["strata"]).group(1) for r in rows}
    mine = [r["referral_id"] for r in rows if site[r["referral_id"]] == site[referral_id]]
    return mine.index(referral_id) + 1


def nina_enrols_two(app, trial):
    """Two randomisations at northumbria first: london's first is then number 3 in the trial."""
    for referral_id in ("N-1", "N-2"):
        response = client_for(app).post(
            "/api/enrolments",
            json={"referral_id": referral_id, "strata": NORTH, "answers": ELIGIBLE},
            headers=bearer(trial.tokens["nina"]),
        )
        assert response.status_code == 201


def test_a_coordinators_api_result_has_the_site_number_only(app, trial):
    nina_enrols_two(app, trial)
    body = {"referral_id": "L-1", "strata": LONDON, "answers": ELIGIBLE}
    response = client_for(app).post("/api/enrolments", json=body, headers=bearer(trial.tokens["carol"]))
    assert response.status_code == 201
    data = response.json()
    assert trial.referral("L-1")["sequence_number"] == 3
    assert "sequence_number" not in data and data["site_sequence_number"] == 1 == site_number(trial, "L-1")
    replayed = client_for(app).post("/api/enrolments", json=body, headers=bearer(trial.tokens["carol"])).json()
    assert "sequence_number" not in replayed and replayed["site_sequence_number"] == 1 and replayed["replayed"]


def test_a_coordinators_api_list_has_site_numbers_only_and_a_managers_both(app, trial):
    nina_enrols_two(app, trial)
    client_for(app).post(
        "/api/enrolments",
        json={"referral_id": "L-1", "strata": LONDON, "answers": ELIGIBLE},
        headers=bearer(trial.tokens["carol"]),
    )
    for name in ("carol", "nina"):
        rows = client_for(app).get("/api/enrolments", headers=bearer(trial.tokens[name])).json()["enrolments"]
        assert rows and all("sequence_number" not in r for r in rows)
        assert {r["referral_id"]: r["site_sequence_number"] for r in rows} == {
            r["referral_id"]: site_number(trial, r["referral_id"]) for r in rows
        }
    rows = client_for(app).get("/api/enrolments", headers=bearer(trial.tokens["mary"])).json()["enrolments"]
    assert {r["referral_id"]: (r["sequence_number"], r["site_sequence_number"]) for r in rows} == {
        "N-1": (1, 1),
        "N-2": (2, 2),
        "L-1": (3, 1),
    }
    manager = client_for(app).post(
        "/api/enrolments",
        json={"referral_id": "M-1", "strata": LONDON, "answers": ELIGIBLE},
        headers=bearer(trial.tokens["mary"]),
    )
    assert (manager.json()["sequence_number"], manager.json()["site_sequence_number"]) == (4, 2)


def test_a_coordinators_pages_show_the_site_number_never_the_trial_position(app, trial):
    nina_enrols_two(app, trial)
    carol = logged_in(app, "carol")
    made = carol.post("/enrol", data=enrol_fields(carol.get("/enrol").text, "L-1"))
    assert made.status_code == 200 and trial.referral("L-1")["sequence_number"] == 3
    receipt = carol.get("/receipt", params={"referral_id": "L-1"})
    listing = carol.get("/enrolments")
    for page in (made, receipt):
        assert re.search(r'id="site-sequence-number">1<', page.text), page.text
        assert 'id="sequence-number"' not in page.text and "whole trial" not in page.text
    assert "Sequence number" not in listing.text and "Number at site" in listing.text
    cells = re.findall(r"<td>([^<]*)</td>", listing.text.split('class="id">L-1</td>')[1].split("</tr>")[0])
    assert cells[2] == "1" and "3" not in cells[:3]
    mary = logged_in(app, "mary")
    shown = text_of(mary.get("/receipt", params={"referral_id": "L-1"}).text)
    assert "Number at its site 1" in shown and "Sequence number (whole trial) 3" in shown


def test_a_coordinators_e_mailed_receipt_has_the_site_number_only():
    from rjtrial.web.mail import SmtpSettings, receipt_message

    settings = SmtpSettings(host="localhost", port=25, sender="rj@example.org", recipients=("team@example.org",))
    row = {
        "status": "randomised",
        "referral_id": "L-1",
        "arm": "conference",
        "site_sequence_number": 1,
        "receipt": "RJ-0000-0000-0000",
        "reasons": [],
        "randomised_on": "2026-12-05T10:00:00Z",
        "strata": LONDON,
        "at": "2026-12-05T10:00:00Z",
        "by": "carol",
    }
    text = receipt_message(settings, row, to="carol@example.org", trial="t", commitment="c").get_content()
    assert "Number at site:  1" in text and "Sequence number" not in text
    text = receipt_message(
        settings, {**row, "sequence_number": 3}, to="m@example.org", trial="t", commitment="c"
    ).get_content()
    assert "Sequence number: 3 (whole trial)" in text


# ------------------------------------------------------- the confirmation step
LABELS = {
    "site": {"label": "Police force area", "levels": {"london": "London (Metropolitan Police)"}},
    "offence": {"label": "Offence", "levels": {"property": "Burglary or theft"}},
}


@pytest.fixture
def labelled(tmp_path, monkeypatch):
    """A trial whose protocol gives words for its strata and levels."""
    import test_web_app

    from rjtrial import Protocol

    plain = test_web_app.small_jrc_protocol
    monkeypatch.setattr(
        test_web_app, "small_jrc_protocol", lambda: Protocol.from_dict({**plain().to_dict(), "labels": LABELS})
    )
    return Trial(tmp_path)


@pytest.fixture
def labelled_app(labelled):
    return create_app(labelled.db, labelled.key)


def first_step(client, referral_id, strata=LONDON, answers=ELIGIBLE):
    """Fill in and send the enrolment form (its first step): the response and what was sent."""
    fields = enrol_fields(client.get("/enrol").text, referral_id, strata, answers, confirmed=None)
    return client.post("/enrol", data=fields), fields


def test_the_form_is_read_back_in_words_and_nothing_is_recorded_before_confirming(labelled_app, labelled):
    import web_fixtures as wf

    from rjtrial import Protocol

    carol = logged_in(labelled_app, "carol")
    form = carol.get("/enrol").text
    assert "Police force area" in form and ">London (Metropolitan Police)<" in form
    page, sent = first_step(carol, "C-1")
    assert page.status_code == 200 and 'id="confirm-form"' in page.text
    shown = text_of(page.text)
    assert "Police force area London (Metropolitan Police)" in shown and "Offence Burglary or theft" in shown
    for question in Protocol.from_toml(wf.PROTOCOL_PATH).eligibility:
        assert f"{question.question} {ELIGIBLE[question.id]}" in shown
    assert re.search(r"the referral is eligible\W+confirming randomises it", shown)
    assert labelled.referral("C-1") is None and labelled.audit("enrolment") == []
    assert not re.search(r"RJ-[0-9A-F]{4}-", page.text) and "Allocated" not in page.text
    # the confirmation posts back exactly what was entered, and its "yes"
    assert wf.confirmation(page.text) == {**sent, "confirmed": "yes"}


def test_confirming_randomises_once_however_often_the_confirmation_is_sent(app, trial):
    import threading

    import web_fixtures as wf

    carol = logged_in(app, "carol")
    page, _ = first_step(carol, "C-2")
    confirmation = wf.confirmation(page.text)
    responses = [None] * 3

    def submit(i):
        responses[i] = carol.post("/enrol", data=confirmation)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    again = carol.post("/enrol", data=confirmation)  # and once more, later (reload)
    back = carol.post("/enrol", data={k: v for k, v in confirmation.items() if k != "confirmed"})  # back button
    row = trial.referral("C-2")
    assert row["status"] == "randomised" and trial.sequence_number() == 1
    assert len([e for e in trial.audit("enrolment") if e["referral_id"] == "C-2"]) == 1
    for response in responses + [again, back]:
        assert response.status_code == 200 and row["receipt"] in response.text
    assert 'id="replayed"' in again.text and 'id="replayed"' in back.text


def test_change_the_answers_goes_back_to_the_form_as_filled_in(app, trial):
    carol = logged_in(app, "carol")
    page, sent = first_step(carol, "C-3", answers={**ELIGIBLE, "victim_consent": "no"})
    import web_fixtures as wf

    back = carol.post("/enrol", data={**wf.confirmation(page.text), "confirmed": "no"})
    assert back.status_code == 200 and 'id="enrol-form"' in back.text and 'value="C-3"' in back.text
    assert re.search(
        r'value="no" required checked',
        back.text.split('name="answer.victim_consent"', 1)[0] + back.text.split('answer-victim_consent-no"', 1)[1][:80],
    )
    assert trial.referral("C-3") is None


def test_answers_that_screen_out_are_said_before_confirming(app, trial):
    import web_fixtures as wf

    carol = logged_in(app, "carol")
    page, _ = first_step(carol, "C-4", answers={**ELIGIBLE, "victim_consent": "no"})
    shown = text_of(page.text)
    assert (
        "not eligible" in shown
        and "Has the victim consented to meet the offender? no (screens the referral out)" in shown
    )
    assert "Record as screened out" in shown and trial.referral("C-4") is None
    done = carol.post("/enrol", data=wf.confirmation(page.text))
    assert done.status_code == 200 and "Screened out" in done.text and trial.referral("C-4")["status"] == "ineligible"


@pytest.mark.parametrize(
    "referral_id, strata, answers, problem",
    [
        ("C-5", LONDON, {k: v for k, v in ELIGIBLE.items() if k != "admitted"}, "missing answer to &#39;admitted&#39;"),
        ("C-6", {"site": "london", "offence": "fraud"}, ELIGIBLE, "unknown level &#39;fraud&#39;"),
        ("C-7", LONDON, {**ELIGIBLE, "admitted": "perhaps"}, "answer &#39;perhaps&#39; to &#39;admitted&#39;"),
        ("has space", LONDON, ELIGIBLE, "referral id &#39;has space&#39; must be"),
    ],
)
def test_a_careless_form_is_sent_back_at_the_first_step(app, trial, referral_id, strata, answers, problem):
    carol = logged_in(app, "carol")
    page, _ = first_step(carol, referral_id, strata, answers)
    assert page.status_code == 422 and problem in page.text and 'id="confirm-form"' not in page.text
    assert trial.rows("SELECT count(*) AS n FROM rj_referrals")[0]["n"] == 0
    assert trial.audit("refusal") == [] and trial.audit("enrolment") == []


def test_another_sites_referral_is_forbidden_at_the_first_step(app, trial):
    carol = logged_in(app, "carol")
    page, _ = first_step(carol, "C-8", {"site": "northumbria", "offence": "property"})
    assert page.status_code == 403 and trial.referral("C-8") is None


def test_labels_replace_ids_on_the_result_receipt_and_list(labelled_app, labelled):
    import web_fixtures as wf

    carol = logged_in(labelled_app, "carol")
    page, _ = first_step(carol, "C-9")
    pages = [
        carol.post("/enrol", data=wf.confirmation(page.text)),
        carol.get("/receipt", params={"referral_id": "C-9"}),
        carol.get("/enrolments"),
    ]
    for shown in pages:
        text = text_of(shown.text)
        assert "Police force area: London (Metropolitan Police); Offence: Burglary or theft" in text, text
        assert "site=london" not in text


def test_the_event_menu_has_no_default_choice(app, trial):
    mary = logged_in(app, "mary")
    client_for(app).post(
        "/api/enrolments",
        json={"referral_id": "E-1", "strata": LONDON, "answers": ELIGIBLE},
        headers=bearer(trial.tokens["mary"]),
    )
    page = mary.get("/events")
    menu = page.text.split('name="kind"', 1)[1].split("</select>")[0]
    options = re.findall(r'<option value="([^"]*)"( selected)?', menu)
    assert options[0] == ("", " selected") and all(not selected for _, selected in options[1:])
    assert "required" in page.text.split('name="kind"', 1)[1].split(">")[0]
    from test_web_app import csrf_of

    sent = mary.post("/events", data={"csrf": csrf_of(page.text), "referral_id": "E-1", "kind": "", "note": ""})
    assert sent.status_code == 422 and trial.audit("event") == []


def test_security_md_web_section_cites_tests_that_exist():
    """SECURITY.md's claims about the service name the tests that hold them: those tests exist."""
    from pathlib import Path

    root = Path(__file__).resolve().parent
    section = (root.parent / "SECURITY.md").read_text(encoding="utf-8").split("## The web service")[1].split("\n## ")[0]
    cited = re.findall(r"`(test_[a-z_]+\.py)(?:::(test_[a-z0-9_]+))?`", section)
    assert len(cited) >= 5
    for module, name in cited:
        text = (root / module).read_text(encoding="utf-8")
        assert not name or f"def {name}(" in text, f"{module}::{name}"
