"""The SLI catalog: what each SLI kind counts as bad and total, per metrics preset.

Every kind reduces to two per-second rates over a range: bad events and all events
(for ``spend``, dollars and no total). The catalog below is data; one function turns
an entry into PromQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sloengine import promql
from sloengine.spec import SLI


@dataclass(frozen=True)
class Requests:
    """A request counter whose bad part is picked by matchers or by a second counter."""

    total: str
    bad_matchers: str = ""
    bad_counter: str = ""
    total_is_histogram: bool = False  # count requests from a histogram's _count series


@dataclass(frozen=True)
class Histogram:
    """A histogram base name; _bucket and _count are added."""

    base: str


@dataclass(frozen=True)
class Counter:
    """A monotonic counter of dollars."""

    name: str


Source = Requests | Histogram | Counter

CATALOG: dict[str, dict[str, Source]] = {
    "llm": {
        "success_rate": Requests("llm_requests_total", bad_matchers='status="error"'),
        "ttft": Histogram("llm_ttft_seconds"),
        "latency": Histogram("llm_total_latency_seconds"),
        "cost_per_call": Histogram("llm_cost_per_request_usd"),
        "quality": Histogram("llm_eval_score"),
        "spend": Counter("llm_cost_usd_total"),
    },
    "otel": {
        "success_rate": Requests(
            "gen_ai_client_operation_duration_seconds",
            bad_matchers='error_type!=""',
            total_is_histogram=True,
        ),
        "ttft": Histogram("gen_ai_server_time_to_first_token_seconds"),
        "latency": Histogram("gen_ai_client_operation_duration_seconds"),
        "cost_per_call": Histogram("gen_ai_usage_cost_USD"),
        "spend": Counter("gen_ai_usage_cost_USD_sum"),
    },
    "vllm": {
        "success_rate": Requests(
            "vllm:request_success_total", bad_matchers='finished_reason=~"abort|error"'
        ),
        "ttft": Histogram("vllm:time_to_first_token_seconds"),
        "latency": Histogram("vllm:e2e_request_latency_seconds"),
    },
    "litellm": {
        "success_rate": Requests(
            "litellm_proxy_total_requests_metric_total",
            bad_counter="litellm_proxy_failed_requests_metric_total",
        ),
        "ttft": Histogram("litellm_llm_api_time_to_first_token_metric"),
        "latency": Histogram("litellm_request_total_latency_metric"),
        "spend": Counter("litellm_spend_metric_total"),
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


def catalog_entry(preset: str, kind: str) -> Source | None:
    return CATALOG[preset].get(kind)


def _sum_rate(series: str, window: str) -> str:
    # A counter that has not been created yet (no error so far) means zero, not "no data".
    return f"(sum(rate({series}[{window}])) or vector(0))"


def queries(sli: SLI, preset: str, file_selector: str, window: str) -> Queries:
    """Bad and total rates of an SLI over ``window``, e.g. ``5m``."""
    kind, spec = sli.kind, sli.spec
    if kind == "ratio":
        # User PromQL may keep labels; one series per SLO is what every later rule expects.
        total = f"(sum({promql.fill_window(spec.total, window)}) or vector(0))"
        if spec.errors is not None:
            return Queries(f"(sum({promql.fill_window(spec.errors, window)}) or vector(0))", total)
        good = f"(sum({promql.fill_window(spec.good, window)}) or vector(0))"
        return Queries(f"clamp_min({total} - {good}, 0)", total)
    if kind == "histogram":
        return _histogram_queries(
            spec.metric, (spec.selector,), spec.threshold, bad_below=False, window=window
        )
    entry = _entry_with_override(kind, preset, spec)
    matchers = (file_selector, spec.selector)
    if isinstance(entry, Counter):
        return Queries(_sum_rate(promql.selector(entry.name, *matchers), window), None)
    if isinstance(entry, Histogram):
        bound = spec.min_score if kind == "quality" else _threshold(kind, spec)
        return _histogram_queries(
            entry.base, matchers, bound, bad_below=kind == "quality", window=window
        )
    return _request_queries(entry, matchers, spec.include, window)


def _threshold(kind: str, spec: Any) -> float:
    return float(spec.threshold_usd if kind == "cost_per_call" else spec.threshold)


def _entry_with_override(kind: str, preset: str, spec: Any) -> Source:
    entry = catalog_entry(preset, kind)
    if spec.metric:
        if kind == "spend":
            return Counter(spec.metric)
        if kind == "success_rate":
            base = entry if isinstance(entry, Requests) else Requests(spec.metric)
            return Requests(
                spec.metric, base.bad_matchers, base.bad_counter, base.total_is_histogram
            )
        return Histogram(spec.metric)
    if entry is None:  # loading rejects this; keep the type checker honest
        raise KeyError(f"preset {preset} has no metric for {kind}")
    return entry


def _histogram_queries(
    base: str, matchers: tuple[str, ...], bound: float, *, bad_below: bool, window: str
) -> Queries:
    total = _sum_rate(promql.selector(f"{base}_count", *matchers), window)
    within = _sum_rate(
        promql.selector(f"{base}_bucket", *matchers, promql.le_matcher(bound)), window
    )
    # Buckets count observations <= bound: for latency and cost that is the good side,
    # for quality scores (good = score >= min_score) it is the bad side.
    bad = within if bad_below else f"clamp_min({total} - {within}, 0)"
    return Queries(bad, total)


def _request_queries(
    entry: Requests, matchers: tuple[str, ...], include: list[str], window: str
) -> Queries:
    total_series = f"{entry.total}_count" if entry.total_is_histogram else entry.total
    total = _sum_rate(promql.selector(total_series, *matchers), window)
    if entry.bad_counter:
        bad_terms = [_sum_rate(promql.selector(entry.bad_counter, *matchers), window)]
    else:
        bad_terms = [
            _sum_rate(promql.selector(total_series, *matchers, entry.bad_matchers), window)
        ]
    bad_terms += [_sum_rate(promql.selector(INCLUDES[i], *matchers), window) for i in include]
    return Queries(" + ".join(bad_terms), total)


def metric_names(sli: SLI, preset: str) -> list[str]:
    """Raw metric names an SLI reads (for checks against a live server)."""
    kind, spec = sli.kind, sli.spec
    if kind == "ratio":
        return []
    if kind == "histogram":
        return [f"{spec.metric}_bucket", f"{spec.metric}_count"]
    entry = _entry_with_override(kind, preset, spec)
    if isinstance(entry, Counter):
        return [entry.name]
    if isinstance(entry, Histogram):
        return [f"{entry.base}_bucket", f"{entry.base}_count"]
    names = [f"{entry.total}_count" if entry.total_is_histogram else entry.total]
    names += [entry.bad_counter] if entry.bad_counter else []
    return names + [INCLUDES[i] for i in spec.include]


def histogram_bound(sli: SLI, preset: str) -> tuple[str, float] | None:
    """The histogram base name and the bucket bound an SLI counts at, if it reads one."""
    kind, spec = sli.kind, sli.spec
    if kind == "histogram":
        return spec.metric, float(spec.threshold)
    if kind in ("ratio", "success_rate", "spend"):
        return None
    entry = _entry_with_override(kind, preset, spec)
    if not isinstance(entry, Histogram):
        return None
    bound = spec.min_score if kind == "quality" else _threshold(kind, spec)
    return entry.base, float(bound)


def bad_by(sli: SLI, preset: str, file_selector: str, window: str, label: str) -> str | None:
    """Bad events per second over ``window`` split by one label (None for ratio SLIs).

    For the page's first look: which model, feature or provider the failures come from.
    Only the main bad series counts (not ``include`` extras): it names where to look.
    """
    kind, spec = sli.kind, sli.spec
    if kind == "ratio":
        return None

    def by(series: str) -> str:
        return f"sum by ({label}) (rate({series}[{window}]))"

    matchers: tuple[str, ...]
    if kind == "histogram":
        base, matchers, bound, below = spec.metric, (spec.selector,), spec.threshold, False
    else:
        entry = _entry_with_override(kind, preset, spec)
        matchers = (file_selector, spec.selector)
        if isinstance(entry, Counter):
            return by(promql.selector(entry.name, *matchers))
        if isinstance(entry, Requests):
            total = f"{entry.total}_count" if entry.total_is_histogram else entry.total
            if entry.bad_counter:
                return by(promql.selector(entry.bad_counter, *matchers))
            return by(promql.selector(total, *matchers, entry.bad_matchers))
        base, below = entry.base, kind == "quality"
        bound = spec.min_score if below else _threshold(kind, spec)
    within = by(promql.selector(f"{base}_bucket", *matchers, promql.le_matcher(bound)))
    if below:
        return within
    return f"clamp_min({by(promql.selector(f'{base}_count', *matchers))} - {within}, 0)"
