"""The shape every device model shares: segments in, device lines out.

A case is cut into ``Segment`` s (a phase, or idle time between phases) that say how busy the device is
(``activity`` 0..1) and in which modes it is used. A family implements ``segment()``, returning a ``Chunk``:
sample times, metric columns (NaN = not measured) and discrete events. ``DeviceModel.lines`` turns chunks into
``wire.device`` lines in time order. Models are pure: all randomness comes from the ``np.random.Generator``
handed in, all time from the segments.

Alarms are read off the readings, never drawn on their own: a family draws the *cause* (a fan stalls, a pad
peels, the supply fails) with ``fault_windows``, lets it move its metrics, and ``limit_alarm`` raises and clears
the alarm where the reported metric crosses its limit. A clinical engineer watching the dashboard sees the value
go out of range as the alarm comes, and back before it goes. The device parameter ``fault_rate`` (default 1)
scales how often those causes occur: 0 never, 50 fifty times as often (tests, demos).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from wire.device import Bye, DeviceEvent, Hello, Sample
from wire.models import EventKind, MetricDef, Severity

__all__ = [
    "US",
    "Chunk",
    "DeviceModel",
    "Line",
    "Segment",
    "Window",
    "alarm_active",
    "bursts",
    "grid",
    "inside",
    "lag",
    "locate",
    "metric",
]

US = 1_000_000
Line = Hello | Sample | DeviceEvent | Bye
Window = tuple[int, int]  # [start_us, end_us)


@dataclass(frozen=True, slots=True)
class Segment:
    """A stretch of a case: ``activity`` 0 (powered, idle) .. 1 (in continuous use)."""

    start_us: int
    end_us: int
    activity: float = 0.0
    modes: tuple[tuple[str, float], ...] = ()  # (mode, weight) for activations in this stretch
    phase: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)  # per-phase settings, e.g. a pressure set point

    @property
    def seconds(self) -> float:
        return (self.end_us - self.start_us) / US


@dataclass(frozen=True, slots=True)
class Chunk:
    ts_us: np.ndarray  # int64, sorted
    values: dict[str, np.ndarray]  # float64 columns aligned with ts_us; NaN = not measured
    events: list[DeviceEvent] = field(default_factory=list)


def metric(name: str, unit: str, description: str, low: float | None = None, high: float | None = None) -> MetricDef:
    return MetricDef(name=name, unit=unit, description=description, low=low, high=high)


def grid(start_us: int, end_us: int, rate_hz: float) -> np.ndarray:
    """Sample instants on an absolute grid, so consecutive segments neither overlap nor leave a hole."""
    period = max(1, round(US / rate_hz))
    first = -(-start_us // period) * period
    return np.arange(first, end_us, period, dtype=np.int64)


def bursts(
    rng: np.random.Generator,
    start_us: int,
    end_us: int,
    *,
    per_min: float,
    median_s: float,
    sigma: float = 0.5,
    min_gap_s: float = 0.5,
    max_s: float | None = None,
) -> list[Window]:
    """Non-overlapping activations: Poisson starts (``per_min``), log-normal durations around ``median_s``."""
    windows: list[Window] = []
    if per_min <= 0:
        return windows
    t = start_us + rng.exponential(60.0 / per_min) * US
    while t < end_us:
        dur = median_s * math.exp(sigma * rng.standard_normal())
        if max_s is not None:
            dur = min(dur, max_s)
        s, e = int(t), min(int(t + dur * US), end_us)
        if e - s >= US // 10:
            windows.append((s, e))
        t = e + (min_gap_s + rng.exponential(60.0 / per_min)) * US
    return windows


def locate(ts: np.ndarray, windows: Sequence[Window]) -> tuple[np.ndarray, np.ndarray]:
    """For each instant: the index of the last window started at or before it (-1: none), and whether the
    instant falls inside that window. Windows are sorted and disjoint."""
    if not windows:
        return np.full(ts.shape, -1, dtype=np.int64), np.zeros(ts.shape, dtype=bool)
    starts = np.fromiter((w[0] for w in windows), dtype=np.int64, count=len(windows))
    ends = np.fromiter((w[1] for w in windows), dtype=np.int64, count=len(windows))
    idx = np.searchsorted(starts, ts, side="right") - 1
    ok = idx >= 0
    mask = np.zeros(ts.shape, dtype=bool)
    mask[ok] = ts[ok] < ends[idx[ok]]
    return idx, mask


def inside(ts: np.ndarray, windows: Sequence[Window]) -> np.ndarray:
    """Boolean mask of the instants that fall inside one of the sorted, disjoint windows."""
    return locate(ts, windows)[1]


def lag(target: np.ndarray, x0: float, *, alpha: float, noise: np.ndarray) -> np.ndarray:
    """First-order tracking of ``target`` (a controller following its set point), plus measurement noise."""
    out = np.empty(target.shape)
    x = x0
    for i, goal in enumerate(target):
        x += alpha * (goal - x)
        out[i] = x
    tracked: np.ndarray = out + noise
    return tracked


def alarm_active(ts: np.ndarray, events: Sequence[DeviceEvent], raised_before: bool) -> np.ndarray:
    """Per sample of ``ts``: is the alarm of ``events`` (one code, from ``DeviceModel.limit_alarm``) raised?
    Raised from the sample stamped with its raise, cleared from the sample stamped with its clear."""
    active = np.full(len(ts), raised_before)
    for ev in sorted(events, key=lambda e: e.ts_us):
        if ev.kind in (EventKind.ALARM_RAISED, EventKind.ALARM_CLEARED):
            active[int(np.searchsorted(ts, ev.ts_us)):] = ev.kind == EventKind.ALARM_RAISED
    return active


class DeviceModel(ABC):
    """One device of a family; ``segment`` is the family's signal model."""

    family: ClassVar[str]
    manufacturer: ClassVar[str] = "ortel-sim"
    model_name: ClassVar[str] = ""
    metrics: ClassVar[tuple[MetricDef, ...]]
    default_rate_hz: ClassVar[float] = 1.0
    default_modes: ClassVar[tuple[tuple[str, float], ...]] = ()

    def __init__(
        self, *, device_id: str, rng: np.random.Generator, rate_hz: float | None = None, **params: Any
    ) -> None:
        self.device_id = device_id
        self.rng = rng
        self.rate_hz = float(rate_hz or self.default_rate_hz)
        self.params = params
        self.serial = f"SIM{int(rng.integers(10**6, 10**7))}"
        self.followed: list[Window] | None = None
        self.fault_rate = float(params.get("fault_rate", 1.0))
        self._alarmed: set[str] = set()  # codes raised and not yet cleared, across segments

    def follow(self, windows: Sequence[Window]) -> None:
        """Activations of another device this one reacts to in the next case (see ``DeviceDef.follows``)."""
        self.followed = sorted(windows)

    def hello(self) -> Hello:
        return Hello(
            device_id=self.device_id,
            device_type=self.family,
            manufacturer=self.manufacturer,
            model=self.model_name,
            serial=self.serial,
            firmware="1.0.0",
            metrics=self.metrics,
            heartbeat_s=10.0,
        )

    def bye(self, ts_us: int) -> Bye:
        return Bye(device_id=self.device_id, ts_us=ts_us)

    @abstractmethod
    def segment(self, seg: Segment) -> Chunk:
        """Samples and events of one stretch; state (volumes, lamp hours) carries over to the next."""

    def lines(self, segments: Iterable[Segment]) -> Iterator[Sample | DeviceEvent]:
        for seg in segments:
            if seg.end_us > seg.start_us:
                yield from self._merge(self.segment(seg), seg.end_us)

    # ------------------------------------------------------------------------------------------ helpers

    def grid(self, seg: Segment) -> np.ndarray:
        return grid(seg.start_us, seg.end_us, self.rate_hz)

    def mode(self, seg: Segment) -> str:
        modes = seg.modes or self.default_modes
        names = [m for m, _ in modes]
        weights = np.array([w for _, w in modes], dtype=float)
        return str(names[int(self.rng.choice(len(names), p=weights / weights.sum()))])

    def event(self, ts_us: int, kind: EventKind, code: str | None = None, **kw: Any) -> DeviceEvent:
        return DeviceEvent(device_id=self.device_id, ts_us=ts_us, kind=kind, code=code, **kw)

    def activations(self, windows: Sequence[Window], seg: Segment) -> tuple[list[DeviceEvent], list[str]]:
        events: list[DeviceEvent] = []
        modes: list[str] = []
        for s, e in windows:
            mode = self.mode(seg)
            modes.append(mode)
            events.append(self.event(s, EventKind.ACTIVATION_START, mode))
            events.append(self.event(e, EventKind.ACTIVATION_STOP, mode, attrs={"duration_s": round((e - s) / US, 3)}))
        return events, modes

    def fault_windows(self, seg: Segment, *, per_hour: float, median_s: float) -> list[Window]:
        """Stretches in which a failure cause acts (``per_hour`` of the segment, scaled by ``fault_rate``)."""
        return bursts(self.rng, seg.start_us, seg.end_us, per_min=per_hour * self.fault_rate / 60, median_s=median_s)

    def limit_alarm(
        self,
        ts: np.ndarray,
        reading: np.ndarray,
        *,
        code: str,
        severity: Severity,
        text: str,
        clear_at: float,
        over: float | None = None,
        under: float | None = None,
    ) -> list[DeviceEvent]:
        """An alarm read off a reported metric: raised at the first sample past the limit (``over`` or
        ``under``), cleared at the first sample back past ``clear_at`` (hysteresis: noise at the limit does not
        make it chatter). Both are stamped with the sample that shows it; an alarm still raised at the end of a
        segment carries over. A sample not measured (NaN) counts as back in range."""
        if (over is None) == (under is None):
            raise ValueError("give exactly one of over / under")
        high = over is not None
        limit = float(over if high else under)  # type: ignore[arg-type]
        raised = code in self._alarmed
        with np.errstate(invalid="ignore"):
            past = reading > limit if high else reading < limit
        if not raised and not past.any():
            return []
        events: list[DeviceEvent] = []
        for t, v, beyond in zip(ts.tolist(), reading.tolist(), past.tolist(), strict=True):
            if not raised and beyond:
                raised = True
                events.append(self.event(t, EventKind.ALARM_RAISED, code, severity=severity, text=text))
            elif raised and (math.isnan(v) or (v < clear_at if high else v > clear_at)):
                raised = False
                events.append(self.event(t, EventKind.ALARM_CLEARED, code))
        if raised:
            self._alarmed.add(code)
        else:
            self._alarmed.discard(code)
        return events

    def _merge(self, chunk: Chunk, end_us: int) -> Iterator[Sample | DeviceEvent]:
        names = list(chunk.values)
        columns = [chunk.values[n].tolist() for n in names]
        # An event a family schedules after its segment (an alarm cleared later) is pulled back to the
        # segment's end, so that every device's lines stay in time order across segments.
        events = sorted(
            (ev if ev.ts_us <= end_us else ev.model_copy(update={"ts_us": end_us}) for ev in chunk.events),
            key=lambda ev: ev.ts_us,
        )
        k = 0
        for i, ts in enumerate(chunk.ts_us.tolist()):
            while k < len(events) and events[k].ts_us <= ts:
                yield events[k]
                k += 1
            values = {n: (None if math.isnan(c[i]) else round(c[i], 3)) for n, c in zip(names, columns, strict=True)}
            yield Sample(device_id=self.device_id, ts_us=ts, values=values)
        yield from events[k:]
