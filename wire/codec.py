"""Encoding of wire messages: orjson out, one validated model in, one error type (``DecodeError``).

``decode`` checks, in this order, so that every dead letter gets the most precise reason: topic shape, size,
JSON syntax, schema version, the model itself, and finally that the payload names the gateway and device of its
topic (a gateway must not speak for another).
"""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError

from wire import topics
from wire.errors import DecodeError, TopicError
from wire.models import (
    SCHEMA_VERSION,
    DeviceBirth,
    DeviceStatus,
    Event,
    GatewayState,
    Message,
    ProcedureEvent,
    TelemetryBatch,
    Watermark,
)
from wire.topics import Kind, Topic

__all__ = ["DEFAULT_MAX_BYTES", "MODEL_BY_KIND", "decode", "encode"]

DEFAULT_MAX_BYTES = 256 * 1024

MODEL_BY_KIND: dict[Kind, type[BaseModel]] = {
    Kind.STATE: GatewayState,
    Kind.BIRTH: DeviceBirth,
    Kind.STATUS: DeviceStatus,
    Kind.TELEMETRY: TelemetryBatch,
    Kind.EVENT: Event,
    Kind.PROCEDURE: ProcedureEvent,
    Kind.ACK: Watermark,
}


def encode(message: Message) -> bytes:
    """Serialise a message; ``exclude_defaults`` keeps batches small, the decoder fills defaults back in."""
    return orjson.dumps(message.model_dump(mode="json", exclude_defaults=True) | {"v": message.v})


def decode(topic: str, payload: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[Topic, Message]:
    try:
        parsed = topics.parse(topic)
    except TopicError as exc:
        raise DecodeError(topic=topic, reason="bad_topic", detail=exc.reason) from None
    if len(payload) > max_bytes:
        raise DecodeError(topic=topic, reason="oversize", detail=f"{len(payload)} bytes > {max_bytes}")
    try:
        raw: Any = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(topic=topic, reason="malformed_json", detail=str(exc)[:200]) from None
    if not isinstance(raw, dict):
        raise DecodeError(topic=topic, reason="malformed_json", detail=f"expected an object, got {type(raw).__name__}")
    version = raw.get("v")
    if version != SCHEMA_VERSION:
        raise DecodeError(
            topic=topic, reason="unsupported_version", detail=f"v={version!r}, this build speaks v={SCHEMA_VERSION}"
        )
    try:
        message: Message = MODEL_BY_KIND[parsed.kind].model_validate(raw)  # type: ignore[assignment]
    except ValidationError as exc:
        raise DecodeError(topic=topic, reason="invalid", detail=_summarise(exc)) from None
    _check_identity(topic, parsed, message)
    return parsed, message


def _summarise(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors[:5]]
    more = f" (+{len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _check_identity(topic: str, parsed: Topic, message: Message) -> None:
    if message.gateway_id != parsed.gateway_id:
        raise DecodeError(
            topic=topic,
            reason="topic_mismatch",
            detail=f"payload gateway {message.gateway_id!r} != topic gateway {parsed.gateway_id!r}",
        )
    device_id = getattr(message, "device_id", None)
    if parsed.device_id is not None and device_id != parsed.device_id:
        raise DecodeError(
            topic=topic,
            reason="topic_mismatch",
            detail=f"payload device {device_id!r} != topic device {parsed.device_id!r}",
        )
    if isinstance(message, Watermark) and message.stream != parsed.stream:
        raise DecodeError(topic=topic, reason="topic_mismatch", detail="watermark stream differs from topic")
