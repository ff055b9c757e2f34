"""The dashboard in a real headless Chromium against a real server process and a seeded OR day.

Checks what an engineer sees (not just status codes), that the overview follows the database live, that
acknowledging an alarm writes the audit trail, and that nothing is served without a session. Screenshots of
every page land in a temp dir (the README's come from the simulated run, ``test_dash_simulated.py``).
"""

from __future__ import annotations

import contextlib
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from tests.support.browser import chromium, login
from tests.support.dashboard import PASSWORD, PRODUCT_REFRESH_S, USER, SeededDashboard
from tests.support.poll import wait_until
from tests.support.procs import REPO_ROOT

pytestmark = pytest.mark.browser

# The product promises live pages update within 2 s (its refresh interval); slack for a loaded 2-core machine.
LIVE_BUDGET_S = 5.0
PAGES = ["/", "/devices", "/devices/esu-or1", "/procedures", "/procedures/C-7F3A19", "/alarms", "/system"]
DOCS_SHOTS = REPO_ROOT / "docs" / "screenshots"


def _text(driver: webdriver.Chrome, css: str = "body") -> str:
    try:
        return " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, css))
    except Exception:  # the page re-rendered under us: try again on the next poll
        return ""


def wait_text(driver: webdriver.Chrome, *texts: str, css: str = "body", timeout: float = 20.0) -> str:
    """Wait until every text is visible inside ``css`` (case-insensitive: CSS may upper-case labels)."""
    return wait_until(lambda: (t := _text(driver, css)) and all(x.lower() in t.lower() for x in texts) and t,
                      timeout=timeout, interval=0.2, what=f"{texts!r} in {css}")


def _execute(dashboard: SeededDashboard, sql: str) -> None:
    with psycopg.connect(dashboard.db.dsn(), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def _click(driver: webdriver.Chrome, element_id: str) -> bool:
    """Click if present; always False so a ``wait_until`` around it keeps checking its real condition."""
    with contextlib.suppress(Exception):  # not rendered yet, or re-rendered under us: the next poll retries
        driver.find_element(By.ID, element_id).click()
    return False


def _shot(driver: webdriver.Chrome, directory: Path, name: str) -> Path:
    path = directory / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


# ------------------------------------------------------------------------------------------------ login


def _raw(url: str, *, data: bytes | None = None) -> tuple[int, str, bytes]:
    """One request without following redirects: (status, Location, body)."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=5) as response:
            return response.status, response.headers.get("Location", ""), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", ""), exc.read()


def test_nothing_is_served_without_a_session(dashboard: SeededDashboard) -> None:
    for path in PAGES:
        status, location, _ = _raw(dashboard.base + path)
        assert status == 302 and location.startswith("/login"), path
    update = {"output": "overview-rooms.children", "outputs": {"id": "overview-rooms", "property": "children"},
              "inputs": [{"id": "overview-tick", "property": "n_intervals", "value": 1}],
              "changedPropIds": ["overview-tick.n_intervals"], "state": []}
    status, _, body = _raw(dashboard.base + "/_dash-update-component", data=json.dumps(update).encode())
    assert status == 401 and b"OR-1" not in body and b"esu-or1" not in body
    for path in ("/_dash-layout", "/_dash-dependencies", "/metrics"):
        status, _, body = _raw(dashboard.base + path)
        assert status == 401 and b"overview" not in body, path
    assert _raw(dashboard.base + "/healthz")[0] == 200


def test_every_page_sends_a_browser_without_session_to_the_login_form(dashboard: SeededDashboard) -> None:
    with chromium() as anonymous:
        for path in PAGES:
            anonymous.get(dashboard.base + path)
            wait_text(anonymous, "Sign in", "Username")
            assert "/login" in anonymous.current_url, path
        anonymous.find_element(By.ID, "username").send_keys("engineer")
        anonymous.find_element(By.ID, "password").send_keys("wrong-password")
        anonymous.find_element(By.ID, "login-submit").click()
        wait_text(anonymous, "Wrong username or password")


# ------------------------------------------------------------------------------------------------ pages


def test_overview_shows_rooms_states_and_the_running_case(browser: webdriver.Chrome, dashboard: SeededDashboard,
                                                         screenshot_dir: Path) -> None:
    browser.set_window_size(1600, 720)
    browser.get(dashboard.base + "/")
    wait_text(browser, "OR-1", "OR-2", "OR-3", "OR-4", "laparoscopic cholecystectomy", "Dissection",
              css="#overview-rooms")
    row = '[data-device="{}"]'
    wait_text(browser, "alarming", "OVERPRESSURE", css=row.format("insuff-or1"))
    wait_text(browser, "online", css=row.format("esu-or1"))
    wait_text(browser, "silent", css=row.format("stapler-or2"))
    wait_text(browser, "unknown", css=row.format("esu-or3"))
    wait_text(browser, "offline", css=row.format("ventilator-or4"))
    wait_text(browser, "Gateway down", css='[data-room="OR-3"]')
    _shot(browser, screenshot_dir, "overview")
    browser.set_window_size(1600, 1000)


def _seconds_until_shown(driver: webdriver.Chrome, since: float, *texts: str, css: str) -> float:
    """Seconds from ``since`` (a ``time.monotonic()`` taken when the database change committed) until every text
    is visible in ``css``; polled, and given 3x the budget so that a slow update fails with its measured time."""
    wait_text(driver, *texts, css=css, timeout=3 * LIVE_BUDGET_S)
    return time.monotonic() - since


def test_overview_follows_the_database_live(browser: webdriver.Chrome, dashboard: SeededDashboard) -> None:
    browser.get(dashboard.base + "/")
    tile, light = '[data-room="OR-4"]', '[data-device="light-or1"]'
    wait_text(browser, "online", css=tile)
    wait_text(browser, "online", css=light)
    # no reload: the page's own interval (the product default) must show each change within the budget
    took: dict[str, float] = {}
    try:
        _execute(dashboard, "UPDATE gateways SET state = 'offline' WHERE gateway_id = 'gw-or4'")
        gateway_down = time.monotonic()
        _execute(dashboard, "INSERT INTO alarms (device_id, code, severity, text, raised_at)"
                            " VALUES ('light-or1', 'LAMP_OVERTEMP', 'high', 'Lamp temperature high', now())")
        alarm_raised = time.monotonic()
        took["gateway down"] = _seconds_until_shown(browser, gateway_down, "3 unknown", "Gateway down", css=tile)
        took["alarm raised"] = _seconds_until_shown(browser, alarm_raised, "alarming", "LAMP_OVERTEMP", css=light)
    finally:
        _execute(dashboard, "UPDATE gateways SET state = 'online' WHERE gateway_id = 'gw-or4'")
        _execute(dashboard, "DELETE FROM alarms WHERE code = 'LAMP_OVERTEMP'")
        restored = time.monotonic()
    took["restored"] = _seconds_until_shown(browser, restored, "online", css=light)
    assert "unknown" not in _text(browser, tile)
    print(f"overview live update, refresh every {PRODUCT_REFRESH_S:g} s: "
          + ", ".join(f"{k} {v:.2f} s" for k, v in took.items()))
    assert max(took.values()) <= LIVE_BUDGET_S, took


def test_devices_grid_lists_inventory_and_opens_a_device(browser: webdriver.Chrome, dashboard: SeededDashboard,
                                                        screenshot_dir: Path) -> None:
    browser.get(dashboard.base + "/devices")
    grid = "#devices-grid"
    wait_text(browser, "esu-or1", "ES-10432", "Endoflator 50", "VIO 3", "OR-3", "unknown (gateway down)",
              "offline", css=grid)
    assert len(browser.find_elements(By.CSS_SELECTOR, f"{grid} .ag-center-cols-container .ag-row")) == 13
    # completeness: the insufflator's open gap shows as < 100 %, a clean device as 100
    insuff = wait_text(browser, "insuff-or1", css=f'{grid} .ag-row[row-id="insuff-or1"]')
    assert "98." in insuff or "97." in insuff, insuff
    _shot(browser, screenshot_dir, "devices")
    # filter through the grid's own column filter, then export what is shown as CSV
    shown = f"{grid} .ag-center-cols-container .ag-row"
    room_filter = browser.find_element(By.CSS_SELECTOR, f'{grid} .ag-floating-filter input[aria-label^="Room"]')
    room_filter.send_keys("OR-3")
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, shown)) == 2, timeout=10, what="room filter")
    downloads = screenshot_dir / "downloads"
    downloads.mkdir(exist_ok=True)
    browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    browser.find_element(By.ID, "devices-export").click()
    csv_file = downloads / "ortel-devices.csv"
    wait_until(lambda: csv_file.exists() and csv_file.stat().st_size > 0, timeout=15, what="CSV download")
    rows = csv_file.read_text(encoding="utf-8-sig").splitlines()  # AG Grid writes a BOM for spreadsheets
    assert rows[0].startswith('"Device","Type"') and len(rows) == 3 and all("OR-3" in r for r in rows[1:])
    room_filter.send_keys(Keys.BACKSPACE * 4)  # typed keys, so the grid sees the input events
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, shown)) == 13, timeout=10, what="filter cleared")
    browser.find_element(By.CSS_SELECTOR, f'{grid} .ag-row[row-id="esu-or1"] [col-id="device_id"]').click()
    wait_until(lambda: browser.current_url.endswith("/devices/esu-or1"), timeout=10, what="device page")
    wait_text(browser, "Device esu-or1", "Erbe", "power_w")


def test_device_page_charts_events_gaps_and_long_ranges(browser: webdriver.Chrome, dashboard: SeededDashboard,
                                                       screenshot_dir: Path) -> None:
    browser.get(dashboard.base + "/devices/insuff-or1")
    wait_text(browser, "Karl Storz", "IN-22871", "alarming", css="#device-card")
    wait_text(browser, "pressure_mmhg [mmHg]", "flow_l_min [L/min]", css="#device-chart")
    wait_text(browser, "OVERPRESSURE", css="#device-events")
    wait_text(browser, "missing", "open", css="#device-gaps")
    _shot(browser, screenshot_dir, "device")
    browser.find_element(By.XPATH, "//label[text()='30d']").click()  # served from samples_1m
    wait_text(browser, "pressure_mmhg", css="#device-chart")
    assert browser.find_elements(By.CSS_SELECTOR, "#device-chart .scatterlayer .trace")


def test_procedures_list_and_timeline(browser: webdriver.Chrome, dashboard: SeededDashboard,
                                      screenshot_dir: Path) -> None:
    day = dashboard.seed.now.date().isoformat()
    browser.get(f"{dashboard.base}/procedures?day={day}")
    wait_text(browser, "C-7F3A19", "laparoscopic cholecystectomy", "running", css="#procedures-list")
    browser.find_element(By.LINK_TEXT, "C-7F3A19").click()
    wait_until(lambda: browser.current_url.endswith("/procedures/C-7F3A19"), timeout=10, what="timeline page")
    browser.set_window_size(1600, 1500)
    wait_text(browser, "preparation", "access", "dissection", "ESU · esu-or1", "insuff-or1 · pressure_mmhg [mmHg]",
              "cut activation", "alarm", css="#procedure-timeline", timeout=30)
    wait_text(browser, "insuff-or1", "%", css="#procedure-completeness")
    assert browser.find_elements(By.CSS_SELECTOR, "#procedure-timeline .barlayer .point")  # activation segments
    _shot(browser, screenshot_dir, "timeline")
    browser.set_window_size(1600, 1000)


def test_acknowledging_an_alarm_is_stored_and_audited(browser: webdriver.Chrome, dashboard: SeededDashboard,
                                                     screenshot_dir: Path) -> None:
    browser.get(dashboard.base + "/alarms")
    wait_text(browser, "OVERPRESSURE", "TEMP_DRIFT", css="#alarms-grid")
    _shot(browser, screenshot_dir, "alarms")
    row = browser.find_element(By.XPATH, "//div[@role='row'][.//div[@col-id='code' and text()='OVERPRESSURE']]")
    row.find_element(By.CSS_SELECTOR, "input[type='checkbox']").click()
    browser.find_element(By.ID, "alarms-ack").click()
    wait_text(browser, "Acknowledged 1 alarm(s) as engineer", css="#alarms-feedback")
    acked = dashboard.db.query("SELECT acked_by FROM alarms WHERE code = 'OVERPRESSURE'")
    assert acked == [("engineer",)]
    audit = dashboard.db.query("SELECT actor, detail->>'device_id' FROM audit_log WHERE action = 'alarm_ack'")
    assert audit == [("engineer", "insuff-or1")]
    wait_text(browser, "engineer ·", css="#alarms-grid")


def test_system_page_shows_ingest_health(browser: webdriver.Chrome, dashboard: SeededDashboard,
                                         screenshot_dir: Path) -> None:
    browser.get(dashboard.base + "/system")
    wait_text(browser, "Dead letters, 24 h", "Open gaps", css="#system-kpis")
    wait_text(browser, "gw-or3", "offline", css="#system-gateways")
    wait_text(browser, "insuff-or1", "missing", css="#system-gaps")
    wait_text(browser, "malformed_json", "unsupported_version", "topic_mismatch", css="#system-dead")
    _shot(browser, screenshot_dir, "system")


def test_sign_out_ends_the_session(dashboard: SeededDashboard) -> None:
    with chromium() as driver:
        login(driver, dashboard.base, USER, PASSWORD, path="/system")
        wait_text(driver, "Ingest health")
        # click until the browser lands on the login form: a click racing a re-render of the navbar is lost
        wait_until(lambda: "/login" in driver.current_url or _click(driver, "nav-logout"), timeout=20,
                   interval=0.5, what="sign out")
        wait_text(driver, "Sign in")
        driver.get(dashboard.base + "/system")
        wait_text(driver, "Sign in")
        assert "/login" in driver.current_url
    actions = [r[0] for r in dashboard.db.query("SELECT action FROM audit_log WHERE actor = 'engineer' ORDER BY id")]
    assert actions.count("login_success") >= 2 and "logout" in actions


def test_a_live_page_goes_to_login_when_its_session_ends(dashboard: SeededDashboard) -> None:
    with chromium() as driver:
        login(driver, dashboard.base, USER, PASSWORD, path="/")
        wait_text(driver, "OR-1", css="#overview-rooms")
        driver.delete_all_cookies()  # as if the session expired or was ended elsewhere
        # the next poll gets 401; the page must not sit there frozen showing stale states
        wait_until(lambda: "/login" in driver.current_url, timeout=15, what="redirect to login")
        wait_text(driver, "Sign in")
