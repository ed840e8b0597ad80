"""The tests' Prometheus: the same local server the demo starts."""

from sloengine.localprom import (
    PROMETHEUS,
    PROMTOOL,
    available,
    prometheus_server,
    query,
    query_range,
    rule_groups,
    scalar,
)

__all__ = [
    "PROMETHEUS",
    "PROMTOOL",
    "available",
    "prometheus_server",
    "query",
    "query_range",
    "rule_groups",
    "scalar",
]
