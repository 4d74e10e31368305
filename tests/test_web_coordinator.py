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
    rows = trial.rows("SELECT referral_id, strata, sequence_number FROM rj_referrals "
                      "WHERE sequence_number IS NOT NULL ORDER BY sequence_number")
    site = {r["referral_id"]: re.search(r'"site":"([^"]+)"', r["strata"]).group(1) for r in rows}
    mine = [r["referral_id"] for r in rows if site[r["referral_id"]] == site[referral_id]]
    return mine.index(referral_id) + 1


def nina_enrols_two(app, trial):
    """Two randomisations at northumbria first: london's first is then number 3 in the trial."""
    for referral_id in ("N-1", "N-2"):
        response = client_for(app).post("/api/enrolments", json={"referral_id": referral_id, "strata": NORTH,
                                                                 "answers": ELIGIBLE},
                                        headers=bearer(trial.tokens["nina"]))
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
    client_for(app).post("/api/enrolments", json={"referral_id": "L-1", "strata": LONDON, "answers": ELIGIBLE},
                         headers=bearer(trial.tokens["carol"]))
    for name in ("carol", "nina"):
        rows = client_for(app).get("/api/enrolments", headers=bearer(trial.tokens[name])).json()["enrolments"]
        assert rows and all("sequence_number" not in r for r in rows)
        assert {r["referral_id"]: r["site_sequence_number"] for r in rows} == {
            r["referral_id"]: site_number(trial, r["referral_id"]) for r in rows}
    rows = client_for(app).get("/api/enrolments", headers=bearer(trial.tokens["mary"])).json()["enrolments"]
    assert {r["referral_id"]: (r["sequence_number"], r["site_sequence_number"]) for r in rows} == {
        "N-1": (1, 1), "N-2": (2, 2), "L-1": (3, 1)}
    manager = client_for(app).post("/api/enrolments", json={"referral_id": "M-1", "strata": LONDON,
                                                            "answers": ELIGIBLE}, headers=bearer(trial.tokens["mary"]))
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
    row = {"status": "randomised", "referral_id": "L-1", "arm": "conference", "site_sequence_number": 1,
           "receipt": "RJ-0000-0000-0000", "reasons": [], "randomised_on": "2026-12-05T10:00:00Z",
           "strata": LONDON, "at": "2026-12-05T10:00:00Z", "by": "carol"}
    text = receipt_message(settings, row, to="carol@example.org", trial="t", commitment="c").get_content()
    assert "Number at site:  1" in text and "Sequence number" not in text
    text = receipt_message(settings, {**row, "sequence_number": 3}, to="m@example.org", trial="t",
                           commitment="c").get_content()
    assert "Sequence number: 3 (whole trial)" in text
