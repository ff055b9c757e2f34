"""The durable outbox: SQLite in WAL mode, ``synchronous=FULL``, one transaction per batch of records.

A record counts as accepted only once the transaction that gave it its ``seq`` has committed (WAL fsync'd); it
leaves the outbox only when ingest's watermark covers it. ``seq`` per stream lives in the ``streams`` table,
written in the same transaction as the rows, so a restart (even after SIGKILL) never reuses a number.

Bounds and the policy when full (documented in the README, counted in ``drops``): after each append, while the
outbox holds more than ``max_bytes``, or telemetry older than ``max_age_us``, the *oldest telemetry* records are
deleted. Events (alarms, activations, procedure context, the drop reports themselves) are never dropped: the
outbox may exceed its bound with events alone rather than lose one. Each contiguous run of dropped seqs of a
stream is reported by an ``Event(kind=outbox_drop, attrs={from_seq, to_seq, count})`` in that stream, appended
in the same transaction, so ingest can mark the range and let its watermark pass it.

All methods are blocking; the service calls them from one worker thread (``AsyncOutbox``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from edge_agent.errors import OutboxError
from edge_agent.pipeline import PRIORITY_TELEMETRY, Draft
from wire import encode

__all__ = ["AsyncOutbox", "DropRun", "Outbox", "Row", "contiguous_runs"]

T = TypeVar("T")
REPORT_BYTES = 512  # an outbox_drop event with its topic is ~300 bytes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,  -- AUTOINCREMENT: ids (send order) are never reused
    stream      TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    priority    INTEGER NOT NULL,
    topic       TEXT NOT NULL,
    payload     BLOB NOT NULL,
    created_us  INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    UNIQUE (stream, seq)
);
CREATE INDEX IF NOT EXISTS records_priority ON records (priority, id);
CREATE TABLE IF NOT EXISTS streams (
    stream    TEXT PRIMARY KEY,
    next_seq  INTEGER NOT NULL,
    acked     INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS births (
    device_id  TEXT PRIMARY KEY,
    payload    BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us    INTEGER NOT NULL,
    stream   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    topic    TEXT NOT NULL,
    payload  BLOB NOT NULL,
    reason   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS drops (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us     INTEGER NOT NULL,
    stream    TEXT NOT NULL,
    from_seq  INTEGER NOT NULL,
    to_seq    INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    reason    TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Row:
    id: int
    stream: str
    seq: int
    priority: int
    topic: str
    payload: bytes
    created_us: int


@dataclass(frozen=True, slots=True)
class DropRun:
    stream: str
    from_seq: int
    to_seq: int
    count: int
    reason: str


# A factory for the report of a drop: (run, now_us) -> a Draft in the run's stream.
DropReporter = Callable[[DropRun, int], Draft]


def contiguous_runs(stream: str, seqs: Iterable[int], reason: str) -> list[DropRun]:
    """Group seqs into runs of consecutive numbers: [3, 4, 5, 9] -> (3..5, 3), (9..9, 1)."""
    runs: list[DropRun] = []
    for seq in sorted(seqs):
        if runs and runs[-1].to_seq == seq - 1:
            last = runs[-1]
            runs[-1] = DropRun(stream, last.from_seq, seq, last.count + 1, reason)
        else:
            runs.append(DropRun(stream, seq, seq, 1, reason))
    return runs


@dataclass
class Outbox:
    path: Path
    max_bytes: int
    max_age_us: int
    report_drop: DropReporter
    _db: sqlite3.Connection | None = field(default=None, init=False)
    _next: dict[str, int] = field(default_factory=dict, init=False)
    total_bytes: int = field(default=0, init=False)
    records: int = field(default=0, init=False)

    # ------------------------------------------------------------------------------------------ lifecycle
    def open(self) -> Outbox:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")  # fsync the WAL at every commit: accepted means on disk
            db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        self._db = db
        self.records, self.total_bytes = db.execute("SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records").fetchone()
        return self

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Outbox:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise OutboxError("outbox is not open")
        return self._db

    # ------------------------------------------------------------------------------------------ writes
    def append(self, drafts: Sequence[Draft], now_us: int) -> list[DropRun]:
        """Number and store ``drafts`` in one fsync'd transaction; return the drops the bounds forced."""
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            for draft in drafts:
                self._insert(draft)
            drops = self._enforce_bounds(now_us)
            for run in drops:
                self._insert(self.report_drop(run, now_us))
            self._save_counters()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._next.clear()  # reload numbers from disk: the rolled-back ones were never handed out
            self.records, self.total_bytes = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(size), 0) FROM records").fetchone()
            raise
        return drops

    def _peek_next(self, stream: str) -> int:
        if stream not in self._next:
            row = self.db.execute("SELECT next_seq FROM streams WHERE stream = ?", (stream,)).fetchone()
            self._next[stream] = row[0] if row else 1
        return self._next[stream]

    def _seq_for(self, stream: str) -> int:
        seq = self._peek_next(stream)
        self._next[stream] = seq + 1
        return seq

    def _insert(self, draft: Draft) -> None:
        seq = self._seq_for(draft.stream)
        payload = encode(draft.seal(seq))
        size = len(payload) + len(draft.topic)
        self.db.execute(
            "INSERT INTO records (stream, seq, priority, topic, payload, created_us, size)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (draft.stream, seq, draft.priority, draft.topic, payload, draft.created_us, size),
        )
        self.records += 1
        self.total_bytes += size

    def _save_counters(self) -> None:
        self.db.executemany(
            "INSERT INTO streams (stream, next_seq) VALUES (?, ?)"
            " ON CONFLICT (stream) DO UPDATE SET next_seq = excluded.next_seq",
            list(self._next.items()),
        )

    def _enforce_bounds(self, now_us: int) -> list[DropRun]:
        """Apply the drop policy; leave room for the reports of the drops (< REPORT_BYTES each)."""
        dropped = self._drop_rows(
            "DELETE FROM records WHERE priority = ? AND created_us < ? RETURNING stream, seq, size",
            (PRIORITY_TELEMETRY, now_us - self.max_age_us), "max_age")
        reserve = REPORT_BYTES if dropped else 0
        for _ in range(32):  # converges: each round only grows the reserve by the runs it added
            dropped += self._drop_oldest(self.max_bytes - reserve)
            runs = self._runs(dropped)
            if REPORT_BYTES * len(runs) <= reserve or not runs:
                break
            reserve = REPORT_BYTES * len(runs)
        runs = self._runs(dropped)
        self.db.executemany(
            "INSERT INTO drops (at_us, stream, from_seq, to_seq, count, reason) VALUES (?, ?, ?, ?, ?, ?)",
            [(now_us, r.stream, r.from_seq, r.to_seq, r.count, r.reason) for r in runs],
        )
        return runs

    def _drop_rows(self, sql: str, args: tuple[Any, ...], reason: str) -> list[tuple[str, int, str]]:
        rows = self.db.execute(sql, args).fetchall()
        self._forget(rows)
        return [(stream, seq, reason) for stream, seq, _size in rows]

    def _drop_oldest(self, target: int) -> list[tuple[str, int, str]]:
        dropped: list[tuple[str, int, str]] = []
        while self.total_bytes > target:
            excess, last_id = self.total_bytes - target, None
            for row_id, size in self.db.execute(
                "SELECT id, size FROM records WHERE priority = ? ORDER BY id LIMIT 1000", (PRIORITY_TELEMETRY,)
            ):
                excess -= size
                last_id = row_id
                if excess <= 0:
                    break
            if last_id is None:
                break  # only events left: over the bound rather than lose one
            dropped += self._drop_rows(
                "DELETE FROM records WHERE priority = ? AND id <= ? RETURNING stream, seq, size",
                (PRIORITY_TELEMETRY, last_id), "max_bytes")
        return dropped

    def _forget(self, rows: list[Any]) -> None:
        self.records -= len(rows)
        self.total_bytes -= sum(r[2] for r in rows)

    @staticmethod
    def _runs(rows: list[tuple[str, int, str]]) -> list[DropRun]:
        by_key: dict[tuple[str, str], list[int]] = {}
        for stream, seq, reason in rows:
            by_key.setdefault((stream, reason), []).append(seq)
        return [r for (stream, reason), seqs in by_key.items() for r in contiguous_runs(stream, seqs, reason)]

    def acknowledge(self, stream: str, seq: int) -> int:
        """Forget every record of ``stream`` up to ``seq`` (ingest has committed them); return how many."""
        return self.acknowledge_many({stream: seq})

    def acknowledge_many(self, watermarks: dict[str, int]) -> int:
        """Apply a burst of watermarks in one transaction."""
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            rows = []
            for stream, seq in watermarks.items():
                if seq >= self._peek_next(stream):
                    # Above anything this outbox ever numbered: a retained watermark from an earlier life of the
                    # stream (outbox replaced, gateway reinstalled). It acknowledges nothing of ours; continue
                    # numbering above it so no seq is ever reused against ingest's ledger.
                    self._next[stream] = seq + 1
                    self._save_counters()
                    continue
                rows += db.execute("DELETE FROM records WHERE stream = ? AND seq <= ? RETURNING size",
                                   (stream, seq)).fetchall()
                db.execute("UPDATE streams SET acked = MAX(acked, ?) WHERE stream = ?", (seq, stream))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.records -= len(rows)
        self.total_bytes -= sum(r[0] for r in rows)
        return len(rows)

    def dead_letter(self, row: Row, reason: str, now_us: int, report: Sequence[Draft]) -> None:
        """Move a record the broker refused to the local dead-letter table and append its reports."""
        db = self.db
        try:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO dead_letters (at_us, stream, seq, topic, payload, reason)"
                       " VALUES (?, ?, ?, ?, ?, ?)", (now_us, row.stream, row.seq, row.topic, row.payload, reason))
            gone = db.execute("DELETE FROM records WHERE id = ? RETURNING size", (row.id,)).fetchall()
            self._forget([(None, None, r[0]) for r in gone])
            for draft in report:
                self._insert(draft)
            self._save_counters()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            self._next.clear()
            raise

    def save_birth(self, device_id: str, payload: bytes) -> None:
        self.db.execute("INSERT INTO births (device_id, payload) VALUES (?, ?)"
                        " ON CONFLICT (device_id) DO UPDATE SET payload = excluded.payload", (device_id, payload))

    # ------------------------------------------------------------------------------------------ reads
    def fetch(self, *, priority: int, after_id: int, limit: int, max_id: int | None = None) -> list[Row]:
        sql = "SELECT id, stream, seq, priority, topic, payload, created_us FROM records WHERE priority = ? AND id > ?"
        args: list[Any] = [priority, after_id]
        if max_id is not None:
            sql += " AND id <= ?"
            args.append(max_id)
        rows = self.db.execute(sql + " ORDER BY id LIMIT ?", (*args, limit)).fetchall()
        return [Row(*r) for r in rows]

    def fetch_stream(self, stream: str, *, after_seq: int, max_id: int, limit: int) -> list[Row]:
        rows = self.db.execute(
            "SELECT id, stream, seq, priority, topic, payload, created_us FROM records"
            " WHERE stream = ? AND seq > ? AND id <= ? ORDER BY id LIMIT ?", (stream, after_seq, max_id, limit)
        ).fetchall()
        return [Row(*r) for r in rows]

    def max_id(self) -> int:
        return int(self.db.execute("SELECT COALESCE(MAX(id), 0) FROM records").fetchone()[0])

    def oldest_created_us(self) -> int | None:
        row = self.db.execute("SELECT MIN(created_us) FROM records").fetchone()
        return row[0] if row else None

    def births(self) -> list[bytes]:
        return [r[0] for r in self.db.execute("SELECT payload FROM births ORDER BY device_id")]

    def next_seqs(self) -> dict[str, int]:
        return dict(self.db.execute("SELECT stream, next_seq FROM streams").fetchall())

    def dead_letters(self) -> list[tuple[str, int, str]]:
        return self.db.execute("SELECT stream, seq, reason FROM dead_letters ORDER BY id").fetchall()

    def drops(self) -> list[DropRun]:
        return [DropRun(*r) for r in self.db.execute(
            "SELECT stream, from_seq, to_seq, count, reason FROM drops ORDER BY id")]


class AsyncOutbox:
    """The outbox behind one worker thread: SQLite calls (and their fsyncs) never block the event loop."""

    def __init__(self, outbox: Outbox) -> None:
        self.sync = outbox
        self._pool: ThreadPoolExecutor | None = None

    async def __aenter__(self) -> AsyncOutbox:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        await self.call(self.sync.open)
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self.call(self.sync.close)
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._pool is None:
            raise OutboxError("outbox is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
