"""Device state derivation: precedence, the 3-heartbeat silence rule, room summaries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.rows import DeviceFacts, RoomDevice
from dashboard.status import DeviceState, derive_state, device_label, humanize_age, summarise_rooms, worst

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
HEALTHY = DeviceFacts(gateway_state="online", connected=True, last_seen=NOW - timedelta(seconds=5),
                      last_sample_at=NOW - timedelta(seconds=1), heartbeat_s=10.0, open_alarms=0)


@pytest.mark.parametrize(("change", "expected"), [
    ({}, DeviceState.ONLINE),
    ({"open_alarms": 2}, DeviceState.ALARMING),
    ({"connected": False}, DeviceState.OFFLINE),
    ({"connected": False, "open_alarms": 1}, DeviceState.OFFLINE),
    ({"gateway_state": "offline"}, DeviceState.UNKNOWN),
    ({"gateway_state": "unknown", "connected": False, "open_alarms": 1}, DeviceState.UNKNOWN),
    ({"last_seen": NOW - timedelta(seconds=31), "last_sample_at": None}, DeviceState.SILENT),
    ({"last_seen": NOW - timedelta(seconds=31), "last_sample_at": None, "open_alarms": 1}, DeviceState.SILENT),
    ({"last_seen": None, "last_sample_at": None}, DeviceState.SILENT),
])
def test_precedence(change: dict[str, object], expected: DeviceState) -> None:
    assert derive_state(replace(HEALTHY, **change), now=NOW) is expected


def test_silence_is_three_heartbeats_of_the_newest_message() -> None:
    facts = replace(HEALTHY, heartbeat_s=2.0, last_seen=NOW - timedelta(seconds=60),
                    last_sample_at=NOW - timedelta(seconds=6))
    assert derive_state(facts, now=NOW) is DeviceState.ONLINE  # exactly 3 x 2 s: not yet silent
    assert derive_state(facts, now=NOW + timedelta(milliseconds=1)) is DeviceState.SILENT


def test_worst_state_wins_and_empty_is_none() -> None:
    assert worst([DeviceState.ONLINE, DeviceState.SILENT, DeviceState.ALARMING]) is DeviceState.ALARMING
    assert worst([DeviceState.ONLINE, DeviceState.OFFLINE]) is DeviceState.OFFLINE
    assert worst([]) is None


def test_rooms_group_devices_and_carry_the_running_case() -> None:
    devices = [
        RoomDevice("OR-1", "gw1", "esu-1", "esu", "VIO", HEALTHY, "C-1", "lap chole", "dissection", NOW),
        RoomDevice("OR-1", "gw1", "ins-1", "insufflator", "E50", replace(HEALTHY, open_alarms=1), "C-1",
                   "lap chole", "dissection", NOW),
        RoomDevice("OR-2", "gw2", "esu-2", "esu", "FT10", replace(HEALTHY, gateway_state="offline")),
    ]
    rooms = summarise_rooms(devices, now=NOW)
    assert [r.room for r in rooms] == ["OR-1", "OR-2"]
    assert rooms[0].state is DeviceState.ALARMING and rooms[0].phase == "dissection"
    assert rooms[0].count(DeviceState.ONLINE) == 1 and rooms[0].count(DeviceState.ALARMING) == 1
    assert rooms[1].state is DeviceState.UNKNOWN and rooms[1].case_id is None
    assert rooms[0].devices[0].last_heard_s == pytest.approx(1.0)


@pytest.mark.parametrize(("seconds", "text"), [(None, "never"), (3.7, "3 s"), (300, "5 min"), (7300, "2 h"),
                                               (3 * 86400, "3 d")])
def test_humanize_age(seconds: float | None, text: str) -> None:
    assert humanize_age(seconds) == text


@pytest.mark.parametrize(("raw", "label"), [("esu", "ESU"), ("anesthesia_ws", "Anesthesia WS"),
                                            ("light_source", "Light source"), ("", "")])
def test_device_label(raw: str, label: str) -> None:
    assert device_label(raw) == label
