"""Migrations: idempotent, least privilege, samples_1m with the columns the dashboard reads."""

from __future__ import annotations

import uuid

import psycopg
import pytest

from ingest.migrate import migrate
from tests.support.harness import Database


def test_migrations_run_twice(db: Database) -> None:
    assert migrate(db.dsn(), timescale="on" if db.variant == "timescale" else "off") == []
    keys = {r[0] for r in db.query("SELECT key FROM schema_migrations")}
    assert {"001_core", "002_roles"} <= keys
    assert ("003_samples_1m.plain" in keys) == (db.variant == "plain")
    assert ("004_samples_1m.timescale" in keys) == (db.variant == "timescale")


def test_fresh_database_migrates_twice(pg) -> None:
    name = f"m_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        first = migrate(pg.dsn(name), timescale="off")
        assert first[:2] == ["001_core", "002_roles"] and "003_samples_1m.plain" in first
        assert migrate(pg.dsn(name), timescale="off") == []
    finally:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_a_plain_install_moves_to_timescaledb(pg) -> None:
    """A database that started on plain PostgreSQL, migrated again once the extension is there: hypertables
    with the rows kept, samples_1m a continuous aggregate materialised from them, no plain refresh left."""
    if not pg.timescaledb:
        pytest.skip("timescaledb extension not installed on this machine (runs where it is)")
    name = f"m_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        assert "003_samples_1m.plain" in migrate(pg.dsn(name), timescale="off")
        with psycopg.connect(pg.dsn(name), autocommit=True) as conn:
            conn.execute("INSERT INTO samples (device_id, metric, ts, value, seq) SELECT 'd1', 'p',"
                         " now() - g * interval '1 second', g, g FROM generate_series(1, 600) g")
            conn.execute("REFRESH MATERIALIZED VIEW samples_1m")
        applied = migrate(pg.dsn(name), timescale="auto")
        assert applied == ["003_hypertables.timescale", "004_samples_1m.timescale"]
        with psycopg.connect(pg.dsn(name), autocommit=True) as conn:
            def one(sql: str) -> object:
                return conn.execute(sql).fetchone()[0]  # type: ignore[index,arg-type]
            assert one("SELECT count(*) FROM timescaledb_information.hypertables") == 2
            assert one("SELECT count(*) FROM timescaledb_information.continuous_aggregates"
                       " WHERE view_name = 'samples_1m'") == 1
            assert one("SELECT count(*) FROM pg_matviews WHERE matviewname = 'samples_1m'") == 0
            assert one("SELECT to_regprocedure('refresh_samples_1m()') IS NULL") is True
            assert one("SELECT count(*) FROM samples") == 600
            assert one("SELECT sum(n) FROM samples_1m") == 600
        assert migrate(pg.dsn(name), timescale="auto") == []
    finally:
        with psycopg.connect(pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_samples_1m_shape_and_grants(db: Database) -> None:
    cols = db.query("SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute"
                    " WHERE attrelid = 'samples_1m'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum")
    assert cols == [("device_id", "text"), ("metric", "text"), ("bucket", "timestamp with time zone"),
                    ("n", "bigint"), ("min_value", "double precision"), ("max_value", "double precision"),
                    ("avg_value", "double precision")]
    with psycopg.connect(db.reader_dsn) as conn:
        conn.execute("SELECT * FROM samples_1m LIMIT 1").fetchall()
    if db.variant == "plain":
        with psycopg.connect(db.writer_dsn, autocommit=True) as conn:
            assert conn.execute("SELECT refresh_samples_1m()").fetchone() == (True,)


@pytest.mark.parametrize("sql", ["DROP TABLE samples", "CREATE TABLE evil (x int)", "DELETE FROM samples",
                                 "REFRESH MATERIALIZED VIEW samples_1m"])
def test_writer_role_cannot_change_schema(db: Database, sql: str) -> None:
    """S8: the ingest role cannot drop, create or delete."""
    if db.variant == "timescale" and sql.startswith("REFRESH"):
        pytest.skip("a continuous aggregate is refreshed by its policy")
    with psycopg.connect(db.writer_dsn, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql)


def test_no_transaction_marker_runs_statements_outside_a_transaction(db: Database, monkeypatch) -> None:
    """The path 004_samples_1m.timescale.sql takes, proven on plain PostgreSQL with a statement that refuses a
    transaction block just like a WITH DATA continuous aggregate."""
    import ingest.migrate as m

    extra = m.Migration(900, "any", "test_concurrent_index",
                        "-- ortel:no-transaction\n-- a comment; with a semicolon\n"
                        "CREATE INDEX CONCURRENTLY IF NOT EXISTS samples_seq_test ON samples (seq);\n"
                        "SELECT 'one;two';\n")
    shipped = m.discover()
    monkeypatch.setattr(m, "discover", lambda: [*shipped, extra])
    mode = "on" if db.variant == "timescale" else "off"
    assert migrate(db.dsn(), timescale=mode) == ["900_test_concurrent_index"]
    assert migrate(db.dsn(), timescale=mode) == []
    assert db.scalar("SELECT count(*) FROM pg_indexes WHERE indexname = 'samples_seq_test'") == 1
