"""Topic names of ortel/v1: builders, a parser and the subscription filters.

    ortel/v1/{gw}/state                      GatewayState     retained, also the Last Will
    ortel/v1/{gw}/dev/{device}/birth         DeviceBirth      retained
    ortel/v1/{gw}/dev/{device}/status        DeviceStatus     heartbeat
    ortel/v1/{gw}/dev/{device}/telemetry     TelemetryBatch   QoS 1, numbered
    ortel/v1/{gw}/dev/{device}/event         Event            QoS 1, numbered
    ortel/v1/{gw}/procedure                  ProcedureEvent   QoS 1, numbered (stream "_procedure")
    ortel/v1/{gw}/ack/{stream}               Watermark        retained, published by ingest only

Every topic of a gateway sits under ``ortel/v1/{gw}/`` so the broker's ACL can confine a gateway to its own
prefix (pattern ``ortel/v1/%u/...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from wire.errors import TopicError

__all__ = [
    "PREFIX",
    "PROCEDURE_STREAM",
    "Kind",
    "Topic",
    "ack",
    "device",
    "gateway_state",
    "parse",
    "procedure",
    "shared",
]

PREFIX = "ortel/v1"
PROCEDURE_STREAM = "_procedure"  # cannot collide with a device id: ids start with a letter or digit
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class Kind(StrEnum):
    STATE = "state"
    BIRTH = "birth"
    STATUS = "status"
    TELEMETRY = "telemetry"
    EVENT = "event"
    PROCEDURE = "procedure"
    ACK = "ack"


DEVICE_KINDS = (Kind.BIRTH, Kind.STATUS, Kind.TELEMETRY, Kind.EVENT)


@dataclass(frozen=True, slots=True)
class Topic:
    kind: Kind
    gateway_id: str
    device_id: str | None = None  # device topics only
    stream: str | None = None  # ack topics only

    def __str__(self) -> str:
        if self.kind in DEVICE_KINDS:
            return f"{PREFIX}/{self.gateway_id}/dev/{self.device_id}/{self.kind}"
        if self.kind is Kind.ACK:
            return f"{PREFIX}/{self.gateway_id}/ack/{self.stream}"
        return f"{PREFIX}/{self.gateway_id}/{self.kind}"


def _check(topic: str, *ids: str) -> None:
    for value in ids:
        if not _ID.fullmatch(value):  # fullmatch: "$" alone would accept a trailing "\n"
            raise TopicError(topic, f"invalid id {value[:80]!r}")


def gateway_state(gateway_id: str) -> str:
    return str(Topic(Kind.STATE, gateway_id))


def procedure(gateway_id: str) -> str:
    return str(Topic(Kind.PROCEDURE, gateway_id))


def device(gateway_id: str, device_id: str, kind: Kind) -> str:
    if kind not in DEVICE_KINDS:
        raise ValueError(f"{kind} is not a device topic")
    return str(Topic(kind, gateway_id, device_id=device_id))


def ack(gateway_id: str, stream: str) -> str:
    return str(Topic(Kind.ACK, gateway_id, stream=stream))


def parse(topic: str) -> Topic:
    """Parse a concrete topic; raise ``TopicError`` for anything outside the scheme."""
    parts = topic.split("/")
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        raise TopicError(topic, "not an ortel/v1 topic")
    gw = parts[2]
    rest = parts[3:]
    if rest == ["state"]:
        _check(topic, gw)
        return Topic(Kind.STATE, gw)
    if rest == ["procedure"]:
        _check(topic, gw)
        return Topic(Kind.PROCEDURE, gw)
    if len(rest) == 3 and rest[0] == "dev" and rest[2] in {k.value for k in DEVICE_KINDS}:
        _check(topic, gw, rest[1])
        return Topic(Kind(rest[2]), gw, device_id=rest[1])
    if len(rest) == 2 and rest[0] == "ack":
        _check(topic, gw)
        if rest[1] != PROCEDURE_STREAM:
            _check(topic, rest[1])
        return Topic(Kind.ACK, gw, stream=rest[1])
    raise TopicError(topic, "unknown topic shape")


def shared(group: str, topic_filter: str) -> str:
    """A shared subscription (MQTT 5, 4.8.2): N subscribers in ``group`` split the messages."""
    return f"$share/{group}/{topic_filter}"


# Filters used by ingest.
TELEMETRY_FILTER = f"{PREFIX}/+/dev/+/telemetry"
EVENT_FILTER = f"{PREFIX}/+/dev/+/event"
PROCEDURE_FILTER = f"{PREFIX}/+/procedure"
# Retained state is subscribed without $share: MQTT 5 (4.8.2) sends no retained messages on shared subscriptions.
STATE_FILTER = f"{PREFIX}/+/state"
BIRTH_FILTER = f"{PREFIX}/+/dev/+/birth"
STATUS_FILTER = f"{PREFIX}/+/dev/+/status"
