"""Ingest under faults (docs/reliability.md: R5, R6, R7, R9, R10, R12): count rows against the seqs sent."""

from __future__ import annotations

import pytest

from tests.integration.ingest_kit import (
    assert_exactly_once,
    batch,
    birth,
    ingest_broker_fixture,  # noqa: F401 - provides the ingest_broker fixture
    ingest_process,
    publisher,
    restartable_postgres_fixture,  # noqa: F401 - provides the restartable_postgres fixture
    running,
    watermark_of,
)
from tests.support.harness import create_database
from tests.support.poll import wait_until

ROWS = 5  # per metric; 2 metrics per batch
N = 40


def _ready_device(pub, db, gw: str, dev: str) -> None:
    pub.send(birth(gw, dev), retain=True)
    wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1,
               what="birth stored")


@pytest.mark.parametrize("fault", ["kill_before_commit:2", "kill_after_commit:2"])
def test_sigkill_around_commit_loses_and_duplicates_nothing(ingest_broker, db, tmp_path, uid, fault) -> None:
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    env = {"ORTEL_INGEST_BATCH_MAX_MESSAGES": "4"}
    faulty = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}",
                            ORTEL_INGEST_FAULT=fault, **env)
    with running(faulty), publisher(broker.port) as pub:
        _ready_device(pub, db, gw, dev)
        for seq in range(1, N + 1):
            pub.send(batch(gw, dev, seq, rows=ROWS))
        wait_until(lambda: not faulty.service.running, what="fault hook SIGKILLed ingest")
    stored_before = db.scalar("SELECT count(*) FROM samples")
    assert stored_before < N * 2 * ROWS  # the crash really interrupted the stream

    again = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}", **env)
    with running(again):
        wait_until(lambda: watermark_of(db, gw, dev) == N, timeout=30, what="all seqs stored after restart")
        assert_exactly_once(db, dev, range(1, N + 1), rows_per_batch=2 * ROWS)
        if fault.startswith("kill_after_commit"):
            # The committed-but-unacked batch came back and was a no-op.
            assert again.metric("ortel_ingest_conflicts") >= 2 * ROWS


def test_fresh_process_gets_what_was_sent_while_none_ran(ingest_broker, db, tmp_path, uid) -> None:
    """R7: clean_start=False + session expiry: the broker queues for the ingest session while it is down."""
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    first = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    with publisher(broker.port) as pub:
        with running(first):
            _ready_device(pub, db, gw, dev)
        for seq in range(1, 11):  # no ingest process runs now
            pub.send(batch(gw, dev, seq, rows=ROWS))
    assert db.scalar("SELECT count(*) FROM samples") == 0
    fresh = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    with running(fresh):
        wait_until(lambda: watermark_of(db, gw, dev) == 10, what="queued messages stored by the fresh process")
        assert_exactly_once(db, dev, range(1, 11), rows_per_batch=2 * ROWS)


def test_two_processes_split_a_shared_subscription(ingest_broker, db, tmp_path, uid) -> None:
    broker = ingest_broker
    gw = f"gw-{uid}"
    devices = [f"esu{i}-{uid}" for i in range(4)]
    procs = [ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest{i}-{uid}",
                            group=f"g{uid}") for i in range(2)]
    with running(procs[0]), running(procs[1]), publisher(broker.port) as pub:
        for dev in devices:
            _ready_device(pub, db, gw, dev)
        for seq in range(1, 16):
            for dev in devices:
                pub.send(batch(gw, dev, seq, rows=ROWS))
        for dev in devices:
            wait_until(lambda d=dev: watermark_of(db, gw, d) == 15, what=f"{dev} complete")
            assert_exactly_once(db, dev, range(1, 16), rows_per_batch=2 * ROWS)
        shares = [p.metric("ortel_ingest_rows") for p in procs]
        assert all(s > 0 for s in shares), f"load not split: {shares}"
        assert sum(shares) == len(devices) * 15 * 2 * ROWS


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_postgres_restart_mid_stream(ingest_broker, restartable_postgres, tmp_path, uid, mode) -> None:
    """R9 (pg_ctl restart -m fast) / R10 (crash: -m immediate, then start): records sent while the database is
    down are held unacked and retried; the service recovers without a restart of its own."""
    broker = ingest_broker
    server = restartable_postgres
    db = create_database(server, "plain")
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}",
                          ORTEL_INGEST_BATCH_MAX_MESSAGES="4", ORTEL_INGEST_QUEUE_MAX="10")
    with running(proc), publisher(broker.port) as pub:
        _ready_device(pub, db, gw, dev)
        for seq in range(1, 21):
            pub.send(batch(gw, dev, seq, rows=ROWS))
        wait_until(lambda: watermark_of(db, gw, dev) == 20, what="first part stored")
        taken = proc.metric("ortel_ingest_received")
        server.stop(mode)
        for seq in range(21, 41):  # the database is down: 20 records, twice the receive window
            pub.send(batch(gw, dev, seq, rows=ROWS))
        wait_until(lambda: proc.metric("ortel_ingest_db_errors") >= 3, what="writes failing while PG is down")
        assert proc.health()["db"] is False
        # Backpressure: nothing is acked, so the broker stops at Receive Maximum (= queue bound, 10); the rest
        # waits in the broker, not in ingest's memory.
        assert proc.metric("ortel_ingest_received") - taken <= 10
        server.start()
        for seq in range(41, 51):
            pub.send(batch(gw, dev, seq, rows=ROWS))
        wait_until(lambda: watermark_of(db, gw, dev) == 50, timeout=60, what="stream complete after PG outage")
        assert_exactly_once(db, dev, range(1, 51), rows_per_batch=2 * ROWS)
        assert proc.service.running
        wait_until(lambda: proc.health().get("ok"), what="healthy again")


def test_reconnects_after_broker_crash(ingest_broker, db, tmp_path, uid) -> None:
    """R3 on ingest's side: after a broker SIGKILL (its session may be gone) ingest reconnects and resubscribes
    by itself; records that the edge re-sends are stored once."""
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    with running(proc):
        with publisher(broker.port) as pub:
            _ready_device(pub, db, gw, dev)
            for seq in range(1, 6):
                pub.send(batch(gw, dev, seq, rows=ROWS))
            wait_until(lambda: watermark_of(db, gw, dev) == 5, what="first part stored")
        broker.kill()
        broker.start()
        wait_until(lambda: proc.health().get("ok"), timeout=30, what="ingest reconnected and resubscribed")
        with publisher(broker.port) as pub:
            for seq in range(4, 11):  # the edge re-sends what it has no watermark for, plus new records
                pub.send(batch(gw, dev, seq, rows=ROWS))
            wait_until(lambda: watermark_of(db, gw, dev) == 10, what="records after the crash stored")
        assert_exactly_once(db, dev, range(1, 11), rows_per_batch=2 * ROWS)
