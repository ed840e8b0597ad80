"""The status decision as a table: window rates in, SLI, budget, burn, state and health out.

No Prometheus: recorded and raw readings both end in these functions."""

from __future__ import annotations

import pytest
from conftest import ROOT

from sloengine.conventions import Mode, Severity
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.status import Health, Rates, burn, health, judge, unavailable

T0 = 1_800_000_000.0
DAY = 86400
WINDOWS = (300, 1800, 3600, 7200, 21600, DAY, 3 * DAY, 30 * DAY)


def objectives() -> dict[str, Objective]:
    spec = ROOT / "slos" / "chat-assistant.yaml"
    return {o.name: o for s in load_specs([str(spec)]) for o in s.objectives}


SLOS = objectives()
AVAILABILITY = SLOS["availability"]  # 99.5% over 30d
SPEND = next(o for o in SLOS.values() if o.is_spend)


def uniform(bad: float, total: float | None, mode: Mode = Mode.RAW, age: float = 0.0) -> Rates:
    return Rates(
        dict.fromkeys(WINDOWS, bad),
        None if total is None else dict.fromkeys(WINDOWS, total),
        mode,
        age,
    )


@pytest.mark.parametrize(
    ("name", "bad", "total", "expected"),
    [
        ("Failing at exactly the error budget burns 1x", 0.05, 10.0, 1.0),
        ("Failing at ten times the error budget burns 10x", 0.5, 10.0, 10.0),
        ("No traffic burns nothing, never NaN", 0.0, 0.0, 0.0),
        ("No total reading burns nothing", 0.0, None, 0.0),
    ],
)
def test_ratio_burn(name: str, bad: float, total: float | None, expected: float) -> None:
    assert burn(AVAILABILITY, bad, total) == pytest.approx(expected)


def test_spending_the_budget_evenly_over_the_window_burns_1x() -> None:
    assert SPEND.budget_usd is not None
    per_second = SPEND.budget_usd / SPEND.period
    assert burn(SPEND, per_second, None) == pytest.approx(1.0)
    assert burn(SPEND, 3 * per_second, None) == pytest.approx(3.0)


@pytest.mark.parametrize(
    ("name", "bad_ratio", "state"),
    [
        ("A 100x burn on every window pages", 0.5, Severity.PAGE),
        ("A 4x burn on every window opens a ticket only", 0.02, Severity.TICKET),
        ("A 0.5x burn is within budget", 0.0025, "ok"),
    ],
)
def test_state_is_the_most_severe_active_pair(name: str, bad_ratio: float, state: str) -> None:
    status = judge(AVAILABILITY, uniform(bad_ratio * 10, 10.0), T0)
    assert status.state == state
    assert all(p.active == (p.long_burn > p.threshold) for p in status.pairs)


def test_half_the_budget_spent_leaves_half_in_events_and_outage_minutes() -> None:
    status = judge(AVAILABILITY, uniform(0.025, 10.0), T0)
    assert status.error_budget_remaining == pytest.approx(0.5)
    events = 10.0 * 30 * DAY
    assert status.sli == pytest.approx(1 - 0.025 / 10)
    assert status.budget_remaining == {
        "events": round(0.005 * events * 0.5, 1),
        "outage_minutes": round(0.005 * 30 * DAY * 0.5 / 60, 1),
    }
    # At 0.5x over the fastest page window, the remaining half lasts a whole 30d window.
    assert status.exhaustion_at == "2027-02-14T08:00:00+00:00"


def test_an_overspent_budget_is_exhausted_now() -> None:
    status = judge(AVAILABILITY, uniform(0.1, 10.0), T0)
    assert status.error_budget_remaining == pytest.approx(-1.0)
    assert status.exhaustion_at == "2027-01-15T08:00:00+00:00"


def test_a_spend_slo_reports_dollars_spent_and_left() -> None:
    assert SPEND.budget_usd is not None
    per_second = SPEND.budget_usd / SPEND.period / 4
    status = judge(SPEND, uniform(per_second, None), T0)
    assert status.sli == pytest.approx(SPEND.budget_usd / 4)
    assert status.budget_remaining == {"dollars": round(SPEND.budget_usd * 0.75, 2)}
    assert status.health == Health.OK


@pytest.mark.parametrize(
    ("name", "rates", "expected"),
    [
        ("Steady traffic is healthy", uniform(0.0, 10.0), Health.OK),
        ("No events over the window is no data", uniform(0.0, 0.0), Health.NO_DATA),
        (
            "Traffic so thin that one failure would page is low traffic",
            uniform(0.0, 0.001),
            Health.LOW_TRAFFIC,
        ),
        (
            "Recorded series older than three intervals are stale",
            uniform(0.0, 10.0, Mode.RECORDED, age=181),
            Health.STALE,
        ),
        (
            "Recorded series three intervals old are still fresh",
            uniform(0.0, 10.0, Mode.RECORDED, age=180),
            Health.OK,
        ),
        ("Raw readings are never stale", uniform(0.0, 10.0, Mode.RAW, age=10_000), Health.OK),
    ],
)
def test_health(name: str, rates: Rates, expected: Health) -> None:
    assert health(AVAILABILITY, rates) == expected


def test_an_unreadable_slo_is_unavailable_with_the_reason_and_no_numbers() -> None:
    status = unavailable(AVAILABILITY, "Prometheus did not answer within 10s")
    assert status.health == Health.UNAVAILABLE
    assert status.error == "Prometheus did not answer within 10s"
    assert (status.sli, status.error_budget_remaining, status.burn_rates) == (None, None, {})
    assert status.state == "ok" and status.mode == ""


def test_the_json_form_keeps_plain_strings() -> None:
    out = judge(AVAILABILITY, uniform(0.5, 10.0), T0).as_json()
    assert out["state"] == "page" and out["health"] == "ok" and out["mode"] == "raw"
    assert out["kind"] == "success_rate"
    assert out["pairs"][0]["severity"] == "page"
