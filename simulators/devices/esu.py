"""Electrosurgical generator (monopolar cut/coag, bipolar).

Delivered power exists only while the pedal or hand switch is pressed: activations of a second or two, a few
per minute during dissection. Tissue impedance is measured only during an activation and rises as tissue
desiccates; the generator delivers less than the set power into high impedance. The return-electrode
monitor (REM) measures pad contact continuously: when the pad peels (``fault_rate`` scales how often) the
contact impedance climbs, ``rem_contact`` is raised once it passes ``REM_LIMIT_OHM`` and cleared once the pad is
pressed back and the impedance is below ``REM_CLEAR_OHM``. Like a real generator, it delivers no power while
``rem_contact`` is raised: a pedal press then is an activation request with 0 W (and no tissue reading).
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import Chunk, DeviceModel, Segment, alarm_active, bursts, inside, lag, locate, metric
from wire.models import Severity

__all__ = ["REM_CLEAR_OHM", "REM_LIMIT_OHM", "Esu"]

SET_POWER_W = {"cut": 35.0, "coag": 30.0, "spray": 40.0, "bipolar": 25.0, "endocut": 40.0}
TISSUE_OHM = {"bipolar": 80.0}  # monopolar modes default to 350 Ohm
REM_LIMIT_OHM = 135.0  # contact quality alarm; a well applied split pad reads 15-35 Ohm
REM_CLEAR_OHM = 120.0
PEELED_OHM = 170.0  # where a peeling pad heads


class Esu(DeviceModel):
    family = "esu"
    model_name = "ESU-400 (simulated)"
    default_rate_hz = 5.0
    default_modes = (("coag", 0.6), ("cut", 0.4))
    metrics = (
        metric("power_set_w", "W", "power set for the active mode", 0, 120),
        metric("power_w", "W", "delivered power; 0 between activations", 0, 120),
        metric("impedance_ohm", "Ohm", "tissue impedance, measured during activation", 0, 4000),
        metric("rem_impedance_ohm", "Ohm", "return-electrode contact impedance", 0, 200),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.set_w = SET_POWER_W["coag"]
        self.rem_ohm = float(self.rng.uniform(15, 35))  # this pad's contact impedance, well applied
        self.rem_level = self.rem_ohm

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        windows = bursts(self.rng, seg.start_us, seg.end_us, per_min=8 * seg.activity, median_s=1.5, sigma=0.6,
                         max_s=10)
        events, modes = self.activations(windows, seg)
        idx, on = locate(ts, windows)
        set_by_window = np.array([self.set_w] + [SET_POWER_W.get(m, 30.0) for m in modes])
        set_w = set_by_window[idx + 1]  # before the first activation the previous set point holds
        if modes:
            self.set_w = float(set_by_window[-1])
        n = len(ts)
        base = np.array([TISSUE_OHM.get(m, 350.0) for m in modes] or [350.0])[np.maximum(idx, 0)]
        progress = np.zeros(n)
        if windows:
            starts = np.array([w[0] for w in windows])[np.maximum(idx, 0)]
            ends = np.array([w[1] for w in windows])[np.maximum(idx, 0)]
            progress = np.clip((ts - starts) / np.maximum(ends - starts, 1), 0, 1)
        tissue = base * (1 + 2.0 * progress**2) * np.exp(0.15 * self.rng.standard_normal(n))
        efficiency = np.clip(1.0 - np.maximum(tissue - 500, 0) / 3000, 0.3, 1.0)
        power = np.where(on, set_w * efficiency * (1 + 0.03 * self.rng.standard_normal(n)), 0.0)
        noise = 1.5 * self.rng.standard_normal(n)
        peeling = inside(ts, self.fault_windows(seg, per_hour=0.4 * seg.activity, median_s=20))
        alpha = 1 - np.exp(-1 / (2 * self.rate_hz))  # contact degrades over a couple of seconds
        level = lag(np.where(peeling, PEELED_OHM, self.rem_ohm), self.rem_level, alpha=alpha, noise=np.zeros(n))
        if n:
            self.rem_level = float(level[-1])
        rem = level + noise
        was_raised = "rem_contact" in self._alarmed
        rem_events = self.limit_alarm(ts, rem, code="rem_contact", severity=Severity.HIGH,
                                      text="return electrode contact quality low", over=REM_LIMIT_OHM,
                                      clear_at=REM_CLEAR_OHM)
        events += rem_events
        inhibited = alarm_active(ts, rem_events, was_raised)
        delivering = on & ~inhibited
        return Chunk(
            ts_us=ts,
            values={
                "power_set_w": set_w,
                "power_w": np.where(delivering, np.maximum(power, 0.0), 0.0),
                "impedance_ohm": np.where(delivering, tissue, np.nan),
                "rem_impedance_ohm": rem,
            },
            events=events,
        )

