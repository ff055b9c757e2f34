"""docs/asyncapi.json is exactly what wire/asyncapi.py generates from the contract, and describes it truly:
every topic kind has a channel whose address parses back to that kind, and real encoded messages validate
against the payload schemas it publishes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

import wire
from wire import asyncapi, topics
from wire.codec import MODEL_BY_KIND
from wire.topics import Kind

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "asyncapi.json"
T0 = 1_700_000_000_000_000

SAMPLES: dict[Kind, wire.Message] = {
    Kind.STATE: wire.GatewayState(gateway_id="gw-1", state="online", ts_us=T0, boot_id="b1", room="OR1"),
    Kind.BIRTH: wire.DeviceBirth(
        gateway_id="gw-1", device_id="esu-1", ts_us=T0, device_type="esu",
        metrics=(wire.MetricDef(name="power_w", unit="W", low=0, high=400),),
    ),
    Kind.STATUS: wire.DeviceStatus(gateway_id="gw-1", device_id="esu-1", ts_us=T0, connected=True),
    Kind.TELEMETRY: wire.TelemetryBatch(
        gateway_id="gw-1", device_id="esu-1", seq=3, ts_us=(T0, T0 + 100_000),
        metrics={"power_w": (40.0, None)}, gateway_ts_us=T0 + 200_000,
    ),
    Kind.EVENT: wire.Event(gateway_id="gw-1", device_id="esu-1", seq=4, ts_us=T0, kind=wire.EventKind.ALARM_RAISED,
                           code="E12", severity=wire.Severity.HIGH, attrs={"from_seq": 1}),
    Kind.PROCEDURE: wire.ProcedureEvent(gateway_id="gw-1", seq=1, ts_us=T0, kind="phase_start", case_id="c-1",
                                        room="OR1", procedure_type="lap-chole", phase="dissection"),
    Kind.ACK: wire.Watermark(gateway_id="gw-1", stream="esu-1", seq=4, ts_us=T0),
}


def test_committed_document_matches_the_generator() -> None:
    """Fails when wire/ changed and docs/asyncapi.json was not regenerated: run `ortel asyncapi`."""
    assert DOC.read_text() == asyncapi.render(), "docs/asyncapi.json is stale: run `ortel asyncapi`"


def test_generation_is_deterministic_and_pure() -> None:
    assert asyncapi.render() == asyncapi.render()
    assert json.loads(asyncapi.render()) == asyncapi.build()


def _channel_for(doc: dict[str, Any], kind: Kind) -> dict[str, Any]:
    model = MODEL_BY_KIND[kind].__name__
    found = [c for c in doc["channels"].values() if model in c["messages"]]
    assert len(found) == 1, kind
    return found[0]


@pytest.mark.parametrize("kind", list(Kind))
def test_every_topic_kind_has_a_channel_whose_address_parses_back(kind: Kind) -> None:
    doc = asyncapi.build()
    channel = _channel_for(doc, kind)
    address = channel["address"]
    concrete = address.format(gatewayId="gw-1", deviceId="esu-1", stream="esu-1")
    assert topics.parse(concrete).kind is kind
    assert set(channel["parameters"]) == {p[1:-1] for p in address.split("/") if p.startswith("{")}


def _resolve(doc: dict[str, Any], ref: str) -> Any:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_reference_resolves() -> None:
    doc = asyncapi.build()
    for ref in _refs(doc):
        assert _resolve(doc, ref) is not None, ref


@pytest.mark.parametrize("kind", list(Kind))
def test_real_encoded_messages_validate_against_the_published_schema(kind: Kind) -> None:
    doc = asyncapi.build()
    name = MODEL_BY_KIND[kind].__name__
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    payload = orjson.loads(wire.encode(SAMPLES[kind]))
    jsonschema.validate(payload, schema)
    bad = payload | {"gateway_id": "x'); DROP TABLE samples;--"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_operations_say_who_sends_what() -> None:
    doc = asyncapi.build()
    actions = {op["channel"]["$ref"].split("/")[-1]: op["action"] for op in doc["operations"].values()}
    ack = next(n for n, c in doc["channels"].items() if "Watermark" in c["messages"])
    assert actions.pop(ack) == "receive"  # ingest publishes watermarks; a gateway only reads its own
    assert set(actions.values()) == {"send"}
