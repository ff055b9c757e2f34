"""Pure generation: a ``Plan`` in, time-ordered device lines out (what the OR's devices would send).

Every line is paired with the virtual instant it happens (``Timed``): normally its own ``ts_us``, but a device
with a skewed clock stamps lines with a wrong time that still happen *now*, so pacing and merging use the
instant, never the device's stamp. Each room is one stream (one gateway); rooms are merged by instant.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from simulators.devices import DeviceModel, Line, Segment, make_device
from simulators.devices.base import Window
from simulators.plan import CasePlan, Plan, Room, RoomPlan
from simulators.scenario import DeviceDef, Usage
from wire.device import DeviceEvent, Procedure
from wire.models import EventKind

__all__ = ["DeviceFaults", "Timed", "activation_windows", "case_segments", "plan_lines", "room_lines"]

AnyLine = Line | Procedure


class Timed(NamedTuple):
    at_us: int  # virtual instant the line is emitted
    room: int  # room index: which gateway receives it
    line: AnyLine


DeviceFaults = Callable[[Room, CasePlan, str, Iterator[Timed]], Iterator[Timed]]
"""Wraps one device's stream within one case (see ``simulators.faults``)."""

_ORDER = {"procedure": 0, "hello": 1, "event": 2, "sample": 3, "bye": 4}


def _key(t: Timed) -> tuple[int, int]:
    return t.at_us, _ORDER[t.line.type]


@dataclass(frozen=True, slots=True)
class _Interval:
    start_us: int
    end_us: int
    usage: Usage
    phase: str | None


def case_segments(case: CasePlan, device: DeviceDef, skipped: frozenset[int] = frozenset()) -> list[Segment]:
    """Cut the device's powered time into stretches of constant use (see the scenario's device rules)."""
    points = {case.power_on_us, case.start_us, case.end_us, case.power_off_us}
    for p in case.phases:
        points.update((p.start_us, p.end_us))
    cuts = sorted(t for t in points if case.power_on_us <= t <= case.power_off_us)
    scenario = case.scenario
    idle = Usage(0.0)
    intervals: list[_Interval] = []
    for a, b in itertools.pairwise(cuts):
        if b <= a:
            continue
        usage, phase = idle, None
        active = [(i, p) for i, p in enumerate(case.phases) if p.start_us <= a < p.end_us]
        listed: list[tuple[Usage, str]] = []
        for i, p in active:
            found = scenario.usage(p.name).get(device.key)
            if found is not None and i not in skipped:
                listed.append((found, p.name))
        if listed:
            usage, phase = max(listed, key=lambda un: un[0].activity)
        elif active:
            phase = active[0][1].name
        if not listed and case.start_us <= a < case.end_us:
            if device.baseline > 0:
                usage = Usage(device.baseline)
            elif device.sustain and not active:
                usage = _carried(case, device, a, skipped)
        intervals.append(_Interval(a, b, usage, phase))
    return _coalesce(intervals)


def _carried(case: CasePlan, device: DeviceDef, at_us: int, skipped: frozenset[int]) -> Usage:
    """A sustained device keeps what the most recently finished phase asked of it."""
    before = [(i, p) for i, p in enumerate(case.phases) if p.end_us <= at_us]
    if not before:
        return Usage(0.0)
    i, last = max(before, key=lambda ip: ip[1].end_us)
    usage = case.scenario.usage(last.name).get(device.key)
    return usage if usage is not None and i not in skipped else Usage(0.0)


def _coalesce(intervals: list[_Interval]) -> list[Segment]:
    segments: list[Segment] = []
    for iv in intervals:
        u = iv.usage
        prev = segments[-1] if segments else None
        if prev is not None and prev.phase == iv.phase and prev.activity == u.activity and prev.modes == u.modes \
                and dict(prev.params) == dict(u.params):
            segments[-1] = Segment(prev.start_us, iv.end_us, prev.activity, prev.modes, prev.phase, prev.params)
        else:
            segments.append(Segment(iv.start_us, iv.end_us, u.activity, u.modes, iv.phase, u.params))
    return segments


def _skipped(case: CasePlan, device: DeviceDef, rng: np.random.Generator) -> frozenset[int]:
    """Phases in which an optional device (a stapler instead of clips) is not used in this case."""
    out = set()
    for i, p in enumerate(case.phases):
        u = case.scenario.usage(p.name).get(device.key)
        if u is not None and u.probability < 1.0 and rng.random() >= u.probability:
            out.add(i)
    return frozenset(out)


def _device_stream(rm: Room, case: CasePlan, model: DeviceModel, device: DeviceDef, seed: int) -> Iterator[Timed]:
    rng = np.random.default_rng([seed, rm.index, case.index, 0x5C1B, *device.key.encode()])
    segments = case_segments(case, device, _skipped(case, device, rng))
    yield Timed(case.power_on_us, rm.index, model.hello())
    for line in model.lines(segments):
        yield Timed(line.ts_us, rm.index, line)
    yield Timed(case.power_off_us, rm.index, model.bye(case.power_off_us))


def _procedure_stream(rm: Room, case: CasePlan) -> Iterator[Timed]:
    common = {"case_id": case.case_id, "procedure_type": case.scenario.procedure_type}
    first = Procedure(ts_us=case.start_us, kind="case_start", **common)
    marks: list[tuple[int, int, Procedure]] = [(case.start_us, 0, first)]
    for p in case.phases:
        marks.append((p.start_us, 2, Procedure(ts_us=p.start_us, kind="phase_start", phase=p.name, **common)))
        marks.append((p.end_us, 1, Procedure(ts_us=p.end_us, kind="phase_end", phase=p.name, **common)))
    marks.append((case.end_us, 3, Procedure(ts_us=case.end_us, kind="case_end", **common)))
    # at one instant: an ending phase closes before the next opens, and the case ends last
    for at, _, line in sorted(marks, key=lambda m: (m[0], m[1])):
        yield Timed(at, rm.index, line)


def room_lines(rp: RoomPlan, *, seed: int, origin_us: int = 0, faults: DeviceFaults | None = None,
               models: dict[str, DeviceModel] | None = None, with_devices: bool = True) -> Iterator[Timed]:
    """One room's lines, case after case; ``origin_us`` shifts the plan onto the virtual clock.
    ``with_devices=False``: procedure context only (timelines, quick checks)."""
    models = {} if models is None else models  # a room keeps its devices (serials, lamp hours) across cases
    for case in rp.cases:
        shifted = _shift(case, origin_us)
        streams: list[Iterator[Timed]] = [_procedure_stream(rp.room, shifted)]
        devices = shifted.scenario.devices if with_devices else ()
        leaders = {d.follows for d in devices if d.follows}
        windows: dict[str, list[Window]] = {}
        # leaders first: a follower (a smoke evacuator sensing the generator) needs their activations
        for device in sorted(devices, key=lambda d: d.key not in leaders):
            model = _model(models, rp.room, device, seed)
            if device.follows:
                model.follow(windows.get(device.follows, []))
            stream = _device_stream(rp.room, shifted, model, device, seed)
            if device.key in leaders:
                lines = list(stream)
                windows[device.key] = activation_windows(t.line for t in lines)
                stream = iter(lines)
            streams.append(faults(rp.room, shifted, model.device_id, stream) if faults else stream)
        yield from heapq.merge(*streams, key=_key)


def _model(models: dict[str, DeviceModel], rm: Room, device: DeviceDef, seed: int) -> DeviceModel:
    device_id = f"{device.key}-{rm.slug}"
    model = models.get(device_id)
    if model is None or model.family != device.family:
        rng = np.random.default_rng([seed, rm.index, 0xDE1, *device.key.encode()])
        model = make_device(device.family, device_id=device_id, rng=rng, rate_hz=device.rate_hz, **device.params)
        models[device_id] = model
    return model


def activation_windows(lines: Iterable[AnyLine]) -> list[Window]:
    """[start, stop) of every activation in a device's lines."""
    out: list[Window] = []
    opened: int | None = None
    for line in lines:
        if isinstance(line, DeviceEvent) and line.kind is EventKind.ACTIVATION_START:
            opened = line.ts_us
        elif isinstance(line, DeviceEvent) and line.kind is EventKind.ACTIVATION_STOP and opened is not None:
            out.append((opened, line.ts_us))
            opened = None
    return out


def plan_lines(plan: Plan, *, origin_us: int = 0, faults: DeviceFaults | None = None,
               rooms: Sequence[int] | None = None, with_devices: bool = True) -> Iterator[Timed]:
    """All rooms merged by instant (stable: ties keep room order)."""
    chosen = [rp for rp in plan.rooms if rooms is None or rp.room.index in rooms]
    return heapq.merge(*(room_lines(rp, seed=plan.seed, origin_us=origin_us, faults=faults,
                                    with_devices=with_devices) for rp in chosen), key=_key)


def _shift(case: CasePlan, origin_us: int) -> CasePlan:
    if not origin_us:
        return case
    from simulators.plan import PhaseSpan

    return CasePlan(case.case_id, case.index, case.scenario, case.start_us + origin_us, case.end_us + origin_us,
                    tuple(PhaseSpan(p.name, p.start_us + origin_us, p.end_us + origin_us) for p in case.phases))
