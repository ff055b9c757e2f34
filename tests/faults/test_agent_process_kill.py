"""The agent process SIGKILLed mid-stream (R14) and restarted: nothing it had accepted is lost, no seq reused.

The killed agent says nothing on its way out; the broker publishes its Last Will, so the retained gateway
state turns ``offline`` (the death of the killed process's ``boot_id``) until the restarted agent's birth.

"Accepted" is the outbox's promise: a record counts once its transaction is fsync'd. Lines the agent had read
but not yet committed (an open batch, < flush_interval) die with the process; they never got a seq, so they
leave no gap. Devices feed the agent over its TCP adapter, as real devices would.
"""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import orjson
import tomli_w

from ortel_cli.stack import free_port, wait_for_port
from tests.faults.mqtt_watch import TopicWatch
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import wait_until
from tests.support.procs import Service
from tests.support.watermark_stand_in import WatermarkStandIn
from wire import GatewayState, decode, topics
from wire.device import Hello, Sample, encode_line

T0 = 1_763_884_800_000_000
KEEPALIVE_S = 15  # the agent's default mqtt.keepalive_s: the broker gives up on a silent client after 1.5x


def _config(path, *, gw: str, broker_port: int, tcp_port: int, outbox) -> None:
    path.write_text(tomli_w.dumps({
        "gateway_id": gw, "room": "OR-7", "outbox_path": str(outbox), "flush_interval_s": 0.05,
        "batch_max_samples": 10, "ack_timeout_s": 2.0, "reconnect_base_s": 0.05, "reconnect_cap_s": 0.5,
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "password": TEST_PASSWORD},
        "privacy": {"key": "k" * 32}, "adapters": {"tcp_host": "127.0.0.1", "tcp_port": tcp_port},
    }))


class Feeder(threading.Thread):
    """A device on the agent's TCP port, sending one reading per millisecond until told to stop or cut off."""

    def __init__(self, port: int, device: str, start_at: int, count: int, shift: int = 0) -> None:
        super().__init__(daemon=True)
        self.port, self.device, self.start_at, self.count, self.shift = port, device, start_at, count, shift
        self.sent = 0
        self.halt = threading.Event()

    def run(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port)) as sock:
            sock.sendall(encode_line(Hello(device_id=self.device, device_type="esu",
                                           metrics=({"name": "power_w", "unit": "W"},))))  # type: ignore[arg-type]
            for i in range(self.start_at, self.start_at + self.count):
                if self.halt.is_set():
                    return
                try:
                    sock.sendall(encode_line(Sample(device_id=self.device, ts_us=self.shift + T0 + i * 1000,
                                                    values={"power_w": float(i)})))
                except OSError:
                    return  # the agent died under us
                self.sent += 1
                time.sleep(0.001)  # device pacing, not synchronisation


def _outbox_samples(path) -> set[int]:
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT payload FROM records WHERE priority = 1").fetchall()
    finally:
        db.close()
    return {ts for (p,) in rows for ts in orjson.loads(p)["ts_us"]}


def _gateway_state(watch: TopicWatch, state: str) -> GatewayState | None:
    """The newest gateway state on the watched topic, if it is ``state``."""
    last = watch.last()
    if last is None:
        return None
    _, message = decode(last[0], last[1])
    assert isinstance(message, GatewayState)
    return message if message.state == state else None


def test_agent_sigkill_mid_stream_loses_no_accepted_sample(broker, gateway_user, uid, tmp_path) -> None:
    gw = f"gw-{uid}"
    gateway_user(gw)
    device = f"esu-{uid}"
    tcp_port = free_port()
    cfg, outbox = tmp_path / "gateway.toml", tmp_path / "outbox.sqlite3"
    _config(cfg, gw=gw, broker_port=broker.port, tcp_port=tcp_port, outbox=outbox)
    agent = Service(["agent", "--config", str(cfg)], env={}, log=tmp_path / "agent.log")
    with WatermarkStandIn(broker.port, gw) as standin, TopicWatch(broker.port, topics.gateway_state(gw)) as states:
        agent.start()
        try:
            wait_for_port(tcp_port, timeout=30)
            feeder = Feeder(tcp_port, device, 0, 5000)
            feeder.start()
            wait_until(lambda: len(standin.samples(device)) >= 300, timeout=30, what="traffic flowing")
            birth = wait_until(lambda: _gateway_state(states, "online"), timeout=10, what="the gateway's birth")
            agent.kill()  # SIGKILL mid-stream: no goodbye, only the Last Will can say it is gone
            feeder.halt.set()
            # The broker notices at once when the kernel closes the dead process's socket, at the latest after
            # 1.5 keepalives without a packet; then it publishes the Will (retained, QoS 1).
            death = wait_until(lambda: _gateway_state(states, "offline"), timeout=2 * KEEPALIVE_S + 10,
                               what="the Last Will: gateway state offline")
            assert death.boot_id == birth.boot_id, "the death is the killed process's own Will"
            assert death.gateway_id == gw
            with TopicWatch(broker.port, topics.gateway_state(gw)) as late:  # a client arriving now
                retained = wait_until(late.last, timeout=10, what="the retained gateway state")
                assert retained[2], "delivered as a retained message"
                assert _gateway_state(late, "offline") == death, "the retained state reads offline"
            feeder.join(10)
            accepted = _outbox_samples(outbox) | {ts for ts, _ in standin.samples(device)}
            assert len(accepted) >= 300

            agent.start()
            reborn = wait_until(lambda: _gateway_state(states, "online"), timeout=30, what="the new birth")
            assert reborn.boot_id != birth.boot_id, "a restart is a new boot"
            wait_for_port(tcp_port, timeout=30)
            second = Feeder(tcp_port, device, 10_000, 500)
            second.start()
            second.join(30)
            expected = accepted | {T0 + i * 1000 for i in range(10_000, 10_500)}
            wait_until(lambda: expected <= {ts for ts, _ in standin.samples(device)}, timeout=60,
                       what="every accepted sample stored")
        finally:
            agent.stop()
    seqs = set(standin.snapshot()[device])
    assert seqs == set(range(1, max(seqs) + 1)), "no gap: nothing committed was lost"
    assert standin.conflicts == 0, "no seq reused for different data"
    assert not standin.errors


def test_agent_sigkill_with_real_ingest_counts_rows(broker, gateway_user, db, uid, tmp_path) -> None:
    """The same fault counted in PostgreSQL through the real ``ortel ingest``: missing = 0, duplicated = 0."""
    from tests.faults.test_agent_e2e_ingest import _ingest

    gw = f"gw-{uid}"
    gateway_user(gw)
    device = f"esu-{uid}"
    tcp_port = free_port()
    cfg, outbox = tmp_path / "gateway.toml", tmp_path / "outbox.sqlite3"
    _config(cfg, gw=gw, broker_port=broker.port, tcp_port=tcp_port, outbox=outbox)
    agent = Service(["agent", "--config", str(cfg)], env={}, log=tmp_path / "agent.log")
    ingest = _ingest(broker, db, tmp_path, uid).start()
    base = time.time_ns() // 1000 - 60_000_000 - T0  # shift the feed to a minute ago (ingest's time window)

    def stored() -> set[int]:
        rows = db.query("SELECT (extract(epoch FROM ts) * 1000000)::bigint FROM samples WHERE device_id = %s",
                        (device,))
        return {int(r[0]) - base for r in rows}

    try:
        agent.start()
        wait_for_port(tcp_port, timeout=30)
        feeder = Feeder(tcp_port, device, 0, 5000, shift=base)
        feeder.start()
        wait_until(lambda: len(stored()) >= 300, timeout=30, what="rows in PostgreSQL")
        agent.kill()
        feeder.halt.set()
        feeder.join(10)
        accepted = {ts - base for ts in _outbox_samples(outbox)} | stored()
        agent.start()
        wait_for_port(tcp_port, timeout=30)
        second = Feeder(tcp_port, device, 10_000, 300, shift=base)
        second.start()
        second.join(30)
        expected = accepted | {T0 + i * 1000 for i in range(10_000, 10_300)}
        wait_until(lambda: expected <= stored(), timeout=60, what="every accepted sample in PostgreSQL")
    finally:
        agent.stop()
        ingest.stop()
    total, distinct = db.query("SELECT count(*), count(DISTINCT (metric, ts)) FROM samples WHERE device_id = %s",
                               (device,))[0]
    assert total == distinct, "duplicated = 0"
    seqs = {r[0] for r in db.query("SELECT seq FROM received WHERE gateway_id = %s AND stream = %s", (gw, device))}
    assert seqs == set(range(1, max(seqs) + 1)), "no seq gap in the ledger: nothing committed was lost"
