"""Record and replay at the broker level, and the NDJSON path to an edge agent's TCP adapter."""

from __future__ import annotations

import asyncio
import itertools
import sys
import threading
import time
from pathlib import Path

import pytest

from simulators.mqtt import Broker
from simulators.offline import write_offline
from simulators.plan import plan_timeline
from simulators.record import record
from simulators.recording import Record, RecordingWriter, read_recording
from simulators.replay import replay
from simulators.scenario import load_scenario
from simulators.timeline import parse_timeline
from tests.support.harness import TEST_PASSWORD
from tests.support.poll import wait_until
from tests.support.procs import Service
from wire.device import Procedure, parse_line

REPO = Path(__file__).resolve().parents[2]
T0 = int(time.time() // 60 * 60 * 1_000_000)
TIMELINE = "case_id,phase,start_s,end_s\nHOSP-9,tunnel,0,120\nHOSP-9,myotomy,130,300\n"


def _admin(port: int) -> Broker:
    return Broker(port=port, password=TEST_PASSWORD)


class Recorder:
    """``record`` in a thread, stopped by the test."""

    def __init__(self, path: Path, port: int, **kw: object) -> None:
        self.stop, self.ready = threading.Event(), threading.Event()
        self.count = 0
        self.result: list[object] = []

        def run() -> None:
            try:
                self.result.append(record(path, broker=_admin(port), stop=self.stop, ready=self.ready.set,
                                          progress=self._progress, **kw))
            except Exception as exc:  # surfaced by the test
                self.result.append(exc)
                self.ready.set()

        self.thread = threading.Thread(target=run, name="recorder")

    def _progress(self, n: int) -> None:
        self.count = n

    def __enter__(self) -> Recorder:
        self.thread.start()
        wait_until(self.ready.is_set, timeout=20, what="recorder subscribed")
        assert not self.result, self.result
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(20)


def _source(tmp_path: Path, uid: str) -> Path:
    plan = plan_timeline(load_scenario("poem"), parse_timeline(TIMELINE), rooms=1, seed=3)
    path = tmp_path / "source.jsonl.gz"
    write_offline(path, plan, origin_us=T0 - 3_600_000_000)
    # rename the gateway so that this test's topics are its own on the shared broker
    header, records = read_recording(path)
    renamed = tmp_path / "renamed.jsonl.gz"
    with RecordingWriter(renamed, header=header) as w:
        for r in records:
            w.write(Record(r.t_us, r.topic.replace("gw-or1", f"gw-{uid}"),
                           r.payload.replace(b'"gw-or1"', f'"gw-{uid}"'.encode()), r.qos, r.retain))
    return renamed


def test_replay_then_record_gives_back_the_same_messages(broker, tmp_path: Path, uid: str) -> None:
    source = _source(tmp_path, uid)
    _, src = read_recording(source)
    expected = [(r.topic, r.payload, r.qos, r.retain) for r in src]
    out = tmp_path / "captured.jsonl.gz"
    with Recorder(out, broker.port, topic=f"ortel/v1/gw-{uid}/#") as rec:
        stats = replay(source, broker=_admin(broker.port), speed=None)
        assert stats.messages == len(expected)
        wait_until(lambda: rec.count >= len(expected), timeout=30, what="every message recorded")
    header, got = read_recording(out)
    assert header["source"] == "record"
    captured = list(got)
    # QoS 1 per publisher is ordered [MQTT-4.6.0-2..6]; QoS 0 status heartbeats can interleave differently
    assert sorted((r.topic, r.payload, r.qos, r.retain) for r in captured) == sorted(expected)
    ordered = [(r.topic, r.payload) for r in captured if r.qos == 1]
    assert ordered == [(t, p) for t, p, q, _ in expected if q == 1]
    times = [r.t_us for r in captured]
    assert times == sorted(times) and abs(times[0] - time.time_ns() // 1000) < 60_000_000


def test_replay_keeps_the_recorded_timing(broker, tmp_path: Path, uid: str) -> None:
    path = tmp_path / "timed.jsonl.gz"
    topic = f"ortel/v1/gw-{uid}/state"
    offsets_s = [0.0, 1.0, 2.0, 4.0, 5.0]  # uneven on purpose: the 2 s pause must survive the replay
    with RecordingWriter(path, header={"source": "test"}) as w:
        for k, at in enumerate(offsets_s):
            w.write(Record(T0 + int(at * 1_000_000), topic, f'{{"k":{k}}}'.encode(), 1, False))
    speed, recorded_s = 4.0, offsets_s[-1] - offsets_s[0]
    expected = [(b - a) / speed for a, b in itertools.pairwise(offsets_s)]  # 0.25, 0.25, 0.5, 0.25 s
    out = tmp_path / "arrivals.jsonl.gz"
    with Recorder(out, broker.port, topic=topic) as rec:
        start = time.monotonic()
        assert replay(path, broker=_admin(broker.port), speed=speed).messages == 5
        wall = time.monotonic() - start
        wait_until(lambda: rec.count >= 5, timeout=30, what="every message recorded")
    _, got = read_recording(out)
    captured = list(got)
    assert [r.payload for r in captured] == [f'{{"k":{k}}}'.encode() for k in range(5)]
    arrivals = [r.t_us / 1e6 for r in captured]
    # Paced from the first message on the original clock: no message arrives before its time (ignoring --speed
    # or going flat out would), and a late one (a busy machine) does not push the later ones back.
    due = [(at - offsets_s[0]) / speed for at in offsets_s]
    since_first = [a - arrivals[0] for a in arrivals]
    assert all(s >= d - 0.1 for s, d in zip(since_first, due, strict=True)), (since_first, due)
    # speed 4 of 5 s is 1.25 s: never sooner, and far from the 5 s a replay that ignored --speed would take
    # (or the 2.5 s of speed 2); the slack above is for a busy machine
    assert sum(expected) * 0.95 <= wall <= 0.6 * recorded_s
    assert since_first[-1] <= sum(expected) + 0.75


def test_replay_reports_an_acl_refusal(broker, gateway_user, tmp_path: Path, uid: str) -> None:
    path = tmp_path / "foreign.jsonl.gz"
    with RecordingWriter(path) as w:
        w.write(Record(T0, "not-ortel/anything", b"{}", 1, False))
    from simulators.errors import RecordingError

    with pytest.raises(RecordingError, match="refused"):
        replay(path, broker=_admin(broker.port), speed=None)


def test_cli_record_stops_cleanly_on_sigterm(broker, tmp_path: Path, uid: str) -> None:
    out = tmp_path / "cli.jsonl.gz"
    env = {"ORTEL_SIM_MQTT__PORT": str(broker.port)}
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(f'[broker]\n"ortel-admin" = "{TEST_PASSWORD}"\n')
    args = ["record", str(out), "--topic", f"ortel/v1/gw-{uid}/#", "--passwords", str(secrets)]
    svc = Service(args, env, tmp_path / "rec.log").start()
    try:
        wait_until(lambda: "recording" in svc.output(), timeout=20, what="recorder subscribed")
        source = _source(tmp_path, uid)
        replay(source, broker=_admin(broker.port), speed=None)
    finally:
        code = svc.stop()
    assert code == 0, svc.output()[-2000:]
    _, records = read_recording(out)
    assert sum(1 for _ in records) > 100


async def test_simulate_connect_writes_ndjson_to_a_tcp_adapter(tmp_path: Path) -> None:
    timeline = tmp_path / "t.csv"
    timeline.write_text(TIMELINE)
    received: list[bytes] = []
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            received.append(line)
        writer.close()
        done.set()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ortel_cli", "simulate", "--scenario", "poem", "--timeline", str(timeline),
            "--speed", "1000", "--connect", f"tcp://127.0.0.1:{port}",
            cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()[-2000:]
        await asyncio.wait_for(done.wait(), 10)
    lines = [parse_line(x) for x in received]
    assert f"sent {len(lines)} device lines" in out.decode()
    proc_lines = [ln for ln in lines if isinstance(ln, Procedure)]
    assert [(p.kind, p.phase) for p in proc_lines] == [
        ("case_start", None), ("phase_start", "tunnel"), ("phase_end", "tunnel"), ("phase_start", "myotomy"),
        ("phase_end", "myotomy"), ("case_end", None)]
    now = time.time_ns() // 1000
    assert all(ln.ts_us <= now for ln in lines if hasattr(ln, "ts_us")), "nothing from the future"
    last = max(ln.ts_us for ln in lines if hasattr(ln, "ts_us"))
    assert last > now - 60_000_000, "virtual time catches up with the wall clock as the run ends"
    assert proc_lines[-1].ts_us <= last - 300_000_000, "devices stay on for the scenario's clean-up time"
