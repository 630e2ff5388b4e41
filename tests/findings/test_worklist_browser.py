"""The worklist in a real browser: Debian's headless Chromium driven by Selenium through
chromium-driver, behind the rig's stand-in for oauth2-proxy (rig/login_proxy.py).

A day like the rig's findings day (tests/findings/test_findings_rig_day.py runs it on the rig
itself) is played into the findings engine with an injected clock: a sensor board reporting
every 10 minutes, the hub unplugged from 13:00 to 15:00, no blood pressure by 10:00, an
alert reading at 02:10 and a low battery. The nurse signs in, sees the patient first on the
worklist with a missed measurement, a silent hub and an alert, opens the patient, acknowledges
the missed measurement and sees it close when the late reading arrives. Screenshots of the
pages go to docs/worklist/ with WORKLIST_SCREENSHOTS=1 (else to the test's temporary
directory).

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
from findings_helpers import BOARD, at, engine, ingest, reading, status

from region.worklist.app import create_app
from region.worklist.auth import AuthConfig, networks
from region.worklist.serve import running
from rig.login_proxy import login_proxy

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "worklist"
BOARD_T = 2 * 65536 + 0xF001
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


def _play_day(state: Path):
    """The findings day into the engine, up to 16:00 (the clock stays there)."""
    eng = engine(state, enrolled_ms=at(2, 0))
    high = frozenset({"threshold-above"})
    status(eng, at(2, 0, 1), 1, battery=70)
    now = at(2, 0)
    while now <= at(2, 13):
        ingest(eng, now, reading(BOARD_T, now, "21.5", device=BOARD, unit="Cel"))
        if now == at(2, 2, 10):
            ingest(eng, now + 4000, reading(150021, now, "186", flags=high))
        if now == at(2, 6, 30):
            ingest(eng, now, reading(150456, at(2, 3), "95", device="C0:FF:EE:00:00:04", unit="%"))
        if now == at(2, 11):
            status(eng, now, 2, battery=9)
        now += 10 * 60_000
    eng.clock_ms = lambda: at(2, 16)
    eng.evaluate()
    return eng


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
    assert rows[0].get_attribute("data-patient") == "pat-0001"
    findings = rows[0].find_elements(By.CSS_SELECTOR, "li.finding")
    kinds = {e.get_attribute("data-kind") for e in findings}
    assert {"missed-measurement", "hub-silent", "alert-reading", "battery-low"} <= kinds
    # The first finding is the alert (most urgent): sorted by what needs attention.
    assert findings[0].get_attribute("data-kind") == "alert-reading"
    browser.save_screenshot(str(out / "worklist-sv.png"))
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait.until(lambda b: "/patient/" in b.current_url)
    assert browser.find_element(By.ID, "patient").text == "pat-0001"
    assert len(browser.find_elements(By.CSS_SELECTOR, "figure.vital svg")) >= 4
    missed = "#open-findings li[data-kind='missed-measurement']"
    button = browser.find_element(By.CSS_SELECTOR, missed).find_element(By.CSS_SELECTOR, "button")
    assert button.get_attribute("aria-label").startswith("Kvittera")
    button.click()
    wait.until(lambda b: EMAIL in b.find_element(By.CSS_SELECTOR, missed).text)
    browser.set_window_size(1280, 2700)
    browser.get(url + "/patient/pat-0001?lang=en")
    browser.save_screenshot(str(out / "patient-en.png"))
    browser.get(url + "/patient/pat-0001?lang=sv")


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


@pytest.mark.slow
async def test_nurse_signs_in_acknowledges_and_sees_the_finding_close(tmp_path: Path):
    _require_browser()
    eng = _play_day(tmp_path / "state.db")
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
            # The data come back: the morning's blood pressure, taken at 08:05, arrives at
            # 16:05 once the hub is back.
            ingest(
                eng,
                at(2, 16, 5),
                reading(150021, at(2, 8, 5), "131"),
                reading(150022, at(2, 8, 5), "84"),
            )
            await asyncio.to_thread(_see_it_closed, browser, out)
        finally:
            await asyncio.to_thread(browser.quit)
            shutil.rmtree(profile, ignore_errors=True)
    eng.close()
