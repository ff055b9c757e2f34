"""Smoke evacuator: runs while energy devices make plume, its filter wears with run time.

In auto mode (``follows`` the generator in the scenario) it runs whenever the generator activates and a few
seconds after; otherwise its activations follow the phase's use. The ULPA filter life drops with every minute
of flow and raises a reminder below 10 %.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import US, Chunk, DeviceModel, Segment, Window, bursts, inside, metric
from wire.models import EventKind, Severity

__all__ = ["SmokeEvacuator"]

RUN_ON_US = 3 * US


class SmokeEvacuator(DeviceModel):
    family = "smoke_evacuator"
    model_name = "SE-50 smoke evacuator (simulated)"
    default_rate_hz = 1.0
    default_modes = (("auto", 1.0),)
    metrics = (
        metric("flow_l_min", "L/min", "evacuation flow", 0, 60),
        metric("filter_life_pct", "%", "remaining ULPA filter life", 0, 100),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.filter = float(self.rng.uniform(15, 100))
        self.warned = False

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        if self.followed is not None:
            windows = self._sensed(seg)
        else:
            windows = bursts(self.rng, seg.start_us, seg.end_us, per_min=5 * seg.activity, median_s=4, sigma=0.5)
        events, _ = self.activations(windows, seg)
        on = inside(ts, windows)
        flow = np.where(on, 40 + 2 * self.rng.standard_normal(n), 0.0)
        wear = np.cumsum(on) / self.rate_hz / 3600.0 * 8.0  # ~8 % of filter life per hour of flow
        life = np.maximum(self.filter - wear, 0.0)
        low = np.flatnonzero(life < 10.0)
        if low.size and not self.warned:
            self.warned = True
            events.append(self.event(int(ts[low[0]]), EventKind.ALARM_RAISED, "filter_low", severity=Severity.LOW,
                                     text="replace ULPA filter after this case"))
        if n:
            self.filter = float(life[-1])
        return Chunk(ts_us=ts, values={"flow_l_min": np.maximum(flow, 0), "filter_life_pct": life}, events=events)

    def _sensed(self, seg: Segment) -> list[Window]:
        """Auto mode: on when the followed generator activates, running on a few seconds after (plume)."""
        out: list[Window] = []
        for on, off in self.followed or ():
            s, e = max(on, seg.start_us), min(off + RUN_ON_US, seg.end_us)
            if e <= s:
                continue
            if out and s <= out[-1][1]:
                out[-1] = (out[-1][0], max(out[-1][1], e))  # activations close together: keeps running
            else:
                out.append((s, e))
        return out
