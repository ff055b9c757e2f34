"""``ortel record``: capture MQTT traffic to a recording file.

Subscribes (QoS 1, retain as published) to ``ortel/#`` by default and writes every message with its arrival
time. Commit watermarks (``.../ack/...``) are ingest's replies, not traffic: skipped unless asked for, so a
replay never speaks for ingest. Messages the broker had retained before the recording started are skipped
unless ``include_retained``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from simulators.mqtt import Broker, connect, subscribe
from simulators.recording import Record, RecordingWriter

__all__ = ["RecordStats", "record"]


@dataclass(frozen=True, slots=True)
class RecordStats:
    messages: int
    seconds: float


def record(
    path: str | Path,
    *,
    broker: Broker,
    stop: threading.Event,
    topic: str = "ortel/#",
    include_acks: bool = False,
    include_retained: bool = False,
    max_messages: int | None = None,
    duration_s: float | None = None,
    ready: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> RecordStats:
    """Record until ``stop`` is set, ``duration_s`` passes or ``max_messages`` arrived."""
    inbox: queue.Queue[Record] = queue.Queue()

    def on_message(msg: mqtt.MQTTMessage) -> None:
        if not include_acks and "/ack/" in msg.topic:
            return
        inbox.put(Record(time.time_ns() // 1000, msg.topic, bytes(msg.payload), msg.qos, bool(msg.retain)))

    started = time.monotonic()
    deadline = started + duration_s if duration_s is not None else None
    header = {"source": "record", "topic": topic, "broker": f"{broker.host}:{broker.port}"}
    # connect first: a refused login leaves no empty file behind
    with connect(broker, on_message=on_message) as client, RecordingWriter(path, header=header) as writer:
        subscribe(client, topic, retained=include_retained)
        if ready is not None:
            ready()
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            if max_messages is not None and writer.count >= max_messages:
                break
            try:
                rec = inbox.get(timeout=0.1)
            except queue.Empty:
                if writer.pending:
                    writer.flush()  # a quiet moment: make what we have readable even if we are killed
                continue
            writer.write(rec)
            if progress is not None:
                progress(writer.count)
        client.unsubscribe(topic)
        while not inbox.empty() and (max_messages is None or writer.count < max_messages):
            writer.write(inbox.get_nowait())  # what arrived before the stop is kept
        return RecordStats(writer.count, time.monotonic() - started)
