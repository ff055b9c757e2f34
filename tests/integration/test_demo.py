"""`ortel demo` (what `make demo` runs): private servers, secrets made on first start, data on the dashboard
within a minute, and a clean stop on SIGTERM that leaves no process behind."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
import pytest

from ortel_cli.stack import free_port
from tests.support.poll import wait_until

REPO = Path(__file__).resolve().parents[2]


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def _count(dsn: str, sql: str) -> int:
    try:
        with psycopg.connect(dsn, connect_timeout=2) as conn:
            row = conn.execute(sql).fetchone()  # type: ignore[arg-type]
            return int(row[0]) if row else 0
    except psycopg.OperationalError:
        return 0


@pytest.mark.slow
def test_demo_runs_everything_and_stops_cleanly() -> None:
    directory = Path(tempfile.mkdtemp(prefix="ortel-demo-"))
    directory.chmod(0o755)
    port = free_port()
    log = directory / "demo.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "ortel_cli", "demo", "--dir", str(directory / "state"),
                                 "--port", str(port), "--rooms", "2"], stdout=out, stderr=subprocess.STDOUT,
                                cwd=REPO)
    try:
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{port}/healthz"), timeout=60, what="dashboard /healthz")
        # The demo polls the dashboard port itself and prints the banner once it sees it open, a moment after
        # /healthz answers here: wait for the banner's last line rather than racing it.
        wait_until(lambda: "Ctrl-C stops everything." in log.read_text(), timeout=30, what="the demo's banner")
        text = log.read_text()
        assert f"http://127.0.0.1:{port}" in text
        login = re.search(r"login\s+(\S+) / (\S+)", text)
        assert login, text
        assert (directory / "state" / "credentials").read_text().count(login.group(1) + ":scrypt:") == 1
        db_port = re.search(r"database 127\.0\.0\.1:(\d+)/ortel", text)
        assert db_port, text
        assert int(db_port.group(1)) != 5432
        dsn = f"host=127.0.0.1 port={db_port.group(1)} dbname=ortel user=postgres"
        wait_until(lambda: _count(dsn, "SELECT count(*) FROM samples") > 1000, timeout=60, what="samples stored")
        wait_until(lambda: _count(dsn, "SELECT count(DISTINCT room) FROM procedures") == 2, timeout=30,
                   what="a case under way in both rooms")
        wait_until(lambda: _count(dsn, "SELECT count(*) FROM devices WHERE connected") >= 10, timeout=30,
                   what="device births")
        assert _count(dsn, "SELECT count(*) FROM dead_letters") == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    assert code == 0, log.read_text()[-2000:]
    assert log.read_text().rstrip().endswith("stopped.")
    leftovers = subprocess.run(["pgrep", "-f", str(directory)], check=False, capture_output=True, text=True).stdout
    assert leftovers.strip() == "", f"processes left running: {leftovers}"
