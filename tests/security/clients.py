"""A small synchronous MQTT v5 client for the security tests: connect (password or certificate), publish and
read back the PUBACK reason code, subscribe and collect what is actually delivered.

Every wait polls a real event with a deadline. "Nothing delivered" is proved with a marker: the observer
publishes a message it *is* allowed to see after the forbidden one and waits for it; MQTT keeps the order of
messages from one publisher (4.6.0-*) only per client, so the marker is sent by the same client that sent the
forbidden message whenever possible, and otherwise the check waits for the marker and then looks.
"""

from __future__ import annotations

import contextlib
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from tests.support.poll import wait_until

TIMEOUT = 10.0


@dataclass(frozen=True)
class Tls:
    ca: Path
    cert: Path | None = None
    key: Path | None = None


@dataclass
class Session:
    """A connected client; ``messages`` collects (topic, payload) as they arrive."""

    client: mqtt.Client
    connack: ReasonCode | None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    pubacks: dict[int, ReasonCode] = field(default_factory=dict)
    subacks: dict[int, list[ReasonCode]] = field(default_factory=dict)

    def publish(self, topic: str, payload: bytes = b"{}", *, retain: bool = False) -> ReasonCode:
        """QoS 1 publish; returns the broker's PUBACK reason code (>= 0x80: refused)."""
        info = self.client.publish(topic, payload, qos=1, retain=retain)
        wait_until(lambda: info.mid in self.pubacks, timeout=TIMEOUT, what=f"PUBACK for {topic}")
        return self.pubacks[info.mid]

    def subscribe(self, topic_filter: str) -> list[ReasonCode]:
        _, mid = self.client.subscribe(topic_filter, qos=1)
        wait_until(lambda: mid in self.subacks, timeout=TIMEOUT, what=f"SUBACK for {topic_filter}")
        return self.subacks[mid]

    def received(self, topic: str) -> list[bytes]:
        return [payload for t, payload in list(self.messages) if t == topic]

    def wait_for(self, topic: str, payload: bytes) -> None:
        wait_until(lambda: payload in self.received(topic), timeout=TIMEOUT, what=f"delivery on {topic}")


def _client(client_id: str | None, tls: Tls | None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"sec-{uuid.uuid4().hex[:10]}",
                         protocol=mqtt.MQTTv5, reconnect_on_failure=False)
    if tls is not None:
        client.tls_set(ca_certs=str(tls.ca), certfile=str(tls.cert) if tls.cert else None,
                       keyfile=str(tls.key) if tls.key else None, cert_reqs=ssl.CERT_REQUIRED)
    return client


@contextlib.contextmanager
def session(port: int, *, user: str | None = None, password: str | None = None, tls: Tls | None = None,
            client_id: str | None = None) -> Iterator[Session]:
    """Connect or fail: raises ``Refused`` unless the broker sends a successful CONNACK."""
    client = _client(client_id, tls)
    if user is not None:
        client.username_pw_set(user, password)
    sess = Session(client=client, connack=None)
    events: list[str] = []

    def on_connect(c: mqtt.Client, u: object, flags: object, rc: ReasonCode, props: object) -> None:
        sess.connack = rc
        events.append("connack")

    def on_disconnect(c: mqtt.Client, u: object, flags: object, rc: ReasonCode, props: object) -> None:
        events.append(f"disconnect {rc}")

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = lambda c, u, msg: sess.messages.append((msg.topic, msg.payload))
    client.on_publish = lambda c, u, mid, rc, props: sess.pubacks.__setitem__(mid, rc)
    client.on_subscribe = lambda c, u, mid, rcs, props: sess.subacks.__setitem__(mid, list(rcs))
    try:
        client.connect("127.0.0.1", port, keepalive=30)
    except (OSError, ssl.SSLError) as exc:  # the TLS handshake itself failed (TLS 1.2 client-cert checks)
        raise Refused(f"connect: {exc!r}") from None
    client.loop_start()
    try:
        wait_until(lambda: events, timeout=TIMEOUT, what="CONNACK or disconnect")
        if sess.connack is None or sess.connack.is_failure:
            raise Refused(f"events={events} connack={sess.connack}")
        yield sess
    finally:
        client.disconnect()
        client.loop_stop()


class Refused(Exception):
    """The broker did not accept the connection (handshake failed, CONNACK failure, or dropped)."""


def refused(port: int, **kwargs: object) -> str:
    """The reason a connection is refused; fails the test if the broker accepts it."""
    try:
        with session(port, **kwargs):  # type: ignore[arg-type]
            pass
    except Refused as exc:
        return str(exc)
    raise AssertionError(f"the broker accepted a connection that must be refused: {kwargs}")
