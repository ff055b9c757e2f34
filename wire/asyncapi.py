"""An AsyncAPI 3.0 description of the ortel/v1 topics, generated from the contract itself.

Channel addresses come from ``wire.topics`` (a ``Topic`` rendered with placeholder ids) and payload schemas
from the pydantic models (``model_json_schema``), so the document cannot describe a contract the code does
not speak. ``docs/asyncapi.json`` is this function's output (``ortel asyncapi`` writes it); a test regenerates
it in memory and fails when the two drift.

The application described is a gateway (the edge agent): it *sends* state, births, heartbeats, telemetry,
events and procedure context, and *receives* the commit watermarks ingest publishes. Pure: no I/O.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from wire.codec import MODEL_BY_KIND
from wire.models import MAX_SAMPLES_PER_BATCH, SCHEMA_VERSION
from wire.topics import PROCEDURE_STREAM, Kind, Topic

__all__ = ["build", "render"]

ASYNCAPI_VERSION = "3.0.0"
_REF = "#/components/schemas/{model}"
_ID_RULE = "1-64 characters of [A-Za-z0-9._-], starting with a letter or digit"


class _Channel:
    """What the contract says about one kind of topic, beyond its address and payload."""

    def __init__(self, name: str, summary: str, *, qos: int | None, retain: bool, action: str = "send") -> None:
        self.name, self.summary, self.qos, self.retain, self.action = name, summary, qos, retain, action


_CHANNELS: dict[Kind, _Channel] = {
    Kind.STATE: _Channel(
        "gatewayState", "Gateway online/offline. Retained; the offline message is also the gateway's Last Will.",
        qos=1, retain=True),
    Kind.BIRTH: _Channel(
        "deviceBirth", "Who a device is and what it measures (metrics, units, ranges). Retained.",
        qos=1, retain=True),
    Kind.STATUS: _Channel(
        "deviceStatus", "Heartbeat: the gateway still sees (or lost) the device.", qos=None, retain=False),
    Kind.TELEMETRY: _Channel(
        "deviceTelemetry",
        f"Columnar samples of one device, numbered with the device's seq (at most {MAX_SAMPLES_PER_BATCH} rows).",
        qos=1, retain=False),
    Kind.EVENT: _Channel(
        "deviceEvent", "A discrete device event (activation, alarm, fault, outbox drop); shares the device's seq.",
        qos=1, retain=False),
    Kind.PROCEDURE: _Channel(
        "procedure", f"Procedure context (case/phase start and end), numbered in stream {PROCEDURE_STREAM!r}.",
        qos=1, retain=False),
    Kind.ACK: _Channel(
        "commitWatermark",
        "Published by ingest only, retained: every seq <= seq of the stream is durably stored. The gateway "
        "deletes what the watermark covers and re-sends the rest.",
        qos=1, retain=True, action="receive"),
}

_PARAMETERS = {
    "gatewayId": {"description": f"Gateway id ({_ID_RULE}); on the TLS listener the client certificate's CN."},
    "deviceId": {"description": f"Device id ({_ID_RULE})."},
    "stream": {"description": f"A device id, or {PROCEDURE_STREAM!r} for the gateway's procedure events."},
}


def _address(kind: Kind) -> str:
    return str(Topic(kind, "{gatewayId}", device_id="{deviceId}", stream="{stream}"))


def _schemas(models: list[type[BaseModel]]) -> dict[str, Any]:
    """Each model's JSON schema with its ``$defs`` lifted into components.schemas (shared by reference)."""
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF, mode="validation")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return dict(sorted(out.items()))


def _channel(kind: Kind, spec: _Channel, model: type[BaseModel]) -> dict[str, Any]:
    address = _address(kind)
    params = {name: _PARAMETERS[name] for name in _PARAMETERS if "{" + name + "}" in address}
    return {
        "address": address,
        "title": spec.name,
        "summary": spec.summary,
        "messages": {model.__name__: {"$ref": f"#/components/messages/{model.__name__}"}},
        "parameters": params,
    }


def _operation(spec: _Channel) -> dict[str, Any]:
    binding: dict[str, Any] = {"retain": spec.retain, "bindingVersion": "0.2.0"}
    if spec.qos is not None:
        binding["qos"] = spec.qos
    return {
        "action": spec.action,
        "channel": {"$ref": f"#/channels/{spec.name}"},
        "summary": spec.summary,
        "bindings": {"mqtt": binding},
    }


def build() -> dict[str, Any]:
    """The AsyncAPI document as a plain dict (deterministic: same contract, same document)."""
    kinds = [k for k in Kind if k in _CHANNELS]
    models = [MODEL_BY_KIND[k] for k in kinds]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "ortel wire contract",
            "version": f"{SCHEMA_VERSION}.0.0",
            "description": (
                "MQTT 5 topics between ortel gateways (edge agents) and ingest. Payloads are UTF-8 JSON objects "
                f"carrying the schema version v={SCHEMA_VERSION}; times are integer microseconds since the Unix "
                "epoch (*_us). Generated from wire/ by `ortel asyncapi`; do not edit by hand."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "tls": {
                "host": "localhost:8883",
                "protocol": "secure-mqtt",
                "protocolVersion": "5",
                "description": "Gateways: mutual TLS, client certificate signed by the ortel CA, CN = gateway id.",
            },
            "local": {
                "host": "localhost:1883",
                "protocol": "mqtt",
                "protocolVersion": "5",
                "description": "Loopback only: user name and password (ingest, ortel-admin, development).",
            },
        },
        "channels": {_CHANNELS[k].name: _channel(k, _CHANNELS[k], MODEL_BY_KIND[k]) for k in kinds},
        "operations": {
            f"{_CHANNELS[k].action}{_CHANNELS[k].name[0].upper()}{_CHANNELS[k].name[1:]}": _operation(_CHANNELS[k])
            for k in kinds
        },
        "components": {
            "messages": {
                m.__name__: {
                    "name": m.__name__,
                    "title": m.__name__,
                    "summary": (m.__doc__ or "").strip().splitlines()[0] if m.__doc__ else m.__name__,
                    "contentType": "application/json",
                    "payload": {"$ref": _REF.format(model=m.__name__)},
                }
                for m in models
            },
            "schemas": _schemas(models),
        },
    }


def render() -> str:
    """``build()`` as the exact text committed in docs/asyncapi.json."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"
