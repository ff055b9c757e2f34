"""Send-side bookkeeping of one broker connection (pure): what to send next, what ingest has not committed.

- Cursors over the outbox's row ids (ids grow in append order, so per stream they follow ``seq``): events
  first, live telemetry (appended since this connection began) next, the backlog last, paced by a
  ``TokenBucket`` so a long outage's backlog never starves live data. The backlog is replayed in id order, so
  each device's backlog arrives in ``seq`` order.
- Cumulative acknowledgement: per stream the highest seq sent and the watermark received. When a stream has
  records awaiting and its watermark has not moved for ``ack_timeout_us`` (a record was lost between the
  broker and ingest, or the broker crashed with it), everything of that stream above the watermark, up to what
  was sent, is queued again (go-back-N). Each further re-send of a stream whose watermark still has not moved
  waits twice as long (up to ``RESEND_BACKOFF_CAP`` x the timeout): while ingest is away the broker keeps the
  records queued for its session, and re-sending them every timeout would only pile up copies in that queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RESEND_BACKOFF_CAP", "SendState", "StreamAcks", "TokenBucket"]

RESEND_BACKOFF_CAP = 8  # the longest wait between re-sends of one stream, in ack timeouts


@dataclass
class TokenBucket:
    rate_per_s: float
    burst: float
    now_us: int
    tokens: float = 0.0

    def take(self, wanted: int, now_us: int) -> int:
        """Grant up to ``wanted`` tokens (whole records) at ``now_us``."""
        elapsed = max(0, now_us - self.now_us) / 1e6
        self.now_us = max(self.now_us, now_us)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        return granted


@dataclass
class StreamAcks:
    watermark: int = 0
    sent_seq: int = 0  # highest seq published (and PUBACKed) on this connection
    sent_id: int = 0  # outbox id of that record
    waiting_since_us: int | None = None  # last progress while records were awaiting a watermark
    resends: int = 0  # go-backs since the watermark last moved

    @property
    def awaiting(self) -> bool:
        return self.sent_seq > self.watermark


@dataclass
class SendState:
    mark_id: int  # rows with id <= mark_id were already in the outbox when the connection began: backlog
    ack_timeout_us: int
    bucket: TokenBucket
    event_cursor: int = 0
    live_cursor: int = 0
    backlog_cursor: int = 0
    streams: dict[str, StreamAcks] = field(default_factory=dict)

    @classmethod
    def begin(cls, *, mark_id: int, ack_timeout_us: int, replay_rate: float, now_us: int) -> SendState:
        bucket = TokenBucket(rate_per_s=replay_rate, burst=max(1.0, replay_rate / 10), now_us=now_us)
        return cls(mark_id=mark_id, ack_timeout_us=ack_timeout_us, bucket=bucket, live_cursor=mark_id)

    def is_replay(self, row_id: int) -> bool:
        return row_id <= self.mark_id

    def sent(self, *, stream: str, seq: int, row_id: int, now_us: int) -> None:
        acks = self.streams.setdefault(stream, StreamAcks())
        if not acks.awaiting:
            acks.waiting_since_us = now_us
        if seq > acks.sent_seq:
            acks.sent_seq, acks.sent_id = seq, row_id

    def acked(self, *, stream: str, seq: int, now_us: int) -> bool:
        """Record a watermark; True when it moved forward."""
        acks = self.streams.setdefault(stream, StreamAcks())
        if seq <= acks.watermark:
            return False
        acks.watermark = seq
        acks.waiting_since_us = now_us if acks.awaiting else None
        acks.resends = 0
        return True

    def stalled(self, now_us: int) -> list[tuple[str, int, int]]:
        """Streams to go back on: (stream, watermark, highest sent id). Restarts their timers, each next wait
        twice the last (capped) until the watermark moves."""
        out = []
        for stream, acks in self.streams.items():
            since = acks.waiting_since_us
            timeout = self.ack_timeout_us * min(2**acks.resends, RESEND_BACKOFF_CAP)
            if acks.awaiting and since is not None and now_us - since >= timeout:
                out.append((stream, acks.watermark, acks.sent_id))
                acks.waiting_since_us = now_us
                acks.resends += 1
        return out

    def watermark(self, stream: str) -> int:
        acks = self.streams.get(stream)
        return acks.watermark if acks else 0
