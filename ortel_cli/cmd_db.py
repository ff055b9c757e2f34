"""``ortel db migrate``: apply the numbered SQL migrations (idempotent, advisory-locked)."""

from __future__ import annotations

from typing import Annotated, Literal

import typer


def register(app: typer.Typer) -> None:
    db = typer.Typer(help="Database schema.", no_args_is_help=True)

    @db.command("migrate")
    def migrate_cmd(
        dsn: Annotated[str, typer.Option(envvar="ORTEL_DB_DSN", help="libpq conninfo of the schema owner")],
        timescale: Annotated[str, typer.Option(help="auto | on | off")] = "auto",
    ) -> None:
        """Apply pending migrations; TimescaleDB features are used when the extension is available."""
        from ingest.migrate import migrate

        mode: Literal["auto", "on", "off"] = timescale  # type: ignore[assignment]
        applied = migrate(dsn, timescale=mode)
        typer.echo("up to date" if not applied else "applied: " + ", ".join(applied))

    app.add_typer(db, name="db")
