"""What each detector kind reads, per metrics preset: a ratio of two counters.

Data, like :mod:`sloengine.sli`'s catalog, read from each exporter's source (EXPORTERS.md):
a kind the exporter cannot serve is :class:`sloengine.sli.Unsupported`, with the reason
and what to use instead, never a query that reads a constant.
"""

from __future__ import annotations

from dataclasses import dataclass

from sloengine import promql
from sloengine.detectors.spec import DetectorKind
from sloengine.sli import Unsupported


@dataclass(frozen=True)
class Counters:
    """A sum of counters, each ``name`` narrowed by the same ``matchers``."""

    names: tuple[str, ...]
    matchers: str = ""

    def rate(self, keys: tuple[str, ...], window: str, *matchers: str, offset: str = "") -> str:
        """The per-second rate of the sum, summed by ``keys`` (``offset`` back in time)."""
        by = f"sum by ({', '.join(keys)}) " if keys else "sum "
        back = f" offset {offset}" if offset else ""
        parts = [
            f"{by}(rate({promql.selector(name, self.matchers, *matchers)}[{window}]{back}))"
            for name in self.names
        ]
        if len(parts) == 1:
            return parts[0]
        # Every counter where a group has them all, or those it has: a group missing one
        # still counts the others (rate() drops the names, so they cannot be summed raw).
        return "\nor ".join([" + ".join(parts), *parts])


@dataclass(frozen=True)
class Ratio:
    """The compared value: numerator per unit of denominator, both counted over a window."""

    numerator: Counters
    denominator: Counters
    numerator_unit: str  # "$", "tokens", "calls over budget", "cached tokens"
    denominator_unit: str  # what min_events counts: "calls" or "input tokens"


Entry = Ratio | Unsupported

LLM_COST = "llm_cost_usd_total"
LLM_CALLS = "llm_requests_total"
LLM_INPUT_TOKENS = "llm_input_tokens_total"
LLM_OUTPUT_TOKENS = "llm_output_tokens_total"
LLM_CACHE_READ_TOKENS = "llm_cache_read_tokens_total"
LLM_TOKEN_BUDGET_EXCEEDED = "llm_token_budget_exceeded_total"

_LLM_COST = Ratio(Counters((LLM_COST,)), Counters((LLM_CALLS,)), "$", "calls")
_NO_VERSION = Unsupported(
    "its metrics carry no prompt version label",
    "set metrics.preset: llm and label calls with the prompt version (prompt_sha), "
    "or watch the whole group with a cost_per_call detector",
)
_NO_BUDGET = Unsupported(
    "it counts no calls over a token budget",
    "count them in llm_token_budget_exceeded_total (metrics.preset: llm), or watch tokens_per_call",
)

CATALOG: dict[str, dict[DetectorKind, Entry]] = {
    "llm": {
        DetectorKind.COST_PER_CALL: _LLM_COST,
        DetectorKind.PROMPT_VERSION_COST: _LLM_COST,
        # Input tokens count every prompt token, those read from the cache included.
        DetectorKind.CACHE_HIT_RATIO: Ratio(
            Counters((LLM_CACHE_READ_TOKENS,)),
            Counters((LLM_INPUT_TOKENS,)),
            "cached tokens",
            "input tokens",
        ),
        DetectorKind.TOKENS_PER_CALL: Ratio(
            Counters((LLM_INPUT_TOKENS, LLM_OUTPUT_TOKENS)),
            Counters((LLM_CALLS,)),
            "tokens",
            "calls",
        ),
        DetectorKind.TOKEN_BUDGET_BREACHES: Ratio(
            Counters((LLM_TOKEN_BUDGET_EXCEEDED,)),
            Counters((LLM_CALLS,)),
            "calls over budget",
            "calls",
        ),
    },
    "vllm": {
        DetectorKind.COST_PER_CALL: Unsupported(
            "vLLM counts tokens, not dollars",
            "watch tokens_per_call, or read cost at the gateway (metrics.preset: litellm or otel)",
        ),
        DetectorKind.PROMPT_VERSION_COST: _NO_VERSION,
        # Both count tokens: prompt tokens looked up in the prefix cache, and those found.
        DetectorKind.CACHE_HIT_RATIO: Ratio(
            Counters(("vllm:prefix_cache_hits_total",)),
            Counters(("vllm:prefix_cache_queries_total",)),
            "cached tokens",
            "input tokens",
        ),
        # Per finished request (any finish reason): the requests that produced the tokens.
        DetectorKind.TOKENS_PER_CALL: Ratio(
            Counters(("vllm:prompt_tokens_total", "vllm:generation_tokens_total")),
            Counters(("vllm:request_success_total",)),
            "tokens",
            "calls",
        ),
        DetectorKind.TOKEN_BUDGET_BREACHES: _NO_BUDGET,
    },
    "litellm": {
        # Group by team or hashed_api_key: both counters carry them (the request counter
        # names the model requested_model, the spend counter model).
        DetectorKind.COST_PER_CALL: Ratio(
            Counters(("litellm_spend_metric_total",)),
            Counters(("litellm_proxy_total_requests_metric_total",)),
            "$",
            "calls",
        ),
        DetectorKind.PROMPT_VERSION_COST: _NO_VERSION,
        DetectorKind.CACHE_HIT_RATIO: Unsupported(
            "it counts no provider cache reads (litellm_cache_hits_metric is the proxy's own "
            "response cache)",
            "count cached input tokens in llm_cache_read_tokens_total (metrics.preset: llm)",
        ),
        DetectorKind.TOKENS_PER_CALL: Ratio(
            Counters(("litellm_input_tokens_metric_total", "litellm_output_tokens_metric_total")),
            Counters(("litellm_proxy_total_requests_metric_total",)),
            "tokens",
            "calls",
        ),
        DetectorKind.TOKEN_BUDGET_BREACHES: _NO_BUDGET,
    },
    "otel": {
        # OpenLIT's cost histogram: one observation per call.
        DetectorKind.COST_PER_CALL: Ratio(
            Counters(("gen_ai_usage_cost_USD_sum",)),
            Counters(("gen_ai_usage_cost_USD_count",)),
            "$",
            "calls",
        ),
        DetectorKind.PROMPT_VERSION_COST: _NO_VERSION,
        DetectorKind.CACHE_HIT_RATIO: Unsupported(
            "the GenAI token usage histogram has no cached-token type",
            "count cached input tokens in llm_cache_read_tokens_total (metrics.preset: llm)",
        ),
        # Every call records one input-token observation: its count is the calls.
        DetectorKind.TOKENS_PER_CALL: Ratio(
            Counters(("gen_ai_client_token_usage_sum",)),
            Counters(("gen_ai_client_token_usage_count",), 'gen_ai_token_type="input"'),
            "tokens",
            "calls",
        ),
        DetectorKind.TOKEN_BUDGET_BREACHES: _NO_BUDGET,
    },
}


def entry(preset: str, kind: DetectorKind) -> Entry:
    return CATALOG[preset][kind]


def unsupported(preset: str, kind: DetectorKind) -> tuple[str, str] | None:
    """(message, hint) when the preset cannot serve ``kind``; None when it can."""
    found = entry(preset, kind)
    if isinstance(found, Unsupported):
        return (
            f"the {preset} preset cannot serve a {kind} detector: {found.why}",
            found.instead,
        )
    return None
