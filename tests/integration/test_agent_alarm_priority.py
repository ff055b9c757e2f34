"""Alarms go out ahead of bulk samples, on the wire: an alarm raised by a local rule after a backlog of
telemetry built up (broker unreachable) is published before that backlog once the broker is back."""

from __future__ import annotations

import asyncio

import orjson

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.service import Agent
from edge_agent.settings import RuleSettings
from tests.faults.mqtt_watch import TopicWatch
from tests.integration.ingest_kit import publisher
from tests.integration.test_agent_flow import T0, settings_for
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import async_wait_until, wait_until
from tests.support.watermark_stand_in import WatermarkStandIn
from wire.device import Hello, Sample

N = 400  # readings before the alarm: 20 telemetry records of 20 samples


async def _lines(device: str):
    yield Hello(device_id=device, device_type="insufflator",
                metrics=({"name": "pressure_mmhg", "unit": "mm[Hg]"},))  # type: ignore[arg-type]
    for i in range(N):
        yield Sample(device_id=device, ts_us=T0 + i * 100_000, values={"pressure_mmhg": 12.0})
    yield Sample(device_id=device, ts_us=T0 + N * 100_000, values={"pressure_mmhg": 25.0})  # over the limit


async def test_an_alarm_raised_after_a_backlog_is_published_before_it(make_broker, uid, tmp_path) -> None:
    server = make_broker()
    gw, device = f"gw-{uid}", f"ins-{uid}"
    server.add_user(gw, TEST_PASSWORD)
    server.stop()  # the backlog builds while the broker is away
    rule = RuleSettings(code="pressure_high", metric="pressure_mmhg", above=15.0, severity="high")
    settings = settings_for(server.port, gw, tmp_path, rules=(rule,), ack_timeout_s=5.0)
    first = Agent(settings=settings, adapters=[QueueAdapter(_lines(device))])
    stop = asyncio.Event()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(first.run(stop))
        await async_wait_until(lambda: _records(first, N // 20 + 1), timeout=30,
                               what="the backlog and the alarm in the outbox")
        stop.set()  # graceful: the records stay in the outbox, no watermark covers them

    server.start()
    topic = f"ortel/v1/{gw}/dev/{device}/+"
    with TopicWatch(server.port, topic) as watch, WatermarkStandIn(server.port, gw) as standin:
        with publisher(server.port) as pub:  # the watch is subscribed once it sees this
            pub.raw(f"ortel/v1/{gw}/dev/{device}/probe", b"{}")
            wait_until(lambda: any(t.endswith("/probe") for t, _, _ in watch.messages), what="watch subscribed")
        wait_until(lambda: standin.connects >= 1, what="watermark stand-in connected")
        second = Agent(settings=settings.model_copy(update={"exit_when_drained": True}), adapters=[])
        await asyncio.wait_for(second.run(asyncio.Event()), 60)
    order = [(t.rsplit("/", 1)[1], orjson.loads(p)) for t, p, _ in watch.messages
             if t.endswith(("/telemetry", "/event"))]
    kinds = [kind for kind, _ in order]
    assert kinds.count("telemetry") >= N // 20 and kinds.count("event") == 1, kinds
    alarm_at = kinds.index("event")
    alarm = order[alarm_at][1]
    assert alarm["kind"] == "alarm_raised" and alarm["code"] == "pressure_high"
    # appended last, published first: before every telemetry record of the backlog it joined
    assert alarm_at == 0, f"alarm published after {alarm_at} telemetry records"
    telemetry_seqs = [body["seq"] for kind, body in order if kind == "telemetry"]
    assert alarm["seq"] > max(telemetry_seqs[: N // 20]), "the alarm was numbered after that telemetry"


async def _records(agent: Agent, n: int) -> bool:
    return agent.outbox.sync.records >= n
