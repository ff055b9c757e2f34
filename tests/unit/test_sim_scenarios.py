"""Scenarios read like their procedures; POEM is calibrated against the real POEM timelines."""

from __future__ import annotations

import csv
import math
import statistics
from collections import defaultdict
from pathlib import Path

import pytest

from simulators.devices.base import US
from simulators.errors import ScenarioError
from simulators.generate import activation_windows, plan_lines
from simulators.plan import plan_rooms
from simulators.scenario import list_scenarios, load_scenario, normalise
from wire.device import DeviceEvent, Procedure, Sample

REPO = Path(__file__).resolve().parents[2]
POEM_CSV = REPO / ".." / "shared" / "data" / "poemnet" / "phase_timelines.csv"


def test_packaged_scenarios() -> None:
    names = list_scenarios()
    assert {"lap-chole", "poem", "robotic-prostatectomy", "knee-arthroplasty"} <= set(names)
    for name in names:
        sc = load_scenario(name)
        assert sc.phases and sc.devices
        for phase in sc.phases:
            assert set(phase.use) <= {d.key for d in sc.devices}


def test_robotic_prostatectomy_has_its_phases() -> None:
    sc = load_scenario("robotic-prostatectomy")
    names = [p.name for p in sc.phases]
    for wanted in ("bladder_neck_dissection", "seminal_vesicle_dissection", "neurovascular_bundle_release",
                   "vesico_urethral_anastomosis"):
        assert wanted in names
    assert "surgical_robot" in {d.family for d in sc.devices}


@pytest.mark.parametrize("name", ["muc_incis", "Mucosotomy", "MUCOSOTOMY", " mucosal-incision "])
def test_phase_names_match_case_insensitively_with_aliases(name: str) -> None:
    assert load_scenario("poem").match(name).name == "mucosotomy"


def test_unknown_phase_gets_generic_use() -> None:
    sc = load_scenario("poem")
    assert sc.match("Hemostasis check") is None
    assert sc.usage("Hemostasis check") is sc.generic
    assert normalise("Submucosal  Tunnel") == "submucosal_tunnel"


def test_bad_scenario_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[devices.a]\nfamily = "teleporter"\n[[phases]]\nname = "p"\nduration = 1\n')
    with pytest.raises(ScenarioError, match="teleporter"):
        load_scenario(bad)
    with pytest.raises(ScenarioError, match="no such scenario"):
        load_scenario("no-such-procedure")


def _by_room(plan):
    lines = defaultdict(list)
    for t in plan_lines(plan, origin_us=1_763_000_000_000_000):
        lines[t.room].append(t.line)
    return lines


def test_lap_chole_timeline_reads_like_the_procedure() -> None:
    sc = load_scenario("lap-chole")
    plan = plan_rooms([sc], rooms=2, cases=1, seed=7)
    expected = [p.name for p in sc.phases]
    for room, lines in _by_room(plan).items():
        proc = [ln for ln in lines if isinstance(ln, Procedure)]
        assert proc[0].kind == "case_start" and proc[-1].kind == "case_end"
        starts = [p.phase for p in proc if p.kind == "phase_start"]
        assert starts == expected, room
        spans = {p.phase: [p.ts_us] for p in proc if p.kind == "phase_start"}
        for p in proc:
            if p.kind == "phase_end":
                spans[p.phase].append(p.ts_us)
        esu = [ln for ln in lines if isinstance(ln, DeviceEvent) and ln.device_id.startswith("esu-")
               and ln.kind == "activation_start"]
        in_dissection = sum(any(spans[ph][0] <= e.ts_us < spans[ph][1] for ph in
                                ("calot_dissection", "gallbladder_dissection")) for e in esu)
        assert in_dissection / len(esu) > 0.6, "the hook works mostly in the dissection phases"
        uses_esu = [ph for ph in spans if "esu" in sc.match(ph).use]
        assert all(any(spans[ph][0] <= e.ts_us < spans[ph][1] for ph in uses_esu) for e in esu), "never idle"
        stapler = [ln for ln in lines if isinstance(ln, DeviceEvent) and ln.device_id.startswith("stapler-")
                   and ln.kind == "activation_start"]
        assert all(spans["clipping_cutting"][0] <= e.ts_us < spans["clipping_cutting"][1] for e in stapler)
        insufflating = [s for s in lines if isinstance(s, Sample) and s.device_id.startswith("insufflator-")
                        and spans["calot_dissection"][0] + 60 * US <= s.ts_us < spans["extraction"][1]]
        assert min(s.values["pressure_mmhg"] for s in insufflating) > 6
        closing = [s for s in lines if isinstance(s, Sample) and s.device_id.startswith("insufflator-")
                   and s.ts_us >= spans["closure"][0] + 60 * US]
        assert max(s.values["pressure_mmhg"] for s in closing) < 2


def test_rooms_run_different_cases_with_turnover() -> None:
    scenarios = [load_scenario(n) for n in ("lap-chole", "robotic-prostatectomy", "poem")]
    plan = plan_rooms(scenarios, rooms=3, cases=3, seed=1)
    assert [rp.cases[0].scenario.name for rp in plan.rooms] == ["lap-chole", "robotic-prostatectomy", "poem"]
    for rp in plan.rooms:
        for a, b in zip(rp.cases, rp.cases[1:], strict=False):
            assert b.start_us - a.end_us >= a.scenario.turnover.min_s * US
            assert b.power_on_us > a.power_off_us, "devices are off between cases"
    assert len({rp.cases[0].start_us for rp in plan.rooms}) == 3, "rooms start staggered"
    again = plan_rooms(scenarios, rooms=3, cases=3, seed=1)
    assert again == plan


def _poem_stats() -> tuple[dict[str, tuple[float, float, float, float]], list[float]]:
    rows = list(csv.DictReader(POEM_CSV.open()))
    first_set = {}
    for r in rows:  # one annotation set per video: the lowest-numbered one
        first_set[r["video_id"]] = min(first_set.get(r["video_id"], r["annotation_set"]), r["annotation_set"])
    durations: dict[str, list[float]] = defaultdict(list)
    per_video: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in rows:
        if r["annotation_set"] == first_set[r["video_id"]]:
            s, e = float(r["start_s"]), float(r["end_s"])
            durations[r["step"]].append(e - s)
            per_video[r["video_id"]].append((s, e))
    stats = {k: (statistics.median(v), statistics.stdev([math.log(x) for x in v]), min(v), max(v))
             for k, v in durations.items()}
    gaps = [b[0] - a[1] for spans in per_video.values() for a, b in zip(sorted(spans), sorted(spans)[1:], strict=False)]
    return stats, gaps


def test_poem_durations_are_calibrated_from_the_real_timelines() -> None:
    assert POEM_CSV.exists(), "the shared POEM data set is missing"
    stats, gaps = _poem_stats()
    sc = load_scenario("poem")
    assert len(stats) == 5
    for step, (median, sigma, lo, hi) in stats.items():
        phase = sc.match(step)
        assert phase is not None, step
        assert phase.duration.median_s == pytest.approx(median, rel=0.02), step
        assert phase.duration.sigma == pytest.approx(sigma, abs=0.02), step
        assert (phase.duration.min_s, phase.duration.max_s) == (lo, hi), step
    assert sc.gap.median_s == pytest.approx(statistics.median(gaps), rel=0.02)


def test_poem_simulated_durations_follow_the_data() -> None:
    stats, _ = _poem_stats()
    sc = load_scenario("poem")
    plan = plan_rooms([sc], rooms=1, cases=200, seed=5)
    sims: dict[str, list[float]] = defaultdict(list)
    for case in plan.rooms[0].cases:
        for p in case.phases:
            sims[p.name].append((p.end_us - p.start_us) / US)
    for step, (median, *_rest) in stats.items():
        simulated = statistics.median(sims[sc.match(step).name])
        assert simulated == pytest.approx(median, rel=0.25), step


@pytest.mark.parametrize(("name", "leader"), [("lap-chole", "esu-or1"), ("robotic-prostatectomy", "robot-or1")])
def test_smoke_evacuator_runs_with_the_generator(name: str, leader: str) -> None:
    plan = plan_rooms([load_scenario(name)], rooms=1, cases=1, seed=2)
    lines = [t.line for t in plan_lines(plan)]
    energy = activation_windows(ln for ln in lines if getattr(ln, "device_id", None) == leader)
    smoke = activation_windows(ln for ln in lines if getattr(ln, "device_id", None) == "smoke-or1")
    assert len(energy) > 100
    assert all(any(a <= s and e <= b for a, b in smoke) for s, e in energy), "every activation is evacuated"
    assert all(any(s <= a < e + 3 * US for s, e in energy) for a, _ in smoke), "and only then"


def test_following_an_unknown_device_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[devices.a]\nfamily = "smoke_evacuator"\nfollows = "esu"\n'
                   '[[phases]]\nname = "p"\nduration = 1\n')
    with pytest.raises(ScenarioError, match="follows unknown device"):
        load_scenario(bad)
