"""Figure "ceiling": what the database itself can take, so every other throughput is a ratio to it.

The same rows the broker-side figures carry are loaded into the real ``samples`` table of a freshly migrated
database, as the ingest role, in transactions of ``chunk_rows`` rows, two ways:

- ``copy_plain``: ``COPY samples FROM STDIN`` (no duplicate handling: the absolute ceiling);
- ``copy_idempotent``: ``COPY`` into a temporary staging table, then ``INSERT INTO samples SELECT ... ON
  CONFLICT DO NOTHING`` (the idempotent path a redelivery-safe writer needs).

The COPY text is built before the clock starts: this measures the database, not Python.
"""

from __future__ import annotations

import functools
import time

import psycopg

from bench.context import BenchContext
from bench.harness import BenchDb, BenchError
from bench.results import Metric
from bench.workload import METRICS, Workload, copy_text

__all__ = ["copy_rate", "prepare_chunks", "run"]

_COLS = "(device_id, metric, ts, value, seq)"


@functools.lru_cache(maxsize=2)  # the same rows in every round of one bench run
def prepare_chunks(workload: Workload, rows: int, chunk_rows: int) -> tuple[list[bytes], int]:
    """COPY-text chunks of about ``chunk_rows`` rows carrying at least ``rows`` rows; returns (chunks, n)."""
    batches = list(workload.batches(workload.steps_for(rows)))
    per_chunk = max(1, chunk_rows // workload.samples_per_batch)
    chunks = [copy_text(batches[i : i + per_chunk], METRICS) for i in range(0, len(batches), per_chunk)]
    return chunks, len(batches) * workload.samples_per_batch


def copy_rate(db: BenchDb, chunks: list[bytes], n_rows: int, *, idempotent: bool) -> float:
    """Load ``chunks`` one transaction each; return rows/s (checked against the table afterwards)."""
    with psycopg.connect(db.writer_dsn) as conn:
        conn.execute(
            "CREATE TEMP TABLE bench_stage (LIKE samples INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        conn.commit()
        target = "bench_stage" if idempotent else "samples"
        t0 = time.perf_counter()
        for chunk in chunks:
            with conn.cursor() as cur:
                with cur.copy(f"COPY {target} {_COLS} FROM STDIN") as cp:
                    cp.write(chunk)
                if idempotent:
                    cur.execute(f"INSERT INTO samples {_COLS} SELECT {_COLS[1:-1]} FROM bench_stage "
                                "ON CONFLICT DO NOTHING")
            conn.commit()
        elapsed = time.perf_counter() - t0
    stored = db.scalar("SELECT count(*) FROM samples")
    if stored != n_rows:
        raise BenchError(f"ceiling: {stored} rows stored, {n_rows} loaded")
    return n_rows / elapsed


def run(ctx: BenchContext) -> list[Metric]:
    rows = ctx.size(quick=200_000, full=1_000_000)
    chunk_rows = 20_000
    workload = Workload(gateways=50, devices_per_gateway=20, start_us=ctx.start_us, tag="c")
    ctx.status("ceiling: building COPY data")
    chunks, n_rows = prepare_chunks(workload, rows, chunk_rows)
    plain: list[float] = []
    idem: list[float] = []
    for i in range(ctx.runs):
        for idempotent, out in ((True, idem), (False, plain)):
            ctx.status(f"ceiling: {'idempotent' if idempotent else 'plain'} COPY, run {i + 1}/{ctx.runs}")
            with ctx.stack.database() as db:
                out.append(copy_rate(db, chunks, n_rows, idempotent=idempotent))
            ctx.advance()
    note = f"{n_rows:,} rows, {chunk_rows:,} rows per transaction, {ctx.stack.variant} PostgreSQL"
    return [
        Metric("ceiling", "copy_idempotent", "rows/s", tuple(idem), note=note + "; staging + ON CONFLICT"),
        Metric("ceiling", "copy_plain", "rows/s", tuple(plain), note=note),
    ]
