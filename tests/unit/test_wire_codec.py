"""The codec: property-based round trips and a precise reason for every kind of bad input."""

from __future__ import annotations

import math

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import wire
from wire import DecodeError, Kind, TelemetryBatch, topics

ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,20}\Z")
metric_names = st.from_regex(r"\A[a-z][a-z0-9_]{0,12}\Z")
times = st.integers(min_value=0, max_value=2**53 - 1)
values = st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False, width=64))


@st.composite
def batches(draw: st.DrawFn) -> TelemetryBatch:
    n = draw(st.integers(min_value=1, max_value=20))
    names = draw(st.lists(metric_names, min_size=1, max_size=4, unique=True))
    return draw(
        st.builds(
            TelemetryBatch,
            gateway_id=ids,
            device_id=ids,
            seq=st.integers(min_value=1, max_value=2**62),
            ts_us=st.lists(times, min_size=n, max_size=n).map(tuple),
            metrics=st.fixed_dictionaries({m: st.lists(values, min_size=n, max_size=n).map(tuple) for m in names}),
            gateway_ts_us=times,
            clock_offset_us=st.integers(min_value=-(2**40), max_value=2**40),
            replay=st.booleans(),
        )
    )


@settings(max_examples=200, deadline=None)
@given(batches())
def test_batch_round_trips(batch: TelemetryBatch) -> None:
    topic = topics.device(batch.gateway_id, batch.device_id, Kind.TELEMETRY)
    parsed, decoded = wire.decode(topic, wire.encode(batch))
    assert decoded == batch
    assert parsed.device_id == batch.device_id


@given(ids, ids, st.sampled_from([Kind.BIRTH, Kind.STATUS, Kind.TELEMETRY, Kind.EVENT]))
def test_topics_round_trip(gw: str, dev: str, kind: Kind) -> None:
    parsed = topics.parse(topics.device(gw, dev, kind))
    assert (parsed.gateway_id, parsed.device_id, parsed.kind) == (gw, dev, kind)


GOOD = wire.encode(
    TelemetryBatch(gateway_id="gw1", device_id="d1", seq=1, ts_us=(1, 2), metrics={"p_w": (1.0, 2.0)}, gateway_ts_us=3)
)
TOPIC = "ortel/v1/gw1/dev/d1/telemetry"


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (TOPIC, b'{"gateway_id": "gw1"', "malformed_json"),
        (TOPIC, b"[1, 2]", "malformed_json"),
        (TOPIC, GOOD.replace(b"1.0", b"NaN"), "malformed_json"),
        (TOPIC, GOOD.replace(b"1.0", b"Infinity"), "malformed_json"),
        (TOPIC, GOOD.replace(b'"v":1', b'"v":2'), "unsupported_version"),
        (TOPIC, GOOD.replace(b',"v":1', b""), "unsupported_version"),
        (TOPIC, GOOD.replace(b'"seq":1', b'"seq":"one"'), "invalid"),
        (TOPIC, GOOD.replace(b'"seq":1,', b""), "invalid"),
        (TOPIC, GOOD.replace(b"[1.0,2.0]", b"[1.0]"), "invalid"),
        (TOPIC, GOOD.replace(b"[1.0,2.0]", b"[1e999,2.0]"), "malformed_json"),
        (TOPIC, GOOD.replace(b'"seq":1', b'"seq":1,"extra":true'), "invalid"),
        ("ortel/v1/gw1/dev/d2/telemetry", GOOD, "topic_mismatch"),
        ("ortel/v1/gw2/dev/d1/telemetry", GOOD, "topic_mismatch"),
        ("ortel/v1/gw1/dev/x'); DROP TABLE samples;--/telemetry", GOOD, "bad_topic"),
        ("ortel/v1/gw1/dev/../../etc/telemetry", GOOD, "bad_topic"),
        ("ortel/v2/gw1/dev/d1/telemetry", GOOD, "bad_topic"),
        ("ortel/v1/gw1/dev/d1/unknown", GOOD, "bad_topic"),
        (TOPIC, b" " * (wire.DEFAULT_MAX_BYTES + 1), "oversize"),
    ],
)
def test_bad_input_has_a_precise_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        wire.decode(topic, payload)
    assert info.value.reason == reason
    assert info.value.topic == topic


def test_hostile_ids_cannot_enter_a_model() -> None:
    for hostile in ["x'); DROP TABLE samples;--", "../../etc/passwd", "a" * 65, "bad\x00id", "spa ce", "#", "+"]:
        with pytest.raises(ValueError, match="String should match pattern"):
            TelemetryBatch(gateway_id="gw", device_id=hostile, seq=1, ts_us=(1,), metrics={"a": (1.0,)},
                           gateway_ts_us=1)


def test_alarm_needs_code_and_severity() -> None:
    with pytest.raises(ValueError, match="needs a code"):
        wire.Event(gateway_id="g", device_id="d", seq=1, ts_us=1, kind=wire.EventKind.ALARM_RAISED)
    with pytest.raises(ValueError, match="needs a severity"):
        wire.Event(gateway_id="g", device_id="d", seq=1, ts_us=1, kind=wire.EventKind.ALARM_RAISED, code="X")


def test_messages_are_frozen() -> None:
    batch = wire.decode(TOPIC, GOOD)[1]
    with pytest.raises(ValueError, match="frozen"):
        batch.seq = 2  # type: ignore[misc]
    assert not math.isnan(batch.metrics["p_w"][0] or 0.0)
    assert orjson.loads(GOOD)["v"] == wire.SCHEMA_VERSION
