"""Endoscopy camera control unit and its light source (two devices, two families).

The camera head warms with use and records video on request; the light source's LED/lamp hours accumulate
while it is on, and its temperature follows the intensity. Lamp hours are device life data: they carry over
between cases and eventually raise a service reminder. When the light source's fan stalls (rarely;
``fault_rate`` scales it) the lamp heats towards ``FAN_STALL_CEL``; ``lamp_overtemp`` is raised once the lamp
temperature passes ``LAMP_OVERTEMP_CEL`` and cleared when it is back below ``LAMP_CLEAR_CEL``.
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import US, Chunk, DeviceModel, Segment, inside, lag, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["LAMP_CLEAR_CEL", "LAMP_OVERTEMP_CEL", "Camera", "LightSource"]

LAMP_SERVICE_H = 2000.0
LAMP_OVERTEMP_CEL = 75.0  # lamp module limit; in use with a working fan it runs at 57-66 Cel
LAMP_CLEAR_CEL = 70.0
FAN_STALL_CEL = 85.0  # where the lamp module heads without its fan


class Camera(DeviceModel):
    family = "camera"
    model_name = "4K-CCU (simulated)"
    default_rate_hz = 0.5
    metrics = (
        metric("head_temp_cel", "Cel", "camera head temperature", 15, 60),
        metric("frame_rate_hz", "Hz", "video frame rate delivered", 0, 60),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.temp = 24.0
        self.recording = False

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        active = seg.activity > 0
        events: list[DeviceEvent] = []
        if active and not self.recording:
            events.append(self.event(seg.start_us, EventKind.INFO, "white_balance"))
            events.append(self.event(seg.start_us + US, EventKind.ACTIVATION_START, "record"))
        elif not active and self.recording:
            events.append(self.event(seg.start_us, EventKind.ACTIVATION_STOP, "record"))
        self.recording = active
        for _ in range(int(self.rng.poisson(seg.seconds / 600 * seg.activity))):
            at = int(self.rng.integers(seg.start_us, max(seg.end_us, seg.start_us + 1)))
            events.append(self.event(at, EventKind.INFO, "image_capture"))
        alpha = 1 - np.exp(-1 / (300 * self.rate_hz))
        target = np.full(n, 38.0 if active else 28.0)
        temp = lag(target, self.temp, alpha=alpha, noise=0.1 * self.rng.standard_normal(n))
        if n:
            self.temp = float(temp[-1])
        frames = np.where(active, 59.94, 0.0) + np.zeros(n)
        return Chunk(ts_us=ts, values={"head_temp_cel": temp, "frame_rate_hz": frames}, events=events)


class LightSource(DeviceModel):
    family = "light_source"
    model_name = "LED-300 light source (simulated)"
    default_rate_hz = 0.5
    metrics = (
        metric("intensity_pct", "%", "light output", 0, 100),
        metric("lamp_temp_cel", "Cel", "lamp module temperature", 15, 90),
        metric("lamp_hours_h", "h", "lamp operating hours", 0, 10000),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.hours = float(self.params.get("lamp_hours_h", self.rng.uniform(200, 1990)))
        self.temp = 25.0
        self.intensity = float(self.rng.choice([60.0, 70.0, 80.0]))
        self.reminded = False

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        n = len(ts)
        active = seg.activity > 0
        level = self.intensity if active else 0.0
        intensity = np.full(n, level)
        alpha = 1 - np.exp(-1 / (120 * self.rate_hz))
        noise = 0.2 * self.rng.standard_normal(n)
        stalled = inside(ts, self.fault_windows(seg, per_hour=0.1, median_s=240)) if active else np.zeros(n, bool)
        temp = lag(np.where(stalled, FAN_STALL_CEL, 30 + 0.45 * level), self.temp, alpha=alpha, noise=noise)
        hours = self.hours + (np.arange(1, n + 1) / self.rate_hz / 3600.0 if active else np.zeros(n))
        events: list[DeviceEvent] = []
        if active and hours.size and hours[-1] >= LAMP_SERVICE_H and not self.reminded:
            self.reminded = True
            events.append(self.event(int(ts[np.argmax(hours >= LAMP_SERVICE_H)]), EventKind.INFO, "lamp_service_due",
                                     attrs={"lamp_hours_h": LAMP_SERVICE_H}))
        events += self.limit_alarm(ts, temp, code="lamp_overtemp", severity=Severity.LOW,
                                   text="lamp temperature high: check fan", over=LAMP_OVERTEMP_CEL,
                                   clear_at=LAMP_CLEAR_CEL)
        if n:
            self.temp, self.hours = float(temp[-1]), float(hours[-1])
        return Chunk(ts_us=ts, values={"intensity_pct": intensity, "lamp_temp_cel": temp, "lamp_hours_h": hours},
                     events=events)
