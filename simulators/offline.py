"""The deterministic offline path: a plan, through virtual gateways, into a recording file. No broker.

Everything runs on the virtual clock, so the same seed, scenario and start make a byte-identical file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from simulators.devices.base import US
from simulators.faults import FaultSpec, device_faults, message_faults
from simulators.gateway import VirtualGateway
from simulators.generate import plan_lines
from simulators.plan import Plan, RoomPlan
from simulators.recording import Record, RecordingWriter

__all__ = ["offline_records", "sim_key", "write_offline"]

DAY_US = 86_400 * US


def sim_key(seed: int) -> bytes:
    """The pseudonymisation key of a simulated gateway (a real agent keeps a secret key of its own)."""
    return hashlib.sha256(f"ortel-sim-pseudonym-{seed}".encode()).digest()


def default_origin(now_us: int, span_us: int) -> int:
    """Virtual start so that the whole plan ends by the start of today (UTC): stable for a day, in the past."""
    return max(0, now_us - now_us % DAY_US - span_us)


def _losses(rp: RoomPlan, specs: Sequence[FaultSpec], origin_us: int) -> list[tuple[int, int]]:
    out = []
    for spec in specs:
        if spec.kind == "gateway_loss" and spec.applies(rp.room):
            for case in rp.cases:
                start, end = spec.window(case)
                out.append((start + origin_us, end + origin_us))
    return out


def offline_records(plan: Plan, *, origin_us: int, specs: Sequence[FaultSpec] = (), batch_s: float = 1.0,
                    key: bytes | None = None) -> Iterator[Record]:
    key = key if key is not None else sim_key(plan.seed)
    gateways = {
        rp.room.index: VirtualGateway(gateway_id=rp.room.gateway_id, room=rp.room.name, key=key,
                                      boot_id=f"sim-{plan.seed}", batch_s=batch_s,
                                      losses=_losses(rp, specs, origin_us))
        for rp in plan.rooms
    }
    end = origin_us
    for t in plan_lines(plan, origin_us=origin_us, faults=device_faults(specs)):
        end = max(end, t.at_us)
        yield from gateways[t.room].feed(t.at_us, t.line)
    for gw in gateways.values():
        yield from gw.close(end)


def write_offline(path: str | Path, plan: Plan, *, origin_us: int, specs: Sequence[FaultSpec] = (),
                  batch_s: float = 1.0, header: dict[str, Any] | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """Write the plan's traffic as a recording; returns the number of messages. ``progress`` gets the
    virtual time (us) reached, every few thousand messages."""
    records = offline_records(plan, origin_us=origin_us, specs=specs, batch_s=batch_s)
    records = message_faults(records, specs, np.random.default_rng([plan.seed, 0xFA17]))
    meta = {"source": "simulate", "seed": plan.seed, "origin_us": origin_us, **(header or {})}
    with RecordingWriter(path, header=meta) as writer:
        for rec in records:
            writer.write(rec)
            if progress is not None and writer.count % 5000 == 0:
                progress(rec.t_us)
        return writer.count
