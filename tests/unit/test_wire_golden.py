"""Golden payloads: every message kind decodes from its committed example and encodes back byte for byte."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

import wire
from wire.device import encode_line, parse_line

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
CASES = sorted(GOLDEN.glob("*.json"))


def test_every_message_kind_has_a_golden_example() -> None:
    kinds = {wire.topics.parse(orjson.loads(p.read_bytes())["topic"]).kind for p in CASES}
    assert kinds == set(wire.Kind)


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_golden_round_trip(path: Path) -> None:
    case = orjson.loads(path.read_bytes())
    payload = orjson.dumps(case["payload"])
    topic, message = wire.decode(case["topic"], payload)
    assert str(topic) == case["topic"]
    assert orjson.loads(wire.encode(message)) == case["payload"]
    assert wire.decode(case["topic"], wire.encode(message))[1] == message


def test_device_lines_round_trip() -> None:
    raw = (GOLDEN / "device_lines.ndjson").read_bytes().splitlines(keepends=True)
    parsed = [parse_line(line) for line in raw]
    assert [p.type for p in parsed] == ["hello", "sample", "event", "procedure", "bye"]
    assert [encode_line(p) for p in parsed] == raw


def test_device_line_drops_fields_it_does_not_know() -> None:
    line = parse_line(b'{"type":"sample","device_id":"d1","ts_us":1,"values":{"power_w":1},"patient":"Jane Doe"}')
    assert b"Jane" not in encode_line(line)
