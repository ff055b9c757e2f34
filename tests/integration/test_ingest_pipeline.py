"""Ingest end to end on a real broker and database: telemetry, events, state, ledger, watermarks."""

from __future__ import annotations

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

import wire
from tests.integration.ingest_kit import (
    T0_US,
    assert_exactly_once,
    batch,
    birth,
    event,
    ingest_broker_fixture,  # noqa: F401 - provides the ingest_broker fixture
    ingest_process,
    publisher,
    running,
    watermark_of,
)
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import wait_until
from wire import EventKind, GatewayState, ProcedureEvent, Severity


def _watch_acks(port: int, gw: str) -> tuple[mqtt.Client, dict[str, int]]:
    """Subscribe as the gateway would (its own login) to its retained watermarks."""
    seen: dict[str, int] = {}
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set(gw, TEST_PASSWORD)

    def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        _topic, mark = wire.decode(msg.topic, msg.payload)
        seen[mark.stream] = mark.seq  # type: ignore[union-attr]

    client.on_message = on_message
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"ortel/v1/{gw}/ack/+", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client, seen


def test_telemetry_events_and_watermark(ingest_broker, db, tmp_path, uid) -> None:
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    broker.add_user(gw, TEST_PASSWORD)
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    watcher, acks = _watch_acks(broker.port, gw)
    try:
        with running(proc), publisher(broker.port) as pub:
            pub.send(GatewayState(gateway_id=gw, state="online", ts_us=T0_US, boot_id="b1"), retain=True)
            pub.send(birth(gw, dev), retain=True)
            wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1,
                       what="birth stored")
            for seq in range(1, 6):
                pub.send(batch(gw, dev, seq))
            pub.send(event(gw, dev, 6, EventKind.ALARM_RAISED, code="E12", severity=Severity.HIGH))
            pub.send(event(gw, dev, 7, EventKind.ALARM_CLEARED, code="E12"))
            wait_until(lambda: acks.get(dev) == 7, what="watermark 7 published")
            assert_exactly_once(db, dev, range(1, 6), rows_per_batch=20)
            assert watermark_of(db, gw, dev) == 7
            alarms = db.query("SELECT code, severity, cleared_at IS NOT NULL FROM alarms WHERE device_id = %s",
                              (dev,))
            assert alarms == [("E12", "high", True)]
            assert db.scalar("SELECT state FROM gateways WHERE gateway_id = %s", (gw,)) == "online"
            assert db.scalar("SELECT count(*) FROM device_firmware WHERE device_id = %s", (dev,)) == 1
            assert db.scalar("SELECT count(*) FROM dead_letters") == 0
            assert proc.metric("ortel_ingest_rows") >= 100
    finally:
        watcher.loop_stop()
        watcher.disconnect()


def test_gaps_open_and_close_and_outbox_drop(ingest_broker, db, tmp_path, uid) -> None:
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    with running(proc), publisher(broker.port) as pub:
        pub.send(birth(gw, dev), retain=True)
        wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1)
        for seq in (1, 2, 5):
            pub.send(batch(gw, dev, seq))
        wait_until(lambda: db.query("SELECT from_seq, to_seq, closed_at IS NULL FROM seq_gaps") == [(3, 4, True)],
                   what="gap 3..4 open")
        assert watermark_of(db, gw, dev) == 2
        pub.send(batch(gw, dev, 4))
        pub.send(batch(gw, dev, 3))
        wait_until(lambda: watermark_of(db, gw, dev) == 5, what="watermark over the filled gap")
        assert db.scalar("SELECT count(*) FROM seq_gaps WHERE closed_at IS NULL") == 0
        # The edge dropped 6..8 from its full outbox and says so with seq 9.
        pub.send(event(gw, dev, 9, EventKind.OUTBOX_DROP, attrs={"from_seq": 6, "to_seq": 8, "count": 3}))
        wait_until(lambda: watermark_of(db, gw, dev) == 9, what="watermark passes the dropped range")
        dropped = db.query("SELECT from_seq, to_seq, reason, closed_at IS NOT NULL FROM seq_gaps"
                           " WHERE reason = 'dropped_at_edge'")
        assert dropped == [(6, 8, "dropped_at_edge", True)]
        statuses = dict(db.query("SELECT status, count(*) FROM received GROUP BY status"))
        assert statuses == {"stored": 6, "dropped": 3}
        # A stream first seen at seq 3 (1 and 2 were published before ingest subscribed, say) is not covered
        # from 3: its watermark stays 0 with gap 1..2 open until the agent re-sends them.
        late = f"late-{uid}"
        pub.send(birth(gw, late), retain=True)
        pub.send(batch(gw, late, 3))
        wait_until(lambda: db.query("SELECT from_seq, to_seq FROM seq_gaps WHERE stream = %s AND closed_at IS NULL",
                                    (late,)) == [(1, 2)], what="gap 1..2 of a stream first seen at 3")
        assert watermark_of(db, gw, late) == 0
        pub.send(batch(gw, late, 1))
        pub.send(batch(gw, late, 2))
        wait_until(lambda: watermark_of(db, gw, late) == 3, what="re-sent records fill the gap")


def test_state_births_heartbeats_and_procedures(ingest_broker, db, tmp_path, uid) -> None:
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    with running(proc), publisher(broker.port) as pub:
        pub.send(GatewayState(gateway_id=gw, state="online", ts_us=T0_US, boot_id="new"), retain=True)
        pub.send(birth(gw, dev), retain=True)
        # A late Last Will of an older agent process must not override the newer birth.
        pub.send(GatewayState(gateway_id=gw, state="offline", ts_us=T0_US - 10_000_000, boot_id="old"))
        pub.send(wire.DeviceStatus(gateway_id=gw, device_id=dev, ts_us=T0_US + 5_000_000, connected=False))
        case = f"c{uid}"
        common = {"gateway_id": gw, "case_id": case, "room": "OR-1", "procedure_type": "lap-chole"}
        pub.send(ProcedureEvent(seq=1, ts_us=T0_US + 1, kind="case_start", **common))
        pub.send(ProcedureEvent(seq=2, ts_us=T0_US + 2, kind="phase_start", phase="dissection", **common))
        pub.send(ProcedureEvent(seq=3, ts_us=T0_US + 3, kind="phase_end", phase="dissection", **common))
        pub.send(ProcedureEvent(seq=4, ts_us=T0_US + 4, kind="case_end", **common))
        wait_until(lambda: watermark_of(db, gw, wire.PROCEDURE_STREAM) == 4, what="procedure stream stored")
        assert db.query("SELECT state, boot_id FROM gateways WHERE gateway_id = %s", (gw,)) == [("online", "new")]
        wait_until(lambda: db.scalar("SELECT connected FROM devices WHERE device_id = %s", (dev,)) is False)
        rows = db.query("SELECT (extract(epoch FROM started_at) * 1e6)::bigint,"
                        " (extract(epoch FROM ended_at) * 1e6)::bigint FROM procedure_phases WHERE case_id = %s",
                        (case,))
        assert rows == [(T0_US + 2, T0_US + 3)]  # device time, exact to the microsecond
        assert db.scalar("SELECT ended_at IS NOT NULL FROM procedures WHERE case_id = %s", (case,)) is True
        # The death of the current boot marks the gateway (only the gateway) offline.
        pub.send(GatewayState(gateway_id=gw, state="offline", ts_us=T0_US + 9, boot_id="new"), retain=True)
        wait_until(lambda: db.scalar("SELECT state FROM gateways WHERE gateway_id = %s", (gw,)) == "offline")
        assert db.scalar("SELECT count(*) FROM alarms") == 0


def test_samples_1m_refreshed_on_plain_postgres(ingest_broker, db, tmp_path, uid) -> None:
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}",
                          ORTEL_INGEST_REFRESH_INTERVAL_S="0.3")
    with running(proc), publisher(broker.port) as pub:
        pub.send(birth(gw, dev), retain=True)
        wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1)
        pub.send(batch(gw, dev, 1, rows=10, value=5.0))
        if db.variant == "plain":  # on TimescaleDB the continuous aggregate's policy refreshes it
            wait_until(lambda: db.scalar("SELECT sum(n) FROM samples_1m WHERE device_id = %s AND metric ="
                                         " 'power_w'", (dev,)) == 10, what="samples_1m refreshed")
            rows = db.query("SELECT min_value, max_value, avg_value FROM samples_1m"
                            " WHERE device_id = %s AND metric = 'power_w'", (dev,))
            assert rows and all(r == (5.0, 5.0, 5.0) for r in rows)
    cols = [r[0] for r in db.query("SELECT attname FROM pg_attribute WHERE attrelid = 'samples_1m'::regclass"
                                    " AND attnum > 0 ORDER BY attnum")]
    assert cols == ["device_id", "metric", "bucket", "n", "min_value", "max_value", "avg_value"]


def test_a_device_clock_stepping_back_is_dead_lettered_not_dropped(ingest_broker, db, tmp_path, uid) -> None:
    """Seq 2 carries the device times of seq 1 (its clock stepped back): the stored samples stay, seq 2's are
    kept as one ``ts_collision`` dead letter; a true redelivery of seq 1 is only a conflict."""
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    first = batch(gw, dev, 1)
    stepped_back = first.model_copy(update={"seq": 2, "metrics": {"power_w": (7.0,) * 10, "temp_c": (40.0,) * 10}})
    with running(proc), publisher(broker.port) as pub:
        pub.send(birth(gw, dev), retain=True)
        wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1,
                   what="birth stored")
        pub.send(first)
        wait_until(lambda: watermark_of(db, gw, dev) == 1, what="seq 1 stored")
        pub.send(first)  # a redelivery: the same record again
        pub.send(stepped_back)
        wait_until(lambda: watermark_of(db, gw, dev) == 2, what="seq 2 accounted for")
        # the metrics follow the commit that moved the watermark (updated after it, on the service loop)
        wait_until(lambda: proc.metric("ortel_ingest_dead_letters") == 1, what="the dead letter counted")
        assert proc.metric("ortel_ingest_conflicts") == 40, "20 redelivered rows + 20 colliding rows"
    letters = db.query("SELECT reason, detail, payload, gateway_id, device_id FROM dead_letters WHERE device_id = %s",
                       (dev,))
    assert len(letters) == 1, letters
    reason, detail, payload, letter_gw, letter_dev = letters[0]
    assert (reason, letter_gw, letter_dev) == ("ts_collision", gw, dev)
    assert "20 sample(s) of seq 2" in detail and "stored samples of seq 1" in detail
    kept = orjson.loads(bytes(payload))
    assert kept["seq"] == 2 and len(kept["samples"]) == 20
    assert {s["value"] for s in kept["samples"] if s["metric"] == "power_w"} == {7.0}
    logged = [r for line in proc.service.output().splitlines() if line.startswith("{")
              and (r := orjson.loads(line))["event"] == "dead_lettered"]
    assert [(r["reason"], r["gateway_id"], r["device_id"]) for r in logged] == [("ts_collision", gw, dev)]
    ledger = db.query("SELECT seq, n_samples FROM received WHERE gateway_id = %s AND stream = %s ORDER BY seq",
                      (gw, dev))
    assert ledger == [(1, 20), (2, 0)], "seq 2 is accounted for, but none of its samples counts as stored"
    assert_exactly_once(db, dev, range(1, 2), rows_per_batch=20)  # seq 1's samples untouched
    assert db.scalar("SELECT count(*) FROM samples WHERE device_id = %s AND value = 7.0", (dev,)) == 0
