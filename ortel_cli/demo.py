"""``ortel demo``: the whole system on one machine, nothing to configure.

Starts, under ``.ortel/``: a private Mosquitto (the repo's mosquitto.conf and ACL, free loopback port) and a
private PostgreSQL (free loopback port), applies the migrations, then runs ingest, the dashboard and the
simulators (one edge agent per operating room, in process) as child processes. Ctrl-C (or SIGTERM) stops the
children in reverse order, then the servers. Secrets are made on first start and reused afterwards.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from ortel_cli.stack import MosquittoServer, PostgresServer, free_port, wait_for_port

DB_NAME = "ortel"
# One procedure type per room, in this order: lap chole, a robotic case, POEM, a knee (cycled for more rooms).
SCENARIOS = "lap-chole,robotic-prostatectomy,poem,knee-arthroplasty"
# Rooms start staggered (the first incision comes 15-25 min in): begin the plan 45 virtual minutes in, so the
# first screen already shows cases under way with their history; from there time runs at --speed.
WARM_START_S = 45 * 60


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        fh = open(self.log, "ab")  # noqa: SIM115 - owned by the child process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ortel_cli", *self.args],
            env={**os.environ, **self.env, "PYTHONUNBUFFERED": "1"},
            stdout=fh,
            stderr=subprocess.STDOUT,
        )

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def ensure_database(pg: PostgresServer) -> str:
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DB_NAME}")
    return pg.dsn(DB_NAME)


@contextlib.contextmanager
def servers(directory: Path, *, broker_port: int, pg_port: int, users: dict[str, str]) -> Iterator[
    tuple[MosquittoServer, PostgresServer]
]:
    broker = MosquittoServer(directory=directory / "mosquitto", port=broker_port, users=users)
    broker.write_config()  # passwords may have changed since the last run
    pg = PostgresServer(directory=directory / "postgres", port=pg_port)
    try:
        broker.start()
        pg.start()
        yield broker, pg
    finally:
        broker.stop()
        pg.stop()


def run_demo(
    *,
    directory: Path,
    dashboard_port: int,
    rooms: int,
    speed: float,
    seed: int,
    stop: threading.Event,
    out: object = sys.stdout,
) -> None:
    from ingest.migrate import migrate
    from ortel_cli.security import ensure_dev_secrets

    def say(text: str) -> None:
        print(text, file=out, flush=True)  # type: ignore[arg-type]

    directory.mkdir(parents=True, exist_ok=True)
    secrets = ensure_dev_secrets(directory, gateways=tuple(f"gw-or{i}" for i in range(1, rooms + 1)))
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    users = dict(secrets.broker_passwords)
    with servers(directory, broker_port=free_port(), pg_port=free_port(), users=users) as (broker, pg):
        dsn = ensure_database(pg)
        migrate(dsn)
        say(f"broker      127.0.0.1:{broker.port}   database 127.0.0.1:{pg.port}/{DB_NAME}")
        mqtt = {"host": "127.0.0.1", "port": str(broker.port)}
        children = [
            Child("ingest", ["ingest"], {
                "ORTEL_INGEST_DSN": pg.dsn(DB_NAME, user="ortel_writer"),
                "ORTEL_INGEST_MQTT_HOST": mqtt["host"],
                "ORTEL_INGEST_MQTT_PORT": mqtt["port"],
                "ORTEL_INGEST_MQTT_PASSWORD": users["ingest"],
                "ORTEL_INGEST_OPS_PORT": str(free_port()),
                "ORTEL_INGEST_REFRESH_INTERVAL_S": "20",
            }, logs / "ingest.log"),
            Child("dashboard", ["dashboard"], {
                "ORTEL_DASHBOARD_DSN": pg.dsn(DB_NAME, user="ortel_reader"),
                "ORTEL_DASHBOARD_PORT": str(dashboard_port),
                "ORTEL_DASHBOARD_CREDENTIALS_FILE": str(secrets.dashboard_credentials),
            }, logs / "dashboard.log"),
            Child("simulate", [
                "simulate", "--rooms", str(rooms), "--speed", str(speed), "--seed", str(seed),
                "--scenario", SCENARIOS, "--cases", "100",
                "--warm-start", str(WARM_START_S),
                "--outbox-dir", str(directory / "outbox"), "--mqtt-port", mqtt["port"],
                "--passwords", str(secrets.secrets_file),
            ], {}, logs / "simulate.log"),
        ]
        try:
            for child in children:
                child.start()
            wait_for_port(dashboard_port, timeout=60, proc=children[1].proc)
            say(f"dashboard   http://127.0.0.1:{dashboard_port}")
            if secrets.dashboard_password:
                say(f"login       {secrets.dashboard_user} / {secrets.dashboard_password}")
            say(f"            (kept in {secrets.dashboard_credentials} as a hash, the password in "
                f"{secrets.secrets_file})")
            say(f"logs        {logs}/   Ctrl-C stops everything.")
            while not stop.is_set():
                for child in children:
                    if child.proc is not None and child.proc.poll() is not None:
                        say(f"{child.name} exited with {child.proc.returncode}; see {child.log}")
                        stop.set()
                stop.wait(1.0)
        finally:
            say("stopping ...")
            for child in reversed(children):
                child.stop()
    say("stopped.")


def install_signal_handlers(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
