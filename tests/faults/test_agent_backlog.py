"""A backlog of more than 70,000 batches, built while the broker is down, drains completely (R4).

paho lost QoS 1 messages once more than 65,535 were unacknowledged (16-bit packet ids); the agent never has
more than ``inflight_window`` outstanding, so a backlog larger than the packet-id space is harmless.
"""

from __future__ import annotations

import asyncio

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.service import Agent
from tests.integration.test_agent_flow import T0, settings_for
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import async_wait_until
from tests.support.watermark_stand_in import WatermarkStandIn
from wire.device import Hello, Sample

N = 70_500
WINDOW = 500


async def _lines(device: str):
    yield Hello(device_id=device, device_type="esu", metrics=({"name": "power_w", "unit": "W"},))  # type: ignore[arg-type]
    for i in range(N):
        yield Sample(device_id=device, ts_us=T0 + i * 1000, values={"power_w": float(i % 50)})


async def test_backlog_beyond_packet_id_space_drains(make_broker, uid, tmp_path) -> None:
    server = make_broker()
    gw = f"gw-{uid}"
    server.add_user(gw, TEST_PASSWORD)
    server.stop()  # the outage: every batch below is built while the broker is away
    device = f"esu-{uid}"
    settings = settings_for(server.port, gw, tmp_path, batch_max_samples=1, replay_rate=1_000_000.0,
                            inflight_window=WINDOW, ack_timeout_s=20.0)
    agent = Agent(settings=settings, adapters=[QueueAdapter(_lines(device))])
    peak = _record_peak(agent)
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(agent.run(stop))
        await async_wait_until(lambda: _appended(agent, N), timeout=120, what="backlog built")
        assert agent.outbox.sync.records >= N
        await asyncio.to_thread(server.start)
        with WatermarkStandIn(server.port, gw) as standin:
            await async_wait_until(lambda: _drained(agent), timeout=150, interval=0.5, what="backlog drained")
            stop.set()
    stored = standin.snapshot()[device]
    assert set(stored) == set(range(1, N + 1)), "every batch arrived, none lost"
    assert standin.conflicts == 0
    assert not standin.errors
    # Read after the drain the gauge is 0 whatever happened; its peak over the drain is what the window bounds.
    assert 0 < peak[0] <= WINDOW, f"in flight peaked at {peak[0]} (window {WINDOW})"


def _record_peak(agent: Agent) -> list[int]:
    """Record every value the agent sets on its in-flight gauge; ``[max so far]``.

    The agent sets the gauge on every change of its in-flight count (``Link._send_loop``/``_publish_row``),
    so wrapping ``set`` sees each value, not a sample of them.
    """
    peak = [0]
    gauge = agent.metrics.inflight
    original = gauge.set

    def spy(value: float) -> None:
        peak[0] = max(peak[0], int(value))
        original(value)

    gauge.set = spy  # type: ignore[method-assign]
    return peak


async def _appended(agent: Agent, n: int) -> bool:
    return agent.outbox.sync.records >= n


async def _drained(agent: Agent) -> bool:
    return agent.outbox.sync.records == 0
