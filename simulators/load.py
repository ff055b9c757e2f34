"""Load mode: G gateways x D devices x R samples/s for benchmarks and soak tests.

A synthetic one-phase "procedure" per gateway keeps every device busy at a steady rate through the same
generator, gateway and sinks as a scenario, so a benchmark measures the real path.
"""

from __future__ import annotations

from simulators.devices import FAMILIES
from simulators.plan import CasePlan, PhaseSpan, Plan, RoomPlan, room
from simulators.scenario import DeviceDef, Dist, PhaseDef, Scenario, Usage

__all__ = ["LOAD_FAMILIES", "load_plan", "load_scenario_for"]

# Families with several continuous metrics first, so that a device produces a full row at every tick.
LOAD_FAMILIES = ("insufflator", "esu", "anaesthesia_workstation", "suction_irrigation", "surgical_robot",
                 "light_source", "patient_warming", "tourniquet", "ultrasonic", "smoke_evacuator", "camera",
                 "stapler", "vessel_sealer", "or_light")
assert set(LOAD_FAMILIES) == set(FAMILIES)


def load_scenario_for(devices: int, rate_hz: float, duration_s: float) -> Scenario:
    defs = tuple(
        DeviceDef(f"d{i + 1:02d}-{LOAD_FAMILIES[i % len(LOAD_FAMILIES)].replace('_', '')[:10]}",
                  LOAD_FAMILIES[i % len(LOAD_FAMILIES)], rate_hz, {}, True)
        for i in range(devices)
    )
    use = {d.key: Usage(0.5) for d in defs}
    zero = Dist(0.0)
    return Scenario(name="load", title="Load test", procedure_type="load", devices=defs,
                    phases=(PhaseDef("load", Dist(duration_s), use),), generic=use, gap=zero, lead_in=zero,
                    lead_out=zero, turnover=zero, setup_s=1.0, cleanup_s=1.0)


def load_plan(*, gateways: int, devices: int, rate_hz: float, duration_s: float, seed: int) -> Plan:
    scenario = load_scenario_for(devices, rate_hz, duration_s)
    start = int(scenario.setup_s * 1e6)
    end = start + int(duration_s * 1e6)
    rooms = []
    for g in range(gateways):
        rm = room(g)
        case = CasePlan(f"LOAD-{rm.slug.upper()}", 0, scenario, start, end, (PhaseSpan("load", start, end),))
        rooms.append(RoomPlan(rm, (case,)))
    return Plan(seed, tuple(rooms))
