"""Detectors in SLO.yaml: what validate refuses, and the rules generate writes."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sloengine import conventions as cv
from sloengine.cli import cli
from sloengine.detectors.rules import render, rule_file_name
from sloengine.errors import SpecError
from sloengine.loading import load_specs
from sloengine.sim.traffic import Incident, Scenario, Traffic, series_at

HEAD = (
    "apiVersion: sloengine/v1\nservice: chat\nmetrics: {{preset: {preset}, selector: 'job=\"chat\"'}}\n"
    "slos:\n  - {{name: a, objective: 99, sli: {{ratio: {{errors: 'sum(rate(x[{{{{window}}}}]))', "
    "total: 'sum(rate(y[{{{{window}}}}]))'}}}}}}\ndetectors:\n"
)


def spec(tmp_path: Path, *detectors: str, preset: str = "llm") -> str:
    path = tmp_path / "slo.yaml"
    path.write_text(HEAD.format(preset=preset) + "".join(f"  - {d}\n" for d in detectors))
    return str(path)


def problems(path: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_specs([path])
    return [f"{p.line}: {p.message} ({p.hint})" for p in caught.value.problems]


@pytest.mark.parametrize(
    ("detector", "preset", "expected"),
    [
        (
            "{name: c, kind: cost_per_call, window: 1h, max_increase: 20%}",
            "llm",
            "7: a cost_per_call detector needs a baseline window",
        ),
        (
            "{name: c, kind: cost_per_call, window: 1h, baseline: 7d, max_decrease: 20%}",
            "llm",
            "7: max_decrease does not apply to a cost_per_call detector (use max_increase",
        ),
        (
            "{name: c, kind: token_budget_breaches, window: 1h, baseline: 7d, max_share: 1%}",
            "llm",
            "7: a token_budget_breaches detector has no baseline",
        ),
        (
            "{name: c, kind: cache_hit_ratio, window: 1h, baseline: 7d, max_increase: 20%}",
            "llm",
            "7: a cache_hit_ratio detector needs max_decrease",
        ),
        (
            "{name: c, kind: cost_per_call, window: 1h, baseline: 7d, max_increase: 20, group_by: [feature]}",
            "llm",
            "7: max_increase: 20 is not a percentage: write it with a % sign, e.g. 20%",
        ),
        (
            "{name: c, kind: cost_per_call, window: 1h, baseline: 7d, max_increase: 20%, group_by: [user_id]}",
            "llm",
            "7: group_by 'user_id' would make a detector per individual (group by tenant, feature or model instead)",
        ),
        (
            "{name: c, kind: cost_per_call, window: 7m, baseline: 7d, max_increase: 20%}",
            "llm",
            "7: window must be a whole number of 5m periods",
        ),
        (
            "{name: c, kind: cost_per_call, window: 1h, baseline: 7d, max_increase: 20%, version_label: sha}",
            "llm",
            "7: version_label does not apply to a cost_per_call detector",
        ),
        (
            "{name: c, kind: prompt_version_cost, window: 1h, baseline: 7d, max_increase: 20%, group_by: [prompt_sha]}",
            "llm",
            "7: 'prompt_sha' is the version label: each version is compared already",
        ),
        (
            "{name: c, kind: cost_per_call, window: 1h, baseline: 7d, max_increase: 20%}",
            "vllm",
            "7: the vllm preset cannot serve a cost_per_call detector: vLLM counts tokens, not dollars (watch tokens_per_call",
        ),
        (
            "{name: c, kind: cache_hit_ratio, window: 1h, baseline: 7d, max_decrease: 20%}",
            "litellm",
            "7: the litellm preset cannot serve a cache_hit_ratio detector",
        ),
        (
            "{name: c, kind: prompt_version_cost, window: 1h, baseline: 7d, max_increase: 20%}",
            "otel",
            "7: the otel preset cannot serve a prompt_version_cost detector: its metrics carry no prompt version label",
        ),
        (
            "{name: c, kind: token_budget_breaches, window: 1h, max_share: 1%, group_by: [team], labels: {team: ai}}",
            "llm",
            "7: 'team' is also a fixed label (labels), which would overwrite each group's value",
        ),
        (
            "{name: c, kind: token_budget_breaches, window: 1h, max_share: 1%, runbook: x.md}",
            "llm",
            "7: runbook 'x.md' is relative but runbooks.base_url is not set",
        ),
    ],
)
def test_validate_refuses_a_detector_at_its_line_with_a_hint(
    tmp_path: Path, detector: str, preset: str, expected: str
) -> None:
    found = problems(spec(tmp_path, detector, preset=preset))
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_of_every_detector_is_reported_at_once(tmp_path: Path) -> None:
    found = problems(
        spec(
            tmp_path,
            "{name: c, kind: cost_per_call, window: 1h, max_share: 1%}",
            "{name: c, kind: token_budget_breaches, window: 1h, baseline: 1d, max_share: 1%}",
        )
    )
    assert len(found) == 5, found
    assert any("detector name 'c' is used twice" in p for p in found)


def test_a_detector_with_a_field_pydantic_refuses_does_not_hide_another_detectors_problems(
    tmp_path: Path,
) -> None:
    found = problems(
        spec(
            tmp_path,
            "{name: c, kind: cost_per_call, window: 1h, baseline: 1d, max_increase: 20}",
            "{name: d, kind: cost_per_call, window: 1h, max_increase: 20%}",
        )
    )
    assert [p.split(":")[0] for p in found] == ["7", "8"], found
    assert "a cost_per_call detector needs a baseline window" in found[1]


def test_the_example_chatbot_has_every_detector_kind_and_its_rule_file_is_checked_in() -> None:
    root = Path(__file__).resolve().parent.parent
    (service,) = load_specs([str(root / "slos" / "chat-assistant.yaml")])
    assert {d.kind for d in service.detectors} == {
        "cost_per_call",
        "prompt_version_cost",
        "cache_hit_ratio",
        "tokens_per_call",
        "token_budget_breaches",
    }
    checked_in = root / "rules" / rule_file_name(service.name)
    assert checked_in.read_text(encoding="utf-8") == render(service)


def rules_of(path: str) -> list[dict[str, Any]]:
    (service,) = load_specs([path])
    text = render(service)
    assert text is not None
    groups: list[dict[str, Any]] = yaml.safe_load(text)["groups"]
    return groups


def test_a_detector_reads_raw_series_only_over_5m_and_its_baseline_from_recorded_series(
    tmp_path: Path,
) -> None:
    groups = rules_of(
        spec(
            tmp_path,
            "{name: c, kind: cost_per_call, group_by: [feature], window: 1h, baseline: 7d, max_increase: 20%}",
        )
    )
    assert [g["name"] for g in groups] == [
        "sloengine-detector:chat:c",
        "sloengine-detector:chat:c:baseline",
    ]
    assert [g["interval"] for g in groups] == ["5m", "1h"]
    exprs = [str(r["expr"]) for g in groups for r in g["rules"]]
    raw = [e for e in exprs if "llm_" in e]
    assert raw == [
        'sum by (feature) (rate(llm_cost_usd_total{job="chat"}[5m]))',
        'sum by (feature) (rate(llm_requests_total{job="chat"}[5m]))',
    ]
    # Every longer range is over a recorded sloengine series, the baseline just before the
    # recent window.
    for e in exprs:
        for series, window in re.findall(r"([\w:]+)\{[^}]*\}\[(\w+)\]", e):
            assert series.startswith("sloengine:") or window == "5m", e
    assert any("[7d] offset 1h" in e for e in exprs)


def test_the_alert_carries_service_detector_severity_and_annotations_with_the_numbers(
    tmp_path: Path,
) -> None:
    (fast, _) = rules_of(
        spec(
            tmp_path,
            "{name: c, kind: tokens_per_call, group_by: [feature], window: 1h, baseline: 7d, "
            "max_increase: 50%, severity: page, for: 10m, labels: {team: ai}}",
        )
    )
    (alert,) = [r for r in fast["rules"] if "alert" in r]
    assert alert["alert"] == cv.DETECTOR_ALERT_NAME
    assert alert["for"] == "10m"
    assert alert["labels"] == {"team": "ai", "service": "chat", "detector": "c", "severity": "page"}
    assert alert["expr"].splitlines()[0] == (
        'sloengine:detector_change:ratio{detector="c", service="chat"} > 0.5'
    )
    description = alert["annotations"]["description"]
    assert "sloengine:detector_recent:ratio" in description
    assert "sloengine:detector_baseline:ratio" in description
    assert "humanizePercentage" in description


def test_every_ratio_divides_only_by_a_denominator_above_zero(tmp_path: Path) -> None:
    groups = rules_of(
        spec(
            tmp_path,
            "{name: p, kind: prompt_version_cost, group_by: [feature], window: 1h, baseline: 7d, max_increase: 50%}",
        )
    )
    for group in groups:
        for rule in group["rules"]:
            if rule.get("record", "").endswith(":ratio"):
                assert " / (" in rule["expr"] and "> 0)" in rule["expr"], rule["expr"]


def test_generate_writes_the_detectors_beside_the_slo_rules_and_check_sees_them_stale(
    tmp_path: Path,
) -> None:
    path = spec(tmp_path, "{name: b, kind: token_budget_breaches, window: 1h, max_share: 1%}")
    out = tmp_path / "rules"
    runner = CliRunner()
    done = runner.invoke(cli, ["generate", path, "--out", str(out), "--tests", str(tmp_path / "t")])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in out.iterdir()) == ["chat.detectors.rules.yml", "chat.rules.yml"]
    assert (tmp_path / "t" / "chat.b.detector.test.yml").is_file()
    assert (tmp_path / "t" / "chat.b.detector.rules.yml").is_file()
    assert runner.invoke(cli, ["generate", path, "--out", str(out), "--check"]).exit_code == 0
    (out / "chat.detectors.rules.yml").write_text("# Generated by sloengine\n")
    assert runner.invoke(cli, ["generate", path, "--out", str(out), "--check"]).exit_code == 1


@pytest.mark.parametrize(
    ("detector", "expected"),
    [
        (
            "{name: c, kind: cost_per_call, group_by: [feature], window: 1h, baseline: 7d, max_increase: 20%, min_events: 200}",
            [
                "chat/c: cost_per_call detector, ticket",
                "  compares: dollars per call per feature over the last 1h with the 7d before it",
                "  fires: beyond +20%, with at least 200 calls in each window",
                "  smallest change it sees: +20%; at 200 calls a single call at 41x the mean fires it alone",
            ],
        ),
        (
            "{name: b, kind: token_budget_breaches, window: 1h, max_share: 1%, min_events: 500, severity: page}",
            [
                "chat/b: token_budget_breaches detector, page",
                "  compares: calls over their token budget per call over the last 1h",
                "  fires: above 1%, with at least 500 calls",
                "  smallest change it sees: at 500 calls, 6 over budget fire it",
            ],
        ),
    ],
)
def test_explain_says_what_a_detector_compares_and_the_smallest_change_it_sees(
    tmp_path: Path, detector: str, expected: list[str]
) -> None:
    done = CliRunner().invoke(cli, ["explain", spec(tmp_path, detector)])
    assert done.exit_code == 0, done.output
    assert done.output.rstrip("\n").split("\n")[-len(expected) :] == expected


def _ratio_between(
    s: Scenario, numerator: tuple[str, ...], denominator: str, start: int, end: int
) -> float:
    """A detector's ratio from the simulator's exposed counters over [start, end]."""
    first, last = series_at(s, start), series_at(s, end)

    def increase(names: tuple[str, ...]) -> float:
        return sum(v - first[k] for k, v in last.items() if k.split("{")[0] in names)

    return increase(numerator) / increase((denominator,))


@pytest.mark.parametrize(
    ("kind", "intensity", "numerator", "denominator", "factor"),
    [
        ("retry_storm", 0.6, ("llm_cost_usd_total",), "llm_requests_total", 1.6),
        (
            "token_growth",
            1.0,
            ("llm_input_tokens_total", "llm_output_tokens_total"),
            "llm_requests_total",
            2.0,
        ),
        ("cache_break", 0.375, ("llm_cache_read_tokens_total",), "llm_input_tokens_total", 0.625),
    ],
)
def test_the_simulator_scripts_each_regression_a_detector_is_for(
    kind: str, intensity: float, numerator: tuple[str, ...], denominator: str, factor: float
) -> None:
    origin, hour = 1735689600, 3600
    incident = Incident(origin + 3 * hour, origin + 5 * hour, kind, intensity)  # type: ignore[arg-type]
    s = Scenario(
        origin=origin,
        traffic=Traffic(base_rps=20),
        labels={"service": "chat"},
        incidents=(incident,),
    )
    before = _ratio_between(s, numerator, denominator, origin + hour, origin + 3 * hour)
    during = _ratio_between(s, numerator, denominator, origin + 3 * hour, origin + 5 * hour)
    after = _ratio_between(s, numerator, denominator, origin + 5 * hour, origin + 7 * hour)
    assert during / before == pytest.approx(factor, rel=0.01)
    assert after / before == pytest.approx(1, rel=0.01)


def test_the_simulator_scripts_calls_over_their_token_budget() -> None:
    origin, hour = 1735689600, 3600
    incident = Incident(origin + hour, origin + 2 * hour, "token_budget_breaches", 0.05)
    s = Scenario(
        origin=origin,
        traffic=Traffic(base_rps=20),
        labels={"service": "chat"},
        incidents=(incident,),
    )
    budget = ("llm_token_budget_exceeded_total",)
    during = _ratio_between(s, budget, "llm_requests_total", origin + hour, origin + 2 * hour)
    assert during == pytest.approx(0.05 + 0.95 * 0.002, rel=0.02)
