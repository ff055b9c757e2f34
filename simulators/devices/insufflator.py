"""CO2 insufflator: pressure regulated to a set point, flow to make up for leaks, gas used.

Insufflation runs while the segment is active (from access to desufflation). Actual pressure follows the set
point with a first-order lag; instrument exchanges open a leak (pressure dips, flow jumps). A patient
pressing against the abdominal wall (``fault_rate`` scales how often) pushes the pressure up within a second or
two, faster than the regulator can vent: ``overpressure`` is raised once the reading is more than
``OVERPRESSURE_MMHG`` above the set point and cleared once it is back within ``CLEAR_MMHG``. Volume used is the
running integral of flow. Set point comes from the phase (``pressure_mmhg``) or the device parameter.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, bursts, inside, lag, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["CLEAR_MMHG", "OVERPRESSURE_MMHG", "Insufflator"]

OVERPRESSURE_MMHG = 5.0  # alarm: pressure above set point + 5 mmHg
CLEAR_MMHG = 4.0
PRESS_MMHG = 9.0  # how far the abdominal wall pushes the pressure up


class Insufflator(DeviceModel):
    family = "insufflator"
    model_name = "CO2-45 high-flow insufflator (simulated)"
    default_rate_hz = 1.0
    metrics = (
        metric("pressure_set_mmhg", "mm[Hg]", "intra-abdominal pressure set point", 0, 30),
        metric("pressure_mmhg", "mm[Hg]", "measured insufflation pressure", 0, 40),
        metric("flow_l_min", "L/min", "CO2 flow", 0, 50),
        metric("volume_ml", "mL", "CO2 used since power-on", 0, 2_000_000),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.on = False
        self.pressure = 0.0  # regulated pressure (no sensor noise)
        self.press = 0.0  # what the abdominal wall adds on top
        self.volume = 0.0
        self.set_mmhg = float(self.params.get("pressure_mmhg", 12.0))
        self.max_flow = float(self.params.get("max_flow_l_min", 40.0))

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        events: list[DeviceEvent] = []
        active = seg.activity > 0
        if active != self.on:
            kind = EventKind.ACTIVATION_START if active else EventKind.ACTIVATION_STOP
            events.append(self.event(seg.start_us, kind, "insufflation"))
            self.on = active
        self.set_mmhg = float(seg.params.get("pressure_mmhg", self.set_mmhg))
        leaks = bursts(self.rng, seg.start_us, seg.end_us, per_min=0.8 * seg.activity, median_s=6, sigma=0.5)
        presses = self.fault_windows(seg, per_hour=0.5 * seg.activity, median_s=6) if active else []
        target = np.full(n, self.set_mmhg if active else 0.0)
        target = np.where(inside(ts, leaks), target - 3.5, target)
        alpha = 1 - np.exp(-1.0 / (6.0 * self.rate_hz))  # ~6 s time constant
        regulated = lag(target, self.pressure, alpha=alpha, noise=np.zeros(n))
        fast = 1 - np.exp(-1.0 / (1.0 * self.rate_hz))  # the wall pushes within about a second
        press = lag(np.where(inside(ts, presses), PRESS_MMHG, 0.0), self.press, alpha=fast, noise=np.zeros(n))
        pressure = np.maximum(regulated + press + 0.25 * self.rng.standard_normal(n), 0)
        if n:
            self.pressure, self.press = float(regulated[-1]), float(press[-1])
        alarms = self.limit_alarm(ts, pressure - self.set_mmhg, code="overpressure", severity=Severity.HIGH,
                                  text="pressure above set point + 5 mmHg", over=OVERPRESSURE_MMHG,
                                  clear_at=CLEAR_MMHG)
        deficit = np.maximum(self.set_mmhg - pressure, 0) if active else np.zeros(n)
        flow = np.where(active, np.minimum(0.8 + 6.0 * deficit + 0.2 * self.rng.standard_normal(n), self.max_flow), 0)
        flow = np.maximum(flow, 0.0)
        volume = self.volume + np.cumsum(flow) / (60.0 * self.rate_hz)
        if n:
            self.volume = float(volume[-1])
        set_col = np.full(n, self.set_mmhg)
        return Chunk(ts_us=ts, values={"pressure_set_mmhg": set_col, "pressure_mmhg": pressure,
                                       "flow_l_min": flow, "volume_ml": volume * 1000.0}, events=events + alarms)

