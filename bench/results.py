"""Figures as data: measured metrics (median, min, max of N runs), ratios between them, targets (pure).

Ratios pair run i of one metric with run i of the other: both were measured in the same ``ortel bench``
invocation, minutes apart, on the same servers, which is what makes them meaningful on a shared, noisy box.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

__all__ = ["RATIOS", "TARGETS", "Metric", "Report", "evaluate_targets", "merge", "ratio"]


@dataclass(frozen=True)
class Metric:
    figure: str
    name: str
    unit: str
    runs: tuple[float, ...]
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.figure}.{self.name}"

    @property
    def median(self) -> float:
        return float(statistics.median(self.runs)) if self.runs else float("nan")

    @property
    def min(self) -> float:
        return min(self.runs) if self.runs else float("nan")

    @property
    def max(self) -> float:
        return max(self.runs) if self.runs else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "name": self.name,
            "unit": self.unit,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "runs": list(self.runs),
            "note": self.note,
            **({"extra": self.extra} if self.extra else {}),
        }


def merge(a: Metric, b: Metric) -> Metric:
    """One metric from two measurements of it: runs concatenated, per-run CPU shares kept and summarised."""
    per_run = [*a.extra.get("cpu_cores_runs", [a.extra["cpu_cores_median"]] if "cpu_cores_median" in a.extra else []),
               *([b.extra["cpu_cores_median"]] if "cpu_cores_median" in b.extra else [])]
    extra = dict(a.extra)
    if per_run:
        extra["cpu_cores_runs"] = per_run
        extra["cpu_cores_median"] = {
            k: round(statistics.median(r[k] for r in per_run if k in r), 2) for k in per_run[0]
        }
    return Metric(a.figure, a.name, a.unit, a.runs + b.runs, note=a.note, extra=extra)


def ratio(name: str, num: Metric, den: Metric, *, figure: str = "ratios") -> Metric:
    """Per-run ratios num[i] / den[i] (runs paired by index; extra runs of the longer one ignored)."""
    pairs = [(a / b) for a, b in zip(num.runs, den.runs, strict=False) if b]
    return Metric(figure, name, "x", tuple(pairs), note=f"{num.key} / {den.key}, paired by run")


# (ratio name, numerator key, denominator key)
RATIOS: tuple[tuple[str, str, str], ...] = (
    ("e2e / ceiling_idempotent", "e2e.samples_per_s", "ceiling.copy_idempotent"),
    ("ingest / ceiling_idempotent", "ingest.samples_per_s", "ceiling.copy_idempotent"),
    ("ingest / ceiling_plain", "ingest.samples_per_s", "ceiling.copy_plain"),
    ("idempotent / plain copy", "ceiling.copy_idempotent", "ceiling.copy_plain"),
    ("e2e / naive", "e2e.samples_per_s", "naive.samples_per_s"),
    ("ingest / naive", "ingest.samples_per_s", "naive.samples_per_s"),
    ("2 ingest / 1 ingest", "scaling.ingest_x2", "scaling.ingest_x1"),
    ("4 ingest / 1 ingest", "scaling.ingest_x4", "scaling.ingest_x1"),
)


@dataclass(frozen=True)
class Target:
    key: str  # a metric or ratio key
    op: str  # ">=" or "<="
    bound: float
    text: str


TARGETS: tuple[Target, ...] = (
    Target("ratios.e2e / ceiling_idempotent", ">=", 0.5, "end to end >= 0.5 x idempotent COPY ceiling"),
    Target("ratios.e2e / ceiling_idempotent", ">=", 0.8, "stretch: end to end >= 0.8 x ceiling"),
    Target("ratios.ingest / ceiling_idempotent", ">=", 0.5, "broker -> ingest >= 0.5 x ceiling"),
    Target("ratios.e2e / naive", ">=", 25.0, "end to end >= 25 x naive subscriber"),
    Target("ratios.ingest / naive", ">=", 25.0, "broker -> ingest >= 25 x naive subscriber"),
    Target("latency.p99_ms_at_max", "<=", 250.0, "p99 latency <= 250 ms at the highest offered load"),
    Target("ratios.2 ingest / 1 ingest", ">=", 1.6, "2 ingest processes >= 1.6 x one (if DB not the limit)"),
    Target("dashboard.timeline_query", "<=", 300.0, "procedure timeline query <= 300 ms median"),
    Target("dashboard.history_30d_query", "<=", 500.0, "30-day device history <= 500 ms median"),
)


def evaluate_targets(metrics: dict[str, Metric]) -> list[dict[str, Any]]:
    out = []
    for t in TARGETS:
        m = metrics.get(t.key)
        if m is None or not m.runs:
            out.append({"target": t.text, "key": t.key, "measured": None, "met": None})
            continue
        value = m.median
        met = value >= t.bound if t.op == ">=" else value <= t.bound
        out.append({"target": t.text, "key": t.key, "measured": value, "met": met})
    return out


@dataclass
class Report:
    started_at: str
    command: str
    machine: dict[str, Any]
    versions: dict[str, str]
    settings: dict[str, Any]
    metrics: dict[str, Metric] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)  # seconds per figure
    tracebacks: dict[str, str] = field(default_factory=dict)  # JSON only: why a figure failed

    def add(self, metric: Metric) -> None:
        """Add a metric, or append its runs to the one already there (figures measured in rounds)."""
        old = self.metrics.get(metric.key)
        self.metrics[metric.key] = metric if old is None else merge(old, metric)

    def add_ratios(self) -> None:
        for name, num, den in RATIOS:
            if num in self.metrics and den in self.metrics:
                self.add(ratio(name, self.metrics[num], self.metrics[den]))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """A report read back from its JSON (to re-render the Markdown of a past run)."""
        report = cls(started_at=data["started_at"], command=data["command"], machine=data["machine"],
                     versions=data["versions"], settings=data["settings"], notes=list(data.get("notes", [])),
                     errors=dict(data.get("errors", {})), durations=dict(data.get("durations_s", {})))
        for m in data["metrics"]:
            report.metrics[f"{m['figure']}.{m['name']}"] = Metric(
                m["figure"], m["name"], m["unit"], tuple(m["runs"]), note=m["note"], extra=m.get("extra", {}))
        return report

    def as_dict(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at,
            "command": self.command,
            "machine": self.machine,
            "versions": self.versions,
            "settings": self.settings,
            "metrics": [m.as_dict() for m in self.metrics.values()],
            "targets": evaluate_targets(self.metrics),
            "notes": self.notes,
            "errors": self.errors,
            "durations_s": self.durations,
            "tracebacks": self.tracebacks,
        }
