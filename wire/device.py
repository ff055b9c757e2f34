"""The local device protocol: what a device (or a simulator standing in for one) tells its gateway.

One JSON object per line (newline-delimited JSON) over a TCP socket, a serial port or a local MQTT bus, or the
same objects handed over in process. These are *inputs* to the edge agent, in the device's own units and clock,
possibly carrying data that must never leave the gateway (``patient`` fields, a hospital case number): the
agent's adapters normalise them into the wire messages of ``wire.models`` (units converted, seq assigned, case
id pseudonymised, unknown fields dropped).

    {"type": "hello", "device_id": "esu-or1", "device_type": "esu", "metrics": [{"name": "power_w", "unit": "W"}]}
    {"type": "sample", "device_id": "esu-or1", "ts_us": 1763884800000000, "values": {"power_w": 42.0}}
    {"type": "event", "device_id": "esu-or1", "ts_us": ..., "kind": "activation_start", "code": "cut"}
    {"type": "procedure", "ts_us": ..., "kind": "phase_start", "case_id": "C-2026-0042", "phase": "dissection",
     "procedure_type": "lap-chole"}
    {"type": "bye", "device_id": "esu-or1", "ts_us": ...}
"""

from __future__ import annotations

from typing import Annotated, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from wire.errors import DecodeError
from wire.models import EventKind, Id, Label, MetricDef, MetricName, Severity, Text, TimeUs

__all__ = [
    "Bye",
    "DeviceEvent",
    "DeviceLine",
    "Hello",
    "Procedure",
    "Sample",
    "encode_line",
    "parse_line",
]


class _Line(BaseModel):
    # Devices send more than we need (and sometimes what we must not forward): ignore unknown fields here,
    # the adapter decides what crosses the gateway.
    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)


class Hello(_Line):
    type: Literal["hello"] = "hello"
    device_id: Id
    device_type: Id
    manufacturer: Label = ""
    model: Label = ""
    serial: Label = ""
    firmware: Label = ""
    udi: Annotated[str, Field(max_length=200)] | None = None
    metrics: tuple[MetricDef, ...] = ()  # units as the device reports them; the agent may convert
    heartbeat_s: Annotated[float, Field(gt=0, le=3600)] = 10.0


class Sample(_Line):
    type: Literal["sample"] = "sample"
    device_id: Id
    ts_us: TimeUs  # the device's own clock
    values: dict[MetricName, float | None]
    units: dict[MetricName, str] = Field(default_factory=dict)  # only where it differs from the hello


class DeviceEvent(_Line):
    type: Literal["event"] = "event"
    device_id: Id
    ts_us: TimeUs
    kind: EventKind
    code: Label | None = None
    severity: Severity | None = None
    text: Text = ""
    case_id: Annotated[str, Field(max_length=200)] | None = None  # raw; pseudonymised by the agent
    attrs: dict[MetricName, str | int | float | bool] = Field(default_factory=dict)


class Procedure(_Line):
    type: Literal["procedure"] = "procedure"
    ts_us: TimeUs
    kind: Literal["case_start", "phase_start", "phase_end", "case_end"]
    case_id: Annotated[str, Field(min_length=1, max_length=200)]  # raw hospital case number: never forwarded
    procedure_type: Label
    phase: Label | None = None


class Bye(_Line):
    type: Literal["bye"] = "bye"
    device_id: Id
    ts_us: TimeUs


DeviceLine = Annotated[Hello | Sample | DeviceEvent | Procedure | Bye, Field(discriminator="type")]
_ADAPTER: TypeAdapter[Hello | Sample | DeviceEvent | Procedure | Bye] = TypeAdapter(DeviceLine)


def parse_line(line: bytes | str, *, source: str = "device") -> Hello | Sample | DeviceEvent | Procedure | Bye:
    """Parse one NDJSON line; raise ``DecodeError`` (topic = ``source``) on anything malformed."""
    try:
        raw = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(topic=source, reason="malformed_json", detail=str(exc)[:200]) from None
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)[:5]
        )
        raise DecodeError(topic=source, reason="invalid", detail=detail) from None


def encode_line(line: Hello | Sample | DeviceEvent | Procedure | Bye) -> bytes:
    return orjson.dumps(line.model_dump(mode="json", exclude_defaults=True) | {"type": line.type}) + b"\n"
