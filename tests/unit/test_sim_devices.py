"""Every device model: golden round trips through the wire codec and the shape of its signals."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

import wire
from edge_agent.units import conversion_for
from simulators.devices import FAMILIES, Segment, make_device
from simulators.devices.anaesthesia import O2_CLEAR_BAR, O2_LOW_BAR
from simulators.devices.base import US
from simulators.devices.camera import LAMP_CLEAR_CEL, LAMP_OVERTEMP_CEL
from simulators.devices.esu import REM_CLEAR_OHM, REM_LIMIT_OHM
from simulators.devices.insufflator import CLEAR_MMHG, OVERPRESSURE_MMHG
from simulators.devices.robot import COLLISION_CLEAR_NM, COLLISION_LIMIT_NM
from simulators.devices.stapler import EXCESSIVE_FORCE_N, FORCE_CLEAR_N
from simulators.devices.suction_irrigation import FULL_ML
from simulators.devices.ultrasonic import BLADE_CLEAR_CEL, BLADE_LIMIT_CEL
from simulators.devices.warming import CUTOUT_CEL, RESET_CEL
from simulators.gateway import VirtualGateway
from wire.device import DeviceEvent, Hello, Sample, encode_line, parse_line

T0 = 1_763_884_800_000_000
UNIT_SUFFIX = {"W": "_w", "Ohm": "_ohm", "N": "_n", "%": "_pct", "mm[Hg]": "_mmhg", "L/min": "_l_min",
               "mL": "_ml", "Cel": "_cel", "Hz": "_hz", "h": "_h", "N.m": "_nm", "kHz": "_khz", "klx": "_klx",
               "s": "_s", "bar": "_bar", "mm": "_mm"}


def run(family: str, *, seed: int = 3, active_s: int = 900, activity: float = 1.0, params: dict | None = None,
        fault_rate: float = 1.0):
    dev = make_device(family, device_id=f"{family.replace('_', '-')}-or1", rng=np.random.default_rng(seed),
                      fault_rate=fault_rate)
    segs = [
        Segment(T0, T0 + 120 * US, 0.0),
        Segment(T0 + 120 * US, T0 + (120 + active_s) * US, activity, phase="work", params=params or {}),
        Segment(T0 + (120 + active_s) * US, T0 + (240 + active_s) * US, 0.0),
    ]
    return dev, [dev.hello(), *dev.lines(segs), dev.bye(T0 + (240 + active_s) * US)]


def windows(lines, code: str | None = None) -> list[tuple[int, int]]:
    out, open_at = [], None
    for ln in lines:
        if isinstance(ln, DeviceEvent) and (code is None or ln.code == code):
            if ln.kind == "activation_start":
                open_at = ln.ts_us
            elif ln.kind == "activation_stop" and open_at is not None:
                out.append((open_at, ln.ts_us))
                open_at = None
    return out


def within(ts: int, wins: list[tuple[int, int]]) -> bool:
    return any(a <= ts < b for a, b in wins)


def samples(lines) -> list[Sample]:
    return [ln for ln in lines if isinstance(ln, Sample)]


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lines_round_trip_the_device_codec(family: str) -> None:
    _, lines = run(family)
    for line in lines:
        assert parse_line(encode_line(line)) == line
    assert {ln.type for ln in lines} >= {"hello", "sample", "bye"}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_batches_round_trip_the_wire_codec(family: str) -> None:
    _, lines = run(family, active_s=300)
    gw = VirtualGateway(gateway_id="gw-or1", room="OR-1", key=b"k" * 32)
    records = [r for ln in lines for r in gw.feed(getattr(ln, "ts_us", T0), ln)] + gw.close(T0 + 10**9)
    kinds = set()
    for rec in records:
        topic, msg = wire.decode(rec.topic, rec.payload)
        kinds.add(topic.kind)
        assert wire.decode(rec.topic, wire.encode(msg))[1] == msg
    assert {wire.Kind.STATE, wire.Kind.BIRTH, wire.Kind.TELEMETRY, wire.Kind.STATUS} <= kinds


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_metrics_are_ucum_with_the_unit_in_the_name(family: str) -> None:
    hello: Hello = FAMILIES[family](device_id="x-1", rng=np.random.default_rng(0)).hello()
    assert hello.metrics
    for m in hello.metrics:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", m.name)
        assert m.unit in UNIT_SUFFIX, m  # UCUM codes
        assert m.name.endswith(UNIT_SUFFIX[m.unit]), m
        assert m.description
        # the edge agent converts to one canonical unit per quantity but keeps metric names: a device that
        # already speaks the canonical unit keeps its name true after conversion
        assert conversion_for(m.unit).unit == m.unit, m


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_lines_are_time_ordered_and_seeded(family: str) -> None:
    _, a = run(family, seed=11)
    _, b = run(family, seed=11)
    _, c = run(family, seed=12)
    ts = [ln.ts_us for ln in a if hasattr(ln, "ts_us")]
    assert ts == sorted(ts)
    assert a == b
    assert a != c


def test_esu_delivers_power_only_during_activations() -> None:
    _, lines = run("esu")
    wins = windows(lines)
    assert len(wins) > 20
    modes = {ln.code for ln in lines if isinstance(ln, DeviceEvent) and ln.kind == "activation_start"}
    assert modes <= {"cut", "coag"}
    on = off = 0
    for s in samples(lines):
        if within(s.ts_us, wins):
            on += 1
            assert s.values["impedance_ohm"] is not None and s.values["power_w"] > 0
        else:
            off += 1
            assert s.values["power_w"] == 0.0 and s.values["impedance_ohm"] is None
    assert on > 50 and off > 500
    idle = [s for s in samples(lines) if s.ts_us < T0 + 120 * US]
    assert all(s.values["power_w"] == 0.0 for s in idle)


def test_insufflator_pressure_tracks_its_set_point() -> None:
    _, lines = run("insufflator", params={"pressure_mmhg": 14})
    active = [s for s in samples(lines) if T0 + 180 * US <= s.ts_us < T0 + 1000 * US]
    err = np.array([s.values["pressure_mmhg"] - s.values["pressure_set_mmhg"] for s in active])
    assert all(s.values["pressure_set_mmhg"] == 14 for s in active)
    assert abs(np.median(err)) < 0.5
    assert np.mean(np.abs(err)) < 1.5
    after = [s for s in samples(lines) if s.ts_us > T0 + 1080 * US]
    assert max(s.values["pressure_mmhg"] for s in after) < 2.0 and all(s.values["flow_l_min"] == 0 for s in after)
    volume = [s.values["volume_ml"] for s in samples(lines)]
    assert volume == sorted(volume) and volume[-1] > 10_000


def test_stapler_force_only_during_firing() -> None:
    _, lines = run("stapler", active_s=1200)
    fires = windows(lines, "fire")
    assert fires
    for s in samples(lines):
        if s.values["firing_force_n"] is not None:
            assert within(s.ts_us, fires)
        if not within(s.ts_us, fires):
            assert s.values["firing_force_n"] is None
    assert all(s.values["battery_pct"] is not None for s in samples(lines))
    loads = [ln for ln in lines if isinstance(ln, DeviceEvent) and ln.code == "cartridge_loaded"]
    assert len(loads) == len(fires) and all("cartridge" in ev.attrs for ev in loads)


@pytest.mark.parametrize(("family", "metric", "code"), [
    ("ultrasonic", "power_w", None), ("vessel_sealer", "power_w", "seal"), ("smoke_evacuator", "flow_l_min", None),
])
def test_energy_and_flow_only_inside_activations(family: str, metric: str, code: str | None) -> None:
    _, lines = run(family)
    wins = windows(lines, code)
    assert wins
    assert all(s.values[metric] == 0 for s in samples(lines) if not within(s.ts_us, wins))
    assert any(s.values[metric] > 0 for s in samples(lines) if within(s.ts_us, wins))


def test_tourniquet_holds_pressure_while_inflated_and_warns_on_time() -> None:
    _, lines = run("tourniquet", active_s=100 * 60)
    inflated = windows(lines, "inflate")
    assert len(inflated) == 1
    settled = [s for s in samples(lines) if inflated[0][0] + 30 * US <= s.ts_us < inflated[0][1]]
    assert all(abs(s.values["cuff_pressure_mmhg"] - 250) < 10 for s in settled)
    alarms = [ln for ln in lines if isinstance(ln, DeviceEvent) and ln.code == "inflation_time"]
    assert [a.kind for a in alarms] == ["alarm_raised", "alarm_cleared"]
    assert alarms[0].ts_us - inflated[0][0] == pytest.approx(90 * 60 * US, abs=2 * US)


def test_robot_attaches_instruments_and_uses_pedals() -> None:
    _, lines = run("surgical_robot")
    codes = [ln.code for ln in lines if isinstance(ln, DeviceEvent)]
    assert codes.count("instrument_attached") == 4
    assert "clutch" in codes and "head_in" in codes and "head_out" in codes
    assert {c for c in codes if c in ("monopolar", "bipolar")}


def test_anaesthesia_workstation_reports_no_patient_data() -> None:
    _, lines = run("anaesthesia_workstation")
    names = {m.name for m in lines[0].metrics}
    patient = ("spo2", "etco2", "heart", "hr_", "bp_", "pulse", "resp", "patient", "temp")
    assert not [n for n in names if any(p in n for p in patient)]
    assert {"fresh_gas_flow_l_min", "o2_pipeline_bar"} <= names


def test_light_source_lamp_hours_accumulate_only_when_on() -> None:
    _, lines = run("light_source", active_s=3600)
    hours = [s.values["lamp_hours_h"] for s in samples(lines)]
    assert hours == sorted(hours)
    assert hours[-1] - hours[0] == pytest.approx(1.0, abs=0.01)


def test_suction_and_irrigation_act_only_inside_their_own_activations() -> None:
    _, lines = run("suction_irrigation")
    sucking, irrigating = windows(lines, "suction"), windows(lines, "irrigation")
    assert len(sucking) > 5 and len(irrigating) > 5
    ss = samples(lines)
    prev_canister = prev_irrigated = 0.0
    for s in ss:
        v = s.values
        # vacuum only while the suction valve is open; saline flows only while irrigating
        assert (v["vacuum_mmhg"] > 150) == within(s.ts_us, sucking), s
        assert v["vacuum_mmhg"] < 10 or within(s.ts_us, sucking), s
        assert (v["irrigation_flow_l_min"] > 0.5) == within(s.ts_us, irrigating), s
        assert v["irrigation_flow_l_min"] == 0 or within(s.ts_us, irrigating), s
        # the canister fills only with what is suctioned, the saline counter only with what is irrigated
        assert v["canister_ml"] >= prev_canister and v["irrigation_volume_ml"] >= prev_irrigated
        if v["canister_ml"] > prev_canister:
            assert within(s.ts_us, sucking), s
        if v["irrigation_volume_ml"] > prev_irrigated:
            assert within(s.ts_us, irrigating), s
        prev_canister, prev_irrigated = v["canister_ml"], v["irrigation_volume_ml"]
    assert 0 < ss[-1].values["canister_ml"] <= 3000 and ss[-1].values["irrigation_volume_ml"] > 100


def test_patient_warmer_outlet_tracks_its_set_point() -> None:
    _, lines = run("patient_warming", params={"setpoint_cel": 43.0})
    ss = samples(lines)
    on_at, off_at = T0 + 120 * US, T0 + 1020 * US
    assert all(s.values["setpoint_cel"] == 43.0 for s in ss)
    assert all(s.values["outlet_temp_cel"] <= 43.0 + 1.0 for s in ss), "never overshoots: that is a cut-out"
    idle = [s.values["outlet_temp_cel"] for s in ss if s.ts_us < on_at]
    assert all(abs(t - 22) < 1 for t in idle) and all(s.values["blower_pct"] == 0 for s in ss if s.ts_us < on_at)
    # warm-up: a first-order approach to the set point, within 1 degree in under 6 min, then held there
    warm = [s for s in ss if on_at <= s.ts_us < off_at]
    reached = next(s.ts_us for s in warm if s.values["outlet_temp_cel"] > 42.0)
    assert reached - on_at < 360 * US
    held = np.array([s.values["outlet_temp_cel"] for s in warm if s.ts_us >= on_at + 450 * US])
    assert abs(np.median(held) - 43.0) < 0.3 and np.max(np.abs(held - 43.0)) < 1.0
    assert all(s.values["blower_pct"] > 0 for s in warm)
    after = [s for s in ss if s.ts_us >= off_at]
    assert all(s.values["blower_pct"] == 0 for s in after)
    assert after[-1].values["outlet_temp_cel"] < 43.0 - 10, "cools towards room air once switched off"


def test_or_light_follows_the_phase_demand() -> None:
    _, lines = run("or_light", activity=0.7)
    ss = samples(lines)
    on_at, off_at = T0 + 120 * US, T0 + 1020 * US
    for s in ss:
        lit = on_at <= s.ts_us < off_at
        if lit:
            assert s.values["illuminance_klx"] == pytest.approx(112, abs=3) and s.values["field_diameter_mm"]
        else:
            assert s.values["illuminance_klx"] == 0 and s.values["field_diameter_mm"] is None
        assert 0 <= s.values["illuminance_klx"] <= 160  # IEC 60601-2-41 caps central illuminance at 160 klx
    levels = [(ev.ts_us, ev.attrs["illuminance_klx"]) for ev in lines if isinstance(ev, DeviceEvent)
              and ev.code == "light_level"]
    assert levels == [(T0, 0.0), (on_at, 112.0), (off_at, 0.0)], "one event per change of level"


def test_camera_head_warms_with_use_and_records_while_in_use() -> None:
    _, lines = run("camera")
    ss = samples(lines)
    on_at, off_at = T0 + 120 * US, T0 + 1020 * US
    assert windows(lines, "record") == [(on_at + US, off_at)]
    assert all((s.values["frame_rate_hz"] > 0) == (on_at <= s.ts_us < off_at) for s in ss)
    temp = {s.ts_us: s.values["head_temp_cel"] for s in ss}
    assert all(15 <= t <= 60 for t in temp.values())
    in_use = [t for ts, t in temp.items() if on_at <= ts < off_at]
    assert in_use[-1] > in_use[0] + 6, "the head warms over a quarter of an hour of use"
    assert 34 < in_use[-1] < 39
    assert [t for ts, t in temp.items() if ts >= off_at][-1] < in_use[-1], "and cools when put down"


def test_anaesthesia_workstation_runs_high_flow_at_induction_then_low_flow() -> None:
    dev = make_device("anaesthesia_workstation", device_id="anaesthesia-or1", rng=np.random.default_rng(5))
    induction, maintenance, end = T0 + 120 * US, T0 + 720 * US, T0 + 2520 * US
    segs = [Segment(T0, induction, 0.0), Segment(induction, maintenance, 1.0, phase="induction"),
            Segment(maintenance, end, 0.3, phase="maintenance"), Segment(end, end + 120 * US, 0.0)]
    lines = list(dev.lines(segs))
    ss = samples(lines)

    def flows(a: int, b: int) -> np.ndarray:
        return np.array([s.values["fresh_gas_flow_l_min"] for s in ss if a <= s.ts_us < b])

    assert np.median(flows(induction, maintenance)) > 5.0  # high flow to fill the circuit with agent
    assert 0.5 < np.median(flows(maintenance, end)) < 1.5  # low-flow maintenance
    assert np.max(flows(T0, induction)) < 0.3 and np.max(flows(end, end + 120 * US)) < 0.3
    ventilating = [(ev.ts_us, ev.code) for ev in lines if isinstance(ev, DeviceEvent) and ev.code
                   and ev.code.startswith("ventilation")]
    assert ventilating == [(induction, "ventilation_start"), (end, "ventilation_stop")]
    for s in ss:
        on = induction <= s.ts_us < end
        assert (s.values["vaporizer_pct"] > 0) == on, "agent is dialled only while the patient is ventilated"
        assert 3.5 < s.values["o2_pipeline_bar"] < 4.7  # normal pipeline supply (about 4 bar gauge)
    absorbent = [s.values["absorbent_used_pct"] for s in ss]
    assert absorbent == sorted(absorbent) and absorbent[-1] <= 100
    assert absorbent[-1] - absorbent[0] == pytest.approx(6.0 * 40 / 60, abs=0.1)  # 6 %/h over 40 min


def test_robot_torques_are_bounded_and_rise_only_with_instruments_and_a_surgeon() -> None:
    dev, lines = run("surgical_robot", active_s=600)
    bounds = {m.name: (m.low, m.high) for m in dev.hello().metrics}
    on_at, off_at = T0 + 120 * US, T0 + 720 * US
    attached = next(ev.ts_us for ev in lines if isinstance(ev, DeviceEvent) and ev.code == "instrument_attached")
    assert on_at <= attached <= on_at + 1
    clutched = [(ev.ts_us, ev.ts_us + round(ev.attrs["duration_s"] * US)) for ev in lines
                if isinstance(ev, DeviceEvent) and ev.code == "clutch"]
    assert clutched

    def near_clutch_edge(ts: int) -> bool:  # clutch durations are reported to 10 ms
        return any(abs(ts - a) < 20_000 or abs(ts - b) < 20_000 for a, b in clutched)

    manipulation = 0
    for s in samples(lines):
        for arm in (1, 2, 3, 4):
            name = f"arm{arm}_torque_nm"
            low, high = bounds[name]
            torque = s.values[name]
            assert low <= torque <= high
            if s.ts_us < on_at:
                assert torque <= 1.0, "bare arms hold only their own weight"
            elif s.ts_us >= off_at:
                assert torque <= 2.0, "instruments stay on but nobody operates them"
            elif not near_clutch_edge(s.ts_us):
                if within(s.ts_us, clutched):
                    assert torque < 1.0, "the clutch frees the arm"
                else:
                    assert torque >= (6.0 if arm == 3 else 10.0), "manipulating tissue (arm 3: the endoscope)"
                    manipulation += 1
    assert manipulation > 4 * 1000


def test_segments_split_anywhere_give_the_same_sample_grid() -> None:
    dev = make_device("camera", device_id="cam-or1", rng=np.random.default_rng(0))
    one = [s.ts_us for s in dev.lines([Segment(T0, T0 + 100 * US, 0.0)]) if isinstance(s, Sample)]
    dev = make_device("camera", device_id="cam-or1", rng=np.random.default_rng(0))
    two = [s.ts_us for s in dev.lines([Segment(T0, T0 + 33 * US + 7, 0.0), Segment(T0 + 33 * US + 7, T0 + 100 * US)])
           if isinstance(s, Sample)]
    assert one == two and len(one) == 50


# ------------------------------------------------------------------ alarms are read off the readings
# A clinical engineer watching the dashboard sees the metric go past its limit as the alarm comes and back before
# it goes. ``fault_rate`` makes the (normally rare) causes frequent enough to test.


def _torque(v: dict) -> float:
    return max(v[f"arm{a}_torque_nm"] for a in (1, 2, 3, 4))


def _over_set(v: dict) -> float:
    return v["pressure_mmhg"] - v["pressure_set_mmhg"]


def _firing(v: dict) -> float:
    return v["firing_force_n"] or 0.0  # not measured between firings


def alarm_spans(lines, code: str) -> list[tuple[DeviceEvent, DeviceEvent]]:
    """(raised, cleared) pairs of one alarm code; it alternates, and a last one may still be raised at the end."""
    edges = [ev for ev in lines if isinstance(ev, DeviceEvent) and ev.code == code]
    assert [ev.kind for ev in edges] == ["alarm_raised", "alarm_cleared"] * (len(edges) // 2) + \
        ["alarm_raised"] * (len(edges) % 2)
    return list(zip(edges[::2], edges[1::2], strict=False))


ALARM_CAUSES = {
    # code: (family, reading, raised when, cleared when, run kwargs)
    "overtemp_cutout": ("patient_warming", "outlet_temp_cel", lambda x: x > CUTOUT_CEL, lambda x: x < RESET_CEL,
                        {"fault_rate": 200, "active_s": 1800}),
    "o2_supply_low": ("anaesthesia_workstation", "o2_pipeline_bar", lambda x: x < O2_LOW_BAR,
                      lambda x: x > O2_CLEAR_BAR, {"fault_rate": 200, "active_s": 1800}),
    "lamp_overtemp": ("light_source", "lamp_temp_cel", lambda x: x > LAMP_OVERTEMP_CEL, lambda x: x < LAMP_CLEAR_CEL,
                      {"fault_rate": 50, "active_s": 1800}),
    "overpressure": ("insufflator", _over_set, lambda x: x > OVERPRESSURE_MMHG, lambda x: x < CLEAR_MMHG,
                     {"fault_rate": 20}),
    "rem_contact": ("esu", "rem_impedance_ohm", lambda x: x > REM_LIMIT_OHM, lambda x: x < REM_CLEAR_OHM,
                    {"fault_rate": 20}),
    "arm_collision": ("surgical_robot", _torque, lambda x: x > COLLISION_LIMIT_NM, lambda x: x < COLLISION_CLEAR_NM,
                      {"fault_rate": 40}),
    "blade_overtemp": ("ultrasonic", "blade_temp_cel", lambda x: x > BLADE_LIMIT_CEL, lambda x: x < BLADE_CLEAR_CEL,
                       {"fault_rate": 80, "active_s": 1800}),
    "excessive_force": ("stapler", _firing, lambda x: x > EXCESSIVE_FORCE_N, lambda x: x < FORCE_CLEAR_N,
                        {"seed": 8, "active_s": 7200}),
}


@pytest.mark.parametrize("code", sorted(ALARM_CAUSES))
def test_alarms_come_and_go_with_the_reading_that_causes_them(code: str) -> None:
    family, reading, past_limit, back, kw = ALARM_CAUSES[code]
    _, lines = run(family, **kw)
    ss = samples(lines)
    at = np.array([s.ts_us for s in ss])

    def value(i: int) -> float:
        return reading(ss[i].values) if callable(reading) else ss[i].values[reading]

    spans = alarm_spans(lines, code)
    assert spans, "the cause occurred and passed"
    for raised, cleared in spans:
        i, j = (int(np.searchsorted(at, ev.ts_us)) for ev in (raised, cleared))
        assert 0 < i < j < len(ss)
        shown = [value(k) for k in range(i, j + 1)]
        # old models drew these alarms at random times: the reading at the alarm was normal
        assert at[i] == raised.ts_us and past_limit(shown[0]) and not past_limit(value(i - 1)), (code, shown[:3])
        assert not any(back(x) for x in shown[:-1]) and back(shown[-1]), (code, shown)


def test_warmer_cut_out_stops_heater_and_blower_and_the_outlet_cools() -> None:
    _, lines = run("patient_warming", fault_rate=200, active_s=1800)
    ss = samples(lines)
    spans = alarm_spans(lines, "overtemp_cutout")
    assert spans
    for raised, cleared in spans:
        during = [s.values for s in ss if raised.ts_us <= s.ts_us <= cleared.ts_us]
        assert during[0]["outlet_temp_cel"] > CUTOUT_CEL and all(v["blower_pct"] == 0 for v in during)
        assert during[-1]["outlet_temp_cel"] < RESET_CEL < during[0]["outlet_temp_cel"] - 5


def test_canister_reads_full_for_as_long_as_canister_full_is_raised() -> None:
    _, lines = run("suction_irrigation", active_s=3 * 3600)
    ss = samples(lines)
    spans = alarm_spans(lines, "canister_full")
    assert spans
    for raised, cleared in spans:
        held = [s.values["canister_ml"] for s in ss if raised.ts_us <= s.ts_us < cleared.ts_us]
        # the old model emptied the canister at the instant it raised the alarm, and kept the alarm for a minute
        assert held and min(held) >= FULL_ML and len(set(held)) == 1, held[:3]
        after = next(s.values["canister_ml"] for s in ss if s.ts_us >= cleared.ts_us)
        assert after < 50, "a fresh canister once the alarm clears"


def test_vessel_sealer_check_jaws_only_for_cycles_whose_impedance_never_rose() -> None:
    _, lines = run("vessel_sealer", fault_rate=5)
    ss = samples(lines)
    at = np.array([s.ts_us for s in ss])
    ends = [ev for ev in lines if isinstance(ev, DeviceEvent) and ev.code in ("check_jaws", "seal_complete")
            and ev.kind != "alarm_cleared"]
    final = {ev.code: [] for ev in ends}
    for ev in ends:
        final[ev.code].append(ss[int(np.searchsorted(at, ev.ts_us)) - 1].values["impedance_ohm"])
    # the old model aborted cycles whose impedance had risen to the seal end point like any other
    assert final["check_jaws"] and max(final["check_jaws"]) < 100, final["check_jaws"]
    assert min(final["seal_complete"]) > 250
    assert len(final["check_jaws"]) >= 3 and len(final["seal_complete"]) >= 20


def test_stapler_reports_the_peak_its_samples_show() -> None:
    _, lines = run("stapler", seed=8, active_s=7200)
    ss = samples(lines)
    alarms = [ev.ts_us for ev in lines if isinstance(ev, DeviceEvent) and ev.kind == "alarm_raised"]
    stops = {ev.ts_us: ev for ev in lines if isinstance(ev, DeviceEvent) and ev.kind == "activation_stop"}
    fires = windows(lines, "fire")
    for s, e in fires:
        force = [x.values["firing_force_n"] for x in ss if s <= x.ts_us < e]
        peak = stops[e].attrs["peak_force_n"]
        assert peak == pytest.approx(max(force), abs=0.06)  # reported to 0.1 N, sampled to 1 mN
        assert (peak > EXCESSIVE_FORCE_N) == any(s <= a < e for a in alarms), (peak, s)
    assert len(fires) > 50 and len(alarms) >= 2


GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "sim_device_lines.ndjson"


def _golden_lines() -> list[bytes]:
    out = []
    for family in sorted(FAMILIES):
        dev = make_device(family, device_id=f"{family.replace('_', '-')}-or1", rng=np.random.default_rng(0))
        segs = [Segment(T0, T0 + 20 * US, 0.0), Segment(T0 + 20 * US, T0 + 80 * US, 1.0, phase="work")]
        lines = [dev.hello(), *dev.lines(segs), dev.bye(T0 + 80 * US)]
        events = [ln for ln in lines if isinstance(ln, DeviceEvent)][:6]
        out += [encode_line(ln) for ln in (*lines[:4], *events, lines[-1])]
    return out


def test_golden_device_lines() -> None:
    """A fixed seed gives exactly these lines (regenerate with ORTEL_UPDATE_GOLDEN=1 after a deliberate change)."""
    lines = _golden_lines()
    if os.environ.get("ORTEL_UPDATE_GOLDEN"):
        GOLDEN.write_bytes(b"".join(lines))
    assert GOLDEN.read_bytes().splitlines(keepends=True) == lines
    for raw in lines:
        assert encode_line(parse_line(raw)) == raw


def test_esu_delivers_no_power_while_the_return_electrode_alarm_is_raised() -> None:
    """A real generator inhibits output on a REM alarm: pedal presses then are requests at 0 W."""
    _, lines = run("esu", fault_rate=20)
    ss = samples(lines)
    spans = alarm_spans(lines, "rem_contact")
    activations = windows(lines)
    during = [s for s in ss for raised, cleared in spans if raised.ts_us <= s.ts_us < cleared.ts_us]
    requested = [s for s in during if within(s.ts_us, activations)]
    assert requested, "some activations were requested during an alarm (raise fault_rate if not)"
    assert all(s.values["power_w"] == 0.0 and s.values["impedance_ohm"] is None for s in requested)
    delivered = [s for s in ss if within(s.ts_us, activations) and s not in during]
    assert delivered and sum(s.values["power_w"] > 0 for s in delivered) > 0.9 * len(delivered)
