"""A small but realistic OR day, inserted through plain SQL as the schema owner (no pipeline involved).

Four rooms around ``now``:
- OR-1: gateway online; a laparoscopic cholecystectomy running for 70 min (phase "dissection"); ESU with
  cut/coag activations, insufflator with an open high OVERPRESSURE alarm and an open sequence gap, light
  source, camera, suction.
- OR-2: gateway online; an arthroscopy that ran 5 h – 3 h ago; ESU (a closed gap dropped at the edge),
  pump (a cleared, acknowledged occlusion alarm and a fault), a stapler that has gone silent.
- OR-3: gateway offline for 20 min: its devices are "unknown (gateway down)".
- OR-4: gateway online, idle; one device disconnected (offline), one with an open low alarm.
Plus dead letters with their reasons, the received ledger, watermarks and the ``samples_1m`` aggregate.
Samples are generated with ``generate_series`` at ``hz`` per metric (deterministic: no random()).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
import psycopg

__all__ = ["SEEDED", "HeartbeatLoop", "SeedResult", "ensure_samples_1m", "heartbeat", "seed_or_day"]

BATCH_S = 5  # seconds of telemetry per numbered batch


@dataclass(frozen=True)
class Dev:
    device_id: str
    gateway_id: str
    room: str
    device_type: str
    manufacturer: str
    model: str
    serial: str
    firmware: str
    metrics: tuple[tuple[str, str, float, float, str], ...]  # name, unit, low, high, SQL of value(t, x)
    connected: bool = True
    silent_since_min: float | None = None  # last message this many minutes ago


# value expressions: ``x`` is seconds since the series start, ``act`` is 1 inside an activation
DEVICES = (
    Dev("esu-or1", "gw-or1", "OR-1", "esu", "Erbe", "VIO 3", "ES-10432", "2.4.1",
        (("power_w", "W", 0, 120, "act * (38 + 6 * sin(x / 1.7))"),
         ("impedance_ohm", "Ohm", 0, 1000, "180 + 40 * sin(x / 40) + act * 120"))),
    Dev("insuff-or1", "gw-or1", "OR-1", "insufflator", "Karl Storz", "Endoflator 50", "IN-22871", "1.9.0",
        (("pressure_mmhg", "mm[Hg]", 0, 25, "12 + 0.6 * sin(x / 9) + CASE WHEN x > 3300 THEN 5.5 ELSE 0 END"),
         ("flow_l_min", "L/min", 0, 50, "4 + 2.5 * abs(sin(x / 23))"))),
    Dev("light-or1", "gw-or1", "OR-1", "light_source", "Olympus", "CLV-S400", "LS-99120", "3.1.2",
        (("intensity_pct", "%", 0, 100, "72 + 3 * sin(x / 300)"),)),
    Dev("camera-or1", "gw-or1", "OR-1", "camera", "Stryker", "1788", "CAM-55310", "5.0.3",
        (("head_temp_c", "Cel", 20, 45, "31 + 4 * (1 - exp(-x / 900))"),)),
    Dev("suction-or1", "gw-or1", "OR-1", "suction", "Medela", "Dominant Flex", "SU-41009", "1.2.0",
        (("vacuum_kpa", "kPa", -90, 0, "-35 - 8 * abs(sin(x / 60))"),)),
    Dev("esu-or2", "gw-or2", "OR-2", "esu", "Medtronic", "Valleylab FT10", "FT-77120", "4.10",
        (("power_w", "W", 0, 120, "act * (30 + 5 * sin(x / 2.3))"),)),
    Dev("pump-or2", "gw-or2", "OR-2", "arthroscopy_pump", "Smith+Nephew", "Double Pump", "AP-12098", "2.0.7",
        (("pressure_mmhg", "mm[Hg]", 0, 150, "45 + 6 * sin(x / 37)"),
         ("flow_ml_min", "mL/min", 0, 2000, "600 + 150 * sin(x / 71)"))),
    Dev("stapler-or2", "gw-or2", "OR-2", "stapler", "Ethicon", "Echelon 3000", "ST-30117", "1.0.5",
        (("battery_pct", "%", 0, 100, "96 - x / 400"),), silent_since_min=10),
    Dev("esu-or3", "gw-or3", "OR-3", "esu", "Erbe", "VIO 3", "ES-10877", "2.4.1",
        (("power_w", "W", 0, 120, "0"),)),
    Dev("insuff-or3", "gw-or3", "OR-3", "insufflator", "Karl Storz", "Endoflator 50", "IN-23001", "1.9.0",
        (("pressure_mmhg", "mm[Hg]", 0, 25, "0"),)),
    Dev("monitor-or4", "gw-or4", "OR-4", "video_monitor", "Barco", "MDSC-8532", "MO-88812", "7.2",
        (("backlight_pct", "%", 0, 100, "80"),)),
    Dev("warmer-or4", "gw-or4", "OR-4", "fluid_warmer", "3M", "Ranger 245", "FW-10023", "1.4",
        (("fluid_temp_c", "Cel", 30, 42, "38.5 + 0.3 * sin(x / 120)"),)),
    Dev("ventilator-or4", "gw-or4", "OR-4", "anesthesia_ws", "Draeger", "Perseus A500", "AW-55521", "3.3",
        (("peep_cmh2o", "cm[H2O]", 0, 20, "5"),), connected=False),
)
GATEWAYS = (("gw-or1", "OR-1", "online"), ("gw-or2", "OR-2", "online"), ("gw-or3", "OR-3", "offline"),
            ("gw-or4", "OR-4", "online"))
RUNNING_CASE = "C-7F3A19"
FINISHED_CASE = "C-2B90E4"
SEEDED = {"rooms": ("OR-1", "OR-2", "OR-3", "OR-4"), "running_case": RUNNING_CASE, "finished_case": FINISHED_CASE}


@dataclass(frozen=True)
class SeedResult:
    now: datetime
    n_samples: int
    running_case: str = RUNNING_CASE
    finished_case: str = FINISHED_CASE


def _windows(now: datetime, dev: Dev) -> tuple[datetime, datetime]:
    """When each device produced samples: OR-1 during its case, OR-2 during its case, others the last hour."""
    if dev.room == "OR-1":
        return now - timedelta(minutes=70), now
    if dev.room == "OR-2":
        end = now - timedelta(hours=3) if dev.silent_since_min is None else now - timedelta(
            minutes=dev.silent_since_min)
        return now - timedelta(hours=5), end
    if dev.room == "OR-3":
        return now - timedelta(minutes=80), now - timedelta(minutes=20)
    if not dev.connected:  # unplugged two minutes ago
        return now - timedelta(minutes=60), now - timedelta(minutes=2)
    return now - timedelta(minutes=60), now


def _activations(now: datetime) -> dict[str, list[tuple[datetime, datetime, str]]]:
    or1 = now - timedelta(minutes=70)
    or2 = now - timedelta(hours=5)
    esu1 = [(or1 + timedelta(minutes=m, seconds=s), or1 + timedelta(minutes=m, seconds=s + d), mode)
            for m, s, d, mode in ((14, 0, 6, "cut"), (15, 10, 4, "coag"), (22, 30, 9, "cut"), (23, 5, 3, "coag"),
                                  (31, 0, 12, "coag"), (38, 40, 5, "cut"), (44, 15, 7, "coag"), (52, 0, 8, "cut"),
                                  (58, 20, 4, "coag"), (66, 45, 6, "cut"))]
    esu2 = [(or2 + timedelta(minutes=m), or2 + timedelta(minutes=m, seconds=d), mode)
            for m, d, mode in ((25, 8, "coag"), (40, 5, "coag"), (71, 10, "cut"), (95, 6, "coag"))]
    return {"esu-or1": esu1, "esu-or2": esu2}


def seed_or_day(conninfo: str, *, now: datetime | None = None, hz: float = 2.0) -> SeedResult:
    """Fill an empty migrated database; ``now`` defaults to the server's clock."""
    with psycopg.connect(conninfo, autocommit=False) as conn:
        now = now or conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        _identity(conn, now)
        acts = _activations(now)
        _events_and_alarms(conn, now, acts)
        holes: dict[str, tuple[int, int]] = {}
        for dev in DEVICES:
            batch_seqs = _number(conn, dev, now)
            _samples(conn, dev, now, hz=hz, acts=acts.get(dev.device_id, []), batch_seqs=batch_seqs)
            if dev.device_id in HOLES:
                a, b = HOLES[dev.device_id]
                holes[dev.device_id] = (batch_seqs[a - 1], batch_seqs[b - 1])
        _procedures(conn, now)
        _ledger(conn, now, holes)
        _dead_letters(conn, now)
        n = conn.execute("SELECT count(*) FROM samples").fetchone()[0]  # type: ignore[index]
        conn.commit()
    ensure_samples_1m(conninfo)
    return SeedResult(now=now, n_samples=int(n))


def _identity(conn: psycopg.Connection, now: datetime) -> None:
    for gw, room, state in GATEWAYS:
        since = now - timedelta(minutes=20) if state == "offline" else now - timedelta(hours=9)
        conn.execute("INSERT INTO gateways (gateway_id, room, state, boot_id, agent_version, state_since, last_seen)"
                     " VALUES (%s, %s, %s, %s, '0.1.0', %s, %s)", (gw, room, state, f"boot-{gw}", since,
                                                                   since if state == "offline" else now))
    for d in DEVICES:
        _, end = _windows(now, d)
        metrics = [{"name": n, "unit": u, "low": lo, "high": hi} for n, u, lo, hi, _ in d.metrics]
        conn.execute(
            "INSERT INTO devices (device_id, gateway_id, device_type, manufacturer, model, serial, firmware, room,"
            " metrics, heartbeat_s, connected, first_seen, birth_at, last_seen, last_sample_at)"
            " VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,10,%s,%s,%s,%s,%s)",
            (d.device_id, d.gateway_id, d.device_type, d.manufacturer, d.model, d.serial, d.firmware, d.room,
             orjson.dumps(metrics).decode(), d.connected, now - timedelta(days=30), now - timedelta(hours=9),
             _last_seen(d, now), end))


def _last_seen(d: Dev, now: datetime) -> datetime:
    """Heartbeats keep a healthy device's last_seen fresh even when it has nothing to measure."""
    if d.silent_since_min is not None:
        return now - timedelta(minutes=d.silent_since_min)
    if d.room == "OR-3":
        return now - timedelta(minutes=20)
    return now - timedelta(seconds=4) if d.connected else now - timedelta(minutes=2)


# Batches (by index from 1) whose records never arrived (an open gap) or were dropped at the edge.
HOLES = {"insuff-or1": (300, 311), "esu-or2": (900, 909)}


def _number(conn: psycopg.Connection, dev: Dev, now: datetime) -> list[int]:
    """Number the device's telemetry batches and events in one seq space, in time order (as the agent does);
    renumber its events in place and return the seq of each batch."""
    start, end = _windows(now, dev)
    n_batches = int((end - start).total_seconds() // BATCH_S) + 1
    events = conn.execute("SELECT seq, ts FROM events WHERE device_id = %s", (dev.device_id,)).fetchall()
    items = [(start + timedelta(seconds=BATCH_S * k), 0, k) for k in range(n_batches)]
    items += [(ts, 1, old) for old, ts in events]
    batch_seqs = [0] * n_batches
    for seq, (_, kind, key) in enumerate(sorted(items), start=1):
        if kind == 0:
            batch_seqs[key] = seq
        else:
            conn.execute("UPDATE events SET seq = %s WHERE device_id = %s AND seq = %s",
                         (-seq, dev.device_id, key))  # negative first: no clash with not-yet-renumbered rows
    conn.execute("UPDATE events SET seq = -seq WHERE device_id = %s AND seq < 0", (dev.device_id,))
    return batch_seqs


def _samples(conn: psycopg.Connection, dev: Dev, now: datetime, *, hz: float,
             acts: list[tuple[datetime, datetime, str]], batch_seqs: list[int]) -> None:
    start, end = _windows(now, dev)
    step = timedelta(seconds=1 / hz)
    acts_sql = " OR ".join(f"(t >= '{a.isoformat()}' AND t < '{b.isoformat()}')" for a, b, _ in acts) or "false"
    lost = HOLES.get(dev.device_id, (0, -1)) if dev.device_id == "insuff-or1" else (0, -1)
    for name, _unit, _lo, _hi, expr in dev.metrics:
        conn.execute(f"""
            INSERT INTO samples (device_id, metric, ts, value, seq)
            SELECT %s, %s, t, round(({expr})::numeric, 3), (%s::bigint[])[k]
            FROM (SELECT t, x, floor(x / {BATCH_S})::int + 1 AS k, CASE WHEN {acts_sql} THEN 1 ELSE 0 END AS act
                  FROM (SELECT t, extract(epoch FROM t - %s::timestamptz)::float8 AS x
                        FROM generate_series(%s::timestamptz, %s::timestamptz, %s::interval) t) t0) g
            WHERE k NOT BETWEEN %s AND %s""",  # type: ignore[arg-type]
            (dev.device_id, name, batch_seqs, start, start, end, step, *lost))


def _events_and_alarms(conn: psycopg.Connection, now: datetime,
                       acts: dict[str, list[tuple[datetime, datetime, str]]]) -> None:
    rows: list[tuple[str, datetime, str, str | None, str | None, str, str | None]] = []
    for device_id, spans in acts.items():
        case = RUNNING_CASE if device_id == "esu-or1" else FINISHED_CASE
        for a, b, mode in spans:
            rows += [(device_id, a, "activation_start", mode, None, "", case),
                     (device_id, b, "activation_stop", mode, None, "", case)]
    alarms = [  # device, code, severity, text, raised, cleared, acked_by
        ("insuff-or1", "OVERPRESSURE", "high", "Intra-abdominal pressure above set point",
         now - timedelta(minutes=15), None, None),
        ("esu-or1", "REM_ALERT", "medium", "Return electrode contact quality low",
         now - timedelta(minutes=48), now - timedelta(minutes=46), "engineer"),
        ("pump-or2", "OCCLUSION", "high", "Outflow occlusion detected",
         now - timedelta(hours=4, minutes=10), now - timedelta(hours=4, minutes=8), "engineer"),
        ("warmer-or4", "TEMP_DRIFT", "low", "Fluid temperature drifting", now - timedelta(minutes=30), None, None),
    ]
    for device_id, code, sev, text, raised, cleared, acked in alarms:
        conn.execute("INSERT INTO alarms VALUES (%s,%s,%s,%s,%s,%s,%s,%s)",
                     (device_id, code, sev, text, raised, cleared, cleared and cleared + timedelta(minutes=1), acked))
        rows.append((device_id, raised, "alarm_raised", code, sev, text, None))
        if cleared:
            rows.append((device_id, cleared, "alarm_cleared", code, sev, "", None))
    rows.append(("pump-or2", now - timedelta(hours=4, minutes=5), "fault", "E-204", "medium",
                 "Roller pump motor current high", FINISHED_CASE))
    seqs: dict[str, int] = {}
    for device_id, ts, kind, code, sev, text, case in sorted(rows, key=lambda r: (r[0], r[1])):
        seqs[device_id] = seqs.get(device_id, 100_000) + 1  # events numbered after the telemetry batches
        conn.execute("INSERT INTO events (device_id, seq, ts, kind, code, severity, text, case_id)"
                     " VALUES (%s,%s,%s,%s,%s,%s,%s,%s)", (device_id, seqs[device_id], ts, kind, code, sev, text,
                                                           case))


def _procedures(conn: psycopg.Connection, now: datetime) -> None:
    s1 = now - timedelta(minutes=70)
    s2 = now - timedelta(hours=5)
    conn.execute("INSERT INTO procedures VALUES (%s,'gw-or1','OR-1','laparoscopic cholecystectomy',%s,NULL)",
                 (RUNNING_CASE, s1))
    conn.execute("INSERT INTO procedures VALUES (%s,'gw-or2','OR-2','knee arthroscopy',%s,%s)",
                 (FINISHED_CASE, s2, now - timedelta(hours=3)))
    phases = [(RUNNING_CASE, "preparation", s1, 0, 10), (RUNNING_CASE, "access", s1, 10, 13),
              (RUNNING_CASE, "dissection", s1, 13, None),
              (FINISHED_CASE, "preparation", s2, 0, 15), (FINISHED_CASE, "diagnostic", s2, 15, 35),
              (FINISHED_CASE, "resection", s2, 35, 100), (FINISHED_CASE, "closure", s2, 100, 118)]
    for case, phase, base, a, b in phases:
        conn.execute("INSERT INTO procedure_phases VALUES (%s,%s,%s,%s)",
                     (case, phase, base + timedelta(minutes=a), None if b is None else base + timedelta(minutes=b)))


def _ledger(conn: psycopg.Connection, now: datetime, holes: dict[str, tuple[int, int]]) -> None:
    """Every batch and event in ``received``; the insufflator's hole is an open gap, esu-or2's a dropped one."""
    lost_a, lost_b = holes["insuff-or1"]
    drop_a, drop_b = holes["esu-or2"]
    conn.execute("""
        INSERT INTO received (gateway_id, stream, seq, kind, status, n_samples, received_at)
        SELECT d.gateway_id, s.device_id, s.seq, 'telemetry',
               CASE WHEN s.device_id = 'esu-or2' AND s.seq BETWEEN %s AND %s THEN 'dropped' ELSE 'stored' END,
               count(*), max(s.ts) + interval '150 milliseconds'
        FROM samples s JOIN devices d USING (device_id) GROUP BY 1, 2, 3""", (drop_a, drop_b))
    conn.execute("""
        INSERT INTO received (gateway_id, stream, seq, kind, status, received_at)
        SELECT d.gateway_id, e.device_id, e.seq, 'event', 'stored', e.ts + interval '150 milliseconds'
        FROM events e JOIN devices d USING (device_id)""")
    conn.execute("DELETE FROM samples WHERE device_id = 'esu-or2' AND seq BETWEEN %s AND %s", (drop_a, drop_b))
    conn.execute("INSERT INTO seq_gaps VALUES ('gw-or1','insuff-or1',%s,%s,%s,NULL,'missing')",
                 (lost_a, lost_b, now - timedelta(minutes=44)))
    conn.execute("INSERT INTO seq_gaps VALUES ('gw-or2','esu-or2',%s,%s,%s,%s,'dropped_at_edge')",
                 (drop_a, drop_b, now - timedelta(hours=4), now - timedelta(hours=4)))
    conn.execute("""INSERT INTO watermarks (gateway_id, stream, seq, updated_at)
                    SELECT gateway_id, stream, CASE WHEN stream = 'insuff-or1' THEN %s ELSE max(seq) END, now()
                    FROM received GROUP BY 1, 2""", (lost_a - 1,))


def _dead_letters(conn: psycopg.Connection, now: datetime) -> None:
    rows = [
        ("ortel/v1/gw-or1/dev/esu-or1/telemetry", b'{"v":1,"gateway_id":"gw-or1",', "malformed_json",
         "unexpected end of data at line 1 column 30", "gw-or1", "esu-or1", 40),
        ("ortel/v1/gw-or2/dev/pump-or2/event", b'{"v":1,"ts_us":99999999999999999}', "invalid",
         "ts_us: timestamp 2286 years in the future", "gw-or2", "pump-or2", 150),
        ("ortel/v1/gw-or4/dev/warmer-or4/telemetry", b'{"v":2}', "unsupported_version",
         "schema version 2 is not supported (this ingest speaks 1)", "gw-or4", "warmer-or4", 25),
        ("ortel/v1/gw-or1/dev/camera-or1/telemetry", b'{"v":1,"device_id":"camera-or2"}', "topic_mismatch",
         "device_id camera-or2 in payload, camera-or1 in topic", "gw-or1", "camera-or1", 5),
    ]
    for topic, payload, reason, detail, gw, dev, mins in rows:
        conn.execute("INSERT INTO dead_letters (received_at, topic, payload, reason, detail, gateway_id, device_id)"
                     " VALUES (%s,%s,%s,%s,%s,%s,%s)", (now - timedelta(minutes=mins), topic, payload, reason,
                                                         detail, gw, dev))


SAMPLES_1M_DDL = """
CREATE TABLE IF NOT EXISTS samples_1m (
    device_id  text NOT NULL,
    metric     text NOT NULL,
    bucket     timestamptz NOT NULL,
    n          bigint NOT NULL,
    min_value  double precision NOT NULL,
    max_value  double precision NOT NULL,
    avg_value  double precision NOT NULL,
    PRIMARY KEY (device_id, metric, bucket)
);
GRANT SELECT ON samples_1m TO ortel_reader;
"""


def ensure_samples_1m(conninfo: str) -> None:
    """Bring the 1-minute aggregate up to date, as ingest's periodic refresh would: refresh ingest's
    materialized view (plain) or continuous aggregate (TimescaleDB); on a schema without it, create a table
    with the same columns and fill it."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        kind = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass('samples_1m')").fetchone()
        if kind is None:
            conn.execute(SAMPLES_1M_DDL)
            kind = ("r",)
        if kind[0] == "r":
            conn.execute("""
                INSERT INTO samples_1m SELECT device_id, metric, date_bin('1 minute', ts, 'epoch'), count(*),
                    min(value), max(value), avg(value) FROM samples GROUP BY 1, 2, 3
                ON CONFLICT (device_id, metric, bucket) DO UPDATE SET n = excluded.n, min_value = excluded.min_value,
                    max_value = excluded.max_value, avg_value = excluded.avg_value""")
        elif kind[0] == "m":  # plain PostgreSQL: ingest's materialized view
            conn.execute("REFRESH MATERIALIZED VIEW samples_1m")
        else:  # TimescaleDB: a continuous aggregate (a view over its materialization)
            conn.execute("CALL refresh_continuous_aggregate('samples_1m', NULL, NULL)")


def heartbeat(conninfo: str) -> None:
    """What the gateways' status messages do: healthy devices of online gateways were seen just now."""
    silent = [d.device_id for d in DEVICES if d.silent_since_min is not None]
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("""UPDATE devices d SET last_seen = now() FROM gateways g
                        WHERE g.gateway_id = d.gateway_id AND g.state = 'online' AND d.connected
                          AND NOT d.device_id = ANY(%s)""", (silent,))


class HeartbeatLoop:
    """Keeps healthy devices "seen" every ``period_s``, as the gateways' status messages would, for as long as
    a test needs live-looking data (otherwise every device turns silent after three heartbeats)."""

    def __init__(self, conninfo: str, period_s: float = 2.0) -> None:
        import threading

        self._conninfo, self._period = conninfo, period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="seed-heartbeat", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._period):  # a periodic simulation, not a synchronisation
            heartbeat(self._conninfo)

    def __enter__(self) -> HeartbeatLoop:
        heartbeat(self._conninfo)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
