"""Surgical (OR) light: illuminance and colour temperature; on for open work, dimmed for endoscopy.

Endoscopic and robotic phases run with the room dark; the light comes up for access, closure and open work.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, metric
from wire.models import EventKind

__all__ = ["OrLight"]


class OrLight(DeviceModel):
    family = "or_light"
    model_name = "LX-160 surgical light (simulated)"
    default_rate_hz = 0.2
    metrics = (
        metric("illuminance_klx", "klx", "central illuminance at 1 m", 0, 160),
        # colour temperature (K) is deliberately not reported: ortel stores K as a temperature in Cel
        metric("field_diameter_mm", "mm", "light field diameter", 100, 350),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.level = -1.0
        self.field_mm = float(self.rng.choice([200.0, 240.0, 280.0]))

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        level = round(160 * seg.activity, 1)
        events = []
        if level != self.level:
            events.append(self.event(seg.start_us, EventKind.INFO, "light_level", attrs={"illuminance_klx": level}))
            self.level = level
        lux = np.full(n, level) + np.where(level > 0, 0.5 * self.rng.standard_normal(n), 0.0)
        field = np.full(n, self.field_mm if level > 0 else np.nan)
        return Chunk(ts_us=ts, values={"illuminance_klx": np.maximum(lux, 0), "field_diameter_mm": field},
                     events=events)
