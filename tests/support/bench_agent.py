"""Edge agent footprint, for the benchmark team: ``python -m tests.support.bench_agent [--rate 1000]``.

1. Outbox enqueue rate: drafts committed per second (SQLite WAL, synchronous=FULL, one transaction per flush
   of ``--per-commit`` records) on this machine's disk.
2. The agent under a steady load: ``--devices`` devices x 5 metrics at a total of ``--rate`` samples/s for
   ``--seconds``, on a private Mosquitto, with the watermark stand-in acknowledging in a *separate process* (so
   its CPU is not counted). Reports the agent process's CPU (% of one core), peak RSS and outbox depth.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import resource
import tempfile
import time
from pathlib import Path

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.outbox import Outbox
from edge_agent.pipeline import Draft, Pipeline
from edge_agent.reports import drop_report
from edge_agent.rules import RuleEngine
from edge_agent.service import Agent
from edge_agent.settings import AgentSettings
from tests.support.harness import TEST_PASSWORD, new_broker
from wire.device import Hello, Sample

METRICS = ("power_w", "voltage_v", "current_ma", "impedance_ohm", "temp_cel")


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def enqueue_rate(directory: Path, *, n: int, per_commit: int, rows: int) -> float:
    pipeline = Pipeline.create(gateway_id="gw-bench", room=None, key=b"k" * 32, patterns=(), rules=RuleEngine(()),
                               max_rows=rows, max_age_us=10**12)
    drafts: list[Draft] = []
    i = 0
    while len(drafts) < n:
        values = {m: float(i % 97) for m in METRICS}
        drafts += [d for d in pipeline.handle(Sample(device_id=f"d{i % 20}", ts_us=10**15 + i, values=values),
                                              10**15) if isinstance(d, Draft)]
        i += 1
    outbox = Outbox(path=directory / "enqueue.sqlite3", max_bytes=10**10, max_age_us=10**15,
                    report_drop=lambda run, now: drop_report("gw-bench", stream=run.stream, from_seq=run.from_seq,
                                                             to_seq=run.to_seq, count=run.count, reason=run.reason,
                                                             now_us=now))
    with outbox:
        start = time.perf_counter()
        for k in range(0, n, per_commit):
            outbox.append(drafts[k:k + per_commit], 10**15)
        return n / (time.perf_counter() - start)


def _stand_in(port: int, gw: str, stop: mp.Event) -> None:  # type: ignore[valid-type]
    from tests.support.watermark_stand_in import WatermarkStandIn

    with WatermarkStandIn(port, gw):
        stop.wait()  # type: ignore[attr-defined]


async def _load(devices: int, rate: float, seconds: float):
    for d in range(devices):
        yield Hello(device_id=f"dev{d}", device_type="esu",
                    metrics=tuple({"name": m, "unit": "W"} for m in METRICS))  # type: ignore[arg-type]
    readings_per_s = rate / len(METRICS)
    start, i = time.monotonic(), 0
    while time.monotonic() - start < seconds:
        for d in range(devices):
            yield Sample(device_id=f"dev{d}", ts_us=time.time_ns() // 1000,
                         values={m: float(i % 50) for m in METRICS})
        i += 1
        wait = start + i * devices / readings_per_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)  # pacing the simulated devices


async def agent_footprint(directory: Path, *, devices: int, rate: float, seconds: float) -> dict[str, float]:
    broker = new_broker(directory / "mosquitto")
    stop = mp.Event()
    try:
        broker.add_user("gw-bench", TEST_PASSWORD)
        helper = mp.Process(target=_stand_in, args=(broker.port, "gw-bench", stop))
        helper.start()
        settings = AgentSettings(gateway_id="gw-bench", outbox_path=directory / "agent.sqlite3",
                                 mqtt={"port": broker.port, "password": TEST_PASSWORD}, shutdown_grace_s=1.0)
        agent = Agent(settings=settings, adapters=[QueueAdapter(_load(devices, rate, seconds))])
        done = asyncio.Event()
        rss_start = _rss_mb()
        before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        depth = 0
        async with asyncio.TaskGroup() as tg:
            tg.create_task(agent.run(done))
            while time.perf_counter() - wall < seconds:
                await asyncio.sleep(1.0)  # sampling the outbox depth once a second
                depth = max(depth, agent.outbox.sync.records)
            done.set()
        after, elapsed = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        return {"cpu_percent_of_one_core": 100 * cpu / elapsed, "rss_before_mb": rss_start,
                "rss_end_mb": _rss_mb(), "peak_rss_mb": after.ru_maxrss / 1024,
                "max_outbox_depth": depth, "published": sum(
                    agent.metrics.published.labels(replay=r)._value.get() for r in ("true", "false"))}
    finally:
        stop.set()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=1000.0, help="samples per second (all devices)")
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--per-commit", type=int, default=100)
    parser.add_argument("--skip-enqueue", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ortel-bench-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)
        result = asyncio.run(agent_footprint(directory, devices=args.devices, rate=args.rate, seconds=args.seconds))
        print(f"agent at {args.rate:,.0f} samples/s ({args.devices} devices x {len(METRICS)} metrics), "
              f"{args.seconds:.0f} s: " + ", ".join(f"{k}={v:,.1f}" for k, v in result.items()))
        for rows in () if args.skip_enqueue else (1, 10):
            rate = enqueue_rate(directory, n=20_000, per_commit=args.per_commit, rows=rows)
            print(f"outbox enqueue: {rate:,.0f} records/s ({rate * rows * len(METRICS):,.0f} samples/s) "
                  f"with {rows} reading(s) x {len(METRICS)} metrics per record, {args.per_commit} per commit")
            (directory / "enqueue.sqlite3").unlink()


if __name__ == "__main__":
    main()
