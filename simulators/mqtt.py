"""The MQTT shell of record/replay: a paho v5 client, logged in, with its network loop in a thread.

Every reason code is checked: a CONNACK, SUBACK or PUBACK code >= 0x80 is a failure (MQTT 5, 3.2.2.2 /
3.9.3 / 3.4.2.1) and raises ``RecordingError`` instead of passing silently (an ACL denial is otherwise
invisible to a QoS 1 publisher).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.subscribeoptions import SubscribeOptions

from simulators.errors import RecordingError

__all__ = ["Broker", "Publisher", "connect", "subscribe"]


@dataclass(frozen=True, slots=True)
class Broker:
    host: str = "127.0.0.1"
    port: int = 1883
    username: str = "ortel-admin"
    password: str | None = None
    keepalive_s: int = 30

    def __str__(self) -> str:
        return f"mqtt://{self.username}@{self.host}:{self.port}"


@contextmanager
def connect(broker: Broker, *, client_id: str | None = None, timeout_s: float = 15.0, inflight: int = 100,
            on_message: Callable[[mqtt.MQTTMessage], None] | None = None) -> Iterator[mqtt.Client]:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or f"ortel-sim-{uuid.uuid4().hex[:8]}",
                         protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(inflight)  # paho allows this only before connecting
    client.username_pw_set(broker.username, broker.password)
    connected = threading.Event()
    result: list[Any] = []

    def on_connect(c: mqtt.Client, u: Any, flags: Any, rc: Any, props: Any) -> None:
        result.append(rc)
        connected.set()

    client.on_connect = on_connect
    if on_message is not None:
        client.on_message = lambda c, u, msg: on_message(msg)
    try:
        client.connect(broker.host, broker.port, keepalive=broker.keepalive_s)
    except OSError as exc:
        raise RecordingError(str(broker), f"cannot reach broker: {exc}") from None
    client.loop_start()
    try:
        if not connected.wait(timeout_s):
            raise RecordingError(str(broker), "no CONNACK")
        if result[0].is_failure:
            raise RecordingError(str(broker), f"connection refused: {result[0]}")
        yield client
    finally:
        client.disconnect()
        client.loop_stop()


def subscribe(client: mqtt.Client, topic: str, *, retained: bool, timeout_s: float = 10.0) -> None:
    """QoS 1, retain flag as published; ``retained=False`` skips what the broker had retained (handling 2)."""
    done = threading.Event()
    codes: list[Any] = []

    def on_subscribe(c: mqtt.Client, u: Any, mid: int, rcs: list[Any], props: Any) -> None:
        codes.extend(rcs)
        done.set()

    client.on_subscribe = on_subscribe
    opts = SubscribeOptions(qos=1, retainAsPublished=True, retainHandling=0 if retained else 2)
    client.subscribe(topic, options=opts)
    if not done.wait(timeout_s):
        raise RecordingError(topic, "no SUBACK")
    if any(rc.is_failure for rc in codes):
        raise RecordingError(topic, f"subscription refused: {codes}")


@dataclass
class Publisher:
    """Publishes with at most ``window`` QoS 1 messages awaiting PUBACK; ``wait()`` raises on any refusal.
    Connect with ``connect(..., inflight=window)`` so paho's own window matches."""

    client: mqtt.Client
    window: int = 500
    _slots: threading.Semaphore = field(init=False)
    _idle: threading.Condition = field(default_factory=threading.Condition, init=False)
    _pending: set[int] = field(default_factory=set, init=False)
    _acked: set[int] = field(default_factory=set, init=False)
    failures: list[tuple[str, str]] = field(default_factory=list, init=False)
    _topics: dict[int, str] = field(default_factory=dict, init=False)
    sent: int = 0

    def __post_init__(self) -> None:
        self._slots = threading.Semaphore(self.window)
        self.client.on_publish = self._on_publish

    def _on_publish(self, c: mqtt.Client, u: Any, mid: int, rc: Any, props: Any) -> None:
        with self._idle:
            if rc is not None and rc.is_failure:
                self.failures.append((self._topics.get(mid, "?"), str(rc)))
            if mid in self._pending:
                self._pending.discard(mid)
                self._topics.pop(mid, None)
                self._slots.release()
            else:
                self._acked.add(mid)  # PUBACK raced ahead of publish() returning its mid
            self._idle.notify_all()

    def publish(self, topic: str, payload: bytes, *, qos: int, retain: bool) -> None:
        self._slots.acquire()
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._slots.release()
            raise RecordingError(topic, f"publish failed: {mqtt.error_string(info.rc)}")
        with self._idle:
            if info.mid in self._acked:
                self._acked.discard(info.mid)
                self._slots.release()
            else:
                self._pending.add(info.mid)
                self._topics[info.mid] = topic
        self.sent += 1

    def wait(self, timeout_s: float = 60.0) -> None:
        with self._idle:
            if not self._idle.wait_for(lambda: not self._pending, timeout_s):
                raise RecordingError("publish", f"{len(self._pending)} messages unacknowledged after {timeout_s}s")
        if self.failures:
            topic, code = self.failures[0]
            raise RecordingError(topic, f"broker refused {len(self.failures)} message(s), first: {code}")
