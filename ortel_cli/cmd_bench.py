"""``ortel bench``: reproducible throughput and latency figures on a private broker and database.

The scripts live in ``bench/`` at the repository root (one per figure); results go to ``bench/results/*.json``
and a Markdown section is appended to ``docs/benchmarks.md``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

REPO_ROOT = Path(__file__).resolve().parent.parent


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench_cmd(
        quick: Annotated[bool, typer.Option("--quick", help="Smaller sizes and shorter runs (~3 minutes).")] = False,
        only: Annotated[
            list[str] | None,
            typer.Option("--only", help="Run only this figure (repeatable): ceiling, naive, ingest, e2e, scaling, "
                         "latency, edge, dashboard, profile."),
        ] = None,
        runs: Annotated[int, typer.Option("--runs", min=1, help="Runs per figure (median, min, max).")] = 3,
        no_docs: Annotated[bool, typer.Option("--no-docs", help="Do not append to docs/benchmarks.md.")] = False,
    ) -> None:
        """Measure ortel against the database's COPY ceiling and a naive subscriber, side by side."""
        # bench/ is a directory of scripts next to the packages, not an installed package.
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        from runtime import logs

        logs.configure(level="warning")
        from bench.runner import run_bench, select

        try:
            figures = select(only)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--only") from None
        command = "ortel bench " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else "ortel bench"
        report, path = run_bench(
            figures=figures, runs=runs, quick=quick, command=command.strip(),
            docs=None if no_docs else REPO_ROOT / "docs" / "benchmarks.md",
        )
        from bench.markdown import render

        typer.echo(render(report, results_file=str(path)))
        if report.errors:
            typer.echo(f"{len(report.errors)} figure(s) failed: {', '.join(report.errors)}", err=True)
