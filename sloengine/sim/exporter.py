"""The simulated service, live: an HTTP /metrics endpoint for Prometheus to scrape.

Backfilled history ends where the TSDB head begins; scraping the same scenario from
then on gives continuous data up to the present, as a real service would: each scrape
computes the counters in closed form for its own instant.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sloengine.sim.openmetrics import exposition
from sloengine.sim.traffic import Scenario


def serve_metrics(
    scenario: Scenario, host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """Serve the scenario's counters at the present on /metrics from a daemon thread.

    The caller stops it with ``shutdown()`` (or leaves it to die with the process).
    """
    return serve_exposition(lambda: exposition(scenario, time.time()).encode(), host, port)


def serve_exposition(
    body: Callable[[], bytes], host: str = "127.0.0.1", port: int = 0
) -> ThreadingHTTPServer:
    """Serve ``body()`` (a text exposition) on /metrics from a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            text = body()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)

        def log_message(self, format: str, *args: object) -> None:
            del format, args  # scrapes are not news

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="simulated-service", daemon=True).start()
    return server


def serving(scenario: Scenario) -> contextlib.AbstractContextManager[str]:
    """Serve ``scenario`` on a free loopback port until the block exits; yields host:port."""
    return serving_exposition(lambda: exposition(scenario, time.time()).encode())


@contextlib.contextmanager
def serving_exposition(body: Callable[[], bytes]) -> Iterator[str]:
    """Serve ``body()`` on a free loopback port until the block exits; yields host:port."""
    server = serve_exposition(body)
    try:
        host, port = server.server_address[:2]
        yield f"{host!s}:{port}"
    finally:
        server.shutdown()
        server.server_close()
