"""Typed rows the queries return and the figures consume: frozen, plain values, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

__all__ = [
    "AlarmRow",
    "AuditRow",
    "DeadLetterRow",
    "DeviceFacts",
    "DeviceRow",
    "EventRow",
    "GapRow",
    "GatewayRow",
    "IngestRate",
    "InventoryRow",
    "MetricDef",
    "PhaseRow",
    "ProcedureRow",
    "RoomDevice",
    "Series",
]


@dataclass(frozen=True)
class DeviceFacts:
    """What the database knows about a device's liveness; ``status.derive_state`` turns it into a state."""

    gateway_state: str
    connected: bool
    last_seen: datetime | None
    last_sample_at: datetime | None
    heartbeat_s: float
    open_alarms: int


@dataclass(frozen=True)
class RoomDevice:
    room: str
    gateway_id: str
    device_id: str
    device_type: str
    model: str
    facts: DeviceFacts
    case_id: str | None = None
    procedure_type: str | None = None
    phase: str | None = None
    case_started_at: datetime | None = None
    alarm: str | None = None  # code of its most severe open alarm


@dataclass(frozen=True)
class InventoryRow:
    device_id: str
    device_type: str
    manufacturer: str
    model: str
    serial: str
    firmware: str
    room: str
    facts: DeviceFacts
    utilisation: float | None  # share of this week's elapsed time with samples or activations, 0..1
    completeness: float | None  # share of numbered records stored, 0..1 (None: nothing received yet)


@dataclass(frozen=True)
class MetricDef:
    name: str
    unit: str
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class DeviceRow:
    device_id: str
    gateway_id: str
    device_type: str
    manufacturer: str
    model: str
    serial: str
    firmware: str
    udi: str | None
    room: str
    metrics: tuple[MetricDef, ...]
    facts: DeviceFacts
    birth_at: datetime | None


@dataclass(frozen=True)
class Series:
    """One metric of one device over time. With ``lo``/``hi`` the points are bucket envelopes."""

    device_id: str
    metric: str
    t: np.ndarray  # datetime64[us]
    y: np.ndarray  # float64 (bucket average, or the raw value)
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None
    unit: str = ""


@dataclass(frozen=True)
class EventRow:
    device_id: str
    seq: int
    ts: datetime
    kind: str
    code: str | None
    severity: str | None
    text: str
    case_id: str | None = None


@dataclass(frozen=True)
class AlarmRow:
    device_id: str
    code: str
    severity: str
    text: str
    raised_at: datetime
    cleared_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    room: str = ""
    device_type: str = ""


@dataclass(frozen=True)
class GapRow:
    gateway_id: str
    stream: str
    from_seq: int
    to_seq: int
    detected_at: datetime
    closed_at: datetime | None
    reason: str

    @property
    def size(self) -> int:
        return self.to_seq - self.from_seq + 1


@dataclass(frozen=True)
class ProcedureRow:
    case_id: str
    gateway_id: str
    room: str
    procedure_type: str
    started_at: datetime
    ended_at: datetime | None
    n_alarms: int = 0


@dataclass(frozen=True)
class PhaseRow:
    phase: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class GatewayRow:
    gateway_id: str
    room: str
    state: str
    state_since: datetime | None
    last_seen: datetime | None
    agent_version: str
    n_devices: int


@dataclass(frozen=True)
class DeadLetterRow:
    received_at: datetime
    reason: str
    detail: str
    topic: str
    gateway_id: str | None
    device_id: str | None


@dataclass(frozen=True)
class IngestRate:
    """Records ingest handled per minute over the last hour (from the ``received`` ledger)."""

    minute: tuple[datetime, ...]
    records: tuple[int, ...]
    samples: tuple[int, ...]
    lag_s: tuple[float | None, ...] = field(default=())


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    actor: str
    action: str
    detail: str
