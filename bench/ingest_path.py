"""Figures "ingest" and "scaling": broker -> ingest -> database, without the edge.

Pre-encoded TelemetryBatch payloads (the same rows as the ceiling) are published by an ``ortel-admin`` client
with a bounded in-flight window while 1, 2 or 4 ``ortel ingest`` processes share the subscription. The clock
runs from the first publish until the ``received`` ledger holds every batch (it is written in the same
transaction as the samples); the sample count is checked afterwards. CPU use of ingest, PostgreSQL and the
broker over the run is recorded to say which one is the bottleneck on this box.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from bench.context import BenchContext
from bench.drive import Probe, check_stored, timed_load, wait_ready
from bench.harness import BenchDb, BenchStack, poll
from bench.mqtt_load import LoadPublisher
from bench.procs import CpuMeter, Proc, ingest_env, postgres_pids
from bench.results import Metric
from bench.workload import Workload

__all__ = ["IngestRun", "ingest_group", "measure_ingest", "run", "run_scaling"]


@dataclass(frozen=True)
class IngestRun:
    rate: float
    publish_rate: float  # what the publisher alone managed (the load was never starved if >> rate)
    cores: dict[str, float]


@contextlib.contextmanager
def ingest_group(stack: BenchStack, db: BenchDb, n: int, name: str = "ingest", *,
                 argv: list[str] | None = None, extra_env: dict[str, str] | None = None) -> Iterator[list[Proc]]:
    """``n`` ingest processes in one shared-subscription group; yields the list of ``Proc``.

    ``argv`` replaces ``python -m ortel_cli ingest`` (the profile runs the same service under a profiler).
    """
    token = uuid.uuid4().hex[:6]
    workdir = stack.workdir(name)
    with contextlib.ExitStack() as es:
        procs = []
        for i in range(n):
            env = ingest_env(dsn=db.writer_dsn, port=stack.mqtt_port, password=stack.password,
                             client_id=f"bench-{token}-{i}", group=f"bench{token}") | (extra_env or {})
            log = workdir / f"ingest-{i}.log"
            proc = Proc(argv, log=log, env=env) if argv else Proc.ortel("ingest", log=log, env=env)
            procs.append(es.enter_context(proc))
        yield procs


def publish_births(pub: LoadPublisher, db: BenchDb, workload: Workload, probe: Probe,
                   alive: Callable[[], None]) -> None:
    """Retained births of every device (and the probe), then wait until ingest stored them all."""
    pub.publish_all([*workload.births(), probe.birth()], retain=True)
    wait_ready(pub, db, probe, alive=alive)
    n = workload.n_devices + 1
    poll(lambda: int(db.scalar("SELECT count(*) FROM devices") or 0) >= n,  # type: ignore[call-overload]
         timeout=60, what="every device birth stored")


def clear_births(stack: BenchStack, workload: Workload, probe: Probe) -> None:
    """Remove this run's retained births so later runs' ingest does not receive them."""
    with LoadPublisher(port=stack.mqtt_port, password=stack.password) as pub:
        pub.publish_all([(t, b"") for t, _ in [*workload.births(), probe.birth()]], retain=True)
        pub.drain()


def measure_ingest(stack: BenchStack, workload: Workload, samples: int, *, n_procs: int = 1) -> IngestRun:
    """Samples/s through ``n_procs`` ingest processes, first publish to last batch in the ledger."""
    batches = list(workload.batches(workload.steps_for(samples)))
    expected = sum(b.n_samples for b in batches)
    probe = Probe(workload)
    with stack.database() as db:
        try:
            with ingest_group(stack, db, n_procs) as procs, \
                    LoadPublisher(port=stack.mqtt_port, password=stack.password, window=1000) as pub:

                def alive() -> None:
                    for p in procs:
                        p.check_alive()

                publish_births(pub, db, workload, probe, alive)
                assert stack.pg is not None and stack.broker is not None and stack.broker.proc is not None
                broker_pid = stack.broker.proc.pid
                meter = CpuMeter({
                    "ingest_cores": lambda: [p.pid for p in procs],
                    "postgres_cores": lambda: postgres_pids(stack.pg.data),  # type: ignore[union-attr]
                    "broker_cores": lambda: [broker_pid],
                    "load_generator_cores": lambda: [os.getpid()],
                })
                meter.start()
                load = timed_load(
                    pub, db, batches,
                    done_sql="SELECT count(*) FROM received WHERE stream <> %s",
                    done_params=(probe.device_id,), expected=len(batches), alive=alive, timeout=900,
                )
                cores = meter.stop()
            check_stored(db, probe, expected)
        finally:
            clear_births(stack, workload, probe)
    return IngestRun(rate=load.rate, publish_rate=load.samples / load.publish_s, cores=cores)


def _cores_summary(runs: list[IngestRun]) -> dict[str, float]:
    keys = runs[0].cores.keys() if runs else []
    return {k: round(sorted(r.cores[k] for r in runs)[len(runs) // 2], 2) for k in keys}


def hospital(ctx: BenchContext, tag: str) -> Workload:
    """50 ORs x 20 devices x 5 metrics at 10 Hz, one batch per device per second (fewer ORs when shrunk)."""
    gateways = max(1, round(50 * min(1.0, ctx.scale)))
    return Workload(gateways=gateways, devices_per_gateway=20, start_us=ctx.start_us, tag=tag)


def run(ctx: BenchContext) -> list[Metric]:
    samples = ctx.size(quick=200_000, full=1_000_000, minimum=2_000)
    workload = hospital(ctx, "i")
    runs: list[IngestRun] = []
    for i in range(ctx.runs):
        ctx.status(f"ingest: broker -> 1 ingest -> db, run {i + 1}/{ctx.runs}")
        runs.append(measure_ingest(ctx.stack, workload, samples))
        ctx.advance()
    note = (f"{samples:,} samples, {workload.n_devices} devices, {workload.samples_per_batch} samples per "
            "batch, publish window 1000")
    return [
        Metric("ingest", "samples_per_s", "samples/s", tuple(r.rate for r in runs), note=note,
               extra={"cpu_cores_median": _cores_summary(runs)}),
        Metric("ingest", "publisher_samples_per_s", "samples/s", tuple(r.publish_rate for r in runs),
               note="rate at which the load generator handed the batches to the broker"),
    ]


def run_scaling(ctx: BenchContext) -> list[Metric]:
    samples = ctx.size(quick=200_000, full=1_000_000, minimum=2_000)
    workload = hospital(ctx, "s")
    out: dict[int, list[IngestRun]] = {1: [], 2: [], 4: []}
    for i in range(ctx.runs):
        for n, results in out.items():
            ctx.status(f"scaling: {n} ingest process(es), run {i + 1}/{ctx.runs}")
            results.append(measure_ingest(ctx.stack, workload, samples, n_procs=n))
            ctx.advance()
    return [
        Metric("scaling", f"ingest_x{n}", "samples/s", tuple(r.rate for r in runs),
               note=f"{n} ingest process(es) on one shared subscription, {samples:,} samples",
               extra={"cpu_cores_median": _cores_summary(runs)})
        for n, runs in out.items()
    ]
