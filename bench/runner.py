"""``ortel bench``: start the private servers once, run the selected figures, write JSON and Markdown.

A figure that fails (or needs a component this checkout lacks) is recorded under ``errors`` with its reason
and the others still run: a benchmark run should say as much as it can.
"""

from __future__ import annotations

import importlib
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from bench.context import BenchContext
from bench.harness import REPO_ROOT, BenchStack, load_average, machine_info, versions
from bench.markdown import render
from bench.results import Metric, Report

__all__ = ["FIGURES", "Figure", "run_bench"]


@dataclass(frozen=True)
class Figure:
    name: str
    target: str  # "module:function"
    steps_per_run: int  # progress-bar units per run
    what: str
    paired: bool = False  # measured in rounds (one run of each paired figure per round), for paired ratios

    def load(self) -> Callable[[BenchContext], list[Metric]]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)  # type: ignore[no-any-return]


FIGURES: tuple[Figure, ...] = (
    Figure("ceiling", "bench.ceiling:run", 2, "raw COPY into samples (plain and idempotent)", paired=True),
    Figure("naive", "bench.naive:run", 1, "tutorial subscriber, one INSERT + commit per sample", paired=True),
    Figure("ingest", "bench.ingest_path:run", 1, "broker -> ingest -> db, pre-encoded batches", paired=True),
    Figure("e2e", "bench.end_to_end:run", 1, "simulator -> edge agent -> broker -> ingest -> db", paired=True),
    Figure("scaling", "bench.ingest_path:run_scaling", 3, "1, 2 and 4 ingest processes", paired=True),
    Figure("latency", "bench.latency:run", 5, "device time -> row visible at 10k, 25k and 50k samples/s"),
    Figure("edge", "bench.edge:run", 1, "outbox enqueue, backlog replay, agent RSS/CPU"),
    Figure("dashboard", "bench.dashboard_queries:run", 1, "procedure timeline and 30-day history queries"),
    Figure("profile", "bench.profile_ingest:run", 0, "where ingest spends its time (pyinstrument)"),
)


def select(only: list[str] | None) -> list[Figure]:
    if not only:
        return list(FIGURES)
    known = {f.name for f in FIGURES}
    unknown = set(only) - known
    if unknown:
        raise ValueError(f"unknown figure(s) {sorted(unknown)}; choose from {sorted(known)}")
    return [f for f in FIGURES if f.name in only]


def run_bench(
    *,
    figures: list[Figure],
    runs: int,
    quick: bool,
    command: str,
    results_dir: Path = REPO_ROOT / "bench" / "results",
    docs: Path | None = REPO_ROOT / "docs" / "benchmarks.md",
    scale: float = 1.0,
    show_progress: bool = True,
) -> tuple[Report, Path]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    started = datetime.now(UTC)
    with BenchStack() as stack:
        report = Report(
            started_at=started.strftime("%Y-%m-%d %H:%M UTC"),
            command=command,
            machine=machine_info(),
            versions=versions(stack),
            settings={"runs": runs, "quick": quick, "database": stack.variant},
        )
        report.machine["loadavg_at_start"] = load_average()
        # Paired figures run in rounds (ceiling, naive, ingest, ... then again): a ratio pairs runs measured
        # minutes apart, so slow swings of a shared machine's load hit both sides alike.
        plan = [(f, 1) for _ in range(runs) for f in figures if f.paired]
        plan += [(f, runs) for f in figures if not f.paired]
        start_us = time.time_ns() // 1000 - 600_000_000  # one device-time origin for every round
        total = sum(max(1, f.steps_per_run * n) for f, n in plan)
        columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn())
        with Progress(*columns, disable=not show_progress, transient=False) as progress:
            task = progress.add_task("starting", total=total)
            for fig, n in plan:
                if fig.name in report.errors:
                    progress.advance(task, max(1, fig.steps_per_run * n))
                    continue
                done_before = progress.tasks[0].completed
                _run_figure(fig, stack, report, runs=n, quick=quick, scale=scale, start_us=start_us,
                            status=lambda text: progress.update(task, description=text),
                            advance=lambda: progress.advance(task))
                progress.update(task, completed=done_before + max(1, fig.steps_per_run * n))
        report.machine["loadavg_at_end"] = load_average()
    report.add_ratios()
    path = write_results(report, results_dir, started)
    if docs is not None:
        rel = path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path
        append_docs(docs, render(report, results_file=str(rel)))
    return report, path


def _run_figure(fig: Figure, stack: BenchStack, report: Report, *, runs: int, quick: bool, scale: float,
                start_us: int, status: Callable[[str], None], advance: Callable[[], None]) -> None:
    ctx = BenchContext(stack=stack, runs=runs, quick=quick, scale=scale, start_us=start_us, status=status,
                       advance=advance, notes=report.notes)
    status(f"{fig.name}: {fig.what}")
    started = time.monotonic()
    try:
        for metric in fig.load()(ctx):
            report.add(metric)
    except Exception as exc:  # one broken figure must not hide the others
        report.errors[fig.name] = f"{type(exc).__name__}: {str(exc)[:400]}"
        report.tracebacks[fig.name] = traceback.format_exc()[-4000:]
    report.durations[fig.name] = round(report.durations.get(fig.name, 0.0) + time.monotonic() - started, 1)


def write_results(report: Report, results_dir: Path, started: datetime) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"bench-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_bytes(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    return path


_DOCS_HEADER = """# Benchmarks

Produced by `make bench` (= `ortel bench`); each run appends a section below. Every figure is the median of
N runs with min and max; throughputs are also given as ratios to the database's own COPY ceiling and to a
naive subscriber, measured in the same run on the same private Mosquitto and PostgreSQL. How each figure is
measured: see the docstring of its script under `bench/`.

"""


def append_docs(docs: Path, section: str) -> None:
    docs.parent.mkdir(parents=True, exist_ok=True)
    if not docs.exists():
        docs.write_text(_DOCS_HEADER)
    with docs.open("a") as fh:
        fh.write("\n" + section)
