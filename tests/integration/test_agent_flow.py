"""The agent end to end on the real broker, with the watermark stand-in playing ingest's acknowledgement."""

from __future__ import annotations

import asyncio
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.privacy import Scrubber
from edge_agent.service import Agent
from edge_agent.settings import AgentSettings, PrivacySettings
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import async_wait_until
from tests.support.watermark_stand_in import WatermarkStandIn
from wire.device import DeviceEvent, Hello, Procedure, Sample

T0 = 1_763_884_800_000_000


def settings_for(port: int, gw: str, tmp: Path, **extra: object) -> AgentSettings:
    base: dict[str, object] = {
        "gateway_id": gw, "room": "OR-1", "outbox_path": tmp / "outbox.sqlite3", "flush_interval_s": 0.05,
        "batch_max_samples": 20, "ack_timeout_s": 2.0, "reconnect_base_s": 0.05, "reconnect_cap_s": 0.5,
        "shutdown_grace_s": 1.0, "mqtt": {"host": "127.0.0.1", "port": port, "password": TEST_PASSWORD},
        "privacy": {"key": "k" * 32, "patterns": [*PrivacySettings().patterns, r"MRN\d{6}", r"Doe, Jane"]},
    }
    return AgentSettings(**(base | extra))


async def device_lines(devices: list[str], n: int, *, rate_hz: float = 0.0, t0: int = T0):
    for d in devices:
        yield Hello(device_id=d, device_type="insufflator",
                    metrics=({"name": "pressure_mmhg", "unit": "kPa"},))  # type: ignore[arg-type]
    for i in range(n):
        for d in devices:
            yield Sample(device_id=d, ts_us=t0 + i * 100_000, values={"pressure_mmhg": 1.0 + (i % 10) * 0.1})
        if rate_hz:
            await asyncio.sleep(1 / rate_hz)  # pacing a simulated device, not synchronisation


def all_rows_present(standin: WatermarkStandIn, devices: list[str], n: int) -> bool:
    return all(len(standin.samples(d)) == n for d in devices)


async def test_samples_flow_and_outbox_empties(broker, gateway_user, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    devices = [f"ins-{uid}-{k}" for k in range(3)]
    settings = settings_for(broker.port, gw, tmp_path, exit_when_drained=True)
    agent = Agent(settings=settings, adapters=[QueueAdapter(device_lines(devices, 500))])
    with WatermarkStandIn(broker.port, gw) as standin:
        await asyncio.wait_for(agent.run(asyncio.Event()), 60)
        assert all_rows_present(standin, devices, 500)
    for d in devices:
        rows = standin.samples(d)
        seqs = [s for _, s in rows]
        assert seqs == sorted(seqs), "device time order and seq order agree"
        batches = set(seqs)
        assert batches == set(range(1, len(batches) + 1)), "seqs 1..N without a gap"
    assert agent.outbox.sync.records == 0
    # the device spoke kPa: 1.0 kPa arrives as 7.50 mm[Hg]
    first = standin.snapshot()[devices[0]][1].body
    assert abs(first["metrics"]["pressure_mmhg"][0] - 7.50062) < 1e-3
    assert not standin.errors


async def test_privacy_nothing_identifying_reaches_the_broker(broker, gateway_user, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    seen: list[bytes] = []
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    spy.username_pw_set("ortel-admin", TEST_PASSWORD)
    subscribed: list[int] = []
    spy.on_message = lambda c, u, m: seen.append(m.topic.encode() + b" " + m.payload)
    spy.on_subscribe = lambda *a: subscribed.append(1)
    spy.connect("127.0.0.1", broker.port)
    spy.loop_start()
    spy.subscribe(f"ortel/v1/{gw}/#", qos=1)

    async def lines():
        yield Hello(device_id=f"esu-{uid}", device_type="esu", model="ESU for Doe, Jane",
                    manufacturer="ACME\x00 Medical", serial="MRN 123456", firmware="patient Smith",
                    udi="123-45-6789",
                    metrics=({"name": "power_w", "unit": "W", "description": "set by Doe, Jane"},))  # type: ignore[arg-type]
        raw = {"type": "sample", "device_id": f"esu-{uid}", "ts_us": T0, "values": {"power_w": 30.0},
               "patient": {"name": "Doe, Jane", "mrn": "MRN123456"}}
        import orjson
        yield orjson.dumps(raw)
        yield DeviceEvent(device_id=f"esu-{uid}", ts_us=T0 + 1, kind="info", text="patient MRN123456 Doe, Jane",
                          case_id="MRN123456", attrs={"note": "Doe, Jane"})
        yield Procedure(ts_us=T0 + 2, kind="case_start", case_id="MRN123456", procedure_type="lap-chole")

    try:
        await async_wait_until(lambda: _true(subscribed), timeout=10, what="spy subscribed")
        settings = settings_for(broker.port, gw, tmp_path, exit_when_drained=True)
        with WatermarkStandIn(broker.port, gw):
            await asyncio.wait_for(Agent(settings=settings, adapters=[QueueAdapter(lines())]).run(asyncio.Event()),
                                   30)
            await async_wait_until(lambda: _true([p for p in seen if b"/procedure" in p.split(b" ")[0]]),
                                   timeout=10, what="procedure event seen")
    finally:
        spy.loop_stop()
        spy.disconnect()
    blob = b"\n".join(seen)
    assert b"case_start" in blob and b"power_w" in blob
    assert b"ACME Medical" in blob, "the device birth was published, its control character removed"
    for secret in (b"MRN123456", b"MRN 123456", b"Doe, Jane", b"Doe", b"Smith", b"123-45-6789", b"\\u0000"):
        assert secret not in blob
    configured = Scrubber(settings.privacy.patterns)
    assert configured.leaks(blob.decode()) == [], "no configured identifier pattern reached the broker"


async def _true(value: object) -> object:
    return value
