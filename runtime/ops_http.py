"""A tiny HTTP server for operations: ``/metrics`` (Prometheus text) and ``/healthz`` (JSON).

Runs in a daemon thread beside the service's event loop; ``health`` returns (ok, details) and must be cheap
and thread-safe (read a few attributes, no I/O).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

__all__ = ["HealthFn", "serve_ops"]

HealthFn = Callable[[], tuple[bool, dict[str, Any]]]


def _handler(health: HealthFn, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif self.path == "/healthz":
                ok, details = health()
                self._send(200 if ok else 503, orjson.dumps({"ok": ok, **details}), "application/json")
            else:
                self._send(404, b"not found\n", "text/plain")

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@contextmanager
def serve_ops(
    host: str, port: int, *, health: HealthFn, registry: CollectorRegistry = REGISTRY
) -> Iterator[ThreadingHTTPServer]:
    """Serve until the block exits; ``port=0`` picks a free port (read it from ``server.server_port``)."""
    server = ThreadingHTTPServer((host, port), _handler(health, registry))
    thread = threading.Thread(target=server.serve_forever, name=f"ops-http-{port}", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
