"""The Prometheus HTTP API, through prometheus-api-client, with credentials kept out of sight.

Credentials come from the environment (or files named there), never from the URL or the
command line, and no error message carries them: failures are reduced to the server's
address without user info, the HTTP status and Prometheus's own error text.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

TOKEN_ENV = "SLOENGINE_PROMETHEUS_TOKEN"
USER_ENV = "SLOENGINE_PROMETHEUS_USER"
PASSWORD_ENV = "SLOENGINE_PROMETHEUS_PASSWORD"
CA_ENV = "SLOENGINE_PROMETHEUS_CA_FILE"
INSECURE_ENV = "SLOENGINE_PROMETHEUS_INSECURE"
# An instant vector of every SLO's rates at every window is 23 MB for 10,000 SLOs;
# answers past this (together, for queries sent at once) are not ones sloengine asked
# for, and they must not exhaust memory.
MAX_ANSWER_BYTES = 64 * 1024 * 1024
# A forwarded answer (a 2h range of one rule, a remote read of raw series) may be larger.
FORWARD_MAX_BYTES = 1024 * 1024 * 1024
_HTTP_ENCODINGS = ("gzip", "deflate", "br", "zstd")

_T = TypeVar("_T")


class PrometheusError(Exception):
    """Prometheus could not answer; the message is safe to log."""


class _AnswerTooLarge(Exception):
    pass


class _Budget:
    """Bytes that the answers to queries sent at once may take together."""

    def __init__(self, limit: int) -> None:
        self.left = limit
        self._lock = threading.Lock()

    def take(self, size: int) -> bool:
        """False once the answers have taken more than the limit."""
        with self._lock:
            self.left -= size
            return self.left >= 0


# The budget shared by the query this thread is sending and its siblings (query_all).
_shared = threading.local()


class _CollectorPause:
    """The cyclic garbage collector off while any answer is read and decoded.

    An answer is a tree of hundreds of thousands of new dicts and lists without a cycle;
    as it grows, the collector walks it again and again (at 146,000 series, two thirds of
    the decoding time). Reference counting frees it as before; the collector resumes as
    soon as the last query in flight ends, if it was on when the first began."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._was_enabled = False

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0 and self._was_enabled:
                    gc.enable()


_collector = _CollectorPause()


def collector_paused() -> contextlib.AbstractContextManager[None]:
    """The garbage collector paused (see _CollectorPause) for a caller that walks the
    decoded answers: the collector would walk them again with every thousand new objects."""
    return _collector.held()


class _BoundedSession(requests.Session):
    """A session whose every answer arrives whole within ``deadline`` seconds and
    ``max_bytes`` bytes (together with its siblings', for queries sent at once): a
    per-read timeout alone lets a server that sends a byte a second hold a query
    forever, and an unbounded body can take the process's memory."""

    def __init__(self, deadline: float, max_bytes: int) -> None:
        super().__init__()
        self.deadline = deadline
        self.max_bytes = max_bytes

    def request(self, method: Any, url: Any, *args: Any, **kwargs: Any) -> Any:
        started = time.monotonic()
        budget: _Budget | None = getattr(_shared, "budget", None)
        kwargs["stream"] = True
        response = super().request(method, url, *args, **kwargs)
        body = bytearray()
        try:
            while True:
                # read1 returns what has arrived (at most the size asked), so the deadline
                # is checked between arrivals however slowly the bytes come.
                chunk = response.raw.read1(256 * 1024, decode_content=True)
                if not chunk:
                    break
                body += chunk
                if len(body) > self.max_bytes or (
                    budget is not None and not budget.take(len(chunk))
                ):
                    raise _AnswerTooLarge()
                if time.monotonic() - started > self.deadline:
                    raise requests.Timeout()
        finally:
            response.close()
        response._content = bytes(body)
        return response


@dataclass(frozen=True, slots=True)  # slots: a cycle makes one per recorded series
class Sample:
    labels: dict[str, str]
    value: float
    timestamp: float


@dataclass(frozen=True)
class Series:
    """One series of a range query: its labels and (time, value) points, oldest first."""

    labels: dict[str, str]
    points: list[tuple[float, float]]


def _secret(name: str, env: dict[str, str]) -> str | None:
    """``NAME`` or the contents of the file ``NAME_FILE`` (for mounted secrets)."""
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise PrometheusError(f"cannot read {name}_FILE: {exc.strerror}") from None
    return None


def redact(url: str) -> str:
    """The URL without user info, safe to print."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class Prometheus:
    """Instant and range queries with a timeout; every failure becomes a PrometheusError."""

    def __init__(
        self, url: str, *, timeout: float = 10.0, env: dict[str, str] | None = None
    ) -> None:
        env = dict(os.environ if env is None else env)
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PrometheusError(f"not an http(s) URL: {redact(url)}")
        if parts.username or parts.password:
            raise PrometheusError(
                f"credentials in the Prometheus URL would end up in logs; set {USER_ENV} and "
                f"{PASSWORD_ENV} (or {PASSWORD_ENV}_FILE) instead"
            )
        self.url = redact(url).rstrip("/")
        headers: dict[str, str] = {}
        token = _secret(TOKEN_ENV, env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        auth = None
        user = env.get(USER_ENV)
        if user:
            auth = (user, _secret(PASSWORD_ENV, env) or "")
        session = _BoundedSession(timeout, MAX_ANSWER_BYTES)
        insecure = env.get(INSECURE_ENV, "").lower() in ("1", "true", "yes")
        session.verify = False if insecure else (env.get(CA_ENV) or True)
        self.timeout = timeout
        self._headers, self._auth, self._verify = headers, auth, session.verify
        self.requests = 0
        # Never repeated in an error: a proxy may echo the credentials it was sent.
        self._secrets = [x for x in (token, auth[1] if auth else None) if x]
        self._client = PrometheusConnect(
            url=self.url,
            headers=headers,
            auth=auth,
            session=session,
            disable_ssl=insecure,
            timeout=timeout,
            # No retries inside a query: a cycle stays within its timeout, and the next
            # cycle is the retry. Errors come back as responses, with Prometheus's reason.
            retry=Retry(total=False, raise_on_status=False),
        )

    def query(self, expr: str, at: float | None = None) -> list[Sample]:
        """An instant vector; scalars come back as one sample without labels."""
        params: dict[str, Any] = {"timeout": f"{self.timeout:g}s"}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self._answer(lambda: _samples(self._client.custom_query(expr, params=params)))

    def query_all(self, exprs: Sequence[str], at: float) -> list[list[Sample]]:
        """Instant vectors of ``exprs``, asked at once (Prometheus evaluates them on as
        many cores, and one answer is decoded while the next is computed); their answers
        share one MAX_ANSWER_BYTES. If any fails, the first failure (in ``exprs``'
        order) is raised."""

        def one(expr: str) -> list[Sample] | PrometheusError:
            _shared.budget = budget
            try:
                return self.query(expr, at)
            except PrometheusError as exc:
                return exc
            finally:
                _shared.budget = None

        budget = _Budget(MAX_ANSWER_BYTES)
        with ThreadPoolExecutor(max_workers=len(exprs) or 1) as pool:
            answers = list(pool.map(one, exprs))
        for answer in answers:
            if isinstance(answer, PrometheusError):
                raise answer
        return [a for a in answers if not isinstance(a, PrometheusError)]

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Series]:
        """A range query: each series' (time, value) points from ``start`` to ``end``."""
        params: dict[str, Any] = {"timeout": f"{self.timeout:g}s"}
        return self._answer(
            lambda: _series(
                self._client.custom_query_range(
                    expr,
                    datetime.fromtimestamp(start, UTC),
                    datetime.fromtimestamp(end, UTC),
                    f"{step:g}",
                    params=params,
                )
            )
        )

    def forward(
        self, method: str, path: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request passed through to the server with the credentials added, for a
        tool that takes none (promtool's rule backfill, a Prometheus's remote read):
        the status, the headers worth passing back and the body. Answers of up to
        FORWARD_MAX_BYTES, within the timeout."""
        session = _BoundedSession(self.timeout, FORWARD_MAX_BYTES)
        session.verify = self._verify
        self.requests += 1
        try:
            response = session.request(
                method,
                self.url + path,
                data=body,
                headers={**headers, **self._headers},
                auth=self._auth,
                timeout=self.timeout,
            )
        except _AnswerTooLarge:
            raise PrometheusError(
                f"{self.url} answered with more than {FORWARD_MAX_BYTES // 2**20} MB"
            ) from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise PrometheusError(f"{self.url} did not answer within {self.timeout:g}s") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise PrometheusError(f"{self.url} is unreachable ({type(exc).__name__})") from None
        finally:
            session.close()
        # The body arrives with the HTTP encodings (gzip, deflate) undone; one that is part
        # of the payload's protocol (remote read's snappy) is passed back as it came.
        kept = {
            k: v
            for k, v in response.headers.items()
            if k.lower() == "content-type"
            or (k.lower() == "content-encoding" and v.lower() not in _HTTP_ENCODINGS)
        }
        content = bytes(response.content)
        for secret in self._secrets:  # a proxy may echo what it was sent
            content = content.replace(secret.encode(), b"[redacted]")
        return response.status_code, kept, content

    def _answer(self, ask: Callable[[], _T]) -> _T:
        """One request; every way it can fail becomes a PrometheusError safe to log."""
        self.requests += 1
        try:
            with _collector.held():
                return ask()
        except PrometheusApiClientException as exc:
            reason = _reason(exc)
            for secret in self._secrets:
                reason = reason.replace(secret, "[redacted]")
            raise PrometheusError(f"{self.url} refused the query: {reason}") from None
        except _AnswerTooLarge:
            raise PrometheusError(
                f"{self.url} answered with more than {MAX_ANSWER_BYTES // 2**20} MB"
            ) from None
        except (KeyError, TypeError, IndexError, AttributeError):
            # Valid JSON without data.result, or samples that are not [time, value]:
            # what a gateway or a proxy in front of Prometheus answers.
            raise PrometheusError(
                f"{self.url} answered in a shape that is not a Prometheus query result"
            ) from None
        except (urllib3.exceptions.NewConnectionError, ConnectionRefusedError) as exc:
            # Checked first: urllib3 files a refused connection under its timeouts.
            raise PrometheusError(f"{self.url} is unreachable ({type(exc).__name__})") from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise PrometheusError(f"{self.url} did not answer within {self.timeout:g}s") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise PrometheusError(f"{self.url} is unreachable ({type(exc).__name__})") from None
        except ValueError:
            raise PrometheusError(
                f"{self.url} answered with something that is not JSON or not numbers"
            ) from None


def _reason(exc: PrometheusApiClientException) -> str:
    text = str(exc)
    # The client puts the response body after the status; keep Prometheus's error text only.
    for marker in ('"error":"', "'error': '"):
        if marker in text:
            return text.split(marker, 1)[1].split('"', 1)[0].split("'", 1)[0][:300]
    return text.splitlines()[0][:300] if text else "unknown error"


def _samples(result: Any) -> list[Sample]:
    """Samples of an instant query's result; TypeError or KeyError when it is not one."""
    if not isinstance(result, list):
        raise TypeError("the result is not a list")
    if len(result) == 2 and not isinstance(result[0], dict):  # a scalar: [time, "value"]
        return [Sample({}, _number(result[1]), _number(result[0]))]
    out = []
    for item in result:
        ts, value = item["value"]
        labels = item.get("metric", {})
        if not isinstance(labels, dict):
            raise TypeError("labels are not a mapping")
        # The decoded mapping is kept as it is when it is all text, as Prometheus's is
        # (JSON's keys always are): a copy of every series' labels would double the cost.
        for v in labels.values():
            if type(v) is not str:
                labels = {str(k): str(v) for k, v in labels.items()}
                break
        out.append(Sample(labels, _number(value), _number(ts)))
    return out


def _series(result: Any) -> list[Series]:
    """Series of a range query's result (a matrix); TypeError or KeyError when it is not one."""
    if not isinstance(result, list):
        raise TypeError("the result is not a list")
    out = []
    for item in result:
        labels = item.get("metric", {})
        if not isinstance(labels, dict):
            raise TypeError("labels are not a mapping")
        points = [(_number(t), _number(v)) for t, v in item["values"]]
        out.append(Series({str(k): str(v) for k, v in labels.items()}, points))
    return out


def _number(value: Any) -> float:
    """A sample value as Prometheus writes it: a string ("NaN", "+Inf" included) or a number."""
    if type(value) is str:  # what Prometheus sends; checked first, as it is most of them
        return float(value)  # ValueError for text that is no number
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise TypeError("a sample value is not a number")
    return float(value)  # ValueError for text that is no number
