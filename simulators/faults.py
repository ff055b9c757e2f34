"""Injectable faults, by ``--fault`` flag or a scenario's ``faults = [...]``.

A spec is ``kind[:key=value,...]``, e.g. ``drift:device=insufflator,metric=pressure_mmhg,amount=0.5`` or
``disconnect:device=esu,at_s=1200,duration_s=45``. Keys: ``device`` (key like ``esu`` or id ``esu-or1``;
absent = every device), ``room`` (1-based), ``at_s`` (seconds after case start; absent = mid-case),
``duration_s``, ``metric``, ``amount``.

    device faults   disconnect (bye ... hello), alarm_burst (``amount`` chattering alarms), drift (``amount``
                    per minute), stuck (value frozen), clock_skew (device clock off by ``amount`` s),
                    clock_jump (device clock steps by ``amount`` s at ``at_s``)
    gateway fault   gateway_loss (the virtual gateway's uplink drops: LWT offline, records held and re-sent
                    with ``replay``)                                  -> simulators.gateway
    message faults  duplicate, reorder, malformed (``amount`` = probability per message), applied where MQTT
                    messages exist: the offline recording and ``ortel replay``   -> ``message_faults``
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np

from simulators.devices.base import US
from simulators.errors import FaultSpecError
from simulators.generate import DeviceFaults, Timed
from simulators.plan import CasePlan, Room
from simulators.recording import Record
from wire.device import Bye, DeviceEvent, Hello, Sample
from wire.models import EventKind, Severity

__all__ = ["DEVICE_KINDS", "KINDS", "MESSAGE_KINDS", "FaultSpec", "device_faults", "message_faults", "parse_fault"]

DEVICE_KINDS = frozenset({"disconnect", "alarm_burst", "drift", "stuck", "clock_skew", "clock_jump"})
MESSAGE_KINDS = frozenset({"duplicate", "reorder", "malformed"})
KINDS = DEVICE_KINDS | MESSAGE_KINDS | {"gateway_loss"}
DEFAULT_AMOUNT = {"alarm_burst": 20, "drift": 0.5, "clock_skew": 90.0, "clock_jump": 3600.0,
                  "duplicate": 0.05, "reorder": 0.05, "malformed": 0.01}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    kind: str
    device: str | None = None
    room: int | None = None
    at_s: float | None = None
    duration_s: float = 60.0
    metric: str | None = None
    amount: float | None = None

    @property
    def value(self) -> float:
        return float(self.amount if self.amount is not None else DEFAULT_AMOUNT.get(self.kind, 0.0))

    def window(self, case: CasePlan) -> tuple[int, int]:
        start = case.start_us + int(self.at_s * US) if self.at_s is not None else (case.start_us + case.end_us) // 2
        return start, start + int(self.duration_s * US)

    def applies(self, rm: Room, device_id: str | None = None) -> bool:
        if self.room is not None and self.room != rm.index + 1:
            return False
        if device_id is None or self.device is None:
            return True
        return self.device in (device_id, device_id.rsplit("-", 1)[0])


def parse_fault(spec: str) -> FaultSpec:
    kind, _, rest = spec.strip().partition(":")
    if kind not in KINDS:
        raise FaultSpecError(spec, f"unknown kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    fields: dict[str, object] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq:
            raise FaultSpecError(spec, f"expected key=value, got {part!r}")
        try:
            if key in ("at_s", "duration_s", "amount"):
                fields[key] = float(value)
            elif key == "room":
                fields[key] = int(value)
            elif key in ("device", "metric"):
                fields[key] = value.strip()
            else:
                raise FaultSpecError(spec, f"unknown key {key!r}")
        except ValueError:
            raise FaultSpecError(spec, f"{key} needs a number, got {value!r}") from None
    return FaultSpec(kind, **fields)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ device faults


def device_faults(specs: Sequence[FaultSpec]) -> DeviceFaults | None:
    chosen = [s for s in specs if s.kind in DEVICE_KINDS]
    if not chosen:
        return None

    def wrap(rm: Room, case: CasePlan, device_id: str, stream: Iterator[Timed]) -> Iterator[Timed]:
        for spec in chosen:
            if spec.applies(rm, device_id):
                stream = _APPLY[spec.kind](spec, case, device_id, stream)
        return stream

    return wrap


def _disconnect(spec: FaultSpec, case: CasePlan, device_id: str, stream: Iterator[Timed]) -> Iterator[Timed]:
    start, end = spec.window(case)
    hello: Hello | None = None
    state = "before"
    for t in stream:
        if isinstance(t.line, Hello):
            hello = t.line
        if state == "before" and t.at_us >= start and hello is not None and not isinstance(t.line, Bye):
            state = "gone"
            yield Timed(start, t.room, Bye(device_id=device_id, ts_us=start))
        if state == "gone":
            if t.at_us < end and not isinstance(t.line, Bye):
                continue  # the device is unplugged: what it measures now never reaches the gateway
            state = "back"
            if not isinstance(t.line, Bye) and hello is not None:
                yield Timed(t.at_us, t.room, hello)
        yield t


def _alarm_burst(spec: FaultSpec, case: CasePlan, device_id: str, stream: Iterator[Timed]) -> Iterator[Timed]:
    start, end = spec.window(case)
    n = max(1, int(spec.value))
    step = (end - start) // (2 * n)
    code = spec.metric or "chatter"
    room = None
    injected: list[Timed] = []
    for i in range(n):
        raised = start + 2 * i * step
        injected.append(Timed(raised, -1, DeviceEvent(device_id=device_id, ts_us=raised, kind=EventKind.ALARM_RAISED,
                                                      code=code, severity=Severity.MEDIUM, text="alarm burst")))
        injected.append(Timed(raised + step, -1, DeviceEvent(device_id=device_id, ts_us=raised + step,
                                                             kind=EventKind.ALARM_CLEARED, code=code)))
    for t in heapq.merge(stream, injected, key=lambda x: x.at_us):
        room = t.room if t.room >= 0 else room
        yield t if t.room >= 0 else Timed(t.at_us, room if room is not None else 0, t.line)


def _samples(spec: FaultSpec, stream: Iterator[Timed], change: object) -> Iterator[Timed]:
    for t in stream:
        values = change(t) if isinstance(t.line, Sample) else None  # type: ignore[operator]
        yield t if values is None else Timed(t.at_us, t.room, t.line.model_copy(update={"values": values}))


def _drift(spec: FaultSpec, case: CasePlan, device_id: str, stream: Iterator[Timed]) -> Iterator[Timed]:
    start, end = spec.window(case)

    def change(t: Timed) -> dict[str, float | None] | None:
        if t.at_us < start:
            return None
        offset = spec.value * (min(t.at_us, end) - start) / (60 * US)  # grows in the window, then stays
        values = dict(t.line.values)  # type: ignore[union-attr]
        name = spec.metric or next(iter(values))
        current = values.get(name)
        if current is not None:
            values[name] = round(current + offset, 3)
        return values

    return _samples(spec, stream, change)


def _stuck(spec: FaultSpec, case: CasePlan, device_id: str, stream: Iterator[Timed]) -> Iterator[Timed]:
    start, end = spec.window(case)
    held: dict[str, float | None] = {}

    def change(t: Timed) -> dict[str, float | None] | None:
        values = dict(t.line.values)  # type: ignore[union-attr]
        name = spec.metric or next(iter(values))
        if t.at_us < start:
            held[name] = values.get(name)
            return None
        if t.at_us >= end or name not in held:
            return None
        values[name] = held[name]
        return values

    return _samples(spec, stream, change)


def _clock(spec: FaultSpec, case: CasePlan, device_id: str, stream: Iterator[Timed]) -> Iterator[Timed]:
    start = case.power_on_us if spec.kind == "clock_skew" else spec.window(case)[0]
    shift = int(spec.value * US)
    for t in stream:
        ts = getattr(t.line, "ts_us", None)
        if ts is None or t.at_us < start:
            yield t
        else:
            yield Timed(t.at_us, t.room, t.line.model_copy(update={"ts_us": max(0, ts + shift)}))


_APPLY = {"disconnect": _disconnect, "alarm_burst": _alarm_burst, "drift": _drift, "stuck": _stuck,
          "clock_skew": _clock, "clock_jump": _clock}


# ----------------------------------------------------------------------------------------- message faults


def message_faults(records: Iterable[Record], specs: Sequence[FaultSpec], rng: np.random.Generator) -> Iterator[Record]:
    """Duplicate, swap with the next, or corrupt MQTT messages with the specs' probabilities."""
    p = {s.kind: s.value for s in specs if s.kind in MESSAGE_KINDS}
    if not p:
        yield from records
        return
    held: Record | None = None
    for rec in records:
        out = replace(rec, payload=_corrupt(rec.payload, rng)) if rng.random() < p.get("malformed", 0.0) else rec
        if held is not None:
            yield out  # reordered: the later message overtakes the held one
            yield held
            held = None
            continue
        if rng.random() < p.get("reorder", 0.0):
            held = out
            continue
        yield out
        if rng.random() < p.get("duplicate", 0.0):
            yield out
    if held is not None:
        yield held


def _corrupt(payload: bytes, rng: np.random.Generator) -> bytes:
    choice = int(rng.integers(3))
    if choice == 0:
        return payload[: max(1, len(payload) // 2)]  # truncated
    if choice == 1:
        return payload.replace(b'"v":1', b'"v":99', 1)  # unknown schema version
    return b"[" + payload + b"]"  # valid JSON, not an object
