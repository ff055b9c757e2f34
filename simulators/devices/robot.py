"""Surgical robot (patient-side arms and surgeon console) as one device.

Instruments are attached to arms at the start of a phase (``instruments`` in the phase parameters, or a
default set), joint torques rise with manipulation, the clutch pedal briefly frees the arms (torque drops),
and the energy pedals make activations (``monopolar`` / ``bipolar``). Console head-in/out marks when the
surgeon is operating. Now and then (``fault_rate`` scales it) two neighbouring arms collide: both read a torque
near ``COLLISION_NM``, ``arm_collision`` is raised once an arm passes ``COLLISION_LIMIT_NM`` and cleared once
every arm is back below ``COLLISION_CLEAR_NM``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, bursts, inside, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["COLLISION_CLEAR_NM", "COLLISION_LIMIT_NM", "SurgicalRobot"]

ARMS = (1, 2, 3, 4)  # arm 3 holds the endoscope in this simulation
DEFAULT_INSTRUMENTS = {1: "monopolar_curved_scissors", 2: "fenestrated_bipolar", 3: "endoscope_30deg",
                       4: "prograsp_forceps"}
NEIGHBOURS = ((1, 2), (2, 3), (3, 4))  # arms that can touch
COLLISION_NM = 28.0  # an arm pressed against its neighbour; manipulation stays under ~20 N.m
COLLISION_LIMIT_NM = 25.0
COLLISION_CLEAR_NM = 22.0


class SurgicalRobot(DeviceModel):
    family = "surgical_robot"
    model_name = "RX-4 surgical system (simulated)"
    default_rate_hz = 2.0
    default_modes = (("monopolar", 0.5), ("bipolar", 0.5))
    metrics = tuple(metric(f"arm{a}_torque_nm", "N.m", f"arm {a} joint torque (largest joint)", 0, 40) for a in ARMS)

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.attached: dict[int, str] = {}
        self.head_in = False

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        active = seg.activity > 0
        events = self._console(seg, active) + (self._instruments(seg) if active else [])
        energy = bursts(self.rng, seg.start_us, seg.end_us, per_min=4 * seg.activity * self._energy_share(seg),
                        median_s=1.5, sigma=0.5, max_s=6)
        ev, _ = self.activations(energy, seg)
        clutches = bursts(self.rng, seg.start_us, seg.end_us, per_min=2 * seg.activity, median_s=1.2, sigma=0.4)
        for s, e in clutches:
            events.append(self.event(s, EventKind.INFO, "clutch", attrs={"duration_s": round((e - s) / 1e6, 2)}))
        events += ev
        collisions = self.fault_windows(seg, per_hour=0.2 * seg.activity, median_s=5)
        free = inside(ts, clutches)
        values: dict[str, np.ndarray] = {}
        spread: dict[int, np.ndarray] = {}
        for arm in ARMS:
            load = (4.0 if arm == 3 else 8.0) * seg.activity
            spread[arm] = 2.5 * np.abs(self.rng.standard_normal(n))
            torque = 2.0 + load + spread[arm] * (seg.activity > 0)
            values[f"arm{arm}_torque_nm"] = np.where(free, 0.5, torque) if arm in self.attached else np.full(n, 1.0)
        for s, e in collisions:  # the arms push against each other, clutched or not
            hit = inside(ts, [(s, e)])
            for arm in NEIGHBOURS[int(self.rng.integers(len(NEIGHBOURS)))]:
                if arm in self.attached:
                    name = f"arm{arm}_torque_nm"
                    values[name] = np.where(hit, COLLISION_NM + 0.4 * spread[arm], values[name])
        events += self.limit_alarm(ts, np.max(np.stack(list(values.values())), axis=0), code="arm_collision",
                                   severity=Severity.MEDIUM, text="arm collision: reposition",
                                   over=COLLISION_LIMIT_NM, clear_at=COLLISION_CLEAR_NM)
        return Chunk(ts_us=ts, values=values, events=events)

    def _energy_share(self, seg: Segment) -> float:
        return float(seg.params.get("energy_share", 1.0))

    def _console(self, seg: Segment, active: bool) -> list[DeviceEvent]:
        if active == self.head_in:
            return []
        self.head_in = active
        return [self.event(seg.start_us, EventKind.INFO, "head_in" if active else "head_out")]

    def _instruments(self, seg: Segment) -> list[DeviceEvent]:
        wanted: dict[int, str] = dict(DEFAULT_INSTRUMENTS)
        wanted.update({int(k): str(v) for k, v in _mapping(seg.params.get("instruments")).items()})
        events: list[DeviceEvent] = []
        for arm in ARMS:
            if self.attached.get(arm) == wanted[arm]:
                continue
            if arm in self.attached:
                events.append(self.event(seg.start_us, EventKind.INFO, "instrument_detached",
                                         attrs={"arm": arm, "instrument": self.attached[arm]}))
            self.attached[arm] = wanted[arm]
            events.append(self.event(seg.start_us + 1, EventKind.INFO, "instrument_attached",
                                     attrs={"arm": arm, "instrument": wanted[arm]}))
        return events


def _mapping(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, dict) else {}
