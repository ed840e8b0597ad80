"""A fault-injecting HTTP proxy in front of a real Prometheus, on loopback.

What gateways, proxies and broken servers answer: wrong shapes, NaN and Inf values,
a trickle of bytes, an answer too large to hold, 5xx, a connection that never answers,
and a proxy that echoes the credentials it was sent. ``mode`` picks the fault; ``pass``
forwards untouched.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODES = (
    "pass",
    "no-data",  # valid JSON, no `data`
    "null-data",  # "data": null
    "no-value",  # samples without `value`
    "text-values",  # values that are not numbers
    "nan",  # every value NaN
    "inf",  # every value +Inf
    "trickle",  # the real answer, one byte every `trickle_seconds`
    "huge",  # a body larger than any answer sloengine asks for
    "5xx",  # 502 from a gateway
    "hang",  # headers never come
    "echo-auth",  # 401 with the request's Authorization header in the body
)


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode = "pass"
        self.trickle_seconds = 0.2
        self.huge_bytes = 80 * 1024 * 1024
        self.requests = 0
        self.release = threading.Event()  # ends every hang

    def forward(self, path: str) -> tuple[int, bytes]:
        with urllib.request.urlopen(self.upstream + path, timeout=30) as response:
            return response.status, response.read()


def _rewrite(body: bytes, value: Any) -> bytes:
    doc = json.loads(body)
    for item in doc.get("data", {}).get("result", []):
        if isinstance(item, dict) and "value" in item:
            item["value"][1] = value
    return json.dumps(doc).encode()


@contextmanager
def serve(upstream: str) -> Iterator[tuple[FaultProxy, str]]:
    proxy = FaultProxy(upstream)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            proxy.requests += 1
            mode = proxy.mode
            if mode == "hang":
                proxy.release.wait(60)
                return
            if mode == "5xx":
                return self._send(502, b"<html>502 Bad Gateway</html>", "text/html")
            if mode == "echo-auth":
                body = f"unauthorized: {self.headers.get('Authorization')}".encode()
                return self._send(401, body, "text/plain")
            if mode == "huge":
                return self._huge()
            status, body = proxy.forward(self.path)
            if mode == "no-data":
                body = b'{"status": "success"}'
            elif mode == "null-data":
                body = b'{"status": "success", "data": null}'
            elif mode == "no-value":
                body = (
                    b'{"status":"success","data":{"resultType":"vector","result":[{"metric":{}}]}}'
                )
            elif mode in ("text-values", "nan", "inf"):
                body = _rewrite(body, {"text-values": "abc", "nan": "NaN", "inf": "+Inf"}[mode])
            if mode == "trickle":
                return self._trickle(status, body)
            self._send(status, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _trickle(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            deadline = time.monotonic() + 30  # bounded: the client gives up long before
            for i in range(len(body)):
                if proxy.release.is_set() or time.monotonic() > deadline:
                    return
                try:
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                except OSError:
                    return  # the client gave up, as it should
                time.sleep(proxy.trickle_seconds)

        def _huge(self) -> None:
            head = b'{"status":"success","data":{"resultType":"vector","result":['
            item = b'{"metric":{"service":"x"},"value":[1,"1"]},'
            count = proxy.huge_bytes // len(item)
            tail = b'{"metric":{},"value":[1,"1"]}]}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(head) + count * len(item) + len(tail)))
            self.end_headers()
            try:
                self.wfile.write(head)
                chunk = item * 4096
                for _ in range(count // 4096):
                    self.wfile.write(chunk)
                self.wfile.write(item * (count % 4096))
                self.wfile.write(tail)
            except OSError:
                return  # the client stopped reading, as it should

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield proxy, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        proxy.release.set()
        server.shutdown()
        server.server_close()
