"""The benchmarks' private servers and plumbing: one Mosquitto and one PostgreSQL for a whole ``ortel bench``.

The servers are the ones the tests and ``ortel demo`` run (``ortel_cli.stack``), with the repo's broker config
and ACL; every measurement gets a freshly migrated database so indexes start empty and runs are comparable.

    BenchError
     └── StackTimeout     a server or a service did not reach the expected state in time
"""

from __future__ import annotations

import contextlib
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ortel_cli.stack import Database, MosquittoServer, PostgresServer

__all__ = [
    "BenchDb",
    "BenchError",
    "BenchStack",
    "StackTimeout",
    "load_average",
    "machine_info",
    "poll",
    "versions",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
ADMIN_USER = "ortel-admin"
INGEST_USER = "ingest"


class BenchError(RuntimeError):
    """Base class of the benchmarks' own failures."""


class StackTimeout(BenchError):
    pass


def poll(check: Callable[[], object], *, timeout: float, interval: float = 0.05, what: str) -> object:
    """Call ``check`` until it returns something truthy; raise ``StackTimeout`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StackTimeout(f"timed out after {timeout:.0f}s waiting for {what} (last: {value!r})")
        time.sleep(interval)  # poll interval, bounded by the deadline above


BenchDb = Database  # the same migrated-database handle the tests and the demo use


@dataclass
class BenchStack:
    """Private broker + cluster under a temporary directory; ``with BenchStack() as stack: ...``."""

    root: Path | None = None
    password: str = field(default_factory=lambda: secrets.token_hex(12))
    broker: MosquittoServer | None = field(default=None, init=False)
    pg: PostgresServer | None = field(default=None, init=False)
    _owns_root: bool = field(default=False, init=False)

    def __enter__(self) -> BenchStack:
        if self.root is None:
            self.root = Path(tempfile.mkdtemp(prefix="ortel-bench-"))
            self._owns_root = True
        self.root.chmod(0o755)
        try:
            users = {INGEST_USER: self.password, ADMIN_USER: self.password}
            self.broker = MosquittoServer(directory=self.root / "mosquitto", users=users).start()
            self.pg = PostgresServer(directory=self.root / "postgres").start()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.broker is not None:
            self.broker.stop()
        if self.pg is not None:
            self.pg.stop("immediate")
        if self._owns_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    @property
    def variant(self) -> str:
        assert self.pg is not None
        return "timescale" if self.pg.timescaledb else "plain"

    @property
    def mqtt_port(self) -> int:
        assert self.broker is not None
        return self.broker.port

    def add_gateway(self, gateway_id: str) -> None:
        """Register a gateway login (username = gateway id, as the ACL expects)."""
        assert self.broker is not None
        self.broker.add_user(gateway_id, self.password)

    def new_db(self) -> BenchDb:
        """A freshly migrated database (TimescaleDB when the server has it)."""
        from ingest.migrate import migrate

        assert self.pg is not None
        name = f"b_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        migrate(self.pg.dsn(name), timescale="on" if self.variant == "timescale" else "off")
        return BenchDb(server=self.pg, name=name, variant=self.variant)

    def drop_db(self, db: BenchDb) -> None:
        assert self.pg is not None
        with psycopg.connect(self.pg.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {db.name} WITH (FORCE)")

    @contextlib.contextmanager
    def database(self) -> Iterator[BenchDb]:
        db = self.new_db()
        try:
            yield db
        finally:
            self.drop_db(db)

    def workdir(self, name: str) -> Path:
        assert self.root is not None
        path = self.root / "work" / f"{name}-{uuid.uuid4().hex[:6]}"
        path.mkdir(parents=True)
        return path


# ----------------------------------------------------------------------------------------- provenance


def _first_line(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=10)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return "?"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else "?"


def machine_info() -> dict[str, object]:
    cpu = "?"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram_gib = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                ram_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    return {
        "nproc": os.cpu_count(),
        "ram_gib": ram_gib,
        "cpu_model": cpu,
        "kernel": platform.release(),
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: how busy the (shared) machine was."""
    return [round(x, 2) for x in os.getloadavg()]


def versions(stack: BenchStack | None = None) -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {"python": sys.version.split()[0]}
    for pkg in ("ortel", "paho-mqtt", "aiomqtt", "psycopg", "orjson", "pydantic"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "?"
    # The code measured: a benchmark of a moving tree should say which tree (read-only git query).
    out["ortel_tree"] = _first_line(["git", "-C", str(REPO_ROOT), "describe", "--always", "--dirty"])
    out["mosquitto"] = _first_line([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-h"]).replace(
        "mosquitto version ", ""
    )
    if stack is not None and stack.pg is not None:
        with psycopg.connect(stack.pg.dsn(), autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            out["postgresql"] = str(row[0]) if row else "?"
        out["timescaledb"] = "installed" if stack.pg.timescaledb else "not installed"
    return out
