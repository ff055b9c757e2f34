"""Pneumatic tourniquet: cuff pressure held at a set point while inflated, inflation time with a limit.

Inflated while the segment is active (limb surgery between inflation and release). Clinical practice limits
continuous inflation (commonly 90-120 min); the unit raises ``inflation_time`` when the limit passes.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import US, Chunk, DeviceModel, Segment, lag, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["Tourniquet"]


class Tourniquet(DeviceModel):
    family = "tourniquet"
    model_name = "PT-2 tourniquet (simulated)"
    default_rate_hz = 1.0
    metrics = (
        metric("pressure_set_mmhg", "mm[Hg]", "cuff pressure set point", 0, 400),
        metric("cuff_pressure_mmhg", "mm[Hg]", "measured cuff pressure", 0, 450),
        metric("inflation_time_s", "s", "time inflated since the last release", 0, 14_400),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.set_mmhg = float(self.params.get("pressure_mmhg", 250.0))
        self.limit_min = float(self.params.get("limit_min", 90.0))
        self.inflated_at: int | None = None
        self.cuff = 0.0
        self.warned = False

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        active = seg.activity > 0
        events: list[DeviceEvent] = []
        if active and self.inflated_at is None:
            self.inflated_at, self.warned = seg.start_us, False
            events.append(self.event(seg.start_us, EventKind.ACTIVATION_START, "inflate"))
        elif not active and self.inflated_at is not None:
            self.inflated_at = None
            events.append(self.event(seg.start_us, EventKind.ACTIVATION_STOP, "inflate"))
        alpha = 1 - np.exp(-1 / (3 * self.rate_hz))
        cuff = np.maximum(lag(np.full(n, self.set_mmhg if active else 0.0), self.cuff, alpha=alpha,
                              noise=1.0 * self.rng.standard_normal(n)), 0)
        if n:
            self.cuff = float(cuff[-1])
        minutes = (ts - self.inflated_at) / (60 * US) if self.inflated_at is not None else np.zeros(n)
        over = np.flatnonzero(minutes >= self.limit_min)
        if over.size and not self.warned:
            self.warned = True
            events.append(self.event(int(ts[over[0]]), EventKind.ALARM_RAISED, "inflation_time",
                                     severity=Severity.MEDIUM, text=f"inflated over {self.limit_min:.0f} min"))
        if not active and self.warned:
            self.warned = False
            events.append(self.event(seg.start_us, EventKind.ALARM_CLEARED, "inflation_time"))
        return Chunk(ts_us=ts, values={"pressure_set_mmhg": np.full(n, self.set_mmhg), "cuff_pressure_mmhg": cuff,
                                       "inflation_time_s": np.asarray(minutes, dtype=float) * 60.0}, events=events)
