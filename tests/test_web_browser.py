"""A coordinator's enrolment in a real browser: headless Chromium through selenium.

The app is served by uvicorn on loopback; Chromium logs in as a coordinator, fills in
the enrolment form, reads it back on the confirmation page, confirms and reads the
allocation from the page, which must be the one stored. Screenshots of the confirmation
and the result are saved to ``tests/artifacts/web_confirm.png`` and ``web_enrol.png``; the form and
the list of enrolments must also fit a phone-sized window (screenshots ``*_narrow.png``).

Accessibility: axe-core (pinned :data:`AXE_VERSION`, installed with npm into
``tests/artifacts/axe`` the first time, or taken from ``RJTRIAL_AXE``, a path to
``axe.min.js``) is injected through selenium (the DevTools protocol, which the pages'
CSP does not govern; the pages themselves still run no script) into the log-in,
enrolment, confirmation, result and list pages: no serious or critical violation.

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
AXE_VERSION = "4.14.1"


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} in CI")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def axe_source() -> str:
    """The axe-core script: ``RJTRIAL_AXE``, or npm's copy under tests/artifacts/axe (installed once)."""
    import subprocess

    given = os.environ.get("RJTRIAL_AXE")
    path = Path(given) if given else ARTIFACTS / "axe" / "node_modules" / "axe-core" / "axe.min.js"
    if not path.exists() and not given:
        npm = shutil.which("npm")
        if npm is None:
            _missing("npm not found (needed once to install axe-core for the accessibility check)")
        done = subprocess.run(
            [
                npm,
                "install",
                "--prefix",
                str(path.parents[2]),
                "--no-save",
                "--no-audit",
                "--no-fund",
                f"axe-core@{AXE_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            _missing(f"npm install axe-core@{AXE_VERSION} failed: {done.stderr.strip()[-300:]}")
    if not path.exists():
        _missing(f"axe-core not found at {path}")
    return path.read_text(encoding="utf-8")


def serious_violations(browser, axe_source: str) -> list[str]:
    """axe-core's serious and critical violations on the page now shown (rule: targets)."""
    if not browser.execute_script("return typeof window.axe !== 'undefined'"):
        browser.execute_script(axe_source)
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => n.target.join(' '))}))), e => done([{id: 'axe-error', impact: 'critical',"
        " help: String(e), nodes: []}]));"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'][:5])}"
        for v in result
        if v["impact"] in ("serious", "critical")
    ]


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
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.mark.slow
def test_coordinator_logs_in_enrols_and_reads_the_allocation_in_chromium(browser, tmp_path, axe_source):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    db, key = wf.make_trial(tmp_path)
    wf.add_user(db, "carol", "coordinator", sites=("london",))
    referral = f"R-{uuid.uuid4().hex[:8]}"
    accessibility = {}
    with wf.LiveServer(db, key) as server:
        browser.set_script_timeout(60)
        browser.get(f"{server.url}/login")
        accessibility["log-in"] = serious_violations(browser, axe_source)
        user_field = next(
            e
            for e in browser.find_elements(By.CSS_SELECTOR, "input")
            if (e.get_attribute("type") or "text") in ("text", "email") and e.get_attribute("name") and e.is_displayed()
        )
        user_field.send_keys("carol")
        browser.find_element(By.CSS_SELECTOR, "input[type=password]").send_keys(wf.PASSWORD)
        browser.find_element(By.CSS_SELECTOR, "form [type=submit]").submit()
        # wait for the navigation to finish (reading the old page races with it)
        WebDriverWait(browser, 30).until(lambda b: not b.current_url.split("?")[0].rstrip("/").endswith("/login"))

        browser.get(f"{server.url}/enrol")
        accessibility["enrol"] = serious_violations(browser, axe_source)
        form = next(
            f
            for f in browser.find_elements(By.TAG_NAME, "form")
            if f.find_elements(By.CSS_SELECTOR, "[name*=referral]")
        )
        form.find_element(By.CSS_SELECTOR, "[name*=referral]").send_keys(referral)
        wanted = {"site": "london", "offence": "property", **wf.ELIGIBLE}
        for key_name, value in wanted.items():
            controls = [
                c
                for c in form.find_elements(By.CSS_SELECTOR, "select, input")
                if key_name in (c.get_attribute("name") or "")
            ]
            assert controls, f"no control for {key_name} on the form"
            control = controls[0]
            if control.tag_name == "select":
                Select(control).select_by_value(value)
            else:  # radio buttons
                next(c for c in controls if c.get_attribute("value") == value).click()
        form.find_element(By.CSS_SELECTOR, "[type=submit]").click()
        # the confirmation: the answers read back in words; nothing recorded yet
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "confirm-form"))
        confirm_page = browser.find_element(By.TAG_NAME, "body").text
        recorded_before_confirming = referral in wf.referral_rows(db)
        accessibility["confirm"] = serious_violations(browser, axe_source)
        ARTIFACTS.mkdir(exist_ok=True)
        confirm_shot = ARTIFACTS / "web_confirm.png"
        assert browser.save_screenshot(str(confirm_shot))
        print(f"screenshot: {confirm_shot}")
        browser.find_element(By.ID, "confirm-submit").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "result"))
        page = browser.find_element(By.TAG_NAME, "body").text
        accessibility["result"] = serious_violations(browser, axe_source)

        screenshot = ARTIFACTS / "web_enrol.png"
        assert browser.save_screenshot(str(screenshot))
        print(f"screenshot: {screenshot}")

        # the printable receipt: on paper, the receipt without menus or buttons
        browser.find_element(By.ID, "receipt-link").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "receipt-sheet"))
        receipt_page = browser.find_element(By.ID, "receipt-sheet").text
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        printed = {
            "nav": browser.find_element(By.TAG_NAME, "nav").is_displayed(),
            "sheet": browser.find_element(By.ID, "receipt-sheet").is_displayed(),
            "buttons": any(b.is_displayed() for b in browser.find_elements(By.TAG_NAME, "button")),
        }
        assert browser.save_screenshot(str(ARTIFACTS / "web_receipt_print.png"))
        pdf = browser.execute_cdp_cmd("Page.printToPDF", {"printBackground": False})
        import base64

        (ARTIFACTS / "web_receipt.pdf").write_bytes(base64.b64decode(pdf["data"]))
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        accessibility["receipt"] = serious_violations(browser, axe_source)
        browser.get(f"{server.url}/enrolments")
        accessibility["list"] = serious_violations(browser, axe_source)
        assert printed == {"nav": False, "sheet": True, "buttons": False}, printed
        assert len(re.findall(rb"/Type\s*/Page[^s]", base64.b64decode(pdf["data"]))) == 1  # one sheet of paper

        # on a phone-sized window the form and the result fit the width (no sideways scrolling)
        browser.set_window_size(390, 844)
        for path in ("/enrol", "/enrolments"):
            browser.get(f"{server.url}{path}")
            overflow = browser.execute_script(
                "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            narrow = ARTIFACTS / f"web{path.replace('/', '_')}_narrow.png"
            browser.save_screenshot(str(narrow))
            print(f"screenshot: {narrow}")
            assert overflow <= 1, f"{path} overflows a 390 px window by {overflow} px"

    assert accessibility == {name: [] for name in ("log-in", "enrol", "confirm", "result", "receipt", "list")}, (
        accessibility
    )
    assert not recorded_before_confirming
    from rjtrial import Protocol

    for question in Protocol.from_toml(wf.PROTOCOL_PATH).eligibility:
        assert question.question in confirm_page and "eligible" in confirm_page
    assert referral in confirm_page and confirm_shot.stat().st_size > 5_000
    row = wf.referral_rows(db)[referral]
    assert row["status"] == "randomised"
    assert row["receipt"] in page and row["receipt"] in receipt_page and row["arm"] in receipt_page
    other = ({"control", "conference"} - {row["arm"]}).pop()
    assert row["arm"] in page and other not in page
    assert re.search(rf"number at its site\W+{wf.site_number(db, referral)}\b", page, re.I), page
    assert "sequence number" not in page.lower()  # a coordinator sees the site's numbers only
    assert screenshot.stat().st_size > 5_000


@pytest.mark.slow
def test_the_accessibility_check_sees_a_serious_violation(browser, axe_source):
    """The check above can fail: a text box without a label and an image without text are reported."""
    browser.get(
        "data:text/html,<!doctype html><html lang=en><title>t</title><main><input type=text><img src=x></main></html>"
    )
    found = serious_violations(browser, axe_source)
    assert any(v.startswith("label (critical)") for v in found) and any(v.startswith("image-alt") for v in found), found


@pytest.mark.slow
def test_the_trial_switcher_in_chromium(browser, tmp_path, axe_source):
    """Two trials on one server: the list, one trial's log-in, and back to the other, logged out there."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from rjtrial.web.multi import create_server_app

    made = {}
    for name in ("north", "south"):
        (tmp_path / name).mkdir()
        made[name] = wf.make_trial(tmp_path / name)
        wf.add_user(made[name][0], "carol", "coordinator", sites=("london",))
    app = create_server_app({"trials": {n: {"db": str(db), "key": str(key)} for n, (db, key) in made.items()}})
    with wf.LiveServer(None, None, app=app) as server:
        browser.get(f"{server.url}/")
        assert serious_violations(browser, axe_source) == []
        links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "#trials a")]
        assert links == [f"{server.url}/t/north/", f"{server.url}/t/south/"]
        browser.find_element(By.ID, "trial-north").click()
        WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/t/north/login"))
        browser.find_element(By.ID, "username").send_keys("carol")
        browser.find_element(By.ID, "password").send_keys(wf.PASSWORD)
        browser.find_element(By.ID, "login-form").submit()
        WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/t/north/"))
        assert "carol (coordinator)" in browser.find_element(By.TAG_NAME, "body").text
        browser.find_element(By.ID, "all-trials").click()
        WebDriverWait(browser, 30).until(lambda b: b.find_elements(By.ID, "trials"))
        browser.find_element(By.ID, "trial-south").click()
        # logged in to north only: south asks for its own log-in
        WebDriverWait(browser, 30).until(lambda b: b.current_url.endswith("/t/south/login"))
        browser.get(f"{server.url}/t/north/enrolments")
        assert browser.current_url.endswith("/t/north/enrolments")  # still logged in to north
