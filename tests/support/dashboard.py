"""The dashboard as a real process for tests: a credentials file, ``python -m ortel_cli dashboard`` on a free
port, polled until ``/healthz`` answers. Used by the browser tests (seeded database) and reusable with a
pipeline-filled one: pass any migrated database's reader DSN.

Test login: ``USER`` / ``PASSWORD``.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dashboard.credentials import add_user
from dashboard.settings import DashboardSettings
from ortel_cli.stack import free_port
from tests.support.harness import Database
from tests.support.poll import wait_until
from tests.support.procs import Service
from tests.support.seed import SeedResult

USER = "engineer"
PASSWORD = "ortel-engineer-pw"
# How often live pages poll out of the box: what the product's "updates within 2 s" is measured against.
PRODUCT_REFRESH_S = float(DashboardSettings.model_fields["refresh_interval_s"].default)


@dataclass(frozen=True)
class SeededDashboard:
    """A running dashboard over a database filled by ``tests.support.seed``."""

    base: str
    db: Database
    seed: SeedResult


@dataclass(frozen=True)
class RunningDashboard:
    base: str
    service: Service


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


@contextmanager
def running_dashboard(reader_dsn: str, workdir: Path, *, refresh_s: float = 1.0) -> Iterator[RunningDashboard]:
    creds = workdir / "credentials"
    add_user(creds, USER, PASSWORD)
    port = free_port()
    service = Service(["dashboard", "--port", str(port)], env={
        "ORTEL_DASHBOARD_DSN": reader_dsn,
        "ORTEL_DASHBOARD_CREDENTIALS_FILE": str(creds),
        "ORTEL_DASHBOARD_SECRET_KEY": "test-secret-not-for-production",
        "ORTEL_DASHBOARD_REFRESH_INTERVAL_S": str(refresh_s),
    }, log=workdir / "dashboard.log")
    service.start()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: http_status(f"{base}/healthz") == 200 or not service.running, timeout=60,
                   what="dashboard /healthz")
        assert service.running, service.output()
        yield RunningDashboard(base=base, service=service)
    finally:
        service.stop()
