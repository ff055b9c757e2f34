"""Bad input (docs/reliability.md: B1-B6): every payload of tests/data/bad_input is dead-lettered with its reason,
acked, and the service keeps storing good data in the same run. Plus R12: one bad row in a COPY batch."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import psycopg
import pytest

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

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_input"
DAY_US = 86_400_000_000


def _render(text: str, gw: str, dev: str) -> str:
    values = {"{gw}": gw, "{dev}": dev, "{now_us}": str(T0_US), "{future_us}": str(T0_US + DAY_US),
              "{past_us}": str(T0_US - 365 * DAY_US)}
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _load(gw: str, dev: str) -> list[tuple[str, str, bytes, str]]:
    cases = []
    for path in sorted(CORPUS.glob("*.json")):
        doc = json.loads(path.read_text())
        if "payload_b64" in doc:
            payload = base64.b64decode(doc["payload_b64"])
        else:
            payload = _render(doc["payload"], gw, dev).encode()
        if "pad_to_bytes" in doc:
            payload = payload + b" " * (doc["pad_to_bytes"] - len(payload))
        cases.append((path.name, _render(doc["topic"], gw, dev), payload, doc["expected_reason"]))
    return cases


def test_corpus_is_complete() -> None:
    reasons = {json.loads(p.read_text())["expected_reason"] for p in CORPUS.glob("*.json")}
    assert reasons == {"bad_topic", "oversize", "malformed_json", "unsupported_version", "invalid",
                       "topic_mismatch", "unknown_device", "timestamp_out_of_range", "constraint"}


def test_bad_input_corpus_is_dead_lettered_and_good_data_flows(ingest_broker, db, tmp_path, uid) -> None:
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    cases = _load(gw, dev)
    assert len({(t, p) for _, t, p, _ in cases}) == len(cases), "corpus entries must be distinguishable"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}")
    with running(proc), publisher(broker.port) as pub:
        pub.send(birth(gw, dev), retain=True)
        wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1)
        good = 0
        for i, (_name, topic, payload, _reason) in enumerate(cases):
            pub.raw(topic, payload)
            if i % 9 == 0:  # good records between the bad ones
                good += 1
                pub.send(batch(gw, dev, good, rows=3))
        wait_until(lambda: db.scalar("SELECT count(*) FROM dead_letters") == len(cases), timeout=30,
                   what="every corpus payload dead-lettered")
        wait_until(lambda: watermark_of(db, gw, dev) == good, what="good data stored in the same run")
        assert_exactly_once(db, dev, range(1, good + 1), rows_per_batch=6)
        assert proc.service.running
        assert proc.health()["ok"]

    letters = {(t, bytes(p)): (r, d) for t, p, r, d in
               db.query("SELECT topic, payload, reason, detail FROM dead_letters")}
    wrong = {name: (reason, letters.get((topic, payload))) for name, topic, payload, reason in cases
             if letters.get((topic, payload), ("missing",))[0] != reason}
    assert not wrong, wrong
    assert all(detail for _reason, detail in letters.values())
    # Permanent rejections of numbered records enter the ledger so the watermark can pass them; the unknown
    # device does not (its birth may still come, and the agent's re-send must then succeed).
    statuses = dict(db.query("SELECT seq, status FROM received WHERE stream = %s AND seq > 100", (dev,)))
    assert statuses == {113: "rejected", 114: "rejected", 115: "rejected", 120: "rejected"}
    assert db.scalar("SELECT count(*) FROM received WHERE stream LIKE 'ghost-%%'") == 0
    assert db.scalar("SELECT to_regclass('samples') IS NOT NULL") is True  # still there, of course


@pytest.mark.parametrize("bad_seq", [1, 5])
def test_one_bad_row_in_a_copy_batch(ingest_broker, db, tmp_path, uid, bad_seq) -> None:
    """R12: COPY stops at the first bad row; the batch is retried message by message, the bad one is
    dead-lettered (reason constraint, ledger 'rejected') and the rest are stored."""
    with psycopg.connect(db.dsn(), autocommit=True) as conn:
        conn.execute("ALTER TABLE samples ADD CONSTRAINT test_power_cap CHECK (value < 1e9)")
    broker = ingest_broker
    gw, dev = f"gw-{uid}", f"esu-{uid}"
    proc = ingest_process(tmp_path, dsn=db.writer_dsn, mqtt_port=broker.port, client_id=f"ingest-{uid}",
                          ORTEL_INGEST_BATCH_MAX_AGE_S="1.0")
    with running(proc), publisher(broker.port) as pub:
        pub.send(birth(gw, dev), retain=True)
        wait_until(lambda: db.scalar("SELECT count(*) FROM devices WHERE device_id = %s", (dev,)) == 1)
        for seq in range(1, 11):
            pub.send(batch(gw, dev, seq, rows=4, value=1e12 if seq == bad_seq else None))
        wait_until(lambda: watermark_of(db, gw, dev) == 10, what="watermark passes the rejected batch")
    good = [s for s in range(1, 11) if s != bad_seq]
    stored = {int(r[0]) for r in db.query("SELECT DISTINCT seq FROM samples WHERE device_id = %s", (dev,))}
    assert stored == set(good)
    rows = db.query("SELECT reason, detail FROM dead_letters")
    assert len(rows) == 1 and rows[0][0] == "constraint" and "test_power_cap" in rows[0][1]
    assert db.scalar("SELECT status FROM received WHERE stream = %s AND seq = %s", (dev, bad_seq)) == "rejected"
