"""Services under measurement as real processes: ``python -m ortel_cli ...`` or a script, logs to a file,
plus what ``/proc`` says about them (RSS, CPU seconds) for the resource figures."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import REPO_ROOT, BenchError

__all__ = ["CpuMeter", "Proc", "cpu_seconds", "ingest_env", "postgres_pids", "rss_bytes"]

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Proc:
    """``with Proc(argv, env=..., log=...) as p:`` starts on enter, SIGTERM (then SIGKILL) on exit."""

    argv: list[str]
    log: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @classmethod
    def ortel(cls, *args: str, log: Path, env: dict[str, str]) -> Proc:
        return cls([sys.executable, "-m", "ortel_cli", *args], log=log, env=env)

    def __enter__(self) -> Proc:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        pythonpath = [str(REPO_ROOT), *filter(None, [env.get("PYTHONPATH")])]
        env["PYTHONPATH"] = os.pathsep.join(pythonpath)
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen(self.argv, env=env, stdout=fh, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError("process not started")
        return self.proc.pid

    def send(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise BenchError(f"{' '.join(self.argv[-2:])} exited with {self.proc.returncode}:\n{self.tail()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def tail(self, n: int = 20) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as fh:
        return int(fh.read().split()[1]) * _PAGE


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process (all its threads)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def ingest_env(*, dsn: str, port: int, password: str, client_id: str, group: str = "bench") -> dict[str, str]:
    return {
        "ORTEL_INGEST_DSN": dsn,
        "ORTEL_INGEST_MQTT_HOST": "127.0.0.1",
        "ORTEL_INGEST_MQTT_PORT": str(port),
        "ORTEL_INGEST_MQTT_USER": "ingest",
        "ORTEL_INGEST_MQTT_PASSWORD": password,
        "ORTEL_INGEST_CLIENT_ID": client_id,
        "ORTEL_INGEST_GROUP": group,
        # no session outlives a bench run: a parked session would queue every later run's messages
        "ORTEL_INGEST_SESSION_EXPIRY_S": "0",
        "ORTEL_INGEST_OPS_PORT": "0",
        "ORTEL_INGEST_LOG_LEVEL": "warning",
    }


def _children(ppid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == ppid:
            out.append(int(entry))
    return out


def postgres_pids(data_dir: Path) -> list[int]:
    """The postmaster and its children (backends, walwriter, checkpointer...)."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return [postmaster, *_children(postmaster)]


@dataclass
class CpuMeter:
    """CPU used by groups of processes over a window, in cores (1.0 = one core busy the whole time)."""

    groups: dict[str, Callable[[], list[int]]]
    _start: dict[str, dict[int, float]] = field(default_factory=dict, init=False)
    _t0: float = field(default=0.0, init=False)
    _box0: tuple[float, float] = field(default=(0.0, 0.0), init=False)

    def _sample(self) -> dict[str, dict[int, float]]:
        out: dict[str, dict[int, float]] = {}
        for name, pids in self.groups.items():
            out[name] = {}
            for pid in pids():
                with contextlib.suppress(OSError):
                    out[name][pid] = cpu_seconds(pid)
        return out

    def start(self) -> None:
        self._start = self._sample()
        self._t0 = time.monotonic()
        self._box0 = _box_cpu()

    def stop(self) -> dict[str, float]:
        end = self._sample()
        wall = max(time.monotonic() - self._t0, 1e-6)
        cores = {
            name: round(sum(v - self._start.get(name, {}).get(pid, 0.0) for pid, v in pids.items()) / wall, 3)
            for name, pids in end.items()
        }
        busy1, total1 = _box_cpu()
        busy = busy1 - self._box0[0]
        total = total1 - self._box0[1]
        ours = sum(cores.values())
        cores["box_busy_cores"] = round((os.cpu_count() or 1) * busy / total, 3) if total else 0.0
        # whatever else runs on a shared machine (other jobs) competes for the same cores
        cores["other_processes_cores"] = round(max(0.0, cores["box_busy_cores"] - ours), 3)
        return cores


def _box_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as fh:
        values = [int(x) for x in fh.readline().split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return float(sum(values) - idle), float(sum(values))
