"""Figure "latency": device timestamp -> row visible in PostgreSQL, at a paced offered load.

Devices read 5 metrics at 10 Hz; like the edge agent with its defaults, each device's readings are sealed into
a batch every 0.2 s (2 rows, 10 samples) and published at once, devices staggered across the period (real
devices are not synchronised). A poller thread reads, every ``POLL_S``, the newest visible timestamp of a
few tracked devices straight from the ``samples`` primary key. Two latencies are kept:

- per reading, from its device timestamp (includes the up-to-0.1 s wait for the batch's second row);
- per batch, from its newest reading, i.e. from the publish: broker + ingest batching + commit.

Resolution: the poll interval plus one query. A load is "sustained" when the publisher kept its schedule
(lag < 0.5 s), every tracked batch became visible and p99 < 1 s; the highest sustained offered load is
reported with its percentiles.
"""

from __future__ import annotations

import collections
import statistics
import threading
import time
from dataclasses import dataclass, field

import orjson
import psycopg

from bench.context import BenchContext
from bench.drive import Probe
from bench.harness import BenchDb, BenchStack
from bench.ingest_path import clear_births, ingest_group, publish_births
from bench.mqtt_load import LoadPublisher
from bench.results import Metric
from bench.workload import Workload

__all__ = ["LatencyRun", "measure_latency", "percentile", "run"]

POLL_S = 0.01
TRACKED = 20
ROWS_PER_BATCH = 2  # the agent's default: a batch sealed every 0.2 s at 10 Hz


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


@dataclass
class LatencyRun:
    offered: float
    achieved_publish: float
    lag_s: float
    latencies_ms: list[float]
    seal_ms: list[float]
    unseen: int

    def pct(self, q: float) -> float:
        return percentile(self.latencies_ms, q)

    def seal_pct(self, q: float) -> float:
        return percentile(self.seal_ms, q)

    @property
    def sustained(self) -> bool:
        return self.lag_s < 0.5 and self.unseen == 0 and self.pct(99) < 1000


@dataclass
class _Tracker:
    """Which tracked readings are not visible yet; filled by the publisher, drained by the poller."""

    devices: list[str]
    pending: dict[str, collections.deque[list[int]]] = field(init=False)
    latencies_ms: list[float] = field(default_factory=list)  # per reading, from its device timestamp
    seal_ms: list[float] = field(default_factory=list)  # per batch, from its newest reading (= publish)
    count_after_us: int = 0  # readings before this device time are warm-up, not counted
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.pending = {d: collections.deque() for d in self.devices}

    def sent(self, device: str, ts_us: list[int]) -> None:
        with self.lock:
            self.pending[device].append(ts_us)

    def seen(self, device: str, max_ts_us: int, now_us: int) -> None:
        with self.lock:
            q = self.pending[device]
            while q and q[0][-1] <= max_ts_us:
                batch = q.popleft()
                if batch[0] >= self.count_after_us:
                    self.latencies_ms.extend((now_us - ts) / 1000 for ts in batch)
                    self.seal_ms.append((now_us - batch[-1]) / 1000)

    def outstanding(self) -> int:
        with self.lock:
            return sum(len(q) for q in self.pending.values())


def _poll(db: BenchDb, tracker: _Tracker) -> None:
    sql = ("SELECT d, (SELECT (extract(epoch FROM max(ts)) * 1e6)::bigint FROM samples s"
           " WHERE s.device_id = d AND s.metric = 'power_w') FROM unnest(%s::text[]) AS d")
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        while not tracker.stop.is_set():
            rows = conn.execute(sql, (tracker.devices,)).fetchall()
            now_us = time.time_ns() // 1000
            for device, max_ts in rows:
                if max_ts is not None:
                    tracker.seen(device, max_ts, now_us)
            tracker.stop.wait(POLL_S)


def _payload(gw: str, dev: str, seq: int, ts: list[int], metrics: tuple[str, ...]) -> bytes:
    # The wire encoding of a TelemetryBatch, built without pydantic to keep the load generator cheap.
    values = [float(seq % 400)] * len(ts)
    return orjson.dumps({"gateway_id": gw, "device_id": dev, "seq": seq, "ts_us": ts,
                         "metrics": dict.fromkeys(metrics, values), "gateway_ts_us": ts[-1], "v": 1})


def _publish_schedule(
    pub: LoadPublisher, workload: Workload, tracker: _Tracker, duration_s: float
) -> tuple[float, float]:
    """Publish every device's readings for ``duration_s``, one batch of ``rows_per_batch`` rows per device per
    batch period, staggered across devices; return (messages/s achieved, worst lag s)."""
    devices = workload.devices()
    rows = workload.rows_per_batch
    row_us = round(1_000_000 / workload.rate_hz)
    period = rows / workload.rate_hz
    n = len(devices)
    tracked = set(tracker.devices)
    t0 = time.monotonic() + 0.2
    ticks = round(duration_s / period)
    worst = 0.0
    sent = 0
    for k in range(ticks):
        for j, (gw, dev) in enumerate(devices):
            due = t0 + k * period + period * j / n
            delay = due - time.monotonic()
            if delay > 0.002:
                time.sleep(delay)  # pacing the offered load, not synchronising on an event
            elif delay < 0:
                worst = max(worst, -delay)
            now_us = time.time_ns() // 1000
            ts = [now_us - (rows - 1 - i) * row_us for i in range(rows)]  # read at 10 Hz, sealed at the last
            if dev in tracked:
                tracker.sent(dev, ts)
            pub.publish(f"ortel/v1/{gw}/dev/{dev}/telemetry", _payload(gw, dev, k + 1, ts, workload.metrics))
            sent += 1
    return sent / max(time.monotonic() - t0, 1e-6), worst


def measure_latency(stack: BenchStack, rate: float, duration_s: float, start_us: int, *,
                    rows_per_batch: int = ROWS_PER_BATCH, ingest_age_s: float | None = None) -> LatencyRun:
    devices = max(1, round(rate / (10 * 5)))
    gateways = max(1, -(-devices // 20))
    workload = Workload(gateways=gateways, devices_per_gateway=devices // gateways, start_us=start_us,
                        tag=f"l{int(rate) // 1000}k", rows_per_batch=rows_per_batch)
    probe = Probe(workload)
    all_devices = [d for _, d in workload.devices()]
    tracker = _Tracker(all_devices[:: max(1, len(all_devices) // TRACKED)][:TRACKED])
    with stack.database() as db:
        try:
            extra = {"ORTEL_INGEST_BATCH_MAX_AGE_S": str(ingest_age_s)} if ingest_age_s else None
            with ingest_group(stack, db, 1, "latency", extra_env=extra) as procs, \
                    LoadPublisher(port=stack.mqtt_port, password=stack.password, window=2000) as pub:
                publish_births(pub, db, workload, probe, procs[0].check_alive)
                tracker.count_after_us = time.time_ns() // 1000 + int(min(1.0, duration_s * 0.2) * 1e6)
                poller = threading.Thread(target=_poll, args=(db, tracker), name="latency-poll", daemon=True)
                poller.start()
                try:
                    achieved, lag = _publish_schedule(pub, workload, tracker, duration_s)
                    deadline = time.monotonic() + 10
                    while tracker.outstanding() and time.monotonic() < deadline:
                        procs[0].check_alive()
                        time.sleep(0.05)  # poll interval, bounded by the deadline above
                finally:
                    tracker.stop.set()
                    poller.join(5)
        finally:
            clear_births(stack, workload, probe)
    return LatencyRun(offered=workload.samples_per_s, achieved_publish=achieved * workload.samples_per_batch, lag_s=lag,
                      latencies_ms=tracker.latencies_ms, seal_ms=tracker.seal_ms, unseen=tracker.outstanding())


def _metrics_for(runs: list[LatencyRun], label: str, rows: int) -> list[Metric]:
    note = (f"offered {runs[0].offered:,.0f} samples/s in batches of {rows} rows ({rows * 5} samples); "
            f"sustained in {sum(r.sustained for r in runs)}/{len(runs)} runs; load generator achieved "
            f"{statistics.median(r.achieved_publish for r in runs):,.0f} samples/s")
    out = [Metric("latency", f"p{q}_ms_{label}", "ms", tuple(r.pct(q) for r in runs), note=note)
           for q in (50, 95, 99)]
    out.append(Metric("latency", f"p99_from_publish_ms_{label}", "ms", tuple(r.seal_pct(99) for r in runs),
                      note="per batch, from its newest reading (= publish): broker + ingest batching + commit"))
    return out


# (offered samples/s, rows per batch, ingest batch_max_age_s or None for its default 0.1 s): the agent's default
# batching at three loads, 50k in 0.5 s batches, and 10k with ingest committing at least every 50 ms.
CONFIGS = ((10_000.0, 2, None), (25_000.0, 2, None), (50_000.0, 2, None), (50_000.0, 5, None), (10_000.0, 2, 0.05))
QUICK_CONFIGS = ((10_000.0, 2, None), (50_000.0, 2, None), (50_000.0, 5, None))


def run(ctx: BenchContext) -> list[Metric]:
    duration = ctx.seconds(quick=3.0, full=10.0)
    runs = 1 if ctx.quick else ctx.runs  # --quick: each load once
    results: dict[tuple[float, int, float | None], list[LatencyRun]] = {}
    for rate, rows, age in QUICK_CONFIGS if ctx.quick else CONFIGS:
        for i in range(runs):
            ctx.status(f"latency: {rate / 1000:.0f}k samples/s in {rows}-row batches, run {i + 1}/{runs}")
            results.setdefault((rate, rows, age), []).append(
                measure_latency(ctx.stack, rate, duration, ctx.start_us, rows_per_batch=rows, ingest_age_s=age))
            ctx.advance()
    out: list[Metric] = []
    for (rate, rows, age), got in results.items():
        label = f"{rate / 1000:.0f}k_{rows}rows" + (f"_ingest_age_{age * 1000:.0f}ms" if age else "")
        out += _metrics_for(got, label, rows)
    # the headline uses ingest's default settings only
    default = {k: v for k, v in results.items() if k[2] is None}
    sustained = [k for k, got in default.items() if sum(r.sustained for r in got) * 2 > len(got)]
    top = max(sustained, key=lambda k: (k[0], -k[1])) if sustained else next(iter(default))
    out.append(Metric(
        "latency", "p99_ms_at_max", "ms", tuple(r.pct(99) for r in results[top]),
        note=f"highest offered load sustained in most runs (ingest defaults): {top[0]:,.0f} samples/s in "
        f"{top[1]}-row batches" + ("" if sustained else " (none sustained; lowest load shown)"),
        extra={"rate": top[0], "rows_per_batch": top[1], "sustained": [list(k[:2]) for k in sustained]},
    ))
    return out
