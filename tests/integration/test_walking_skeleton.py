"""The walking skeleton (issue 2): one simulated sample, followed from the simulator to an engineer's screen.

``ortel simulate`` (in-process edge agent, QoS 1) -> the shared Mosquitto -> a real ``ortel ingest`` process
-> PostgreSQL -> a real ``ortel dashboard`` process -> headless Chromium, logged in. The device list must show
the simulated devices online with a last-seen time while the gateway is up, a stored sample must be exactly
the row we name, and the device page must draw its chart.

The short case runs at ``--speed 60``: the phase boundaries stored must still be the timeline file's, to the
second. A second test runs a full four-room lap-chole day through the same path: every room's phases must be
stored in the scenario's order with the planned boundaries, and OR-1's timeline page must show them in that
order; with ORTEL_UPDATE_SCREENSHOTS=1 it also writes docs/screenshots/lap-chole-timeline.png.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from ortel_cli.stack import MosquittoServer
from simulators.mqtt import Broker, connect, subscribe
from tests.browser.test_dash_browser import wait_text
from tests.integration.ingest_kit import ingest_process, running
from tests.support.browser import chromium, login
from tests.support.dashboard import PASSWORD, USER, running_dashboard
from tests.support.harness import TEST_PASSWORD, Database
from tests.support.poll import wait_until
from tests.support.procs import REPO_ROOT, Service

pytestmark = pytest.mark.browser

GATEWAY = "gw-or1"  # `ortel simulate` names room N's gateway gw-orN
# A short lap-chole case with the scenario's own phase names: about 2.5 virtual minutes of surgery.
SHORT_CASE = """case_id,phase,start_s,end_s
HOSP-0001,access,0,30
HOSP-0001,calot_dissection,30,90
HOSP-0001,clipping_cutting,90,110
HOSP-0001,closure,110,150
"""
SHORT_PHASES = [("access", 0.0, 30.0), ("calot_dissection", 30.0, 90.0), ("clipping_cutting", 90.0, 110.0),
                ("closure", 110.0, 150.0)]  # SHORT_CASE's rows: (phase, start_s, end_s)
LAP_CHOLE_DEVICES = 10  # simulators/scenarios/lap-chole.toml
SCREENSHOT = REPO_ROOT / "docs" / "screenshots" / "lap-chole-timeline.png"


def _sim_env(port: int, tmp: Path) -> dict[str, str]:
    return {
        "ORTEL_SIM_MQTT__PORT": str(port),
        "ORTEL_SIM_MQTT__PASSWORD": TEST_PASSWORD,
        "ORTEL_SIM_MQTT__GATEWAY_PASSWORD": TEST_PASSWORD,
        "ORTEL_SIM_OUTBOX_DIR": str(tmp / "outbox"),
        "ORTEL_SIM_DRAIN_TIMEOUT_S": "60",
        "ORTEL_SIM_LOG_LEVEL": "warning",
        "ORTEL_AGENT_LOG_LEVEL": "warning",
    }


def clear_retained(port: int, gateways: list[str]) -> None:
    """Forget what the shared broker retained for ``gateways`` (state, births, watermarks of an earlier test).

    A stale retained watermark would tell a fresh agent its new seq 1..W were already stored. Retained messages
    are delivered right after the SUBACK, so a marker published after subscribing arrives after all of them.
    """
    seen: dict[str, bytes] = {}
    marker = "ortel/v1/_walking-skeleton-marker"
    done = threading.Event()

    def on_message(msg: object) -> None:
        topic, payload = msg.topic, bytes(msg.payload)  # type: ignore[attr-defined]
        if topic == marker:
            done.set()
        else:
            seen[topic] = payload

    with connect(Broker(port=port, password=TEST_PASSWORD), on_message=on_message) as client:
        for gw in gateways:
            subscribe(client, f"ortel/v1/{gw}/#", retained=True)
        subscribe(client, marker, retained=False)
        client.publish(marker, b"-", qos=1).wait_for_publish(10)
        wait_until(done.is_set, timeout=10, what="retained messages delivered")
        for topic, payload in list(seen.items()):
            if payload:  # an empty retained payload deletes the retained message [MQTT-3.3.1-6]
                client.publish(topic, b"", qos=1, retain=True).wait_for_publish(10)


@contextmanager
def pipeline(broker: MosquittoServer, db: Database, tmp: Path, *, client_id: str,
             gateways: list[str]) -> Iterator[str]:
    """Clean retained state, ingest into ``db``, a dashboard over its reader DSN; yields the dashboard URL."""
    clear_retained(broker.port, gateways)
    try:
        with running(ingest_process(tmp, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=client_id)), \
                running_dashboard(db.reader_dsn, tmp) as dash:
            yield dash.base
    finally:
        clear_retained(broker.port, gateways)


def simulate(args: list[str], port: int, tmp: Path) -> Service:
    return Service(["simulate", *args], _sim_env(port, tmp), tmp / "simulate.log").start()


def generated(timeline: Path, device: str, metric: str, *, n: int) -> list[tuple[int, float]]:
    """The first ``n`` (offset from the first one in us, value) readings the simulator makes for ``device``
    with the default seed, from the pure generator (the CLI adds only the wall-clock origin)."""
    from simulators.generate import plan_lines
    from simulators.plan import plan_timeline
    from simulators.scenario import load_scenario
    from simulators.settings import SimSettings
    from simulators.timeline import read_timeline

    plan = plan_timeline(load_scenario("lap-chole"), read_timeline(timeline), rooms=1, seed=SimSettings().seed)
    values = ((t.line.ts_us, t.line.values.get(metric)) for t in plan_lines(plan)
              if getattr(t.line, "type", "") == "sample" and t.line.device_id == device)  # type: ignore[union-attr]
    first = [(ts, v) for ts, v in values if v is not None][:n]
    return [(ts - first[0][0], v) for ts, v in first]


def _grid_row(driver: webdriver.Chrome, device: str) -> dict[str, str]:
    """The devices grid row of ``device`` as {col-id: text} (empty if not rendered yet)."""
    try:
        cells = driver.find_elements(By.CSS_SELECTOR, f'#devices-grid .ag-row[row-id="{device}"] [col-id]')
        return {c.get_attribute("col-id") or "": c.text for c in cells}
    except Exception:  # re-rendered under us: the next poll looks again
        return {}


def _labels(driver: webdriver.Chrome, css: str, wanted: list[str]) -> list[str]:
    """The texts of the elements matching ``css`` that are in ``wanted``, in page order ([] if re-rendered)."""
    try:
        return [t for t in (e.text for e in driver.find_elements(By.CSS_SELECTOR, css)) if t in wanted]
    except Exception:  # re-rendered under us: the next poll looks again
        return []


def _all_online(driver: webdriver.Chrome, devices: list[str]) -> bool:
    rows = [_grid_row(driver, d) for d in devices]
    return all(r.get("status") == "online" and r.get("last_seen", "").strip() for r in rows)


@pytest.fixture
def logged_in() -> Iterator[Callable[[str], webdriver.Chrome]]:
    with chromium() as driver:
        def open_(base: str) -> webdriver.Chrome:
            login(driver, base, USER, PASSWORD, path="/devices")
            wait_until(lambda: "/login" not in driver.current_url, timeout=20, what="login redirect")
            return driver
        yield open_


def test_a_simulated_sample_reaches_the_database_and_the_dashboard(
    *, broker: MosquittoServer, gateway_user, db: Database, tmp_path: Path, uid: str, logged_in
) -> None:
    started = time.monotonic()
    gateway_user(GATEWAY)
    timeline = tmp_path / "case.csv"
    timeline.write_text(SHORT_CASE)
    with pipeline(broker, db, tmp_path, client_id=f"ingest-skel-{uid}", gateways=[GATEWAY]) as base:
        driver = logged_in(base)
        # Paced at 60x so the gateway is still up (devices online) while the browser looks; flat out it would
        # drain, say goodbye and every device would rightly read "unknown (gateway down)".
        sim = simulate(["--scenario", "lap-chole", "--timeline", str(timeline), "--speed", "60"],
                       broker.port, tmp_path)
        try:
            # only this gateway's: ingest also stores the retained births other tests left on the shared broker
            wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE gateway_id = %s", (GATEWAY,))
                       == LAP_CHOLE_DEVICES, timeout=30,
                       interval=0.3, what="every device birth stored")
            devices = [r[0] for r in db.query("SELECT device_id FROM devices WHERE gateway_id = %s ORDER BY 1",
                                              (GATEWAY,))]
            wait_until(lambda: _all_online(driver, devices), timeout=30, interval=0.3,
                       what=f"{devices} online with a last-seen time in the devices grid")
            listed = {d: _grid_row(driver, d) for d in devices}
            wait_until(lambda: not sim.running, timeout=60, interval=0.3, what="simulate drained and exited")
        finally:
            code = sim.stop()
        assert code == 0, sim.output()[-3000:]

        # one specific sample, the insufflator's first pressure reading, is a row with its exact key and value,
        # and the first readings are the seeded generator's own, on its own time grid
        device, metric = "insufflator-or1", "pressure_mmhg"
        assert device in devices, devices
        expected = generated(timeline, device, metric, n=20)
        rows = db.query("SELECT ts, value, seq FROM samples WHERE device_id = %s AND metric = %s "
                        "ORDER BY ts LIMIT 20", (device, metric))
        ts, value, seq = rows[0]
        assert db.query("SELECT value, seq FROM samples WHERE device_id = %s AND metric = %s AND ts = %s",
                        (device, metric, ts)) == [(value, seq)]
        assert seq >= 1 and value == expected[0][1]
        assert [(round((t - ts).total_seconds() * 1e6), v) for t, v, _ in rows] == expected
        assert int(db.scalar("SELECT count(*) FROM seq_gaps WHERE closed_at IS NULL")) == 0
        assert int(db.scalar("SELECT count(*) FROM dead_letters")) == 0

        # --speed 60 compressed the wall time, not the case: the stored phase boundaries are the file's, to the
        # second (the agent drained before simulate exited, so every procedure event is stored by now)
        cases = db.query("SELECT case_id, started_at, ended_at FROM procedures WHERE gateway_id = %s", (GATEWAY,))
        assert len(cases) == 1, cases
        case_id, case_start, case_end = cases[0]
        stored = db.query("SELECT phase, extract(epoch FROM started_at - %s)::float8, "
                          "extract(epoch FROM ended_at - %s)::float8 FROM procedure_phases WHERE case_id = %s "
                          "ORDER BY started_at", (case_start, case_start, case_id))
        assert stored == SHORT_PHASES, stored
        assert (case_end - case_start).total_seconds() == SHORT_PHASES[-1][2]  # type: ignore[operator]

        driver.get(f"{base}/devices/{device}")
        wait_text(driver, f"Device {device}", css="body", timeout=20)
        wait_text(driver, metric, css="#device-chart", timeout=20)
        assert driver.find_elements(By.CSS_SELECTOR, "#device-chart .scatterlayer .trace")
    for d, row in listed.items():
        assert row["room"] == "OR-1" and row["status"] == "online" and row["last_seen"], (d, row)
    print(f"walking skeleton: {len(devices)} devices, first {metric} {value} at {ts} (seq {seq}); "
          f"{time.monotonic() - started:.1f} s")


def planned_lap_chole_day(rooms: int) -> dict[str, list[tuple[str, float, float]]]:
    """What ``ortel simulate --scenario lap-chole --rooms N`` (default seed) plans per room, from the pure planner:
    room -> [(phase, start_s, end_s)] of its one case, in seconds from case start."""
    from simulators.plan import plan_rooms
    from simulators.scenario import load_scenario
    from simulators.settings import SimSettings

    plan = plan_rooms([load_scenario("lap-chole")], rooms=rooms, cases=1, seed=SimSettings().seed)
    return {rp.room.name: [(p.name, (p.start_us - c.start_us) / 1e6, (p.end_us - c.start_us) / 1e6)
                           for c in rp.cases for p in c.phases] for rp in plan.rooms}


def test_lap_chole_day_reads_like_the_procedure(
    *, broker: MosquittoServer, gateway_user, db: Database, tmp_path: Path, uid: str, logged_in
) -> None:
    if db.variant != "plain":
        pytest.skip("the simulator's phases do not depend on the storage variant: one full day is enough")
    from simulators.scenario import load_scenario

    order = [p.name for p in load_scenario("lap-chole").phases]
    planned = planned_lap_chole_day(4)
    gateways = [f"gw-or{i}" for i in range(1, 5)]
    for gw in gateways:
        gateway_user(gw)
    with pipeline(broker, db, tmp_path, client_id=f"ingest-shot-{uid}", gateways=gateways) as base:
        sim = simulate(["--scenario", "lap-chole", "--rooms", "4", "--max"], broker.port, tmp_path)
        try:
            wait_until(lambda: not sim.running, timeout=280, interval=0.5, what="simulate drained and exited")
        finally:
            code = sim.stop()
        assert code == 0, sim.output()[-3000:]
        # every room: the scenario's phases, all of them, in its order, with the planned boundaries
        for room, phases in planned.items():
            assert [p for p, _, _ in phases] == order, (room, phases)  # no lap-chole phase is optional
            ((room_case, room_start),) = db.query("SELECT case_id, started_at FROM procedures WHERE room = %s",
                                                  (room,))
            stored = db.query("SELECT phase, extract(epoch FROM started_at - %s)::float8, "
                              "extract(epoch FROM ended_at - %s)::float8 FROM procedure_phases WHERE case_id = %s "
                              "ORDER BY started_at", (room_start, room_start, room_case))
            assert stored == phases, (room, stored, phases)
        case_id, started = db.query("SELECT case_id, started_at FROM procedures WHERE room = 'OR-1'")[0]
        outside = db.query(
            "SELECT e.device_id, e.code, extract(epoch FROM e.ts - %s)::float FROM events e JOIN devices d "
            "USING (device_id) WHERE d.room = 'OR-1' AND e.kind = 'activation_start' AND e.ts >= %s "
            "AND NOT EXISTS (SELECT 1 FROM procedure_phases p WHERE p.case_id = %s AND e.ts >= p.started_at "
            "AND e.ts < p.ended_at) ORDER BY e.ts", (started, started, case_id))
        print(f"lap-chole OR-1 case {case_id}: phases (s from case start) {planned['OR-1']}; "
              f"activations outside every phase: {outside}")
        # only the devices the scenario keeps on outside the phases may start there: the warmer at case start,
        # the sustained camera/insufflator/light, the smoke evacuator trailing an ESU burst by its follow delay
        assert {d for d, _, _ in outside} <= {"warmer-or1", "camera-or1", "insufflator-or1", "light-or1",
                                              "smoke-or1"}, outside
        driver = logged_in(base)
        driver.set_window_size(1600, 1500)
        driver.get(f"{base}/procedures/{case_id}")
        wait_text(driver, *order, css="#procedure-timeline", timeout=60)
        assert driver.find_elements(By.CSS_SELECTOR, "#procedure-timeline .barlayer .point")
        # the bands read in the procedure's order (polled: a re-render may pull the labels from under us)
        wait_until(lambda: _labels(driver, "#procedure-timeline .annotation-text", order) == order, timeout=10,
                   interval=0.2, what=f"phase labels in the order {order}")
        # the whole figure (lanes and every metric subplot), not just the first screen of it
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1600, int(height) + 40)
        wait_text(driver, order[0], order[-1], css="#procedure-timeline", timeout=30)
        driver.save_screenshot(str(tmp_path / "timeline.png"))
        if os.environ.get("ORTEL_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            SCREENSHOT.write_bytes((tmp_path / "timeline.png").read_bytes())
