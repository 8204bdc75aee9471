"""The dashboard in a real browser: headless Debian chromium driven by Selenium (chromium-driver) against the
engine's app on a real uvicorn socket. Clicks through filter, acknowledge, resolve (confirm dialog), the
drill-down and sign-in, waits for a new alert to appear without a reload, walks to a button by keyboard,
measures text contrast, and saves screenshots under test-artifacts/screenshots/ (1366x768 and a wall screen).
"""
from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from sqlalchemy import select

from adapters.dashboard.settings import DashboardSettings
from adapters.sql_tables import alerts
from engine.channel import Channel
from tests.http_client import serving
from tests.messages import oru
from tests.servers import unavailable
from tests.test_dashboard import ICU, PASSWORDS, Seeded, dashboard_app, hl7_time, seed, signed_in_settings, sqlite_store

SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
LAPTOP, WALL = (1366, 768), (2560, 1440)
WAIT_SECONDS = 20  # only against hangs: every wait ends as soon as its condition holds

# Contrast of every visible text element against the background it sits on (WCAG 2.x formula).
CONTRAST_SCRIPT = """
function channel(c) { c = c / 255; return c <= 0.03928 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4); }
function luminance(rgb) { return 0.2126 * channel(rgb[0]) + 0.7152 * channel(rgb[1]) + 0.0722 * channel(rgb[2]); }
function parse(colour) { var m = colour.match(/[\\d.]+/g).map(Number); return m.length > 3 ? m : m.concat([1]); }
function background(element) {
  for (var e = element; e; e = e.parentElement) {
    var c = parse(getComputedStyle(e).backgroundColor);
    if (c[3] > 0) { return c; }
  }
  return [255, 255, 255, 1];
}
var failures = [];
document.querySelectorAll("body *").forEach(function (element) {
  var own = Array.prototype.some.call(element.childNodes, function (n) {
    return n.nodeType === 3 && n.textContent.trim(); });
  if (!own || !element.offsetParent || element.closest("svg")) { return; }
  var a = luminance(parse(getComputedStyle(element).color)), b = luminance(background(element));
  var ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) { failures.push(element.tagName + " '" + element.textContent.trim().slice(0, 40) + "' " +
                                   ratio.toFixed(2)); }
});
return failures;
"""


@dataclass
class Site:
    url: str
    seeded: Seeded
    driver: WebDriver

    def open(self, path: str) -> None:
        self.driver.get(self.url + path)

    def shot(self, name: str, size: tuple[int, int] = LAPTOP) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.set_window_size(*size)
        assert self.driver.save_screenshot(str(SCREENSHOTS / f"{name}.png"))
        self.driver.set_window_size(*LAPTOP)

    def wait(self, condition: object, message: str) -> None:
        WebDriverWait(self.driver, WAIT_SECONDS).until(condition, message)  # type: ignore[arg-type]

    def alert_state(self, alert_id: int) -> tuple[str, str | None, str | None]:
        with self.seeded.store.engine.connect() as conn:
            row = conn.execute(select(alerts.c.state, alerts.c.acknowledged_by, alerts.c.resolved_by)
                               .where(alerts.c.id == alert_id)).one()
        return row.state, row.acknowledged_by, row.resolved_by


def chromium() -> WebDriver:
    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if binary is None or driver is None:
        unavailable("chromium and chromium-driver (Debian packages) are not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     f"--window-size={LAPTOP[0]},{LAPTOP[1]}", "--force-device-scale-factor=1", "--lang=en-GB"):
        options.add_argument(argument)
    return webdriver.Chrome(options=options, service=Service(driver))


@pytest.fixture(scope="module")
def browser_driver() -> Iterator[WebDriver]:
    driver = chromium()
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def site(browser_driver: WebDriver, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    store = sqlite_store(tmp_path_factory.mktemp("browser") / "vitals.db")
    seeded = seed(store)
    app = dashboard_app(store, DashboardSettings(refresh_seconds=0.5))
    try:
        with serving(app) as url:
            yield Site(url, seeded, browser_driver)
    finally:
        store.close()


def test_integrations_at_a_glance(site: Site) -> None:
    site.open("/")
    tiles = site.driver.execute_script(  # in one call: the live refresh may swap the tiles between two calls
        "return Array.from(document.querySelectorAll('article.tile'), t => "
        "[t.getAttribute('aria-labelledby'), t.querySelector('.status').textContent.trim()]);")
    assert tiles == [["route-icu", "▲ Warning"], ["route-ward", "✖ Failing"], ["destination-ehr", "✖ Failing"],
                     ["destination-pager", "✔ OK"]]
    assert "Sign-in is off" in site.driver.find_element(By.CSS_SELECTOR, ".banner").text
    site.shot("integrations-laptop")
    site.shot("integrations-wall", WALL)


def test_filter_the_alerts_with_the_form(site: Site) -> None:
    site.open("/alerts")
    Select(site.driver.find_element(By.NAME, "severity")).select_by_visible_text("warning")
    site.driver.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
    site.wait(lambda d: "severity=warning" in d.current_url, "the filter form was not sent")
    rows = site.driver.find_elements(By.CSS_SELECTOR, "#alert-rows tr")
    ids = site.seeded.alert_ids
    assert [row.get_attribute("id") for row in rows] == [f"alert-{ids['P4', 'spo2']}", f"alert-{ids['P2', 'spo2']}"]
    site.shot("alerts-filtered")


def test_acknowledge_and_resolve_by_clicking(site: Site) -> None:
    alert_id = site.seeded.alert_ids["P2", "spo2"]
    site.open("/alerts?patient=P2")
    site.driver.find_element(By.ID, f"ack-{alert_id}").click()
    site.wait(lambda d: not d.find_elements(By.ID, f"ack-{alert_id}"), "the alert was not acknowledged")
    assert "acknowledged" in site.driver.find_element(By.ID, f"alert-{alert_id}").text
    site.driver.find_element(By.ID, f"resolve-{alert_id}").click()
    dialog = site.driver.switch_to.alert
    assert dialog.text.startswith(f"Resolve alert {alert_id} (spo2, patient P2)?")
    dialog.dismiss()  # changed their mind: nothing is sent
    assert site.alert_state(alert_id) == ("acknowledged", "local", None)
    site.driver.find_element(By.ID, f"resolve-{alert_id}").click()
    site.driver.switch_to.alert.accept()
    site.wait(lambda d: not d.find_elements(By.ID, f"resolve-{alert_id}"), "the alert was not resolved")
    assert site.alert_state(alert_id) == ("resolved", "local", "local")
    site.shot("alerts-resolved")


def test_a_new_alert_appears_without_a_reload(site: Site) -> None:
    site.open("/alerts?severity=critical")
    site.driver.execute_script("window.notReloaded = true;")
    raw = oru("LIVE-1", "P7", hl7_time(datetime.now(UTC), 0), [("heart_rate", 160)], device="MON-7")
    assert Channel(site.seeded.store).dispatch(raw, ICU).status == "STORED"
    with site.seeded.store.engine.connect() as conn:
        new_id = conn.execute(select(alerts.c.id).where(alerts.c.patient_id == "P7")).scalar_one()
    try:
        site.wait(lambda d: d.find_elements(By.ID, f"alert-{new_id}"), "the new alert did not appear")
    except TimeoutException:
        pytest.fail("the live refresh did not show the new alert")
    assert site.driver.execute_script("return window.notReloaded === true;")
    first = site.driver.find_element(By.CSS_SELECTOR, "#alert-rows tr")
    assert first.get_attribute("id") == f"alert-{new_id}" and "P7" in first.text


def test_the_keyboard_reaches_every_action(site: Site) -> None:
    alert_id = site.seeded.alert_ids["P1", "heart_rate"]
    site.open("/alerts?patient=P1&kind=threshold")
    body = site.driver.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    skip = site.driver.switch_to.active_element
    assert skip.text == "Skip to content"
    for _ in range(80):
        site.driver.switch_to.active_element.send_keys(Keys.TAB)
        if site.driver.switch_to.active_element.get_attribute("id") == f"ack-{alert_id}":
            break
    focused = site.driver.switch_to.active_element
    assert focused.get_attribute("id") == f"ack-{alert_id}", "the acknowledge button is not reachable by Tab"
    outline = site.driver.execute_script("var s = getComputedStyle(arguments[0]); "
                                         "return [s.outlineStyle, parseFloat(s.outlineWidth)];", focused)
    assert outline[0] == "solid" and outline[1] >= 2, "the focused button shows no focus ring"
    site.shot("alerts-keyboard-focus")
    focused.send_keys(Keys.ENTER)
    site.wait(lambda d: not d.find_elements(By.ID, f"ack-{alert_id}"), "Enter did not acknowledge")
    assert site.alert_state(alert_id)[0] == "acknowledged"


def test_drill_down_from_the_list(site: Site) -> None:
    alert_id = site.seeded.alert_ids["P4", "heart_rate,spo2"]
    site.open("/alerts?kind=trend")
    site.driver.find_element(By.CSS_SELECTOR, f'a[href="/alerts/{alert_id}"]').click()
    site.wait(lambda d: d.current_url.endswith(f"/alerts/{alert_id}"), "the drill-down did not open")
    charts = site.driver.find_elements(By.CSS_SELECTOR, "figure.chart svg")
    assert len(charts) == 2 and all(chart.size["width"] > 300 for chart in charts)
    assert "Readings around the alert" in site.driver.page_source
    site.shot("alert-drill-down")
    site.driver.find_element(By.CSS_SELECTOR, 'a[href^="/messages/"]').click()
    site.wait(lambda d: "/messages/" in d.current_url, "the message trail did not open")
    assert "What happened to message" in site.driver.page_source
    site.shot("message-trail")


def test_other_pages_render(site: Site) -> None:
    for path, name in (("/operations", "operations"), ("/stats", "statistics"), ("/messages", "messages")):
        site.open(path)
        assert site.driver.find_element(By.TAG_NAME, "h1").text
        site.shot(name)
    site.open("/stats")
    assert len(site.driver.find_elements(By.CSS_SELECTOR, "figure.chart svg")) >= 3


def test_text_contrast_is_readable(site: Site) -> None:
    failures = []
    for path in ("/", "/alerts", f"/alerts/{site.seeded.alert_ids['P1', 'heart_rate']}", "/operations", "/stats",
                 f"/messages/{site.seeded.message_ids['SPO2-LOW']}"):
        site.open(path)
        failures += [f"{path}: {failure}" for failure in site.driver.execute_script(CONTRAST_SCRIPT)]
    assert failures == []


def test_sign_in_in_the_browser(browser_driver: WebDriver, site: Site) -> None:
    app = dashboard_app(site.seeded.store, signed_in_settings())
    with serving(app) as url:
        browser_driver.delete_all_cookies()
        browser_driver.get(url + "/operations")
        assert "/signin?next=%2Foperations" in browser_driver.current_url
        browser_driver.find_element(By.NAME, "name").send_keys("otto")
        browser_driver.find_element(By.NAME, "password").send_keys(PASSWORDS["otto"])
        site.shot("sign-in")
        browser_driver.find_element(By.CSS_SELECTOR, "form.signin button").click()
        WebDriverWait(browser_driver, WAIT_SECONDS).until(lambda d: d.current_url == url + "/operations",
                                                          "sign-in did not lead back")
        assert "otto" in browser_driver.find_element(By.CSS_SELECTOR, ".who").text
        assert not browser_driver.find_elements(By.CSS_SELECTOR, ".banner")
        browser_driver.find_element(By.CSS_SELECTOR, ".who button").click()
        WebDriverWait(browser_driver, WAIT_SECONDS).until(lambda d: "/signin" in d.current_url, "not signed out")
        browser_driver.delete_all_cookies()
