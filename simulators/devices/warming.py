"""Forced-air patient warming unit: device telemetry only (set point, outlet air, blower).

The unit heats and blows air into a blanket; it reports its own set point and outlet air temperature, never a
patient temperature. It runs whenever the segment is active; an over-temperature cut-out is its safety alarm.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, lag, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["PatientWarming"]


class PatientWarming(DeviceModel):
    family = "patient_warming"
    model_name = "FA-750 forced-air warmer (simulated)"
    default_rate_hz = 0.2
    metrics = (
        metric("setpoint_cel", "Cel", "outlet air set point", 20, 45),
        metric("outlet_temp_cel", "Cel", "measured outlet air temperature", 15, 50),
        metric("blower_pct", "%", "blower speed", 0, 100),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.setpoint = float(self.params.get("setpoint_cel", 43.0))
        self.outlet = 22.0
        self.running = False

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        active = seg.activity > 0
        events: list[DeviceEvent] = []
        if active != self.running:
            kind = EventKind.ACTIVATION_START if active else EventKind.ACTIVATION_STOP
            events.append(self.event(seg.start_us, kind, "warming"))
            self.running = active
        alpha = 1 - np.exp(-1 / (90 * self.rate_hz))
        target = np.full(n, self.setpoint if active else 22.0)
        outlet = lag(target, self.outlet, alpha=alpha, noise=0.15 * self.rng.standard_normal(n))
        if n:
            self.outlet = float(outlet[-1])
        if active:
            events += self.maybe_alarm(seg, per_hour=0.05, code="overtemp_cutout", severity=Severity.HIGH,
                                       text="outlet over-temperature: heater cut out", median_s=60)
        blower = np.full(n, 80.0 if active else 0.0)
        return Chunk(ts_us=ts, values={"setpoint_cel": np.full(n, self.setpoint), "outlet_temp_cel": outlet,
                                       "blower_pct": blower}, events=events)
