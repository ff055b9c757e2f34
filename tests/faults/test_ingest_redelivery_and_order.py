"""R16 and R17 of the reliability plan against the real ingest process, broker and PostgreSQL.

- R16, duplicate replay: 1,000 records already stored are published again; the database gains no row, and
  every re-sent row is counted as a conflict.
- R17, out of order and late data: records arrive in a shuffled order (seeded) with device times an hour old;
  every one is stored, the gaps the shuffle opens all close, and the watermark ends at the last seq.
"""

from __future__ import annotations

import random

from tests.integration.ingest_kit import (
    T0_US,
    assert_exactly_once,
    batch,
    birth,
    ingest_broker_fixture,  # noqa: F401 - provides the ingest_broker fixture
    ingest_process,
    publisher,
    running,
    watermark_of,
)
from tests.support.poll import wait_until

ROWS = 5  # rows per record; each row carries 2 metrics
SAMPLES = 2 * ROWS


def test_r16_a_thousand_stored_records_sent_again_add_no_row(ingest_broker, db, tmp_path, uid) -> None:
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=ingest_broker.port, client_id=f"ingest-{uid}")
    records = [batch(gw, dev, seq, rows=ROWS) for seq in range(1, 1001)]
    with running(proc), publisher(ingest_broker.port) as pub:
        pub.send(birth(gw, dev), retain=True)
        wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1,
                   what="birth stored")
        for record in records:
            pub.send(record)
        wait_until(lambda: watermark_of(db, gw, dev) == 1000, timeout=60, what="1,000 records stored")
        before = db.scalar("SELECT count(*) FROM samples WHERE device_id = %s", (dev,))
        assert before == 1000 * SAMPLES
        wait_until(lambda: proc.metric("ortel_ingest_rows") >= before, what="rows counted")
        conflicts_before = proc.metric("ortel_ingest_conflicts")
        for record in records:  # the whole range again, as an agent re-sending after a lost watermark would
            pub.send(record)
        wait_until(lambda: proc.metric("ortel_ingest_conflicts") - conflicts_before == 1000 * SAMPLES, timeout=60,
                   what="every re-sent row counted as a conflict")
        assert db.scalar("SELECT count(*) FROM samples WHERE device_id = %s", (dev,)) == before, "0 new rows"
        assert proc.metric("ortel_ingest_rows") == before, "nothing inserted twice"
    assert_exactly_once(db, dev, range(1, 1001), rows_per_batch=SAMPLES)
    assert db.scalar("SELECT count(*) FROM received WHERE gateway_id = %s AND stream = %s", (gw, dev)) == 1000
    assert db.scalar("SELECT count(*) FROM dead_letters WHERE device_id = %s", (dev,)) == 0


def test_r17_shuffled_hour_old_records_are_all_stored_and_every_gap_closes(ingest_broker, db, tmp_path,
                                                                            uid) -> None:
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=ingest_broker.port, client_id=f"ingest-{uid}")
    records = [batch(gw, dev, seq, rows=ROWS) for seq in range(1, 301)]
    assert all(T0_US - r.ts_us[-1] >= 3_000_000_000 for r in records), "device times are about an hour old"
    random.Random(17).shuffle(records)
    assert [r.seq for r in records[:3]] != [1, 2, 3]
    with running(proc), publisher(ingest_broker.port) as pub:
        pub.send(birth(gw, dev), retain=True)
        wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1,
                   what="birth stored")
        first, *rest = records
        assert first.seq > 1
        pub.send(first)  # committed alone: the records below it are a gap, open until they arrive
        wait_until(lambda: db.scalar("SELECT count(*) FROM seq_gaps WHERE stream = %s AND closed_at IS NULL",
                                     (dev,)) >= 1, what="a gap opened by the first, out-of-order record")
        for record in rest:
            pub.send(record)
        wait_until(lambda: watermark_of(db, gw, dev) == 300, timeout=60, what="watermark at the last seq")
    assert_exactly_once(db, dev, range(1, 301), rows_per_batch=SAMPLES)
    assert db.scalar("SELECT count(*) FROM seq_gaps WHERE gateway_id = %s AND stream = %s AND closed_at IS NULL",
                     (gw, dev)) == 0, "and every one closed"
    assert db.scalar("SELECT count(*) FROM dead_letters WHERE device_id = %s", (dev,)) == 0
