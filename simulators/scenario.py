"""Procedure scenarios: TOML files that say which phases a procedure has, how long they last and which
devices do what in each.

A scenario maps phase *names* to device behaviour. Names are matched case-insensitively with separators
ignored and with aliases (``muc_incis`` = ``Mucosotomy``), so that a recorded timeline can drive it; a phase it
does not know gets the scenario's ``generic`` behaviour, never an error. Durations are log-normal
(``median_s``, ``sigma`` = standard deviation of the log), clipped to ``[min_s, max_s]``.

    name = "lap-chole"                      procedure_type = "lap-chole"     setup_s / cleanup_s (devices on/off)
    lead_in / lead_out / gap / turnover = { median_s = 900, sigma = 0.25, min_s = 300, max_s = 3600 }
    faults = ["drift:device=insufflator"]   (optional, see simulators.faults)
    [devices.esu]                           a device "esu-or1" in room OR-1
    family = "esu"                          one of simulators.devices.FAMILIES
    rate_hz = 5 · params = {...} · sustain = true (keeps the last phase's use through gaps)
    follows = "esu"                         (runs with that device's activations, e.g. a smoke evacuator)
    baseline = 0.3                          (activity from case start to end where no phase says otherwise)
    [[phases]]
    name = "calot_dissection" · aliases = ["dissection", "P2"] · duration = {...} · probability = 1.0
    use.esu = { activity = 0.8, modes = { coag = 0.75, cut = 0.25 }, params = {...}, probability = 1.0 }
    use.camera = 1.0                        (shorthand: activity only)
    [generic]
    use.camera = 1.0                        (phases the scenario does not know)
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from simulators.devices import FAMILIES
from simulators.errors import ScenarioError

__all__ = ["DeviceDef", "Dist", "PhaseDef", "Scenario", "Usage", "list_scenarios", "load_scenario", "normalise"]


def normalise(name: str) -> str:
    """``"Submucosal Injection"``, ``submucosal-injection`` and ``SUBMUCOSAL_INJECTION`` are one phase."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


@dataclass(frozen=True, slots=True)
class Dist:
    median_s: float
    sigma: float = 0.0
    min_s: float = 0.0
    max_s: float = math.inf

    def sample(self, rng: np.random.Generator) -> float:
        value = self.median_s * math.exp(self.sigma * float(rng.standard_normal())) if self.sigma else self.median_s
        return min(max(value, self.min_s), self.max_s)


@dataclass(frozen=True, slots=True)
class Usage:
    """How a device is used in a phase: ``activity`` 0..1, weighted ``modes``, per-phase ``params``."""

    activity: float
    modes: tuple[tuple[str, float], ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    probability: float = 1.0  # chance (per case) that the device is used at all in this phase


@dataclass(frozen=True, slots=True)
class DeviceDef:
    key: str  # device id prefix, e.g. "esu" -> "esu-or1"
    family: str
    rate_hz: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    sustain: bool = False  # keeps its activity through the gaps between phases (insufflator, camera)
    baseline: float = 0.0  # activity from case start to case end where no phase says otherwise (warming)
    follows: str | None = None  # another device's key whose activations drive this one (smoke evacuator)


@dataclass(frozen=True, slots=True)
class PhaseDef:
    name: str
    duration: Dist
    use: Mapping[str, Usage]
    aliases: tuple[str, ...] = ()
    gap: Dist | None = None  # idle time after the phase; the scenario's default gap when absent
    probability: float = 1.0  # optional phases (drain placement) happen in this share of cases


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str
    procedure_type: str
    devices: tuple[DeviceDef, ...]
    phases: tuple[PhaseDef, ...]
    generic: Mapping[str, Usage]
    gap: Dist
    lead_in: Dist  # case start -> first phase (positioning, anaesthesia, draping)
    lead_out: Dist  # last phase -> case end
    turnover: Dist  # case end -> next case start in the same room
    setup_s: float = 300.0  # devices power on before the case starts
    cleanup_s: float = 120.0  # and off after it ends
    faults: tuple[str, ...] = ()

    def match(self, phase: str) -> PhaseDef | None:
        key = normalise(phase)
        for p in self.phases:
            if key == normalise(p.name) or key in {normalise(a) for a in p.aliases}:
                return p
        return None

    def usage(self, phase: str) -> Mapping[str, Usage]:
        known = self.match(phase)
        return known.use if known is not None else self.generic


# ------------------------------------------------------------------------------------------------ loading


def list_scenarios() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("simulators.scenarios").iterdir() if p.name.endswith(".toml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A packaged scenario by name (``lap-chole``) or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.exists():
        text, source = path.read_text(), str(path)
    else:
        res = resources.files("simulators.scenarios") / f"{name_or_path}.toml"
        if not res.is_file():
            raise ScenarioError(str(name_or_path), f"no such scenario; known: {', '.join(list_scenarios())}")
        text, source = res.read_text(), f"{name_or_path}.toml"
    try:
        return _parse(tomllib.loads(text), source)
    except (KeyError, TypeError, ValueError) as exc:
        raise ScenarioError(source, f"{type(exc).__name__}: {exc}") from None


def _dist(raw: Any, source: str) -> Dist:
    if isinstance(raw, int | float):
        return Dist(float(raw))
    if not isinstance(raw, dict) or "median_s" not in raw:
        raise ScenarioError(source, f"a duration needs median_s: {raw!r}")
    return Dist(float(raw["median_s"]), float(raw.get("sigma", 0.0)), float(raw.get("min_s", 0.0)),
                float(raw.get("max_s", math.inf)))


def _usage(raw: Any) -> Usage:
    if isinstance(raw, int | float):
        return Usage(float(raw))
    modes = tuple((str(k), float(v)) for k, v in dict(raw.get("modes", {})).items())
    return Usage(float(raw.get("activity", 1.0)), modes, dict(raw.get("params", {})),
                 float(raw.get("probability", 1.0)))


def _uses(raw: Mapping[str, Any], devices: set[str], source: str) -> dict[str, Usage]:
    unknown = set(raw) - devices
    if unknown:
        raise ScenarioError(source, f"phase uses undeclared devices {sorted(unknown)}")
    return {k: _usage(v) for k, v in raw.items()}


def _parse(raw: dict[str, Any], source: str) -> Scenario:
    devices = []
    for key, spec in raw["devices"].items():
        if spec["family"] not in FAMILIES:
            raise ScenarioError(source, f"device {key!r}: unknown family {spec['family']!r}")
        devices.append(DeviceDef(key, spec["family"], spec.get("rate_hz"), dict(spec.get("params", {})),
                                 bool(spec.get("sustain", False)), float(spec.get("baseline", 0.0)),
                                 spec.get("follows")))
    keys = {d.key for d in devices}
    for d in devices:
        if d.follows is not None and (d.follows not in keys or d.follows == d.key):
            raise ScenarioError(source, f"device {d.key!r} follows unknown device {d.follows!r}")
    phases = tuple(
        PhaseDef(
            name=p["name"],
            duration=_dist(p["duration"], source),
            use=_uses(p.get("use", {}), keys, source),
            aliases=tuple(p.get("aliases", ())),
            gap=_dist(p["gap"], source) if "gap" in p else None,
            probability=float(p.get("probability", 1.0)),
        )
        for p in raw["phases"]
    )
    if not phases:
        raise ScenarioError(source, "a scenario needs phases")
    return Scenario(
        name=raw["name"],
        title=raw.get("title", raw["name"]),
        procedure_type=raw.get("procedure_type", raw["name"]),
        devices=tuple(devices),
        phases=phases,
        generic=_uses(raw.get("generic", {}).get("use", {}), keys, source),
        gap=_dist(raw.get("gap", {"median_s": 60, "sigma": 0.5}), source),
        lead_in=_dist(raw.get("lead_in", {"median_s": 600, "sigma": 0.3}), source),
        lead_out=_dist(raw.get("lead_out", {"median_s": 300, "sigma": 0.3}), source),
        turnover=_dist(raw.get("turnover", {"median_s": 1800, "sigma": 0.3, "min_s": 600}), source),
        setup_s=float(raw.get("setup_s", 300)),
        cleanup_s=float(raw.get("cleanup_s", 120)),
        faults=tuple(raw.get("faults", ())),
    )
