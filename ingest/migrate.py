"""Numbered SQL migrations, applied once each under an advisory lock (``ortel db migrate``).

Files in ``ingest/migrations`` are named ``NNN_name.sql`` (always applied), ``NNN_name.timescale.sql``
(only when the ``timescaledb`` extension can be created) or ``NNN_name.plain.sql`` (only when it cannot).
Each file runs in its own transaction and is recorded in ``schema_migrations``; running again is a no-op.
A file whose first line is ``-- ortel:no-transaction`` holds statements that PostgreSQL (or TimescaleDB) refuses
inside a transaction block: its statements run one by one in autocommit, so each must be idempotent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import psycopg

__all__ = ["NO_TRANSACTION", "Migration", "detect_timescaledb", "discover", "migrate", "split_statements"]

_LOCK_KEY = 0x6F7274656C  # "ortel"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")
Variant = Literal["any", "timescale", "plain"]
NO_TRANSACTION = "-- ortel:no-transaction"


@dataclass(frozen=True, order=True)
class Migration:
    version: int
    variant: str
    name: str
    sql: str

    @property
    def key(self) -> str:
        return f"{self.version:03d}_{self.name}" + ("" if self.variant == "any" else f".{self.variant}")

    @property
    def transactional(self) -> bool:
        return not self.sql.lstrip().startswith(NO_TRANSACTION)


def discover() -> list[Migration]:
    found = []
    for entry in resources.files("ingest.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[3] or "any", match[2], entry.read_text()))
    return sorted(found, key=lambda m: (m.version, m.variant != "any", m.name))


def detect_timescaledb(conn: psycopg.Connection) -> bool:
    """True when ``CREATE EXTENSION timescaledb`` works here (installed and preloaded)."""
    row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
    if row is None:
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error:
        return False
    return True


def migrate(conninfo: str, *, timescale: Literal["auto", "on", "off"] = "auto") -> list[str]:
    """Apply pending migrations; return the keys applied now (empty when up to date)."""
    applied_now: list[str] = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " key text PRIMARY KEY, version integer NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            use_ts = _decide(conn, timescale)
            done = {r[0] for r in conn.execute("SELECT key FROM schema_migrations")}
            for mig in discover():
                if mig.key in done or (mig.variant == "timescale" and not use_ts):
                    continue
                if mig.variant == "plain" and use_ts:
                    continue
                _apply(conn, mig)
                applied_now.append(mig.key)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _apply(conn: psycopg.Connection, mig: Migration) -> None:
    record = "INSERT INTO schema_migrations (key, version) VALUES (%s, %s)"
    if mig.transactional:
        with conn.transaction():
            conn.execute(mig.sql)  # trusted files shipped with the package
            conn.execute(record, (mig.key, mig.version))
        return
    for statement in split_statements(mig.sql):
        conn.execute(statement)  # autocommit: one statement, one transaction
    conn.execute(record, (mig.key, mig.version))


def split_statements(sql: str) -> list[str]:
    """Split a migration at top-level semicolons (outside quotes, dollar quotes and comments)."""
    statements: list[str] = []
    current: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == "'":
            end = sql.find("'", i + 1)
            end = n - 1 if end < 0 else end
            current.append(sql[i : end + 1])
            i = end + 1
            continue
        tag = _DOLLAR.match(sql, i)
        if tag:
            end = sql.find(tag[0], tag.end())
            end = n if end < 0 else end + len(tag[0])
            current.append(sql[i:end])
            i = end
            continue
        if ch == ";":
            statements.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    statements.append("".join(current).strip())
    return [s for s in statements if s]


_DOLLAR = re.compile(r"\$[A-Za-z_]*\$")


def _decide(conn: psycopg.Connection, timescale: str) -> bool:
    if timescale == "off":
        return False
    available = detect_timescaledb(conn)
    if timescale == "on" and not available:
        raise RuntimeError("timescale=on but the timescaledb extension cannot be created on this server")
    return available
