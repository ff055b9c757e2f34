"""Figure "e2e": simulator load -> edge agent -> Mosquitto -> ingest -> PostgreSQL, samples/s stored.

Each gateway is one ``ortel`` edge agent process (``bench.agent_runner``) with 20 simulated devices (the
simulators' device models at 10 Hz, families whose metrics are all measured continuously, 4 per reading).
Their lines are generated before the clock starts and fed as fast as each agent takes them: parse, units,
pseudonyms, batching, fsync'd outbox, publish with the agent's window, then one ingest process stores them.
The clock runs from the go signal until the ``received`` ledger accounts for every sample; the agents
exit by themselves once ingest's watermarks have drained their outboxes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.context import BenchContext
from bench.harness import BenchDb, BenchStack, StackTimeout, poll
from bench.ingest_path import ingest_group
from bench.procs import CpuMeter, Proc, postgres_pids
from bench.results import Metric

__all__ = ["FAMILIES", "GatewayLoad", "agent_env", "gateway_load", "measure_e2e", "run"]

FAMILIES = ("insufflator", "suction_irrigation", "surgical_robot", "anaesthesia_workstation")
DEVICES_PER_GATEWAY = 20


@dataclass(frozen=True)
class GatewayLoad:
    gateway_id: str
    file: Path
    n_hello: int
    n_lines: int
    samples: int


@functools.lru_cache(maxsize=8)  # the same lines in every round of one bench run
def gateway_load(directory: Path, gateway_id: str, *, seconds: float, start_us: int, seed: int) -> GatewayLoad:
    """Write one gateway's device lines (hellos first, then readings in time order) to an NDJSON file."""
    import numpy as np

    from simulators.devices import make_device
    from simulators.devices.base import Segment
    from wire.device import Sample, encode_line

    end_us = start_us + int(seconds * 1_000_000)
    models = [make_device(FAMILIES[i % len(FAMILIES)], device_id=f"{gateway_id}-d{i:02d}",
                          rng=np.random.default_rng(seed * 100 + i), rate_hz=10.0)
              for i in range(DEVICES_PER_GATEWAY)]
    hellos = [m.hello() for m in models]
    readings = [line for m in models for line in m.lines([Segment(start_us, end_us, activity=0.6)])]
    readings.sort(key=lambda line: line.ts_us)
    samples = sum(sum(v is not None for v in r.values.values()) for r in readings if isinstance(r, Sample))
    path = directory / f"{gateway_id}.ndjson"
    with path.open("wb") as fh:
        for line in [*hellos, *readings]:
            fh.write(encode_line(line))
    return GatewayLoad(gateway_id, path, len(hellos), len(hellos) + len(readings), samples)


def agent_env(stack: BenchStack, gateway_id: str, outbox: Path, **extra: str) -> dict[str, str]:
    return {
        "ORTEL_AGENT_GATEWAY_ID": gateway_id,
        "ORTEL_AGENT_ROOM": f"OR-{gateway_id}",
        "ORTEL_AGENT_MQTT__HOST": "127.0.0.1",
        "ORTEL_AGENT_MQTT__PORT": str(stack.mqtt_port),
        "ORTEL_AGENT_MQTT__PASSWORD": stack.password,
        "ORTEL_AGENT_OUTBOX_PATH": str(outbox),
        "ORTEL_AGENT_EXIT_WHEN_DRAINED": "true",
        "ORTEL_AGENT_LOG_LEVEL": "warning",
        **extra,
    }


def agent_proc(stack: BenchStack, load: GatewayLoad, workdir: Path, *, rate: float | None = None,
               **env: str) -> Proc:
    argv = [sys.executable, "-m", "bench.agent_runner", str(load.file), str(load.n_hello),
            *([str(rate)] if rate else [])]
    outbox = workdir / f"{load.gateway_id}-outbox.sqlite3"
    return Proc(argv, log=workdir / f"agent-{load.gateway_id}.log",
                env=agent_env(stack, load.gateway_id, outbox, **env))


def stored_samples(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT coalesce(sum(n_samples), 0) FROM received").fetchone()
    return int(row[0]) if row else 0


def wait_births(db: BenchDb, n: int, alive: object) -> None:
    def born() -> bool:
        alive()  # type: ignore[operator]
        return int(db.scalar("SELECT count(*) FROM devices") or 0) >= n  # type: ignore[call-overload]

    poll(born, timeout=90, what=f"{n} device births stored")


@dataclass(frozen=True)
class E2eRun:
    rate: float
    samples: int
    elapsed_s: float
    cores: dict[str, float]


def measure_e2e(stack: BenchStack, loads: list[GatewayLoad], *, timeout: float = 900) -> E2eRun:
    expected = sum(g.samples for g in loads)
    workdir = stack.workdir("e2e")
    for g in loads:
        stack.add_gateway(g.gateway_id)
    with stack.database() as db, ingest_group(stack, db, 1, "e2e") as ingest, contextlib.ExitStack() as es:
        agents = [es.enter_context(agent_proc(stack, g, workdir)) for g in loads]

        def alive() -> None:
            # Agents are not polled here: reaping one would lose its CPU time; a finished agent is a zombie
            # until the end, when every exit code is checked.
            ingest[0].check_alive()

        wait_births(db, DEVICES_PER_GATEWAY * len(loads), alive)
        assert stack.pg is not None
        meter = CpuMeter({
            "agents_cores": lambda: [a.pid for a in agents],
            "ingest_cores": lambda: [ingest[0].pid],
            "postgres_cores": lambda: postgres_pids(stack.pg.data),  # type: ignore[union-attr]
            "broker_cores": lambda: [stack.broker.proc.pid],  # type: ignore[union-attr]
            "bench_cores": lambda: [os.getpid()],
        })
        meter.start()
        with psycopg.connect(db.dsn(), autocommit=True) as conn:
            before = stored_samples(conn)
            t0 = time.perf_counter()
            for a in agents:
                a.send(signal.SIGUSR1)  # go: the agents start reading their devices' lines
            deadline = time.monotonic() + timeout
            while (got := stored_samples(conn)) < expected:
                if time.monotonic() > deadline:
                    raise StackTimeout(f"e2e: {got}/{expected} samples stored after {timeout:.0f}s")
                alive()
                time.sleep(0.1)  # poll interval, bounded by the deadline above
        elapsed = time.perf_counter() - t0
        cores = meter.stop()
        for a in agents:
            if a.proc is not None and a.proc.poll() not in (None, 0):
                a.check_alive()
        if before:
            raise StackTimeout(f"e2e: {before} samples stored before the go signal")
        stored = db.scalar("SELECT count(*) FROM samples")
    if stored != expected:
        raise StackTimeout(f"e2e: {stored} sample rows for {expected} samples sent")
    return E2eRun(rate=expected / elapsed, samples=expected, elapsed_s=elapsed, cores=cores)


def run(ctx: BenchContext) -> list[Metric]:
    n_gateways = 2
    seconds = ctx.seconds(quick=180.0, full=600.0)  # device time per gateway: 20 devices x 10 Hz
    assert ctx.stack.root is not None
    workdir = ctx.stack.root / "work" / "e2e-lines"
    workdir.mkdir(parents=True, exist_ok=True)
    ctx.status("e2e: generating simulator load")
    loads = [gateway_load(workdir, f"e2egw{g}", seconds=seconds, start_us=ctx.start_us, seed=g)
             for g in range(n_gateways)]
    runs = []
    for i in range(ctx.runs):
        ctx.status(f"e2e: {n_gateways} agents -> broker -> ingest -> db, run {i + 1}/{ctx.runs}")
        runs.append(measure_e2e(ctx.stack, loads))
        ctx.advance()
    samples = runs[0].samples
    lines = sum(g.n_lines for g in loads)
    cores = {k: round(sorted(r.cores[k] for r in runs)[len(runs) // 2], 2) for k in runs[0].cores}
    note = (f"{n_gateways} agent processes x {DEVICES_PER_GATEWAY} simulated devices, {lines:,} lines, "
            f"{samples:,} samples ({samples / max(lines, 1):.1f} per line), fed as fast as the agents take them")
    return [Metric("e2e", "samples_per_s", "samples/s", tuple(r.rate for r in runs), note=note,
                   extra={"cpu_cores_median": cores})]
