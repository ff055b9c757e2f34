"""Broker faults under a running agent: nothing lost, thanks to the end-to-end watermark.

These stop the broker only until the agent has built a backlog, to keep them quick; the issue's full 30 s outage
runs end to end with the real ingest and PostgreSQL in ``test_agent_e2e_ingest.py``.
"""

from __future__ import annotations

import asyncio

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.outbox import Outbox
from edge_agent.service import Agent
from tests.integration.test_agent_flow import T0, device_lines, settings_for
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import async_wait_until, wait_until
from tests.support.watermark_stand_in import WatermarkStandIn

N = 400  # per device, paced at 100 readings/s: ~4 s of traffic


async def _complete(standin: WatermarkStandIn, devices: list[str]) -> bool:
    return all(len(standin.samples(d)) == N for d in devices)


def _check(standin: WatermarkStandIn, devices: list[str]) -> None:
    for d in devices:
        rows = standin.samples(d)
        assert [ts for ts, _ in rows] == [T0 + i * 100_000 for i in range(N)], "every sample, once"
        seqs = [s for _, s in rows]
        assert seqs == sorted(seqs), "device order and seq order agree"
        numbered = set(standin.snapshot()[d])
        assert numbered == set(range(1, max(numbered) + 1)), "no seq gap"
    assert standin.conflicts == 0
    assert not standin.errors


async def _run_with_fault(make_broker, uid, tmp_path, fault) -> WatermarkStandIn:
    server = make_broker()
    gw = f"gw-{uid}"
    server.add_user(gw, TEST_PASSWORD)
    devices = [f"dev-{uid}-{k}" for k in range(2)]
    settings = settings_for(server.port, gw, tmp_path, ack_timeout_s=1.5)
    agent = Agent(settings=settings, adapters=[QueueAdapter(device_lines(devices, N, rate_hz=100))])
    stop = asyncio.Event()
    with WatermarkStandIn(server.port, gw) as standin:
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(agent.run(stop))
            await async_wait_until(lambda: _some(standin, devices[0], 50), timeout=20, what="traffic flowing")
            await asyncio.to_thread(fault, server, agent)
            await async_wait_until(lambda: _complete(standin, devices), timeout=60, what="every sample stored")
            await async_wait_until(lambda: _drained(agent), timeout=30, what="outbox drained")
            stop.set()
        assert task.done()
    _check(standin, devices)
    return standin


async def _some(standin: WatermarkStandIn, device: str, n: int) -> bool:
    return len(standin.samples(device)) >= n


async def _drained(agent: Agent) -> bool:
    return agent.outbox.sync.records == 0


def _kill_and_restart(server, agent=None) -> None:
    server.kill()  # SIGKILL: whatever Mosquitto held in memory is gone
    server.start()


def _stop_for_a_while(server, agent) -> None:
    """An outage that lasts until the agent has built a real backlog (it keeps reading devices meanwhile)."""
    server.stop()
    wait_until(lambda: agent.outbox.sync.records >= 30, timeout=30, what="a backlog built during the outage")
    server.start()


async def test_broker_sigkill_mid_stream_loses_nothing(make_broker, uid, tmp_path) -> None:
    await _run_with_fault(make_broker, uid, tmp_path, _kill_and_restart)


async def test_broker_outage_mid_stream_every_seq_arrives_in_order(make_broker, uid, tmp_path) -> None:
    standin = await _run_with_fault(make_broker, uid, tmp_path, _stop_for_a_while)
    assert standin.replays > 0, "the backlog was replayed with replay=True"


async def test_flapping_broker_never_dead_letters_a_good_record(make_broker, uid, tmp_path) -> None:
    """Four crashes in a row, each while records are in flight: a lost link is not the record's fault."""
    await _run_with_fault(make_broker, uid, tmp_path, _crash_four_times)
    with Outbox(path=tmp_path / "outbox.sqlite3", max_bytes=10**9, max_age_us=10**15,  # type: ignore[arg-type]
                report_drop=None) as box:
        assert box.dead_letters() == [], "a good record was dead-lettered because the link dropped"


def _crash_four_times(server, agent) -> None:
    for crash in range(4):
        wait_until(lambda: agent.outbox.sync.records > 0, timeout=20, what=f"records in flight before crash {crash}")
        _kill_and_restart(server)
