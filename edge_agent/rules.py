"""Local alarm rules (pure): threshold-for-duration and rate-of-change, evaluated on device time.

An alarm raised at the edge reaches the back end ahead of the bulk samples (events are published first) and
keeps working while the uplink is down. Each rule yields ``AlarmChange`` values; the pipeline turns them into
``Event(kind=alarm_raised | alarm_cleared)`` records.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["AlarmChange", "RateRule", "Rule", "RuleEngine", "ThresholdRule"]


@dataclass(frozen=True, slots=True)
class _Match:
    metric: str
    device_type: str | None = None  # fnmatch pattern; None = every device
    device_id: str | None = None

    def applies(self, device_id: str, device_type: str) -> bool:
        return (self.device_type is None or fnmatch.fnmatchcase(device_type, self.device_type)) and (
            self.device_id is None or fnmatch.fnmatchcase(device_id, self.device_id)
        )


@dataclass(frozen=True, slots=True)
class ThresholdRule(_Match):
    """Raise when the value stays above ``above`` (or below ``below``) for ``for_s``; clear when it is back."""

    code: str = ""
    above: float | None = None
    below: float | None = None
    for_s: float = 0.0
    severity: Literal["low", "medium", "high"] = "medium"
    text: str = ""

    def violated(self, value: float) -> bool:
        return (self.above is not None and value > self.above) or (self.below is not None and value < self.below)


@dataclass(frozen=True, slots=True)
class RateRule(_Match):
    """Raise when the value changes faster than ``max_rate_per_s`` between readings; clear when it calms."""

    code: str = ""
    max_rate_per_s: float = 0.0
    severity: Literal["low", "medium", "high"] = "medium"
    text: str = ""


Rule = ThresholdRule | RateRule


@dataclass(frozen=True, slots=True)
class AlarmChange:
    raised: bool
    code: str
    severity: str
    text: str
    ts_us: int
    value: float


@dataclass
class _State:
    since_us: int | None = None  # threshold: condition true since (device time)
    active: bool = False
    last: tuple[int, float] | None = None  # rate: previous (ts_us, value)


@dataclass
class RuleEngine:
    rules: tuple[Rule, ...]
    _state: dict[tuple[str, int], _State] = field(default_factory=dict, init=False)

    def evaluate(
        self, *, device_id: str, device_type: str, ts_us: int, values: dict[str, float | None]
    ) -> list[AlarmChange]:
        changes: list[AlarmChange] = []
        for index, rule in enumerate(self.rules):
            value = values.get(rule.metric)
            if value is None or not rule.applies(device_id, device_type):
                continue
            state = self._state.setdefault((device_id, index), _State())
            step = _threshold if isinstance(rule, ThresholdRule) else _rate
            change = step(rule, state, ts_us, value)  # type: ignore[arg-type]
            if change is not None:
                changes.append(change)
        return changes

    def active(self, device_id: str) -> list[str]:
        return [self.rules[i].code for (dev, i), s in self._state.items() if dev == device_id and s.active]


def _change(rule: Rule, state: _State, *, raised: bool, ts_us: int, value: float) -> AlarmChange:
    state.active = raised
    return AlarmChange(raised=raised, code=rule.code, severity=rule.severity, text=rule.text, ts_us=ts_us,
                       value=value)


def _threshold(rule: ThresholdRule, state: _State, ts_us: int, value: float) -> AlarmChange | None:
    if not rule.violated(value):
        state.since_us = None
        return _change(rule, state, raised=False, ts_us=ts_us, value=value) if state.active else None
    if state.since_us is None:
        state.since_us = ts_us
    held = ts_us - state.since_us >= rule.for_s * 1e6
    if held and not state.active:
        return _change(rule, state, raised=True, ts_us=ts_us, value=value)
    return None


def _rate(rule: RateRule, state: _State, ts_us: int, value: float) -> AlarmChange | None:
    previous, state.last = state.last, (ts_us, value)
    if previous is None or ts_us <= previous[0]:
        return None
    rate = abs(value - previous[1]) / ((ts_us - previous[0]) / 1e6)
    too_fast = rate > rule.max_rate_per_s
    if too_fast != state.active:
        return _change(rule, state, raised=too_fast, ts_us=ts_us, value=value)
    return None
