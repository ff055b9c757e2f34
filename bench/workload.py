"""The synthetic hospital every figure measures: gateways x devices x metrics at a sample rate (pure).

The same ``Workload`` yields the wire payloads the broker-side figures publish and the exact ``samples`` rows
the COPY ceiling loads, so "ortel / ceiling" compares the same rows in the same schema. Values come from a
seeded generator; nothing here reads the clock (the start time is a field).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import wire
from wire import topics

__all__ = ["METRICS", "Batch", "Workload", "copy_text", "ts_text"]

# Five metrics of an electrosurgical unit; narrow rows, like the real thing.
METRICS = ("power_w", "voltage_v", "current_a", "impedance_ohm", "temp_c")


@dataclass(frozen=True, slots=True)
class Batch:
    """One pre-encoded TelemetryBatch and what it carries."""

    gateway_id: str
    device_id: str
    seq: int
    ts_us: tuple[int, ...]
    values: tuple[tuple[float, ...], ...]  # per metric, aligned with ts_us
    topic: str
    payload: bytes

    @property
    def n_samples(self) -> int:
        return len(self.ts_us) * len(self.values)


@dataclass(frozen=True)
class Workload:
    gateways: int
    devices_per_gateway: int
    start_us: int
    tag: str = "b"  # keeps ids of different runs apart on a shared broker
    rate_hz: float = 10.0
    rows_per_batch: int = 10  # timestamps per TelemetryBatch: 10 at 10 Hz = one batch per device per second
    metrics: tuple[str, ...] = METRICS
    seed: int = 7

    @property
    def n_devices(self) -> int:
        return self.gateways * self.devices_per_gateway

    @property
    def samples_per_batch(self) -> int:
        return self.rows_per_batch * len(self.metrics)

    @property
    def samples_per_s(self) -> float:
        return self.n_devices * self.rate_hz * len(self.metrics)

    def gateway_ids(self) -> list[str]:
        return [f"{self.tag}gw{g:02d}" for g in range(self.gateways)]

    def devices(self) -> list[tuple[str, str]]:
        return [(gw, f"{gw}-d{d:02d}") for gw in self.gateway_ids() for d in range(self.devices_per_gateway)]

    def steps_for(self, samples: int) -> int:
        """Batches per device needed to carry at least ``samples`` samples in total."""
        return max(1, math.ceil(samples / (self.n_devices * self.samples_per_batch)))

    def births(self) -> list[tuple[str, bytes]]:
        return [self.birth(gw, dev) for gw, dev in self.devices()]

    def birth(self, gateway_id: str, device_id: str) -> tuple[str, bytes]:
        """(topic, payload) of a retained DeviceBirth declaring this workload's metrics."""
        msg = wire.DeviceBirth(
            gateway_id=gateway_id,
            device_id=device_id,
            ts_us=self.start_us,
            device_type="esu",
            manufacturer="bench",
            metrics=tuple(wire.MetricDef(name=m, unit="1") for m in self.metrics),
        )
        return topics.device(gateway_id, device_id, topics.Kind.BIRTH), wire.encode(msg)

    def batches(self, steps: int, *, first_seq: int = 1) -> Iterator[Batch]:
        """``steps`` batches per device, in time order (all devices' step k before any step k+1)."""
        rng = random.Random(self.seed)
        period_us = round(1_000_000 / self.rate_hz)
        devices = self.devices()
        for k in range(steps):
            base = self.start_us + k * self.rows_per_batch * period_us
            ts = tuple(base + i * period_us for i in range(self.rows_per_batch))
            for gw, dev in devices:
                values = tuple(
                    tuple(round(rng.uniform(0.0, 400.0), 2) for _ in ts) for _ in self.metrics
                )
                yield self.make_batch(gw, dev, first_seq + k, ts, values, gateway_ts_us=ts[-1])

    def make_batch(
        self,
        gateway_id: str,
        device_id: str,
        seq: int,
        ts: tuple[int, ...],
        values: tuple[tuple[float, ...], ...],
        *,
        gateway_ts_us: int,
    ) -> Batch:
        msg = wire.TelemetryBatch(
            gateway_id=gateway_id,
            device_id=device_id,
            seq=seq,
            ts_us=ts,
            metrics=dict(zip(self.metrics, values, strict=True)),
            gateway_ts_us=gateway_ts_us,
        )
        topic = topics.device(gateway_id, device_id, topics.Kind.TELEMETRY)
        return Batch(gateway_id, device_id, seq, ts, values, topic, wire.encode(msg))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def ts_text(ts_us: int) -> str:
    return (_EPOCH + timedelta(microseconds=ts_us)).isoformat()  # exact, unlike a float timestamp


def copy_text(batches: list[Batch], metrics: tuple[str, ...] = METRICS) -> bytes:
    """The ``samples`` rows of ``batches`` in COPY text format (device_id, metric, ts, value, seq)."""
    lines: list[str] = []
    for b in batches:
        stamps = [ts_text(t) for t in b.ts_us]
        for metric, values in zip(metrics, b.values, strict=True):
            lines.extend(
                f"{b.device_id}\t{metric}\t{stamp}\t{value!r}\t{b.seq}"
                for stamp, value in zip(stamps, values, strict=True)
            )
    return ("\n".join(lines) + "\n").encode()
