"""Outbox full: the oldest telemetry is dropped (never events), the drop is counted and reported exactly."""

from __future__ import annotations

import asyncio

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.outbox import Outbox
from edge_agent.service import Agent
from ortel_cli.stack import free_port
from tests.integration.test_agent_flow import T0, settings_for
from tests.support.poll import async_wait_until
from tests.support.watermark_stand_in import WatermarkStandIn
from wire.device import Hello, Sample

N = 600
RULE = {"code": "OVERPRESSURE", "metric": "pressure_mmhg", "above": 15.0, "for_s": 0.0, "severity": "high"}


async def _lines(device: str):
    yield Hello(device_id=device, device_type="insufflator",
                metrics=({"name": "pressure_mmhg", "unit": "mm[Hg]"},))  # type: ignore[arg-type]
    for i in range(N):
        # every 50th reading crosses the threshold for 10 readings: 12 alarms raised, 12 cleared
        value = 20.0 if i % 50 < 10 else 10.0
        yield Sample(device_id=device, ts_us=T0 + i * 100_000, values={"pressure_mmhg": value})


async def test_outbox_full_drops_oldest_telemetry_keeps_alarms(broker, gateway_user, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    device = f"ins-{uid}"
    # Phase 1: no broker reachable (a closed port), a tiny outbox: the policy must apply.
    offline = settings_for(free_port(), gw, tmp_path, outbox_max_bytes=20_000, batch_max_samples=5,
                           rules=[RULE], exit_when_drained=False)
    agent = Agent(settings=offline, adapters=[QueueAdapter(_lines(device))])
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(agent.run(stop))
        await async_wait_until(lambda: _lines_read(agent, N + 1), timeout=30, what="all lines read")
        stop.set()

    with Outbox(path=offline.outbox_path, max_bytes=10**9, max_age_us=10**15, report_drop=None) as box:  # type: ignore[arg-type]
        drops = box.drops()
        rows = box.fetch(priority=0, after_id=0, limit=10_000) + box.fetch(priority=1, after_id=0, limit=10_000)
        assert box.total_bytes <= 20_000, "bounded"
    assert drops, "the outbox was full"
    dropped = sum(r.count for r in drops)
    assert dropped == agent.metrics.dropped.labels(reason="max_bytes")._value.get(), "counted"
    events = [r for r in rows if r.priority == 0]
    alarm_rows = [r for r in events if b"alarm_raised" in r.payload or b"alarm_cleared" in r.payload]
    assert len(alarm_rows) == 24, "every alarm survived"
    drop_rows = [r for r in events if b"outbox_drop" in r.payload]
    assert len(drop_rows) == len(drops), "each dropped run is reported"
    # the oldest telemetry went first: what remains is the newest
    telemetry = sorted(r.seq for r in rows if r.priority == 1)
    assert all(s > max(d.to_seq for d in drops) for s in telemetry[-3:])

    # Phase 2: the broker is back; the reports let the watermark pass the dropped ranges, so it all drains.
    online = settings_for(broker.port, gw, tmp_path, outbox_max_bytes=20_000, batch_max_samples=5,
                          rules=[RULE], exit_when_drained=True)
    with WatermarkStandIn(broker.port, gw) as standin:
        await asyncio.wait_for(Agent(settings=online, adapters=[]).run(asyncio.Event()), 60)
    kinds = [e["kind"] for e in standin.events(device)]
    assert kinds.count("alarm_raised") == 12 and kinds.count("alarm_cleared") == 12
    reports = [e for e in standin.events(device) if e["kind"] == "outbox_drop"]
    assert sum(e["attrs"]["count"] for e in reports) == dropped
    for e in reports:
        a = e["attrs"]
        assert a["to_seq"] - a["from_seq"] + 1 == a["count"]
    assert not standin.errors


async def _lines_read(agent: Agent, n: int) -> bool:
    return agent.metrics.lines.labels(adapter="inproc")._value.get() >= n
