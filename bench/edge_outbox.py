"""Edge figure, part 1: how fast the agent's SQLite outbox accepts records durably (WAL, synchronous=FULL).

Drafts shaped like the agent's defaults (a batch sealed every 0.2 s at 10 Hz: 2 rows x 5 metrics = 10
samples) are appended ``per_txn`` at a time, one fsync'd transaction per append, as the agent does when a flush
seals every device's batch at once.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.context import BenchContext
from bench.results import Metric
from bench.workload import METRICS

__all__ = ["enqueue_rate", "run"]


def _drafts(n_devices: int, rows: int, steps: int, start_us: int) -> list[list[object]]:
    from edge_agent.pipeline import PRIORITY_TELEMETRY, Draft
    from wire import TelemetryBatch, topics

    groups = []
    for k in range(steps):
        ts = tuple(start_us + (k * rows + i) * 100_000 for i in range(rows))
        group = []
        for d in range(n_devices):
            dev = f"edge-d{d:02d}"
            msg = TelemetryBatch(gateway_id="edge-gw", device_id=dev, seq=1, ts_us=ts,
                                 metrics={m: tuple(float(i) for i in range(rows)) for m in METRICS},
                                 gateway_ts_us=ts[-1])
            group.append(Draft(stream=dev, topic=topics.device("edge-gw", dev, topics.Kind.TELEMETRY),
                               priority=PRIORITY_TELEMETRY, created_us=ts[-1], message=msg))
        groups.append(group)
    return groups


def enqueue_rate(directory: Path, *, records: int, per_txn: int, rows: int = 2, start_us: int) -> tuple[float, float]:
    """(records/s, samples/s) appended to a fresh outbox."""
    from edge_agent.outbox import Outbox

    steps = max(1, records // per_txn)
    groups = _drafts(per_txn, rows, steps, start_us)

    def no_drop(run: object, now_us: int) -> object:
        raise AssertionError("the bench outbox is large enough never to drop")

    with Outbox(path=directory / "outbox.sqlite3", max_bytes=2**40, max_age_us=2**62,
                report_drop=no_drop) as outbox:  # type: ignore[arg-type]
        t0 = time.perf_counter()
        for group in groups:
            outbox.append(group, start_us)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - t0
    n = steps * per_txn
    return n / elapsed, n * rows * len(METRICS) / elapsed


def run(ctx: BenchContext) -> list[Metric]:
    records = ctx.size(quick=4_000, full=20_000, minimum=40)
    out: dict[int, list[tuple[float, float]]] = {1: [], 20: []}
    for i in range(ctx.runs):
        for per_txn, results in out.items():
            ctx.status(f"edge: outbox enqueue, {per_txn} record(s) per transaction, run {i + 1}/{ctx.runs}")
            with tempfile.TemporaryDirectory(prefix="ortel-bench-outbox-") as tmp:
                n = records if per_txn > 1 else max(10, records // 10)
                results.append(enqueue_rate(Path(tmp), records=n, per_txn=per_txn, start_us=ctx.start_us))
    metrics = []
    for per_txn, runs in out.items():
        note = f"{per_txn} record(s) of 10 samples per fsync'd transaction (SQLite WAL, synchronous=FULL)"
        metrics.append(Metric("edge", f"outbox_records_per_s_txn{per_txn}", "records/s",
                              tuple(r for r, _ in runs), note=note))
        metrics.append(Metric("edge", f"outbox_samples_per_s_txn{per_txn}", "samples/s",
                              tuple(s for _, s in runs), note=note))
    return metrics
