"""Ultrasonic dissector (Harmonic-style shears): MAX/MIN activations, blade temperature.

The transducer drives the blade at ~55 kHz only while a button is pressed; the generator reports the
electrical power and the estimated blade temperature, which climbs during an activation and cools between.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, bursts, lag, locate, metric
from wire.models import Severity

__all__ = ["Ultrasonic"]

LEVEL_W = {"max": 45.0, "min": 25.0}


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
        target = np.where(on, 24 + level * 4.5, 24.0)
        temp = lag(target, self.blade, alpha=0.12, noise=0.5 * self.rng.standard_normal(n))
        if n:
            self.blade = float(temp[-1])
        freq = np.where(on, 55.5 + 0.05 * self.rng.standard_normal(n), np.nan)
        events += self.maybe_alarm(seg, per_hour=0.3 * seg.activity, code="blade_overtemp",
                                   severity=Severity.MEDIUM, text="blade temperature high, pause activation")
        return Chunk(ts_us=ts, values={"power_w": np.maximum(power, 0), "blade_temp_cel": temp,
                                       "frequency_khz": freq}, events=events)
