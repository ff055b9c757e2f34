"""Recorded timelines drive cases with their exact phase boundaries (POEM converted in a fixture)."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from simulators.devices import FAMILIES
from simulators.devices.base import US
from simulators.errors import TimelineError
from simulators.generate import plan_lines
from simulators.plan import plan_timeline
from simulators.scenario import Scenario, load_scenario
from simulators.timeline import parse_timeline, read_timeline
from wire.device import DeviceEvent, Procedure, Sample, encode_line, parse_line

REPO = Path(__file__).resolve().parents[2]
POEM_CSV = REPO / ".." / "shared" / "data" / "poemnet" / "phase_timelines.csv"
ORIGIN = 1_763_000_000_000_000


@pytest.fixture
def poem_timeline(tmp_path: Path) -> Path:
    """The POEM annotations as ``case_id,phase,start_s,end_s``: one annotation set per video, full step names."""
    rows = list(csv.DictReader(POEM_CSV.open()))
    chosen = {}
    for r in rows:
        chosen[r["video_id"]] = min(chosen.get(r["video_id"], r["annotation_set"]), r["annotation_set"])
    out = tmp_path / "poem_timeline.csv"
    with out.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "phase", "start_s", "end_s"])
        for r in rows:
            if r["annotation_set"] == chosen[r["video_id"]]:
                # alternate the spellings, so both the abbreviation and the full name must be understood
                name = r["step"] if int(r["segment_index"]) % 2 else r["step_full_name"]
                writer.writerow([r["video_id"], name, r["start_s"], r["end_s"]])
    return out


def test_poem_phases_match_the_file_to_the_second(poem_timeline: Path) -> None:
    cases = read_timeline(poem_timeline)
    assert len(cases) == 14
    plan = plan_timeline(load_scenario("poem"), cases, rooms=3, seed=1)
    proc: dict[str, list[Procedure]] = defaultdict(list)
    for t in plan_lines(plan, origin_us=ORIGIN, with_devices=False):
        proc[t.line.case_id].append(t.line)
    assert set(proc) == {c.case_id for c in cases}
    with poem_timeline.open() as fh:
        expected = defaultdict(list)
        for r in csv.DictReader(fh):
            expected[r["case_id"]].append((r["phase"], float(r["start_s"]), float(r["end_s"])))
    for case_id, lines in proc.items():
        start = next(p.ts_us for p in lines if p.kind == "case_start")
        starts = {(p.phase, (p.ts_us - start) / US) for p in lines if p.kind == "phase_start"}
        ends = {(p.phase, (p.ts_us - start) / US) for p in lines if p.kind == "phase_end"}
        assert starts == {(ph, s) for ph, s, _ in expected[case_id]}
        assert ends == {(ph, e) for ph, _, e in expected[case_id]}
        assert lines[-1].kind == "case_end"


def test_timeline_phases_drive_the_devices(poem_timeline: Path) -> None:
    case = read_timeline(poem_timeline)[0]
    plan = plan_timeline(load_scenario("poem"), [case], rooms=1, seed=1)
    spans: dict[str, tuple[int, int]] = {}
    esu = []
    for t in plan_lines(plan, origin_us=ORIGIN):
        if isinstance(t.line, Procedure) and t.line.kind == "phase_start":
            spans[t.line.phase] = (t.line.ts_us, 0)
        elif isinstance(t.line, Procedure) and t.line.kind == "phase_end":
            spans[t.line.phase] = (spans[t.line.phase][0], t.line.ts_us)
        elif isinstance(t.line, DeviceEvent) and t.line.device_id == "esu-or1" and t.line.kind == "activation_start":
            esu.append(t.line)
    energy = [n for n in spans if load_scenario("poem").match(n).name in ("mucosotomy", "submucosal_tunnel", "myotomy")]
    inside = [e for e in esu if any(spans[n][0] <= e.ts_us < spans[n][1] for n in energy)]
    assert esu and len(inside) == len(esu), "the knife cuts in mucosotomy, tunnel and myotomy only"
    assert {e.code for e in inside} <= {"endocut", "spray", "coag"}


def test_unknown_phase_names_are_generic_activity_not_errors() -> None:
    text = "case_id,phase,start_s,end_s\nX1,Setup,0,60\nX1,Mystery step,60,300\nX1,myotomy,300,900\n"
    plan = plan_timeline(load_scenario("poem"), parse_timeline(text), rooms=1, seed=2)
    phases = [t.line.phase for t in plan_lines(plan) if isinstance(t.line, Procedure) and t.line.kind == "phase_start"]
    assert phases == ["Setup", "Mystery step", "myotomy"]


def test_overlapping_phases_are_kept_as_given() -> None:
    text = "case_id,phase,start_s,end_s\nY,tunnel,0,100\nY,myotomy,90,200\n"
    plan = plan_timeline(load_scenario("poem"), parse_timeline(text), rooms=1, seed=2)
    marks = [(t.line.kind, t.line.phase, t.line.ts_us) for t in plan_lines(plan) if isinstance(t.line, Procedure)]
    start = marks[0][2]
    assert [(k, p, (ts - start) // US) for k, p, ts in marks] == [
        ("case_start", None, 0), ("phase_start", "tunnel", 0), ("phase_start", "myotomy", 90),
        ("phase_end", "tunnel", 100), ("phase_end", "myotomy", 200), ("case_end", None, 200)]


@pytest.mark.parametrize(("text", "match"), [
    ("case,phase,start_s,end_s\n", "missing columns"),
    ("case_id,phase,start_s,end_s\nA,p,10,5\n", ":2: need 0 <= start_s <= end_s"),
    ("case_id,phase,start_s,end_s\nA,p,x,5\n", "not numbers"),
    ("case_id,phase,start_s,end_s\n", "no phases"),
])
def test_bad_timelines_are_clear_errors(text: str, match: str) -> None:
    with pytest.raises(TimelineError, match=match):
        parse_timeline(text, source="t.csv")


# ------------------------------------------------------------------------------ robotic radical prostatectomy

RARP_CSV = REPO / "tests" / "data" / "rarp_timeline.csv"
# What each name in the fixture means to a urologist, written out here rather than taken from Scenario.match:
# abbreviations, aliases and canonical names in several letter cases, and one step the scenario does not know.
RARP_MEANS = {
    "Docking": "port_placement_docking", "Port Placement": "port_placement_docking",
    "Retzius Space": "bladder_takedown",
    "BND": "bladder_neck_dissection", "bladder neck": "bladder_neck_dissection",
    "svd": "seminal_vesicle_dissection", "Seminal Vesicles": "seminal_vesicle_dissection",
    "Prostatic Pedicles": "pedicle_control",
    "NVB Release": "neurovascular_bundle_release", "nerve-sparing": "neurovascular_bundle_release",
    "APEX": "apical_dissection",
    "vua": "vesico_urethral_anastomosis", "Vesico-Urethral Anastomosis": "vesico_urethral_anastomosis",
    "Undocking": "undocking_extraction", "EXTRACTION": "undocking_extraction",
    "Skin Closure": "closure",
    "NeuroSAFE frozen section": None,  # intra-operative frozen section: not a phase the scenario knows
}
UNKNOWN = "NeuroSAFE frozen section"
ROBOT_MODES = {"monopolar", "bipolar"}


@dataclass
class RarpRun:
    scenario: Scenario
    rows: list[dict[str, str]]  # the file, untouched
    procedures: dict[str, list[Procedure]]
    events: dict[str, dict[str, list[DeviceEvent]]]  # case -> device id -> events
    samples: dict[str, dict[str, list[Sample]]]  # case -> device id -> samples (robot, camera, light)

    def spans(self, case_id: str) -> dict[str, tuple[int, int]]:
        marks = self.procedures[case_id]
        start = {p.phase: p.ts_us for p in marks if p.kind == "phase_start"}
        return {ph: (start[ph], next(p.ts_us for p in marks if p.kind == "phase_end" and p.phase == ph))
                for ph in start}

    def activations(self, case_id: str, device_id: str) -> list[DeviceEvent]:
        return [e for e in self.events[case_id].get(device_id, []) if e.kind == "activation_start"]


@pytest.fixture(scope="module")
def rarp() -> RarpRun:
    """Both recorded cases run once through the pure engine (procedure context and every device)."""
    scenario = load_scenario("robotic-prostatectomy")
    with RARP_CSV.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    plan = plan_timeline(scenario, read_timeline(RARP_CSV), rooms=1, seed=5)
    powered = [(c.case_id, ORIGIN + c.power_on_us, ORIGIN + c.power_off_us) for c in plan.rooms[0].cases]
    run = RarpRun(scenario, rows, defaultdict(list), defaultdict(lambda: defaultdict(list)),
                  defaultdict(lambda: defaultdict(list)))
    for t in plan_lines(plan, origin_us=ORIGIN):
        line = t.line
        if isinstance(line, Procedure):
            run.procedures[line.case_id].append(line)
            continue
        # one room, one case after another: a device line belongs to the case its device is powered for
        case_id = next(c for c, on, off in powered if on <= t.at_us <= off)
        if isinstance(line, DeviceEvent):
            run.events[case_id][line.device_id].append(line)
        elif isinstance(line, Sample) and line.device_id in ("robot-or1", "camera-or1", "light-or1"):
            run.samples[case_id][line.device_id].append(line)
    return run


def test_rarp_fixture_names_map_through_aliases_case_insensitively(rarp: RarpRun) -> None:
    assert {r["phase"] for r in rarp.rows} == set(RARP_MEANS)
    for name, meaning in RARP_MEANS.items():
        found = rarp.scenario.match(name)
        assert (found.name if found else None) == meaning, name
    assert rarp.scenario.usage(UNKNOWN) is rarp.scenario.generic


def test_rarp_phase_names_and_boundaries_are_stored_as_given(rarp: RarpRun) -> None:
    assert list(rarp.procedures) == ["RARP-0007", "RARP-0012"]
    for case_id, marks in rarp.procedures.items():
        rows = [r for r in rarp.rows if r["case_id"] == case_id]
        start = marks[0].ts_us
        assert marks[0].kind == "case_start" and marks[-1].kind == "case_end"
        assert {p.procedure_type for p in marks} == {"rarp"}
        got_starts = [(p.phase, (p.ts_us - start) / US) for p in marks if p.kind == "phase_start"]
        got_ends = [(p.phase, (p.ts_us - start) / US) for p in marks if p.kind == "phase_end"]
        assert got_starts == [(r["phase"], float(r["start_s"])) for r in rows]  # spelling and case untouched
        assert got_ends == [(r["phase"], float(r["end_s"])) for r in rows]
        assert (marks[-1].ts_us - start) / US == float(rows[-1]["end_s"])
        for p in marks:  # and they survive the device wire format byte for byte
            assert parse_line(encode_line(p)) == p


def test_rarp_mapped_phases_drive_the_robot_and_energy_devices(rarp: RarpRun) -> None:
    sc = rarp.scenario
    family = {d.key: d.family for d in sc.devices}
    for case_id in rarp.procedures:
        spans = rarp.spans(case_id)

        def phase_of(ts: int, spans: dict[str, tuple[int, int]] = spans) -> str | None:
            return next((ph for ph, (a, b) in spans.items() if a <= ts < b), None)

        # every activation of the robot's energy pedals, the sealer and the suction happens in a phase whose
        # scenario entry (found by alias) uses that device, in one of the modes the phase allows
        for device in ("robot", "sealer", "suction"):
            for ev in rarp.activations(case_id, f"{device}-or1"):
                phase = phase_of(ev.ts_us)
                assert phase is not None, (case_id, device, ev)
                use = sc.usage(phase).get(device)
                assert use is not None and use.activity > 0, (case_id, device, phase)
                assert use.params.get("energy_share", 1.0) > 0, (case_id, device, phase)
                allowed = {m for m, _ in use.modes or FAMILIES[family[device]].default_modes}
                assert ev.code in allowed, (case_id, device, phase, ev.code)

        robot = defaultdict(list)
        for ev in rarp.activations(case_id, "robot-or1"):
            robot[RARP_MEANS[phase_of(ev.ts_us)]].append(ev.code)
        per_min = {m: len(codes) / ((spans[n][1] - spans[n][0]) / US / 60)
                   for n, m in RARP_MEANS.items() if n in spans for codes in [robot[m]]}
        # read like the operation: monopolar and bipolar at the bladder neck, bipolar only on the pedicles and
        # near the nerves (and far less of it), no energy while docking, suturing the anastomosis or closing
        assert set(robot["bladder_neck_dissection"]) == ROBOT_MODES
        assert set(robot["neurovascular_bundle_release"]) <= {"bipolar"}
        assert per_min["neurovascular_bundle_release"] < 0.25 * per_min["bladder_neck_dissection"]
        for silent in ("port_placement_docking", "vesico_urethral_anastomosis", "undocking_extraction", "closure"):
            assert not robot[silent], (case_id, silent)
        vua = next(n for n in spans if RARP_MEANS[n] == "vesico_urethral_anastomosis")
        needles = [e for e in rarp.events[case_id]["robot-or1"] if e.code == "instrument_attached"
                   and spans[vua][0] <= e.ts_us < spans[vua][1]]
        assert {(e.attrs["arm"], e.attrs["instrument"]) for e in needles} == {
            (1, "large_needle_driver"), (2, "large_needle_driver")}, "needle drivers for the anastomosis"
        sealing = {RARP_MEANS[phase_of(e.ts_us)] for e in rarp.activations(case_id, "sealer-or1")}
        assert sealing and sealing <= {"seminal_vesicle_dissection", "pedicle_control"}


def test_rarp_unknown_phase_is_generic_activity_not_an_error(rarp: RarpRun) -> None:
    sc = rarp.scenario
    span = rarp.spans("RARP-0007")[UNKNOWN]
    names = [p.phase for p in rarp.procedures["RARP-0007"] if p.kind in ("phase_start", "phase_end")]
    assert names.count(UNKNOWN) == 2

    def during(lines: list) -> list:
        return [ln for ln in lines if span[0] <= ln.ts_us < span[1]]

    # the scenario's generic behaviour: robot in use (its default energy modes), camera and light on,
    # nothing that only named phases ask for
    assert set(sc.generic) == {"insufflator", "camera", "light", "robot"}
    robot_energy = during(rarp.activations("RARP-0007", "robot-or1"))
    assert robot_energy and {e.code for e in robot_energy} <= ROBOT_MODES
    assert during(rarp.events["RARP-0007"]["robot-or1"]) and not [
        e for e in during(rarp.events["RARP-0007"]["robot-or1"]) if e.code == "head_out"], "surgeon stays in"
    torque = np.array([s.values["arm1_torque_nm"] for s in during(rarp.samples["RARP-0007"]["robot-or1"])])
    assert len(torque) > 1000 and np.median(torque) > 4.0, "the arms are working, not parked"
    assert all(s.values["frame_rate_hz"] > 0 for s in during(rarp.samples["RARP-0007"]["camera-or1"]))
    assert all(s.values["intensity_pct"] > 0 for s in during(rarp.samples["RARP-0007"]["light-or1"]))
    for quiet in ("sealer-or1", "suction-or1"):
        assert not during(rarp.activations("RARP-0007", quiet)), quiet
