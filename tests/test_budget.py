"""Burn-rate arithmetic, checked against the Google SRE Workbook (chapter 5)."""

from __future__ import annotations

import pytest

from sloengine.budget import (
    DEFAULT_POLICY,
    budget_consumed,
    budget_exhaustion_seconds,
    burn_rate,
    detection_seconds,
    resolve_policy,
)
from sloengine.conventions import Severity
from sloengine.spec import Pair

HOUR = 3600
DAY = 86400


def test_the_default_policy_over_30_days_is_the_workbooks_table() -> None:
    windows = resolve_policy(DEFAULT_POLICY, 30 * DAY)
    assert [(w.severity, round(w.burn_rate, 4)) for w in windows] == [
        ("page", 14.4),
        ("page", 6.0),
        ("ticket", 3.0),
        ("ticket", 1.0),
    ]
    assert [(w.long_seconds, w.short_seconds) for w in windows] == [
        (HOUR, 300),
        (6 * HOUR, 1800),
        (DAY, 2 * HOUR),
        (3 * DAY, 6 * HOUR),
    ]
    assert [w.budget_consumed for w in windows] == [0.02, 0.05, 0.10, 0.10]


def test_the_workbooks_fixed_windows_over_28_days_give_its_28_day_burn_rates() -> None:
    fixed = [
        Pair(severity=Severity.PAGE, budget_percent=2, long_window="1h", short_window="5m"),
        Pair(severity=Severity.PAGE, budget_percent=5, long_window="6h", short_window="30m"),
        Pair(severity=Severity.TICKET, budget_percent=10, long_window="1d", short_window="2h"),
        Pair(severity=Severity.TICKET, budget_percent=10, long_window="3d", short_window="6h"),
    ]
    rates = [round(w.burn_rate, 2) for w in resolve_policy(fixed, 28 * DAY)]
    assert rates == [13.44, 5.6, 2.8, 0.93]


def test_the_default_policy_scales_its_windows_with_the_slo_window() -> None:
    windows = resolve_policy(DEFAULT_POLICY, 28 * DAY)
    assert [round(w.burn_rate, 4) for w in windows] == [14.4, 6.0, 3.0, 1.0]
    assert windows[0].long_seconds == 28 * DAY // 720  # 56 minutes


def test_a_pair_given_as_a_burn_rate_reports_the_budget_it_spends() -> None:
    pair = Pair(severity=Severity.PAGE, burn_rate=10, long_window="1h", short_window="5m")
    (window,) = resolve_policy([pair], 30 * DAY)
    assert window.burn_rate == 10
    assert window.budget_consumed == pytest.approx(10 / 720)


def test_windows_shorter_than_the_base_rate_window_are_raised_to_it_and_flagged() -> None:
    windows = resolve_policy(DEFAULT_POLICY, 7 * DAY)
    assert windows[0].short_seconds == 300  # 7d/8640 = 70s, raised to 5m
    assert windows[0].clamped
    assert not windows[3].clamped


def test_burn_rate_and_budget_consumed_are_inverse() -> None:
    assert burn_rate(0.02, 30 * DAY, HOUR) == pytest.approx(14.4)
    assert budget_consumed(14.4, 30 * DAY, HOUR) == pytest.approx(0.02)


def test_detection_time_is_the_workbook_formula() -> None:
    # 99.9% SLO, 14.4x over 1h: a full outage fires after 0.001 * 1h * 14.4 = 51.84s.
    assert detection_seconds(14.4, HOUR, 0.001) == pytest.approx(51.84)
    # A 10% error ratio takes ten times as long.
    assert detection_seconds(14.4, HOUR, 0.001, 0.1) == pytest.approx(518.4)


def test_detection_is_impossible_when_the_threshold_exceeds_a_full_outage() -> None:
    # A 90% SLO at 14.4x needs 144% bad events.
    assert detection_seconds(14.4, HOUR, 0.10) is None


def test_a_budget_burning_at_rate_r_lasts_one_rth_of_the_window() -> None:
    assert budget_exhaustion_seconds(30 * DAY, 14.4) == pytest.approx(50 * HOUR)
    assert budget_exhaustion_seconds(30 * DAY, 0) is None
