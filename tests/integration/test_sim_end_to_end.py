"""The simulator through the real system: in-process edge agent -> Mosquitto -> ingest -> PostgreSQL.

One POEM case, converted from the real annotations, runs flat out through ``ortel simulate`` while
``ortel record`` captures the broker traffic. The database must hold the file's phases to the second; then
the recording, replayed into a fresh broker and database, must produce the same rows.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from simulators.mqtt import Broker, connect, subscribe
from simulators.recording import read_recording
from tests.integration.ingest_kit import ingest_process, running
from tests.support.harness import TEST_PASSWORD, Database, create_database, drop_database
from tests.support.poll import wait_until
from tests.support.procs import Service

REPO = Path(__file__).resolve().parents[2]
POEM_CSV = REPO / ".." / "shared" / "data" / "poemnet" / "phase_timelines.csv"

# Rows that depend on nothing but the messages (no arrival times, no now()).
COMPARE = {
    "samples": "SELECT device_id, metric, ts, value, seq FROM samples ORDER BY 1, 2, 3",
    "events": "SELECT device_id, seq, ts, kind, code, severity, text, case_id, attrs::text FROM events "
              "ORDER BY 1, 2, 3",
    "procedures": "SELECT case_id, gateway_id, room, procedure_type, started_at, ended_at FROM procedures ORDER BY 1",
    "procedure_phases": "SELECT case_id, phase, started_at, ended_at FROM procedure_phases ORDER BY 1, 2, 3",
    "alarms": "SELECT device_id, code, severity, text, raised_at, cleared_at FROM alarms ORDER BY 1, 2, 5",
    "devices": "SELECT device_id, gateway_id, device_type, manufacturer, model, serial, firmware, room, "
               "metrics::text FROM devices ORDER BY 1",
    "received": "SELECT gateway_id, stream, seq, kind, status, n_samples FROM received ORDER BY 1, 2, 3",
    "dead_letters": "SELECT topic, reason FROM dead_letters ORDER BY 1, 2",
}


@pytest.fixture
def poem_case(tmp_path: Path) -> tuple[Path, list[tuple[str, float, float]]]:
    """The shortest real POEM case (first annotation set) as a ``case_id,phase,start_s,end_s`` file."""
    rows = list(csv.DictReader(POEM_CSV.open()))
    by_video: dict[str, list[dict[str, str]]] = {}
    for r in rows:
        if r["annotation_set"] == "01":
            by_video.setdefault(r["video_id"], []).append(r)
    video, chosen = min(by_video.items(), key=lambda kv: max(float(r["end_s"]) for r in kv[1]))
    path = tmp_path / "poem_case.csv"
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "phase", "start_s", "end_s"])
        for r in chosen:
            writer.writerow([f"HOSP-{video[:8]}", r["step"], r["start_s"], r["end_s"]])
    return path, [(r["step"], float(r["start_s"]), float(r["end_s"])) for r in chosen]


def _env(port: int, tmp: Path) -> dict[str, str]:
    return {
        "ORTEL_SIM_MQTT__PORT": str(port),
        "ORTEL_SIM_MQTT__PASSWORD": TEST_PASSWORD,
        "ORTEL_SIM_OUTBOX_DIR": str(tmp / "outbox"),
        "ORTEL_SIM_DRAIN_TIMEOUT_S": "60",
        "ORTEL_SIM_LOG_LEVEL": "warning",
        "ORTEL_AGENT_LOG_LEVEL": "warning",
    }


def _snapshot(db: Database) -> dict[str, list[tuple[object, ...]]]:
    return {name: db.query(sql) for name, sql in COMPARE.items()}


def _counts(db: Database) -> tuple[int, ...]:
    return tuple(int(db.scalar(f"SELECT count(*) FROM {t}")) for t in ("samples", "events", "procedure_phases",
                                                                         "received"))


def test_simulated_poem_case_lands_in_the_database_and_replays_identically(
    *,
    make_broker, db: Database, pg, poem_case, tmp_path: Path, uid: str
) -> None:
    timeline, phases = poem_case
    broker = make_broker()
    broker.add_user("gw-or1", TEST_PASSWORD)
    env = _env(broker.port, tmp_path)
    recording = tmp_path / "run.jsonl.gz"
    with running(ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-a-{uid}")):
        recorder = Service(["record", str(recording)], env, tmp_path / "record.log").start()
        try:
            wait_until(lambda: "recording" in recorder.output(), timeout=20, what="recorder subscribed")
            secrets = tmp_path / "secrets.toml"
            secrets.write_text(f'[broker]\n"gw-or1" = "{TEST_PASSWORD}"\n')  # the demo's secrets.toml shape
            args = ["simulate", "--scenario", "poem", "--timeline", str(timeline), "--max", "--passwords", str(secrets)]
            sim = Service(args, env, tmp_path / "simulate.log").start()
            started = time.monotonic()
            wait_until(lambda: not sim.running, timeout=240, interval=0.5, what="simulate drained and exited")
            took = time.monotonic() - started
            assert sim.stop() == 0, sim.output()[-3000:]
            assert "sent" in sim.output()
            stable = []
            wait_until(lambda: stable.append(_counts(db)) or (len(stable) > 3 and len(set(stable[-3:])) == 1),
                       timeout=30, interval=0.3, what="ingest settled")
        finally:
            assert recorder.stop() == 0, recorder.output()[-2000:]
    print(f"simulated one POEM case ({max(e for _, _, e in phases):.0f} s virtual) end to end in {took:.1f} s")

    # the phases in the database are the file's, to the second (case ids are the agent's pseudonyms)
    cases = db.query("SELECT case_id, started_at, ended_at, procedure_type, room FROM procedures")
    assert len(cases) == 1 and cases[0][3] == "poem" and cases[0][4] == "OR-1"
    case_id, started = cases[0][0], cases[0][1]
    assert not str(case_id).startswith("HOSP"), "the raw case number never left the gateway"
    stored = db.query("SELECT phase, started_at, ended_at FROM procedure_phases WHERE case_id = %s", (case_id,))
    got = sorted((ph, (s - started).total_seconds(), (e - started).total_seconds()) for ph, s, e in stored)
    assert got == sorted(phases)
    assert (cases[0][2] - started).total_seconds() == max(e for _, _, e in phases)
    # and the knife cuts where the procedure says: every ESU activation lies in an energy phase
    outside = db.scalar(
        "SELECT count(*) FROM events e WHERE e.device_id = 'esu-or1' AND e.kind = 'activation_start' AND NOT EXISTS "
        "(SELECT 1 FROM procedure_phases p WHERE p.phase IN ('muc_incis', 'tunnel', 'myotomy') "
        " AND e.ts >= p.started_at AND e.ts < p.ended_at)")
    assert db.scalar("SELECT count(*) FROM events WHERE device_id = 'esu-or1' AND kind = 'activation_start'") > 20
    assert outside == 0
    assert int(db.scalar("SELECT count(*) FROM seq_gaps WHERE closed_at IS NULL")) == 0
    assert int(db.scalar("SELECT count(*) FROM samples")) > 10_000
    original = _snapshot(db)

    # replay the recording into a fresh broker and database: the same rows
    header, records = read_recording(recording)
    assert header["source"] == "record" and sum(1 for _ in records) > 1000
    broker2 = make_broker()
    db2 = create_database(pg, db.variant)
    try:
        env2 = _env(broker2.port, tmp_path)
        with running(ingest_process(tmp_path, dsn=db2.writer_dsn, mqtt_port=broker2.port,
                                    client_id=f"ingest-b-{uid}")):
            replay = Service(["replay", str(recording), "--max"], env2, tmp_path / "replay.log").start()
            wait_until(lambda: not replay.running, timeout=120, interval=0.3, what="replay finished")
            assert replay.stop() == 0, replay.output()[-3000:]
            wait_until(lambda: _counts(db2) == _counts(db), timeout=60, interval=0.3, what="replayed rows stored")
        assert _snapshot(db2) == original
    finally:
        drop_database(db2)


def test_in_process_simulation_stops_gracefully_on_sigterm(make_broker, tmp_path: Path) -> None:
    broker = make_broker()
    broker.add_user("gw-or1", TEST_PASSWORD)
    env = _env(broker.port, tmp_path) | {"ORTEL_SIM_MQTT__GATEWAY_PASSWORD": TEST_PASSWORD}
    states: list[bytes] = []
    with connect(Broker(port=broker.port, password=TEST_PASSWORD),
                 on_message=lambda msg: states.append(bytes(msg.payload))) as client:
        subscribe(client, "ortel/v1/gw-or1/state", retained=True)
        sim = Service(["simulate", "--scenario", "lap-chole", "--speed", "1"], env, tmp_path / "sim.log").start()
        try:
            wait_until(lambda: any(b'"online"' in s for s in states), timeout=30, what="agent online")
        finally:
            code = sim.stop()
        assert code == 0, sim.output()[-3000:]
        wait_until(lambda: any(b'"offline"' in s for s in states), timeout=10, what="agent said goodbye")
    assert (tmp_path / "outbox" / "gw-or1.sqlite3").exists()
