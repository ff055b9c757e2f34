"""Records the agent writes about itself (pure): drop reports and dead-letter alarms."""

from __future__ import annotations

from edge_agent.pipeline import PRIORITY_EVENT, Draft
from wire import PROCEDURE_STREAM, topics
from wire.models import Event, EventKind, Severity
from wire.topics import Kind

__all__ = ["DEAD_LETTER_CODE", "dead_letter_reports", "drop_report"]

DEAD_LETTER_CODE = "edge_dead_letter"


def _event(gateway_id: str, stream: str, now_us: int, **fields: object) -> Draft:
    event = Event(gateway_id=gateway_id, device_id=stream, seq=1, ts_us=now_us, gateway_ts_us=now_us,
                  **fields)
    return Draft(stream=stream, topic=topics.device(gateway_id, stream, Kind.EVENT), priority=PRIORITY_EVENT,
                 created_us=now_us, message=event)


def drop_report(gateway_id: str, *, stream: str, from_seq: int, to_seq: int, count: int, reason: str,
                now_us: int) -> Draft:
    """``outbox_drop``: ingest marks [from_seq, to_seq] dropped so its watermark can pass the range."""
    return _event(gateway_id, stream, now_us, kind=EventKind.OUTBOX_DROP,
                  attrs={"from_seq": from_seq, "to_seq": to_seq, "count": count, "reason": reason})


def dead_letter_reports(gateway_id: str, *, stream: str, seq: int, reason_code: int, reason: str, now_us: int,
                        is_report: bool) -> list[Draft]:
    """A record the broker refused: report its seq as dropped and raise an alarm (once, never about itself)."""
    if stream == PROCEDURE_STREAM or is_report:
        return []  # no device stream to report in, or the report itself was refused: stop here
    return [
        drop_report(gateway_id, stream=stream, from_seq=seq, to_seq=seq, count=1, reason="dead_letter",
                    now_us=now_us),
        _event(gateway_id, stream, now_us, kind=EventKind.ALARM_RAISED, code=DEAD_LETTER_CODE,
               severity=Severity.HIGH, text=f"record {seq} refused by the broker: {reason}"[:500],
               attrs={"seq": seq, "reason_code": reason_code}),
    ]
