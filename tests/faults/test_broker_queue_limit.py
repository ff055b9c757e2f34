"""R8 (shared RELIABILITY.md), broker queue limits: ingest is offline longer than the broker's queue for it holds,
the broker drops the excess, and the edge agent's outbox brings it back. Pass: missing = 0, duplicated = 0.

1. A private broker runs the repo's mosquitto.conf with one limit lowered: ``max_queued_messages`` 100000 -> 30
   (plus ``sys_interval 1``, so ``$SYS`` reports within a second instead of the default 10 s).
2. The real ``ortel ingest`` connects once (persistent session, shared subscription) and stops: from now on
   Mosquitto queues what the gateway publishes for that offline session, 30 messages at most.
3. The agent publishes 120 records, and re-sends each stream twice on its ack timeout (after 3 s and 6 s more:
   edge_agent/sendstate.py's backoff) because no watermark comes. Every publish is PUBACKed, but only the first
   30 messages fit the queue. Checked, not assumed: ``$SYS/broker/publish/messages/dropped`` grows by at least
   ``publishes - 30``, and the outbox still holds every sample.
4. Ingest starts again (the agent's next re-send is 12 s away) and commits the queued records: per stream a
   prefix, so each watermark stalls below the first dropped seq. 3 s later the agent's go-back-N re-send of
   everything above the watermark brings the rest; ingest stores each record once.

Why it would fail if the agent trusted the PUBACK: Mosquitto answers a publish it drops for a full offline queue
with a plain success PUBACK (the drop shows only in ``$SYS``). An agent that deleted outbox rows on PUBACK would
already fail step 3 (``_all_accepted`` waits for every sample still in the outbox after every record's PUBACK,
seen by a spy on ``CheckedClient.publish_checked``),
and without that check PostgreSQL would end with only what the queue kept: 25 of the 120 records when measured
here (the other 5 queued messages are the gateway's state and device births).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import timedelta
from pathlib import Path

import orjson

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.client import CheckedClient
from edge_agent.service import Agent
from ortel_cli.stack import REPO_ROOT
from tests.faults.mqtt_watch import TopicWatch
from tests.faults.test_agent_broker_faults import conf_with, park_ingest
from tests.faults.test_agent_e2e_ingest import _diagnose, assert_counted_once, stored_counter
from tests.integration.test_agent_flow import device_lines, settings_for
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import async_wait_until, wait_until

QUEUE_LIMIT = 30  # messages Mosquitto queues for an offline session; the rest it drops
N = 300  # samples per device, read at once
BATCH = 5  # samples per record: 2 x 60 = 120 telemetry records, four times the queue
ACK_TIMEOUT_S = 3.0  # a stream is re-sent this long after its watermark last moved, then after 6, 12, 24 s more
OFFLINE_ROUNDS = 2  # re-sends per stream while ingest is away: the next one is then 12 s off, ingest is back first
DROPPED = "$SYS/broker/publish/messages/dropped"


def _small_queue_conf(tmp_path: Path) -> Path:
    """The repo's mosquitto.conf with ``max_queued_messages`` lowered to QUEUE_LIMIT and $SYS every second."""
    assert "sys_interval" not in (REPO_ROOT / "mosquitto.conf").read_text(), "no sys_interval of its own"
    return conf_with(tmp_path, "max_queued_messages", f"max_queued_messages {QUEUE_LIMIT}\nsys_interval 1")


async def test_queue_overflow_while_ingest_is_offline_is_recovered_from_the_edge(make_broker, db, uid, tmp_path,
                                                                                  monkeypatch) -> None:
    pubacked = _spy_pubacks(monkeypatch)
    server = make_broker(conf_template=_small_queue_conf(tmp_path))
    assert f"max_queued_messages {QUEUE_LIMIT}\n" in server.conf_path.read_text()
    gw = f"gw-{uid}"
    server.add_user(gw, TEST_PASSWORD)
    devices = [f"dev-{uid}-{k}" for k in range(2)]
    expected = N * len(devices)
    ingest = await park_ingest(server, db, tmp_path, uid)

    t0 = time.time_ns() // 1000 - 60_000_000  # a minute ago: inside ingest's accepted time range
    agent = Agent(settings=settings_for(server.port, gw, tmp_path, ack_timeout_s=ACK_TIMEOUT_S,
                                           batch_max_samples=BATCH),
                  adapters=[QueueAdapter(device_lines(devices, N, t0=t0))])
    stop = asyncio.Event()
    stored = stored_counter(db, devices)

    try:
        with TopicWatch(server.port, DROPPED) as dropped:
            dropped_before = _count(dropped)  # a fresh broker: 0, or the retained value if $SYS already came
            async with asyncio.TaskGroup() as tg:
                tg.create_task(agent.run(stop))
                records = await async_wait_until(lambda: _all_accepted(agent, pubacked, expected), timeout=20,
                                                 what="every record appended, PUBACKed, still in the outbox")
                assert records >= 4 * QUEUE_LIMIT, f"{records} records: not enough to overflow the queue"
                await async_wait_until(lambda: _resent_offline(agent, OFFLINE_ROUNDS * len(devices)), timeout=20,
                                       what=f"{OFFLINE_ROUNDS} re-sends per stream, each PUBACKed")
                # Every PUBACKed publish so far went to the offline session: at most QUEUE_LIMIT were queued.
                publishes = len(pubacked)
                assert publishes >= records * (1 + OFFLINE_ROUNDS), f"{publishes} PUBACKed telemetry publishes"
                await asyncio.to_thread(
                    wait_until, lambda: _count(dropped) - dropped_before >= publishes - QUEUE_LIMIT, timeout=10,
                    what=f"Mosquitto dropping >= {publishes - QUEUE_LIMIT} of {publishes} publishes ($SYS)")
                assert await stored() == 0, "ingest is offline: nothing can have been committed"
                assert await asyncio.to_thread(_telemetry, agent) == (records, expected), "a PUBACK deleted nothing"
                resends_before_ingest = _resends(agent)

                ingest.start()
                try:
                    await async_wait_until(lambda: _at_least(stored, expected), timeout=25,
                                           what="every sample in PostgreSQL")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{_diagnose(db)}\n{ingest.output()[-3000:]}") from None
                await async_wait_until(lambda: _drained(agent), timeout=15, what="outbox drained")
                stop.set()
    finally:
        ingest.stop()
    assert_counted_once(db, gw, devices, expected)
    assert agent.outbox.sync.records == 0
    # The queue held at most QUEUE_LIMIT messages and every re-send before ingest came back was dropped: the rest
    # reached PostgreSQL only through a re-send after ingest started.
    assert _resends(agent) > resends_before_ingest, "delivered by the agent's re-send"
    _assert_watermark_stalled(db, gw, records // len(devices))


def _assert_watermark_stalled(db, gw: str, per_stream: int) -> None:
    """What ingest committed in its first second back came from the queue alone: the oldest records (no
    re-send can come sooner than ACK_TIMEOUT_S after a watermark moved, and the offline backoff's next one is
    12 s away), per stream a prefix ending below the stream's last seq. Each watermark stalled there."""
    first = db.scalar("SELECT min(received_at) FROM received WHERE gateway_id = %s", (gw,))
    early = db.query("SELECT stream, array_agg(seq ORDER BY seq) FROM received WHERE gateway_id = %s"
                     " AND received_at < %s GROUP BY stream", (gw, first + timedelta(seconds=ACK_TIMEOUT_S / 2)))
    queued = sum(len(seqs) for _, seqs in early)
    assert 0 < queued <= QUEUE_LIMIT, f"{queued} records committed before any re-send could come: {early}"
    for stream, seqs in early:
        assert seqs == list(range(1, len(seqs) + 1)), f"{stream}: the queue kept the oldest records"
        assert len(seqs) < per_stream, f"{stream}: its watermark stalled below the first dropped seq"


def _count(watch: TopicWatch) -> int:
    last = watch.last()
    return int(last[1]) if last else 0


def _resends(agent: Agent) -> float:
    return agent.metrics.resends._value.get()


def _settled(agent: Agent) -> bool:
    link = agent.link  # None until the agent runs
    return link is not None and not link.inflight and not link._pending and not link._resend


def _telemetry(agent: Agent) -> tuple[int, int]:
    """(records, samples) of telemetry in the outbox, read from its file (WAL: a second reader is fine)."""
    conn = sqlite3.connect(agent.settings.outbox_path)
    try:
        rows = conn.execute("SELECT payload FROM records WHERE priority = 1").fetchall()
    finally:
        conn.close()
    return len(rows), sum(len(orjson.loads(p)["ts_us"]) for (p,) in rows)


def _spy_pubacks(monkeypatch) -> list[tuple[str, int]]:
    """(device, seq) of every telemetry publish the broker PUBACKed without a failure code, in order."""
    seen: list[tuple[str, int]] = []
    publish_checked = CheckedClient.publish_checked

    async def spy(self: CheckedClient, topic: str, payload: bytes, **kwargs: object) -> None:
        await publish_checked(self, topic, payload, **kwargs)  # type: ignore[arg-type]
        if topic.endswith("/telemetry"):
            body = orjson.loads(payload)
            seen.append((body["device_id"], body["seq"]))

    monkeypatch.setattr(CheckedClient, "publish_checked", spy)
    return seen


def _outbox_keys(agent: Agent) -> set[tuple[str, int]]:
    conn = sqlite3.connect(agent.settings.outbox_path)
    try:
        return set(conn.execute("SELECT stream, seq FROM records WHERE priority = 1").fetchall())
    finally:
        conn.close()


async def _all_accepted(agent: Agent, pubacked: list[tuple[str, int]], samples: int) -> int:
    """The telemetry record count, once the outbox holds every sample and every record has had its PUBACK."""
    if not _settled(agent):
        return 0
    records, held = await asyncio.to_thread(_telemetry, agent)
    keys = await asyncio.to_thread(_outbox_keys, agent)
    return records if records and held == samples and keys <= set(pubacked) else 0


async def _resent_offline(agent: Agent, n: int) -> bool:
    return _resends(agent) >= n and _settled(agent)


async def _at_least(count, n: int) -> bool:
    return await count() >= n


async def _drained(agent: Agent) -> bool:
    return agent.outbox.sync.records == 0
