"""The toolkit's small Prometheus HTTP client: queries, alerts, rule groups, /metrics.

The demo, the tests and the benchmarks read a local Prometheus (sloengine.sim.launch)
through these few calls. The engine itself reads Prometheus through
sloengine.prometheus; this client stays apart so that what checks the engine does not
go through the engine's own code.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sloengine.sim.openmetrics import Exposition, parse_exposition

TIMEOUT = 300.0  # a benchmark's 30-day queries take a while on 2 CPUs


def query_data(
    url: str, expr: str, at: float | None = None, *, stats: bool = False
) -> dict[str, Any]:
    """The ``data`` of an instant query (``resultType``, ``result``; ``stats`` when asked)."""
    params = {"query": expr}
    if at is not None:
        params["time"] = repr(float(at))
    if stats:
        params["stats"] = "all"
    return api(url, "query", params)


def query(url: str, expr: str, at: float | None = None) -> list[dict[str, Any]]:
    """Result of an instant query (the ``data.result`` list); raises on a query error."""
    result: list[dict[str, Any]] = query_data(url, expr, at)["result"]
    return result


def query_range(url: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    """Result of a range query (the ``data.result`` matrix)."""
    params = {"query": expr, "start": repr(start), "end": repr(end), "step": repr(step)}
    result: list[dict[str, Any]] = api(url, "query_range", params)["result"]
    return result


def scalar(url: str, expr: str, at: float | None = None) -> float | None:
    """The value of a query that returns one series (or a scalar); None when empty."""
    data = query_data(url, expr, at)
    if data["resultType"] == "scalar":
        return float(data["result"][1])
    result = data["result"]
    if not result:
        return None
    if len(result) > 1:
        raise ValueError(f"{expr} returned {len(result)} series, expected one")
    return float(result[0]["value"][1])


def active_alerts(url: str) -> list[dict[str, Any]]:
    """The alerts Prometheus holds now (``/api/v1/alerts``: labels, state, value).

    Unlike the ``ALERTS`` series, which a freshly started Prometheus writes only from
    its third evaluation of a group (it first restores ``for`` state), this answers
    from the first evaluation.
    """
    found: list[dict[str, Any]] = api(url, "alerts", {})["alerts"]
    return found


def rule_groups(url: str) -> list[dict[str, Any]]:
    """The rule groups the server has loaded (``/api/v1/rules``)."""
    groups: list[dict[str, Any]] = api(url, "rules", {})["groups"]
    return groups


def metrics(url: str) -> Exposition:
    """Prometheus's own /metrics, keyed by (name, sorted labels)."""
    return parse_exposition(_get(f"{url}/metrics", "/metrics").decode())


def api(url: str, endpoint: str, params: dict[str, str]) -> dict[str, Any]:
    """The ``data`` of any ``/api/v1/`` endpoint; raises RuntimeError on an HTTP error."""
    address = f"{url}/api/v1/{endpoint}"
    if params:
        address += "?" + urllib.parse.urlencode(params)
    data: dict[str, Any] = json.loads(_get(address, params.get("query", endpoint)))["data"]
    return data


def _get(address: str, what: str) -> bytes:
    try:
        with urllib.request.urlopen(address, timeout=TIMEOUT) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")
        raise RuntimeError(f"{what}: HTTP {exc.code}: {detail}") from exc
    return body
