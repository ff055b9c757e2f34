"""``ortel certs``, ``ortel users add|db-passwords`` and ``ortel asyncapi``: secrets and the published contract.

The logic lives in ``ortel_cli.pki`` (certificates), ``ortel_cli.credentials`` (password files) and
``wire.asyncapi`` (the AsyncAPI document); these commands only parse arguments and print where things went.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_PKI = Path(".ortel/pki")
DEFAULT_ASYNCAPI = Path("docs/asyncapi.json")


def register(app: typer.Typer) -> None:
    app.command("certs")(certs)
    users = typer.Typer(help="Broker, dashboard and database logins.", no_args_is_help=True)
    users.command("add")(users_add)
    users.command("db-passwords")(db_passwords)
    users.command("compose-env")(compose_env)
    app.add_typer(users, name="users")
    app.command("asyncapi")(asyncapi)


def certs(
    gateways: Annotated[list[str] | None, typer.Argument(help="Gateway ids to issue client certificates for.")] = None,
    directory: Annotated[Path, typer.Option("--dir", help="PKI directory.")] = DEFAULT_PKI,
    san: Annotated[
        list[str] | None, typer.Option(help="Extra broker host name or IP (repeatable); localhost, 127.0.0.1 "
                                            "and mosquitto are always included.")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=3650, help="Validity of new gateway certificates.")] = 825,
) -> None:
    """Create a private CA and the broker's certificate (once), and a client certificate per gateway (CN = id).

    Existing files are kept: delete a gateway's .crt/.key to re-issue it. Copy ca.crt, broker.crt and
    broker.key to the broker; give each gateway its own .crt/.key and ca.crt; keep ca.key elsewhere.
    """
    import datetime as dt

    from ortel_cli.pki import BROKER_SANS, CertError, Pki

    now = dt.datetime.now(dt.UTC)
    pki = Pki(directory)
    try:
        pki.ensure_broker(now=now, sans=(*BROKER_SANS, *(san or [])))
        for gateway in gateways or []:
            pki.ensure_gateway(gateway, now=now, valid_days=days)
    except CertError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(f"CA:      {pki.ca_cert}  (key {directory / 'ca.key'}: keep it off the broker)")
    typer.echo(f"broker:  {pki.broker_cert}  {pki.broker_key}")
    for gateway in gateways or []:
        typer.echo(f"gateway: {pki.gateway_cert(gateway)}  {pki.gateway_key(gateway)}")


def users_add(
    name: Annotated[str, typer.Argument(help="User name: a gateway id, ingest, ortel-admin, or a person.")],
    password: Annotated[
        str | None, typer.Option(envvar="ORTEL_USER_PASSWORD",
                                 help="The password (prefer the environment variable: a command line is public).")
    ] = None,
    generate: Annotated[bool, typer.Option("--generate", help="Generate a random password and print it once.")] = False,
    broker_passwd: Annotated[
        Path | None, typer.Option("--broker-passwd", help="Mosquitto password file to add the user to.")
    ] = None,
    dashboard: Annotated[
        Path | None, typer.Option("--dashboard", help="Dashboard credentials file to add the user to.")
    ] = None,
) -> None:
    """Add or change a login in the broker's password file and/or the dashboard's credentials file."""
    from ortel_cli.credentials import CredentialError, generate_password, set_dashboard_password, set_mosquitto_password

    if broker_passwd is None and dashboard is None:
        raise typer.BadParameter("name at least one of --broker-passwd FILE and --dashboard FILE")
    if generate and password:
        raise typer.BadParameter("--password and --generate exclude each other")
    if generate:
        password = generate_password()
    elif password is None:
        password = typer.prompt(f"Password for {name}", hide_input=True, confirmation_prompt=True)
    try:
        if broker_passwd is not None:
            set_mosquitto_password(broker_passwd, name, password)
            typer.echo(f"broker login {name!r} written to {broker_passwd} (reload the broker: kill -HUP <pid>)")
        if dashboard is not None:
            set_dashboard_password(dashboard, name, password)
            typer.echo(f"dashboard login {name!r} written to {dashboard}")
    except CredentialError as exc:
        raise typer.BadParameter(str(exc)) from None
    if generate:
        typer.echo(f"password: {password}")


def db_passwords(
    dsn: Annotated[str, typer.Option(envvar="ORTEL_DB_DSN", help="libpq conninfo of the schema owner.")],
) -> None:
    """Set the passwords of ortel_writer / ortel_reader from ORTEL_DB_WRITER_PASSWORD / ORTEL_DB_READER_PASSWORD.

    Run after ``ortel db migrate`` on a server that checks passwords (compose's migrate service does).
    """
    from ortel_cli.security import apply_db_passwords

    wanted = {"ortel_writer": "ORTEL_DB_WRITER_PASSWORD", "ortel_reader": "ORTEL_DB_READER_PASSWORD"}
    passwords = {role: os.environ[var] for role, var in wanted.items() if os.environ.get(var)}
    if not passwords:
        raise typer.BadParameter("set ORTEL_DB_WRITER_PASSWORD and/or ORTEL_DB_READER_PASSWORD")
    apply_db_passwords(dsn, passwords)
    typer.echo("passwords set for: " + ", ".join(sorted(passwords)))


def compose_env(
    directory: Annotated[Path, typer.Option("--dir", help="Secrets directory (created if missing).")] = Path(".ortel"),
    output: Annotated[Path, typer.Option(help="The .env file to write (refuses to overwrite).")] = Path(".env"),
) -> None:
    """Create the development secrets (as `ortel demo` does) and a matching .env for compose.yaml."""
    from ortel_cli.credentials import generate_password
    from ortel_cli.security import compose_env as render_env
    from ortel_cli.security import ensure_dev_secrets

    if output.exists():
        raise typer.BadParameter(f"{output} exists; remove it first (its passwords may be in use)")
    secrets = ensure_dev_secrets(directory)
    text = render_env(secrets, postgres_password=generate_password(), session_key=generate_password(32))
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    typer.echo(f"wrote {output} (0600)")
    typer.echo(secrets.summary())
    typer.echo("The containers run as other users: give them the files they read (they are 0600), e.g.\n"
               f"  chown 1883 {secrets.broker_passwd} {secrets.pki.broker_key}\n"
               f"  chown 10001 {' '.join(str(secrets.pki.gateway_key(g)) for g in secrets.gateways)} "
               f"{secrets.dashboard_credentials}")


def asyncapi(
    output: Annotated[Path, typer.Option(help="Where to write the document.")] = DEFAULT_ASYNCAPI,
    check: Annotated[bool, typer.Option("--check", help="Do not write; fail if the file is out of date.")] = False,
) -> None:
    """Write the AsyncAPI 3.0 document of the ortel/v1 topics, generated from wire/."""
    from wire.asyncapi import render

    text = render()
    if check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            typer.echo(f"{output} is out of date: run `ortel asyncapi`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is up to date")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output}")
