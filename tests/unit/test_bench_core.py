"""Pure parts of the benchmarks: the synthetic load is valid wire data, and figures combine as documented."""

from __future__ import annotations

import orjson

import wire
from bench.latency import _payload, percentile
from bench.results import Metric, Report, evaluate_targets, merge, ratio
from bench.workload import Workload, copy_text

START_US = 1_763_884_800_000_000


def test_workload_batches_decode_and_match_the_copy_rows() -> None:
    wl = Workload(gateways=2, devices_per_gateway=3, start_us=START_US, rows_per_batch=4)
    batches = list(wl.batches(2))
    assert len(batches) == 2 * wl.n_devices
    for b in batches:
        _topic, msg = wire.decode(b.topic, b.payload)
        assert isinstance(msg, wire.TelemetryBatch)
        assert (msg.device_id, msg.seq, msg.ts_us) == (b.device_id, b.seq, b.ts_us)
        assert msg.n_samples == b.n_samples == 4 * 5
    rows = copy_text(batches).decode().splitlines()
    assert len(rows) == sum(b.n_samples for b in batches)
    device, metric, ts, value, seq = rows[0].split("\t")
    assert (device, metric, seq) == (batches[0].device_id, "power_w", "1")
    assert ts == "2025-11-23T08:00:00+00:00" and float(value) == batches[0].values[0][0]


def test_births_and_latency_payloads_are_valid_wire_messages() -> None:
    wl = Workload(gateways=1, devices_per_gateway=2, start_us=START_US)
    for topic, payload in wl.births():
        assert isinstance(wire.decode(topic, payload)[1], wire.DeviceBirth)
    gw, dev = wl.devices()[0]
    payload = _payload(gw, dev, 7, [START_US, START_US + 100_000], wl.metrics)
    _, msg = wire.decode(f"ortel/v1/{gw}/dev/{dev}/telemetry", payload)
    assert isinstance(msg, wire.TelemetryBatch) and msg.seq == 7 and msg.n_samples == 10
    assert orjson.loads(payload)["gateway_ts_us"] == START_US + 100_000


def test_ratios_pair_runs_by_index_and_merge_concatenates_rounds() -> None:
    a = Metric("e2e", "samples_per_s", "samples/s", (100.0, 90.0), extra={"cpu_cores_median": {"x": 1.0}})
    b = Metric("ceiling", "copy_idempotent", "rows/s", (200.0, 300.0))
    assert ratio("r", a, b).runs == (0.5, 0.3)
    merged = merge(a, Metric("e2e", "samples_per_s", "samples/s", (80.0,), extra={"cpu_cores_median": {"x": 3.0}}))
    assert merged.runs == (100.0, 90.0, 80.0)
    assert merged.extra["cpu_cores_median"] == {"x": 2.0} and len(merged.extra["cpu_cores_runs"]) == 2
    assert (merged.median, merged.min, merged.max) == (90.0, 80.0, 100.0)


def test_targets_report_met_unmet_and_unmeasured() -> None:
    report = Report(started_at="t", command="c", machine={}, versions={}, settings={})
    report.add(Metric("e2e", "samples_per_s", "samples/s", (90.0,)))
    report.add(Metric("ceiling", "copy_idempotent", "rows/s", (100.0,)))
    report.add(Metric("dashboard", "timeline_query", "ms", (400.0,)))
    report.add_ratios()
    by_text = {t["target"]: t for t in evaluate_targets(report.metrics)}
    assert by_text["end to end >= 0.5 x idempotent COPY ceiling"]["met"] is True
    assert by_text["stretch: end to end >= 0.8 x ceiling"]["met"] is True
    assert by_text["procedure timeline query <= 300 ms median"]["met"] is False
    assert by_text["30-day device history <= 500 ms median"]["met"] is None


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 51.0  # index round(0.5 * 99) = 50
    assert percentile(values, 99) == 99.0
    assert percentile([], 99) != percentile([], 99)  # NaN
