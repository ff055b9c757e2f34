"""Driving a consumer (ortel ingest or the naive subscriber) through the broker and timing it.

A consumer is ready when a probe batch it was sent is visible in ``samples``: that proves subscription,
database connection and (for ingest) the device birth path, without sleeping on a guess. The load is then
published as fast as the bounded window allows and the clock stops when the last record is visible.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from bench.harness import BenchDb, BenchError, StackTimeout
from bench.mqtt_load import LoadPublisher
from bench.workload import Batch, Workload

__all__ = ["Probe", "TimedLoad", "timed_load", "wait_ready"]


@dataclass
class Probe:
    """A device of its own whose batches prove the consumer stores what it receives."""

    workload: Workload
    seq: int = field(default=0, init=False)

    @property
    def gateway_id(self) -> str:
        return self.workload.gateway_ids()[0]

    @property
    def device_id(self) -> str:
        return f"{self.gateway_id}-probe"

    def birth(self) -> tuple[str, bytes]:
        return self.workload.birth(self.gateway_id, self.device_id)

    def next_batch(self) -> Batch:
        self.seq += 1
        ts = (self.workload.start_us - 60_000_000 + self.seq * 1000,)
        values = tuple((1.0,) for _ in self.workload.metrics)
        return self.workload.make_batch(self.gateway_id, self.device_id, self.seq, ts, values,
                                        gateway_ts_us=ts[0])


def _probe_visible(conn: psycopg.Connection, device_id: str) -> bool:
    row = conn.execute("SELECT count(*) FROM samples WHERE device_id = %s", (device_id,)).fetchone()
    return bool(row and row[0])


def wait_ready(
    pub: LoadPublisher, db: BenchDb, probe: Probe, *, alive: Callable[[], None], timeout: float = 60.0
) -> None:
    """Send probe batches (one a second) until one is stored."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            batch = probe.next_batch()
            pub.publish(batch.topic, batch.payload)
            step_end = time.monotonic() + 1.0
            while time.monotonic() < step_end:
                alive()
                if _probe_visible(conn, probe.device_id):
                    return
                time.sleep(0.05)  # poll interval, bounded by step_end
    raise StackTimeout(f"consumer stored no probe batch within {timeout:.0f}s")


@dataclass(frozen=True)
class TimedLoad:
    elapsed_s: float
    publish_s: float  # how long publishing alone took (if close to elapsed_s, the publisher was the limit)
    samples: int

    @property
    def rate(self) -> float:
        return self.samples / self.elapsed_s


def timed_load(
    pub: LoadPublisher,
    db: BenchDb,
    batches: list[Batch],
    *,
    done_sql: str,
    done_params: tuple[object, ...],
    expected: int,
    alive: Callable[[], None],
    timeout: float,
) -> TimedLoad:
    """Publish ``batches``; stop the clock when ``done_sql`` (a count) reaches ``expected``."""
    samples = sum(b.n_samples for b in batches)
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        t0 = time.perf_counter()
        for b in batches:
            pub.publish(b.topic, b.payload)
        publish_s = time.perf_counter() - t0
        deadline = time.monotonic() + timeout
        while True:
            row = conn.execute(done_sql, done_params).fetchone()  # type: ignore[arg-type]
            if row and row[0] >= expected:
                break
            if time.monotonic() > deadline:
                raise StackTimeout(f"only {row[0] if row else 0}/{expected} stored after {timeout:.0f}s")
            alive()
            time.sleep(0.05)  # poll interval, bounded by the deadline above
        elapsed = time.perf_counter() - t0
    pub.drain()
    return TimedLoad(elapsed_s=elapsed, publish_s=publish_s, samples=samples)


def check_stored(db: BenchDb, probe: Probe, expected_samples: int) -> None:
    stored = db.scalar("SELECT count(*) FROM samples WHERE device_id <> %s", (probe.device_id,))
    if stored != expected_samples:
        raise BenchError(f"{stored} samples stored, {expected_samples} sent")
