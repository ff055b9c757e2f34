"""S1, S3, S5 on the password listener of the repo's mosquitto.conf + mosquitto.acl (shared ``broker``).

Each refusal is checked where it matters: a denied PUBLISH gets PUBACK 0x87 *and* is not delivered to a
subscriber that may read everything (ortel-admin). "Not delivered" is proved with a marker the same client
publishes right after on a topic it may use: MQTT keeps one client's messages in order (4.6.0-6), so once the
marker arrives, the forbidden message would have arrived before it.
"""

from __future__ import annotations

import socket

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.security.clients import refused, session
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import wait_until

NOT_AUTHORIZED = 0x87
ADMIN = {"user": "ortel-admin", "password": TEST_PASSWORD}
INGEST = {"user": "ingest", "password": TEST_PASSWORD}


def _gateway_topics(gw: str) -> list[str]:
    return [
        f"ortel/v1/{gw}/state",
        f"ortel/v1/{gw}/procedure",
        f"ortel/v1/{gw}/dev/d1/birth",
        f"ortel/v1/{gw}/dev/d1/status",
        f"ortel/v1/{gw}/dev/d1/telemetry",
        f"ortel/v1/{gw}/dev/d1/event",
    ]


def test_anonymous_client_is_refused(broker) -> None:
    assert "connack" in refused(broker.port)  # refused by CONNACK, not by a network error


def test_wrong_password_and_unknown_user_are_refused(broker, gateway_user, uid) -> None:
    user, password = gateway_user(f"gw-{uid}")
    wait_until(lambda: _can_login(broker.port, user, password), timeout=10, what="the new login")
    refused(broker.port, user=user, password=password + "x")
    refused(broker.port, user=user, password="")
    refused(broker.port, user=f"nobody-{uid}", password=TEST_PASSWORD)
    refused(broker.port, user="ingest", password="wrong")


def _can_login(port: int, user: str, password: str) -> bool:
    try:
        with session(port, user=user, password=password):
            return True
    except Exception:
        return False


@pytest.fixture
def two_gateways(broker, gateway_user, uid) -> tuple[str, str]:
    a, _ = gateway_user(f"gwa-{uid}")
    b, _ = gateway_user(f"gwb-{uid}")
    wait_until(lambda: _can_login(broker.port, b, TEST_PASSWORD), timeout=10, what="gateway logins")
    return a, b


def test_gateway_cannot_publish_under_another_gateways_prefix(broker, two_gateways) -> None:
    a, b = two_gateways
    with session(broker.port, **ADMIN) as observer, session(broker.port, user=a, password=TEST_PASSWORD) as gw:
        observer.subscribe("ortel/v1/#")
        for topic in [*_gateway_topics(b), f"ortel/v1/{b}/ack/d1", f"ortel/v1/{a}/ack/d1"]:
            assert gw.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
        for topic in ("ortel/v1", "ortel/v2/x", f"other/{a}", "$SYS/broker/uptime"):
            assert gw.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
        marker = f"ortel/v1/{a}/dev/d1/telemetry"
        assert not gw.publish(marker, b"marker").is_failure
        observer.wait_for(marker, b"marker")
        foreign = [t for t, p in observer.messages if p == b"forged"]
        assert foreign == []


def test_gateway_may_publish_every_topic_of_its_own_prefix(broker, two_gateways) -> None:
    a, _ = two_gateways
    with session(broker.port, **ADMIN) as observer, session(broker.port, user=a, password=TEST_PASSWORD) as gw:
        observer.subscribe(f"ortel/v1/{a}/#")
        for topic in _gateway_topics(a):
            assert not gw.publish(topic, b"own").is_failure, topic
            observer.wait_for(topic, b"own")


def test_gateway_subscribed_to_everything_receives_nothing_foreign(broker, two_gateways) -> None:
    a, b = two_gateways
    with session(broker.port, **INGEST) as ingest, session(broker.port, **ADMIN) as admin:
        # retained foreign data is there before the gateway subscribes, live foreign data comes after
        assert not ingest.publish(f"ortel/v1/{b}/ack/d1", b"foreign-retained", retain=True).is_failure
        with session(broker.port, user=a, password=TEST_PASSWORD) as gw:
            gw.subscribe("#")
            gw.subscribe(f"ortel/v1/{b}/#")
            gw.subscribe("$SYS/#")
            for topic in _gateway_topics(b):
                assert not admin.publish(topic, b"foreign").is_failure
            assert not ingest.publish(f"ortel/v1/{b}/ack/d2", b"foreign").is_failure
            # the broker routes a message before it acknowledges it: the own watermark comes after all of them
            assert not ingest.publish(f"ortel/v1/{a}/ack/d1", b"own").is_failure
            gw.wait_for(f"ortel/v1/{a}/ack/d1", b"own")
            assert [t for t, _ in gw.messages] == [f"ortel/v1/{a}/ack/d1"]
        assert not ingest.publish(f"ortel/v1/{b}/ack/d1", b"", retain=True).is_failure  # clear the retained


def test_ingest_publishes_nothing_but_watermarks(broker, uid) -> None:
    gw = f"gw-{uid}"
    with session(broker.port, **ADMIN) as observer, session(broker.port, **INGEST) as ingest:
        observer.subscribe(f"ortel/v1/{gw}/#")
        for topic in _gateway_topics(gw):
            assert ingest.publish(topic, b"forged").value == NOT_AUTHORIZED, topic
        assert ingest.publish("$SYS/x", b"forged").value == NOT_AUTHORIZED
        assert not ingest.publish(f"ortel/v1/{gw}/ack/d1", b"watermark").is_failure
        observer.wait_for(f"ortel/v1/{gw}/ack/d1", b"watermark")
        assert [p for _, p in observer.messages] == [b"watermark"]


def test_last_will_in_another_prefix_is_not_delivered(broker, two_gateways) -> None:
    """A gateway's Last Will is a PUBLISH too: one aimed at another gateway's state must not be delivered."""
    a, b = two_gateways
    with session(broker.port, **ADMIN) as observer:
        observer.subscribe(f"ortel/v1/{a}/state")
        observer.subscribe(f"ortel/v1/{b}/state")
        for will_topic in (f"ortel/v1/{b}/state", f"ortel/v1/{a}/state"):
            _die_with_will(broker.port, a, will_topic)
        observer.wait_for(f"ortel/v1/{a}/state", b"WILL")  # the control: its own will is delivered
        assert observer.received(f"ortel/v1/{b}/state") == []


def _die_with_will(port: int, user: str, will_topic: str) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5, reconnect_on_failure=False)
    client.username_pw_set(user, TEST_PASSWORD)
    client.will_set(will_topic, b"WILL", qos=1)
    connacks: list[object] = []
    client.on_connect = lambda c, u, f, rc, p: connacks.append(rc)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        wait_until(lambda: connacks, timeout=10, what="CONNACK")
    finally:
        client.loop_stop()
    # drop the TCP connection without DISCONNECT: the broker publishes the will
    sock = client.socket()
    assert isinstance(sock, socket.socket)
    sock.shutdown(socket.SHUT_RDWR)
    sock.close()
