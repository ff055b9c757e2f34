"""A passive observer on the real broker for fault tests: every message on one topic filter, retained ones too.

It logs in as ``ortel-admin`` (the ACL lets it read ``ortel/#`` and ``$SYS/#``) with a clean session, so it
never holds a queue of its own, and keeps every (topic, payload, retain flag) in arrival order. It reconnects by itself
after a broker restart; a retained message is delivered again on every (re)subscription.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.harness import TEST_PASSWORD


@dataclass
class TopicWatch:
    port: int
    topic_filter: str
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    client: mqtt.Client | None = None

    def __enter__(self) -> TopicWatch:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:12]}",
                        protocol=mqtt.MQTTv5)
        c.username_pw_set("ortel-admin", TEST_PASSWORD)
        c.reconnect_delay_set(0.1, 0.5)
        c.on_connect = lambda client, *_: client.subscribe(self.topic_filter, qos=1)
        c.on_message = self._on_message
        c.connect_async("127.0.0.1", self.port, keepalive=30)
        c.loop_start()
        self.client = c
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))

    def last(self) -> tuple[str, bytes, bool] | None:
        with self.lock:
            return self.messages[-1] if self.messages else None

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [p for _, p, _ in self.messages]
