"""Device clock tracking (pure): offset estimate and jump detection.

Every sample carries the device's clock; the gateway adds its own and an estimate of (gateway - device), the
median of the last readings (robust to a few late or bursty arrivals). A device clock that *steps* (set by
hand, battery reset, NTP step) is flagged, never silently corrected or reordered.

A steady rate difference is not a jump: simulators run device time faster than wall time, and real clocks
drift. So the detector predicts each reading from the previous one with an estimated rate (device seconds per
gateway second, measured over a baseline of at least ``rate_baseline_us``) and flags a reading whose
residual exceeds ``jump_threshold_us`` (scaled by the rate, since arrival jitter is magnified by it).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

__all__ = ["ClockReading", "ClockTracker"]


@dataclass(frozen=True, slots=True)
class ClockReading:
    offset_us: int  # median estimate of gateway - device after this reading
    jump: bool  # this reading is a discontinuity of the device clock
    jump_us: int = 0  # the residual that was judged a jump (device time change not explained by the rate)


@dataclass
class ClockTracker:
    jump_threshold_us: int = 2_000_000
    window: int = 31
    rate_baseline_us: int = 1_000_000
    _offsets: deque[int] = field(default_factory=deque, init=False)
    _points: deque[tuple[int, int]] = field(default_factory=deque, init=False)  # (gateway_us, device_us)
    _rate: float = field(default=1.0, init=False)

    @property
    def rate(self) -> float:
        return self._rate

    def observe(self, *, device_us: int, gateway_us: int) -> ClockReading:
        jump_us = 0
        if self._points:
            last_gw, last_dev = self._points[-1]
            residual = (device_us - last_dev) - self._rate * (gateway_us - last_gw)
            if abs(residual) > self.jump_threshold_us * max(1.0, self._rate):
                jump_us = int(residual)
        if jump_us:
            # Start over: the old offsets and rate describe a clock that no longer exists.
            self._offsets.clear()
            self._points.clear()
        self._remember(device_us=device_us, gateway_us=gateway_us)
        return ClockReading(offset_us=int(statistics.median(self._offsets)), jump=bool(jump_us), jump_us=jump_us)

    def _remember(self, *, device_us: int, gateway_us: int) -> None:
        self._offsets.append(gateway_us - device_us)
        if len(self._offsets) > self.window:
            self._offsets.popleft()
        self._points.append((gateway_us, device_us))
        # Keep enough history for a rate baseline but not more: drop points while the second-oldest still
        # spans the baseline.
        while len(self._points) > 2 and gateway_us - self._points[1][0] >= self.rate_baseline_us:
            self._points.popleft()
        first_gw, first_dev = self._points[0]
        span = gateway_us - first_gw
        if span >= self.rate_baseline_us and device_us > first_dev:
            self._rate = (device_us - first_dev) / span
