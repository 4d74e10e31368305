"""A coordinator's enrolment in a real browser: headless Chromium through selenium.

The app is served by uvicorn on loopback; Chromium logs in as a coordinator, fills in
the enrolment form, submits it and reads the allocation from the page, which must be
the one stored. A screenshot of the result is saved to ``tests/artifacts/web_enrol.png``; the form and
the list of enrolments must also fit a phone-sized window (screenshots ``*_narrow.png``).

Needs ``/usr/bin/chromium`` and ``/usr/bin/chromedriver`` (``scripts/chromium.sh``
installs them). Outside CI the test is skipped, with that reason, when they are
absent; in CI (``CI=true``) their absence is a failure.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest

import web_fixtures as wf

CHROMIUM = os.environ.get("RJTRIAL_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RJTRIAL_CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture
def browser(tmp_path):
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{', '.join(missing)} not found in CI: .ci/run must install them (scripts/chromium.sh)")
        pytest.skip(f"{', '.join(missing)} not found (bash scripts/chromium.sh installs Chromium and ChromeDriver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
def test_coordinator_logs_in_enrols_and_reads_the_allocation_in_chromium(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    db, key = wf.make_trial(tmp_path)
    wf.add_user(db, "carol", "coordinator", sites=("london",))
    referral = f"R-{uuid.uuid4().hex[:8]}"
    with wf.LiveServer(db, key) as server:
        browser.get(f"{server.url}/login")
        user_field = next(e for e in browser.find_elements(By.CSS_SELECTOR, "input")
                          if (e.get_attribute("type") or "text") in ("text", "email")
                          and e.get_attribute("name") and e.is_displayed())
        user_field.send_keys("carol")
        browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(wf.PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form [type=submit]").submit()
        # wait for the navigation to finish (reading the old page races with it)
        WebDriverWait(browser, 30).until(lambda b: not b.current_url.split("?")[0].rstrip("/").endswith("/login"))

        browser.get(f"{server.url}/enrol")
        form = next(f for f in browser.find_elements(By.TAG_NAME, "form")
                    if f.find_elements(By.CSS_SELECTOR, "[name*=referral]"))
        form.find_element(By.CSS_SELECTOR, "[name*=referral]").send_keys(referral)
        wanted = {"site": "london", "offence": "property", **wf.ELIGIBLE}
        for key_name, value in wanted.items():
            controls = [c for c in form.find_elements(By.CSS_SELECTOR, "select, input")
                        if key_name in (c.get_attribute("name") or "")]
            assert controls, f"no control for {key_name} on the form"
            control = controls[0]
            if control.tag_name == "select":
                Select(control).select_by_value(value)
            else:  # radio buttons
                next(c for c in controls if c.get_attribute("value") == value).click()
        form.find_element(By.CSS_SELECTOR, "[type=submit]").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "result"))
        page = browser.find_element(By.TAG_NAME, "body").text

        ARTIFACTS.mkdir(exist_ok=True)
        screenshot = ARTIFACTS / "web_enrol.png"
        assert browser.save_screenshot(str(screenshot))
        print(f"screenshot: {screenshot}")

        # the printable receipt: on paper, the receipt without menus or buttons
        browser.find_element(By.ID, "receipt-link").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "receipt-sheet"))
        receipt_page = browser.find_element(By.ID, "receipt-sheet").text
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        printed = {"nav": browser.find_element(By.TAG_NAME, "nav").is_displayed(),
                   "sheet": browser.find_element(By.ID, "receipt-sheet").is_displayed(),
                   "buttons": any(b.is_displayed() for b in browser.find_elements(By.TAG_NAME, "button"))}
        assert browser.save_screenshot(str(ARTIFACTS / "web_receipt_print.png"))
        pdf = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})
        import base64

        (ARTIFACTS / "web_receipt.pdf").write_bytes(base64.b64decode(pdf["data"]))
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        assert printed == {"nav": False, "sheet": True, "buttons": False}, printed
        assert len(re.findall(rb"/Type\s*/Page[^s]", base64.b64decode(pdf["data"]))) == 1  # one sheet of paper

        # on a phone-sized window the form and the result fit the width (no sideways scrolling)
        browser.set_window_size(390, 844)
        for path in ("/enrol", "/enrolments"):
            browser.get(f"{server.url}{path}")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
            narrow = ARTIFACTS / f"web{path.replace('/', '_')}_narrow.png"
            browser.save_screenshot(str(narrow))
            print(f"screenshot: {narrow}")
            assert overflow <= 1, f"{path} overflows a 390 px window by {overflow} px"

    row = wf.referral_rows(db)[referral]
    assert row["status"] == "randomised"
    assert row["receipt"] in page and row["receipt"] in receipt_page and row["arm"] in receipt_page
    other = ({"control", "conference"} - {row["arm"]}).pop()
    assert row["arm"] in page and other not in page
    assert re.search(rf"sequence number\W+{row['sequence_number']}\b", page, re.I), page
    assert screenshot.stat().st_size > 5_000
