"""Ultrasonic dissector (Harmonic-style shears): MAX/MIN activations, blade temperature.

The transducer drives the blade at ~55 kHz only while a button is pressed; the generator reports the
electrical power and the estimated blade temperature, which climbs during an activation and cools between.
MAX activations on tissue stay below ~230 Cel. A blade run dry against the pad (``fault_rate`` scales how
often) heats towards ``DRY_CEL``: ``blade_overtemp`` is raised once the estimate passes ``BLADE_LIMIT_CEL`` and
cleared once the blade has cooled below ``BLADE_CLEAR_CEL``.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, bursts, inside, lag, locate, metric
from wire.models import Severity

__all__ = ["BLADE_CLEAR_CEL", "BLADE_LIMIT_CEL", "Ultrasonic"]

LEVEL_W = {"max": 45.0, "min": 25.0}
BLADE_LIMIT_CEL = 250.0
BLADE_CLEAR_CEL = 200.0
DRY_CEL = 290.0  # where an activation without tissue between the jaws drives the blade


class Ultrasonic(DeviceModel):
    family = "ultrasonic"
    model_name = "US-300 shears (simulated)"
    default_rate_hz = 5.0
    default_modes = (("max", 0.4), ("min", 0.6))
    metrics = (
        metric("power_w", "W", "transducer power; 0 between activations", 0, 100),
        metric("blade_temp_cel", "Cel", "estimated blade temperature", 15, 300),
        metric("frequency_khz", "kHz", "resonance frequency while active", 50, 60),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.blade = 24.0

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        windows = bursts(self.rng, seg.start_us, seg.end_us, per_min=6 * seg.activity, median_s=3.0, sigma=0.5,
                         max_s=12)
        events, modes = self.activations(windows, seg)
        idx, on = locate(ts, windows)
        n = len(ts)
        level = np.array([LEVEL_W.get(m, 35.0) for m in modes] or [0.0])[np.maximum(idx, 0)]
        power = np.where(on, level * (1 + 0.05 * self.rng.standard_normal(n)), 0.0)
        noise = 0.5 * self.rng.standard_normal(n)
        freq = np.where(on, 55.5 + 0.05 * self.rng.standard_normal(n), np.nan)
        dry = inside(ts, self.fault_windows(seg, per_hour=0.3 * seg.activity, median_s=20.0))
        target = np.where(on, np.where(dry, DRY_CEL, 24 + level * 4.5), 24.0)
        temp = lag(target, self.blade, alpha=0.12, noise=noise)
        if n:
            self.blade = float(temp[-1])
        events += self.limit_alarm(ts, temp, code="blade_overtemp", severity=Severity.MEDIUM,
                                   text="blade temperature high, pause activation", over=BLADE_LIMIT_CEL,
                                   clear_at=BLADE_CLEAR_CEL)
        return Chunk(ts_us=ts, values={"power_w": np.maximum(power, 0), "blade_temp_cel": temp,
                                       "frequency_khz": freq}, events=events)
