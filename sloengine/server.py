"""/metrics, /healthz and the web page, over HTTP on a background thread.

GET only: nothing served here changes any state (other methods get 501 from the
standard library). Pages are served with a policy that forbids every script and every
asset from elsewhere, so even markup that slipped through could run nothing.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from sloengine.errors import UserError

log = logging.getLogger("sloengine")

# (status code, content type, body) for a path and its query parameters.
Response = tuple[int, str, bytes]
Pages = Callable[[str, dict[str, list[str]]], Response]

HTML = "text/html; charset=utf-8"
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


def address(listen: str) -> tuple[str, int]:
    """(host, port) of a ``--listen`` HOST:PORT; an empty host is 127.0.0.1."""
    host, _, port = listen.rpartition(":")
    return host or "127.0.0.1", int(port)


def check_free(listen: str) -> None:
    """Fail now, before minutes of work, when nothing could listen on ``listen``."""
    host, port = address(listen)
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        raise UserError(
            f"cannot listen on {listen}: {exc.strerror}", "choose another --listen address"
        ) from None


def serve(
    host: str,
    port: int,
    registry: CollectorRegistry | None,
    health: Callable[[], tuple[bool, dict[str, Any]]],
    pages: Pages | None = None,
) -> ThreadingHTTPServer:
    """Start serving; ``health`` says whether the process is healthy, and why; ``pages``
    answers every other path (the web page), if given."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/metrics" and registry is not None:
                self._send(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            elif path == "/healthz":
                ok, detail = health()
                body = json.dumps({"ok": ok, **detail}).encode()
                self._send(200 if ok else 503, "application/json", body)
            elif pages is not None:
                try:
                    code, content_type, body = pages(path, parse_qs(parts.query))
                except Exception:  # a bug in one page must not take the server down
                    log.exception("cannot render %s", path)
                    code, content_type, body = 500, "text/plain", b"internal error\n"
                self._send(code, content_type, body)
            else:
                self._send(404, "text/plain", b"not found: try /metrics or /healthz\n")

        def _send(self, code: int, content_type: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            if content_type == HTML:
                self.send_header("Content-Security-Policy", POLICY)
                self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # scrapes every few seconds would drown the log

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="sloengine-http", daemon=True).start()
    return httpd
