"""Adapters (TCP, local MQTT bus, serial), retained state and heartbeats, /metrics and /healthz, SIGTERM."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request

import aiomqtt
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge_agent.adapters.serial import SerialAdapter
from edge_agent.adapters.tcp import TcpAdapter
from edge_agent.service import Agent, adapters_from_settings
from ortel_cli.stack import free_port, wait_for_port
from tests.integration.test_agent_flow import T0, settings_for
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import async_wait_until, wait_until
from tests.support.procs import Service
from tests.support.watermark_stand_in import WatermarkStandIn
from wire.device import Hello, Sample, encode_line


def _lines(device: str, n: int) -> bytes:
    out = encode_line(Hello(device_id=device, device_type="esu",
                            metrics=({"name": "power_w", "unit": "kW"},)))  # type: ignore[arg-type]
    out += b"this is not json\n"  # a bad line is counted and skipped, never fatal
    for i in range(n):
        out += encode_line(Sample(device_id=device, ts_us=T0 + i * 1000, values={"power_w": 0.5}))
    return out


async def test_tcp_adapter_feeds_the_agent_and_ops_endpoints_report(broker, gateway_user, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    device = f"esu-{uid}"
    tcp = TcpAdapter(host="127.0.0.1", port=0)
    agent = Agent(settings=settings_for(broker.port, gw, tmp_path, ops_port=0), adapters=[tcp])
    stop = asyncio.Event()
    with WatermarkStandIn(broker.port, gw) as standin:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(agent.run(stop))
            await tcp.listening.wait()
            _, writer = await asyncio.open_connection("127.0.0.1", tcp.port)
            writer.write(_lines(device, 100))
            await writer.drain()
            writer.close()
            await async_wait_until(lambda: _count(standin, device, 100), timeout=20, what="samples via TCP")
            metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{agent.ops_port}/metrics")
            health = json.loads(await asyncio.to_thread(_get, f"http://127.0.0.1:{agent.ops_port}/healthz"))
            stop.set()
    assert standin.snapshot()[device][1].body["metrics"]["power_w"][0] == 500.0  # kW -> W
    assert 'ortel_agent_bad_lines_total{adapter="tcp"} 1.0' in metrics
    assert 'ortel_agent_lines_total{adapter="tcp"} 102.0' in metrics
    for name in ("outbox_records", "outbox_oldest_age_seconds", "published_total", "reconnects_total",
                 "dropped_records_total"):
        assert f"ortel_agent_{name}" in metrics
    assert health["ok"] is True and health["connected"] is True


async def test_serial_adapter_reads_lines_lazily(tmp_path) -> None:
    adapter = SerialAdapter(port="loop://")
    port = adapter._open()
    port.write(b'{"type": "bye", "device_id": "x", "ts_us": 1}\n')
    adapter._open = lambda: port  # type: ignore[method-assign]
    lines = adapter.lines()
    assert orjson.loads(await anext(lines))["type"] == "bye"
    await lines.aclose()


async def test_local_mqtt_bus_adapter(broker, gateway_user, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    device = f"esu-{uid}"
    settings = settings_for(broker.port, gw, tmp_path, adapters={
        "mqtt_bus_host": "127.0.0.1", "mqtt_bus_port": broker.port, "mqtt_bus_topic": f"ortel/bus/{uid}",
        "mqtt_bus_username": "ortel-admin", "mqtt_bus_password": TEST_PASSWORD})
    agent = Agent(settings=settings, adapters=adapters_from_settings(settings))
    stop = asyncio.Event()
    with WatermarkStandIn(broker.port, gw) as standin:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(agent.run(stop))
            async with aiomqtt.Client("127.0.0.1", broker.port, username="ortel-admin", password=TEST_PASSWORD,
                                      protocol=aiomqtt.ProtocolVersion.V5) as bus:
                async def published() -> bool:
                    await bus.publish(f"ortel/bus/{uid}", _lines(device, 20), qos=1)
                    return await _count(standin, device, 20)
                await async_wait_until(published, timeout=20, interval=0.5, what="samples via the bus")
            stop.set()
    assert not standin.errors


def test_sigterm_flushes_and_leaves_retained_state(broker, gateway_user, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    device = f"esu-{uid}"
    tcp_port = free_port()
    cfg = tmp_path / "gateway.toml"
    cfg.write_text(f'gateway_id = "{gw}"\nroom = "OR-2"\noutbox_path = "{tmp_path / "o.sqlite3"}"\n'
                   f'flush_interval_s = 30.0\nbatch_max_samples = 1000\n'
                   f'[mqtt]\nport = {broker.port}\npassword = "{TEST_PASSWORD}"\n'
                   f'[adapters]\ntcp_port = {tcp_port}\n[privacy]\nkey = "{"k" * 32}"\n')
    seen: dict[str, bytes] = {}  # newest payload per topic
    spy = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    spy.username_pw_set("ortel-admin", TEST_PASSWORD)
    spy.on_message = lambda c, u, m: seen.__setitem__(m.topic, m.payload)
    spy.connect("127.0.0.1", broker.port)
    spy.subscribe(f"ortel/v1/{gw}/#", qos=1)
    spy.loop_start()
    agent = Service(["agent", "--config", str(cfg)], env={}, log=tmp_path / "agent.log")
    try:
        with WatermarkStandIn(broker.port, gw) as standin:
            agent.start()
            wait_for_port(tcp_port, timeout=30)
            import socket
            with socket.create_connection(("127.0.0.1", tcp_port)) as sock:
                sock.sendall(_lines(device, 50))
            wait_until(lambda: f"ortel/v1/{gw}/dev/{device}/status" in seen, timeout=20, what="heartbeat")
            # the batch is still open (30 s flush interval): SIGTERM must seal, commit and send it
            assert agent.stop(signal.SIGTERM) == 0, agent.output()
            wait_until(lambda: len(standin.samples(device)) == 50, timeout=20, what="flushed on SIGTERM")
    finally:
        spy.loop_stop()
        spy.disconnect()
    state = orjson.loads(seen[f"ortel/v1/{gw}/state"])
    assert state["state"] == "offline" and state["room"] == "OR-2"
    birth = orjson.loads(seen[f"ortel/v1/{gw}/dev/{device}/birth"])
    assert birth["metrics"][0]["unit"] == "W"
    status = orjson.loads(seen[f"ortel/v1/{gw}/dev/{device}/status"])
    assert status["connected"] is True
    # structured logs: JSON lines (stderr is not a terminal), each naming the gateway
    records = [orjson.loads(line) for line in agent.output().splitlines() if line.startswith("{")]
    events = {r["event"] for r in records}
    assert {"connected", "agent stopped"} <= events, events
    assert all(r.get("gateway_id") == gw and r.get("level") and r.get("timestamp") for r in records), records[:3]


async def _count(standin: WatermarkStandIn, device: str, n: int) -> bool:
    return len(standin.samples(device)) >= n


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as resp:  # loopback ops endpoint
        return resp.read().decode()
