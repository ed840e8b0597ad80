"""Known default bucket bounds of the exporters the presets read, and the nearest-bound check.

A histogram SLI counts good events at one bucket bound (``le``): a threshold that is not
a bound selects no bucket, and every event reads as bad. Offline ``validate`` cannot ask
Prometheus for the real bounds, so each preset records its exporter's defaults here, read
from the exporter's source (named per list). Exporters let users change them; an SLO that
overrides ``metric`` is not checked against these (``validate --prometheus`` checks the
live bounds).
"""

from __future__ import annotations

from bisect import bisect_left

from sloengine.promql import number

Bounds = tuple[float, ...]

# vLLM v1, vllm/v1/metrics/loggers.py (PrometheusStatLogger).
VLLM_TTFT: Bounds = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_REQUEST_LATENCY: Bounds = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
# vllm:request_time_per_output_token_seconds, observed once per finished request (its
# decode time over its output tokens after the first); vllm:inter_token_latency_seconds
# has the same buckets.
VLLM_TPOT: Bounds = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
)  # fmt: skip

# LiteLLM proxy, litellm/types/integrations/prometheus.py (LATENCY_BUCKETS), used by every
# latency histogram of litellm/integrations/prometheus.py unless prometheus_latency_buckets
# is set.
LITELLM_LATENCY: Bounds = (
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5,
    1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5,
    8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0, 60.0, 120.0, 180.0, 240.0, 300.0,
)  # fmt: skip

# OpenTelemetry GenAI semantic conventions (docs/gen-ai/gen-ai-metrics.md), the advised
# explicit bucket boundaries.
OTEL_OPERATION_DURATION: Bounds = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
OTEL_SERVER_TTFT: Bounds = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
OTEL_SERVER_TPOT: Bounds = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
)  # fmt: skip

# OpenTelemetry SDK default explicit bucket boundaries (the metrics SDK specification):
# what OpenLIT's gen_ai.usage.cost histogram gets, since it gives no bucket advice.
OTEL_SDK_DEFAULT: Bounds = (
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0,
    1000.0, 2500.0, 5000.0, 7500.0, 10000.0,
)  # fmt: skip


def nearest(bounds: Bounds, value: float) -> tuple[float, ...]:
    """The bounds either side of ``value`` (one when it lies beyond the first or last)."""
    at = bisect_left(bounds, value)
    return tuple(bounds[i] for i in (at - 1, at) if 0 <= i < len(bounds))


def not_a_bound(base: str, bounds: Bounds, threshold: float, spelled: str = "") -> str | None:
    """Why ``threshold`` (as the user wrote it: ``5s``, ``$0.1``) cannot be counted on ``base``
    with its default ``bounds``; None if it can. Bounds compare as numbers: 1, 1.0, 1s.
    """
    if not bounds or any(abs(b - threshold) <= 1e-9 * max(1.0, abs(b)) for b in bounds):
        return None
    near = [number(b) for b in nearest(bounds, threshold)]
    spelled = spelled or number(threshold)
    where = f"its default bounds near it are {' and '.join(near)}"
    if len(near) == 1:
        side = "lowest" if threshold < bounds[0] else "highest"
        where = f"its {side} default bound is {near[0]}"
    return f"{spelled} is not a bucket bound of {base}; {where}"
