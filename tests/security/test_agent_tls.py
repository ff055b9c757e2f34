"""The edge agent over mutual TLS, end to end: gateway certificate from ``ortel certs``' code, the broker's TLS
listener with the shipped config (CN = user name = client id, ACL by pattern), the real ingest process on the
password listener, and PostgreSQL. Every sample lands once, and the agent's outbox drains, which proves that the
commit watermarks reached the agent over its TLS session too."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.service import Agent
from tests.faults.test_agent_e2e_ingest import _ingest, assert_counted_once
from tests.integration.test_agent_flow import device_lines, settings_for

N = 200  # readings per device


async def test_agent_over_mutual_tls_delivers_every_sample_and_drains(tls_broker, pki, db, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    pki.ensure_gateway(gw, now=datetime.now(UTC))
    devices = [f"tls-{uid}-{k}" for k in range(2)]
    mqtt = {"host": "127.0.0.1", "port": tls_broker.tls_port, "cafile": pki.ca_cert,
            "certfile": pki.gateway_cert(gw), "keyfile": pki.gateway_key(gw)}
    settings = settings_for(tls_broker.port, gw, tmp_path, mqtt=mqtt, exit_when_drained=True)
    assert settings.mqtt.password is None, "the certificate is the only credential"
    t0 = time.time_ns() // 1000 - 60_000_000  # a minute ago: inside the time range ingest accepts
    agent = Agent(settings=settings, adapters=[QueueAdapter(device_lines(devices, N, t0=t0))])
    ingest = _ingest(tls_broker, db, tmp_path, uid).start()
    try:
        await asyncio.wait_for(agent.run(asyncio.Event()), 90)
    finally:
        ingest.stop()
    assert agent.outbox.sync.records == 0, "drained only by watermarks that arrived over TLS"
    assert agent.metrics.dead_letters._value.get() == 0, "nothing refused by the broker"
    assert_counted_once(db, gw, devices, N * len(devices))
    assert db.scalar("SELECT count(*) FROM dead_letters WHERE gateway_id = %s", (gw,)) == 0
