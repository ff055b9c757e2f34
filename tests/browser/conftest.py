"""Browser fixtures: a seeded OR day, the dashboard as a real process, a logged-in headless Chromium.

Module-scoped so one server and one browser serve a module's tests (login: tests.support.dashboard.USER).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver

from tests.support.browser import chromium, login
from tests.support.dashboard import PASSWORD, PRODUCT_REFRESH_S, USER, SeededDashboard, running_dashboard
from tests.support.harness import create_database, drop_database
from tests.support.poll import wait_until
from tests.support.seed import HeartbeatLoop, seed_or_day


@pytest.fixture(scope="module")
def dashboard(pg, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeededDashboard]:
    database = create_database(pg, "plain")
    try:
        seed = seed_or_day(database.dsn(), hz=2.0)
        # the product's own refresh interval: the live-update test measures its promise against it
        with HeartbeatLoop(database.dsn(), period_s=2.0), running_dashboard(
            database.reader_dsn, tmp_path_factory.mktemp("dashboard"), refresh_s=PRODUCT_REFRESH_S
        ) as running:
            yield SeededDashboard(base=running.base, db=database, seed=seed)
    finally:
        drop_database(database)


@pytest.fixture(scope="module")
def browser(dashboard: SeededDashboard) -> Iterator[webdriver.Chrome]:
    with chromium() as driver:
        login(driver, dashboard.base, USER, PASSWORD)
        wait_until(lambda: "/login" not in driver.current_url, timeout=20, what="login redirect")
        yield driver


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")
