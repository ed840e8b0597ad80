"""The Prometheus HTTP API, through prometheus-api-client, with credentials kept out of sight.

Credentials come from the environment (or files named there), never from the URL or the
command line, and no error message carries them: failures are reduced to the server's
address without user info, the HTTP status and Prometheus's own error text.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
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


class PrometheusError(Exception):
    """Prometheus could not answer; the message is safe to log."""


@dataclass(frozen=True)
class Sample:
    labels: dict[str, str]
    value: float
    timestamp: float


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
    """Instant queries with a timeout; every failure becomes a PrometheusError."""

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
        session = requests.Session()
        insecure = env.get(INSECURE_ENV, "").lower() in ("1", "true", "yes")
        session.verify = False if insecure else (env.get(CA_ENV) or True)
        self.timeout = timeout
        self.requests = 0
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
        self.requests += 1
        try:
            result = self._client.custom_query(expr, params=params)
        except PrometheusApiClientException as exc:
            raise PrometheusError(f"{self.url} refused the query: {_reason(exc)}") from None
        except (urllib3.exceptions.NewConnectionError, ConnectionRefusedError) as exc:
            # Checked first: urllib3 files a refused connection under its timeouts.
            raise PrometheusError(f"{self.url} is unreachable ({type(exc).__name__})") from None
        except (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError):
            raise PrometheusError(f"{self.url} did not answer within {self.timeout:g}s") from None
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise PrometheusError(f"{self.url} is unreachable ({type(exc).__name__})") from None
        except ValueError:
            raise PrometheusError(f"{self.url} answered with something that is not JSON") from None
        return _samples(result)


def _reason(exc: PrometheusApiClientException) -> str:
    text = str(exc)
    # The client puts the response body after the status; keep Prometheus's error text only.
    for marker in ('"error":"', "'error': '"):
        if marker in text:
            return text.split(marker, 1)[1].split('"', 1)[0].split("'", 1)[0][:300]
    return text.splitlines()[0][:300] if text else "unknown error"


def _samples(result: Any) -> list[Sample]:
    if not isinstance(result, list):
        return []
    if len(result) == 2 and not isinstance(result[0], dict):  # a scalar: [time, "value"]
        return [Sample({}, float(result[1]), float(result[0]))]
    out = []
    for item in result:
        ts, value = item["value"]
        out.append(Sample(dict(item.get("metric", {})), float(value), float(ts)))
    return out
