"""The ``ortel`` command. Each subcommand lives in a ``cmd_*`` module that reads its component's settings once
and calls that component's ``run``; nothing heavy is imported until a subcommand runs."""

from __future__ import annotations

import typer

from ortel_cli import cmd_agent, cmd_bench, cmd_db, cmd_demo, cmd_ingest, cmd_security, cmd_sim, cmd_web

app = typer.Typer(
    name="ortel",
    help="Open-source telemetry for surgical devices.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for module in (cmd_agent, cmd_ingest, cmd_db, cmd_web, cmd_sim, cmd_demo, cmd_bench, cmd_security):
    module.register(app)

if __name__ == "__main__":
    app()
