"""The simulated service, live: an HTTP /metrics endpoint Prometheus scrapes.

Backfilled history ends when the benchmark starts measuring; from then on Prometheus
scrapes the same counters here, computed in closed form for the instant of the scrape,
so the raw series go on exactly as they would on a real service.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sloengine.simulate import Scenario, series_at


def _format(value: float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def exposition(scenario: Scenario, t: float) -> str:
    """Prometheus text format of every series at ``t``."""
    return "".join(f"{key} {_format(v)}\n" for key, v in series_at(scenario, t).items())


@contextlib.contextmanager
def serving(scenario: Scenario) -> Iterator[str]:
    """Serve ``scenario`` on a free loopback port; yields ``host:port``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exposition(scenario, time.time()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # scrapes are not news

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
