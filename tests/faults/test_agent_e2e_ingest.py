"""End to end with the real ingest (``ortel ingest`` as a process) and PostgreSQL: the broker is SIGKILLed
mid-stream, and every sample the devices produced is counted in the database exactly once."""

from __future__ import annotations

import asyncio
import time

import pytest

from edge_agent.adapters.inproc import QueueAdapter
from edge_agent.service import Agent
from tests.integration.test_agent_flow import device_lines, settings_for
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import async_wait_until, wait_until
from tests.support.procs import Service

N = 300  # per device, paced at 100 readings/s


def _ingest(server, db, tmp_path, uid: str) -> Service:
    env = {
        "ORTEL_INGEST_DSN": db.writer_dsn, "ORTEL_INGEST_MQTT_PORT": str(server.port),
        "ORTEL_INGEST_MQTT_PASSWORD": TEST_PASSWORD, "ORTEL_INGEST_CLIENT_ID": f"ingest-{uid}",
        "ORTEL_INGEST_OPS_PORT": "0",
        # its own shared-subscription group: a stopped ingest of another test keeps its persistent session in
        # the shared broker, and a shared group would keep handing it a share of our messages
        "ORTEL_INGEST_GROUP": f"ingest-{uid}",
    }
    return Service(["ingest"], env=env, log=tmp_path / "ingest.log")


def assert_counted_once(db, gw: str, devices: list[str], expected: int) -> None:
    """missing = 0 and duplicated = 0, counted three ways: rows, the ledger's samples per stored record (a
    record stored twice would count twice there), and seqs 1..N per stream without a hole."""
    total, distinct = db.query(
        "SELECT count(*), count(DISTINCT (device_id, metric, ts)) FROM samples WHERE device_id = ANY(%s)",
        (devices,))[0]
    assert total == distinct == expected, "missing = 0, duplicated = 0"
    ledger = db.scalar("SELECT sum(n_samples) FROM received WHERE gateway_id = %s AND status = 'stored'", (gw,))
    assert ledger == expected, "each record stored once in the ledger"
    for device in devices:
        seqs = [r[0] for r in db.query("SELECT seq FROM received WHERE gateway_id = %s AND stream = %s"
                                       " ORDER BY seq", (gw, device))]
        assert seqs == list(range(1, len(seqs) + 1)), "every seq from 1, none skipped"


def stored_counter(db, devices: list[str]):
    """An async count of the devices' rows in PostgreSQL, for ``async_wait_until``."""
    async def stored() -> int:
        return int(await asyncio.to_thread(db.scalar, "SELECT count(*) FROM samples WHERE device_id = ANY(%s)",
                                           (devices,)))
    return stored


def _rig(make_broker, db, uid: str, tmp_path, *, n: int, t0: int):
    """A private broker, the real ingest on it, and an agent feeding 2 devices ``n`` readings at 100/s."""
    server = make_broker()
    gw = f"gw-{uid}"
    server.add_user(gw, TEST_PASSWORD)
    devices = [f"dev-{uid}-{k}" for k in range(2)]
    ingest = _ingest(server, db, tmp_path, uid).start()
    agent = Agent(settings=settings_for(server.port, gw, tmp_path, ack_timeout_s=2.0),
                  adapters=[QueueAdapter(device_lines(devices, n, rate_hz=100, t0=t0))])
    return server, gw, devices, ingest, agent


async def test_broker_sigkill_with_real_ingest_counts_every_sample(make_broker, db, uid, tmp_path) -> None:
    t0 = time.time_ns() // 1000 - 60_000_000  # a minute ago: well inside ingest's accepted time range
    server, gw, devices, ingest, agent = _rig(make_broker, db, uid, tmp_path, n=N, t0=t0)
    stop = asyncio.Event()
    stored = stored_counter(db, devices)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(agent.run(stop))
            await async_wait_until(lambda: _at_least(stored, 100), timeout=60, what="rows arriving")
            await asyncio.to_thread(_kill_and_restart, server)
            try:
                await async_wait_until(lambda: _at_least(stored, N * len(devices)), timeout=30,
                                       what="all samples in PostgreSQL")
            except AssertionError as exc:
                link = agent.link
                state = (agent.outbox.sync.records, link.inflight, len(link._pending), len(link._resend),
                         link.connected, agent.metrics.published.labels(replay="true")._value.get(),
                         agent.metrics.published.labels(replay="false")._value.get(),
                         agent.outbox.sync.next_seqs())
                raise AssertionError(f"{exc}\n{_diagnose(db)}\nagent: {state}\n{ingest.output()[-3000:]}") from None
            await async_wait_until(lambda: _drained(agent), timeout=30, what="outbox drained")
            stop.set()
    finally:
        ingest.stop()
    assert_counted_once(db, gw, devices, N * len(devices))


def _kill_and_restart(server) -> None:
    server.kill()
    server.start()


async def _at_least(count, n: int) -> bool:
    return await count() >= n


async def _drained(agent: Agent) -> bool:
    return agent.outbox.sync.records == 0


def _diagnose(db) -> str:
    return "\n".join(str(x) for x in (
        db.query("SELECT stream, status, count(*), min(seq), max(seq) FROM received GROUP BY 1, 2"),
        db.query("SELECT reason, left(detail, 200), count(*) FROM dead_letters GROUP BY 1, 2"),
        db.query("SELECT * FROM watermarks"),
        db.query("SELECT device_id, count(*), min(seq), max(seq), count(DISTINCT seq) FROM samples GROUP BY 1"),
    ))


async def test_baseline_with_real_ingest_counts_every_sample(broker, gateway_user, db, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    devices = [f"dev-{uid}-{k}" for k in range(2)]
    ingest = _ingest(broker, db, tmp_path, uid).start()
    t0 = time.time_ns() // 1000 - 60_000_000
    agent = Agent(settings=settings_for(broker.port, gw, tmp_path, exit_when_drained=True),
                  adapters=[QueueAdapter(device_lines(devices, N, rate_hz=200, t0=t0))])
    try:
        await asyncio.wait_for(agent.run(asyncio.Event()), 60)
    except TimeoutError:
        raise AssertionError(f"outbox not drained: {agent.outbox.sync.records} records left\n{_diagnose(db)}\n"
                             f"{ingest.output()[-3000:]}") from None
    finally:
        ingest.stop()
    total, distinct = db.query(
        "SELECT count(*), count(DISTINCT (device_id, metric, ts)) FROM samples WHERE device_id = ANY(%s)",
        (devices,))[0]
    assert total == distinct == N * len(devices), _diagnose(db)


OUTAGE_S = 30.0  # the outage: the broker is down while the devices talk for this long
LONG_N = 4_500  # per device at 100 readings/s: ~45 s of traffic, so the outage falls mid-stream


def _down_while_devices_talk(server, agent: Agent, devices: int) -> float:
    """Stop the broker (cleanly: Mosquitto saves its store, but every send of the agent fails) until the agent
    has read OUTAGE_S worth of device readings (the devices are paced at 100 readings/s each, never faster),
    then start it again; return how long it was down."""
    lines = agent.metrics.lines.labels(adapter="inproc")
    server.stop()
    down_at, read_before = time.monotonic(), lines._value.get()
    # one reading more per device than 30 s hold: counting may start mid-way through a pacing step
    wait_until(lambda: lines._value.get() - read_before >= (OUTAGE_S * 100 + 1) * devices, timeout=4 * OUTAGE_S,
               interval=0.2, what=f"{OUTAGE_S:.0f} s of device readings while the broker is down")
    server.start()
    return time.monotonic() - down_at


@pytest.mark.slow
async def test_broker_down_30_s_every_seq_arrives_in_order_none_twice(make_broker, db, uid, tmp_path) -> None:
    t0 = time.time_ns() // 1000 - 600_000_000  # device time runs 10x ahead of the pacing: keep it past
    server, gw, devices, ingest, agent = _rig(make_broker, db, uid, tmp_path, n=LONG_N, t0=t0)
    stop = asyncio.Event()
    stored = stored_counter(db, devices)

    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(agent.run(stop))
            await async_wait_until(lambda: _at_least(stored, 200), timeout=60, what="rows arriving")
            before = await stored()
            outage_s = await asyncio.to_thread(_down_while_devices_talk, server, agent, len(devices))
            backlog = agent.outbox.sync.records
            await async_wait_until(lambda: _at_least(stored, LONG_N * len(devices)), timeout=90,
                                   what="all samples in PostgreSQL")
            await async_wait_until(lambda: _drained(agent), timeout=30, what="outbox drained")
            stop.set()
    finally:
        ingest.stop()
    assert outage_s >= OUTAGE_S, f"the broker was down {outage_s:.1f} s"
    assert before < LONG_N * len(devices) / 2, "the outage fell mid-stream"
    assert backlog >= 100, f"the agent kept reading devices through the outage (backlog {backlog} records)"
    for device in devices:
        rows = db.query("SELECT seq, (extract(epoch FROM ts) * 1e6)::bigint FROM samples WHERE device_id = %s"
                        " ORDER BY ts", (device,))
        expected = [t0 + i * 100_000 for i in range(LONG_N)]
        assert [ts for _, ts in rows] == expected, "every sample, once"
        seqs = [seq for seq, _ in rows]
        assert seqs == sorted(seqs), "in order per device: seq order is device-time order"
        ledger = db.query("SELECT seq, status, n_samples FROM received WHERE gateway_id = %s AND stream = %s"
                          " ORDER BY seq", (gw, device))
        assert [r[0] for r in ledger] == list(range(1, max(seqs) + 1)), "every sent seq arrived: no gap"
        assert {r[1] for r in ledger} == {"stored"}
        assert sum(r[2] for r in ledger) == LONG_N, "each seq stored once: none counted twice"
    replayed = db.scalar("SELECT count(*) FROM received WHERE gateway_id = %s AND replay", (gw,))
    assert replayed > 0, "the backlog was replayed and flagged as such"
    assert db.scalar("SELECT count(*) FROM seq_gaps WHERE gateway_id = %s AND closed_at IS NULL", (gw,)) == 0
