"""``ortel demo`` (the whole system, private servers under .ortel/) and ``ortel config-docs``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
    app.command("config-docs")(config_docs)


def demo(
    directory: Annotated[Path, typer.Option("--dir", envvar="ORTEL_DEMO_DIR", help="Where servers, secrets, "
                                            "outboxes and logs live.")] = Path(".ortel"),
    port: Annotated[int, typer.Option(envvar="ORTEL_DEMO_DASHBOARD_PORT", help="Dashboard port.")] = 8050,
    rooms: Annotated[int, typer.Option(min=1, max=12, help="Operating rooms (one gateway each).")] = 4,
    speed: Annotated[float, typer.Option(min=0.1, help="Simulated time runs this many times faster.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Seed of the simulators.")] = 7,
) -> None:
    """Run broker, database, ingest, dashboard and simulated operating rooms until Ctrl-C."""
    import threading

    from ortel_cli.demo import install_signal_handlers, run_demo
    from runtime.logs import configure

    configure(level="warning")
    stop = threading.Event()
    install_signal_handlers(stop)
    run_demo(directory=directory.resolve(), dashboard_port=port, rooms=rooms, speed=speed, seed=seed, stop=stop)


def config_docs(
    write: Annotated[bool, typer.Option(help="Update README.md in place.")] = False,
    readme: Annotated[Path, typer.Option(help="README to update.")] = Path("README.md"),
) -> None:
    """Print (or write into README.md) the ORTEL_* configuration reference generated from the settings models."""
    from ortel_cli.config_docs import render
    from ortel_cli.config_docs import write as write_readme

    if write:
        typer.echo("README.md updated" if write_readme(readme) else "README.md already up to date")
    else:
        typer.echo(render())
