"""Every dashboard page in headless Chromium over a database the simulators filled through the real pipeline.

``ortel simulate`` (two rooms, the lap-chole scenario on a timeline of every one of its phases, seeded) ->
in-process edge agents -> a private Mosquitto -> a real ``ortel ingest`` -> a fresh PostgreSQL -> a real
``ortel dashboard`` -> Chromium, logged in. ``--warm-start`` sends the first minutes of the plan (device power-on,
the case's first phases) at once; from there the simulation runs in real time, so while the browser looks the
gateways are up, the devices report, OR-1 is in closure and OR-2 in Calot's dissection. Two injected alarm
bursts give one alarm that is still open and two that came and went.

What the pages must show comes from the simulator, not from this file: device ids, types, models and serials
are the seeded generator's own (its hellos, computed here from the same plan), phase names the scenario's.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from dashboard.status import device_label
from ortel_cli.stack import Database, PostgresServer
from tests.browser.test_dash_browser import DOCS_SHOTS, wait_text
from tests.integration.ingest_kit import ingest_process, running
from tests.support.browser import chromium, login
from tests.support.dashboard import PASSWORD, USER, running_dashboard
from tests.support.harness import TEST_PASSWORD, create_database, drop_database, new_broker
from tests.support.poll import wait_until
from tests.support.procs import Service

pytestmark = pytest.mark.browser

SEED = 7
ROOMS = ("OR-1", "OR-2")
GATEWAYS = ("gw-or1", "gw-or2")
# OR-1 runs every phase of the scenario: the first ones short, the last (closure) still running while we look.
# OR-2 is still in its second phase. Seconds from case start.
OR1_STEPS = (20, 40, 20, 30, 20, 20)
OR2_PHASES = (("access", 0, 60), ("calot_dissection", 60, 7200))
CASE_END_S = 7200
# The scenario powers its devices on setup_s before the case starts; send that and the case up to here at once.
WARM_INTO_CASE_S = sum(OR1_STEPS) + 10
# The pages are checked within this long after the warm start (the module takes well under a minute).
LOOKAHEAD_S = 300
OPEN_ALARM = ("insufflator-or1", "tube_occluded")
CLEARED_ALARM = ("esu-or2", "chatter")
FAULTS = (
    # raised 10 s into OR-1's case and cleared hours later: open while the browser looks
    f"alarm_burst:device=insufflator,room=1,at_s=10,duration_s=30000,amount=1,metric={OPEN_ALARM[1]}",
    # two alarms raised and cleared early in OR-2's case: history
    f"alarm_burst:device=esu,room=2,at_s=20,duration_s=40,amount=2,metric={CLEARED_ALARM[1]}",
)


@dataclass(frozen=True)
class Expected:
    """What the seeded simulator sends, from the pure generator: hellos, alarms and the phase timeline."""

    phases: tuple[str, ...]  # the lap-chole scenario's phases, in order
    or1: tuple[tuple[str, float, float], ...]  # OR-1's timeline rows: (phase, start_s, end_s) from case start
    hellos: dict[str, tuple[str, str, str]]  # device_id -> (device_type, model, serial)
    timeline: Path
    warm_s: float  # virtual seconds sent at once: device power-on up to WARM_INTO_CASE_S into the case
    # (device_id, code, raised_s, cleared_s or None) of every alarm up to LOOKAHEAD_S after the warm start
    alarms: tuple[tuple[str, str, float, float | None], ...]

    @property
    def quiet(self) -> list[str]:
        """Devices without an open alarm at any time the pages are checked: they must read "online"."""
        busy = {d for d, _, _, cleared in self.alarms if cleared is None or cleared > self.warm_s}
        return [d for d in self.hellos if d not in busy]


@dataclass(frozen=True)
class SimulatedDashboard:
    base: str
    db: Database
    expected: Expected
    cases: dict[str, str]  # room -> the stored (pseudonymised) case id


def _expected(directory: Path) -> Expected:
    """Write the timeline file and run the pure generator over it, faults included, as ``ortel simulate`` will."""
    from simulators.faults import device_faults, parse_fault
    from simulators.generate import plan_lines
    from simulators.plan import plan_timeline
    from simulators.scenario import load_scenario
    from simulators.timeline import read_timeline
    from wire.device import DeviceEvent, Hello
    from wire.models import EventKind

    scenario = load_scenario("lap-chole")
    phases = tuple(p.name for p in scenario.phases)
    assert len(phases) == len(OR1_STEPS) + 1
    starts = [0, *itertools.accumulate(OR1_STEPS)]
    or1 = tuple(zip(phases, map(float, starts), map(float, [*starts[1:], CASE_END_S]), strict=True))
    rows = ["case_id,phase,start_s,end_s"]
    rows += [f"HOSP-0001,{name},{a:g},{b:g}" for name, a, b in or1]
    rows += [f"HOSP-0002,{name},{a},{b}" for name, a, b in OR2_PHASES]
    path = directory / "timeline.csv"
    path.write_text("\n".join(rows) + "\n")
    plan = plan_timeline(scenario, read_timeline(path), rooms=len(ROOMS), seed=SEED)
    faults = device_faults([parse_fault(f) for f in (*scenario.faults, *FAULTS)])
    warm_s = scenario.setup_s + WARM_INTO_CASE_S
    hellos: dict[str, tuple[str, str, str]] = {}
    raised: dict[tuple[str, str], float] = {}
    alarms: list[tuple[str, str, float, float | None]] = []
    for t in plan_lines(plan, faults=faults):
        at_s, line = t.at_us / 1e6, t.line
        if at_s > warm_s + LOOKAHEAD_S:
            break
        if isinstance(line, Hello):
            hellos[line.device_id] = (line.device_type, line.model, line.serial)
        elif isinstance(line, DeviceEvent) and line.kind is EventKind.ALARM_RAISED:
            raised[(line.device_id, line.code or "")] = at_s
        elif isinstance(line, DeviceEvent) and line.kind is EventKind.ALARM_CLEARED:
            key = (line.device_id, line.code or "")
            alarms.append((*key, raised.pop(key), at_s))
    alarms += [(*key, at_s, None) for key, at_s in raised.items()]
    assert len(hellos) == len(ROOMS) * len(scenario.devices), hellos
    return Expected(phases=phases, or1=or1, hellos=hellos, timeline=path, warm_s=warm_s, alarms=tuple(alarms))


def _count(db: Database, sql: str) -> int:
    return int(str(db.scalar(sql)))


def _stored_state(db: Database) -> dict[str, object]:
    """What ingest has stored so far that the pages will show (compared whole, so a timeout says what is missing)."""
    phases = db.query("SELECT p.room, ph.phase, ph.ended_at IS NULL FROM procedure_phases ph "
                      "JOIN procedures p USING (case_id) ORDER BY p.room, ph.started_at")
    alarms = db.query("SELECT device_id, code, cleared_at IS NULL FROM alarms WHERE (device_id, code) IN "
                      "((%s, %s), (%s, %s)) ORDER BY device_id, raised_at", (*CLEARED_ALARM, *OPEN_ALARM))
    return {
        "devices": _count(db, "SELECT count(*) FROM devices WHERE connected"),
        "phases": phases,
        "alarms": alarms,
        # every device has reported within its silence threshold: the warm history is in, the live part flows
        "live": _count(db, "SELECT count(*) FROM devices d WHERE EXISTS (SELECT 1 FROM samples s WHERE "
                           "s.device_id = d.device_id AND s.ts > now() - interval '20 seconds')"),
    }


def _ready(expected: Expected) -> dict[str, object]:
    n = len(expected.hellos)
    return {
        "devices": n,
        "phases": [("OR-1", p, p == expected.phases[-1]) for p in expected.phases]
        + [("OR-2", "access", False), ("OR-2", "calot_dissection", True)],
        "alarms": [(*CLEARED_ALARM, False), (*CLEARED_ALARM, False), (*OPEN_ALARM, True)],  # the injected ones
        "live": n,
    }


@pytest.fixture(scope="module")
def simulated(pg: PostgresServer) -> Iterator[SimulatedDashboard]:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="ortel-simdash-"))
    work.chmod(0o755)  # the broker runs as its own user and must reach its directory
    broker = new_broker(work / "mosquitto")
    database = create_database(pg, "plain")
    sim = None
    try:
        for gw in GATEWAYS:
            broker.add_user(gw, TEST_PASSWORD)
        expected = _expected(work)
        env = {"ORTEL_SIM_MQTT__PORT": str(broker.port), "ORTEL_SIM_MQTT__GATEWAY_PASSWORD": TEST_PASSWORD,
               "ORTEL_SIM_OUTBOX_DIR": str(work / "outbox"), "ORTEL_SIM_LOG_LEVEL": "warning",
               "ORTEL_AGENT_LOG_LEVEL": "warning"}
        ingest = ingest_process(work, dsn=database.writer_dsn, mqtt_port=broker.port, client_id="ingest-simdash")
        with running(ingest), running_dashboard(database.reader_dsn, work) as dash:
            args = ["simulate", "--scenario", "lap-chole", "--timeline", str(expected.timeline), "--rooms",
                    str(len(ROOMS)), "--seed", str(SEED), "--speed", "1", "--warm-start", f"{expected.warm_s:g}"]
            for fault in FAULTS:
                args += ["--fault", fault]
            sim = running_sim = Service(args, env, work / "simulate.log").start()
            want = _ready(expected)
            wait_until(lambda: _stored_state(database) == want or not running_sim.running,
                       timeout=90, interval=0.5, what=f"the simulated history stored: {want}")
            assert sim.running, sim.output()[-3000:]
            cases = {str(room): str(case) for room, case in
                     database.query("SELECT room, case_id FROM procedures ORDER BY room")}
            print(f"simulated history stored and live in {time.monotonic() - started:.1f} s")
            yield SimulatedDashboard(base=dash.base, db=database, expected=expected, cases=cases)
            assert sim.running, "the simulation ended while the pages were checked: " + sim.output()[-3000:]
    finally:
        if sim is not None:
            sim.stop()
        broker.stop()
        drop_database(database)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def sim_browser(simulated: SimulatedDashboard) -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        login(driver, simulated.base, USER, PASSWORD)
        wait_until(lambda: "/login" not in driver.current_url, timeout=20, what="login redirect")
        yield driver


def _room(device_id: str) -> str:
    return "OR-" + device_id.rsplit("-or", 1)[1]  # the simulator names room N's devices <key>-orN


def _texts(driver: webdriver.Chrome, css: str) -> list[str] | None:
    """The text of every element matching ``css``; None if the page re-rendered under us (poll again)."""
    try:
        return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
    except Exception:
        return None


def _text_of(driver: webdriver.Chrome, css: str) -> str:
    try:
        return str(driver.find_element(By.CSS_SELECTOR, css).text)
    except Exception:  # not rendered yet, or re-rendered under us: the next poll looks again
        return ""


def _table_rows(driver: webdriver.Chrome, table_id: str) -> list[list[str]]:
    """The cell texts of every body row of the table ``table_id`` (empty if not rendered yet)."""
    try:
        return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                for tr in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]
    except Exception:  # re-rendered under us: the next poll looks again
        return []


def _table_row(driver: webdriver.Chrome, table_id: str, first_cell: str) -> list[str]:
    """The cells of the row of ``table_id`` whose first cell reads ``first_cell`` (empty if not rendered yet)."""
    return next((cells for cells in _table_rows(driver, table_id) if cells and cells[0] == first_cell), [])


def _shot(driver: webdriver.Chrome, directory: Path, name: str) -> None:
    """Every page to the session's temp dir; with ORTEL_UPDATE_SCREENSHOTS=1 the overview and the timeline,
    simulator traffic through the real pipeline, also become the README's docs/screenshots/."""
    path = directory / f"simulated-{name}.png"
    driver.save_screenshot(str(path))
    if name in ("overview", "timeline") and os.environ.get("ORTEL_UPDATE_SCREENSHOTS") == "1":
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SHOTS / f"{name}.png")


# ------------------------------------------------------------------------------------------------ pages


def test_overview_shows_the_simulated_rooms_live(sim_browser: webdriver.Chrome, simulated: SimulatedDashboard,
                                                 screenshot_dir: Path) -> None:
    browser, phases = sim_browser, simulated.expected.phases
    browser.get(simulated.base + "/")
    tile = '[data-room="{}"]'
    wait_text(browser, "lap-chole", "Phase", phases[-1], simulated.cases["OR-1"], css=tile.format("OR-1"))
    wait_text(browser, "lap-chole", "calot_dissection", simulated.cases["OR-2"], css=tile.format("OR-2"))
    for device_id, (device_type, _, _) in simulated.expected.hellos.items():
        # each simulated device in its own room's tile, under its type's label
        wait_text(browser, device_id, device_label(device_type), css=f'{tile.format(_room(device_id))} '
                                                                     f'[data-device="{device_id}"]')
    wait_text(browser, "alarming", OPEN_ALARM[1], css=f'[data-device="{OPEN_ALARM[0]}"]')
    quiet = simulated.expected.quiet
    assert CLEARED_ALARM[0] in quiet and OPEN_ALARM[0] not in quiet, quiet  # its alarms came and went
    for device_id in quiet:
        wait_text(browser, "online", css=f'[data-device="{device_id}"]')
    _shot(browser, screenshot_dir, "overview")


def test_devices_grid_lists_the_simulated_inventory(sim_browser: webdriver.Chrome, simulated: SimulatedDashboard,
                                                    screenshot_dir: Path) -> None:
    browser = sim_browser
    browser.get(simulated.base + "/devices")
    rows = "#devices-grid .ag-center-cols-container .ag-row"
    wait_until(lambda: len(browser.find_elements(By.CSS_SELECTOR, rows)) == len(simulated.expected.hellos),
               timeout=20, interval=0.2, what="a grid row per simulated device")
    for device_id, (device_type, model, serial) in simulated.expected.hellos.items():
        wait_text(browser, device_id, device_type, model, serial, _room(device_id), "1.0.0",
                  css=f'#devices-grid .ag-row[row-id="{device_id}"]')
    wait_text(browser, "alarming", css=f'#devices-grid .ag-row[row-id="{OPEN_ALARM[0]}"]')
    _shot(browser, screenshot_dir, "devices")


def test_device_page_shows_the_simulated_esu(sim_browser: webdriver.Chrome, simulated: SimulatedDashboard,
                                             screenshot_dir: Path) -> None:
    browser = sim_browser
    _, model, serial = simulated.expected.hellos["esu-or1"]
    browser.get(simulated.base + "/devices/esu-or1")
    wait_text(browser, "Device esu-or1")
    state = "online" if "esu-or1" in simulated.expected.quiet else "alarming"
    wait_text(browser, state, "esu", "ortel-sim", model, serial, "OR-1", "gw-or1", css="#device-card")
    wait_text(browser, "power_w [W]", "impedance_ohm", css="#device-chart")
    assert browser.find_elements(By.CSS_SELECTOR, "#device-chart .scatterlayer .trace")
    # the hook electrode was used in Calot's dissection: its activations are in the event table
    wait_text(browser, "activation_start", "activation_stop", css="#device-events")
    # records of the warm-start burst may arrive out of order (a gap opens and closes at once); none stays open
    assert simulated.db.scalar("SELECT count(*) FROM seq_gaps WHERE stream = 'esu-or1' AND closed_at IS NULL") == 0

    def gap_states() -> set[str]:
        if _text_of(browser, "#device-gaps").startswith("No gaps"):
            return {"none"}
        return {row[3] for row in _table_rows(browser, "device-gaps-table") if len(row) > 3}

    states = wait_until(gap_states, timeout=20, interval=0.2, what="the sequence gaps of esu-or1")
    assert states <= {"none", "closed"}, states
    _shot(browser, screenshot_dir, "device")


def test_procedures_list_and_the_timeline_of_a_simulated_case(
    sim_browser: webdriver.Chrome, simulated: SimulatedDashboard, screenshot_dir: Path
) -> None:
    browser, phases = sim_browser, simulated.expected.phases
    case = simulated.cases["OR-1"]
    (started,) = simulated.db.query("SELECT started_at FROM procedures WHERE case_id = %s", (case,))[0]
    # the warm start sent these minutes at once: the stored boundaries are still the timeline file's, to the second
    stored = simulated.db.query("SELECT phase, extract(epoch FROM started_at - %s)::float8, "
                                "extract(epoch FROM ended_at - %s)::float8 FROM procedure_phases "
                                "WHERE case_id = %s ORDER BY started_at", (started, started, case))
    assert stored == [*simulated.expected.or1[:-1], (phases[-1], simulated.expected.or1[-1][1], None)], stored
    browser.get(f"{simulated.base}/procedures?day={started.date().isoformat()}")  # type: ignore[attr-defined]
    wait_text(browser, "OR-1", "OR-2", case, simulated.cases["OR-2"], "lap-chole", "running", css="#procedures-list")
    browser.find_element(By.LINK_TEXT, case).click()
    wait_until(lambda: browser.current_url.endswith(f"/procedures/{case}"), timeout=10, what="timeline page")
    browser.set_window_size(1600, 1500)
    try:
        wait_text(browser, "lap-chole", "OR-1", "running", css="#procedure-summary")
        # every phase of the scenario as a band label, a lane per device, activations and the open alarm
        wait_text(browser, *phases, "ESU · esu-or1", "Insufflator · insufflator-or1", "Smoke evacuator · smoke-or1",
                  "activation", "alarm", css="#procedure-timeline", timeout=30)
        assert browser.find_elements(By.CSS_SELECTOR, "#procedure-timeline .barlayer .point")
        # the band labels in the scenario's order, each once
        wait_until(lambda: [x for x in _texts(browser, "#procedure-timeline .annotation-text") or () if x in phases]
                   == list(phases), timeout=10, interval=0.2, what=f"phase labels in the order {phases}")
        wait_text(browser, "esu-or1", "insufflator-or1", "%", css="#procedure-completeness")
        _shot(browser, screenshot_dir, "timeline")
    finally:
        browser.set_window_size(1600, 1000)


def test_alarms_page_shows_the_injected_alarms(sim_browser: webdriver.Chrome, simulated: SimulatedDashboard,
                                               screenshot_dir: Path) -> None:
    browser = sim_browser
    browser.get(simulated.base + "/alarms")
    grid = "#alarms-grid .ag-center-cols-container"
    row = '{} .ag-row[row-id^="{}|{}|"]'
    wait_text(browser, "active", "medium", "OR-1", "alarm burst", css=row.format(grid, *OPEN_ALARM))
    assert not browser.find_elements(By.CSS_SELECTOR, row.format(grid, *CLEARED_ALARM))  # cleared: not active
    browser.find_element(By.XPATH, "//label[text()='All (history)']").click()
    wait_text(browser, "cleared", "OR-2", css=row.format(grid, *CLEARED_ALARM))
    # both of its alarms, each cleared (the grid refreshes live: read it by polling)
    state_cells = row.format(grid, *CLEARED_ALARM) + ' [col-id="state"]'
    wait_until(lambda: _texts(browser, state_cells) == ["cleared"] * 2, timeout=10, interval=0.2,
               what=f"two cleared {CLEARED_ALARM} alarms")
    wait_text(browser, "active", css=row.format(grid, *OPEN_ALARM))
    _shot(browser, screenshot_dir, "alarms")


def test_system_page_shows_the_simulated_gateways(sim_browser: webdriver.Chrome, simulated: SimulatedDashboard,
                                                  screenshot_dir: Path) -> None:
    browser = sim_browser
    browser.get(simulated.base + "/system")
    wait_text(browser, "Samples / min", "Open gaps", "Dead letters, 24 h", css="#system-kpis")
    per_room = len(simulated.expected.hellos) // len(ROOMS)
    for gw, room in zip(GATEWAYS, ROOMS, strict=True):
        row = wait_until(partial(_table_row, browser, "system-gateways-table", gw), timeout=20, interval=0.2,
                         what=f"{gw} in the gateways table")
        assert row[1] == room and row[2] == "online" and row[4] == str(per_room), row
    wait_text(browser, "No open gaps.", css="#system-gaps")
    wait_text(browser, "No dead letters.", css="#system-dead")
    assert browser.find_elements(By.CSS_SELECTOR, "#system-rate .barlayer .point")  # samples/min bars
    _shot(browser, screenshot_dir, "system")
