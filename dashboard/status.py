"""Device state, derived (never stored): one pure function of what the database knows and the clock.

Precedence, most informative first: a gateway that is down says nothing about its devices ("unknown");
a device the gateway reports disconnected is "offline"; one that sent nothing for more than three heartbeats
is "silent"; an open alarm makes it "alarming"; otherwise it is "online".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from dashboard.rows import DeviceFacts, RoomDevice

__all__ = [
    "SILENT_AFTER_HEARTBEATS", "DeviceState", "DeviceTile", "RoomSummary", "derive_state", "device_label",
    "humanize_age",
    "summarise_rooms", "worst",
]

SILENT_AFTER_HEARTBEATS = 3


class DeviceState(StrEnum):
    ONLINE = "online"
    ALARMING = "alarming"
    SILENT = "silent"
    OFFLINE = "offline"
    UNKNOWN = "unknown (gateway down)"

    @property
    def color(self) -> str:
        """Bootstrap contextual colour of the state (badges, tile borders)."""
        return _COLORS[self]

    @property
    def label(self) -> str:
        return "unknown" if self is DeviceState.UNKNOWN else self.value


_COLORS = {
    DeviceState.ONLINE: "success",
    DeviceState.ALARMING: "danger",
    DeviceState.SILENT: "warning",
    DeviceState.OFFLINE: "secondary",
    DeviceState.UNKNOWN: "dark",
}
# Which state a room tile shows when its devices disagree: the one that needs attention first.
_URGENCY = [DeviceState.ALARMING, DeviceState.UNKNOWN, DeviceState.SILENT, DeviceState.OFFLINE,
            DeviceState.ONLINE]


def derive_state(facts: DeviceFacts, *, now: datetime) -> DeviceState:
    if facts.gateway_state != "online":
        return DeviceState.UNKNOWN
    if not facts.connected:
        return DeviceState.OFFLINE
    newest = max((t for t in (facts.last_seen, facts.last_sample_at) if t is not None), default=None)
    if newest is None or now - newest > timedelta(seconds=SILENT_AFTER_HEARTBEATS * facts.heartbeat_s):
        return DeviceState.SILENT
    if facts.open_alarms > 0:
        return DeviceState.ALARMING
    return DeviceState.ONLINE


def worst(states: list[DeviceState]) -> DeviceState | None:
    """The most urgent of ``states`` (None for an empty room)."""
    return min(states, key=_URGENCY.index, default=None)


@dataclass(frozen=True)
class DeviceTile:
    device_id: str
    device_type: str
    model: str
    state: DeviceState
    open_alarms: int
    last_heard_s: float | None  # seconds since the newest message or sample
    alarm: str | None = None


@dataclass(frozen=True)
class RoomSummary:
    room: str
    state: DeviceState | None
    devices: tuple[DeviceTile, ...]
    case_id: str | None
    procedure_type: str | None
    phase: str | None
    case_started_at: datetime | None

    def count(self, state: DeviceState) -> int:
        return sum(d.state is state for d in self.devices)


def summarise_rooms(devices: list[RoomDevice], *, now: datetime) -> list[RoomSummary]:
    """Group devices by room (in the given order) and derive every state at ``now``."""
    rooms: dict[str, list[RoomDevice]] = {}
    for d in devices:
        rooms.setdefault(d.room, []).append(d)
    out = []
    for room, members in rooms.items():
        tiles = tuple(_tile(d, now) for d in members)
        first = next((d for d in members if d.case_id), None)
        out.append(RoomSummary(
            room, worst([t.state for t in tiles]), tiles, first.case_id if first else None,
            first.procedure_type if first else None, first.phase if first else None,
            first.case_started_at if first else None,
        ))
    return out


def _tile(d: RoomDevice, now: datetime) -> DeviceTile:
    newest = max((t for t in (d.facts.last_seen, d.facts.last_sample_at) if t is not None), default=None)
    heard = None if newest is None else max(0.0, (now - newest).total_seconds())
    return DeviceTile(d.device_id, d.device_type, d.model, derive_state(d.facts, now=now), d.facts.open_alarms,
                      heard, d.alarm)


_ACRONYMS = {"esu", "ws", "ecg", "iv", "co2", "ups", "hf"}


def device_label(device_type: str) -> str:
    """'esu' -> 'ESU', 'anesthesia_ws' -> 'Anesthesia WS', 'light_source' -> 'Light source'."""
    words = device_type.replace("-", "_").split("_")
    out = [w.upper() if w.lower() in _ACRONYMS else w.lower() for w in words if w]
    return " ".join(out)[:1].upper() + " ".join(out)[1:] if out else device_type


def humanize_age(seconds: float | None) -> str:
    """'3 s', '4 min', '2 h', '5 d' — how long ago, for tiles and tables."""
    if seconds is None:
        return "never"
    for limit, unit, div in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{int(seconds // div)} {unit}"
    return f"{int(seconds // 86400)} d"
