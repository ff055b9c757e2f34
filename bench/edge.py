"""Figure "edge": outbox enqueue rate, backlog replay after a broker outage, agent RSS and CPU under load.

- Enqueue: ``bench.edge_outbox`` (the SQLite outbox alone).
- Replay: one agent (20 simulated devices at 10 Hz, fed in real time) and one ingest run; the broker is
  stopped for ``outage_s`` while the devices keep talking, then started again. Records the agent held at
  reconnect are re-sent with ``replay=True`` at its ``replay_rate`` (default 2,000 records/s) and ingest's
  ledger says when each was stored: replay rate = replayed samples / (last - first replayed commit).
  ``reconnect_cap_s`` is set to 2 s so the measured interval is replay, not backoff.
- Resources: the same agent fed at 1k and 10k samples/s (20 devices at 2.5 or 25 readings/s of 4 metrics),
  RSS (max) and CPU (cores) over a steady window. The feeder runs inside the agent process, so its small
  cost is included.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import psycopg

from bench.context import BenchContext
from bench.edge_outbox import run as run_enqueue
from bench.end_to_end import DEVICES_PER_GATEWAY, agent_proc, gateway_load, wait_births
from bench.harness import BenchStack, StackTimeout, poll
from bench.ingest_path import ingest_group
from bench.procs import cpu_seconds, rss_bytes
from bench.results import Metric

__all__ = ["measure_replay", "measure_resources", "run"]

SAMPLES_PER_LINE = 4  # the end-to-end families measure 4 metrics per reading


@dataclass(frozen=True)
class ReplayRun:
    samples: int
    records: int
    seconds: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else float("nan")

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else float("nan")


def measure_replay(stack: BenchStack, *, outage_s: float, start_us: int, seed: int) -> ReplayRun:
    assert stack.broker is not None
    workdir = stack.workdir("replay")
    gw = f"rpgw{seed}"
    stack.add_gateway(gw)
    line_rate = DEVICES_PER_GATEWAY * 10.0
    load = gateway_load(workdir, gw, seconds=outage_s + 30, start_us=start_us, seed=seed)
    with stack.database() as db, ingest_group(stack, db, 1, "replay") as ingest, \
            agent_proc(stack, load, workdir, rate=line_rate, ORTEL_AGENT_RECONNECT_CAP_S="2",
                       ORTEL_AGENT_EXIT_WHEN_DRAINED="false") as agent:
        def alive() -> None:
            ingest[0].check_alive()
            agent.check_alive()

        wait_births(db, DEVICES_PER_GATEWAY, alive)
        agent.send(signal.SIGUSR1)  # go
        poll(lambda: (db.scalar("SELECT count(*) FROM received") or 0) > 10, timeout=30, what="live data")  # type: ignore[operator]
        stack.broker.stop()
        time.sleep(outage_s)  # the outage itself: the devices keep talking, the outbox fills
        stack.broker.start()
        with psycopg.connect(db.dsn(), autocommit=True) as conn:
            deadline = time.monotonic() + 120
            while True:
                agent.check_alive()
                held = conn.execute("SELECT count(*) FROM received WHERE replay").fetchone()[0]  # type: ignore[index]
                if held and _outbox_drained(workdir / f"{gw}-outbox.sqlite3"):
                    break
                if time.monotonic() > deadline:
                    raise StackTimeout("replay did not drain within 120 s")
                time.sleep(0.2)  # poll interval, bounded by the deadline above
            row = conn.execute(
                "SELECT coalesce(sum(n_samples), 0), count(*),"
                " extract(epoch FROM max(received_at) - min(received_at)) FROM received WHERE replay"
            ).fetchone()
    assert row is not None
    return ReplayRun(samples=int(row[0]), records=int(row[1]), seconds=float(row[2] or 0.0))


def _outbox_drained(path: object) -> bool:
    import sqlite3

    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
        (n,) = db.execute("SELECT count(*) FROM records").fetchone()
    return n < DEVICES_PER_GATEWAY * 3  # only live batches in flight remain


def measure_resources(stack: BenchStack, *, samples_per_s: float, window_s: float, start_us: int,
                      seed: int) -> tuple[float, float, float]:
    """(max RSS MiB, CPU cores, samples/s stored meanwhile) of an agent fed at ``samples_per_s``."""
    workdir = stack.workdir("agent-res")
    gw = f"rsgw{seed}"
    stack.add_gateway(gw)
    line_rate = samples_per_s / SAMPLES_PER_LINE
    device_seconds = (window_s + 5) * line_rate / (DEVICES_PER_GATEWAY * 10.0)
    load = gateway_load(workdir, gw, seconds=device_seconds, start_us=start_us, seed=seed)
    with stack.database() as db, ingest_group(stack, db, 1, "agent-res") as ingest, \
            agent_proc(stack, load, workdir, rate=line_rate, ORTEL_AGENT_EXIT_WHEN_DRAINED="false") as agent:
        def alive() -> None:
            ingest[0].check_alive()
            agent.check_alive()

        wait_births(db, DEVICES_PER_GATEWAY, alive)
        agent.send(signal.SIGUSR1)  # go
        time.sleep(2.0)  # warm-up of the measured window (a fixed offset into a paced run)
        stored0 = _stored(db)
        cpu0, t0, rss = cpu_seconds(agent.pid), time.monotonic(), 0
        while time.monotonic() - t0 < window_s:
            alive()
            rss = max(rss, rss_bytes(agent.pid))
            time.sleep(0.25)  # sampling RSS over the window
        wall = time.monotonic() - t0
        cores = (cpu_seconds(agent.pid) - cpu0) / wall
        achieved = (_stored(db) - stored0) / wall
    return rss / 2**20, cores, achieved


def _stored(db: object) -> int:
    return int(db.scalar("SELECT coalesce(sum(n_samples), 0) FROM received") or 0)  # type: ignore[attr-defined]


def run(ctx: BenchContext) -> list[Metric]:
    metrics = run_enqueue(ctx)
    outage = ctx.seconds(quick=5.0, full=60.0)
    slow_runs = 1 if ctx.quick else ctx.runs  # --quick: the slow edge measurements run once
    replays = []
    for i in range(slow_runs):
        ctx.status(f"edge: {outage:.0f} s broker outage, backlog replay, run {i + 1}/{ctx.runs}")
        replays.append(measure_replay(ctx.stack, outage_s=outage, start_us=ctx.start_us, seed=i))
    note = (f"{outage:.0f} s outage, 20 devices at 10 Hz fed in real time; agent replay_rate 2000 records/s "
            f"(default); backlog {replays[0].records:,} records")
    metrics += [
        Metric("edge", "replay_samples_per_s", "samples/s", tuple(r.samples_per_s for r in replays), note=note),
        Metric("edge", "replay_records_per_s", "records/s", tuple(r.records_per_s for r in replays), note=note),
    ]
    window = ctx.seconds(quick=3.0, full=15.0)
    for rate in (1_000.0, 10_000.0):
        res = []
        for i in range(slow_runs):
            ctx.status(f"edge: agent RSS/CPU at {rate / 1000:.0f}k samples/s, run {i + 1}/{ctx.runs}")
            res.append(measure_resources(ctx.stack, samples_per_s=rate, window_s=window, start_us=ctx.start_us,
                                         seed=i))
        label = f"{rate / 1000:.0f}k"
        stored = sorted(a for _, _, a in res)[len(res) // 2]
        note = (f"one agent, 20 devices, {rate:,.0f} samples/s offered ({stored:,.0f} stored/s over the window),"
                f" {window:.0f} s window")
        metrics += [
            Metric("edge", f"agent_rss_mib_{label}", "MiB", tuple(r for r, _, _ in res), note=note),
            Metric("edge", f"agent_cpu_cores_{label}", "cores", tuple(c for _, c, _ in res), note=note),
        ]
    ctx.advance()
    return metrics
