"""The benchmark scripts still run: ceiling and naive figures on tiny sizes, result JSON and Markdown shape.

Not a performance test: no timing is asserted, only that every number is a positive measurement.
"""

from __future__ import annotations

import math
from pathlib import Path

import orjson

from bench.runner import run_bench, select


def test_ceiling_and_naive_produce_a_complete_report(tmp_path: Path) -> None:
    docs = tmp_path / "benchmarks.md"
    report, path = run_bench(
        figures=select(["ceiling", "naive"]), runs=2, quick=True, command="ortel bench --smoke",
        results_dir=tmp_path / "results", docs=docs, scale=0.02, show_progress=False,
    )
    assert report.errors == {}
    data = orjson.loads(path.read_bytes())
    assert set(data) >= {"started_at", "command", "machine", "versions", "settings", "metrics", "targets"}
    assert data["machine"]["nproc"] >= 1 and data["versions"]["postgresql"]
    by_key = {f"{m['figure']}.{m['name']}": m for m in data["metrics"]}
    assert set(by_key) >= {"ceiling.copy_idempotent", "ceiling.copy_plain", "naive.samples_per_s",
                           "ratios.idempotent / plain copy"}
    for metric in by_key.values():
        assert len(metric["runs"]) == 2
        assert all(math.isfinite(v) and v > 0 for v in metric["runs"])
        assert metric["min"] <= metric["median"] <= metric["max"]
    text = docs.read_text()
    assert "| ceiling | copy_idempotent |" in text and "### Targets" in text
