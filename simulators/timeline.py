"""Recorded phase timelines: ``case_id,phase,start_s,end_s`` (seconds from case start), one row per phase.

Phase names are kept exactly as written; the scenario decides what they mean (``Scenario.match``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from simulators.errors import TimelineError

__all__ = ["COLUMNS", "TimelineCase", "TimelinePhase", "parse_timeline", "read_timeline", "write_timeline"]

COLUMNS = ("case_id", "phase", "start_s", "end_s")


@dataclass(frozen=True, slots=True)
class TimelinePhase:
    phase: str
    start_s: float
    end_s: float


@dataclass(frozen=True, slots=True)
class TimelineCase:
    case_id: str
    phases: tuple[TimelinePhase, ...]  # sorted by start

    @property
    def end_s(self) -> float:
        return max(p.end_s for p in self.phases)


def read_timeline(path: str | Path) -> list[TimelineCase]:
    return parse_timeline(Path(path).read_text(encoding="utf-8"), source=str(path))


def parse_timeline(text: str, *, source: str = "<timeline>") -> list[TimelineCase]:
    """Cases in order of first appearance; raises ``TimelineError`` naming the line of a bad row."""
    reader = csv.DictReader(io.StringIO(text))
    missing = set(COLUMNS) - set(reader.fieldnames or ())
    if missing:
        raise TimelineError(source, f"missing columns {sorted(missing)}; need {','.join(COLUMNS)}")
    cases: dict[str, list[TimelinePhase]] = {}
    for lineno, row in enumerate(reader, start=2):
        case_id, phase = (row["case_id"] or "").strip(), (row["phase"] or "").strip()
        if not case_id or not phase:
            raise TimelineError(source, "empty case_id or phase", line=lineno)
        try:
            start, end = float(row["start_s"]), float(row["end_s"])
        except (TypeError, ValueError):
            raise TimelineError(source, f"start_s/end_s not numbers: {row['start_s']!r}, {row['end_s']!r}",
                                line=lineno) from None
        if not 0 <= start <= end:
            raise TimelineError(source, f"need 0 <= start_s <= end_s, got {start}..{end}", line=lineno)
        cases.setdefault(case_id, []).append(TimelinePhase(phase, start, end))
    if not cases:
        raise TimelineError(source, "no phases")
    return [TimelineCase(cid, tuple(sorted(ps, key=lambda p: (p.start_s, p.end_s)))) for cid, ps in cases.items()]


def write_timeline(cases: Iterable[TimelineCase]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for case in cases:
        for p in case.phases:
            writer.writerow((case.case_id, p.phase, _num(p.start_s), _num(p.end_s)))
    return out.getvalue()


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(x)
