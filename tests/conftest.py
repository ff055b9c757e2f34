"""Session fixtures: a real Mosquitto and a real PostgreSQL on free ports in temp dirs.

- ``broker``: shared Mosquitto with the repo's mosquitto.conf and ACL; ``gateway_user`` adds a gateway login.
- ``pg``: shared PostgreSQL cluster; ``db``: a fresh migrated database per test, run once per available
  variant (plain PostgreSQL always; TimescaleDB too when the extension is installed on this machine).
- ``make_broker`` / ``make_postgres``: private servers for tests that kill or restart them.
- ``pki``: a private CA for the session (``ortel_cli.pki.Pki``: ``.ensure_gateway(gw, now=...)`` issues a
  client certificate); ``tls_broker``: a shared Mosquitto whose TLS listener (``.tls_port``) requires them.
Missing server binaries fail the suite with the command that installs them.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from ortel_cli.pki import Pki
from ortel_cli.stack import MosquittoServer, PostgresServer, _pg_bindir, free_port, timescaledb_installed
from tests.support.harness import (
    TEST_PASSWORD,
    Database,
    create_database,
    drop_database,
    new_broker,
    prepare_templates,
)

# Property tests are seeded too: the same examples on every run and every machine.
hypothesis_settings.register_profile("ortel", derandomize=True, deadline=None)
hypothesis_settings.load_profile("ortel")


def _variants() -> list[str]:
    try:
        return ["plain", "timescale"] if timescaledb_installed(_pg_bindir()) else ["plain"]
    except Exception:  # a missing server is reported by the pg fixture with an install hint
        return ["plain"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db" in metafunc.fixturenames:
        # The TimescaleDB variant runs wherever the extension is installed; elsewhere it shows as a skip, so
        # a run never hides that it covered plain PostgreSQL only.
        variants = _variants()
        params = [pytest.param(v) for v in variants]
        if "timescale" not in variants:
            params.append(pytest.param("timescale", marks=pytest.mark.skip(
                reason="timescaledb extension not installed on this machine (runs where it is)")))
        metafunc.parametrize("db", params, indirect=True)


@pytest.fixture(scope="session")
def stack_root() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="ortel-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(stack_root: Path) -> Iterator[MosquittoServer]:
    server = new_broker(stack_root / "mosquitto")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pki(stack_root: Path) -> Pki:
    """A private CA with a broker certificate (SAN localhost/127.0.0.1); issue gateway certs on demand."""
    authority = Pki(stack_root / "pki")
    authority.ensure_broker(now=datetime.now(UTC))
    return authority


@pytest.fixture(scope="session")
def tls_broker(stack_root: Path, pki: Pki) -> Iterator[MosquittoServer]:
    """Shared Mosquitto with the repo's config and both listeners: ``.port`` (passwords) and ``.tls_port``."""
    server = new_broker(stack_root / "mosquitto-tls", tls_port=free_port(), tls_files=pki.broker_files())
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg(stack_root: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(directory=stack_root / "postgres").start()
    try:
        server.variants = prepare_templates(server)  # type: ignore[attr-defined]
        yield server
    finally:
        server.stop()


@pytest.fixture
def db(request: pytest.FixtureRequest, pg: PostgresServer) -> Iterator[Database]:
    database = create_database(pg, request.param)
    yield database
    drop_database(database)


@pytest.fixture
def uid() -> str:
    """A short unique token for topics, gateway ids and device ids of one test."""
    return uuid.uuid4().hex[:8]


@pytest.fixture
def gateway_user(broker: MosquittoServer) -> Callable[[str], tuple[str, str]]:
    """Register a gateway login on the shared broker; returns (username, password)."""

    def add(gateway_id: str) -> tuple[str, str]:
        broker.add_user(gateway_id, TEST_PASSWORD)
        return gateway_id, TEST_PASSWORD

    return add


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A directory the server users can traverse. Not pytest's tmp_path: a concurrent pytest session resets
    its base directory to mode 0700, which locks out postgres/mosquitto mid-test."""
    path = Path(tempfile.mkdtemp(prefix="ortel-srv-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def make_broker(private_dir: Path) -> Iterator[Callable[..., MosquittoServer]]:
    made: list[MosquittoServer] = []

    def make(**kwargs: object) -> MosquittoServer:
        server = new_broker(private_dir / f"mosquitto-{len(made)}", **kwargs)
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop()


@pytest.fixture
def make_postgres(private_dir: Path) -> Iterator[Callable[[], PostgresServer]]:
    made: list[PostgresServer] = []

    def make() -> PostgresServer:
        server = PostgresServer(directory=private_dir / f"postgres-{len(made)}").start()
        server.variants = prepare_templates(server)  # type: ignore[attr-defined]
        made.append(server)
        return server

    yield make
    for server in made:
        server.stop("immediate")
