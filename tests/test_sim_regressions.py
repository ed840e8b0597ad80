"""The simulator's scripted regressions for detectors, pure: a prompt rollout moves a
feature's calls to a new prompt_sha at 1 + intensity times the cost; the label is off by
default, so every other series keeps its name and the series count is unchanged."""

from __future__ import annotations

import pytest

from sloengine.sim.traffic import (
    PROMPT_SHA,
    PROMPT_VERSIONS,
    Incident,
    Scenario,
    Scope,
    series_at,
)

DAY = 86400
OLD, NEW = PROMPT_VERSIONS


def _sum(series: dict[str, float], name: str, *matchers: str) -> float:
    return sum(
        v for k, v in series.items() if k.startswith(name + "{") and all(m in k for m in matchers)
    )


def _per_call(t0: float, t1: float, scenario: Scenario, *matchers: str) -> tuple[float, float]:
    a, b = series_at(scenario, t0), series_at(scenario, t1)
    cost = _sum(b, "llm_cost_usd_total", *matchers) - _sum(a, "llm_cost_usd_total", *matchers)
    calls = _sum(b, "llm_requests_total", *matchers) - _sum(a, "llm_requests_total", *matchers)
    return cost, calls


def test_prompt_versions_are_off_by_default_and_double_the_series_when_on() -> None:
    plain, versioned = Scenario(origin=0), Scenario(origin=0, prompt_versions=True)
    assert versioned.series_count == 2 * plain.series_count
    assert not any(PROMPT_SHA in k for k in series_at(plain, DAY))
    assert all(f'{PROMPT_SHA}="' in k for k in series_at(versioned, DAY))


def test_a_prompt_rollout_moves_the_feature_to_a_new_sha_at_twice_the_cost() -> None:
    rollout = Incident(DAY, 3 * DAY, "prompt_rollout", 1.0, Scope(feature="chat"))
    scenario = Scenario(origin=0, prompt_versions=True, incidents=(rollout,))
    chat_old, chat_new = 'feature="chat"', f'{PROMPT_SHA}="{NEW}"'
    before_cost, before_calls = _per_call(0, DAY, scenario, chat_old)
    assert _per_call(0, DAY, scenario, chat_old, chat_new) == (0.0, 0.0)  # not live yet
    cost, calls = _per_call(DAY, 2 * DAY, scenario, chat_old, chat_new)
    assert calls == pytest.approx(before_calls, rel=0.01)  # the same traffic, on the new sha
    assert cost / calls == pytest.approx(2 * before_cost / before_calls, rel=0.01)
    # The old version stops counting on chat; the other feature is untouched.
    assert _per_call(DAY, 2 * DAY, scenario, chat_old, f'{PROMPT_SHA}="{OLD}"') == (0.0, 0.0)
    other = 'feature="summarize"'
    assert _per_call(DAY, 2 * DAY, scenario, other, chat_new) == (0.0, 0.0)


def test_a_rollout_needs_the_version_label() -> None:
    with pytest.raises(ValueError, match="prompt_versions"):
        Scenario(origin=0, incidents=(Incident(0, DAY, "prompt_rollout", 1.0),))
