"""The ortel wire contract: messages, topics and codec shared by every component (schema v1)."""

from wire import topics
from wire.codec import DEFAULT_MAX_BYTES, decode, encode
from wire.errors import DecodeError, TopicError, WireError
from wire.models import (
    SCHEMA_VERSION,
    DeviceBirth,
    DeviceStatus,
    Event,
    EventKind,
    GatewayState,
    Message,
    MetricDef,
    ProcedureEvent,
    Severity,
    TelemetryBatch,
    Watermark,
)
from wire.topics import PROCEDURE_STREAM, Kind, Topic

__all__ = [
    "DEFAULT_MAX_BYTES",
    "PROCEDURE_STREAM",
    "SCHEMA_VERSION",
    "DecodeError",
    "DeviceBirth",
    "DeviceStatus",
    "Event",
    "EventKind",
    "GatewayState",
    "Kind",
    "Message",
    "MetricDef",
    "ProcedureEvent",
    "Severity",
    "TelemetryBatch",
    "Topic",
    "TopicError",
    "Watermark",
    "WireError",
    "decode",
    "encode",
    "topics",
]
