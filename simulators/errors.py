"""Errors of the simulators.

    SimError
     ├── ScenarioError    a scenario file that cannot be loaded (unknown device family, bad durations)
     ├── TimelineError    a phase timeline CSV that cannot be read (missing columns, end before start)
     ├── FaultSpecError   a ``--fault`` specification that does not parse
     └── RecordingError   a recording file that is not ours, or a broker that refused a message
"""

from __future__ import annotations

__all__ = ["FaultSpecError", "RecordingError", "ScenarioError", "SimError", "TimelineError"]


class SimError(Exception):
    """Base class of every simulator error."""


class ScenarioError(SimError):
    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail


class TimelineError(SimError):
    def __init__(self, source: str, detail: str, *, line: int | None = None) -> None:
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {detail}")
        self.source = source
        self.line = line
        self.detail = detail


class FaultSpecError(SimError):
    def __init__(self, spec: str, detail: str) -> None:
        super().__init__(f"bad fault {spec!r}: {detail}")
        self.spec = spec
        self.detail = detail


class RecordingError(SimError):
    def __init__(self, source: str, detail: str) -> None:
        super().__init__(f"{source}: {detail}")
        self.source = source
        self.detail = detail
