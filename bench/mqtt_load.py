"""Load generator: an ``ortel-admin`` MQTT v5 client publishing pre-encoded payloads at QoS 1.

paho's own publish queue is unbounded, so the window of unacknowledged messages is bounded here with a
semaphore released by PUBACK; a PUBACK reason code >= 0x80 (the broker discarded the message) is a failure.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from bench.harness import ADMIN_USER, BenchError

__all__ = ["LoadPublisher", "PublishRefused"]


class PublishRefused(BenchError):
    pass


@dataclass
class LoadPublisher:
    """``with LoadPublisher(port=..., password=...) as pub: pub.publish_all(items)``."""

    port: int
    password: str
    window: int = 500
    username: str = ADMIN_USER
    host: str = "127.0.0.1"
    _client: mqtt.Client = field(init=False)
    _slots: threading.BoundedSemaphore = field(init=False)
    _connected: threading.Event = field(default_factory=threading.Event, init=False)
    _errors: list[str] = field(default_factory=list, init=False)
    acked: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self._slots = threading.BoundedSemaphore(self.window)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"bench-pub-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        self._client.username_pw_set(self.username, self.password)
        self._client.max_inflight_messages_set(self.window)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        if getattr(rc, "is_failure", False):
            self._errors.append(f"connect refused: {rc}")
        self._connected.set()

    def _on_publish(self, client: mqtt.Client, userdata: object, mid: int, rc: object, props: object) -> None:
        if getattr(rc, "is_failure", False):
            self._errors.append(f"PUBACK {rc} for mid {mid}")
        self.acked += 1
        self._slots.release()

    def __enter__(self) -> LoadPublisher:
        self._client.connect(self.host, self.port, keepalive=60)
        self._client.loop_start()
        if not self._connected.wait(10) or self._errors:
            self._client.loop_stop()
            raise PublishRefused(self._errors[0] if self._errors else "no CONNACK within 10 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        if self._errors:
            raise PublishRefused(self._errors[0])
        self._slots.acquire()
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self._slots.release()
            raise PublishRefused(f"publish failed locally: {mqtt.error_string(info.rc)}")

    def publish_all(self, items: Iterable[tuple[str, bytes]], *, retain: bool = False) -> int:
        n = 0
        for topic, payload in items:
            self.publish(topic, payload, retain=retain)
            n += 1
        return n

    def drain(self, timeout: float = 60.0) -> None:
        """Wait until every message published so far is acknowledged by the broker."""
        for _ in range(self.window):
            if not self._slots.acquire(timeout=timeout):
                raise PublishRefused(f"{self.window} PUBACKs still missing after {timeout}s")
        for _ in range(self.window):
            self._slots.release()
        if self._errors:
            raise PublishRefused(self._errors[0])


def paced(items: Iterable[tuple[float, str, bytes]], pub: LoadPublisher) -> float:
    """Publish each ``(send_at_monotonic, topic, payload)`` no earlier than its time; return the worst lag."""
    worst = 0.0
    for send_at, topic, payload in items:
        delay = send_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)  # pacing an offered load, not synchronising on an event
        else:
            worst = max(worst, -delay)
        pub.publish(topic, payload)
    return worst
