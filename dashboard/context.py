"""What callbacks need from the running app (its pool and options), looked up per request on the Flask app.

No module-level state: ``create_app`` stores a ``Services`` on ``server.extensions`` and callbacks fetch it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import flask
import flask_login
import psycopg
from psycopg_pool import ConnectionPool

__all__ = ["Services", "connection", "services", "username"]

KEY = "ortel_dashboard"


@dataclass(frozen=True)
class Services:
    pool: ConnectionPool
    refresh_ms: int


def services() -> Services:
    return flask.current_app.extensions[KEY]  # type: ignore[no-any-return]


@contextmanager
def connection() -> Iterator[psycopg.Connection]:
    with services().pool.connection() as conn:
        yield conn


def username() -> str:
    return str(flask_login.current_user.get_id())
