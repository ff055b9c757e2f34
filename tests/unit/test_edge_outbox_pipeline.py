"""Seq assignment and the drop policy of the SQLite outbox; the pipeline from device lines to drafts."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from edge_agent.outbox import DropRun, Outbox, contiguous_runs
from edge_agent.pipeline import PRIORITY_EVENT, PRIORITY_TELEMETRY, Draft, Pipeline, Rejected
from edge_agent.privacy import Scrubber
from edge_agent.reports import drop_report
from edge_agent.rules import RuleEngine, ThresholdRule
from edge_agent.settings import AgentSettings
from wire import DeviceBirth, ProcedureEvent, TelemetryBatch, decode
from wire.device import DeviceEvent, Hello, Procedure, Sample, parse_line

GW = "gw-unit"
T0 = 1_763_884_800_000_000


def _pipeline(**kw: object) -> Pipeline:
    args: dict[str, object] = {"gateway_id": GW, "room": "OR-3", "key": b"k" * 32, "patterns": (r"MRN\d+",),
                               "rules": RuleEngine(()), "max_rows": 3, "max_age_us": 200_000}
    return Pipeline.create(**(args | kw))  # type: ignore[arg-type]


def _outbox(tmp_path, **kw: object) -> Outbox:
    args: dict[str, object] = {"path": tmp_path / "o.sqlite3", "max_bytes": 10**9, "max_age_us": 10**15,
                               "report_drop": lambda run, now: drop_report(GW, stream=run.stream,
                                   from_seq=run.from_seq, to_seq=run.to_seq, count=run.count, reason=run.reason,
                                   now_us=now)}
    return Outbox(**(args | kw))  # type: ignore[arg-type]


def _drafts(n: int, device: str = "d1") -> list[Draft]:
    p = _pipeline(max_rows=1)
    out = []
    for i in range(n):
        out += [o for o in p.handle(Sample(device_id=device, ts_us=T0 + i, values={"power_w": 1.0}), T0)
                if isinstance(o, Draft)]
    return out


# ---------------------------------------------------------------------------------------------- outbox
def test_seq_is_per_stream_monotonic_and_survives_reopen(tmp_path) -> None:
    with _outbox(tmp_path) as box:
        box.append(_drafts(3, "a") + _drafts(2, "b"), T0)
        assert box.next_seqs() == {"a": 4, "b": 3}
        assert box.acknowledge("a", 3) == 3
    with _outbox(tmp_path) as box:  # a restart: numbers continue, even for a fully acknowledged stream
        box.append(_drafts(1, "a"), T0)
        rows = box.fetch(priority=PRIORITY_TELEMETRY, after_id=0, limit=10)
        assert [(r.stream, r.seq) for r in rows] == [("b", 1), ("b", 2), ("a", 4)]
        assert orjson.loads(rows[-1].payload)["seq"] == 4


def test_failed_transaction_hands_out_no_numbers(tmp_path) -> None:
    with _outbox(tmp_path) as box:
        box.append(_drafts(2), T0)
        bad = Draft(stream="d1", topic="t", priority=1, created_us=T0, message=None)  # type: ignore[arg-type]
        with pytest.raises(AttributeError):
            box.append([*_drafts(1), bad], T0)
        box.append(_drafts(1), T0)
        assert [r.seq for r in box.fetch(priority=1, after_id=0, limit=10)] == [1, 2, 3]


def test_contiguous_runs() -> None:
    assert contiguous_runs("d", [9, 3, 5, 4], "max_bytes") == [
        DropRun("d", 3, 5, 3, "max_bytes"), DropRun("d", 9, 9, 1, "max_bytes")]


def test_full_outbox_drops_oldest_telemetry_never_events(tmp_path) -> None:
    p = _pipeline(max_rows=1)
    drafts: list[Draft] = []
    for i in range(40):
        drafts += [o for o in p.handle(Sample(device_id="d", ts_us=T0 + i, values={"x": 1.0}), T0)
                   if isinstance(o, Draft)]
        if i % 10 == 0:
            drafts += [o for o in p.handle(DeviceEvent(device_id="d", ts_us=T0 + i, kind="alarm_raised",
                                                       code="A", severity="high"), T0) if isinstance(o, Draft)]
    with _outbox(tmp_path, max_bytes=6_000) as box:
        drops = box.append(drafts, T0)
        assert box.total_bytes <= 6_000
        kept = box.fetch(priority=PRIORITY_EVENT, after_id=0, limit=100)
        telemetry = box.fetch(priority=PRIORITY_TELEMETRY, after_id=0, limit=100)
    alarms = [r for r in kept if b"alarm_raised" in r.payload]
    reports = [orjson.loads(r.payload) for r in kept if b"outbox_drop" in r.payload]
    assert len(alarms) == 4
    assert sum(r.count for r in drops) == sum(e["attrs"]["count"] for e in reports) > 0
    assert min(r.seq for r in telemetry) > max(d.to_seq for d in drops if d.stream == "d")  # oldest went first
    for e in reports:
        assert e["attrs"]["to_seq"] - e["attrs"]["from_seq"] + 1 == e["attrs"]["count"]


def test_age_bound_drops_old_telemetry(tmp_path) -> None:
    with _outbox(tmp_path, max_age_us=1_000) as box:
        box.append(_drafts(3), T0)
        drops = box.append([], T0 + 5_000)
        assert drops == [DropRun("d1", 1, 3, 3, "max_age")]


def test_wal_and_full_sync(tmp_path) -> None:
    with _outbox(tmp_path) as box:
        assert box.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


# ---------------------------------------------------------------------------------------------- pipeline
def test_pipeline_converts_units_and_batches() -> None:
    p = _pipeline()
    (birth,) = p.handle(Hello(device_id="ins-1", device_type="insufflator",
                              metrics=({"name": "pressure_mmhg", "unit": "kPa", "high": 4.0},)), T0)  # type: ignore[arg-type]
    assert isinstance(birth, DeviceBirth) and birth.metrics[0].unit == "mm[Hg]" and birth.room == "OR-3"
    out = [o for i in range(3) for o in p.handle(Sample(device_id="ins-1", ts_us=T0 + i, values={
        "pressure_mmhg": 2.0}), T0 + 10)]
    (draft,) = out
    assert isinstance(draft, Draft) and isinstance(draft.message, TelemetryBatch)
    batch = draft.seal(7)
    assert batch.seq == 7 and batch.metrics["pressure_mmhg"][0] == pytest.approx(15.0012, abs=1e-3)
    assert batch.gateway_ts_us == T0 + 10 and batch.clock_offset_us == 9  # median of 10, 9, 8


def test_pipeline_strips_patient_data_and_pseudonymises() -> None:
    p = _pipeline()
    line = parse_line(orjson.dumps({"type": "event", "device_id": "esu-1", "ts_us": T0, "kind": "info",
                                    "text": "for MRN99887", "case_id": "C-42", "patient": {"name": "Jane"}}))
    outputs = p.handle(line, T0)
    (draft,) = [o for o in outputs if isinstance(o, Draft)]
    body = draft.seal(1).model_dump_json()
    assert "Jane" not in body and "MRN99887" not in body and "C-42" not in body
    (proc,) = p.handle(Procedure(ts_us=T0, kind="case_start", case_id="C-42", procedure_type="lap"), T0)
    assert isinstance(proc, Draft) and isinstance(proc.message, ProcedureEvent)
    assert proc.stream == "_procedure" and proc.message.room == "OR-3"
    assert proc.message.case_id == draft.message.case_id  # type: ignore[union-attr]
    decode(proc.topic, orjson.dumps(proc.seal(1).model_dump(mode="json")))


def test_device_birth_free_text_is_scrubbed_and_has_no_control_characters() -> None:
    p = _pipeline()
    (birth,) = p.handle(Hello(device_id="esu-1", device_type="esu", manufacturer="ACME\x00\x1b Med",
                              serial="MRN123456", firmware="2.1 MRN42", udi="(01)MRN777",
                              metrics=({"name": "p", "unit": "MRN1", "description": "MRN5 \x07"},)),  # type: ignore[arg-type]
                        T0)
    assert isinstance(birth, DeviceBirth)
    body = birth.model_dump_json()
    assert "MRN" not in body and "\\u0000" not in body and "\\u001b" not in body and "\\u0007" not in body
    assert birth.manufacturer == "ACME Med" and birth.serial == "[redacted]" and birth.firmware == "2.1 [redacted]"


def test_a_value_that_overflows_its_unit_conversion_is_rejected_not_fatal() -> None:
    p = _pipeline(max_rows=2)
    p.handle(Hello(device_id="ins-1", device_type="insufflator",
                   metrics=({"name": "pressure_mmhg", "unit": "kPa"},)), T0)  # type: ignore[arg-type]
    first = p.handle(Sample(device_id="ins-1", ts_us=T0, values={"pressure_mmhg": 1e308}), T0)
    (rejected,) = [o for o in first if isinstance(o, Rejected)]
    assert "not finite" in rejected.detail and "pressure_mmhg" in rejected.detail
    sealed = p.handle(Sample(device_id="ins-1", ts_us=T0 + 1, values={"pressure_mmhg": 2.0}), T0 + 1)
    (draft,) = [o for o in sealed if isinstance(o, Draft)]  # sealed full: the good reading is not lost
    assert list(draft.seal(1).metrics["pressure_mmhg"]) == [None, pytest.approx(15.0012, abs=1e-3)]
    p.handle(Sample(device_id="ins-1", ts_us=T0 + 2, values={"pressure_mmhg": float("1e308")}), T0 + 2)
    (aged,) = p.due(T0 + 1_000_000)  # sealed by age on the ticker: no ValidationError escapes
    assert list(aged.seal(2).metrics["pressure_mmhg"]) == [None]


def test_alarm_from_rule_is_an_event_ahead_of_samples() -> None:
    rules = RuleEngine((ThresholdRule(metric="p", code="HI", above=15.0, for_s=0.0, severity="high"),))
    p = _pipeline(rules=rules, max_rows=100)
    out = p.handle(Sample(device_id="d", ts_us=T0, values={"p": 20.0}), T0)
    (alarm,) = [o for o in out if isinstance(o, Draft)]
    assert alarm.priority == PRIORITY_EVENT and alarm.message.kind == "alarm_raised"  # type: ignore[union-attr]


def test_clock_jump_is_an_event_and_flags_the_batch() -> None:
    p = _pipeline(max_rows=100)
    for i in range(5):
        p.handle(Sample(device_id="d", ts_us=T0 + i * 100_000, values={"p": 1.0}), T0 + i * 100_000)
    out = p.handle(Sample(device_id="d", ts_us=T0 + 3_600_000_000, values={"p": 1.0}), T0 + 500_000)
    kinds = [getattr(o.message, "kind", "telemetry") for o in out if isinstance(o, Draft)]
    assert kinds == ["clock_jump", "telemetry"]
    (last,) = p.drain(T0 + 600_000)
    assert last.message.clock_jump  # type: ignore[union-attr]


def test_invalid_line_is_rejected_not_raised() -> None:
    p = _pipeline()
    out = p.handle(DeviceEvent(device_id="d", ts_us=T0, kind="alarm_raised"), T0)  # an alarm without a code
    assert any(isinstance(o, Rejected) for o in out)


def test_heartbeats_tell_silent_devices_apart() -> None:
    p = _pipeline()
    p.handle(Hello(device_id="d", device_type="esu", heartbeat_s=1.0), T0)
    p.handle(Sample(device_id="d", ts_us=T0, values={"x": 1.0}), T0)
    assert [s.connected for s in p.heartbeats(T0)] == [True]
    assert p.heartbeats(T0 + 500_000) == []
    assert [s.connected for s in p.heartbeats(T0 + 4_000_000)] == [False]


# ---------------------------------------------------------------------------------------------- settings
def test_settings_from_toml_with_env_override(tmp_path, monkeypatch) -> None:
    cfg = tmp_path / "gateway.toml"
    cfg.write_text('gateway_id = "gw-9"\nroom = "OR 9"\n[mqtt]\nport = 1999\n[[rules]]\ncode = "HI"\n'
                   'metric = "pressure_mmhg"\nabove = 15\nfor_s = 5\n')
    monkeypatch.setenv("ORTEL_AGENT_MQTT__PORT", "2001")
    monkeypatch.setenv("ORTEL_AGENT_FLUSH_INTERVAL_S", "0.5")
    s = AgentSettings.from_toml(cfg)
    assert (s.gateway_id, s.room, s.mqtt.port, s.flush_interval_s) == ("gw-9", "OR 9", 2001, 0.5)
    assert s.rules[0].above == 15 and s.broker_username == "gw-9"
    assert "ORTEL_AGENT_MQTT__PORT" in os.environ


def test_example_config_loads() -> None:
    path = Path(__file__).resolve().parents[2] / "edge_agent" / "gateway.example.toml"
    s = AgentSettings.from_toml(path)
    assert s.gateway_id == "gw-or1" and s.mqtt.port == 8883 and len(s.rules) == 2
    assert s.rules[0].above == 15.0 and s.adapters.tcp_port == 7300


def test_cli_refuses_a_missing_config(tmp_path) -> None:
    from typer.testing import CliRunner

    from ortel_cli.main import app

    result = CliRunner().invoke(app, ["agent", "--config", str(tmp_path / "nope.toml")])
    assert result.exit_code != 0 and "config file not found" in result.output


def test_a_watermark_above_anything_numbered_deletes_nothing_and_moves_numbering_above_it(tmp_path) -> None:
    """A fresh outbox meets a retained watermark of the stream's earlier life: nothing of ours is acknowledged
    by it, and no seq at or below it is handed out again."""
    from edge_agent.outbox import Outbox

    path = tmp_path / "outbox.sqlite3"
    with Outbox(path=path, max_bytes=10**9, max_age_us=10**15, report_drop=None) as box:  # type: ignore[arg-type]
        assert box._seq_for("dev-1") == 1
        box._save_counters()
        assert box.acknowledge("dev-1", 500) == 0
        assert box._seq_for("dev-1") == 501
        box._save_counters()
    with Outbox(path=path, max_bytes=10**9, max_age_us=10**15, report_drop=None) as box:  # type: ignore[arg-type]
        assert box._seq_for("dev-1") == 502, "the jump survives a restart"


def test_the_last_privacy_check_reads_strings_not_numbers() -> None:
    """A site pattern for bare 7-digit record numbers flags text, never a reading or a time."""
    scrub = Scrubber((r"\b\d{7}\b",))
    dump = {"device_id": "esu-1", "ts_us": 1234567, "attrs": {"value": 7654321.0, "note": "bed 1234567"},
            "metrics": [{"name": "p", "low": 1000000}], "tags": ["ok", "id 7777777"]}
    assert scrub.leaks_in(dump) == ["1234567", "7777777"]
    assert scrub.leaks_in({"1234567": 1}) == ["1234567"], "keys are text too"
