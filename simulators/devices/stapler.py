"""Powered surgical stapler: cartridge loads, clamp, compression wait, firing.

Forces exist only while the jaws are closed (clamp force) or the knife and staples advance (firing force);
between uses only the battery is reported. A firing is an activation with code ``fire``; the cartridge type
travels as an attribute so that reload consumption can be counted. Thick tissue makes a high firing force:
``excessive_force`` is raised at the first sample above ``EXCESSIVE_FORCE_N`` and cleared once the force is back
below ``FORCE_CLEAR_N`` (or the firing has ended).
"""

from __future__ import annotations

import numpy as np

from simulators.devices.base import US, Chunk, DeviceModel, Segment, Window, bursts, locate, metric
from wire.device import DeviceEvent
from wire.models import EventKind, Severity

__all__ = ["EXCESSIVE_FORCE_N", "FORCE_CLEAR_N", "Stapler"]

CARTRIDGES = ("45mm-tan", "45mm-purple", "60mm-purple", "60mm-black")
EXCESSIVE_FORCE_N = 400.0
FORCE_CLEAR_N = 380.0


class Stapler(DeviceModel):
    family = "stapler"
    model_name = "PS-60 powered stapler (simulated)"
    default_rate_hz = 5.0
    default_modes = (("fire", 1.0),)
    metrics = (
        metric("clamp_force_n", "N", "jaw clamp force while closed", 0, 300),
        metric("firing_force_n", "N", "firing force while the knife advances", 0, 500),
        metric("battery_pct", "%", "handle battery", 0, 100),
    )

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.battery = float(self.rng.uniform(85, 100))
        self.firings = 0
        self.cartridge = str(self.params.get("cartridge") or CARTRIDGES[int(self.rng.integers(len(CARTRIDGES)))])

    def segment(self, seg: Segment) -> Chunk:
        ts = self.grid(seg)
        uses = bursts(self.rng, seg.start_us, seg.end_us, per_min=0.6 * seg.activity, median_s=25, sigma=0.3,
                      min_gap_s=20)
        clamps: list[Window] = []
        fires: list[Window] = []
        events: list[DeviceEvent] = []
        peaks: list[float] = []
        for s, e in uses:
            fire_s = max(s + US, e - int(self.rng.uniform(3, 6) * US))
            clamps.append((s, fire_s))
            fires.append((fire_s, e))
            peaks.append(float(self.rng.normal(260, 60)))
            events += self._use_events(s, fire_s)
        n = len(ts)
        _, clamped = locate(ts, clamps)
        idx, firing = locate(ts, fires)
        clamp = np.where(clamped, 160 + 20 * self.rng.standard_normal(n), np.nan)
        firing_force = np.full(n, np.nan)
        if fires:
            w = np.array(fires)[np.maximum(idx, 0)]
            progress = np.clip((ts - w[:, 0]) / np.maximum(w[:, 1] - w[:, 0], 1), 0, 1)
            peak = np.array(peaks)[np.maximum(idx, 0)]
            shape = peak * np.sin(np.pi * progress) + 10 * self.rng.standard_normal(n)
            firing_force = np.where(firing, np.maximum(shape, 0), np.nan)
        events += self._fire_stops(ts, firing_force, fires)
        events += self.limit_alarm(ts, firing_force, code="excessive_force", severity=Severity.MEDIUM,
                                   text="firing force high: thick tissue", over=EXCESSIVE_FORCE_N,
                                   clear_at=FORCE_CLEAR_N)
        self.battery -= 0.8 * len(fires)
        battery = np.full(n, max(self.battery, 5.0))
        return Chunk(ts_us=ts, values={"clamp_force_n": clamp, "firing_force_n": firing_force,
                                       "battery_pct": battery}, events=events)

    def _use_events(self, clamp_us: int, fire_us: int) -> list[DeviceEvent]:
        self.firings += 1
        attrs = {"cartridge": self.cartridge, "firing_no": self.firings}
        return [
            self.event(clamp_us - US, EventKind.INFO, "cartridge_loaded", attrs={"cartridge": self.cartridge}),
            self.event(clamp_us, EventKind.INFO, "clamp_closed"),
            self.event(fire_us, EventKind.ACTIVATION_START, "fire", attrs=attrs),
        ]

    def _fire_stops(self, ts: np.ndarray, force: np.ndarray, fires: list[Window]) -> list[DeviceEvent]:
        """End of each firing, with the peak force its samples show (so it agrees with ``excessive_force``)."""
        events = []
        for n, (s, e) in enumerate(fires, start=self.firings - len(fires) + 1):
            attrs: dict[str, object] = {"cartridge": self.cartridge, "firing_no": n}
            seen = force[(ts >= s) & (ts < e)]
            if seen.size:
                attrs["peak_force_n"] = round(float(np.max(seen)), 1)
            events.append(self.event(e, EventKind.ACTIVATION_STOP, "fire", attrs=attrs))
        return events
