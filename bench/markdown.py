"""The Markdown section ``ortel bench`` appends to docs/benchmarks.md (pure: a report in, text out)."""

from __future__ import annotations

import math
from typing import Any

from bench.results import Report, evaluate_targets

__all__ = ["render"]


def _fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "x":
        return f"{value:.2f}"
    if unit == "cores":
        return f"{value:.2f}"
    if unit in {"ms", "s", "MiB", "%"}:
        return f"{value:,.1f}"
    return f"{value:,.0f}"


def _metric_rows(report: Report) -> list[str]:
    rows = ["| figure | metric | median | min | max | unit | runs | note |", "|---|---|---:|---:|---:|---|---:|---|"]
    for m in report.metrics.values():
        rows.append(
            f"| {m.figure} | {m.name} | {_fmt(m.median, m.unit)} | {_fmt(m.min, m.unit)} | "
            f"{_fmt(m.max, m.unit)} | {m.unit} | {len(m.runs)} | {m.note} |"
        )
    return rows


def _target_rows(targets: list[dict[str, Any]]) -> list[str]:
    rows = ["| target | measured (median) | met |", "|---|---:|---|"]
    for t in targets:
        measured = "not measured" if t["measured"] is None else f"{t['measured']:,.2f}"
        met = {True: "yes", False: "**no**", None: "n/a"}[t["met"]]
        rows.append(f"| {t['target']} | {measured} | {met} |")
    return rows


def _cpu_rows(report: Report) -> list[str]:
    rows = []
    for m in report.metrics.values():
        cores = m.extra.get("cpu_cores_median")
        if cores:
            parts = ", ".join(f"{k.removesuffix('_cores')} {v:.2f}" for k, v in cores.items())
            rows.append(f"- `{m.key}`: {parts} (cores busy, median run)")
    return rows


def render(report: Report, *, results_file: str) -> str:
    mach = report.machine
    vers = ", ".join(f"{k} {v}" for k, v in report.versions.items())
    lines = [
        f"## Run of {report.started_at}",
        "",
        f"- Command: `{report.command}`",
        f"- Machine: {mach.get('nproc')} CPUs ({mach.get('cpu_model')}), {mach.get('ram_gib')} GiB RAM, "
        f"kernel {mach.get('kernel')}; load average (1/5/15 min) {mach.get('loadavg_at_start')} at start, "
        f"{mach.get('loadavg_at_end')} at end",
        f"- Versions: {vers}",
        f"- Settings: {', '.join(f'{k}={v}' for k, v in report.settings.items())}",
        f"- Raw results: `{results_file}`",
        "",
        "### Figures (median of the runs, with min and max)",
        "",
        *_metric_rows(report),
        "",
        "### Targets",
        "",
        *_target_rows(evaluate_targets(report.metrics)),
        "",
    ]
    cpu = _cpu_rows(report)
    if cpu:
        lines += ["### Where the CPU went", "", *cpu, ""]
    if report.durations:
        lines += ["Seconds per figure: " + ", ".join(f"{k} {v:.0f}" for k, v in report.durations.items()), ""]
    if report.notes:
        lines += ["### Notes", "", *(f"- {n}" for n in report.notes), ""]
    if report.errors:
        lines += ["### Figures that did not run", "", *(f"- `{k}`: {v}" for k, v in report.errors.items()), ""]
    return "\n".join(lines) + "\n"
