"""Sequence accounting per stream (pure): the contiguous watermark and the gaps above it.

A stream's watermark W is the highest seq such that every seq from 1 up to W is in the ``received`` ledger
(stored, rejected or dropped). Streams are numbered from 1 by the agent; starting a new stream's watermark at
its first *seen* seq instead would cover records the broker dropped before ingest first subscribed.
Anything above W that is missing while a later seq is present is a gap: recorded open when first seen, closed
once every seq in it has arrived.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["GapPlan", "advance", "missing_ranges", "plan_gaps"]


def advance(watermark: int, seqs_above: Iterable[int]) -> int:
    """Move ``watermark`` over the contiguous run of ``seqs_above`` (ascending seqs > watermark)."""
    for seq in seqs_above:
        if seq == watermark + 1:
            watermark = seq
        elif seq > watermark + 1:
            break
    return watermark


def missing_ranges(watermark: int, seqs_above: Sequence[int]) -> list[tuple[int, int]]:
    """Inclusive ranges above ``watermark`` that are absent while a later seq is present."""
    ranges: list[tuple[int, int]] = []
    expected = watermark + 1
    for seq in seqs_above:
        if seq > expected:
            ranges.append((expected, seq - 1))
        expected = max(expected, seq + 1)
    return ranges


@dataclass(frozen=True, slots=True)
class GapPlan:
    open: tuple[tuple[int, int], ...]  # new gaps to record
    close: tuple[int, ...]  # from_seq of open gaps that are now filled


def plan_gaps(watermark: int, seqs_above: Sequence[int], open_gaps: Iterable[tuple[int, int]]) -> GapPlan:
    """Which gaps to open and which recorded open gaps to close, given the ledger above ``watermark``."""
    missing = missing_ranges(watermark, seqs_above)
    known = list(open_gaps)
    close = tuple(lo for lo, hi in known if not any(a <= hi and lo <= b for a, b in missing))
    still_open = [(lo, hi) for lo, hi in known if lo not in close]
    new = tuple(r for r in missing if not any(r[0] <= hi and lo <= r[1] for lo, hi in still_open))
    return GapPlan(open=new, close=close)
