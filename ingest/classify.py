"""From an MQTT message to what the writer stores (pure): an ``Accepted`` message or a ``DeadLetter``.

Checks run in the order of ``wire.decode`` (topic, size, JSON, version, schema, identity) and then ours:
record timestamps within ``Limits`` of the ingest clock. ``unknown_device`` needs the database and is decided
by the writer. A permanent rejection of a decodable numbered record carries its ledger key so that the
watermark can pass it (re-sending cannot help); decode failures cannot name a seq and carry none.
"""

from __future__ import annotations

from dataclasses import dataclass

import wire
from ingest.rows import Limits
from wire import DecodeError, Event, Message, ProcedureEvent, TelemetryBatch, Topic

__all__ = [
    "Accepted",
    "DeadLetter",
    "Inbound",
    "Item",
    "LedgerKey",
    "classify",
    "ledger_key",
    "sample_count",
]

OWN_REASONS = ("unknown_device", "timestamp_out_of_range", "constraint")


@dataclass(frozen=True, slots=True)
class Inbound:
    """One MQTT message as received; ``mid``/``qos``/``gen`` say how (and on which connection) to ack it."""

    topic: str
    payload: bytes
    mid: int
    qos: int
    gen: int


@dataclass(frozen=True, slots=True)
class LedgerKey:
    gateway_id: str
    stream: str
    seq: int
    kind: str  # telemetry | event | procedure


@dataclass(frozen=True, slots=True)
class Accepted:
    inbound: Inbound
    topic: Topic
    message: Message
    samples: int = 0  # measured (non-None) values of a TelemetryBatch, counted once here for batcher and ledger


@dataclass(frozen=True, slots=True)
class DeadLetter:
    inbound: Inbound
    reason: str
    detail: str
    gateway_id: str | None = None
    device_id: str | None = None
    ledger: LedgerKey | None = None  # set for permanent rejections of numbered records


Item = Accepted | DeadLetter


def ledger_key(message: Message) -> LedgerKey | None:
    """The stream and seq of a numbered record, None for state, births, heartbeats and watermarks."""
    if isinstance(message, TelemetryBatch):
        return LedgerKey(message.gateway_id, message.device_id, message.seq, "telemetry")
    if isinstance(message, Event):
        return LedgerKey(message.gateway_id, message.device_id, message.seq, "event")
    if isinstance(message, ProcedureEvent):
        return LedgerKey(message.gateway_id, wire.PROCEDURE_STREAM, message.seq, "procedure")
    return None


def sample_count(item: Item) -> int:
    """The batcher's weight of an item: its samples, at least 1 (every message costs a row somewhere)."""
    return max(item.samples, 1) if isinstance(item, Accepted) else 1


def _measured(message: Message) -> int:
    """``TelemetryBatch.n_samples`` with C-level counting (the hot path: one call per batch received)."""
    if isinstance(message, TelemetryBatch):
        return sum(len(column) - column.count(None) for column in message.metrics.values())
    return 0


def _time_span(message: Message) -> tuple[int, int] | None:
    if isinstance(message, TelemetryBatch):
        return min(message.ts_us), max(message.ts_us)
    if isinstance(message, Event | ProcedureEvent):
        return message.ts_us, message.ts_us
    return None


def classify(inbound: Inbound, *, max_bytes: int, limits: Limits, now_us: int) -> Item:
    try:
        topic, message = wire.decode(inbound.topic, inbound.payload, max_bytes=max_bytes)
    except DecodeError as exc:
        gateway_id, device_id = _ids_from_topic(inbound.topic)
        return DeadLetter(inbound, exc.reason, exc.detail, gateway_id, device_id)
    span = _time_span(message)
    if span is not None:
        why = limits.violation(span[0], span[1], now_us)
        if why is not None:
            return DeadLetter(
                inbound,
                "timestamp_out_of_range",
                why,
                message.gateway_id,
                getattr(message, "device_id", None),
                ledger_key(message),
            )
    return Accepted(inbound, topic, message, _measured(message))


def _ids_from_topic(topic: str) -> tuple[str | None, str | None]:
    """Best-effort ids of an undecodable message, only when the topic itself is well formed."""
    try:
        parsed = wire.topics.parse(topic)
    except wire.TopicError:
        return None, None
    return parsed.gateway_id, parsed.device_id
