"""The worklist in a real browser: Debian's headless Chromium driven by Selenium through
chromium-driver, behind the rig's stand-in for oauth2-proxy (rig/login_proxy.py), over a
recorded rig day.

The test records its own short rig day first (rig/worklist_day.py: 30 real seconds of the
virtual rig with its real parts: emulated devices, the hub as a process, the TLS broker, the
region's receiver): an alert reading at 06:05, a battery at 8 %, the hub unplugged from 06:45
to 07:30 and the blood pressure the plan wants by 06:45 taken only at 07:45. What the region
received is judged on rig time (rig.findings_day.Replay) up to 07:20, when the alert, the
missed measurement and the silent hub are open at once; the nurse signs in, sees the patient
first on the worklist with them, opens the patient and acknowledges the missed measurement;
the rest of the recorded day is then judged (the hub comes back, the cuff's reading arrives)
and the nurse sees it closed. Recording in the test rather than storing a fixture keeps the
day honest (it is what today's hub, receiver and engine do) for 30 seconds of rig time
beside the browser's own few seconds. Screenshots of the pages go to docs/worklist/ with
WORKLIST_SCREENSHOTS=1 (else to the test's temporary directory).

Chromium and chromium-driver come from Debian (``make browser-deps``); without them the test
is skipped with what to install, and under CI (``CI=true``) it fails.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from region.worklist.app import create_app
from region.worklist.auth import AuthConfig, networks
from region.worklist.serve import running
from rig.findings_day import Replay
from rig.home import RIG_PATIENT
from rig.login_proxy import login_proxy
from rig.worklist_day import DAY_END_S, NURSE_LOOKS_S, PLAN, record_day

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "worklist"
HUB = "hub-rig-0001"
PATIENT = RIG_PATIENT.value
EMAIL = "sjukskoterska@example.org"


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, DRIVER) if not Path(p).exists()]
    if not missing:
        return
    message = (
        f"missing {', '.join(missing)}: install Debian's chromium and chromium-driver "
        "(`make browser-deps` as root, or apt-get install chromium chromium-driver)"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def _browser(profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1000",
        "--lang=sv-SE",
    ):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "sv-SE,sv"})
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def _sign_in_and_acknowledge(browser, url: str, out: Path) -> None:
    """In the browser (a worker thread: the event loop keeps serving the pages)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    # A page replaced while it is read (a click navigates) is read again.
    wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
    browser.implicitly_wait(10)  # elements of a page still loading after a click
    browser.get(url + "/")
    assert "/oauth2/sign_in" in browser.current_url
    browser.find_element(By.ID, "email").send_keys(EMAIL)
    browser.find_element(By.ID, "sign-in").click()
    assert browser.find_element(By.ID, "user").text == EMAIL
    rows = browser.find_elements(By.CSS_SELECTOR, "table.worklist tbody tr")
    assert rows[0].get_attribute("data-patient") == PATIENT
    findings = rows[0].find_elements(By.CSS_SELECTOR, "li.finding")
    kinds = {e.get_attribute("data-kind") for e in findings}
    assert {"missed-measurement", "hub-silent", "alert-reading", "battery-low"} <= kinds
    # The first finding is the alert (most urgent): sorted by what needs attention.
    assert findings[0].get_attribute("data-kind") == "alert-reading"
    browser.save_screenshot(str(out / "worklist-sv.png"))
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait.until(lambda b: "/patient/" in b.current_url)
    assert browser.find_element(By.ID, "patient").text == PATIENT
    # Body temperature and SpO2 so far, each over 7 and 30 days.
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.vital svg")) >= 4
    missed = "#open-findings li[data-kind='missed-measurement']"
    button = browser.find_element(By.CSS_SELECTOR, missed).find_element(By.CSS_SELECTOR, "button")
    assert button.get_attribute("aria-label").startswith("Kvittera")
    button.click()
    wait.until(lambda b: EMAIL in b.find_element(By.CSS_SELECTOR, missed).text)
    browser.set_window_size(1280, 2700)
    browser.get(url + f"/patient/{PATIENT}?lang=en")
    browser.save_screenshot(str(out / "patient-en.png"))
    browser.get(url + f"/patient/{PATIENT}?lang=sv")


def _see_it_closed(browser, out: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.refresh()
    still = {
        e.get_attribute("data-kind")
        for e in browser.find_elements(By.CSS_SELECTOR, "#open-findings li")
    }
    assert "missed-measurement" not in still
    assert "hub-silent" not in still  # the batch was contact
    closed = browser.find_element(By.CSS_SELECTOR, "#history li[data-kind='missed-measurement']")
    assert EMAIL in closed.text
    browser.save_screenshot(str(out / "patient-sv-closed.png"))
    buttons = browser.find_elements(By.CSS_SELECTOR, "button")
    assert all(b.get_attribute("aria-label") for b in buttons)


@pytest.mark.broker
@pytest.mark.slow
async def test_nurse_signs_in_acknowledges_and_sees_the_finding_close(tmp_path: Path):
    _require_browser()
    recorded = await record_day(tmp_path)
    clock = recorded.clock
    day = Replay(
        recorded.log, clock, tmp_path / "state.db", hub=HUB, patient=RIG_PATIENT, plan=PLAN
    )
    eng = day.until(clock.day0_ms + NURSE_LOOKS_S * 1000)
    app = create_app(eng, AuthConfig("proxy", networks(["127.0.0.1"])), evaluate_every_s=None)
    out = DOCS if os.environ.get("WORKLIST_SCREENSHOTS") == "1" else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    profile = Path(tempfile.mkdtemp(prefix="narhub-chromium-"))
    async with (
        running(app, "127.0.0.1", 0) as upstream,
        running(login_proxy(upstream), "127.0.0.1", 0) as url,
    ):
        browser = await asyncio.to_thread(_browser, profile)
        try:
            await asyncio.to_thread(_sign_in_and_acknowledge, browser, url, out)
            # The rest of the recorded day: the hub is plugged in again at 07:30 and the
            # cuff's reading of 07:45 arrives.
            # (To the last arrival, should the hub's backlog trail the day's end.)
            day.until(max(day.last_ms, clock.day0_ms + DAY_END_S * 1000))
            await asyncio.to_thread(_see_it_closed, browser, out)
        finally:
            await asyncio.to_thread(browser.quit)
            shutil.rmtree(profile, ignore_errors=True)
    eng.close()
