"""The dashboard's queries, run as the read-only ``ortel_reader`` role against a seeded OR day."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import psycopg
import pytest

from dashboard import db
from dashboard.status import DeviceState, derive_state, summarise_rooms
from dashboard.timeline import pair_activations
from tests.conftest import _variants
from tests.support.harness import Database, create_database, drop_database
from tests.support.seed import RUNNING_CASE, heartbeat, seed_or_day


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seeded" in metafunc.fixturenames:
        metafunc.parametrize("seeded", _variants(), indirect=True, scope="module")


@pytest.fixture(scope="module")
def seeded(request: pytest.FixtureRequest, pg) -> Iterator[Database]:
    database = create_database(pg, request.param)
    seed_or_day(database.dsn(), hz=1.0)
    heartbeat(database.dsn())
    yield database
    drop_database(database)


@pytest.fixture
def conn(seeded: Database) -> Iterator[psycopg.Connection]:
    with psycopg.connect(seeded.reader_dsn, autocommit=True) as c:
        c.execute("SET TIME ZONE 'UTC'")
        yield c


def test_room_devices_derive_every_state(conn: psycopg.Connection) -> None:
    now = db.db_now(conn)
    states = {d.device_id: derive_state(d.facts, now=now) for d in db.room_devices(conn)}
    assert states["esu-or1"] is DeviceState.ONLINE
    assert states["insuff-or1"] is DeviceState.ALARMING
    assert states["stapler-or2"] is DeviceState.SILENT
    assert states["esu-or3"] is DeviceState.UNKNOWN
    assert states["ventilator-or4"] is DeviceState.OFFLINE
    rooms = {r.room: r for r in summarise_rooms(db.room_devices(conn), now=now)}
    assert rooms["OR-1"].case_id == RUNNING_CASE and rooms["OR-1"].phase == "dissection"
    assert rooms["OR-2"].case_id is None  # its case has ended


def test_inventory_completeness_and_utilisation(conn: psycopg.Connection) -> None:
    rows = {r.device_id: r for r in db.inventory(conn)}
    assert len(rows) == 13
    assert rows["insuff-or1"].completeness == pytest.approx(1 - 12 / rows_span(conn, "insuff-or1"))
    assert rows["esu-or2"].completeness < 1.0  # ten batches dropped at the edge
    assert rows["light-or1"].completeness == 1.0
    assert all(r.utilisation is None or 0 <= r.utilisation <= 1 for r in rows.values())
    assert rows["esu-or1"].utilisation > 0
    assert rows["esu-or1"].serial == "ES-10432" and rows["esu-or1"].room == "OR-1"


def rows_span(conn: psycopg.Connection, stream: str) -> int:
    return conn.execute("SELECT max(seq) - min(seq) + 1 FROM received WHERE stream = %s", (stream,)).fetchone()[0]


def test_series_raw_bucketed_and_aggregate_agree_on_extremes(conn: psycopg.Connection) -> None:
    now = db.db_now(conn)
    raw_max = conn.execute("SELECT max(value), count(*) FROM samples WHERE device_id = 'insuff-or1'"
                           " AND metric = 'pressure_mmhg' AND ts >= %s", (now - timedelta(minutes=15),)).fetchone()
    raw = db.series(conn, ["insuff-or1"], now - timedelta(minutes=15), now + timedelta(seconds=1),
                    metrics=["pressure_mmhg"])
    assert len(raw) == 1 and raw[0].lo is None and len(raw[0].t) == raw_max[1]
    assert raw[0].y.max() == pytest.approx(raw_max[0])
    for span in (timedelta(hours=1), timedelta(days=30)):  # raw date_bin buckets, then samples_1m
        got = db.series(conn, ["insuff-or1"], now - span, now + timedelta(seconds=1), points=600)
        by_metric = {s.metric: s for s in got}
        assert set(by_metric) == {"pressure_mmhg", "flow_l_min"}
        s = by_metric["pressure_mmhg"]
        assert s.hi is not None and len(s.t) <= 600
        assert s.hi.max() == pytest.approx(conn.execute(
            "SELECT max(value) FROM samples WHERE device_id = 'insuff-or1' AND metric = 'pressure_mmhg'").fetchone()[0])
        assert (s.t[1:] > s.t[:-1]).all()


def test_procedure_queries(conn: psycopg.Connection) -> None:
    case = db.procedure(conn, RUNNING_CASE)
    assert case is not None and case.ended_at is None and case.room == "OR-1"
    assert [p.phase for p in db.phases(conn, RUNNING_CASE)] == ["preparation", "access", "dissection"]
    lanes = db.case_devices(conn, case)
    ids = [d for d, _ in lanes]
    assert set(ids) == {"esu-or1", "insuff-or1", "light-or1", "camera-or1", "suction-or1"}
    now = db.db_now(conn)
    segments = pair_activations(db.activation_events(conn, ids, case.started_at, now), end=now)
    assert len(segments) == 10 and {s.mode for s in segments} == {"cut", "coag"}
    assert [a.code for a in db.alarms_between(conn, ids, case.started_at, now)] == ["REM_ALERT", "OVERPRESSURE"]
    complete = db.case_completeness(conn, ids, case.started_at, now + timedelta(seconds=1))
    stored, expected = complete["insuff-or1"]
    assert expected - stored == 12  # the open gap of twelve batches
    assert complete["light-or1"][0] == complete["light-or1"][1] > 0
    day = db.procedures(conn, case.started_at.date())
    assert RUNNING_CASE in [p.case_id for p in day]


def test_alarm_filters_and_acknowledgement_is_audited(conn: psycopg.Connection) -> None:
    active = db.alarms(conn, active_only=True)
    assert [(a.device_id, a.severity) for a in active] == [("insuff-or1", "high"), ("warmer-or4", "low")]
    assert [a.code for a in db.alarms(conn, active_only=False, room="OR-2")] == ["OCCLUSION"]
    assert [a.code for a in db.alarms(conn, active_only=False, severity="medium")] == ["REM_ALERT"]
    target = active[0]
    assert db.ack_alarm(conn, device_id=target.device_id, code=target.code, raised_at=target.raised_at,
                        user="engineer")
    assert not db.ack_alarm(conn, device_id=target.device_id, code=target.code, raised_at=target.raised_at,
                            user="someone-else")  # the first acknowledgement stands
    acked = db.alarms(conn, active_only=True, device_id="insuff-or1")[0]
    assert acked.acked_by == "engineer" and acked.acked_at is not None
    audit = conn.execute("SELECT actor, detail->>'code' FROM audit_log WHERE action = 'alarm_ack'").fetchall()
    assert audit == [("engineer", "OVERPRESSURE")]


@pytest.mark.parametrize("sql", [
    "UPDATE alarms SET severity = 'low'",
    "UPDATE audit_log SET actor = 'x'",
    "DELETE FROM audit_log",
    "INSERT INTO samples VALUES ('d', 'm', now(), 1, 1)",
    "UPDATE devices SET connected = false",
])
def test_reader_role_cannot_change_anything_else(conn: psycopg.Connection, sql: str) -> None:
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql)


def test_system_numbers(conn: psycopg.Connection) -> None:
    totals = db.system_totals(conn)
    assert totals["dead_letters_24h"] == 4 and totals["open_gaps"] == 1 and totals["open_gap_records"] == 12
    assert totals["unacked_records"] > 0  # everything after the insufflator's gap waits for it
    assert {r for r, _ in db.dead_letter_reasons(conn)} == {"malformed_json", "invalid", "unsupported_version",
                                                            "topic_mismatch"}
    assert [g.state for g in db.gateways(conn)] == ["online", "online", "offline", "online"]
    assert len(db.ingest_rate(conn).minute) == 60
    assert [g.reason for g in db.gaps(conn, "esu-or2")] == ["dropped_at_edge"]


def test_login_failures_count_since_last_success(conn: psycopg.Connection) -> None:
    for action in ("login_failure", "login_failure", "login_success", "login_failure"):
        db.audit(conn, actor="tester", action=action, detail={})
    assert db.login_failures(conn, "tester", timedelta(minutes=15)) == 1
    assert db.login_failures(conn, "other", timedelta(minutes=15)) == 0


def test_gaps_filled_within_seconds_are_told_apart_from_real_ones(seeded: Database, conn: psycopg.Connection) -> None:
    with psycopg.connect(seeded.dsn(), autocommit=True) as owner:
        owner.execute(
            "INSERT INTO seq_gaps VALUES"
            " ('gw-x', 'reorder-dev', 5, 6, now() - interval '1 hour', now() - interval '1 hour' + interval '1 s',"
            "  'missing'),"
            " ('gw-x', 'reorder-dev', 9, 9, now() - interval '1 hour', now() - interval '59 minutes', 'missing'),"
            " ('gw-x', 'reorder-dev', 20, 22, now() - interval '2 s', NULL, 'missing'),"
            " ('gw-x', 'reorder-dev', 30, 30, now() - interval '1 hour', now() - interval '1 hour', 'dropped_at_edge')")
    try:
        assert db.brief_gaps(conn, "reorder-dev") == 1
        shown = {(g.from_seq, g.reason) for g in db.gaps(conn, "reorder-dev", hide_brief=True)}
        assert shown == {(9, "missing"), (20, "missing"), (30, "dropped_at_edge")}, "open, slow and edge drops stay"
        assert len(db.gaps(conn, "reorder-dev")) == 4
    finally:
        with psycopg.connect(seeded.dsn(), autocommit=True) as owner:
            owner.execute("DELETE FROM seq_gaps WHERE stream = 'reorder-dev'")
