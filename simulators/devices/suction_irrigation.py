"""Suction/irrigation pump: vacuum while suctioning, saline flow while irrigating, volumes and canister.

Suction and irrigation are short hand-switch activations (modes ``suction`` / ``irrigation``). The canister
fills with what is suctioned; near full the pump raises ``canister_full`` until a new one is fitted.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, bursts, locate, metric
from wire.models import EventKind, Severity

__all__ = ["SuctionIrrigation"]

CANISTER_ML = 3000.0


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
        canister = self.canister + np.cumsum(np.where(sucking, 600.0, 0.0)) * dt_min
        full_at = np.flatnonzero(canister >= 0.95 * CANISTER_ML)
        if full_at.size:
            i = int(full_at[0])
            events.append(self.event(int(ts[i]), EventKind.ALARM_RAISED, "canister_full", severity=Severity.MEDIUM,
                                     text="suction canister nearly full"))
            events.append(self.event(int(ts[i]) + 60_000_000, EventKind.ALARM_CLEARED, "canister_full"))
            canister[i:] -= canister[i]  # a fresh canister
        if n:
            self.irrigated, self.canister = float(irrigation[-1]), float(canister[-1])
        values = {"vacuum_mmhg": np.maximum(vacuum, 0), "irrigation_flow_l_min": np.maximum(flow, 0) / 1000.0,
                  "irrigation_volume_ml": irrigation, "canister_ml": canister}
        return Chunk(ts_us=ts, values=values, events=events)
