"""``ortel dashboard``: serve the dashboard; ``ortel dashboard add-user NAME``: create or change a login."""

from __future__ import annotations

import getpass
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    dash_app = typer.Typer(help="The web dashboard for clinical engineers.")

    @dash_app.callback(invoke_without_command=True)
    def serve(
        ctx: typer.Context,
        host: Annotated[str | None, typer.Option(help="Bind address (default from settings: 127.0.0.1)")] = None,
        port: Annotated[int | None, typer.Option(help="Port (default from settings: 8050)")] = None,
    ) -> None:
        """Serve the dashboard (settings from ORTEL_DASHBOARD_*; production: gunicorn dashboard.wsgi:server)."""
        if ctx.invoked_subcommand is not None:
            return
        from werkzeug.serving import make_server

        from dashboard.app import close, create_app
        from dashboard.settings import DashboardSettings
        from runtime import logs

        overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
        settings = DashboardSettings(**overrides)  # type: ignore[arg-type]
        logs.configure(level=settings.log_level)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines (every poll is one)
        log = logs.get("dashboard")
        if not settings.credentials_file.exists():
            log.warning("no credentials file: nobody can log in", path=str(settings.credentials_file),
                        hint="ortel dashboard add-user NAME")
        app = create_app(settings)
        server = make_server(settings.host, settings.port, app.server, threaded=True)
        signal.signal(signal.SIGTERM, _interrupt)  # SIGTERM stops like Ctrl-C: close the pool, then exit
        log.info("dashboard listening", url=f"http://{settings.host}:{server.server_port}/")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
            close(app)
            log.info("dashboard stopped")

    @dash_app.command("add-user")
    def add_user(
        name: Annotated[str, typer.Argument(help="Login name")],
        credentials_file: Annotated[Path | None, typer.Option(help="Default from settings")] = None,
        password_env: Annotated[str | None, typer.Option(help="Read the password from this env variable")] = None,
    ) -> None:
        """Add or change a login in the credentials file (scrypt hash; the file is created mode 600)."""
        import os

        from dashboard.credentials import add_user as add
        from dashboard.settings import DashboardSettings

        path = credentials_file or DashboardSettings().credentials_file
        password = os.environ[password_env] if password_env else getpass.getpass(f"Password for {name}: ")
        add(path, name, password)
        typer.echo(f"{name} written to {path}")

    app.add_typer(dash_app, name="dashboard")


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
