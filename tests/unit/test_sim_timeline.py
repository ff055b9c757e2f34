"""Recorded timelines drive cases with their exact phase boundaries (POEM converted in a fixture)."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import pytest

from simulators.devices.base import US
from simulators.errors import TimelineError
from simulators.generate import plan_lines
from simulators.plan import plan_timeline
from simulators.scenario import load_scenario
from simulators.timeline import parse_timeline, read_timeline
from wire.device import DeviceEvent, Procedure

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
