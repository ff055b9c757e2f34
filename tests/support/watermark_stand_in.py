"""A stand-in for the *ingest side only* of the end-to-end acknowledgement, until ``ortel ingest`` exists.

A real MQTT client logged in as ``ingest`` on the real broker: it subscribes to a gateway's numbered records,
keeps what it received in memory (its "storage": every seq, duplicates and conflicting duplicates counted) and
publishes real retained ``Watermark`` messages (highest contiguous seq, passing ranges reported by
``outbox_drop``), as the protocol in README.md describes. It is not a broker and fakes nothing the agent talks
to. Payloads are read with orjson (not full validation) so it keeps up with a 70,000-record backlog.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.harness import TEST_PASSWORD
from wire import Watermark, encode, topics
from wire.topics import PROCEDURE_STREAM


@dataclass(frozen=True)
class Stored:
    kind: str  # telemetry | event | procedure
    ts_us: tuple[int, ...]
    body: dict[str, Any]


@dataclass
class WatermarkStandIn:
    port: int
    gateway_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    stored: dict[str, dict[int, Stored]] = field(default_factory=lambda: defaultdict(dict))
    dropped: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    watermarks: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: int = 0
    conflicts: int = 0  # the same seq with different content: a reused number
    replays: int = 0
    connects: int = 0
    errors: list[str] = field(default_factory=list)
    client: mqtt.Client | None = None
    commit_interval_s: float = 0.02  # watermarks go out per "commit", like ingest's, not per message
    _dirty: set[str] = field(default_factory=set)
    _done: threading.Event = field(default_factory=threading.Event)
    _committer: threading.Thread | None = None

    def __enter__(self) -> WatermarkStandIn:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ingest-standin-{self.gateway_id}",
                        protocol=mqtt.MQTTv5)
        c.username_pw_set("ingest", TEST_PASSWORD)
        c.reconnect_delay_set(0.1, 0.5)
        c.max_inflight_messages_set(1000)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        c.connect_async("127.0.0.1", self.port, keepalive=30)
        c.loop_start()
        self.client = c
        self._committer = threading.Thread(target=self._commit_loop, name="standin-commit", daemon=True)
        self._committer.start()
        return self

    def _commit_loop(self) -> None:
        while not self._done.wait(self.commit_interval_s):
            with self.lock:
                marks = {s: self.watermarks[s] for s in self._dirty}
                self._dirty.clear()
            for stream, w in marks.items():
                mark = Watermark(gateway_id=self.gateway_id, stream=stream, seq=w, ts_us=time.time_ns() // 1000)
                assert self.client is not None
                self.client.publish(topics.ack(self.gateway_id, stream), encode(mark), qos=1, retain=True)

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._committer is not None:
            self._committer.join()
        if self.client is not None:
            self.client.disconnect()
            self.client.loop_stop()

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, rc: object, props: object) -> None:
        self.connects += 1
        gw = self.gateway_id
        client.subscribe([(f"ortel/v1/{gw}/dev/+/telemetry", 1), (f"ortel/v1/{gw}/dev/+/event", 1),
                          (f"ortel/v1/{gw}/procedure", 1)])

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            self._handle(client, message)
        except Exception as exc:  # a stand-in that dies silently would look like a lost message
            self.errors.append(f"{message.topic}: {exc!r}")

    def _handle(self, client: mqtt.Client, message: mqtt.MQTTMessage) -> None:
        body = orjson.loads(message.payload)
        kind = message.topic.rsplit("/", 1)[-1]
        stream = PROCEDURE_STREAM if kind == "procedure" else body["device_id"]
        ts = tuple(body["ts_us"]) if kind == "telemetry" else (body["ts_us"],)
        record = Stored(kind, ts, body)
        seq = body["seq"]
        with self.lock:
            old = self.stored[stream].get(seq)
            if old is not None:
                self.duplicates += 1
                self.conflicts += (old.kind, old.ts_us) != (kind, ts)
            self.stored[stream][seq] = record
            self.replays += bool(body.get("replay"))
            if kind == "event" and body.get("kind") == "outbox_drop":
                attrs = body["attrs"]
                self.dropped[stream].update(range(int(attrs["from_seq"]), int(attrs["to_seq"]) + 1))
            w = self.watermarks[stream]
            while w + 1 in self.stored[stream] or w + 1 in self.dropped[stream]:
                w += 1
            if w != self.watermarks[stream]:
                self.watermarks[stream] = w
                self._dirty.add(stream)

    def snapshot(self) -> dict[str, dict[int, Stored]]:
        with self.lock:
            return {s: dict(v) for s, v in self.stored.items()}

    def samples(self, stream: str) -> list[tuple[int, int]]:
        """(ts_us, seq) of every stored telemetry row of ``stream``, sorted by device time."""
        with self.lock:
            rows = {(ts, seq) for seq, m in self.stored[stream].items() if m.kind == "telemetry" for ts in m.ts_us}
        return sorted(rows)

    def events(self, stream: str) -> list[dict[str, Any]]:
        with self.lock:
            return [m.body for _, m in sorted(self.stored[stream].items()) if m.kind == "event"]
