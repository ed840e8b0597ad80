"""The presets match the real exporters: each kind reads a correct query or is refused with
the reason, and offline validate rejects thresholds that are not the exporters' bounds."""

from __future__ import annotations

from pathlib import Path

import exporters
import pytest
from click.testing import CliRunner

from sloengine import buckets, sli
from sloengine.cli import cli
from sloengine.spec import PRESETS, SLI, SLIKind

PRESET_KINDS = [k for k in SLIKind if k not in (SLIKind.RATIO, SLIKind.HISTOGRAM)]


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_reads_or_refuses_each_kind_never_both(preset: str) -> None:
    for kind in PRESET_KINDS:
        reads = sli.catalog_entry(preset, kind) is not None
        refused = kind in sli.REFUSED.get(preset, {})
        assert reads != refused, (preset, kind)


def _validate(tmp_path: Path, preset: str, slo: str) -> tuple[int, str]:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        f"apiVersion: sloengine/v1\nservice: svc\nmetrics: {{preset: {preset}}}\nslos:\n  - {slo}\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.replace(str(spec), "slo.yaml")


@pytest.mark.parametrize(
    ("preset", "slo", "error"),
    [
        (
            "otel",
            "{name: latency, objective: 99, sli: {latency: {threshold: 5s}}}",
            "slo.yaml:5:63: 5s is not a bucket bound of gen_ai_client_operation_duration_seconds; "
            "its default bounds near it are 2.56 and 5.12",
        ),
        (
            "otel",
            "{name: latency, objective: 99, sli: {latency: {threshold: 1s}}}",
            "slo.yaml:5:63: 1s is not a bucket bound of gen_ai_client_operation_duration_seconds; "
            "its default bounds near it are 0.64 and 1.28",
        ),
        (
            "otel",
            "{name: cost, objective: 99, sli: {cost_per_call: {threshold_usd: 0.10}}}",
            "slo.yaml:5:70: $0.1 is not a bucket bound of gen_ai_usage_cost_USD; "
            "its default bounds near it are 0 and 5",
        ),
        (
            "vllm",
            "{name: ttft, objective: 99, sli: {ttft: {threshold: 300ms}}}",
            "slo.yaml:5:57: 0.3s is not a bucket bound of vllm:time_to_first_token_seconds; "
            "its default bounds near it are 0.25 and 0.5",
        ),
        (
            "vllm",
            "{name: latency, objective: 99, sli: {latency: {threshold: 3s}}}",
            "slo.yaml:5:63: 3s is not a bucket bound of vllm:e2e_request_latency_seconds; "
            "its default bounds near it are 2.5 and 5",
        ),
        (
            "litellm",
            "{name: latency, objective: 99, sli: {latency: {threshold: 10m}}}",
            "slo.yaml:5:63: 600s is not a bucket bound of litellm_request_total_latency_metric; "
            "its highest default bound is 300",
        ),
        (
            "litellm",
            "{name: ttft, objective: 99, sli: {ttft: {threshold: 1ms}}}",
            "slo.yaml:5:57: 0.001s is not a bucket bound of "
            "litellm_llm_api_time_to_first_token_metric; its lowest default bound is 0.005",
        ),
        (
            "vllm",
            "{name: tpot, objective: 99, sli: {tpot: {threshold: 60ms}}}",
            "slo.yaml:5:57: 0.06s is not a bucket bound of "
            "vllm:request_time_per_output_token_seconds; its default bounds near it are "
            "0.05 and 0.075",
        ),
        (
            "otel",
            "{name: tpot, objective: 99, sli: {tpot: {threshold: 5s}}}",
            "slo.yaml:5:57: 5s is not a bucket bound of "
            "gen_ai_server_time_per_output_token_seconds; its highest default bound is 2.5",
        ),
    ],
)
def test_offline_validate_names_the_nearest_default_bounds_of_a_threshold_that_is_not_one(
    tmp_path: Path, preset: str, slo: str, error: str
) -> None:
    code, err = _validate(tmp_path, preset, slo)
    assert code == 2
    assert f"error: {error} (it would read every event as bad: use a bound;" in err


@pytest.mark.parametrize(
    ("preset", "slo"),
    [
        ("otel", "{name: l, objective: 99, sli: {latency: {threshold: 5.12s}}}"),
        ("otel", "{name: t, objective: 99, sli: {ttft: {threshold: 1s}}}"),
        ("vllm", "{name: t, objective: 99, sli: {ttft: {threshold: 500ms}}}"),
        ("vllm", "{name: l, objective: 99, sli: {latency: {threshold: 20s}}}"),
        ("litellm", "{name: l, objective: 99, sli: {latency: {threshold: 4.5s}}}"),
        ("litellm", "{name: t, objective: 99, sli: {ttft: {threshold: 0.00625}}}"),
        ("vllm", "{name: t, objective: 99, sli: {tpot: {threshold: 100ms}}}"),
        ("otel", "{name: t, objective: 99, sli: {tpot: {threshold: 50ms}}}"),
        ("llm", "{name: t, objective: 99, sli: {tpot: {threshold: 42ms}}}"),
        # The user's own histogram, or a view with other buckets: their bounds, not checked.
        (
            "otel",
            "{name: c, objective: 99, sli: {cost_per_call: {threshold_usd: 0.1, metric: gen_ai_usage_cost_USD}}}",
        ),
        ("otel", "{name: l, objective: 99, sli: {latency: {threshold: 5s, metric: my_seconds}}}"),
        # The llm preset is the user's own instrumentation: its buckets are not known.
        ("llm", "{name: t, objective: 99, sli: {ttft: {threshold: 1.2s}}}"),
    ],
)
def test_offline_validate_accepts_a_threshold_on_a_bound_or_on_the_users_own_buckets(
    tmp_path: Path, preset: str, slo: str
) -> None:
    assert _validate(tmp_path, preset, slo) == (0, "")


@pytest.mark.parametrize(
    ("preset", "slo", "error"),
    [
        (
            "vllm",
            "{name: c, objective: 99, sli: {cost_per_call: {threshold_usd: 0.1}}}",
            "slo.yaml:5:51: the vllm preset has no metric for cost_per_call: vLLM counts tokens, "
            "not dollars (price vllm:prompt_tokens_total and vllm:generation_tokens_total in a "
            "ratio SLI, or read cost where it is known, with the litellm or otel preset)",
        ),
        (
            "vllm",
            "{name: s, sli: {spend: {budget_usd: 100}}}",
            "slo.yaml:5:28: the vllm preset has no metric for spend: vLLM counts tokens, not "
            "dollars (set sli.spend.metric to a dollar counter, or read spend where it is known, "
            "with the litellm or otel preset)",
        ),
        (
            "vllm",
            "{name: q, objective: 95, sli: {quality: {min_score: 0.8}}}",
            "slo.yaml:5:45: the vllm preset has no metric for quality: vLLM records no evaluation "
            "score (set sli.quality.metric to a histogram of your eval scores in [0, 1])",
        ),
        (
            "litellm",
            "{name: c, objective: 99, sli: {cost_per_call: {threshold_usd: 0.1}}}",
            "slo.yaml:5:51: the litellm preset has no metric for cost_per_call: the LiteLLM proxy "
            "counts spend (litellm_spend_metric_total) but keeps no per-request cost histogram "
            "(use a spend SLO or a cost_per_call detector, or set sli.cost_per_call.metric to a "
            "cost histogram of your own)",
        ),
        (
            "litellm",
            "{name: q, objective: 95, sli: {quality: {min_score: 0.8}}}",
            "slo.yaml:5:45: the litellm preset has no metric for quality: the LiteLLM proxy "
            "records no evaluation score (set sli.quality.metric to a histogram of your eval "
            "scores in [0, 1])",
        ),
        (
            "litellm",
            "{name: t, objective: 99, sli: {tpot: {threshold: 50ms}}}",
            "slo.yaml:5:42: the litellm preset has no metric for tpot: the LiteLLM proxy has no "
            "time per output token: litellm_deployment_latency_per_output_token is the time to "
            "first token (streamed calls) or the whole call divided by the output tokens, which "
            "mixes waiting for the first token with decoding (read TPOT at the model server (the "
            "vllm or otel preset), or set sli.tpot.metric to a per-request TPOT histogram of "
            "your own)",
        ),
        (
            "otel",
            "{name: q, objective: 95, sli: {quality: {min_score: 0.8}}}",
            "slo.yaml:5:45: the otel preset has no metric for quality: the GenAI conventions and "
            "OpenLIT record no evaluation score (set sli.quality.metric to a histogram of your "
            "eval scores in [0, 1])",
        ),
    ],
)
def test_a_kind_the_exporter_cannot_serve_is_refused_with_the_reason_and_what_to_use(
    tmp_path: Path, preset: str, slo: str, error: str
) -> None:
    code, err = _validate(tmp_path, preset, slo)
    assert code == 2
    assert err == f"error: {error}\n1 problem found; nothing was written\n"


def _queries(preset: str, sli_body: dict[str, object]) -> sli.Queries:
    return sli.queries(SLI.model_validate(sli_body), preset, "", "5m")


def test_vllm_success_counts_5xx_of_the_completion_handlers_over_their_requests() -> None:
    q = _queries("vllm", {"success_rate": {}})
    handlers = 'handler=~"/v1/(chat/)?completions"'
    assert q.bad == f'(sum(rate(http_requests_total{{{handlers}, status="5xx"}}[5m])) or vector(0))'
    assert q.total == f"(sum(rate(http_requests_total{{{handlers}}}[5m])) or vector(0))"


def test_litellm_success_counts_failures_but_not_4xx_refusals() -> None:
    q = _queries("litellm", {"success_rate": {}})
    assert q.bad == (
        '(sum(rate(litellm_proxy_failed_requests_metric_total{exception_status!~"4.."}[5m]))'
        " or vector(0))"
    )
    assert q.total == "(sum(rate(litellm_proxy_total_requests_metric_total[5m])) or vector(0))"


def test_otel_latency_reads_successful_calls_only() -> None:
    q = _queries("otel", {"latency": {"threshold": 5.12}})
    count = 'gen_ai_client_operation_duration_seconds_count{error_type=""}'
    within = 'gen_ai_client_operation_duration_seconds_bucket{error_type="", le=~"5\\\\.12"}'
    assert q.total == f"(sum(rate({count}[5m])) or vector(0))"
    assert q.bad == (
        f"clamp_min((sum(rate({count}[5m])) or vector(0)) - "
        f"(sum(rate({within}[5m])) or vector(0)), 0)"
    )


def test_the_recorded_bounds_match_the_exporter_fixtures_transcribed_separately() -> None:
    assert buckets.VLLM_TTFT == exporters.VLLM_TTFT
    assert buckets.VLLM_REQUEST_LATENCY == exporters.VLLM_E2E
    assert buckets.LITELLM_LATENCY == exporters.LITELLM_LATENCY
    assert buckets.OTEL_OPERATION_DURATION == exporters.OTEL_DURATION
    assert buckets.OTEL_SERVER_TTFT == exporters.OTEL_TTFT
    assert buckets.OTEL_SDK_DEFAULT == exporters.OTEL_SDK_DEFAULT
    assert buckets.VLLM_TPOT == exporters.VLLM_TPOT
    assert buckets.OTEL_SERVER_TPOT == exporters.OTEL_TPOT
    for exporter in exporters.EXPORTERS:
        for family in exporter.families:
            entry = next(
                (
                    e
                    for kinds in sli.CATALOG.values()
                    for e in kinds.values()
                    if isinstance(e, sli.Histogram) and e.base == family.name and e.bounds
                ),
                None,
            )
            if entry is not None and family.name != "gen_ai_usage_cost_USD":  # a user's view
                assert entry.bounds == family.bounds, family.name


@pytest.mark.parametrize(
    ("value", "near"),
    [(0.3, (0.25, 0.5)), (0.0001, (0.001,)), (3000.0, (2560.0,)), (0.5, (0.25, 0.5))],
)
def test_nearest_gives_the_bounds_either_side(value: float, near: tuple[float, ...]) -> None:
    assert buckets.nearest(buckets.VLLM_TTFT, value) == near
