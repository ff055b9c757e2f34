"""B4 at the contract: SQL-looking, path-traversal-looking, over-long and control-character ids never get past
``wire`` — neither in a topic level (``wire.topics.parse``) nor in a payload (the models), and ``wire.decode``
turns them into a ``DecodeError`` with a precise reason instead of a crash. (The dead-letter path in ingest
is tested by the ingest team.)"""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

import wire
from wire import topics

HOSTILE = [
    "x'); DROP TABLE samples;--",
    "dev' OR '1'='1",
    'dev"; DELETE FROM devices; --',
    "dev;rm -rf /",
    "../../etc/passwd",
    "..",
    ".",
    "..%2f..%2fetc",
    "dev/../gw-b",
    "dev\\..\\x",
    "%2e%2e",
    "dev\x00",
    "dev\n",
    "dev\r\nX-Injected: 1",
    "dev\t1",
    "dev 1",
    "-dev",
    "_dev",
    "dev+",
    "dev#",
    "$SYS",
    "dév",  # non-ASCII: looks like 'dev' in a log, is not
    "ｄｅｖ",  # fullwidth homoglyphs
    "a" * 65,
    "",
]
OK_IDS = ["esu-01", "OR1.insufflator_2", "a", "9", "a" * 64]


def _batch(gw: str, device: str) -> dict[str, object]:
    return {"v": 1, "gateway_id": gw, "device_id": device, "seq": 1, "ts_us": [1_700_000_000_000_000],
            "metrics": {"power_w": [10.0]}, "gateway_ts_us": 1_700_000_000_000_000}


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_device_id_in_topic_is_rejected(hostile: str) -> None:
    topic = f"ortel/v1/gw-1/dev/{hostile}/telemetry"
    with pytest.raises(wire.TopicError):
        topics.parse(topic)
    with pytest.raises(wire.DecodeError) as exc:
        wire.decode(topic, orjson.dumps(_batch("gw-1", hostile)))
    assert exc.value.reason == "bad_topic"


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_gateway_id_in_topic_is_rejected(hostile: str) -> None:
    for topic in (f"ortel/v1/{hostile}/state", f"ortel/v1/{hostile}/procedure",
                  f"ortel/v1/{hostile}/dev/d1/event", f"ortel/v1/gw-1/ack/{hostile}"):
        with pytest.raises(wire.TopicError):
            topics.parse(topic)


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_ids_in_payloads_are_invalid(hostile: str) -> None:
    """A valid topic with a hostile id in the payload: the model refuses it before the identity check."""
    with pytest.raises(wire.DecodeError) as exc:
        wire.decode("ortel/v1/gw-1/dev/d1/telemetry", orjson.dumps(_batch("gw-1", hostile)))
    assert exc.value.reason == "invalid"
    with pytest.raises(wire.DecodeError) as exc:
        wire.decode("ortel/v1/gw-1/dev/d1/telemetry", orjson.dumps(_batch(hostile, "d1")))
    assert exc.value.reason == "invalid"
    with pytest.raises(ValidationError):
        wire.DeviceBirth(gateway_id="gw-1", device_id=hostile, ts_us=1, device_type="esu")
    with pytest.raises(ValidationError):
        wire.GatewayState(gateway_id=hostile, state="online", ts_us=1, boot_id="b1")


@pytest.mark.parametrize("hostile", ["x'); DROP TABLE samples;--", "../../etc/passwd", "dev\x00", "a" * 65])
def test_hostile_case_ids_and_metric_names_are_invalid(hostile: str) -> None:
    with pytest.raises(ValidationError):
        wire.ProcedureEvent(gateway_id="gw-1", seq=1, ts_us=1, kind="case_start", case_id=hostile, room="OR1",
                            procedure_type="lap-chole")
    with pytest.raises(ValidationError):
        wire.TelemetryBatch(gateway_id="gw-1", device_id="d1", seq=1, ts_us=(1,), metrics={hostile: (1.0,)},
                            gateway_ts_us=1)


def test_topic_with_extra_levels_cannot_smuggle_a_path() -> None:
    for topic in ("ortel/v1/gw-1/dev/d1/../gw-2/telemetry", "ortel/v1/gw-1/dev/d1/telemetry/extra",
                  "ortel/v1/gw-1/../gw-2/state", "ortel/v1//state", "ortel/v1/gw-1/dev//telemetry",
                  "/ortel/v1/gw-1/state", "ortel/v1/gw-1/state/"):
        with pytest.raises(wire.TopicError):
            topics.parse(topic)


@pytest.mark.parametrize("good", OK_IDS)
def test_ordinary_ids_pass(good: str) -> None:
    """The control: the same checks accept the ids real devices use."""
    parsed, message = wire.decode(f"ortel/v1/gw-1/dev/{good}/telemetry", orjson.dumps(_batch("gw-1", good)))
    assert parsed.device_id == good
    assert isinstance(message, wire.TelemetryBatch)
