"""Expositions in the shape of the real exporters, with known answers.

Each exporter is a small table: its families (names, types and bucket bounds exactly as
its source defines them, the source named per exporter) and rows of calls, so many a
minute, each with the series it increments, the values it observes, and what each SLO of
the matching tests/fixtures file must count it as (good, bad, or not an event of that
SLO). The bounds here are transcribed from the sources independently of
sloengine/buckets.py; a test compares the two.

``openmetrics`` writes the rows as OpenMetrics text for ``promtool tsdb
create-blocks-from openmetrics``: every counter starts at 0 at ``start`` and grows by the
rows' per-minute counts, so every window's ratio is the table's.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from sloengine.promql import number, quote

GOOD, BAD = True, False
Labels = Mapping[str, str]


@dataclass(frozen=True)
class Family:
    name: str  # as exposed: counters with _total, histograms by base name
    kind: Literal["counter", "histogram"]
    bounds: tuple[float, ...] = ()


@dataclass(frozen=True)
class Row:
    """``per_minute`` calls of one sort and what the exporter records for each."""

    what: str
    per_minute: int
    counts: tuple[tuple[str, Labels, float], ...] = ()  # (counter, labels, increase a call)
    observes: tuple[tuple[str, Labels, float], ...] = ()  # (histogram, labels, value)
    truth: Mapping[str, bool] = field(default_factory=dict)  # SLO name -> GOOD / BAD
    dollars: float = 0.0  # spent per call (the spend SLO's truth)


@dataclass(frozen=True)
class Exporter:
    name: str
    source: str
    fixture: str  # the SLO file under tests/fixtures/ these rows answer
    families: tuple[Family, ...]
    rows: tuple[Row, ...]


def good_ratio(exporters: list[Exporter], slo: str) -> float:
    """The share of the SLO's events that are good, from the tables."""
    rows = [r for e in exporters for r in e.rows]
    good = sum(r.per_minute for r in rows if r.truth.get(slo) is GOOD)
    bad = sum(r.per_minute for r in rows if r.truth.get(slo) is BAD)
    return good / (good + bad)


def dollars(exporters: list[Exporter], minutes: int) -> float:
    """Dollars the tables' calls spend in ``minutes``."""
    return sum(r.per_minute * r.dollars for e in exporters for r in e.rows) * minutes


def label_matchers(pairs: Mapping[str, str]) -> str:
    # OpenMetrics separates labels with a bare comma (no space), sorted for a stable text.
    return ",".join(f"{k}={quote(v)}" for k, v in sorted(pairs.items()))


def series(exporter: Exporter, target: Labels) -> list[tuple[str, list[str], dict[str, float]]]:
    """Per family: its name, its type line, and each sample's increase a minute by sample
    text (``name{labels}``), histograms as their _bucket, _count and _sum. ``target``
    labels (job, instance) are what Prometheus adds when it scrapes the exporter."""
    out = []
    for fam in exporter.families:
        family = fam.name.removesuffix("_total") if fam.kind == "counter" else fam.name
        out.append((family, [f"# TYPE {family} {fam.kind}\n"], _increases(exporter, fam, target)))
    return out


def _increases(exporter: Exporter, fam: Family, target: Labels) -> dict[str, float]:
    per_minute: dict[str, float] = {}

    def add(name: str, labels: Labels, amount: float) -> None:
        sample = f"{name}{{{label_matchers({**target, **labels})}}}"
        per_minute[sample] = round(per_minute.get(sample, 0.0) + amount, 9)

    observed: dict[str, tuple[Labels, list[tuple[int, float]]]] = {}
    for row in exporter.rows:
        for name, labels, amount in row.counts:
            if name == fam.name:
                add(name, labels, row.per_minute * amount)
        for name, labels, value in row.observes:
            if name == fam.name:
                key = label_matchers(labels)
                observed.setdefault(key, (labels, []))[1].append((row.per_minute, value))
    for labels, obs in observed.values():
        for le in [*fam.bounds, math.inf]:
            spelled = "+Inf" if le == math.inf else repr(float(le))
            add(f"{fam.name}_bucket", {**labels, "le": spelled}, sum(c for c, v in obs if v <= le))
        add(f"{fam.name}_count", labels, sum(c for c, _ in obs))
        add(f"{fam.name}_sum", labels, sum(c * v for c, v in obs))
    return per_minute


def openmetrics(exporter: Exporter, start: int, minutes: int, target: Labels) -> str:
    """Samples every minute from ``start`` for ``minutes`` minutes, each series from 0."""
    out: list[str] = []
    stamps = [start + 60 * m for m in range(minutes + 1)]
    for _, header, per_minute in series(exporter, target):
        out += header
        # One Metric's samples at one time stay together (a histogram's buckets, count and
        # sum), each Metric with its whole history in turn: OpenMetrics forbids interleaving.
        groups: dict[str, list[tuple[str, float]]] = {}
        for name, rate in per_minute.items():
            metric = re.sub(r"(_bucket|_count|_sum)\{", "{", re.sub(r'le="[^"]*",?', "", name))
            metric = metric.replace(",}", "}")
            groups.setdefault(metric, []).append((name, rate))
        for group in groups.values():
            for m, t in enumerate(stamps):
                out += [f"{name} {number(round(rate * m, 9))} {t}\n" for name, rate in group]
    out.append("# EOF\n")
    return "".join(out)


def input_series(exporter: Exporter, minutes: int, target: Labels) -> list[dict[str, str]]:
    """The same series as ``promtool test rules`` input at a 1m interval."""
    return [
        {"series": name, "values": f"0+{number(rate)}x{minutes}"}
        for _, _, per_minute in series(exporter, target)
        for name, rate in per_minute.items()
    ]


# --- vLLM ---------------------------------------------------------------------------
# vllm/v1/metrics/loggers.py (PrometheusStatLogger): every engine metric has model_name
# and engine; vllm:request_success counts finished requests by finished_reason; the
# histograms' buckets below. http_requests_total{handler,method,status}: the API server's
# prometheus-fastapi-instrumentator (vllm/entrypoints/serve/instrumentator/metrics.py,
# Instrumentator(excluded_handlers=["/metrics", "/health", ...]).add()), status grouped as
# 2xx/4xx/5xx, handler the route template. vllm:request_time_per_output_token_seconds is
# observed once per finished request (mean_time_per_output_token), same buckets as
# vllm:inter_token_latency_seconds.
VLLM_TTFT = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)  # fmt: skip
VLLM_E2E = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0,
    40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
VLLM_TPOT = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
    10.0, 20.0, 40.0, 80.0,
)  # fmt: skip


def _http(handler: str, status: str, method: str = "POST") -> tuple[str, Labels, float]:
    return ("http_requests_total", {"handler": handler, "method": method, "status": status}, 1)


def _vllm(
    what: str,
    per_minute: int,
    http: tuple[str, Labels, float],
    finished: tuple[str, str, float, float, float] | None = None,  # model, reason, ttft, e2e, tpot
    **truth: bool,
) -> Row:
    if finished is None:  # never reached the engine, or not a generation
        return Row(what, per_minute, (http,), (), truth)
    model, reason, ttft, e2e, tpot = finished
    engine = {"model_name": model, "engine": "0"}
    return Row(
        what,
        per_minute,
        (http, ("vllm:request_success_total", {**engine, "finished_reason": reason}, 1)),
        (
            ("vllm:time_to_first_token_seconds", engine, ttft),
            ("vllm:e2e_request_latency_seconds", engine, e2e),
            ("vllm:request_time_per_output_token_seconds", engine, tpot),
        ),
        truth,
    )


CHAT, COMPLETIONS = "/v1/chat/completions", "/v1/completions"
VLLM = Exporter(
    name="vllm",
    source="vllm/v1/metrics/loggers.py; vllm/entrypoints/serve/instrumentator/metrics.py",
    fixture="vllm.yaml",
    families=(
        Family("http_requests_total", "counter"),
        Family("vllm:request_success_total", "counter"),
        Family("vllm:time_to_first_token_seconds", "histogram", VLLM_TTFT),
        Family("vllm:e2e_request_latency_seconds", "histogram", VLLM_E2E),
        Family("vllm:request_time_per_output_token_seconds", "histogram", VLLM_TPOT),
    ),
    rows=(
        _vllm("fast chat completions", 60, _http(CHAT, "2xx"), ("llama", "stop", 0.08, 1.5, 0.02),
              success=GOOD, ttft=GOOD, latency=GOOD, tpot=GOOD),
        _vllm("long completions, slow to start and to finish", 10, _http(COMPLETIONS, "2xx"),
              ("llama", "length", 0.75, 30.0, 0.15), success=GOOD, ttft=BAD, latency=BAD, tpot=BAD),
        # A 500 (engine dead, internal error): no engine metric sees it.
        _vllm("server errors", 3, _http(CHAT, "5xx"), success=BAD),
        # Refused as invalid (a prompt longer than the context): the client's error.
        _vllm("bad requests", 5, _http(CHAT, "4xx"), success=GOOD),
        _vllm("model listings", 20, _http("/v1/models", "2xx", "GET")),
    ),
)  # fmt: skip
# A second server of the same job with another model: the latency SLO selects llama only.
VLLM_OTHER = Exporter(
    name="vllm-other",
    source=VLLM.source,
    fixture="vllm.yaml",
    families=VLLM.families,
    rows=(
        _vllm("another model's chat completions", 15, _http(CHAT, "2xx"),
              ("other", "stop", 0.1, 90.0, 0.1), success=GOOD, ttft=GOOD, tpot=GOOD),
    ),
)  # fmt: skip

# --- LiteLLM proxy --------------------------------------------------------------------
# litellm/integrations/prometheus.py: a success increments
# litellm_proxy_total_requests_metric{status_code="200"} (async_log_success_event) and
# observes the latency histograms, litellm_llm_api_time_to_first_token_metric only when
# stream is True; a failure increments both litellm_proxy_failed_requests_metric
# {exception_status, exception_class} and the total {status_code} with the exception's
# status (async_post_call_failure_hook; "None" when the exception has none); 401s are not
# counted at all. Labels: litellm/types/integrations/prometheus.py (PrometheusMetricLabels);
# unset label values are exposed as "None". Buckets: LATENCY_BUCKETS there.
LITELLM_LATENCY = (
    0.005, 0.00625, 0.0125, 0.025, 0.05, 0.1, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0,
    4.5, 5.0, 5.5, 6.0, 6.5, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0, 15.0, 20.0, 25.0, 30.0,
    60.0, 120.0, 180.0, 240.0, 300.0,
)  # fmt: skip
_KEY = {
    "end_user": "None",
    "hashed_api_key": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b",
    "api_key_alias": "chat-backend",
    "team": "4d8a5bd6",
    "team_alias": "assistant",
    "user": "default_user_id",
}
_REQUEST = {**_KEY, "requested_model": "gpt-4o"}
_DEPLOYMENT = {**_REQUEST, "model": "azure/gpt-4o-eu"}


def _litellm_ok(
    what: str, per_minute: int, seconds: float, first: float | None, dollars: float, **truth: bool
) -> Row:
    observes: tuple[tuple[str, Labels, float], ...] = (
        ("litellm_request_total_latency_metric", _DEPLOYMENT, seconds),
    )
    if first is not None:  # streamed calls only
        observes += (("litellm_llm_api_time_to_first_token_metric", _DEPLOYMENT, first),)
    spend = {k: v for k, v in _DEPLOYMENT.items() if k != "requested_model"}
    counts: tuple[tuple[str, Labels, float], ...] = (
        ("litellm_proxy_total_requests_metric_total", {**_REQUEST, "status_code": "200"}, 1),
        ("litellm_spend_metric_total", spend, dollars),
    )
    return Row(what, per_minute, counts, observes, truth, dollars)


def _litellm_failed(
    what: str, per_minute: int, status: str, exception_class: str, **truth: bool
) -> Row:
    failed = {**_REQUEST, "exception_status": status, "exception_class": exception_class}
    counts: tuple[tuple[str, Labels, float], ...] = (
        ("litellm_proxy_total_requests_metric_total", {**_REQUEST, "status_code": status}, 1),
        ("litellm_proxy_failed_requests_metric_total", failed, 1),
    )
    return Row(what, per_minute, counts, (), truth)


LITELLM = Exporter(
    name="litellm",
    source="litellm/integrations/prometheus.py; litellm/types/integrations/prometheus.py",
    fixture="litellm.yaml",
    families=(
        Family("litellm_proxy_total_requests_metric_total", "counter"),
        Family("litellm_proxy_failed_requests_metric_total", "counter"),
        Family("litellm_spend_metric_total", "counter"),
        Family("litellm_request_total_latency_metric", "histogram", LITELLM_LATENCY),
        Family("litellm_llm_api_time_to_first_token_metric", "histogram", LITELLM_LATENCY),
    ),
    rows=(
        _litellm_ok("streamed answers", 50, 2.0, 0.5, 0.002, success=GOOD, ttft=GOOD, latency=GOOD),
        _litellm_ok("streamed answers slow to start", 5, 10.0, 3.0, 0.004,
                    success=GOOD, ttft=BAD, latency=GOOD),
        # Not streamed: no time to first token is observed.
        _litellm_ok("long non-streamed answers", 20, 40.0, None, 0.01, success=GOOD, latency=BAD),
        # Refusals: the proxy did its job.
        _litellm_failed("keys over budget", 4, "400", "BudgetExceededError", success=GOOD),
        _litellm_failed("rate-limited keys", 6, "429", "RateLimitError", success=GOOD),
        _litellm_failed("provider errors", 3, "500", "InternalServerError", success=BAD),
        _litellm_failed("errors with no status", 2, "None", "APIConnectionError", success=BAD),
    ),
)  # fmt: skip

# --- OpenTelemetry GenAI (OpenLIT) ------------------------------------------------------
# OpenTelemetry GenAI semantic conventions (model/gen-ai/metrics.yaml; bucket advice in
# docs/gen-ai/gen-ai-metrics.md) after the Prometheus translation (dots to underscores,
# unit s -> _seconds, USD kept as _USD; otel_scope_name added; resource attributes as
# labels with the collector's resource_to_telemetry_conversion). Failed calls carry
# error_type, successful ones have none. OpenLIT (sdk/python/src/openlit/otel/metrics.py)
# records gen_ai.usage.cost with no bucket advice: the SDK defaults (0, 5, 10 ...) unless
# a view sets others; this service has a view with the cent-scale buckets below.
OTEL_DURATION = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
OTEL_TTFT = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
OTEL_TPOT = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
OTEL_SDK_DEFAULT = (
    0.0, 5.0, 10.0, 25.0, 50.0, 75.0, 100.0, 250.0, 500.0, 750.0, 1000.0, 2500.0, 5000.0,
    7500.0, 10000.0,
)  # fmt: skip
COST_VIEW = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0)
_CALL = {
    "service_name": "otel-bot",
    "otel_scope_name": "openlit.otel.metrics",
    "gen_ai_operation_name": "chat",
    "gen_ai_system": "openai",
    "gen_ai_request_model": "gpt-4o-mini",
    "gen_ai_response_model": "gpt-4o-mini-2024-07-18",
    "server_address": "api.openai.com",
    "server_port": "443",
}


def _otel_ok(
    duration: float, ttft: float, tpot: float, dollars: float
) -> tuple[tuple[str, Labels, float], ...]:
    return (
        ("gen_ai_client_operation_duration_seconds", _CALL, duration),
        ("gen_ai_server_time_to_first_token_seconds", _CALL, ttft),
        ("gen_ai_server_time_per_output_token_seconds", _CALL, tpot),
        ("gen_ai_usage_cost_USD", _CALL, dollars),
    )


def _otel_failed(duration: float, error: str) -> tuple[tuple[str, Labels, float], ...]:
    return (("gen_ai_client_operation_duration_seconds", {**_CALL, "error_type": error}, duration),)


OTEL = Exporter(
    name="otel",
    source="open-telemetry/semantic-conventions model/gen-ai; openlit sdk/python/src/openlit/otel/metrics.py",
    fixture="otel.yaml",
    families=(
        Family("gen_ai_client_operation_duration_seconds", "histogram", OTEL_DURATION),
        Family("gen_ai_server_time_to_first_token_seconds", "histogram", OTEL_TTFT),
        Family("gen_ai_server_time_per_output_token_seconds", "histogram", OTEL_TPOT),
        Family("gen_ai_usage_cost_USD", "histogram", COST_VIEW),
    ),
    rows=(
        Row("quick cheap answers", 40, observes=_otel_ok(1.0, 0.3, 0.02, 0.004),
            truth={"success": GOOD, "ttft": GOOD, "latency": GOOD, "cost": GOOD, "tpot": GOOD},
            dollars=0.004),
        Row("slow dear answers", 10, observes=_otel_ok(7.0, 2.0, 0.1, 0.08),
            truth={"success": GOOD, "ttft": BAD, "latency": BAD, "cost": BAD, "tpot": BAD},
            dollars=0.08),
        # A failure is fast or slow, but it is a failure, not a latency event.
        Row("connection errors", 4, observes=_otel_failed(0.05, "APIConnectionError"),
            truth={"success": BAD}),
        Row("timeouts", 1, observes=_otel_failed(60.0, "timeout"), truth={"success": BAD}),
    ),
)  # fmt: skip

EXPORTERS = (VLLM, VLLM_OTHER, LITELLM, OTEL)
TARGETS: dict[str, Labels] = {
    "vllm": {"job": "vllm", "instance": "vllm-0:8000"},
    "vllm-other": {"job": "vllm", "instance": "vllm-1:8000"},
    "litellm": {"job": "litellm", "instance": "litellm:4000"},
    "otel": {"job": "otel-bot", "instance": "otel-collector:8889"},
}
