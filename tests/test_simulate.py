"""The simulated LLM service: deterministic counters whose increases are the ground truth."""

from __future__ import annotations

import io
import itertools
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sloengine.sim import client, launch, traffic
from sloengine.sim.backfill import backfill
from sloengine.sim.openmetrics import write_openmetrics
from sloengine.sim.traffic import Incident, Scenario, Scope, Traffic, truth

ORIGIN = 1735689600  # 2025-01-01T00:00:00Z: midnight, so hours of the day are easy to read
HOUR = 3600
SERVICE = {"service": "chat-assistant"}
THRESHOLDS: dict[str, dict[str, Any]] = {
    "success_rate": {"include": ("validation_errors", "guardrail_rejections")},
    "ttft": {"threshold": 1},
    "latency": {"threshold": 5},
    "cost_per_call": {"threshold_usd": 0.1},
    "quality": {"min_score": 0.8},
    "spend": {},
    "tpot": {"threshold": 0.05},
}


def scenario(*incidents: Incident, **changes: Any) -> Scenario:
    """A small service (2 models, 2 features) with plenty of traffic per minute."""
    fields: dict[str, Any] = {
        "origin": ORIGIN,
        "traffic": Traffic(base_rps=20),
        "providers": 2,
        "models_per_provider": 1,
        "features": 2,
        "labels": SERVICE,
        "incidents": incidents,
    }
    return Scenario(**(fields | changes))


def exposition(s: Scenario, start: int, end: int, step: int) -> str:
    fh = io.StringIO()
    write_openmetrics(s, fh, start, end, step)
    return fh.getvalue()


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+) (\d+)$")


@dataclass
class Parsed:
    """An OpenMetrics text split into families, series and their (time, value) points."""

    types: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # series keys, in first-seen order
    points: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    family_of: dict[str, str] = field(default_factory=dict)
    raw_values: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def at(self, t: int, name: str, where: str = "") -> float:
        """Sum of every ``name`` series whose labels contain ``where``, at time ``t``."""
        total = 0.0
        for key, pts in self.points.items():
            if key.split("{")[0] == name and where in key:
                total += dict(pts)[t]
        return total


def parse(text: str) -> Parsed:
    assert text.endswith("# EOF\n")
    out = Parsed()
    family = ""
    for line in text.splitlines()[:-1]:
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(" ")
            assert family not in out.types, f"family {family} appears twice"
            out.types[family] = kind
            continue
        if line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, line
        name, labels, value, t = match.groups()
        assert name.startswith(family), f"{name} outside its family {family}"
        key = name + (labels or "")
        if key not in out.points:
            out.order.append(key)
            out.points[key] = []
            out.family_of[key] = family
        out.points[key].append((int(t), float(value)))
        out.raw_values[key].append(value)
    return out


# ------------------------------------------------------------------ the exposition


def test_the_same_scenario_writes_the_same_bytes_and_another_seed_does_not() -> None:
    def written(seed: int) -> str:
        incident = Incident(ORIGIN + HOUR, ORIGIN + 2 * HOUR, "error_rate", 0.3)
        s = scenario(incident, traffic=Traffic(5, 20, jitter=0.3), seed=seed)
        return exposition(s, ORIGIN, ORIGIN + 3 * HOUR, 60)

    assert written(0) == written(0)
    assert written(0) != written(1)


def test_counters_are_integers_that_never_decrease_and_sums_never_decrease() -> None:
    s = scenario(
        Incident(ORIGIN + 600, ORIGIN + 1800, "zero_traffic"),
        Incident(ORIGIN + 1200, ORIGIN + 2400, "cost_spike", 0.5),
        traffic=Traffic(base_rps=0.7, peak_to_trough=20, jitter=0.5),
    )
    parsed = parse(exposition(s, ORIGIN, ORIGIN + HOUR, 30))
    floats = {"llm_cost_usd_total"}
    for key, pts in parsed.points.items():
        values = [v for _, v in pts]
        assert all(a <= b for a, b in itertools.pairwise(values)), key
        if key.split("{")[0].endswith("_sum") or key.split("{")[0] in floats:
            continue
        assert all(re.fullmatch(r"\d+", raw) for raw in parsed.raw_values[key]), key


def test_every_family_and_series_is_contiguous_with_ascending_timestamps() -> None:
    text = exposition(scenario(), ORIGIN, ORIGIN + 600, 60)
    parsed = parse(text)  # asserts a family never reappears
    times = list(range(ORIGIN, ORIGIN + 601, 60))
    for key in parsed.order:
        assert [t for t, _ in parsed.points[key]] == times, key
    # A series' block of lines is unbroken (histogram points keep bucket/count/sum together).
    runs = [m.group(1) + (m.group(2) or "") for m in map(SAMPLE.match, text.splitlines()) if m]
    non_histogram = [k for k in runs if parsed.types[parsed.family_of[k]] != "histogram"]
    changes = sum(1 for a, b in itertools.pairwise(non_histogram) if a != b)
    assert changes == len(set(non_histogram)) - 1


def test_the_metric_names_are_the_llm_preset_catalog_with_counter_families_typed() -> None:
    parsed = parse(exposition(scenario(), ORIGIN, ORIGIN, 60))
    names = {key.split("{")[0] for key in parsed.points}
    histograms = [
        "llm_ttft_seconds",
        "llm_total_latency_seconds",
        "llm_cost_per_request_usd",
        "llm_eval_score",
        "llm_tpot_seconds",
    ]
    assert names == {
        "llm_requests_total",
        "llm_validation_errors_total",
        "llm_guardrail_rejections_total",
        "llm_cost_usd_total",
        *(f"{h}_{suffix}" for h in histograms for suffix in ("bucket", "count", "sum")),
        "llm_input_tokens_total",
        "llm_output_tokens_total",
        "llm_cache_read_tokens_total",
        "llm_token_budget_exceeded_total",
    }
    assert parsed.types == {
        "llm_requests": "counter",
        "llm_validation_errors": "counter",
        "llm_guardrail_rejections": "counter",
        "llm_cost_usd": "counter",
        **dict.fromkeys(histograms, "histogram"),
        "llm_input_tokens": "counter",
        "llm_output_tokens": "counter",
        "llm_cache_read_tokens": "counter",
        "llm_token_budget_exceeded": "counter",
    }
    assert all('service="chat-assistant"' in key for key in parsed.points)
    for bound in ('le="1"', 'le="5"'):
        assert any(k.startswith("llm_ttft_seconds_bucket") and bound in k for k in parsed.points)
    assert any(
        k.startswith("llm_cost_per_request_usd_bucket") and 'le="0.1"' in k for k in parsed.points
    )
    assert any(k.startswith("llm_eval_score_bucket") and 'le="0.8"' in k for k in parsed.points)


def test_float_le_style_spells_bounds_like_prometheus_3() -> None:
    text = exposition(scenario(le_style="float"), ORIGIN, ORIGIN, 60)
    assert (
        'llm_ttft_seconds_bucket{service="chat-assistant",provider="openai",model="gpt-4o",feature="chat",le="1.0"}'
        in text
    )


def test_buckets_never_shrink_with_le_and_the_inf_bucket_is_the_count() -> None:
    s = scenario(Incident(ORIGIN + 600, ORIGIN + 1200, "latency_slowdown", 0.4))
    parsed = parse(exposition(s, ORIGIN, ORIGIN + 1800, 60))
    for t in range(ORIGIN, ORIGIN + 1801, 300):
        for combo in s.combos:
            labels = ",".join(f'{k}="{v}"' for k, v in combo.items())
            for h in ("llm_ttft_seconds", "llm_total_latency_seconds", "llm_eval_score"):
                buckets = [
                    dict(pts)[t]
                    for key, pts in parsed.points.items()
                    if key.startswith(f"{h}_bucket") and labels in key
                ]
                assert buckets == sorted(buckets)
                assert buckets[-1] == parsed.at(t, f"{h}_count", labels)


def test_a_bench_sized_scenario_has_over_500_series_and_says_how_many() -> None:
    s = Scenario(origin=ORIGIN, providers=3, models_per_provider=2, features=3, labels=SERVICE)
    parsed = parse(exposition(s, ORIGIN, ORIGIN + 60, 60))
    assert len(parsed.points) == s.series_count == 1422  # 18 combos x 79 series
    assert traffic.example_scenario(ORIGIN).series_count == 632


# ---------------------------------------------------------------------- ground truth


def test_truth_is_the_increase_of_the_written_counters_for_every_sli_kind() -> None:
    s = scenario(
        Incident(ORIGIN + 300, ORIGIN + 900, "error_rate", 0.2, Scope(provider="anthropic")),
        Incident(ORIGIN + 600, ORIGIN + 1500, "quality_drop", 0.5),
        Incident(ORIGIN + 700, ORIGIN + 800, "guardrail_rejections", 0.1),
        traffic=Traffic(base_rps=3, peak_to_trough=20, jitter=0.2),
    )
    parsed = parse(exposition(s, ORIGIN, ORIGIN + 1800, 60))
    t0, t1 = ORIGIN + 240, ORIGIN + 1380

    def inc(name: str, where: str = "") -> float:
        return parsed.at(t1, name, where) - parsed.at(t0, name, where)

    requests = inc("llm_requests_total")
    bad = inc("llm_requests_total", 'status="error"')
    bad += inc("llm_validation_errors_total") + inc("llm_guardrail_rejections_total")
    assert truth(s, "success_rate", t0, t1, **THRESHOLDS["success_rate"]) == traffic.Truth(
        bad, requests
    )
    ttft_total = inc("llm_ttft_seconds_count")
    ttft_good = inc("llm_ttft_seconds_bucket", 'le="1"')
    assert truth(s, "ttft", t0, t1, threshold=1) == traffic.Truth(
        ttft_total - ttft_good, ttft_total
    )
    evals = inc("llm_eval_score_count")
    assert truth(s, "quality", t0, t1, min_score=0.8) == traffic.Truth(
        inc("llm_eval_score_bucket", 'le="0.8"'), evals
    )
    spend = truth(s, "spend", t0, t1)
    assert spend.total is None
    assert spend.bad == pytest.approx(inc("llm_cost_usd_total"), rel=1e-12)
    assert spend.bad == pytest.approx(inc("llm_cost_per_request_usd_sum"), rel=1e-12)
    only = truth(s, "success_rate", t0, t1, where=Scope(provider="anthropic"))
    assert only.bad == inc(
        "llm_requests_total",
        'provider="anthropic",model="claude-sonnet-4",feature="chat",status="error"',
    ) + inc(
        "llm_requests_total",
        'provider="anthropic",model="claude-sonnet-4",feature="summarize",status="error"',
    )


@pytest.mark.parametrize("kind", traffic.TRUTH_KINDS)
def test_good_plus_bad_is_total_and_bad_never_exceeds_total_even_over_a_second(kind: str) -> None:
    s = scenario(
        Incident(ORIGIN + 100, ORIGIN + 5000, "ttft_slowdown", 0.3),
        Incident(ORIGIN + 200, ORIGIN + 4000, "error_rate", 0.1),
        Incident(ORIGIN + 300, ORIGIN + 3000, "validation_errors", 0.2),
        traffic=Traffic(base_rps=0.5, jitter=0.4),
    )
    for start in range(ORIGIN, ORIGIN + 6000, 97):
        for length in (1, 13, 600):
            result = truth(s, kind, start, start + length, **THRESHOLDS[kind])  # type: ignore[arg-type]
            assert result.bad >= 0
            if result.total is not None:
                assert result.good is not None
                assert result.good + result.bad == result.total
                assert 0 <= result.bad <= result.total


@pytest.mark.parametrize(
    ("incident", "kind", "options", "share"),
    [
        ("error_rate", "success_rate", {}, 0.25),
        ("guardrail_rejections", "success_rate", {"include": ["guardrail_rejections"]}, 0.25),
        ("validation_errors", "success_rate", {"include": ["validation_errors"]}, 0.25),
        ("ttft_slowdown", "ttft", {"threshold": 1}, 0.25),
        ("latency_slowdown", "latency", {"threshold": 5}, 0.25),
        ("cost_spike", "cost_per_call", {"threshold_usd": 0.1}, 0.25),
        ("quality_drop", "quality", {"min_score": 0.8}, 0.25),
        ("tpot_slowdown", "tpot", {"threshold": 0.05}, 0.25),
    ],
)
def test_an_incident_makes_about_its_intensity_bad_and_only_in_its_scope(
    incident: traffic.IncidentKind, kind: traffic.TruthKind, options: dict[str, Any], share: float
) -> None:
    s = scenario(
        Incident(ORIGIN + HOUR, ORIGIN + 2 * HOUR, incident, share, Scope(provider="openai"))
    )
    openai, anthropic = Scope(provider="openai"), Scope(provider="anthropic")
    during = truth(s, kind, ORIGIN + HOUR, ORIGIN + 2 * HOUR, where=openai, **options)
    before = truth(s, kind, 0 + ORIGIN, ORIGIN + HOUR, where=openai, **options)
    elsewhere = truth(s, kind, ORIGIN + HOUR, ORIGIN + 2 * HOUR, where=anthropic, **options)
    assert during.bad_ratio is not None and before.bad_ratio is not None
    assert elsewhere.bad_ratio is not None
    # Affected requests are all bad; the rest keep their healthy (small) bad share.
    healthy = before.bad_ratio
    assert healthy < 0.03
    assert during.bad_ratio == pytest.approx(share + (1 - share) * healthy, rel=0.01)
    assert elsewhere.bad_ratio < 0.03


def test_a_cost_spike_raises_the_spend_rate() -> None:
    s = scenario(Incident(ORIGIN + HOUR, ORIGIN + 2 * HOUR, "cost_spike", 0.2))
    before = truth(s, "spend", ORIGIN, ORIGIN + HOUR).bad
    during = truth(s, "spend", ORIGIN + HOUR, ORIGIN + 2 * HOUR).bad
    # Affected calls cost the 0.10 USD threshold plus an exponential tail: 0.20 USD on average.
    assert during > 3 * before


def test_a_traffic_surge_multiplies_the_requests_of_its_scope() -> None:
    s = scenario(
        Incident(ORIGIN + HOUR, ORIGIN + 2 * HOUR, "traffic_surge", 3, Scope(feature="chat"))
    )
    chat, other = Scope(feature="chat"), Scope(feature="summarize")
    for where, factor in ((chat, 3), (other, 1)):
        before = truth(s, "success_rate", ORIGIN, ORIGIN + HOUR, where=where).total
        during = truth(s, "success_rate", ORIGIN + HOUR, ORIGIN + 2 * HOUR, where=where).total
        assert before and during
        assert during / before == pytest.approx(factor, rel=0.001)


def test_zero_traffic_freezes_every_series() -> None:
    s = scenario(Incident(ORIGIN + HOUR, ORIGIN + 2 * HOUR, "zero_traffic"))
    assert traffic.series_at(s, ORIGIN + HOUR) == traffic.series_at(s, ORIGIN + 2 * HOUR)
    assert truth(s, "success_rate", ORIGIN + HOUR, ORIGIN + 2 * HOUR) == traffic.Truth(0, 0)
    assert truth(s, "success_rate", ORIGIN + HOUR, ORIGIN + 2 * HOUR).bad_ratio is None
    assert truth(s, "success_rate", ORIGIN + 2 * HOUR, ORIGIN + 3 * HOUR).total


def test_a_20_to_1_day_night_cycle_peaks_at_the_peak_hour() -> None:
    s = scenario(traffic=Traffic(base_rps=20, peak_to_trough=20, peak_hour_utc=15))
    assert traffic.request_rate(s, ORIGIN + 15 * HOUR) / traffic.request_rate(
        s, ORIGIN + 3 * HOUR
    ) == pytest.approx(20)
    peak = truth(s, "success_rate", ORIGIN + 15 * HOUR - 300, ORIGIN + 15 * HOUR + 300).total
    trough = truth(s, "success_rate", ORIGIN + 3 * HOUR - 300, ORIGIN + 3 * HOUR + 300).total
    assert peak is not None and trough
    assert peak / trough == pytest.approx(20, rel=0.01)
    day = truth(s, "success_rate", ORIGIN, ORIGIN + 24 * HOUR).total
    assert day == pytest.approx(20 * 86400, rel=0.001)  # base_rps is the daily mean


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: truth(scenario(), "ttft", ORIGIN, ORIGIN + 60, threshold=0.9),
            "not a bucket bound",
        ),
        (lambda: truth(scenario(), "ttft", ORIGIN, ORIGIN + 60), "exactly one threshold"),
        (
            lambda: truth(scenario(), "success_rate", ORIGIN - 60, ORIGIN),
            "before the scenario origin",
        ),
        (
            lambda: scenario(
                Incident(ORIGIN, ORIGIN + 60, "error_rate", 0.5, Scope(model="gpt-5"))
            ),
            "matches no traffic",
        ),
        (lambda: Incident(ORIGIN, ORIGIN + 60, "error_rate", 1.5), "fraction"),
        (lambda: Incident(ORIGIN, ORIGIN, "zero_traffic"), "before it starts"),
        (lambda: scenario(labels={"le": "x"}), "static label"),
        (lambda: exposition(scenario(), ORIGIN - 60, ORIGIN, 60), "before the scenario origin"),
    ],
)
def test_mistakes_are_refused_with_a_reason(call: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


# ------------------------------------------------------ backfilled into real Prometheus

OUTAGE = (ORIGIN + 10 * HOUR, ORIGIN + 10 * HOUR + 45 * 60)
SILENCE = (ORIGIN + 20 * HOUR, ORIGIN + 21 * HOUR)
BACKFILLED = scenario(
    Incident(*OUTAGE, "error_rate", 0.4, Scope(provider="openai")),
    Incident(*SILENCE, "zero_traffic"),
    Incident(ORIGIN + 5 * HOUR, ORIGIN + 7 * HOUR, "ttft_slowdown", 0.3),
    traffic=Traffic(base_rps=5, peak_to_trough=20, peak_hour_utc=15, jitter=0.1),
)


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not launch.available():
        pytest.fail(
            "prometheus is not installed: run `apt-get install -y prometheus` (see .ci/run)"
        )
    tsdb = tmp_path_factory.mktemp("tsdb")
    samples = backfill(BACKFILLED, tsdb, ORIGIN, ORIGIN + 24 * HOUR, 60, promtool=launch.PROMTOOL)
    assert samples == BACKFILLED.series_count * (24 * 60 + 1)
    with launch.prometheus_server(tsdb) as url:
        yield url


def value(url: str, expr: str, at: float | None = None) -> float:
    result = client.scalar(url, expr, at)
    assert result is not None, expr
    return result


def test_prometheus_holds_every_series_with_the_catalog_names(
    prometheus: str, tmp_path: Path
) -> None:
    names = client.query(prometheus, 'count by (__name__) ({__name__=~"llm_.*"})', ORIGIN + HOUR)
    assert {r["metric"]["__name__"] for r in names} >= {
        "llm_requests_total",
        "llm_cost_usd_total",
        "llm_ttft_seconds_bucket",
        "llm_eval_score_count",
    }
    assert (
        value(prometheus, 'count({__name__=~"llm_.*"})', ORIGIN + HOUR) == BACKFILLED.series_count
    )
    assert value(prometheus, 'count(llm_ttft_seconds_bucket{le="1"})', ORIGIN + HOUR) == len(
        BACKFILLED.combos
    )


def increase(url: str, selector: str, t0: int, t1: int) -> float:
    """Exact counter increase: the difference of two instant sums, no extrapolation."""
    return value(url, f"sum({selector} @ {t1}) - sum({selector} @ {t0})")


@pytest.mark.parametrize(
    ("kind", "total", "part", "part_is_bad"),
    [
        ("success_rate", "llm_requests_total", 'llm_requests_total{status="error"}', True),
        ("ttft", "llm_ttft_seconds_count", 'llm_ttft_seconds_bucket{le="1"}', False),
        (
            "latency",
            "llm_total_latency_seconds_count",
            'llm_total_latency_seconds_bucket{le="5"}',
            False,
        ),
        ("quality", "llm_eval_score_count", 'llm_eval_score_bucket{le="0.8"}', True),
        ("tpot", "llm_tpot_seconds_count", 'llm_tpot_seconds_bucket{le="0.05"}', False),
    ],
)
def test_prometheus_counter_increases_equal_the_truth_to_the_event(
    prometheus: str, kind: traffic.TruthKind, total: str, part: str, part_is_bad: bool
) -> None:
    t0, t1 = ORIGIN + 2 * HOUR, ORIGIN + 23 * HOUR
    options = {k: v for k, v in THRESHOLDS[kind].items() if k != "include"}
    expected = truth(BACKFILLED, kind, t0, t1, **options)
    assert increase(prometheus, total, t0, t1) == expected.total
    assert increase(prometheus, part, t0, t1) == (expected.bad if part_is_bad else expected.good)


def test_prometheus_spend_matches_the_truth(prometheus: str) -> None:
    t0, t1 = ORIGIN, ORIGIN + 24 * HOUR
    got = value(prometheus, f"sum(llm_cost_usd_total @ {t1}) - sum(llm_cost_usd_total @ {t0})")
    assert got == pytest.approx(truth(BACKFILLED, "spend", t0, t1).bad, rel=1e-9)


def test_prometheus_error_ratio_during_the_outage_is_the_truth_within_1_percent(
    prometheus: str,
) -> None:
    start, end = OUTAGE
    expected = truth(
        BACKFILLED, "success_rate", start, end, where=Scope(provider="openai")
    ).bad_ratio
    got = value(
        prometheus,
        f'sum(increase(llm_requests_total{{provider="openai",status="error"}}[45m] @ {end}))'
        f' / sum(increase(llm_requests_total{{provider="openai"}}[45m] @ {end}))',
    )
    assert expected is not None
    assert expected == pytest.approx(0.4, rel=0.01)
    assert got == pytest.approx(expected, rel=0.01)


def test_prometheus_sees_no_increase_while_traffic_is_zero(prometheus: str) -> None:
    start, end = SILENCE
    assert value(prometheus, f"sum(increase(llm_requests_total[50m] @ {end}))") == 0
    assert (
        value(prometheus, f"sum(llm_requests_total @ {end}) - sum(llm_requests_total @ {start})")
        == 0
    )


def test_prometheus_sees_the_day_night_cycle(prometheus: str) -> None:
    def hourly(hour: int) -> float:
        return value(prometheus, f"sum(rate(llm_requests_total[1h] @ {ORIGIN + hour * HOUR}))")

    at_peak, at_trough = hourly(16), hourly(4)  # the hours 15-16 and 3-4 UTC
    expected_peak = truth(BACKFILLED, "success_rate", ORIGIN + 15 * HOUR, ORIGIN + 16 * HOUR).total
    expected_trough = truth(BACKFILLED, "success_rate", ORIGIN + 3 * HOUR, ORIGIN + 4 * HOUR).total
    assert expected_peak is not None and expected_trough
    assert at_peak / at_trough == pytest.approx(expected_peak / expected_trough, rel=0.01)
    assert at_peak / at_trough > 15


def test_the_test_server_loads_rule_files_and_evaluates_them(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text(
        "groups:\n- name: probe\n  rules:\n  - record: probe:one\n    expr: vector(1)\n"
    )
    with launch.prometheus_server(
        tmp_path / "tsdb", rule_files=[rules], evaluation_interval="1s"
    ) as url:
        assert [g["name"] for g in client.rule_groups(url)] == ["probe"]
        assert value(url, "vector(1) + 1") == 2
