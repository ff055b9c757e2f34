"""Figure "profile": where an ingest process spends its time under the broker -> ingest load.

The ingest runs in its own process under pyinstrument (``python -m bench.profile_ingest``: the same
``run_ingest`` that ``ortel ingest`` calls, same env settings). pyinstrument samples the main thread, which is
the writer loop (classify = decode + validate, batch, COPY + ledger, ack); the paho network thread is not
sampled, so the CPU of every thread is also read from ``/proc`` to show the split. py-spy would sample every
thread but needs ptrace rights that containers often lack.

Output: the flat self-time table and the call tree in the JSON results (``extra.profile``), and the top
functions by self time in the Markdown notes.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from pathlib import Path

from bench.context import BenchContext
from bench.drive import Probe, check_stored, timed_load
from bench.ingest_path import clear_births, hospital, ingest_group, publish_births
from bench.mqtt_load import LoadPublisher
from bench.procs import cpu_seconds
from bench.results import Metric

__all__ = ["main", "run", "thread_cpu"]

OUT_ENV = "ORTEL_BENCH_PROFILE_OUT"


def main() -> None:
    """Subprocess entry: run ingest under pyinstrument until SIGTERM, then write the profile."""
    from pyinstrument import Profiler

    from ingest.service import run_ingest
    from ingest.settings import IngestSettings
    from runtime import logs

    settings = IngestSettings()
    logs.configure(level=settings.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    profiler = Profiler(interval=0.001, async_mode="disabled")
    profiler.start()
    try:
        run_ingest(settings, stop=stop)
    finally:
        profiler.stop()
        out = Path(os.environ[OUT_ENV])
        flat = profiler.output_text(flat=True, show_all=False)
        tree = profiler.output_text(show_all=False, processor_options={"filter_threshold": 0.01})
        out.write_text("== flat: self time per function (main thread) ==\n" + flat + "\n\n== call tree ==\n" + tree)


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread of ``pid``: ``main`` (tid == pid) and the others summed as ``other_threads``."""
    main_s = other_s = 0.0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        secs = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        if int(tid) == pid:
            main_s += secs
        else:
            other_s += secs
    return {"main_thread_s": round(main_s, 2), "other_threads_s": round(other_s, 2)}


def _flat_top(text: str, n: int = 12) -> list[str]:
    """The first ``n`` rows of pyinstrument's flat listing ("2.004 Connection.wait  psycopg/...")."""
    rows = [ln.strip() for ln in text.split("== call tree ==", maxsplit=1)[0].splitlines()]
    return [r for r in rows if re.match(r"^\d+\.\d+ \S", r)][:n]


def run(ctx: BenchContext) -> list[Metric]:
    samples = ctx.size(quick=300_000, full=600_000, minimum=2_000)
    workload = hospital(ctx, "p")
    batches = list(workload.batches(workload.steps_for(samples)))
    expected = sum(b.n_samples for b in batches)
    probe = Probe(workload)
    stack = ctx.stack
    out_file = stack.workdir("profile") / "profile-ingest.txt"
    ctx.status("profile: ingest under pyinstrument")
    argv = [sys.executable, "-m", "bench.profile_ingest"]
    with stack.database() as db:
        try:
            with ingest_group(stack, db, 1, "profile", argv=argv, extra_env={OUT_ENV: str(out_file)}) as procs, \
                    LoadPublisher(port=stack.mqtt_port, password=stack.password, window=1000) as pub:
                publish_births(pub, db, workload, probe, procs[0].check_alive)
                cpu0 = cpu_seconds(procs[0].pid)
                load = timed_load(pub, db, batches, done_sql="SELECT count(*) FROM received WHERE stream <> %s",
                                  done_params=(probe.device_id,), expected=len(batches),
                                  alive=procs[0].check_alive, timeout=900)
                threads = thread_cpu(procs[0].pid)
                threads["process_cpu_during_load_s"] = round(cpu_seconds(procs[0].pid) - cpu0, 2)
            check_stored(db, probe, expected)
        finally:
            clear_births(stack, workload, probe)
    raw = out_file.read_text() if out_file.exists() else "(no profile written)"
    # the header names this machine's paths; the flat table and the tree use repo-relative ones
    text = "\n".join(ln for ln in raw.splitlines() if not ln.startswith("Profile at "))
    ctx.notes.append("ingest profile (pyinstrument, main thread, flat self time): "
                     + " / ".join(x.strip() for x in _flat_top(text, 6)))
    return [Metric("profile", "ingest_samples_per_s_profiled", "samples/s", (load.rate,),
                   note="one profiled run (pyinstrument adds overhead); see extra.top_self_time",
                   extra={"top_self_time": _flat_top(text), "thread_cpu": threads, "wall_s": round(load.elapsed_s, 2),
                          "profile": text})]


if __name__ == "__main__":
    main()
