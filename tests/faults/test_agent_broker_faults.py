"""Broker faults under a running agent: nothing lost, thanks to the end-to-end watermark.

These stop the broker only until the agent has built a backlog, to keep them quick; the issue's full 30 s outage
runs end to end with the real ingest and PostgreSQL in ``test_agent_e2e_ingest.py``.

In the stand-in tests the consumer is connected and draining when the broker dies, so the broker holds next to
nothing undelivered: they prove the agent survives the crash, not that the watermark saved anything. The
watermark's own proof is ``test_broker_sigkill_loses_its_queue_the_watermark_restores_it``: there every record
sits PUBACKed in the broker's queue for an offline ingest when the broker is SIGKILLed.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path

import orjson

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.outbox import Outbox
from edge_agent.service import Agent
from ortel_cli.stack import REPO_ROOT, free_port
from tests.faults.mqtt_watch import TopicWatch
from tests.faults.test_agent_e2e_ingest import _diagnose, _ingest, assert_counted_once, stored_counter
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


# --------------------------------------------------------------------------- the watermark's own proof (R3)

QUEUED_N = 1_000  # per device, read at once: 2 devices x ~200 records of up to 5 samples
QUEUED_BATCH = 5  # small batches, so the records outnumber the ~60 messages the broker stores anyway ($SYS)
QUEUED_ACK_TIMEOUT_S = 10.0  # well above the ~1 s the first publish of every record takes (the $SYS wait may outlast
# it: the re-sends then queue more copies in the doomed broker, which changes nothing)


async def test_broker_sigkill_loses_its_queue_the_watermark_restores_it(make_broker, db, uid, tmp_path) -> None:
    """The records are really lost inside the broker, and only the outbox brings them back (R3).

    1. The real ``ortel ingest`` connects once (persistent session, shared subscription) and stops: from now on
       Mosquitto queues every record for that offline session, in memory only.
    2. The agent publishes every record and each is PUBACKed (the broker has accepted it) while ingest is away,
       so nothing is committed and no watermark comes back. Mosquitto's $SYS store counter shows it holding
       them.
    3. The broker is SIGKILLed before its first autosave (the repo's mosquitto.conf with ``autosave_interval``
       raised from 60 to 3600 s, so a slow machine's set-up cannot reach it; in production the same loss
       happens to whatever arrived since the last save). Checked, not assumed: no ``mosquitto.db`` was written
       after the first publish. The queue, ingest's session and every retained message die with the process.
    4. The broker restarts empty; the agent reconnects and replays its outbox into a broker that nobody
       subscribes to (PUBACKed, dropped: lost a second time). Only then does ingest start.
    5. The last copies now live in the agent's outbox, and the only thing that can publish them again is the
       ack-timeout re-send of what no watermark covers.

    Would it catch an agent that deleted outbox rows on PUBACK? Yes, twice: ``_accepted_by_broker`` requires
    every sample still in the outbox after every record's PUBACK (it would time out on an empty outbox), and had
    that check been absent, the only copies would have died in step 3 and PostgreSQL would end with 0 of the
    ``2 x QUEUED_N`` samples.
    """
    server = make_broker(conf_template=_no_autosave_conf(tmp_path))
    gw = f"gw-{uid}"
    server.add_user(gw, TEST_PASSWORD)
    devices = [f"dev-{uid}-{k}" for k in range(2)]
    expected = QUEUED_N * len(devices)
    ingest = await park_ingest(server, db, tmp_path, uid)

    saved = server.directory / "data" / "mosquitto.db"
    first_publish = time.time()
    t0 = time.time_ns() // 1000 - 60_000_000  # a minute ago: inside ingest's accepted time range
    agent = Agent(settings=settings_for(server.port, gw, tmp_path, ack_timeout_s=QUEUED_ACK_TIMEOUT_S,
                                           batch_max_samples=QUEUED_BATCH),
                  adapters=[QueueAdapter(device_lines(devices, QUEUED_N, t0=t0))])
    stop = asyncio.Event()

    stored = stored_counter(db, devices)

    try:
        with TopicWatch(server.port, "$SYS/broker/store/messages/count") as store:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(agent.run(stop))
                records = await async_wait_until(lambda: _accepted_by_broker(agent, expected), timeout=30,
                                                 what="every record appended, in the outbox and PUBACKed once")
                # $SYS comes every 10 s (sys_interval). Without ingest's queue the store holds only retained
                # messages: the $SYS tree itself and the gateway's state and births, 35-60 when measured here
                # with the same agent and no session, so reaching ``records`` (~400) means they are queued.
                await asyncio.to_thread(wait_until, lambda: _store_count(store, at_least=records), timeout=30,
                                        what=f"the broker holding the {records} records for ingest")
                assert await stored() == 0, "ingest is offline: nothing can have been committed"
                assert agent.outbox.sync.records == records, "no watermark, nothing deleted"
                replayed_before = _published(agent, "true")

                await asyncio.to_thread(server.kill)  # SIGKILL: no save on the way out
                assert not saved.exists() or saved.stat().st_mtime < first_publish, (
                    "Mosquitto saved its store after the records arrived (autosave): the kill would lose nothing")
                await asyncio.to_thread(server.start)  # empty: no queue, no ingest session, no retained message

                await async_wait_until(lambda: _replayed(agent, replayed_before + records), timeout=30,
                                       what="the outbox replayed into the restarted, unsubscribed broker")
                assert agent.outbox.sync.records == records, "a PUBACK acknowledged nothing"
                resends_before_ingest = agent.metrics.resends._value.get()
                ingest.start()
                try:
                    await async_wait_until(lambda: _at_least(stored, expected), timeout=60,
                                           what="every sample in PostgreSQL")
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n{_diagnose(db)}\n{ingest.output()[-3000:]}") from None
                await async_wait_until(lambda: _drained(agent), timeout=30, what="outbox drained")
                stop.set()
    finally:
        ingest.stop()
    assert_counted_once(db, gw, devices, expected)
    # Every copy published before ingest started is gone (killed broker, then no subscriber): what PostgreSQL
    # holds was published by a re-send queued after ingest started.
    assert agent.metrics.resends._value.get() > resends_before_ingest >= 0, "delivered by the agent's re-send"
    assert agent.outbox.sync.records == 0


def _no_autosave_conf(tmp_path: Path) -> Path:
    """The repo's mosquitto.conf with its autosave pushed out of the test's reach: the kill must come before any
    save however slow the machine is (the repo's 60 s is in reach of a loaded run's set-up)."""
    return conf_with(tmp_path, "autosave_interval", "autosave_interval 3600")


def conf_with(tmp_path: Path, setting: str, replacement: str) -> Path:
    """A copy of the repo's mosquitto.conf with its one ``setting`` line replaced (by one or more lines)."""
    original = (REPO_ROOT / "mosquitto.conf").read_text()
    text, n = re.subn(rf"(?m)^{setting} \S+$", replacement, original)
    assert n == 1, f"mosquitto.conf has exactly one {setting} line"
    path = tmp_path / f"mosquitto-{setting}.conf"  # read only by this process (render_mosquitto_conf)
    path.write_text(text)
    return path


async def park_ingest(server, db, tmp_path: Path, uid: str):
    """Start the real ingest until it has subscribed, then stop it: its persistent session and shared
    subscription stay on the broker, offline, so Mosquitto queues what is published meanwhile."""
    ops = free_port()
    ingest = _ingest(server, db, tmp_path, uid)
    ingest.env["ORTEL_INGEST_OPS_PORT"] = str(ops)  # /healthz answers 200 once its SUBACK is in and the DB is up
    ingest.start()
    try:
        await asyncio.to_thread(wait_until, lambda: _healthy(ops), timeout=60, what="ingest subscribed")
    finally:
        ingest.stop()  # SIGTERM: a normal DISCONNECT; its session (expiry 1 day) stays on the broker, offline
    return ingest


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _published(agent: Agent, replay: str) -> float:
    return agent.metrics.published.labels(replay=replay)._value.get()


def _outbox_samples(agent: Agent) -> int:
    """Samples in the outbox's telemetry records, read from its file (WAL: a second reader is fine)."""
    conn = sqlite3.connect(agent.settings.outbox_path)
    try:
        rows = conn.execute("SELECT payload FROM records WHERE priority = 1").fetchall()
    finally:
        conn.close()
    return sum(len(orjson.loads(p)["ts_us"]) for (p,) in rows)


async def _accepted_by_broker(agent: Agent, samples: int) -> int:
    """The outbox's record count, once it holds every sample and each record has had exactly one PUBACK."""
    link = agent.link  # None until the agent runs
    records = agent.outbox.sync.records
    published = _published(agent, "true") + _published(agent, "false")
    quiet = link is not None and link.inflight == 0 and not link._pending and agent.metrics.resends._value.get() == 0
    if records and published == records and quiet and await asyncio.to_thread(_outbox_samples, agent) == samples:
        return records
    return 0


def _store_count(watch: TopicWatch, *, at_least: int) -> int:
    """Mosquitto's newest count of stored messages once it is at least ``at_least``, else 0."""
    last = watch.last()
    count = int(last[1]) if last else 0
    return count if count >= at_least else 0


async def _replayed(agent: Agent, n: float) -> bool:
    return _published(agent, "true") >= n and agent.link.connected and agent.link.inflight == 0


async def _at_least(count, n: int) -> bool:
    return await count() >= n
