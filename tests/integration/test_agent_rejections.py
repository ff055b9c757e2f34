"""A record the broker refuses is dead-lettered locally with an alarm and never retried (B2, S1).

- ACL denial: MQTT 5 PUBACK 0x87, reported by the broker and seen by the agent.
- Oversize against the broker's ``message_size_limit``: Mosquitto 2.0 answers PUBACK 0x95, which paho cannot
  parse (it drops the connection instead); the agent blames the record after repeated losses while it was the
  first awaiting PUBACK.
- Oversize against the agent's own ``max_payload_bytes``: never sent at all.
"""

from __future__ import annotations

import asyncio

import pytest

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.outbox import Outbox
from edge_agent.reports import DEAD_LETTER_CODE
from edge_agent.service import Agent
from ortel_cli.stack import REPO_ROOT
from tests.integration.test_agent_flow import T0, settings_for
from tests.support.harness import TEST_PASSWORD
from tests.support.watermark_stand_in import WatermarkStandIn
from wire.device import Hello, Sample

LIMIT = 4096


def _small_limit_conf(tmp_path):
    text = (REPO_ROOT / "mosquitto.conf").read_text()
    assert "message_size_limit 1048576" in text
    path = tmp_path / "mosquitto-small.conf"
    path.write_text(text.replace("message_size_limit 1048576", f"message_size_limit {LIMIT}"))
    return path


async def _lines(device: str, rows: int):
    yield Hello(device_id=device, device_type="esu", metrics=({"name": "power_w", "unit": "W"},))  # type: ignore[arg-type]
    for i in range(rows):
        yield Sample(device_id=device, ts_us=T0 + i * 1000, values={"power_w": 100.0 + i / 7})


@pytest.mark.parametrize("limit", ["broker", "local"])
async def test_oversize_record_is_dead_lettered_with_an_alarm(make_broker, uid, tmp_path, limit) -> None:
    server = make_broker(conf_template=_small_limit_conf(tmp_path)) if limit == "broker" else make_broker()
    gw = f"gw-{uid}"
    server.add_user(gw, TEST_PASSWORD)
    device = f"esu-{uid}"
    # one batch of 400 rows (~10 kB) is over the limit; the next small batch is fine
    settings = settings_for(server.port, gw, tmp_path, batch_max_samples=400, flush_interval_s=5.0,
                            exit_when_drained=True, max_payload_bytes=LIMIT if limit == "local" else 200_000,
                            oversize_suspect_bytes=LIMIT)
    agent = Agent(settings=settings, adapters=[QueueAdapter(_lines(device, 410))])
    with WatermarkStandIn(server.port, gw) as standin:
        await asyncio.wait_for(agent.run(asyncio.Event()), 60)
    with Outbox(path=settings.outbox_path, max_bytes=10**9, max_age_us=10**15, report_drop=None) as box:  # type: ignore[arg-type]
        dead = box.dead_letters()
        assert box.records == 0, "nothing left to retry"
    assert [(s, q) for s, q, _ in dead] == [(device, 1)]
    assert dead[0][2].startswith("0x95"), dead
    events = standin.events(device)
    alarm = [e for e in events if e["kind"] == "alarm_raised"]
    assert alarm and alarm[0]["code"] == DEAD_LETTER_CODE and alarm[0]["attrs"]["seq"] == 1
    assert [e["attrs"]["from_seq"] for e in events if e["kind"] == "outbox_drop"] == [1]
    assert standin.samples(device)[0][1] == 2, "the following batch was stored"
    assert agent.metrics.dead_letters._value.get() == 1
    assert not standin.errors


async def test_acl_denial_is_dead_lettered_not_retried(broker, gateway_user, uid, tmp_path) -> None:
    login, _ = gateway_user(f"gw-{uid}")
    other = f"gw-other-{uid}"  # publishes under a prefix its login does not own: the ACL refuses (0x87)
    settings = settings_for(broker.port, other, tmp_path, exit_when_drained=True, batch_max_samples=50,
                            mqtt={"host": "127.0.0.1", "port": broker.port, "username": login,
                                  "password": TEST_PASSWORD})
    agent = Agent(settings=settings, adapters=[QueueAdapter(_lines(f"esu-{uid}", 100))])
    await asyncio.wait_for(agent.run(asyncio.Event()), 60)
    with Outbox(path=settings.outbox_path, max_bytes=10**9, max_age_us=10**15, report_drop=None) as box:  # type: ignore[arg-type]
        dead = box.dead_letters()
        assert box.records == 0, "no endless retry"
    assert len(dead) >= 2 and all(reason.startswith("0x87") for _, _, reason in dead), dead
    assert agent.metrics.dead_letters._value.get() == len(dead)
