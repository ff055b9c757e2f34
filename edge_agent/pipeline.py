"""From device lines to wire records (pure): units, privacy, clock, rules and batching in one place.

``Pipeline.handle(line, now_us)`` returns what the line produced: ``Draft`` records for the outbox (seq is
assigned there, inside the transaction that makes them durable), ``DeviceBirth`` updates and ``DeviceStatus``
changes. The clock is passed in; nothing here does I/O.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from edge_agent.batching import Batcher, SealedBatch
from edge_agent.clock import ClockTracker
from edge_agent.privacy import Pseudonymiser, Scrubber
from edge_agent.rules import AlarmChange, RuleEngine
from edge_agent.units import conversion_for
from wire import topics
from wire.device import Bye, DeviceEvent, Hello, Procedure, Sample
from wire.models import (
    DeviceBirth,
    DeviceStatus,
    Event,
    EventKind,
    MetricDef,
    ProcedureEvent,
    Severity,
    TelemetryBatch,
)
from wire.topics import PROCEDURE_STREAM, Kind

__all__ = ["PRIORITY_EVENT", "PRIORITY_TELEMETRY", "Draft", "Output", "Pipeline", "Rejected"]

PRIORITY_EVENT = 0  # events and alarms go first and are never dropped
PRIORITY_TELEMETRY = 1  # bulk samples: sent after events, dropped oldest-first when the outbox is full
Line = Hello | Sample | DeviceEvent | Procedure | Bye


@dataclass(frozen=True, slots=True)
class Draft:
    """A numbered record before it has its number: ``message`` carries seq=1 until the outbox assigns one."""

    stream: str
    topic: str
    priority: int
    created_us: int
    message: TelemetryBatch | Event | ProcedureEvent

    def seal(self, seq: int) -> TelemetryBatch | Event | ProcedureEvent:
        return self.message.model_copy(update={"seq": seq})


@dataclass(frozen=True, slots=True)
class Rejected:
    """A line the pipeline could not turn into a record (counted and logged by the shell, never fatal)."""

    device_id: str | None
    detail: str


Output = Draft | DeviceBirth | DeviceStatus | Rejected


@dataclass
class _Device:
    birth: DeviceBirth
    units: dict[str, str]  # metric -> unit the device speaks
    clock: ClockTracker
    offset_us: int = 0
    connected: bool = True
    last_sample_us: int | None = None  # device time of the newest sample
    last_seen_us: int = 0  # gateway time of the newest line
    next_status_us: int = 0


@dataclass
class Pipeline:
    gateway_id: str
    room: str | None
    pseudonymise: Callable[[str], str]
    scrub: Scrubber
    rules: RuleEngine
    batcher: Batcher
    jump_threshold_us: int = 2_000_000
    default_heartbeat_s: float = 10.0
    devices: dict[str, _Device] = field(default_factory=dict)

    @classmethod
    def create(
        cls, *, gateway_id: str, room: str | None, key: bytes, patterns: tuple[str, ...], rules: RuleEngine,
        max_rows: int, max_age_us: int, jump_threshold_us: int = 2_000_000, default_heartbeat_s: float = 10.0,
    ) -> Pipeline:
        return cls(
            gateway_id=gateway_id, room=room, pseudonymise=Pseudonymiser(key=key), scrub=Scrubber(patterns),
            rules=rules, batcher=Batcher(max_rows=max_rows, max_age_us=max_age_us),
            jump_threshold_us=jump_threshold_us, default_heartbeat_s=default_heartbeat_s,
        )

    # ------------------------------------------------------------------------------------------ lines
    def handle(self, line: Line, now_us: int) -> list[Output]:
        try:
            if isinstance(line, Sample):
                return self._sample(line, now_us)
            if isinstance(line, DeviceEvent):
                return self._event(line, now_us)
            if isinstance(line, Procedure):
                return [self._procedure(line, now_us)]
            if isinstance(line, Hello):
                return self._hello(line, now_us)
            return self._bye(line, now_us)
        except ValidationError as exc:
            detail = "; ".join(e["msg"] for e in exc.errors(include_url=False)[:3])
            return [Rejected(device_id=getattr(line, "device_id", None), detail=detail)]

    def _hello(self, line: Hello, now_us: int) -> list[Output]:
        metrics = tuple(self._canonical_metric(m) for m in line.metrics)
        birth = DeviceBirth(
            gateway_id=self.gateway_id, device_id=line.device_id, ts_us=now_us, device_type=line.device_type,
            manufacturer=self.scrub(line.manufacturer), model=self.scrub(line.model), serial=self.scrub(line.serial),
            firmware=self.scrub(line.firmware), udi=self.scrub(line.udi) if line.udi is not None else None,
            room=self.room, metrics=metrics, heartbeat_s=line.heartbeat_s,
        )
        known = self.devices.get(line.device_id)
        device = _Device(birth=birth, units={m.name: m.unit for m in line.metrics},
                         clock=known.clock if known else self._new_clock())
        device.last_seen_us = now_us
        self.devices[line.device_id] = device
        return [birth]

    def _canonical_metric(self, metric: MetricDef) -> MetricDef:
        conv = conversion_for(metric.unit)
        low, high = conv.apply(metric.low), conv.apply(metric.high)
        return metric.model_copy(update={"unit": self.scrub(conv.unit), "low": low, "high": high,
                                         "description": self.scrub(metric.description)})

    def _new_clock(self) -> ClockTracker:
        return ClockTracker(jump_threshold_us=self.jump_threshold_us)

    def _device_for(self, device_id: str, now_us: int, out: list[Output]) -> _Device:
        device = self.devices.get(device_id)
        if device is None:  # samples before (or without) a hello: announce what we can
            birth = DeviceBirth(gateway_id=self.gateway_id, device_id=device_id, ts_us=now_us,
                                device_type="unknown", room=self.room, heartbeat_s=self.default_heartbeat_s)
            device = self.devices[device_id] = _Device(birth=birth, units={}, clock=self._new_clock())
            out.append(birth)
        if not device.connected:
            device.connected = True
            out.append(self._status(device, now_us))
        device.last_seen_us = now_us
        return device

    def _sample(self, line: Sample, now_us: int) -> list[Output]:
        out: list[Output] = []
        device = self._device_for(line.device_id, now_us, out)
        values = self._convert(device, line, now_us, out)
        if not values:
            return out
        reading = device.clock.observe(device_us=line.ts_us, gateway_us=now_us)
        device.offset_us = reading.offset_us
        device.last_sample_us = line.ts_us
        if reading.jump:
            out.append(self._draft_event(Event(
                gateway_id=self.gateway_id, device_id=line.device_id, seq=1, ts_us=line.ts_us,
                kind=EventKind.CLOCK_JUMP, gateway_ts_us=now_us, attrs={"jump_us": reading.jump_us},
            ), now_us))
        for change in self.rules.evaluate(device_id=line.device_id, device_type=device.birth.device_type,
                                          ts_us=line.ts_us, values=values):
            out.append(self._alarm(line.device_id, change, now_us))
        sealed = self.batcher.add(line.device_id, line.ts_us, values, now_us=now_us, clock_jump=reading.jump)
        out.extend(self._telemetry(b) for b in sealed)
        return out

    def _convert(self, device: _Device, line: Sample, now_us: int, out: list[Output]) -> dict[str, float | None]:
        values: dict[str, float | None] = {}
        new_metrics: list[MetricDef] = []
        declared = {m.name: m for m in device.birth.metrics}
        for name, value in line.values.items():
            unit = line.units.get(name) or device.units.get(name, "")
            conv = conversion_for(unit)
            converted = conv.apply(value)
            if converted is not None and not math.isfinite(converted):
                # e.g. 1e308 kPa overflows in mm[Hg]: keep the reading's slot, report the value, never crash
                out.append(Rejected(device_id=line.device_id,
                                    detail=f"{name}={value!r} {unit} is not finite in {conv.unit}"))
                converted = None
            values[name] = converted
            if name not in declared:
                new_metrics.append(MetricDef(name=name, unit=self.scrub(conv.unit)))
                device.units.setdefault(name, unit)
        if new_metrics:  # the back end needs every metric's unit: re-announce the device
            device.birth = device.birth.model_copy(
                update={"metrics": device.birth.metrics + tuple(new_metrics), "ts_us": now_us})
            out.append(device.birth)
        return values

    def _alarm(self, device_id: str, change: AlarmChange, now_us: int) -> Draft:
        kind = EventKind.ALARM_RAISED if change.raised else EventKind.ALARM_CLEARED
        return self._draft_event(Event(
            gateway_id=self.gateway_id, device_id=device_id, seq=1, ts_us=change.ts_us, kind=kind,
            code=change.code, severity=Severity(change.severity), text=change.text, gateway_ts_us=now_us,
            attrs={"value": change.value, "source": "edge_rule"},
        ), now_us)

    def _event(self, line: DeviceEvent, now_us: int) -> list[Output]:
        out: list[Output] = []
        self._device_for(line.device_id, now_us, out)
        attrs = {k: self.scrub(v) if isinstance(v, str) else v for k, v in line.attrs.items()}
        event = Event(
            gateway_id=self.gateway_id, device_id=line.device_id, seq=1, ts_us=line.ts_us, kind=line.kind,
            code=self.scrub(line.code) if line.code else line.code, severity=line.severity,
            text=self.scrub(line.text), case_id=self.pseudonymise(line.case_id) if line.case_id else None,
            attrs=attrs, gateway_ts_us=now_us,
        )
        out.append(self._draft_event(event, now_us))
        return out

    def _draft_event(self, event: Event, now_us: int) -> Draft:
        topic = topics.device(self.gateway_id, event.device_id, Kind.EVENT)
        return Draft(stream=event.device_id, topic=topic, priority=PRIORITY_EVENT, created_us=now_us,
                     message=event)

    def _procedure(self, line: Procedure, now_us: int) -> Draft:
        message = ProcedureEvent(
            gateway_id=self.gateway_id, seq=1, ts_us=line.ts_us, kind=line.kind,
            case_id=self.pseudonymise(line.case_id), room=self.room or self.gateway_id,
            procedure_type=self.scrub(line.procedure_type), phase=self.scrub(line.phase) if line.phase else None,
        )
        return Draft(stream=PROCEDURE_STREAM, topic=topics.procedure(self.gateway_id), priority=PRIORITY_EVENT,
                     created_us=now_us, message=message)

    def _bye(self, line: Bye, now_us: int) -> list[Output]:
        device = self.devices.get(line.device_id)
        if device is None:
            return []
        out: list[Output] = [self._telemetry(b) for b in self.batcher.drain_device(line.device_id, now_us)]
        device.connected = False
        out.append(self._status(device, now_us))
        return out

    # ------------------------------------------------------------------------------------------ time
    def _telemetry(self, batch: SealedBatch) -> Draft:
        device = self.devices[batch.device_id]
        message = TelemetryBatch(
            gateway_id=self.gateway_id, device_id=batch.device_id, seq=1, ts_us=batch.ts_us,
            metrics=batch.metrics, gateway_ts_us=batch.sealed_us, clock_offset_us=device.offset_us,
            clock_jump=batch.clock_jump,
        )
        topic = topics.device(self.gateway_id, batch.device_id, Kind.TELEMETRY)
        return Draft(stream=batch.device_id, topic=topic, priority=PRIORITY_TELEMETRY, created_us=batch.sealed_us,
                     message=message)

    def due(self, now_us: int) -> list[Draft]:
        return [self._telemetry(b) for b in self.batcher.due(now_us)]

    def drain(self, now_us: int) -> list[Draft]:
        return [self._telemetry(b) for b in self.batcher.drain(now_us)]

    def _status(self, device: _Device, now_us: int) -> DeviceStatus:
        device.next_status_us = now_us + int(device.birth.heartbeat_s * 1e6)
        return DeviceStatus(gateway_id=self.gateway_id, device_id=device.birth.device_id, ts_us=now_us,
                            connected=device.connected, last_sample_us=device.last_sample_us)

    def heartbeats(self, now_us: int) -> list[DeviceStatus]:
        """Status of every device whose heartbeat is due; a device silent for 3 heartbeats is disconnected."""
        out = []
        for device in self.devices.values():
            if now_us < device.next_status_us:
                continue
            if device.connected and now_us - device.last_seen_us > 3 * device.birth.heartbeat_s * 1e6:
                device.connected = False
            out.append(self._status(device, now_us))
        return out

    def restore(self, birth: DeviceBirth) -> None:
        """Know a device announced before a restart (its birth's units are already canonical)."""
        if birth.device_id not in self.devices:
            self.devices[birth.device_id] = _Device(
                birth=birth, units={m.name: m.unit for m in birth.metrics}, clock=self._new_clock(),
                connected=False)

    def births(self) -> list[DeviceBirth]:
        return [d.birth for d in self.devices.values()]
