"""Advanced bipolar vessel sealer (LigaSure-style): impedance-controlled seal cycles.

Each activation is one seal cycle: power ramps up, impedance rises as the vessel wall fuses, and the
generator ends the cycle itself when impedance reaches its target (``seal_complete``) or aborts it
(``check_jaws`` alarm) when the jaws hold metal or too much tissue: then the impedance never rises from where it
started, which the samples of that cycle show.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, bursts, inside, locate, metric
from wire.models import EventKind, Severity

__all__ = ["VesselSealer"]


class VesselSealer(DeviceModel):
    family = "vessel_sealer"
    model_name = "VS-10 bipolar sealer (simulated)"
    default_rate_hz = 5.0
    default_modes = (("seal", 1.0),)
    metrics = (
        metric("power_w", "W", "delivered bipolar power; 0 between seal cycles", 0, 350),
        metric("impedance_ohm", "Ohm", "jaw impedance during a seal cycle", 0, 1000),
    )

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        windows = bursts(self.rng, seg.start_us, seg.end_us, per_min=3 * seg.activity, median_s=3.0, sigma=0.3,
                         max_s=6, min_gap_s=2)
        events, _ = self.activations(windows, seg)
        idx, on = locate(ts, windows)
        n = len(ts)
        progress = np.zeros(n)
        if windows:
            w = np.array(windows)[np.maximum(idx, 0)]
            progress = np.clip((ts - w[:, 0]) / np.maximum(w[:, 1] - w[:, 0], 1), 0, 1)
        noise = 5 * self.rng.standard_normal(n)
        power = 150 * np.sin(np.pi * np.minimum(progress * 1.2, 1)) + 5 * self.rng.standard_normal(n)
        aborted: list[tuple[int, int]] = []
        for s, e in windows:
            if self.rng.random() < 0.04 * self.fault_rate:
                aborted.append((s, e))
                events.append(self.event(e, EventKind.ALARM_RAISED, "check_jaws", severity=Severity.LOW,
                                         text="seal cycle incomplete: check jaws"))
                events.append(self.event(e + 3_000_000, EventKind.ALARM_CLEARED, "check_jaws"))
            else:
                cycle = {"cycle_s": round((e - s) / 1e6, 2)}
                events.append(self.event(e, EventKind.INFO, "seal_complete", attrs=cycle))
        rise = np.where(inside(ts, aborted), 0.0, 330 * progress**1.5)  # no seal forms: no rise
        impedance = 20 + rise + noise
        return Chunk(ts_us=ts, values={"power_w": np.where(on, np.maximum(power, 0), 0.0),
                                       "impedance_ohm": np.where(on, np.maximum(impedance, 1), np.nan)},
                     events=events)
