"""``ortel ingest``: run the ingest service (MQTT -> PostgreSQL). Configured by ``ORTEL_INGEST_*`` variables."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    def ingest_cmd() -> None:
        """Subscribe to the gateways' telemetry and store it; stops cleanly on SIGTERM or Ctrl-C."""
        import signal
        import threading

        from ingest.service import run_ingest
        from ingest.settings import IngestSettings
        from runtime import logs

        settings = IngestSettings()
        logs.configure(level=settings.log_level)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        run_ingest(settings, stop=stop)
