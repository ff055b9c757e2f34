"""Plans: which cases run in which room, and when each phase starts and ends (relative virtual time).

Pure and seeded: ``plan_rooms`` draws phase durations from a scenario, ``plan_timeline`` takes them verbatim
from a recorded timeline. Times are microseconds from the plan's origin (0); ``generate`` shifts them onto
the virtual clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulators.devices.base import US
from simulators.scenario import Scenario
from simulators.timeline import TimelineCase

__all__ = ["CasePlan", "PhaseSpan", "Plan", "Room", "RoomPlan", "plan_rooms", "plan_timeline", "room"]


@dataclass(frozen=True, slots=True)
class Room:
    index: int
    name: str  # "OR-1"
    slug: str  # "or1": suffix of device ids
    gateway_id: str  # "gw-or1": one gateway per room


def room(index: int) -> Room:
    return Room(index, f"OR-{index + 1}", f"or{index + 1}", f"gw-or{index + 1}")


@dataclass(frozen=True, slots=True)
class PhaseSpan:
    name: str  # as the scenario or the timeline file spells it
    start_us: int
    end_us: int


@dataclass(frozen=True, slots=True)
class CasePlan:
    case_id: str  # raw, hospital-style: the edge agent pseudonymises it
    index: int  # case number within its room
    scenario: Scenario
    start_us: int
    end_us: int
    phases: tuple[PhaseSpan, ...]

    @property
    def power_on_us(self) -> int:
        return self.start_us - int(self.scenario.setup_s * US)

    @property
    def power_off_us(self) -> int:
        return self.end_us + int(self.scenario.cleanup_s * US)


@dataclass(frozen=True, slots=True)
class RoomPlan:
    room: Room
    cases: tuple[CasePlan, ...]


@dataclass(frozen=True, slots=True)
class Plan:
    seed: int
    rooms: tuple[RoomPlan, ...]

    @property
    def span_us(self) -> int:
        """From the origin to the last device powering off."""
        return max((c.power_off_us for r in self.rooms for c in r.cases), default=0)


def _draw_phases(scenario: Scenario, rng: np.random.Generator, start_us: int) -> tuple[tuple[PhaseSpan, ...], int]:
    t = start_us + int(scenario.lead_in.sample(rng) * US)
    spans: list[PhaseSpan] = []
    gap_after = scenario.gap
    for phase in scenario.phases:
        if phase.probability < 1.0 and rng.random() >= phase.probability:
            continue
        if spans:
            t += int(gap_after.sample(rng) * US)
        gap_after = phase.gap or scenario.gap
        end = t + int(phase.duration.sample(rng) * US)
        spans.append(PhaseSpan(phase.name, t, end))
        t = end
    return tuple(spans), t + int(scenario.lead_out.sample(rng) * US)


def _next_start(prev: CasePlan | None, scenario: Scenario, rng: np.random.Generator, first_us: int) -> int:
    if prev is None:
        return first_us + int(scenario.setup_s * US)
    idle = max(prev.scenario.turnover.sample(rng), prev.scenario.cleanup_s + scenario.setup_s + 60)
    return prev.end_us + int(idle * US)


def plan_rooms(scenarios: Sequence[Scenario], *, rooms: int, cases: int, seed: int,
               stagger_s: float = 900.0) -> Plan:
    """``rooms`` ORs, each running ``cases`` cases; room i runs scenarios[i % len] (several ORs, different
    procedures), first cases staggered by up to ``stagger_s``."""
    out = []
    for r in range(rooms):
        rm = room(r)
        rng = np.random.default_rng([seed, r, 0xCA5E])
        scenario = scenarios[r % len(scenarios)]
        plans: list[CasePlan] = []
        first = int(rng.uniform(0, stagger_s) * US)
        for k in range(cases):
            start = _next_start(plans[-1] if plans else None, scenario, rng, first)
            phases, end = _draw_phases(scenario, rng, start)
            case_id = f"CASE-{rm.slug.upper()}-{k + 1:04d}"
            plans.append(CasePlan(case_id, k, scenario, start, end, phases))
        out.append(RoomPlan(rm, tuple(plans)))
    return Plan(seed, tuple(out))


def plan_timeline(scenario: Scenario, timeline: Sequence[TimelineCase], *, rooms: int, seed: int) -> Plan:
    """Recorded cases with their exact phase boundaries, dealt round-robin over ``rooms``."""
    per_room: list[list[CasePlan]] = [[] for _ in range(max(1, rooms))]
    for i, tcase in enumerate(timeline):
        r = i % len(per_room)
        rng = np.random.default_rng([seed, r, i, 0x71E])
        prev = per_room[r][-1] if per_room[r] else None
        start = _next_start(prev, scenario, rng, 0)
        phases = tuple(PhaseSpan(p.phase, start + round(p.start_s * US), start + round(p.end_s * US))
                       for p in tcase.phases)
        end = start + round(tcase.end_s * US)
        per_room[r].append(CasePlan(tcase.case_id, len(per_room[r]), scenario, start, end, phases))
    return Plan(seed, tuple(RoomPlan(room(r), tuple(cs)) for r, cs in enumerate(per_room) if cs))
