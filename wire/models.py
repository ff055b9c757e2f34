"""Messages of the ortel wire contract, schema version 1.

Every message is a frozen value object with an explicit schema version ``v``. Time is an integer count of
microseconds since the Unix epoch (UTC) so that it is exact in JSON and maps one-to-one onto PostgreSQL's
``timestamptz``. Units are UCUM codes carried in the device birth (``MetricDef.unit``).

Reliability fields: each device (and each gateway's procedure stream) numbers the records it sends with a
monotonically increasing ``seq``. Ingest stores records idempotently and publishes a ``Watermark``: the highest
``seq`` below which everything is durably stored. That is the end-to-end acknowledgement the edge agent waits for
before it forgets a record.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

__all__ = [
    "SCHEMA_VERSION",
    "DeviceBirth",
    "DeviceStatus",
    "Event",
    "EventKind",
    "GatewayState",
    "Message",
    "MetricDef",
    "ProcedureEvent",
    "Severity",
    "TelemetryBatch",
    "Watermark",
]

SCHEMA_VERSION = 1
MAX_SAMPLES_PER_BATCH = 10_000

# Ids travel inside MQTT topic levels and SQL rows: no '/', '+', '#', spaces or control characters.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
# A case id is an opaque pseudonym made on the gateway (see edge_agent privacy); never a patient identifier.
CaseId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Text = Annotated[str, StringConstraints(max_length=500)]
Label = Annotated[str, StringConstraints(max_length=120)]
TimeUs = Annotated[int, Field(ge=0, lt=2**53)]
Seq = Annotated[int, Field(ge=1, lt=2**63)]


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    v: Literal[1] = 1  # SCHEMA_VERSION


class GatewayState(_Message):
    """Retained on ``ortel/v1/{gw}/state``: a birth on connect, the Last Will death when the link drops."""

    gateway_id: Id
    state: Literal["online", "offline"]
    ts_us: TimeUs
    boot_id: Id  # changes on every agent start, so a late death from an old session can be recognised
    room: Label | None = None
    agent_version: Label | None = None


class MetricDef(_Message):
    name: MetricName
    unit: Annotated[str, StringConstraints(max_length=32)]  # UCUM code, e.g. "mm[Hg]", "W", "Ohm", "L/min"
    description: Text = ""
    low: float | None = None  # physiological / device range, for plots and plausibility checks
    high: float | None = None


class DeviceBirth(_Message):
    """Retained on ``ortel/v1/{gw}/dev/{device}/birth``: who the device is and what it measures."""

    gateway_id: Id
    device_id: Id
    ts_us: TimeUs
    device_type: Id  # e.g. "esu", "insufflator"
    manufacturer: Label = ""
    model: Label = ""
    serial: Label = ""
    firmware: Label = ""
    udi: Annotated[str, StringConstraints(max_length=200)] | None = None  # GS1/HIBCC UDI-DI of the device
    room: Label | None = None
    metrics: tuple[MetricDef, ...] = ()
    heartbeat_s: Annotated[float, Field(gt=0, le=3600)] = 10.0


class DeviceStatus(_Message):
    """Heartbeat on ``ortel/v1/{gw}/dev/{device}/status``: the gateway still sees (or lost) the device."""

    gateway_id: Id
    device_id: Id
    ts_us: TimeUs
    connected: bool
    last_sample_us: TimeUs | None = None


class TelemetryBatch(_Message):
    """Columnar samples of one device on ``ortel/v1/{gw}/dev/{device}/telemetry``.

    ``ts_us[i]`` is the device's clock for row i; ``metrics[name][i]`` its value (``None``: not measured).
    ``gateway_ts_us`` is when the gateway sealed the batch and ``clock_offset_us`` its estimate of
    (gateway clock - device clock). ``replay`` marks a batch re-sent from the outbox after an outage.
    """

    gateway_id: Id
    device_id: Id
    seq: Seq
    ts_us: Annotated[tuple[TimeUs, ...], Field(min_length=1, max_length=MAX_SAMPLES_PER_BATCH)]
    metrics: dict[MetricName, tuple[float | None, ...]]
    gateway_ts_us: TimeUs
    clock_offset_us: int = 0
    clock_jump: bool = False
    replay: bool = False

    @model_validator(mode="after")
    def _columns_line_up(self) -> Self:
        n = len(self.ts_us)
        if not self.metrics:
            raise ValueError("a batch carries at least one metric")
        for name, values in self.metrics.items():
            if len(values) != n:
                raise ValueError(f"metric {name!r} has {len(values)} values for {n} timestamps")
        return self

    @property
    def n_samples(self) -> int:
        return sum(sum(v is not None for v in values) for values in self.metrics.values())


class EventKind(StrEnum):
    ACTIVATION_START = "activation_start"
    ACTIVATION_STOP = "activation_stop"
    ALARM_RAISED = "alarm_raised"
    ALARM_CLEARED = "alarm_cleared"
    FAULT = "fault"
    INFO = "info"  # e.g. stapler firing, cartridge loaded, clutch pedal
    OUTBOX_DROP = "outbox_drop"  # the gateway had to drop records; attrs name the seq range
    CLOCK_JUMP = "clock_jump"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class Event(_Message):
    """A discrete event of one device on ``ortel/v1/{gw}/dev/{device}/event``; shares the device's ``seq``."""

    gateway_id: Id
    device_id: Id
    seq: Seq
    ts_us: TimeUs
    kind: EventKind
    code: Label | None = None  # alarm or fault code, activation mode ("cut", "coag"), firing id
    severity: Severity | None = None
    text: Text = ""
    case_id: CaseId | None = None
    attrs: dict[MetricName, str | int | float | bool] = Field(default_factory=dict)
    gateway_ts_us: TimeUs | None = None
    replay: bool = False

    @model_validator(mode="after")
    def _alarms_are_complete(self) -> Self:
        if self.kind in (EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED, EventKind.FAULT) and not self.code:
            raise ValueError(f"{self.kind} needs a code")
        if self.kind is EventKind.ALARM_RAISED and self.severity is None:
            raise ValueError("alarm_raised needs a severity")
        return self


class ProcedureEvent(_Message):
    """Procedure context on ``ortel/v1/{gw}/procedure``; numbered in the gateway's own ``seq`` stream.

    No patient identifiers: ``case_id`` is a keyed pseudonym made on the gateway.
    """

    gateway_id: Id
    seq: Seq
    ts_us: TimeUs
    kind: Literal["case_start", "phase_start", "phase_end", "case_end"]
    case_id: CaseId
    room: Label
    procedure_type: Label
    phase: Label | None = None
    replay: bool = False

    @model_validator(mode="after")
    def _phase_named(self) -> Self:
        if self.kind in ("phase_start", "phase_end") and not self.phase:
            raise ValueError(f"{self.kind} needs a phase")
        return self


class Watermark(_Message):
    """Retained on ``ortel/v1/{gw}/ack/{stream}`` by ingest: every ``seq`` <= ``seq`` is durably stored."""

    gateway_id: Id
    stream: str  # a device id, or PROCEDURE_STREAM for the gateway's procedure events
    seq: Annotated[int, Field(ge=0)]
    ts_us: TimeUs


Message = GatewayState | DeviceBirth | DeviceStatus | TelemetryBatch | Event | ProcedureEvent | Watermark
