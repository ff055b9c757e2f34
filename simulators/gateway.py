"""A virtual gateway: turns one room's device lines into the MQTT messages an edge agent would publish.

Used for the deterministic offline recording (``ortel simulate --out``) only. It is a *simulation* of the
edge agent's output, not the agent: no outbox, no acknowledgements, no retries. It batches samples per device
(``batch_s`` of virtual time or ``max_samples``), numbers telemetry and events in the device's ``seq`` stream and
procedure events in ``_procedure``, pseudonymises case ids with a keyed hash, sends status heartbeats, and
can lose its uplink (``gateway_loss``: Last Will "offline", records held, re-sent with ``replay`` after).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field

from simulators.devices.base import US
from simulators.generate import AnyLine
from simulators.recording import Record
from wire import (
    DeviceBirth,
    DeviceStatus,
    Event,
    GatewayState,
    Kind,
    Message,
    ProcedureEvent,
    TelemetryBatch,
    encode,
    topics,
)
from wire.device import Bye, DeviceEvent, Hello, Procedure, Sample

__all__ = ["VirtualGateway", "pseudonym"]

CLOCK_JUMP_US = 60 * US  # a change of the device clock offset larger than this is flagged as a jump


def pseudonym(key: bytes, case_id: str) -> str:
    """Keyed, stable, not reversible without the key: the raw case number never leaves the gateway."""
    return "c" + hmac.new(key, case_id.encode("utf-8"), hashlib.sha256).hexdigest()[:24]


@dataclass
class _Device:
    hello: Hello
    seq: int = 0
    ts: list[int] = field(default_factory=list)
    rows: list[dict[str, float | None]] = field(default_factory=list)
    first_at: int = 0
    last_sample_us: int | None = None
    offset_us: int | None = None
    next_beat_us: int = 0
    connected: bool = True


class VirtualGateway:
    def __init__(self, *, gateway_id: str, room: str, key: bytes, boot_id: str = "sim", batch_s: float = 1.0,
                 max_samples: int = 500, losses: Sequence[tuple[int, int]] = ()) -> None:
        self.gateway_id = gateway_id
        self.room = room
        self.key = key
        self.boot_id = boot_id
        self.batch_us = int(batch_s * US)
        self.max_samples = max_samples
        self.losses = sorted(losses)  # [(start_us, end_us)] of uplink loss
        self.devices: dict[str, _Device] = {}
        self.proc_seq = 0
        self.started = False
        self.offline = False
        self.held: list[Message] = []
        self.out: list[Record] = []

    # ------------------------------------------------------------------------------------------ inputs

    def feed(self, at_us: int, line: AnyLine) -> list[Record]:
        self._tick(at_us)
        if isinstance(line, Hello):
            self._hello(at_us, line)
        elif isinstance(line, Sample):
            self._sample(at_us, line)
        elif isinstance(line, DeviceEvent):
            self._event(at_us, line)
        elif isinstance(line, Procedure):
            self._procedure(at_us, line)
        elif isinstance(line, Bye):
            self._bye(at_us, line)
        return self._drain()

    def close(self, at_us: int) -> list[Record]:
        self._tick(at_us)
        for dev_id in list(self.devices):
            self._seal(at_us, dev_id)
        if self.offline:
            self._reconnect(at_us)
        self._publish(at_us, GatewayState(gateway_id=self.gateway_id, state="offline", ts_us=at_us,
                                          boot_id=self.boot_id, room=self.room), retain=True)
        return self._drain()

    # ------------------------------------------------------------------------------------------ handlers

    def _tick(self, at_us: int) -> None:
        if not self.started:
            self.started = True
            self._publish(at_us, self._state(at_us), retain=True)
        self._losses(at_us)
        for dev_id, dev in self.devices.items():
            if dev.ts and at_us - dev.first_at >= self.batch_us:
                self._seal(at_us, dev_id)
            if dev.connected and at_us >= dev.next_beat_us:
                dev.next_beat_us = at_us + int(dev.hello.heartbeat_s * US)
                self._status(at_us, dev_id, dev)

    def _losses(self, at_us: int) -> None:
        while self.losses and (self.offline or at_us >= self.losses[0][0]):
            start, end = self.losses[0]
            if not self.offline:
                self.offline = True
                # the broker publishes the Last Will when the keep-alive expires
                self._emit(start, GatewayState(gateway_id=self.gateway_id, state="offline", ts_us=start,
                                               boot_id=self.boot_id, room=self.room), retain=True)
            if at_us < end:
                return
            self.losses.pop(0)
            self._reconnect(end)

    def _reconnect(self, at_us: int) -> None:
        self.offline = False
        self._publish(at_us, self._state(at_us), retain=True)
        for dev in self.devices.values():
            self._publish(at_us, self._birth(at_us, dev.hello), retain=True)
        held, self.held = self.held, []
        for msg in held:
            self._publish(at_us, msg.model_copy(update={"replay": True}))

    def _hello(self, at_us: int, line: Hello) -> None:
        dev = self.devices.get(line.device_id)
        if dev is None:
            dev = self.devices[line.device_id] = _Device(line)
        dev.hello, dev.connected, dev.next_beat_us = line, True, at_us + int(line.heartbeat_s * US)
        self._publish(at_us, self._birth(at_us, line), retain=True)
        self._status(at_us, line.device_id, dev)

    def _sample(self, at_us: int, line: Sample) -> None:
        dev = self.devices.get(line.device_id)
        if dev is None:
            return  # a device that never said hello is not forwarded
        if not dev.ts:
            dev.first_at = at_us
        dev.ts.append(line.ts_us)
        dev.rows.append(dict(line.values))
        dev.last_sample_us = line.ts_us
        if len(dev.ts) >= self.max_samples:
            self._seal(at_us, line.device_id)

    def _event(self, at_us: int, line: DeviceEvent) -> None:
        dev = self.devices.get(line.device_id)
        if dev is None:
            return
        self._seal(at_us, line.device_id)  # keep seq order = time order within the device
        dev.seq += 1
        case_id = pseudonym(self.key, line.case_id) if line.case_id else None
        self._publish(at_us, Event(gateway_id=self.gateway_id, device_id=line.device_id, seq=dev.seq,
                                   ts_us=line.ts_us, kind=line.kind, code=line.code, severity=line.severity,
                                   text=line.text, case_id=case_id, attrs=line.attrs, gateway_ts_us=at_us))

    def _procedure(self, at_us: int, line: Procedure) -> None:
        self.proc_seq += 1
        self._publish(at_us, ProcedureEvent(gateway_id=self.gateway_id, seq=self.proc_seq, ts_us=line.ts_us,
                                            kind=line.kind, case_id=pseudonym(self.key, line.case_id),
                                            room=self.room, procedure_type=line.procedure_type, phase=line.phase))

    def _bye(self, at_us: int, line: Bye) -> None:
        dev = self.devices.get(line.device_id)
        if dev is None:
            return
        self._seal(at_us, line.device_id)
        dev.connected = False
        self._status(at_us, line.device_id, dev)

    # ------------------------------------------------------------------------------------------ outputs

    def _seal(self, at_us: int, dev_id: str) -> None:
        dev = self.devices[dev_id]
        if not dev.ts:
            return
        names = sorted({n for row in dev.rows for n in row})
        offset = at_us - dev.ts[-1]
        jump = dev.offset_us is not None and abs(offset - dev.offset_us) > CLOCK_JUMP_US
        dev.offset_us = offset
        dev.seq += 1
        batch = TelemetryBatch(
            gateway_id=self.gateway_id, device_id=dev_id, seq=dev.seq, ts_us=tuple(dev.ts),
            metrics={n: tuple(row.get(n) for row in dev.rows) for n in names},
            gateway_ts_us=at_us, clock_offset_us=offset, clock_jump=jump,
        )
        dev.ts, dev.rows = [], []
        self._publish(at_us, batch)

    def _status(self, at_us: int, dev_id: str, dev: _Device) -> None:
        if self.offline:
            return  # heartbeats are not worth keeping
        self._publish(at_us, DeviceStatus(gateway_id=self.gateway_id, device_id=dev_id, ts_us=at_us,
                                          connected=dev.connected, last_sample_us=dev.last_sample_us), qos=0)

    def _state(self, at_us: int) -> GatewayState:
        return GatewayState(gateway_id=self.gateway_id, state="online", ts_us=at_us, boot_id=self.boot_id,
                            room=self.room, agent_version="sim")

    def _birth(self, at_us: int, line: Hello) -> DeviceBirth:
        return DeviceBirth(gateway_id=self.gateway_id, device_id=line.device_id, ts_us=at_us,
                           device_type=line.device_type, manufacturer=line.manufacturer, model=line.model,
                           serial=line.serial, firmware=line.firmware, udi=line.udi, room=self.room,
                           metrics=line.metrics, heartbeat_s=line.heartbeat_s)

    def _publish(self, at_us: int, msg: Message, *, retain: bool = False, qos: int = 1) -> None:
        if self.offline:
            if isinstance(msg, TelemetryBatch | Event | ProcedureEvent):
                self.held.append(msg)  # numbered records survive the outage, the rest is state
            return
        self._emit(at_us, msg, retain=retain, qos=qos)

    def _emit(self, at_us: int, msg: Message, *, retain: bool = False, qos: int = 1) -> None:
        self.out.append(Record(at_us, _topic(msg), encode(msg), qos, retain))

    def _drain(self) -> list[Record]:
        out, self.out = self.out, []
        return out


def _topic(msg: Message) -> str:
    if isinstance(msg, GatewayState):
        return topics.gateway_state(msg.gateway_id)
    if isinstance(msg, ProcedureEvent):
        return topics.procedure(msg.gateway_id)
    kind = {DeviceBirth: Kind.BIRTH, DeviceStatus: Kind.STATUS, TelemetryBatch: Kind.TELEMETRY, Event: Kind.EVENT}
    return topics.device(msg.gateway_id, msg.device_id, kind[type(msg)])  # type: ignore[union-attr]

