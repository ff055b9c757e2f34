"""Pure parts of ingest: batching decisions, watermark and gap accounting, row shaping, limits, classify."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

import wire
from ingest.batcher import Batcher
from ingest.classify import Accepted, DeadLetter, Inbound, classify, ledger_key, sample_count
from ingest.ledger import advance, missing_ranges, plan_gaps
from ingest.migrate import discover, split_statements
from ingest.rows import COPY_HEADER, COPY_TRAILER, Limits, SampleCopy, sample_rows, samples_copy
from ingest.settings import IngestSettings
from wire import TelemetryBatch

NOW = 1_800_000_000_000_000
LIMITS = Limits(max_future_us=300_000_000, max_past_us=30 * 86_400_000_000)


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


# ------------------------------------------------------------------------------------------------ batcher


def test_batch_closes_on_message_count() -> None:
    b: Batcher[int] = Batcher(max_messages=3, max_samples=1000, max_age_s=1.0, clock=FakeClock())
    b.add(1)
    b.add(2)
    assert not b.due()
    b.add(3)
    assert b.due()
    assert b.take() == [1, 2, 3]
    assert not b.due() and len(b) == 0 and b.wait_s() is None


def test_batch_closes_on_sample_count() -> None:
    b: Batcher[str] = Batcher(max_messages=100, max_samples=50, max_age_s=1.0, clock=FakeClock())
    b.add("a", 30)
    assert not b.due()
    b.add("b", 30)
    assert b.due()


def test_batch_closes_on_age_of_its_first_message() -> None:
    clock = FakeClock()
    b: Batcher[str] = Batcher(max_messages=100, max_samples=100, max_age_s=0.5, clock=clock)
    assert b.wait_s() is None and not b.due()
    b.add("a")
    clock.t += 0.3
    b.add("b")  # a later message does not extend the deadline
    assert b.wait_s() == pytest.approx(0.2)
    assert not b.due()
    clock.t += 0.2
    assert b.due() and b.wait_s() == 0.0
    b.take()
    clock.t += 10
    b.add("c")
    assert b.wait_s() == pytest.approx(0.5)  # a new batch starts its own clock


def test_batcher_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        Batcher(max_messages=0, max_samples=1, max_age_s=1.0, clock=FakeClock())


# ------------------------------------------------------------------------------------------------ ledger


def test_watermark_advances_over_contiguous_seqs_only() -> None:
    assert advance(0, [1, 2, 3]) == 3
    assert advance(0, [2, 3]) == 0
    assert advance(4, [5, 6, 8, 9]) == 6
    assert advance(4, []) == 4


def test_missing_ranges() -> None:
    assert missing_ranges(2, [5, 6, 9]) == [(3, 4), (7, 8)]
    assert missing_ranges(2, [3, 4]) == []


def test_gaps_open_then_partially_fill_then_close() -> None:
    plan = plan_gaps(2, [5], [])
    assert plan.open == ((3, 4),) and plan.close == ()
    plan = plan_gaps(2, [4, 5], [(3, 4)])  # half filled: still open, nothing new
    assert plan.open == () and plan.close == ()
    plan = plan_gaps(5, [], [(3, 4)])  # filled: the watermark passed it
    assert plan.close == (3,)
    plan = plan_gaps(5, [9], [])
    assert plan.open == ((6, 8),)


@given(st.sets(st.integers(min_value=1, max_value=60), max_size=40), st.integers(min_value=0, max_value=10))
def test_watermark_is_the_longest_contiguous_prefix(present: set[int], start: int) -> None:
    above = sorted(s for s in present if s > start)
    w = advance(start, above)
    assert all(s in present for s in range(start + 1, w + 1))
    assert w + 1 not in present
    for lo, hi in missing_ranges(w, [s for s in above if s > w]):
        assert lo > w and all(s not in present for s in range(lo, hi + 1))


# ------------------------------------------------------------------------------------------------ rows


def _parse_copy(copy: SampleCopy) -> list[tuple[str, str, int, float, int]]:
    data = copy.data
    assert data.startswith(COPY_HEADER) and data.endswith(COPY_TRAILER)
    pos, rows = len(COPY_HEADER), []
    while data[pos : pos + 2] != COPY_TRAILER:
        (nfields,) = struct.unpack_from(">h", data, pos)
        pos += 2
        fields = []
        for _ in range(nfields):
            (length,) = struct.unpack_from(">i", data, pos)
            fields.append(data[pos + 4 : pos + 4 + length])
            pos += 4 + length
        series, ts, value, seq = fields
        sid = struct.unpack(">i", series)[0] - 1
        rows.append((copy.devices[sid], copy.metrics[sid], struct.unpack(">q", ts)[0],
                     struct.unpack(">d", value)[0], struct.unpack(">q", seq)[0]))
    assert len(rows) == copy.rows
    return rows


def _batch(seq: int = 7, device: str = "esu-1") -> TelemetryBatch:
    return TelemetryBatch(gateway_id="gw", device_id=device, seq=seq, ts_us=(10, 20, 30), gateway_ts_us=40,
                          metrics={"power_w": (1.5, None, -2.25), "temp_c": (None, None, None), "z": (0.0, 1.0, 2.0)})


def test_binary_copy_matches_the_reference_rows() -> None:
    batches = [_batch(7, "esu-1"), _batch(8, "a.long-device_id.0123456789")]
    shaped = samples_copy(batches)
    expected = [row for b in batches for row in sample_rows(b)]
    assert shaped.rows == len(expected) == 10
    assert sorted(_parse_copy(shaped)) == sorted(expected)


def test_unmeasured_values_are_left_out() -> None:
    rows = sample_rows(_batch())
    assert ("esu-1", "power_w", 20, pytest.approx(0.0), 7) not in rows
    assert not [r for r in rows if r[1] == "temp_c"]


def test_empty_copy_is_just_header_and_trailer() -> None:
    assert samples_copy([]) == SampleCopy(COPY_HEADER + COPY_TRAILER, 0, (), ())


def test_limits() -> None:
    assert LIMITS.violation(NOW - 10, NOW + 10, NOW) is None
    assert "future" in (LIMITS.violation(NOW, NOW + 301_000_000, NOW) or "")
    assert "past" in (LIMITS.violation(NOW - 31 * 86_400_000_000, NOW, NOW) or "")


# ------------------------------------------------------------------------------------------------ classify


def _inbound(message: wire.Message, topic: str | None = None) -> Inbound:
    t = topic or wire.topics.device(message.gateway_id, message.device_id, wire.Kind.TELEMETRY)  # type: ignore[union-attr]
    return Inbound(t, wire.encode(message), mid=1, qos=1, gen=0)


def test_classify_accepts_a_good_batch() -> None:
    b = _batch().model_copy(update={"ts_us": (NOW, NOW + 1, NOW + 2)})
    item = classify(_inbound(b), max_bytes=10_000, limits=LIMITS, now_us=NOW)
    assert isinstance(item, Accepted) and item.message == b
    key = ledger_key(item.message)
    assert key is not None and (key.stream, key.seq, key.kind) == ("esu-1", 7, "telemetry")
    # counted once here, for the batcher and the ledger: the measured values, as TelemetryBatch.n_samples
    assert item.samples == b.n_samples == 5 and sample_count(item) == 5


def test_classify_rejects_time_out_of_range_with_a_ledger_key() -> None:
    item = classify(_inbound(_batch()), max_bytes=10_000, limits=LIMITS, now_us=NOW)
    assert isinstance(item, DeadLetter) and item.reason == "timestamp_out_of_range"
    assert item.ledger is not None and item.ledger.seq == 7 and item.device_id == "esu-1"


def test_classify_decode_errors_carry_no_ledger_key() -> None:
    inbound = Inbound("ortel/v1/gw/dev/esu-1/telemetry", b"{", mid=1, qos=1, gen=0)
    item = classify(inbound, max_bytes=10_000, limits=LIMITS, now_us=NOW)
    assert isinstance(item, DeadLetter) and item.reason == "malformed_json" and item.ledger is None
    assert (item.gateway_id, item.device_id) == ("gw", "esu-1")
    bad_topic = classify(Inbound("ortel/v1/g w/state", b"{}", 1, 1, 0), max_bytes=10, limits=LIMITS, now_us=NOW)
    assert isinstance(bad_topic, DeadLetter) and bad_topic.reason == "bad_topic" and bad_topic.gateway_id is None


def test_procedure_events_use_the_gateway_stream() -> None:
    ev = wire.ProcedureEvent(gateway_id="gw", seq=3, ts_us=NOW, kind="case_start", case_id="c1", room="OR",
                             procedure_type="x")
    key = ledger_key(ev)
    assert key is not None and key.stream == wire.PROCEDURE_STREAM


# ------------------------------------------------------------------------------------------------ plumbing


def test_no_transaction_migration_is_split_into_statements() -> None:
    by_key = {m.key: m for m in discover()}
    cagg = by_key["004_samples_1m.timescale"]
    assert not cagg.transactional and by_key["003_hypertables.timescale"].transactional
    statements = split_statements(cagg.sql)
    assert len(statements) == 3
    assert statements[0].startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS samples_1m")
    assert split_statements("SELECT ';'; DO $$ BEGIN PERFORM 1; END $$; -- x;\nSELECT 2") == [
        "SELECT ';'", "DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"]


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORTEL_INGEST_MQTT_PORT", "1999")
    monkeypatch.setenv("ORTEL_INGEST_BATCH_MAX_AGE_S", "0.5")
    s = IngestSettings()
    assert s.mqtt_port == 1999 and s.batch_max_age_s == 0.5 and s.mqtt_user == "ingest"
    assert all(f.description for f in IngestSettings.model_fields.values())
