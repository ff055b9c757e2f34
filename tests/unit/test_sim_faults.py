"""Every injectable fault does what it says, and only where it is aimed."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import wire
from ortel_cli.main import app
from simulators.devices.base import US
from simulators.errors import FaultSpecError
from simulators.faults import FaultSpec, device_faults, message_faults, parse_fault
from simulators.generate import plan_lines
from simulators.offline import offline_records
from simulators.plan import plan_timeline
from simulators.recording import read_recording
from simulators.scenario import load_scenario
from simulators.timeline import parse_timeline
from wire.device import Bye, DeviceEvent, Hello, Sample

T0 = 1_763_000_000_000_000
TIMELINE = "case_id,phase,start_s,end_s\nK1,tunnel,0,600\nK1,myotomy,650,1200\n"


def _plan():
    return plan_timeline(load_scenario("poem"), parse_timeline(TIMELINE), rooms=1, seed=4)


def _lines(*specs: str, device: str | None = None):
    plan = _plan()
    faults = device_faults([parse_fault(s) for s in specs])
    out = list(plan_lines(plan, origin_us=T0, faults=faults))
    start = plan.rooms[0].cases[0].start_us + T0
    return [t for t in out if device is None or getattr(t.line, "device_id", None) == device], start


def test_parse_fault_specs() -> None:
    assert parse_fault("drift:device=insufflator,metric=pressure_mmhg,amount=0.5,at_s=60") == FaultSpec(
        "drift", device="insufflator", metric="pressure_mmhg", amount=0.5, at_s=60.0)
    assert parse_fault("gateway_loss:room=2").room == 2
    for bad in ("meteor", "drift:device", "drift:at_s=soon", "drift:colour=red"):
        with pytest.raises(FaultSpecError):
            parse_fault(bad)


def test_disconnect_says_bye_goes_silent_and_comes_back() -> None:
    lines, start = _lines("disconnect:device=esu,at_s=100,duration_s=60", device="esu-or1")
    a, b = start + 100 * US, start + 160 * US
    types = [(t.at_us, type(t.line)) for t in lines]
    assert (a, Bye) in types
    assert not [t for t in lines if a < t.at_us < b and isinstance(t.line, Sample | DeviceEvent)]
    hellos = [t.at_us for t in lines if isinstance(t.line, Hello)]
    assert len(hellos) == 2 and b <= hellos[1] < b + US
    untouched, _ = _lines(device="camera-or1")
    faulted, _ = _lines("disconnect:device=esu,at_s=100,duration_s=60", device="camera-or1")
    assert untouched == faulted


def test_drift_and_stuck_values() -> None:
    clean, start = _lines(device="insufflator-or1")
    drift, _ = _lines("drift:device=insufflator,metric=pressure_mmhg,amount=1,at_s=100,duration_s=120",
                      device="insufflator-or1")
    stuck, _ = _lines("stuck:device=insufflator,metric=flow_l_min,at_s=100,duration_s=120",
                      device="insufflator-or1")
    pairs = [(c.line, d.line, s.line) for c, d, s in zip(clean, drift, stuck, strict=True)
             if isinstance(c.line, Sample)]
    late = [(c, d) for c, d, _ in pairs if c.ts_us >= start + 300 * US]
    assert all(d.values["pressure_mmhg"] - c.values["pressure_mmhg"] == pytest.approx(2.0, abs=0.01) for c, d in late)
    held = {s.values["flow_l_min"] for c, _, s in pairs if start + 100 * US <= c.ts_us < start + 220 * US}
    assert len(held) == 1
    assert len({c.values["flow_l_min"] for c, _, _ in pairs if start + 100 * US <= c.ts_us < start + 220 * US}) > 1


def test_clock_skew_and_jump_change_device_stamps_not_instants() -> None:
    skew, start = _lines("clock_skew:device=camera,amount=-30", device="camera-or1")
    assert all(t.line.ts_us == t.at_us - 30 * US for t in skew if hasattr(t.line, "ts_us"))
    jump, _ = _lines("clock_jump:device=camera,amount=3600,at_s=300", device="camera-or1")
    for t in jump:
        if hasattr(t.line, "ts_us"):
            assert t.line.ts_us - t.at_us == (3600 * US if t.at_us >= start + 300 * US else 0)


def test_alarm_burst() -> None:
    lines, start = _lines("alarm_burst:device=light,amount=15,at_s=200,duration_s=30", device="light-or1")
    burst = [t.line for t in lines if isinstance(t.line, DeviceEvent) and t.line.code == "chatter"]
    assert Counter(e.kind for e in burst) == {"alarm_raised": 15, "alarm_cleared": 15}
    assert all(start + 200 * US <= e.ts_us <= start + 230 * US for e in burst)
    at = [t.at_us for t in lines]
    assert at == sorted(at)


def test_gateway_loss_holds_records_and_replays_them() -> None:
    plan = _plan()
    spec = parse_fault("gateway_loss:at_s=300,duration_s=120")
    start = plan.rooms[0].cases[0].start_us + T0
    states, replayed, during = [], 0, 0
    for rec in offline_records(plan, origin_us=T0, specs=[spec]):
        topic, msg = wire.decode(rec.topic, rec.payload)
        if topic.kind is wire.Kind.STATE:
            states.append((msg.state, rec.t_us))
        if getattr(msg, "replay", False):
            replayed += 1
            assert rec.t_us == start + 420 * US
        elif start + 300 * US < rec.t_us < start + 420 * US:
            during += 1
    assert states[:3] == [("online", states[0][1]), ("offline", start + 300 * US), ("online", start + 420 * US)]
    assert replayed > 100 and during == 0


def test_message_faults_duplicate_reorder_and_corrupt() -> None:
    plan = _plan()
    clean = list(offline_records(plan, origin_us=T0))[:3000]
    specs = [parse_fault(f"{k}:amount=0.05") for k in ("duplicate", "reorder", "malformed")]
    faulty = list(message_faults(clean, specs, np.random.default_rng(1)))
    again = list(message_faults(clean, specs, np.random.default_rng(1)))
    assert faulty == again, "seeded"
    assert len(faulty) > len(clean)
    bad = 0
    for rec in faulty:
        try:
            wire.decode(rec.topic, rec.payload)
        except wire.DecodeError as exc:
            assert exc.reason in ("malformed_json", "unsupported_version")
            bad += 1
    assert 50 < bad < 300
    order = [clean.index(r) for r in faulty if r in clean]
    assert order != sorted(order)
    assert list(message_faults(clean, [], np.random.default_rng(1))) == clean



def test_a_scenario_can_carry_its_faults(tmp_path: Path) -> None:
    text = (Path(__file__).resolve().parents[2] / "simulators" / "scenarios" / "poem.toml").read_text()
    scenario = tmp_path / "poem-faulty.toml"
    faults = 'faults = ["gateway_loss:at_s=1200,duration_s=60", "disconnect:device=esu"]'
    scenario.write_text(text.replace('name = "poem"', f'name = "poem-faulty"\n{faults}', 1))
    out = tmp_path / "faulty.jsonl.gz"
    timeline = tmp_path / "short.csv"
    timeline.write_text("case_id,phase,start_s,end_s\nA,tunnel,0,1000\nA,myotomy,1100,1500\n")
    args = ["simulate", "--scenario", str(scenario), "--timeline", str(timeline), "--out", str(out),
            "--start", "1763000000"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    _, records = read_recording(out)
    states = [msg.state for rec in records for topic, msg in [wire.decode(rec.topic, rec.payload)]
              if topic.kind is wire.Kind.STATE]
    assert states[:3] == ["online", "offline", "online"]
