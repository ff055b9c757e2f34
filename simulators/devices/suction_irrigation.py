"""Suction/irrigation pump: vacuum while suctioning, saline flow while irrigating, volumes and canister.

Suction and irrigation are short hand-switch activations (modes ``suction`` / ``irrigation``). The canister
fills with what is suctioned; at ``FULL_ML`` its shut-off valve closes, the pump raises ``canister_full`` and the
level stays there until a new canister is fitted (``REPLACE_US`` later), when the alarm clears and the level
reads zero again.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import US, Chunk, DeviceModel, Segment, bursts, locate, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["FULL_ML", "SuctionIrrigation"]

CANISTER_ML = 3000.0
FULL_ML = 0.95 * CANISTER_ML
REPLACE_US = 60 * US  # a full canister is swapped for an empty one within a minute


class SuctionIrrigation(DeviceModel):
    family = "suction_irrigation"
    model_name = "SI-2 suction/irrigation (simulated)"
    default_rate_hz = 2.0
    default_modes = (("suction", 0.6), ("irrigation", 0.4))
    metrics = (
        metric("vacuum_mmhg", "mm[Hg]", "suction vacuum below ambient", 0, 700),
        metric("irrigation_flow_l_min", "L/min", "saline irrigation flow", 0, 2),
        metric("irrigation_volume_ml", "mL", "saline used since power-on", 0, 20000),
        metric("canister_ml", "mL", "fluid in the suction canister", 0, CANISTER_ML),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.irrigated = 0.0
        self.canister = 0.0
        self.replaced_at: int | None = None  # while full: when the new canister goes in

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        windows = bursts(self.rng, seg.start_us, seg.end_us, per_min=3 * seg.activity, median_s=4, sigma=0.6)
        events, modes = self.activations(windows, seg)
        idx, on = locate(ts, windows)
        mode = np.array(modes or ["none"])[np.maximum(idx, 0)]
        sucking = on & (mode == "suction")
        irrigating = on & (mode == "irrigation")
        vacuum = np.where(sucking, 250 + 20 * self.rng.standard_normal(n), 3 + 1.5 * self.rng.random(n))
        flow = np.where(irrigating, 900 + 60 * self.rng.standard_normal(n), 0.0)
        dt_min = 1.0 / (60 * self.rate_hz)
        irrigation = self.irrigated + np.cumsum(flow) * dt_min
        canister, swaps = self._fill(ts, np.where(sucking, 600.0, 0.0) * dt_min, seg.start_us, seg.end_us)
        events += swaps
        if n:
            self.irrigated = float(irrigation[-1])
        values = {"vacuum_mmhg": np.maximum(vacuum, 0), "irrigation_flow_l_min": np.maximum(flow, 0) / 1000.0,
                  "irrigation_volume_ml": irrigation, "canister_ml": canister}
        return Chunk(ts_us=ts, values=values, events=events)

    def _fill(self, ts: np.ndarray, inflow_ml: np.ndarray, start_us: int, end_us: int
              ) -> tuple[np.ndarray, list[DeviceEvent]]:
        """Canister level per sample, and the full / replaced alarm edges; the level carries over."""
        level = np.empty(len(ts))
        events: list[DeviceEvent] = []
        for i, (t, add) in enumerate(zip(ts.tolist(), inflow_ml.tolist(), strict=True)):
            if self.replaced_at is not None and t >= self.replaced_at:
                events.append(self._replaced(max(self.replaced_at, start_us)))
            if self.replaced_at is None:  # full: the shut-off valve lets nothing in
                self.canister += add
                if self.canister >= FULL_ML:
                    self.replaced_at = t + REPLACE_US
                    events.append(self.event(t, EventKind.ALARM_RAISED, "canister_full", severity=Severity.MEDIUM,
                                             text="suction canister nearly full"))
            level[i] = self.canister
        if self.replaced_at is not None and self.replaced_at <= end_us:  # swapped after the last sample
            events.append(self._replaced(max(self.replaced_at, start_us)))
        return level, events

    def _replaced(self, at_us: int) -> DeviceEvent:
        self.canister, self.replaced_at = 0.0, None
        return self.event(at_us, EventKind.ALARM_CLEARED, "canister_full")
