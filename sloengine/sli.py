"""The SLI catalog: what each SLI kind counts as bad and total, per metrics preset.

Every kind reduces to two per-second rates over a range: bad events and all events
(for ``spend``, dollars and no total). The catalog below is data; one function turns
an entry into PromQL.

Each preset is read from its exporter's source (names, types, labels, label values,
bucket bounds, what is observed): vLLM v1 ``vllm/v1/metrics/loggers.py`` and the
prometheus-fastapi-instrumentator metrics its API server exposes, the LiteLLM proxy
``litellm/integrations/prometheus.py``, the OpenTelemetry GenAI semantic conventions after
Prometheus translation, OpenLIT for cost. A kind an exporter cannot serve correctly is
:class:`Unsupported`, with the reason and what to use instead, never a query that reads
0% or 100% bad.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloengine import buckets, promql
from sloengine.spec import (
    SLI,
    CostPerCallSLI,
    HistogramSLI,
    PresetSLI,
    QualitySLI,
    RatioSLI,
    SLIKind,
    SpendSLI,
    SuccessRateSLI,
)


@dataclass(frozen=True)
class Requests:
    """A request counter whose bad part is picked by matchers, by a second counter, or both."""

    total: str
    bad_matchers: str = ""  # narrows the total (or, with bad_counter, that counter) to failures
    bad_counter: str = ""
    total_is_histogram: bool = False  # count requests from a histogram's _count series
    total_matchers: str = ""  # the requests an SLO is about (e.g. the API handlers)


@dataclass(frozen=True)
class Histogram:
    """A histogram base name; _bucket and _count are added."""

    base: str
    bounds: buckets.Bounds = ()  # the exporter's default bucket bounds; () = not known
    matchers: str = ""  # the observations an SLO is about (e.g. successful calls only)


@dataclass(frozen=True)
class Counter:
    """A monotonic counter of dollars."""

    name: str


@dataclass(frozen=True)
class Unsupported:
    """A kind the preset's exporter cannot serve correctly: why not, and what to use instead."""

    why: str
    instead: str


CatalogEntry = Requests | Histogram | Counter

_NO_EVALS = "set sli.quality.metric to a histogram of your eval scores in [0, 1]"

CATALOG: dict[str, dict[SLIKind, CatalogEntry]] = {
    "llm": {
        SLIKind.SUCCESS_RATE: Requests("llm_requests_total", bad_matchers='status="error"'),
        SLIKind.TTFT: Histogram("llm_ttft_seconds"),
        SLIKind.LATENCY: Histogram("llm_total_latency_seconds"),
        SLIKind.COST_PER_CALL: Histogram("llm_cost_per_request_usd"),
        SLIKind.QUALITY: Histogram("llm_eval_score"),
        SLIKind.SPEND: Counter("llm_cost_usd_total"),
        SLIKind.TPOT: Histogram("llm_tpot_seconds"),
    },
    "otel": {
        # Every call is observed once in the duration histogram; failed ones carry error_type.
        SLIKind.SUCCESS_RATE: Requests(
            "gen_ai_client_operation_duration_seconds",
            bad_matchers='error_type!=""',
            total_is_histogram=True,
        ),
        # Observed for successful responses only (the conventions say so).
        SLIKind.TTFT: Histogram(
            "gen_ai_server_time_to_first_token_seconds", buckets.OTEL_SERVER_TTFT
        ),
        # Failed calls are in the duration histogram too: a fast failure is not fast service.
        SLIKind.LATENCY: Histogram(
            "gen_ai_client_operation_duration_seconds",
            buckets.OTEL_OPERATION_DURATION,
            matchers='error_type=""',
        ),
        # OpenLIT gives no bucket advice: the SDK defaults (0, 5, 10 ...) apply unless the
        # user configures a view, so a per-call threshold in cents fails the bound check.
        SLIKind.COST_PER_CALL: Histogram("gen_ai_usage_cost_USD", buckets.OTEL_SDK_DEFAULT),
        SLIKind.SPEND: Counter("gen_ai_usage_cost_USD_sum"),
        # gen_ai.server.time_per_output_token: successful responses only, after the first token.
        SLIKind.TPOT: Histogram(
            "gen_ai_server_time_per_output_token_seconds", buckets.OTEL_SERVER_TPOT
        ),
    },
    "vllm": {
        # vllm:request_success_total counts finished requests by finish reason, not failures:
        # a request that fails in the HTTP layer never reaches it. The API server's HTTP
        # counter sees every response; 4xx is the client's request refused, not a failure.
        SLIKind.SUCCESS_RATE: Requests(
            "http_requests_total",
            bad_matchers='status="5xx"',
            total_matchers='handler=~"/v1/(chat/)?completions"',
        ),
        SLIKind.TTFT: Histogram("vllm:time_to_first_token_seconds", buckets.VLLM_TTFT),
        SLIKind.LATENCY: Histogram(
            "vllm:e2e_request_latency_seconds", buckets.VLLM_REQUEST_LATENCY
        ),
        # One observation per finished request: its mean time per output token after the
        # first (vllm/v1/metrics/loggers.py, mean_time_per_output_token). Not
        # vllm:time_per_output_token_seconds: that one is per token (inter-token latency,
        # deprecated and hidden), so a request of a thousand tokens counts a thousand times.
        SLIKind.TPOT: Histogram("vllm:request_time_per_output_token_seconds", buckets.VLLM_TPOT),
    },
    "litellm": {
        # A failure increments both counters. 4xx (bad request, budget exceeded, LiteLLM's
        # own rate limits: 429) are refusals, not failures of the service; 401s are not
        # counted at all by LiteLLM.
        SLIKind.SUCCESS_RATE: Requests(
            "litellm_proxy_total_requests_metric_total",
            bad_matchers='exception_status!~"4.."',
            bad_counter="litellm_proxy_failed_requests_metric_total",
        ),
        # Streaming calls only, from the upstream call's start to its first chunk.
        SLIKind.TTFT: Histogram(
            "litellm_llm_api_time_to_first_token_metric", buckets.LITELLM_LATENCY
        ),
        # Successful requests only, proxy overhead included.
        SLIKind.LATENCY: Histogram("litellm_request_total_latency_metric", buckets.LITELLM_LATENCY),
        SLIKind.SPEND: Counter("litellm_spend_metric_total"),
    },
}

# Kinds a preset's exporter cannot serve correctly: validate refuses them, saying why.
REFUSED: dict[str, dict[SLIKind, Unsupported]] = {
    "otel": {
        SLIKind.QUALITY: Unsupported(
            "the GenAI conventions and OpenLIT record no evaluation score", _NO_EVALS
        ),
    },
    "vllm": {
        SLIKind.COST_PER_CALL: Unsupported(
            "vLLM counts tokens, not dollars",
            "price vllm:prompt_tokens_total and vllm:generation_tokens_total in a ratio SLI, "
            "or read cost where it is known, with the litellm or otel preset",
        ),
        SLIKind.QUALITY: Unsupported("vLLM records no evaluation score", _NO_EVALS),
        SLIKind.SPEND: Unsupported(
            "vLLM counts tokens, not dollars",
            "set sli.spend.metric to a dollar counter, or read spend where it is known, "
            "with the litellm or otel preset",
        ),
    },
    "litellm": {
        SLIKind.COST_PER_CALL: Unsupported(
            "the LiteLLM proxy counts spend (litellm_spend_metric_total) but keeps no "
            "per-request cost histogram",
            "use a spend SLO or a cost_per_call detector, or set sli.cost_per_call.metric "
            "to a cost histogram of your own",
        ),
        SLIKind.QUALITY: Unsupported("the LiteLLM proxy records no evaluation score", _NO_EVALS),
        # litellm_deployment_latency_per_output_token divides the time to first token
        # (streamed) or the whole call (not streamed) by the output tokens: a slow first
        # token over a long answer reads as fast decoding, and streamed calls as nothing.
        SLIKind.TPOT: Unsupported(
            "the LiteLLM proxy has no time per output token: "
            "litellm_deployment_latency_per_output_token is the time to first token (streamed "
            "calls) or the whole call divided by the output tokens, which mixes waiting for "
            "the first token with decoding",
            "read TPOT at the model server (the vllm or otel preset), or set "
            "sli.tpot.metric to a per-request TPOT histogram of your own",
        ),
    },
}

# Extra bad-event counters `success_rate.include` may add (llm preset only).
INCLUDES = {
    "validation_errors": "llm_validation_errors_total",
    "guardrail_rejections": "llm_guardrail_rejections_total",
}


@dataclass(frozen=True)
class Queries:
    """PromQL for bad and total per-second rates; ``total`` is None for spend."""

    bad: str
    total: str | None


def catalog_entry(preset: str, kind: SLIKind) -> CatalogEntry | None:
    return CATALOG[preset].get(kind)


def missing_metric(preset: str, kind: SLIKind) -> tuple[str, str] | None:
    """(message, hint) when the preset reads nothing for ``kind``; None when it does."""
    refused = REFUSED.get(preset, {}).get(kind)
    if refused is not None:
        return f"the {preset} preset has no metric for {kind}: {refused.why}", refused.instead
    if catalog_entry(preset, kind) is None:
        hint = f"set sli.{kind}.metric to your own metric, or use a preset that has one"
        return f"the {preset} preset has no metric for {kind}", hint
    return None


def bound_problem(sli: SLI, preset: str) -> tuple[str, str, str] | None:
    """(key, message, hint) when the SLI's threshold is not one of the preset's known
    default bucket bounds; None when it is, or when the bounds are the user's own."""
    spec = sli.spec
    entry = catalog_entry(preset, sli.kind)
    if not isinstance(spec, PresetSLI) or spec.metric or not isinstance(entry, Histogram):
        return None
    read = reading(sli, preset, "")
    if not isinstance(read, ThresholdReading):
        return None
    cost = isinstance(spec, CostPerCallSLI)
    spelled = f"${promql.number(read.bound)}" if cost else f"{promql.number(read.bound)}s"
    message = buckets.not_a_bound(read.base, entry.bounds, read.bound, spelled)
    if message is None:
        return None
    key = "threshold_usd" if cost else "threshold"
    hint = (
        "it would read every event as bad: use a bound; if your exporter has other buckets, "
        f"set sli.{sli.kind}.metric: {read.base} and validate --prometheus checks those"
    )
    return key, message, hint


# What an SLI reads once its preset, override and selectors are applied. Every question
# asked of an SLI (its PromQL, its metric names, its bucket bound, where its failures
# come from, the series a rule test plants) starts from one of these.


@dataclass(frozen=True)
class RequestReading:
    """Requests counted by ``total``; failures picked by matchers or by their own counter."""

    total: str  # the series counting every request (a counter, or a histogram's _count)
    matchers: tuple[str, ...]
    bad_matchers: str = ""  # narrows ``total``, or the bad counter, to the failed requests
    bad_counter: str = ""  # a counter of failed requests, where the exporter has one
    include: tuple[str, ...] = ()  # extra bad-event counters (names)

    @property
    def bad(self) -> str:
        """The main bad series (without the extra counters)."""
        return promql.selector(self.bad_counter or self.total, *self.matchers, self.bad_matchers)


@dataclass(frozen=True)
class ThresholdReading:
    """A histogram counted at one bucket bound."""

    base: str
    matchers: tuple[str, ...]
    bound: float
    bad_below: bool  # quality scores: observations <= bound are the bad ones

    @property
    def count(self) -> str:
        return promql.selector(f"{self.base}_count", *self.matchers)

    @property
    def within(self) -> str:
        return promql.selector(f"{self.base}_bucket", *self.matchers, promql.le_matcher(self.bound))


@dataclass(frozen=True)
class DollarReading:
    """A counter of dollars spent."""

    counter: str
    matchers: tuple[str, ...]

    @property
    def series(self) -> str:
        return promql.selector(self.counter, *self.matchers)


Reading = RequestReading | ThresholdReading | DollarReading


def reading(sli: SLI, preset: str, file_selector: str) -> Reading | None:
    """What the SLI reads; None for a ``ratio`` SLI, whose PromQL is the user's own."""
    spec = sli.spec
    if isinstance(spec, RatioSLI):
        return None
    if isinstance(spec, HistogramSLI):
        return ThresholdReading(spec.metric, (spec.selector,), float(spec.threshold), False)
    entry = catalog_entry(preset, sli.kind)
    own = entry.total_matchers if isinstance(entry, Requests) else ""
    own = entry.matchers if isinstance(entry, Histogram) else own
    matchers = (file_selector, spec.selector, own)
    if isinstance(spec, SpendSLI):
        name = spec.metric or (entry.name if isinstance(entry, Counter) else "")
        return DollarReading(_known(name, preset, sli.kind), matchers)
    if isinstance(spec, SuccessRateSLI):
        req = entry if isinstance(entry, Requests) else Requests(spec.metric or "")
        total = _known(spec.metric or req.total, preset, sli.kind)
        return RequestReading(
            f"{total}_count" if req.total_is_histogram else total,
            matchers,
            req.bad_matchers,
            req.bad_counter,
            tuple(INCLUDES[i] for i in spec.include),
        )
    base = spec.metric or (entry.base if isinstance(entry, Histogram) else "")
    if isinstance(spec, QualitySLI):
        return ThresholdReading(_known(base, preset, sli.kind), matchers, spec.min_score, True)
    bound = spec.threshold_usd if isinstance(spec, CostPerCallSLI) else spec.threshold
    return ThresholdReading(_known(base, preset, sli.kind), matchers, float(bound), False)


def _known(name: str, preset: str, kind: SLIKind) -> str:
    if not name:  # loading rejects this; keep the type checker honest
        raise KeyError(f"preset {preset} has no metric for {kind}")
    return name


def _sum_rate(series: str, window: str, by: tuple[str, ...] = ()) -> str:
    if by:
        # No `or vector(0)`: a series without the group labels would read as a group of its own.
        return f"sum by ({', '.join(by)}) (rate({series}[{window}]))"
    # A counter that has not been created yet (no error so far) means zero, not "no data".
    return f"(sum(rate({series}[{window}])) or vector(0))"


def _or_zero(expr: str, total: str, by: tuple[str, ...]) -> str:
    """A grouped bad rate that reads 0, not nothing, for a group with traffic but no
    failures yet (its failure counter was never created)."""
    return f"({expr} or {total} * 0)" if by else expr


def queries(
    sli: SLI, preset: str, file_selector: str, window: str, by: tuple[str, ...] = ()
) -> Queries:
    """Bad and total rates of an SLI over ``window``, e.g. ``5m``; one series per value
    of the ``by`` labels (one series in all when there are none)."""
    spec = sli.spec
    if isinstance(spec, RatioSLI):
        # User PromQL may keep labels; one series per SLO is what every later rule expects.
        def summed(expr: str) -> str:
            filled = promql.fill_window(expr, window)
            return f"sum by ({', '.join(by)}) ({filled})" if by else f"(sum({filled}) or vector(0))"

        total = summed(spec.total)
        if spec.errors is not None:
            return Queries(_or_zero(summed(spec.errors), total, by), total)
        good = _or_zero(summed(spec.good or ""), total, by)
        return Queries(f"clamp_min({total} - {good}, 0)", total)
    read = reading(sli, preset, file_selector)
    if isinstance(read, DollarReading):
        return Queries(_sum_rate(read.series, window, by), None)
    if isinstance(read, ThresholdReading):
        count = _sum_rate(read.count, window, by)
        within = _or_zero(_sum_rate(read.within, window, by), count, by)
        # Buckets count observations <= bound: for latency and cost that is the good side,
        # for quality scores (good = score >= min_score) it is the bad side.
        bad = within if read.bad_below else f"clamp_min({count} - {within}, 0)"
        return Queries(bad, count)
    assert read is not None
    total = _sum_rate(promql.selector(read.total, *read.matchers), window, by)
    terms = [read.bad, *(promql.selector(name, *read.matchers) for name in read.include)]
    return Queries(" + ".join(_or_zero(_sum_rate(t, window, by), total, by) for t in terms), total)


def metric_names(sli: SLI, preset: str) -> list[str]:
    """Raw metric names an SLI reads (for checks against a live server); none for ratio."""
    read = reading(sli, preset, "")
    if isinstance(read, DollarReading):
        return [read.counter]
    if isinstance(read, ThresholdReading):
        return [f"{read.base}_bucket", f"{read.base}_count"]
    if read is None:
        return []
    names = [read.total] + ([read.bad_counter] if read.bad_counter else [])
    return names + list(read.include)


def histogram_bound(sli: SLI, preset: str) -> tuple[str, float] | None:
    """The histogram base name and the bucket bound an SLI counts at, if it reads one."""
    read = reading(sli, preset, "")
    return (read.base, float(read.bound)) if isinstance(read, ThresholdReading) else None


def bad_by(sli: SLI, preset: str, file_selector: str, window: str, label: str) -> str | None:
    """Bad events per second over ``window`` split by one label (None for ratio SLIs).

    For the page's first look: which model, feature or provider the failures come from.
    Only the main bad series counts (not ``include`` extras): it names where to look.
    """
    read = reading(sli, preset, file_selector)

    def by(series: str) -> str:
        return f"sum by ({label}) (rate({series}[{window}]))"

    if read is None:
        return None
    if isinstance(read, DollarReading):
        return by(read.series)
    if isinstance(read, RequestReading):
        return by(read.bad)
    within = by(read.within)
    return within if read.bad_below else f"clamp_min({by(read.count)} - {within}, 0)"
