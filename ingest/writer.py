"""One batch, one transaction: state, samples, events, procedures, ledger, watermarks and dead letters.

If the batch transaction fails on bad data (``IntegrityError`` / ``DataError``: COPY stops at the first bad
row, a NUL character, a CHECK), it is rolled back and the batch is written again message by message, each in
its own transaction; a message that still fails is dead-lettered (reason ``constraint``) and the rest are
stored. Any other database error means the store is unavailable: ``StoreUnavailable`` is raised, nothing is
acked, and the caller retries the same batch (the messages stay unacked in the broker meanwhile).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from ingest.classify import Accepted, DeadLetter, Item, ledger_key
from ingest.errors import StoreUnavailable
from ingest.records import STAGING_DDL, store_events, store_procedures, store_samples
from ingest.status import apply_birth, apply_gateway_state, apply_status
from ingest.watermarks import DroppedRange, record
from wire import DeviceBirth, DeviceStatus, Event, EventKind, GatewayState, ProcedureEvent, TelemetryBatch

__all__ = ["Outcome", "Writer", "configure_connection"]

LOGGED_LETTERS = 20  # per batch: a flood of bad input must not flood the log too (the table has them all)
_BAD_DATA = (psycopg.errors.IntegrityError, psycopg.errors.DataError)


@dataclass
class Outcome:
    """What one committed batch did (summed over the fallback's transactions)."""

    samples: int = 0
    events: int = 0
    conflicts: int = 0
    records: int = 0  # numbered records stored or rejected
    gaps_opened: int = 0
    dead_letters: Counter[str] = field(default_factory=Counter)
    marks: dict[tuple[str, str], int] = field(default_factory=dict)
    # the first few dead letters of the batch, for the log: (reason, gateway_id, device_id, topic, detail)
    letters: list[tuple[str, str | None, str | None, str, str]] = field(default_factory=list)

    def merge(self, other: Outcome) -> None:
        self.samples += other.samples
        self.events += other.events
        self.conflicts += other.conflicts
        self.records += other.records
        self.gaps_opened += other.gaps_opened
        self.dead_letters.update(other.dead_letters)
        self.letters.extend(other.letters[: max(0, LOGGED_LETTERS - len(self.letters))])
        for key, seq in other.marks.items():
            self.marks[key] = max(self.marks.get(key, seq), seq)


def configure_connection(conn: psycopg.Connection) -> None:
    """Pool hook for every new connection: staging tables, and no statement left hanging on a dead server."""
    conn.autocommit = True
    for ddl in STAGING_DDL:
        conn.execute(ddl)
    conn.autocommit = False


class Writer:
    def __init__(self, pool: ConnectionPool, *, before_commit: Callable[[Outcome], None] | None = None) -> None:
        self._pool = pool
        self._before_commit = before_commit or (lambda _outcome: None)

    def write(self, items: Sequence[Item]) -> Outcome:
        try:
            try:
                return self._transaction(items)
            except _BAD_DATA:
                return self._one_by_one(items)
        except (psycopg.Error, PoolTimeout) as exc:
            raise StoreUnavailable(exc) from exc

    def _transaction(self, items: Sequence[Item]) -> Outcome:
        with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
            outcome = _write(cur, items)
            self._before_commit(outcome)
        return outcome

    def _one_by_one(self, items: Sequence[Item]) -> Outcome:
        total = Outcome()
        for item in items:
            try:
                total.merge(self._transaction([item]))
            except _BAD_DATA as exc:
                total.merge(self._transaction([_as_constraint(item, exc)]))
        return total


def _as_constraint(item: Item, exc: psycopg.Error) -> DeadLetter:
    diag = exc.diag.message_primary or str(exc)
    if isinstance(item, DeadLetter):  # even the dead letter failed (a NUL in its detail): keep the payload
        return DeadLetter(item.inbound, "constraint", f"{item.reason}: {diag}")
    msg = item.message
    return DeadLetter(
        item.inbound,
        "constraint",
        f"{type(exc).__name__}: {diag}",
        msg.gateway_id,
        getattr(msg, "device_id", None),
        ledger_key(msg),
    )


def _write(cur: psycopg.Cursor, items: Sequence[Item]) -> Outcome:
    out = Outcome()
    letters = [i for i in items if isinstance(i, DeadLetter)]
    accepted: list[Accepted] = []
    for item in items:
        if not isinstance(item, Accepted):
            continue
        if not _apply_state(cur, item.message):
            letters.append(DeadLetter(item.inbound, "unknown_device", "no birth stored for this device",
                                      item.message.gateway_id, getattr(item.message, "device_id", None)))
        elif ledger_key(item.message) is not None:
            accepted.append(item)
    accepted, unknown = _known_devices(cur, accepted)
    letters += unknown
    batches = [a.message for a in accepted if isinstance(a.message, TelemetryBatch)]
    events = [a.message for a in accepted if isinstance(a.message, Event)]
    stored_samples = store_samples(cur, batches)
    stored_events = store_events(cur, events)
    store_procedures(cur, [a.message for a in accepted if isinstance(a.message, ProcedureEvent)])
    # a record whose samples collided is stored, but only with the samples that were new
    collided = {(c.gateway_id, c.device_id, c.seq): c.samples for c in stored_samples.collisions}
    stored = [(k, a.samples - collided.get((k.gateway_id, k.stream, k.seq), 0),
               bool(getattr(a.message, "replay", False)))
              for a in accepted if (k := ledger_key(a.message)) is not None]
    rejected = [d.ledger for d in letters if d.ledger is not None]
    ledger = record(cur, stored=stored, rejected=rejected, dropped=_drops(events))
    _dead_letters(cur, letters)
    out.samples, out.events = stored_samples.inserted, stored_events.inserted
    out.conflicts = stored_samples.conflicts + stored_events.conflicts
    out.records = len(stored) + len(rejected)
    out.gaps_opened = ledger.gaps_opened
    out.dead_letters.update(d.reason for d in letters)
    out.letters = [(d.reason, d.gateway_id, d.device_id, d.inbound.topic, d.detail[:200])
                   for d in letters[:LOGGED_LETTERS]]
    if stored_samples.collisions:
        out.dead_letters["ts_collision"] += len(stored_samples.collisions)
        out.letters += [("ts_collision", c.gateway_id, c.device_id, c.topic, c.detail[:200])
                        for c in stored_samples.collisions[: LOGGED_LETTERS - len(out.letters)]]
    out.marks = {(m.gateway_id, m.stream): m.seq for m in ledger.marks}
    return out


def _apply_state(cur: psycopg.Cursor, msg: object) -> bool:
    if isinstance(msg, GatewayState):
        apply_gateway_state(cur, msg)
    elif isinstance(msg, DeviceBirth):
        apply_birth(cur, msg)
    elif isinstance(msg, DeviceStatus):
        return apply_status(cur, msg)
    return True


def _known_devices(cur: psycopg.Cursor, accepted: list[Accepted]) -> tuple[list[Accepted], list[DeadLetter]]:
    """Records of devices without a stored birth are dead-lettered but not put in the ledger: the birth may
    still be on its way, and the agent's re-send will then succeed (a transient rejection)."""
    wanted = sorted({d for a in accepted if (d := getattr(a.message, "device_id", None))})
    if not wanted:
        return accepted, []
    cur.execute("SELECT device_id FROM devices WHERE device_id = ANY(%s)", (wanted,))
    known = {r[0] for r in cur.fetchall()}
    keep, letters = [], []
    for a in accepted:
        device = getattr(a.message, "device_id", None)
        if device is None or device in known:
            keep.append(a)
        else:
            letters.append(DeadLetter(a.inbound, "unknown_device", f"no birth stored for device {device!r}",
                                      a.message.gateway_id, device))
    return keep, letters


def _drops(events: Sequence[Event]) -> list[DroppedRange]:
    out = []
    for ev in events:
        if ev.kind is not EventKind.OUTBOX_DROP:
            continue
        lo, hi = ev.attrs.get("from_seq"), ev.attrs.get("to_seq")
        if type(lo) is int and type(hi) is int and 1 <= lo <= hi:  # bool is an int subclass: excluded
            out.append(DroppedRange(ev.gateway_id, ev.device_id, lo, hi))
    return out


def _dead_letters(cur: psycopg.Cursor, letters: Sequence[DeadLetter]) -> None:
    if letters:
        cur.executemany(
            "INSERT INTO dead_letters (topic, payload, reason, detail, gateway_id, device_id)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [(d.inbound.topic, d.inbound.payload, d.reason, d.detail.replace("\x00", "\\0")[:2000],
              d.gateway_id, d.device_id) for d in letters],
        )

