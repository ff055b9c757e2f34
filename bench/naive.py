"""Figure "naive": the tutorial subscriber (``bench/naive_subscriber.py``) on the same input as ingest."""

from __future__ import annotations

import sys

from bench.context import BenchContext
from bench.drive import Probe, check_stored, timed_load, wait_ready
from bench.harness import INGEST_USER, REPO_ROOT, BenchStack
from bench.mqtt_load import LoadPublisher
from bench.procs import Proc
from bench.results import Metric
from bench.workload import Workload

__all__ = ["measure_naive", "run"]

SCRIPT = REPO_ROOT / "bench" / "naive_subscriber.py"


def measure_naive(stack: BenchStack, workload: Workload, samples: int) -> float:
    """Samples/s stored by the naive subscriber, publish of the first batch to the last row visible."""
    batches = list(workload.batches(workload.steps_for(samples)))
    expected = sum(b.n_samples for b in batches)
    probe = Probe(workload)
    with stack.database() as db:
        argv = [sys.executable, str(SCRIPT), "127.0.0.1", str(stack.mqtt_port), INGEST_USER, stack.password,
                db.writer_dsn]
        with Proc(argv, log=stack.workdir("naive") / "naive.log") as proc, \
                LoadPublisher(port=stack.mqtt_port, password=stack.password) as pub:
            wait_ready(pub, db, probe, alive=proc.check_alive)
            load = timed_load(
                pub, db, batches,
                done_sql="SELECT count(*) FROM samples WHERE device_id <> %s",
                done_params=(probe.device_id,),
                expected=expected, alive=proc.check_alive, timeout=600,
            )
        check_stored(db, probe, expected)
    return load.rate


def run(ctx: BenchContext) -> list[Metric]:
    samples = ctx.size(quick=5_000, full=30_000, minimum=500)
    workload = Workload(gateways=2, devices_per_gateway=20, start_us=ctx.start_us, tag="n")
    rates = []
    for i in range(ctx.runs):
        ctx.status(f"naive: one INSERT + commit per sample, run {i + 1}/{ctx.runs}")
        rates.append(measure_naive(ctx.stack, workload, samples))
        ctx.advance()
    note = (f"{samples:,} samples in batches of {workload.samples_per_batch}; paho subscriber, one autocommit "
            "INSERT per sample")
    return [Metric("naive", "samples_per_s", "samples/s", tuple(rates), note=note)]
