"""A local HTTP server that speaks enough of the Slack Web API for the notifier's tests.

chat.postMessage, chat.update, conversations.history and conversations.replies (with
message metadata), plus an incoming-webhook endpoint. Failures can be queued per method:
a 429 with Retry-After, a 500, a slow answer (after recording the message, as when a
real post lands but the answer is lost), a held answer (released by the test), or a
Slack error such as invalid_auth.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "xoxb-test-token-not-for-logs"


@dataclass
class Failure:
    # "429", "500", "slow", "hold", "echo-auth" (a proxy's 401 that repeats the request's
    # credentials), "trickle" (the answer a byte every `delay` seconds, after recording
    # the message) or a Slack error such as "invalid_auth"
    kind: str
    retry_after: int = 1
    delay: float = 0.0


@dataclass
class SlackAPI:
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    webhook: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: dict[str, list[Failure]] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)
    held: threading.Event = field(default_factory=threading.Event)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, method: str, *failures: Failure) -> None:
        self.failures.setdefault(method, []).extend(failures)

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Every message ever posted (threads included), oldest first."""
        return [
            m
            for ch, items in sorted(self.messages.items())
            if channel is None or ch == channel
            for m in items
        ]

    def handle(
        self, method: str, args: dict[str, Any], auth: str
    ) -> tuple[int, dict[str, str], Any]:
        with self._lock:
            self.calls.append((method, args))
            failure = self.failures[method].pop(0) if self.failures.get(method) else None
        if failure and failure.kind == "429":
            return (
                429,
                {"Retry-After": str(failure.retry_after)},
                {"ok": False, "error": "ratelimited"},
            )
        if failure and failure.kind == "500":
            return 500, {}, {"ok": False, "error": "internal_error"}
        if failure and failure.kind == "echo-auth":
            return 401, {}, f"<html>401 Unauthorized: {auth}</html>"
        if failure and failure.kind not in ("slow", "hold", "trickle"):
            return 200, {}, {"ok": False, "error": failure.kind}
        if auth != f"Bearer {TOKEN}":
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        result = getattr(self, "_" + method.replace(".", "_"), None)
        if result is None:
            return 200, {}, {"ok": False, "error": "unknown_method"}
        body = result(args)
        if failure and failure.kind == "slow":
            time.sleep(failure.delay)
        if failure and failure.kind == "hold":
            self.held.set()
            self.released.wait(30)
        if failure and failure.kind == "trickle":
            return 200, {"X-Trickle": str(failure.delay)}, body
        return 200, {}, body

    def _chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = args.get("channel")
        if not channel or str(channel).startswith("#missing"):
            return {"ok": False, "error": "channel_not_found"}
        ts = f"1700000000.{next(self._ts):06d}"
        message = {
            "ts": ts,
            "text": args.get("text"),
            "blocks": _decoded(args.get("blocks")),
            "thread_ts": args.get("thread_ts"),
            "metadata": _decoded(args.get("metadata")),
            "channel": channel,
        }
        with self._lock:
            self.messages.setdefault(channel, []).append(message)
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages.get(args.get("channel", ""), []):
            if message["ts"] == args.get("ts"):
                message["text"] = args.get("text")
                message["blocks"] = _decoded(args.get("blocks"))
                message["edited"] = True
                return {"ok": True, "channel": args["channel"], "ts": message["ts"]}
        return {"ok": False, "error": "message_not_found"}

    def _listing(self, items: list[dict[str, Any]], args: dict[str, Any]) -> dict[str, Any]:
        with_meta = str(args.get("include_all_metadata", "")).lower() in ("1", "true")
        out = [{k: v for k, v in m.items() if k != "metadata" or with_meta} for m in items]
        return {"ok": True, "messages": out, "has_more": False}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        top = [m for m in self.messages.get(args.get("channel", ""), []) if not m["thread_ts"]]
        return self._listing(list(reversed(top)), args)

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        parent = args.get("ts")
        thread = [
            m
            for m in self.messages.get(args.get("channel", ""), [])
            if m["ts"] == parent or m["thread_ts"] == parent
        ]
        return self._listing(thread, args)


def _decoded(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def serve(api: SlackAPI) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _args(self) -> dict[str, Any]:
            parsed = urllib.parse.urlsplit(self.path)
            args: dict[str, Any] = dict(urllib.parse.parse_qsl(parsed.query))
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if raw:
                if "json" in (self.headers.get("Content-Type") or ""):
                    args.update(json.loads(raw))
                else:
                    args.update(urllib.parse.parse_qsl(raw.decode()))
            return args

        def _dispatch(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            args = self._args()
            if path.startswith("/webhook/"):
                api.webhook.append(args)
                failure = api.failures["webhook"].pop(0) if api.failures.get("webhook") else None
                if failure and failure.kind == "429":
                    self._reply(
                        429,
                        {"Retry-After": str(failure.retry_after)},
                        b"rate_limited",
                        "text/plain",
                    )
                elif failure and failure.kind == "echo-auth":
                    self._reply(401, {}, f"401 for {self.path}".encode(), "text/plain")
                elif failure:
                    self._reply(
                        500 if failure.kind == "500" else 404,
                        {},
                        failure.kind.encode(),
                        "text/plain",
                    )
                else:
                    self._reply(200, {}, b"ok", "text/plain")
                return
            method = path.removeprefix("/api/")
            auth = self.headers.get("Authorization") or ""
            status, headers, body = api.handle(method, args, auth)
            self._reply(status, headers, json.dumps(body).encode(), "application/json")

        def _reply(self, status: int, headers: dict[str, str], body: bytes, kind: str) -> None:
            trickle = float(headers.pop("X-Trickle", 0))
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not trickle:
                    self.wfile.write(body)
                    return
                deadline = time.monotonic() + 30  # bounded: the client gives up long before
                for i in range(len(body)):
                    if api.released.is_set() or time.monotonic() > deadline:
                        return
                    self.wfile.write(body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test, or a killed process)

        do_GET = _dispatch
        do_POST = _dispatch

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
