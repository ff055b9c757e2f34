"""Forced-air patient warming unit: device telemetry only (set point, outlet air, blower).

The unit heats and blows air into a blanket; it reports its own set point and outlet air temperature, never a
patient temperature. It runs whenever the segment is active. Its safety alarm is the over-temperature cut-out:
when the heater control fails (rarely; ``fault_rate`` scales it) the outlet air climbs past the set point, the
cut-out trips once the measured outlet passes ``CUTOUT_CEL``, heater and blower stop and the air cools; the alarm
clears when the outlet is back below ``RESET_CEL`` and warming resumes.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, inside, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["CUTOUT_CEL", "RESET_CEL", "PatientWarming"]

ROOM_CEL = 22.0
CUTOUT_CEL = 47.0  # outlet over-temperature cut-out, above the highest set point (45)
RESET_CEL = 38.0  # the cut-out resets once the outlet air has cooled below this
RUNAWAY_CEL = 56.0  # where a failed heater control would drive the outlet air
BLOWER_PCT = 80.0


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
        self.outlet = ROOM_CEL
        self.running = False
        self.cut_out = False

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
        noise = 0.15 * self.rng.standard_normal(n)
        runaway = inside(ts, self.fault_windows(seg, per_hour=0.05, median_s=120)) if active else np.zeros(n, bool)
        outlet, blower = np.empty(n), np.empty(n)
        x = self.outlet  # true outlet air temperature; the reading adds sensor noise
        for i, t in enumerate(ts.tolist()):
            heating = active and not self.cut_out
            goal = (RUNAWAY_CEL if runaway[i] else self.setpoint) if heating else ROOM_CEL
            x += alpha * (goal - x)
            reading = x + noise[i]
            if heating and reading > CUTOUT_CEL:
                self.cut_out, heating = True, False  # the cut-out stops heater and blower at once
                events.append(self.event(t, EventKind.ALARM_RAISED, "overtemp_cutout", severity=Severity.HIGH,
                                         text="outlet over-temperature: heater cut out"))
            elif self.cut_out and reading < RESET_CEL:
                self.cut_out = False  # warming resumes from the next sample
                events.append(self.event(t, EventKind.ALARM_CLEARED, "overtemp_cutout"))
            outlet[i], blower[i] = reading, BLOWER_PCT if heating else 0.0
        self.outlet = x
        return Chunk(ts_us=ts, values={"setpoint_cel": np.full(n, self.setpoint), "outlet_temp_cel": outlet,
                                       "blower_pct": blower}, events=events)
