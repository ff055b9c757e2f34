"""``ortel agent --config gateway.toml``: run the edge agent with its configured device adapters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Gateway TOML file (ORTEL_AGENT_* env overrides).")
]


def register(app: typer.Typer) -> None:
    @app.command("agent")
    def agent(config: ConfigOption) -> None:
        """Run the edge agent: device lines in, numbered records out, kept until ingest has committed them."""
        import asyncio
        import signal

        from edge_agent.errors import ConfigError
        from edge_agent.service import adapters_from_settings, run_agent
        from edge_agent.settings import AgentSettings
        from runtime import logs

        try:
            settings = AgentSettings.from_toml(config)
        except ConfigError as exc:
            raise typer.BadParameter(str(exc)) from exc
        logs.configure(level=settings.log_level)

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)  # graceful: seal, commit, send for the grace period
            await run_agent(settings, adapters=adapters_from_settings(settings), stop=stop)

        asyncio.run(main())
