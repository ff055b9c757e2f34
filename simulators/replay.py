"""``ortel replay``: republish a recording with its original relative timing (or flat out).

Deterministic: messages go out in file order; optional message faults use a seeded generator. Publishes as
an operator (``ortel-admin``), waiting for every PUBACK and failing on any refusal.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simulators.faults import FaultSpec, message_faults
from simulators.mqtt import Broker, Publisher, connect
from simulators.recording import read_recording

__all__ = ["ReplayStats", "count_records", "replay"]


@dataclass(frozen=True, slots=True)
class ReplayStats:
    messages: int
    seconds: float


def count_records(path: str | Path) -> int:
    _, records = read_recording(path)
    return sum(1 for _ in records)


def replay(
    path: str | Path,
    *,
    broker: Broker,
    speed: float | None = 1.0,
    faults: Sequence[FaultSpec] = (),
    seed: int = 0,
    stop: threading.Event | None = None,
    progress: Callable[[int], None] | None = None,
    window: int = 500,
) -> ReplayStats:
    """``speed=None``: as fast as the broker acknowledges."""
    stop = stop or threading.Event()
    _, records = read_recording(path)
    records = message_faults(records, faults, np.random.default_rng([seed, 0xFA17]))
    started = time.monotonic()
    first_us: int | None = None
    origin = started
    with connect(broker, inflight=window) as client:
        pub = Publisher(client, window=window)
        for rec in records:
            if stop.is_set():
                break
            if first_us is None:  # the pacing clock starts at the first message, after the connection is up
                first_us, origin = rec.t_us, time.monotonic()
            if speed is not None:
                delay = origin + (rec.t_us - first_us) / 1e6 / speed - time.monotonic()
                if delay > 0 and stop.wait(delay):  # keeps the recorded pacing; a stop interrupts it
                    break
            pub.publish(rec.topic, rec.payload, qos=rec.qos, retain=rec.retain)
            if progress is not None:
                progress(pub.sent)
        pub.wait()
    return ReplayStats(pub.sent, time.monotonic() - started)
