"""Anaesthesia workstation: machine telemetry only, never patient physiology.

Reported: fresh gas flow, O2 pipeline supply pressure, vaporiser dial setting and CO2 absorbent exhaustion.
Patient values (SpO2, end-tidal CO2, blood pressure) are deliberately absent: they are patient data and
stay on the monitor. Induction (activity 1) runs high fresh gas flow, maintenance low flow.

The O2 pipeline holds about 4.1 bar; when the hospital supply falters (rarely; ``fault_rate`` scales it) the
pressure sags towards ``O2_FAILING_BAR``, ``o2_supply_low`` is raised once the reading drops below
``O2_LOW_BAR`` and cleared once it is back above ``O2_CLEAR_BAR``.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, inside, lag, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["O2_CLEAR_BAR", "O2_LOW_BAR", "AnaesthesiaWorkstation"]

O2_NORMAL_BAR = 4.1  # pipeline supply, gauge
O2_LOW_BAR = 2.8  # supply-low alarm limit
O2_CLEAR_BAR = 3.1  # back above this: the alarm clears
O2_FAILING_BAR = 1.5  # where a failing supply sags to


class AnaesthesiaWorkstation(DeviceModel):
    family = "anaesthesia_workstation"
    model_name = "AW-9 anaesthesia workstation (simulated)"
    default_rate_hz = 0.2
    metrics = (
        metric("fresh_gas_flow_l_min", "L/min", "total fresh gas flow", 0, 15),
        metric("o2_pipeline_bar", "bar", "O2 pipeline supply pressure (gauge)", 0, 6),
        metric("vaporizer_pct", "%", "volatile agent vaporiser dial setting", 0, 8),
        metric("absorbent_used_pct", "%", "CO2 absorbent exhaustion", 0, 100),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.absorbent = float(self.rng.uniform(5, 60))
        self.ventilating = False
        self.supply = O2_NORMAL_BAR

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        active = seg.activity > 0
        events: list[DeviceEvent] = []
        if active != self.ventilating:
            self.ventilating = active
            code = "ventilation_start" if active else "ventilation_stop"
            events.append(self.event(seg.start_us, EventKind.INFO, code, attrs={"mode": "pcv_vg"} if active else {}))
        flow = (0.5 + 5.5 * seg.activity**2 if active else 0.0) + 0.05 * self.rng.standard_normal(n)
        noise = 0.04 * self.rng.standard_normal(n)
        failing = inside(ts, self.fault_windows(seg, per_hour=0.05, median_s=30))
        alpha = 1 - np.exp(-1 / (5 * self.rate_hz))  # the pipeline sags and recovers within seconds
        supply = lag(np.where(failing, O2_FAILING_BAR, O2_NORMAL_BAR), self.supply, alpha=alpha, noise=np.zeros(n))
        if n:
            self.supply = float(supply[-1])
        pipeline = supply + noise
        events += self.limit_alarm(ts, pipeline, code="o2_supply_low", severity=Severity.HIGH,
                                   text="O2 pipeline pressure low", under=O2_LOW_BAR, clear_at=O2_CLEAR_BAR)
        vaporizer = np.full(n, 2.0 if active else 0.0)
        wear = np.cumsum(np.full(n, 1.0 if active else 0.0)) / self.rate_hz / 3600 * 6.0
        absorbent = np.minimum(self.absorbent + wear, 100.0)
        if n:
            self.absorbent = float(absorbent[-1])
        return Chunk(ts_us=ts, values={"fresh_gas_flow_l_min": np.maximum(flow, 0), "o2_pipeline_bar": pipeline,
                                       "vaporizer_pct": vaporizer, "absorbent_used_pct": absorbent}, events=events)
