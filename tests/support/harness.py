"""Real servers for the suite: one Mosquitto and one PostgreSQL per session, fresh databases per test.

Tests that kill or restart a server ask for a private one with ``make_broker`` / ``make_postgres``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg

from ingest.migrate import migrate
from ortel_cli.stack import Database, MosquittoServer, PostgresServer

TEST_PASSWORD = "test-password"  # the private broker listens on loopback only
BASE_USERS = {"ingest": TEST_PASSWORD, "ortel-admin": TEST_PASSWORD}


def new_broker(directory: Path, **kwargs: object) -> MosquittoServer:
    return MosquittoServer(directory=directory, users=dict(BASE_USERS), **kwargs).start()  # type: ignore[arg-type]


def template_name(variant: str) -> str:
    return f"ortel_template_{variant}"


def prepare_templates(server: PostgresServer) -> list[str]:
    """Migrate a plain template once per session; return the variants this server can run."""
    variants = ["plain"]
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {template_name('plain')}")
        conn.execute(f"CREATE DATABASE {template_name('plain')}")
    migrate(server.dsn(template_name("plain")), timescale="off")
    if server.timescaledb:
        variants.append("timescale")
    return variants


def create_database(server: PostgresServer, variant: str) -> Database:
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        if variant == "plain":
            conn.execute(f"CREATE DATABASE {name} TEMPLATE {template_name('plain')}")
        else:
            # TimescaleDB's background workers attach to databases that have the extension, which makes a
            # template copy fail; migrate a fresh database instead.
            conn.execute(f"CREATE DATABASE {name}")
    if variant == "timescale":
        migrate(server.dsn(name), timescale="on")
    return Database(server=server, name=name, variant=variant)


def drop_database(db: Database) -> None:
    with psycopg.connect(db.server.dsn(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")
