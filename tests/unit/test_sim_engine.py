"""The virtual clock, the offline recording (same seed, same bytes) and the virtual gateway."""

from __future__ import annotations

import hashlib
import itertools
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

import wire
from ortel_cli.main import app
from simulators.devices.base import US
from simulators.engine import anchor, live_lines, paced
from simulators.generate import Timed, plan_lines
from simulators.load import load_plan
from simulators.offline import offline_records
from simulators.plan import plan_rooms, plan_timeline
from simulators.recording import Record, RecordingWriter, decode_record, encode_record, read_recording
from simulators.scenario import load_scenario
from simulators.timeline import parse_timeline
from wire.device import Sample

T0 = 1_763_000_000_000_000


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_a_byte_identical_recording(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["simulate", "--seed", "7", "--scenario", "lap-chole", "--start", "2026-11-20T07:30:00Z"]
    paths = [tmp_path / "a.jsonl.gz", tmp_path / "b.jsonl.gz"]
    for path in paths:
        result = runner.invoke(app, [*args, "--out", str(path)])
        assert result.exit_code == 0, result.output
    assert _sha(paths[0]) == _sha(paths[1])
    plan7, plan8 = (plan_rooms([load_scenario("lap-chole")], rooms=1, cases=1, seed=s) for s in (7, 8))
    head7, head8 = (list(itertools.islice(offline_records(p, origin_us=T0), 500)) for p in (plan7, plan8))
    assert head7 != head8, "another seed, other traffic"
    header, records = read_recording(paths[0])
    assert header["seed"] == 7 and header["source"] == "simulate"
    kinds = Counter()
    for rec in records:
        topic, _ = wire.decode(rec.topic, rec.payload)
        kinds[topic.kind] += 1
    assert kinds[wire.Kind.TELEMETRY] > 1000 and kinds[wire.Kind.PROCEDURE] == 2 + 2 * 7


def test_recording_format_round_trips(tmp_path: Path) -> None:
    recs = [Record(T0, "ortel/v1/gw-or1/state", b'{"v":1}', 1, True), Record(T0 + 5, "x/y", b"\xff\x00", 0, False)]
    assert [decode_record(encode_record(r)) for r in recs] == recs
    assert b"payload_b64" in encode_record(recs[1])
    with RecordingWriter(tmp_path / "r.jsonl.gz", header={"source": "test"}) as w:
        for r in recs:
            w.write(r)
    header, it = read_recording(tmp_path / "r.jsonl.gz")
    assert header["format"] == "ortel-recording" and list(it) == recs


def test_anchor_keeps_every_line_in_the_past() -> None:
    span = 3_600 * US
    now = T0
    for speed in (1.0, 10.0, 60.0, None):
        origin = anchor(now, span, speed)
        # virtual time at wall offset e (seconds) is origin + speed * e; it never passes the wall clock
        factor = speed or 1e9
        for frac in (0.0, 0.5, 1.0):
            wall_elapsed = frac * span / US / factor
            assert origin + factor * wall_elapsed * US <= now + wall_elapsed * US + 1
        assert origin + span <= now + span / factor + 1


async def test_paced_follows_the_virtual_clock_at_speed() -> None:
    clock = [0.0]
    slept: list[float] = []

    async def sleep(s: float) -> None:
        slept.append(s)
        clock[0] += s

    lines = [Timed(T0 + k * 10 * US, 0, Sample(device_id="d", ts_us=T0 + k * 10 * US, values={"x_w": 1.0}))
             for k in range(7)]
    got = [t async for t in paced(lines, origin_us=T0, speed=10.0, clock=lambda: clock[0], sleep=sleep)]
    assert got == lines
    assert clock[0] == pytest.approx(6.0)  # 60 virtual seconds at speed 10
    clock[0], slept[:] = 0.0, []
    got = [t async for t in paced(lines, origin_us=T0, speed=None, clock=lambda: clock[0], sleep=sleep)]
    assert got == lines and sum(slept) == 0


def _decoded(records):
    for rec in records:
        yield rec, *wire.decode(rec.topic, rec.payload)


def test_virtual_gateway_numbers_streams_and_hides_case_numbers() -> None:
    text = "case_id,phase,start_s,end_s\nHOSP-123,tunnel,0,300\nHOSP-123,myotomy,350,700\nHOSP-456,tunnel,10,200\n"
    plan = plan_timeline(load_scenario("poem"), parse_timeline(text), rooms=1, seed=3)
    seqs: dict[str, list[int]] = defaultdict(list)
    cases = set()
    for rec, topic, msg in _decoded(offline_records(plan, origin_us=T0)):
        assert b"HOSP-" not in rec.payload, "raw case numbers never leave the gateway"
        if topic.kind in (wire.Kind.TELEMETRY, wire.Kind.EVENT):
            seqs[msg.device_id].append(msg.seq)
        elif topic.kind is wire.Kind.PROCEDURE:
            seqs[wire.PROCEDURE_STREAM].append(msg.seq)
            cases.add(msg.case_id)
        assert rec.retain == (topic.kind in (wire.Kind.STATE, wire.Kind.BIRTH))
        assert rec.qos == (0 if topic.kind is wire.Kind.STATUS else 1)
    assert len(cases) == 2
    for stream, numbers in seqs.items():
        assert numbers == list(range(1, len(numbers) + 1)), stream


def test_offline_batches_cover_every_sample_once() -> None:
    plan = load_plan(gateways=2, devices=3, rate_hz=5, duration_s=20, seed=1)
    sent = Counter()
    for t in plan_lines(plan, origin_us=T0):
        if isinstance(t.line, Sample):
            sent[t.line.device_id] += 1
    stored = Counter()
    for _, topic, msg in _decoded(offline_records(plan, origin_us=T0, batch_s=0.5)):
        if topic.kind is wire.Kind.TELEMETRY:
            stored[msg.device_id] += len(msg.ts_us)
    assert stored == sent
    assert len(sent) == 6 and all(n == pytest.approx(5 * 22, abs=2) for n in sent.values())


def test_load_plan_shape() -> None:
    plan = load_plan(gateways=3, devices=20, rate_hz=10, duration_s=5, seed=1)
    assert [rp.room.gateway_id for rp in plan.rooms] == ["gw-or1", "gw-or2", "gw-or3"]
    ids = {d.key for d in plan.rooms[0].cases[0].scenario.devices}
    assert len(ids) == 20


def test_cli_rejects_bad_input(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--fault", "meteor", "--out", str(tmp_path / "x.gz")])
    assert result.exit_code == 2 and "unknown kind" in result.output
    result = runner.invoke(app, ["simulate", "--scenario", "no-such", "--out", str(tmp_path / "x.gz")])
    assert result.exit_code == 2 and "no such scenario" in result.output
    result = runner.invoke(app, ["simulate", "--list"])
    assert result.exit_code == 0 and "lap-chole" in result.output and "insufflator" in result.output


def test_load_mode_offline(tmp_path: Path) -> None:
    out = tmp_path / "load.jsonl.gz"
    args = ["simulate", "--gateways", "2", "--devices", "4", "--rate", "5", "--duration", "20", "--out", str(out),
            "--start", "1763000000"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    _, records = read_recording(out)
    samples, devices = 0, set()
    for rec, topic, msg in _decoded(records):
        assert rec.t_us >= T0
        if topic.kind is wire.Kind.TELEMETRY:
            samples += len(msg.ts_us)
            devices.add((msg.gateway_id, msg.device_id))
    assert len(devices) == 8
    assert samples == pytest.approx(8 * 5 * 22, abs=16)  # 20 s of load plus 1 s power-on and power-off


def test_replay_of_a_missing_file_is_a_clean_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["replay", str(tmp_path / "nope.jsonl.gz")])
    assert result.exit_code == 1 and "no such file" in result.output


async def test_live_lines_never_run_ahead_of_the_wall_clock() -> None:
    text = "case_id,phase,start_s,end_s\nL1,tunnel,0,200\nL1,myotomy,210,400\n"
    plan = plan_timeline(load_scenario("poem"), parse_timeline(text), rooms=1, seed=9)
    clock = [0.0]

    async def sleep(s: float) -> None:
        clock[0] += s

    n = 0
    async for t in live_lines(plan, speed=50.0, now_us=T0, clock=lambda: clock[0], sleep=sleep):
        wall_us = T0 + clock[0] * US
        slack_us = 0.002 * 50 * US  # paced() does not sleep for less than 2 ms of wall time
        assert t.line.type == "hello" or t.line.ts_us <= wall_us + slack_us
        n += 1
    assert n > 1000
    assert clock[0] == pytest.approx(plan.span_us / US / 50, rel=0.01)


async def test_a_long_plan_starts_a_day_back_and_then_runs_in_real_time() -> None:
    week = 7 * 86_400 * US
    origin = anchor(T0, week, 100.0)
    assert origin == T0 - 86_400 * US
    clock = [0.0]

    async def sleep(s: float) -> None:
        clock[0] += s

    late = [Timed(T0 + k * 3_600 * US, 0, Sample(device_id="d", ts_us=T0 + k * 3_600 * US, values={"x_w": 1.0}))
            for k in range(3)]
    async for t in paced(late, origin_us=origin, speed=100.0, clock=lambda: clock[0], sleep=sleep, wall_us=T0):
        assert t.line.ts_us <= T0 + clock[0] * US + 1
    assert clock[0] == pytest.approx(2 * 3_600)  # caught up with the wall clock: one virtual hour per hour
