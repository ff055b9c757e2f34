"""The harness itself: the servers are real, private, and the broker enforces the repo's ACL."""

from __future__ import annotations

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.harness import TEST_PASSWORD, Database
from tests.support.poll import wait_until


def _connect(port: int, user: str | None, password: str | None) -> ReasonCode | None:
    result: list[ReasonCode] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    if user:
        client.username_pw_set(user, password)
    client.on_connect = lambda c, u, f, rc, p: result.append(rc)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_until(lambda: result, timeout=10, what="CONNACK")
    finally:
        client.loop_stop()
        client.disconnect()
    return result[0]


def test_broker_refuses_anonymous_and_accepts_known_user(broker) -> None:
    assert broker.port not in (1883, 8883)
    assert _connect(broker.port, None, None).is_failure
    assert _connect(broker.port, "ingest", "wrong").is_failure
    assert not _connect(broker.port, "ingest", TEST_PASSWORD).is_failure


def test_gateway_user_added_at_runtime(broker, gateway_user, uid) -> None:
    user, password = gateway_user(f"gw-{uid}")
    wait_until(lambda: not _connect(broker.port, user, password).is_failure, timeout=10, what="login")


def test_database_is_migrated_and_private(db: Database, pg) -> None:
    assert pg.port != 5432
    tables = {r[0] for r in db.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"samples", "events", "devices", "dead_letters", "seq_gaps", "received"} <= tables
    assert db.scalar("SHOW synchronous_commit") == "on"
