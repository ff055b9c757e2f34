"""Storing numbered records (SQL shell): samples and events through COPY into per-connection staging tables
and ``INSERT ... ON CONFLICT DO NOTHING`` into the real ones, then the alarm and procedure intervals.

Redelivered records conflict on the unique keys (samples (device_id, metric, ts), events (device_id, seq,
ts)) and insert nothing; the difference between staged and inserted rows is counted as conflicts. A conflict
with a sample of another seq is no redelivery (a device clock that stepped back): that record's samples are
dead-lettered as ``ts_collision`` instead of vanishing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

from ingest.rows import event_row, samples_copy
from ingest.timeconv import ts
from wire import Event, EventKind, ProcedureEvent, TelemetryBatch

__all__ = ["STAGING_DDL", "Collision", "Stored", "store_events", "store_procedures", "store_samples"]

# Temporary tables live per connection and are emptied at each commit; created once per pooled connection.
STAGING_DDL = (
    "CREATE TEMP TABLE IF NOT EXISTS ingest_stage_samples"
    " (series int4, ts_us bigint, value float8, seq bigint) ON COMMIT DELETE ROWS",
    "CREATE TEMP TABLE IF NOT EXISTS ingest_stage_events"
    " (device_id text, seq bigint, ts_us bigint, kind text, code text, severity text, text text,"
    " case_id text, attrs jsonb) ON COMMIT DELETE ROWS",
)

_US = "timestamptz 'epoch' + {col} * interval '1 microsecond'"  # exact: interval arithmetic is integer µs


@dataclass(frozen=True, slots=True)
class Collision:
    """One dead-lettered record's colliding samples."""

    gateway_id: str
    device_id: str
    seq: int
    samples: int
    topic: str
    detail: str


@dataclass(frozen=True, slots=True)
class Stored:
    inserted: int
    conflicts: int  # staged rows already stored: redeliveries, and the collisions below
    # records with samples at a stored (device, metric, ts) of another seq: those samples are dead-lettered
    collisions: tuple[Collision, ...] = ()


def store_samples(cur: psycopg.Cursor, batches: Sequence[TelemetryBatch]) -> Stored:
    if not batches:
        return Stored(0, 0)
    shaped = samples_copy(batches)
    with cur.copy("COPY ingest_stage_samples FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(shaped.data)
    cur.execute(
        "INSERT INTO samples (device_id, metric, ts, value, seq)"
        f" SELECT k.device_id, k.metric, {_US.format(col='s.ts_us')}, s.value, s.seq"
        " FROM ingest_stage_samples s"
        " JOIN unnest(%s::text[], %s::text[]) WITH ORDINALITY AS k(device_id, metric, series) ON k.series = s.series"
        " ON CONFLICT DO NOTHING",
        (list(shaped.devices), list(shaped.metrics)),
    )
    inserted = max(cur.rowcount, 0)
    staged = shaped.rows
    collisions = _collisions(cur, batches, shaped.devices, shaped.metrics) if staged > inserted else ()
    cur.execute("TRUNCATE ingest_stage_samples")  # the per-message fallback reuses the table in one transaction
    last: dict[str, int] = {}
    for batch in batches:
        last[batch.device_id] = max(last.get(batch.device_id, 0), *batch.ts_us)
    devices = sorted(last)
    # Lock in key order first: two ingest processes of one shared group may hold batches of the same devices,
    # and an UPDATE ... FROM unnest locks in plan order, which could deadlock them (retried, but noisy).
    cur.execute("SELECT 1 FROM devices WHERE device_id = ANY(%s) ORDER BY device_id FOR UPDATE", (devices,))
    cur.execute(
        "UPDATE devices d SET last_sample_at = GREATEST(d.last_sample_at, u.t), last_seen = GREATEST(d.last_seen, u.t)"
        f" FROM (SELECT k.device_id, {_US.format(col='k.t_us')} AS t"
        "       FROM unnest(%s::text[], %s::bigint[]) AS k(device_id, t_us)) u WHERE d.device_id = u.device_id",
        (devices, [last[d] for d in devices]),
    )
    return Stored(inserted, staged - inserted, collisions)


# A staged sample whose key (device, metric, ts) is taken by a sample of ANOTHER record (seq) is not a
# redelivery: the device's clock stepped back, or two gateways report one device id. The stored sample stays;
# the newcomer is kept as a dead letter, one per colliding record, so nothing is dropped silently.
_COLLISIONS = f"""
WITH c AS (
    SELECT g.gateway_id, k.device_id, s.seq, count(*) AS n,
           format('ortel/v1/%%s/dev/%%s/telemetry', g.gateway_id, k.device_id) AS topic,
           convert_to(json_build_object('device_id', k.device_id, 'seq', s.seq, 'samples',
               json_agg(json_build_object('metric', k.metric, 'ts_us', s.ts_us, 'value', s.value)
                        ORDER BY s.ts_us, k.metric))::text, 'UTF8') AS payload,
           format('%%s sample(s) of seq %%s have the device time of stored samples of seq %%s (first at %%s): '
                  'kept here, not stored; did the device clock step back?', count(*), s.seq,
                  string_agg(DISTINCT x.seq::text, ', '), min(x.ts)) AS detail
    FROM ingest_stage_samples s
    JOIN unnest(%s::text[], %s::text[]) WITH ORDINALITY AS k(device_id, metric, series) ON k.series = s.series
    JOIN unnest(%s::text[], %s::text[]) AS g(device_id, gateway_id) ON g.device_id = k.device_id
    JOIN samples x ON x.device_id = k.device_id AND x.metric = k.metric AND x.ts = {_US.format(col='s.ts_us')}
    WHERE x.seq <> s.seq
    GROUP BY g.gateway_id, k.device_id, s.seq
), letters AS (
    INSERT INTO dead_letters (topic, payload, reason, detail, gateway_id, device_id)
    SELECT topic, payload, 'ts_collision', detail, gateway_id, device_id FROM c
)
SELECT gateway_id, device_id, seq, n, topic, detail FROM c ORDER BY device_id, seq
"""


def _collisions(cur: psycopg.Cursor, batches: Sequence[TelemetryBatch], devices: Sequence[str],
                metrics: Sequence[str]) -> tuple[Collision, ...]:
    owner = {b.device_id: b.gateway_id for b in batches}
    cur.execute(_COLLISIONS, (list(devices), list(metrics), list(owner), list(owner.values())))
    return tuple(Collision(*row) for row in cur.fetchall())


def store_events(cur: psycopg.Cursor, events: Sequence[Event]) -> Stored:
    if not events:
        return Stored(0, 0)
    with cur.copy("COPY ingest_stage_events FROM STDIN") as copy:
        for event in events:
            row = event_row(event)
            copy.write_row((*row[:8], row[8].decode()))
    cur.execute(
        "INSERT INTO events (device_id, seq, ts, kind, code, severity, text, case_id, attrs)"
        f" SELECT device_id, seq, {_US.format(col='ts_us')}, kind, code, severity, text, case_id, attrs"
        " FROM ingest_stage_events ON CONFLICT DO NOTHING"
    )
    inserted = max(cur.rowcount, 0)
    cur.execute("TRUNCATE ingest_stage_events")
    for event in events:
        _alarm(cur, event)
    return Stored(inserted, len(events) - inserted)


def _alarm(cur: psycopg.Cursor, event: Event) -> None:
    """Alarm intervals, tolerant of redelivery and of a clear that arrives before its raise."""
    if event.kind is EventKind.ALARM_RAISED:
        cur.execute(
            "INSERT INTO alarms (device_id, code, severity, text, raised_at, cleared_at)"
            " VALUES (%(d)s, %(c)s, %(s)s, %(x)s, %(t)s, (SELECT min(ts) FROM events WHERE device_id = %(d)s"
            "   AND kind = 'alarm_cleared' AND code = %(c)s AND ts >= %(t)s))"
            " ON CONFLICT DO NOTHING",
            {"d": event.device_id, "c": event.code, "s": event.severity, "x": event.text, "t": ts(event.ts_us)},
        )
    elif event.kind is EventKind.ALARM_CLEARED:
        cur.execute(
            "UPDATE alarms SET cleared_at = %(t)s WHERE device_id = %(d)s AND code = %(c)s"
            " AND cleared_at IS NULL AND raised_at <= %(t)s",
            {"d": event.device_id, "c": event.code, "t": ts(event.ts_us)},
        )


_CASE = """
INSERT INTO procedures AS p (case_id, gateway_id, room, procedure_type, started_at, ended_at)
VALUES (%(case)s, %(gw)s, %(room)s, %(type)s, %(t)s, %(end)s)
ON CONFLICT (case_id) DO UPDATE SET
    started_at = CASE WHEN %(kind)s = 'case_start' THEN EXCLUDED.started_at
                      ELSE LEAST(p.started_at, EXCLUDED.started_at) END,
    ended_at = COALESCE(EXCLUDED.ended_at, p.ended_at)
"""


def store_procedures(cur: psycopg.Cursor, events: Sequence[ProcedureEvent]) -> None:
    """Cases and phases, stored with the device time exactly as given. Every event upserts its case, so a
    gateway that comes up mid-case still yields a case row; case_start, when it arrives, sets started_at."""
    for ev in events:
        t = ts(ev.ts_us)
        cur.execute(
            _CASE,
            {
                "case": ev.case_id, "gw": ev.gateway_id, "room": ev.room, "type": ev.procedure_type,
                "t": t, "end": t if ev.kind == "case_end" else None, "kind": ev.kind,
            },
        )  # fmt: skip
        if ev.kind == "phase_start":
            cur.execute(
                "INSERT INTO procedure_phases (case_id, phase, started_at) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (ev.case_id, ev.phase, t),
            )
        elif ev.kind == "phase_end":
            cur.execute(
                "UPDATE procedure_phases SET ended_at = %(t)s WHERE case_id = %(c)s AND phase = %(p)s"
                " AND ended_at IS NULL AND started_at <= %(t)s",
                {"t": t, "c": ev.case_id, "p": ev.phase},
            )
