"""S8 (and the database half of S7): least privilege of the roles made by migration 002.

ortel_reader (dashboard) reads; it may acknowledge alarms (acked_at, acked_by) and append to audit_log, and
nothing else. ortel_writer (ingest) appends and updates telemetry; it cannot create, drop, alter, truncate or
delete, and cannot touch the audit trail. Run on every database variant (plain and TimescaleDB).
"""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors

TELEMETRY_TABLES = ("gateways", "devices", "device_firmware", "samples", "events", "alarms", "procedures",
                    "procedure_phases", "received", "watermarks", "seq_gaps", "dead_letters")
DENIED = (errors.InsufficientPrivilege,)


def _denied(dsn: str, sql: str, params: tuple[object, ...] = ()) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, pytest.raises(DENIED):
        conn.execute(sql, params)  # type: ignore[arg-type]


def _allowed(dsn: str, sql: str, params: tuple[object, ...] = ()) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql, params).rowcount  # type: ignore[arg-type]


def _seed(db) -> None:
    _allowed(db.dsn(), "INSERT INTO alarms (device_id, code, severity, raised_at) "
                       "VALUES ('dev-1', 'E1', 'high', now())")
    _allowed(db.dsn(), "INSERT INTO audit_log (actor, action) VALUES ('seed', 'login')")


def test_reader_cannot_write_telemetry(db) -> None:
    _seed(db)
    for table in TELEMETRY_TABLES:
        _denied(db.reader_dsn, f"DELETE FROM {table}")
        _denied(db.reader_dsn, f"TRUNCATE {table}")
    _denied(db.reader_dsn, "INSERT INTO samples (device_id, metric, ts, value, seq) VALUES ('d', 'm', now(), 1, 1)")
    _denied(db.reader_dsn, "INSERT INTO gateways (gateway_id) VALUES ('gw-evil')")
    _denied(db.reader_dsn, "INSERT INTO dead_letters (topic, payload, reason) VALUES ('t', '', 'r')")
    _denied(db.reader_dsn, "UPDATE devices SET room = 'x'")
    _denied(db.reader_dsn, "UPDATE watermarks SET seq = 0")
    _denied(db.reader_dsn, "UPDATE received SET status = 'stored'")


def test_reader_may_acknowledge_alarms_and_nothing_else_in_them(db) -> None:
    _seed(db)
    assert _allowed(db.reader_dsn, "UPDATE alarms SET acked_at = now(), acked_by = 'nurse' WHERE code = 'E1'") == 1
    _denied(db.reader_dsn, "UPDATE alarms SET severity = 'low'")
    _denied(db.reader_dsn, "UPDATE alarms SET cleared_at = now()")
    _denied(db.reader_dsn, "INSERT INTO alarms (device_id, code, severity, raised_at) VALUES ('d', 'c', 'low', now())")
    _denied(db.reader_dsn, "DELETE FROM alarms")
    assert db.scalar("SELECT acked_by FROM alarms WHERE code = 'E1'") == "nurse"


def test_reader_appends_to_audit_log_but_cannot_change_it(db) -> None:
    _seed(db)
    assert _allowed(db.reader_dsn, "INSERT INTO audit_log (actor, action) VALUES ('nurse', 'ack_alarm')") == 1
    _denied(db.reader_dsn, "UPDATE audit_log SET actor = 'someone-else'")
    _denied(db.reader_dsn, "DELETE FROM audit_log")
    _denied(db.reader_dsn, "TRUNCATE audit_log")
    _denied(db.reader_dsn, "ALTER TABLE audit_log DISABLE TRIGGER ALL")
    assert db.scalar("SELECT count(*) FROM audit_log WHERE actor = 'seed'") == 1


def test_reader_cannot_change_the_schema(db) -> None:
    _denied(db.reader_dsn, "CREATE TABLE evil (x int)")
    _denied(db.reader_dsn, "DROP TABLE samples")
    _denied(db.reader_dsn, f"CREATE SCHEMA evil_{db.name}")


def test_writer_cannot_create_drop_or_alter(db) -> None:
    _denied(db.writer_dsn, "CREATE TABLE evil (x int)")
    _denied(db.writer_dsn, "CREATE TABLE public.evil (x int)")
    _denied(db.writer_dsn, f"CREATE SCHEMA evil_{db.name}")
    for table in ("samples", "events", "devices", "audit_log", "schema_migrations"):
        _denied(db.writer_dsn, f"DROP TABLE {table}")
    _denied(db.writer_dsn, "ALTER TABLE samples ADD COLUMN evil int")
    _denied(db.writer_dsn, "CREATE INDEX evil ON samples (value)")
    _denied(db.writer_dsn, "TRUNCATE samples")
    _denied(db.writer_dsn, "DELETE FROM samples")
    _denied(db.writer_dsn, "CREATE ROLE evil SUPERUSER")
    assert db.scalar("SELECT count(*) FROM pg_tables WHERE tablename = 'evil'") == 0


def test_writer_cannot_touch_the_audit_trail_or_the_migration_ledger(db) -> None:
    _seed(db)
    _denied(db.writer_dsn, "INSERT INTO audit_log (actor, action) VALUES ('ingest', 'forged')")
    _denied(db.writer_dsn, "UPDATE audit_log SET actor = 'x'")
    _denied(db.writer_dsn, "DELETE FROM audit_log")
    _denied(db.writer_dsn, "DELETE FROM schema_migrations")


def test_writer_can_do_its_job(db) -> None:
    """The control: the grants that remain are the ones ingest needs."""
    _allowed(db.writer_dsn, "INSERT INTO samples (device_id, metric, ts, value, seq) VALUES ('d', 'm', now(), 1, 1)")
    _allowed(db.writer_dsn, "INSERT INTO dead_letters (topic, payload, reason) VALUES ('t', '\\x00', 'invalid')")
    _allowed(db.writer_dsn, "INSERT INTO watermarks (gateway_id, stream, seq) VALUES ('g', 'd', 1)")
    assert _allowed(db.writer_dsn, "UPDATE watermarks SET seq = 2 WHERE gateway_id = 'g'") == 1
    assert db.scalar("SELECT count(*) FROM samples") == 1
