"""The backtest's pure core: windows from increments, the replay's episodes, reports."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sloengine.backtest.history import chunks, first_point
from sloengine.backtest.replay import History, Windows, replay
from sloengine.backtest.report import (
    KnownIncident,
    compare,
    detections,
    entries,
    pages_outside,
    parse_incidents,
    render_json,
    render_markdown,
    render_text,
)
from sloengine.budget import detection_seconds
from sloengine.conventions import Severity
from sloengine.errors import SpecError
from sloengine.loading import load_specs
from sloengine.model import Objective

SLO = """\
apiVersion: sloengine/v1
service: shop
metrics: {{preset: llm}}
window: 30d
slos:
  - name: availability
    objective: {objective}
    sli: {{success_rate: {{}}}}
"""
T0 = 1_800_000_000  # a minute boundary


def objective(tmp_path: Path, percent: float = 99.9, alerting: str = "") -> Objective:
    path = tmp_path / f"shop-{percent}{'-alerting' if alerting else ''}.yaml"
    path.write_text(
        SLO.format(objective=percent) + (f"    alerting: {alerting}\n" * bool(alerting))
    )
    return load_specs([str(path)])[0].objectives[0]


def history(minutes: int, bad_ratio: dict[range, float], per_minute: float = 1000) -> History:
    """Per-minute increments from T0: ``per_minute`` events, the given bad share in ranges."""
    bad = [0.0] * minutes
    for span, ratio in bad_ratio.items():
        for i in span:
            bad[i] = per_minute * ratio
    return History(T0, 60, bad, [per_minute] * minutes)


@pytest.mark.parametrize(
    ("start", "end", "points", "expected"),
    [
        (0, 600, 11, [(0, 600)]),
        (0, 600, 5, [(0, 240), (300, 540), (600, 600)]),
        (60, 60, 11_000, [(60, 60)]),
    ],
    ids=[
        "a range that fits is one chunk",
        "a longer range is cut into chunks of at most the points asked, none overlapping",
        "a single point is one chunk",
    ],
)
def test_range_queries_are_cut_into_chunks_of_at_most_the_given_points(
    start: int, end: int, points: int, expected: list[tuple[int, int]]
) -> None:
    got = chunks(start, end, 60, points)
    assert got == expected
    assert all((hi - lo) // 60 + 1 <= points for lo, hi in got)


def test_a_window_is_the_sum_of_its_steps_increments_per_second() -> None:
    h = History(T0, 60, [60.0, 120.0, 180.0, 240.0, 300.0], [600.0] * 5)
    w = Windows(h)
    rates = w.rates(4, [120, 300])
    assert rates.bad == {120: (240 + 300) / 120, 300: 900 / 300}
    assert rates.total == {120: 10.0, 300: 10.0}
    assert w.increase(4, 180) == (720.0, 1800.0)


def test_a_window_reaching_before_the_history_counts_no_events_there() -> None:
    w = Windows(History(T0, 60, [60.0, 60.0], [60.0, 60.0]))
    assert w.rates(1, [300]).bad == {300: 120 / 300}


def test_a_missing_step_makes_every_window_holding_it_missing_and_no_other() -> None:
    w = Windows(History(T0, 60, [1.0, math.nan, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0]))
    assert math.isnan(w.rates(2, [180]).bad[180])
    assert w.rates(3, [120]).bad[120] == pytest.approx(2 / 120)


def test_a_clean_history_has_no_episodes_and_the_budget_its_error_ratio_leaves(
    tmp_path: Path,
) -> None:
    obj = objective(tmp_path)
    r = replay(obj, history(600, {range(600): 0.0005}), T0 + 60 * 60)
    assert r.episodes == [] and r.pages == 0 and r.tickets == 0
    # 0.05% errors against a 0.1% budget spend half of it, whatever the span.
    assert r.budget_end == pytest.approx(0.5)
    assert r.breached_days == []


def test_an_outage_pages_at_the_workbook_detection_time_and_resolves_after_it(
    tmp_path: Path,
) -> None:
    obj = objective(tmp_path)
    outage = range(120, 180)  # a full outage from minute 120 for an hour
    r = replay(obj, history(400, {outage: 1.0}), T0)
    page = [e for e in r.episodes if e.severity == Severity.PAGE and e.long_window == "1h"]
    assert len(page) == 1
    fastest = obj.active_windows()[0]
    detect = detection_seconds(fastest.burn_rate, fastest.long_seconds, obj.error_budget)
    assert detect is not None
    # The increment at minute 120 is what happened in the minute before it.
    started = T0 + 119 * 60
    assert page[0].fired_at - started == pytest.approx(detect, abs=60)
    assert page[0].resolved_at is not None and page[0].resolved_at > T0 + 180 * 60
    assert page[0].peak_burn == pytest.approx(1 / obj.error_budget, rel=0.01)
    assert r.pages == 1
    assert r.incidents[0].paged_at == page[0].fired_at
    assert r.firing_seconds > 3600
    # An hour of full outage spends 1h / (30d * 0.001) = 139% of a 30d budget.
    assert r.budget_end is not None and r.budget_end < 0
    assert r.breached_days


def test_a_stricter_objective_adds_the_pages_the_old_one_missed(tmp_path: Path) -> None:
    h = history(600, {range(60, 300): 0.02})  # 2% errors for four hours
    old = replay(objective(tmp_path, 99.5), h, T0)
    new = replay(objective(tmp_path, 99.9), h, T0)
    change = compare(old, new)
    assert old.pages == 0 and new.pages == 1
    assert change.added == new.page_times and change.removed == []
    assert compare(new, old).removed == new.page_times


def test_known_incidents_are_detected_missed_or_paged_outside(tmp_path: Path) -> None:
    obj = objective(tmp_path)
    r = replay(obj, history(900, {range(120, 180): 1.0}), T0)
    hit = KnownIncident("outage", T0 + 119 * 60, T0 + 180 * 60)
    # The ticket pairs stay open until the 6h short window is clean again.
    quiet = KnownIncident("quiet", T0 + 800 * 60, T0 + 850 * 60, service="shop")
    elsewhere = KnownIncident("other", T0, T0 + 60, service="other")
    found = detections(r, [hit, quiet, elsewhere])
    assert [d.incident.name for d in found] == ["outage", "quiet"]
    assert found[0].time_to_detect is not None and 0 < found[0].time_to_detect < 600
    assert found[1].detected_at is None
    assert pages_outside(r, [hit]) == []
    assert pages_outside(r, [quiet]) == r.page_times


def test_the_json_report_has_the_documented_fields(tmp_path: Path) -> None:
    obj = objective(tmp_path)
    r = replay(obj, history(400, {range(120, 180): 1.0}), T0)
    rows = json.loads(render_json(entries([r], [r], [])))
    row = rows[0]
    assert {"service", "slo", "episodes", "pages_per_week", "budget_remaining_end"} <= set(row)
    assert row["service"] == "shop" and row["slo"] == "availability"
    episode = row["episodes"][0]
    assert list(episode) == [
        "severity",
        "long_window",
        "short_window",
        "fired_at",
        "resolved_at",
        "peak_burn",
    ]
    assert episode["fired_at"].endswith("+00:00")
    assert row["against"] == {"old_pages": 1, "pages_added": [], "pages_removed": []}
    assert row["incidents"] == [] and row["pages_outside_incidents"] == [episode["fired_at"]]
    text = render_text(entries([r]))
    assert "shop/availability" in text and "page   1h/5m" in text
    markdown = render_markdown(entries([r]))
    assert markdown.startswith("### sloengine backtest") and "| `shop/availability` |" in markdown


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("- {start: 2026-11-03T10:00:00Z}\n", ":1:3:", "has no end"),
        (
            "incidents:\n  - start: 2026-11-03T10:00:00Z\n    end: yesterday\n",
            ":3:10:",
            "'yesterday' is not a time",
        ),
        ("- {start: 2026-11-03T10:00:00, end: 2026-11-03T11:00:00Z}\n", ":1:11:", "no time zone"),
        (
            "- {start: 2026-11-03T10:00:00Z, end: 2026-11-03T09:00:00Z}\n",
            ":1:38:",
            "ends before it starts",
        ),
        (
            "- {start: 2026-11-03T10:00:00Z, end: 2026-11-03T11:00:00Z, when: x}\n",
            ":1:60:",
            "'when'",
        ),
        ("start: now\n", ":1:1:", "expected a list"),
    ],
    ids=[
        "an incident without an end",
        "an end that is not a time",
        "a time without a zone",
        "an end before the start",
        "an unknown field",
        "a mapping instead of a list",
    ],
)
def test_a_bad_incidents_file_says_where_and_what(text: str, where: str, what: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_incidents("known.yaml", text)
    assert f"known.yaml{where}" in str(caught.value) and what in str(caught.value)


def test_an_incidents_file_reads_names_times_and_scopes() -> None:
    START = datetime(2026, 11, 3, 10, tzinfo=UTC).timestamp()
    got = parse_incidents(
        "known.yaml",
        "- {name: outage, start: 2026-11-03T10:00:00Z, end: 2026-11-03T12:00:00+01:00, slo: availability}\n",
    )
    assert got == [KnownIncident("outage", START, START + 3600, None, "availability")]


SPEND = """\
apiVersion: sloengine/v1
service: shop
metrics: {preset: llm}
window: 30d
slos:
  - name: spend
    sli: {spend: {budget_usd: 43200}}
"""


def spend(tmp_path: Path) -> Objective:
    path = tmp_path / "spend.yaml"
    path.write_text(SPEND)
    return load_specs([str(path)])[0].objectives[0]


def runaway(minutes: int, start: int) -> list[float]:
    """43,200 dollars over 30 days is a dollar a minute; 30 a minute for two hours."""
    return [30.0 if start <= i < start + 120 else 1.0 for i in range(minutes)]


def test_spend_burns_at_its_dollar_pace_and_pages_when_it_runs_away(tmp_path: Path) -> None:
    obj = spend(tmp_path)
    r = replay(obj, History(T0, 60, runaway(600, 200), None), T0 + 60 * 60)
    page = [e for e in r.episodes if e.long_window == "1h"]
    assert len(page) == 1 and page[0].severity == Severity.PAGE
    assert page[0].peak_burn == pytest.approx(30, rel=0.01)
    assert r.pages == 1


MONTH = Path(__file__).parent / "fixtures" / "month.yaml"  # $60,000 a calendar month


def utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


MONTH_STEP = 300  # five minutes: a month of steps judged in a second


def month_spend() -> History:
    """January at $1,500 a day, $4,000 a day from the 20th, $1,000 a day from the 31st,
    to 23:55 on 3 February."""
    start, per_step = utc("2026-01-01T00:00:00"), MONTH_STEP / 86400
    dollars = []
    for i in range(34 * 86400 // MONTH_STEP):
        t = start + i * MONTH_STEP
        per_day = 1500 if t <= utc("2026-01-20T00:00:00") else 4000
        dollars.append((1000 if t > utc("2026-01-31T00:00:00") else per_day) * per_step)
    return History(start, MONTH_STEP, dollars, None)


def test_a_calendar_month_pages_on_its_forecast_and_its_budget_resets_on_the_1st() -> None:
    obj = load_specs([str(MONTH)])[0].objectives[0]
    r = replay(obj, month_spend(), utc("2026-01-02T00:00:00"))
    [page] = [e for e in r.episodes if e.long_window == "month"]
    assert (page.severity, page.short_window) == (Severity.PAGE, "1d")
    # x days into the 20th: spent 28,500 + 4,000x, the last day's rate 1,500 + 2,500x a
    # day for the 12 - x days left; that reaches $60,000 at x = (13 - sqrt(147.4)) / 2.
    crossing = utc("2026-01-20T00:00:00") + (13 - math.sqrt(147.4)) / 2 * 86400
    assert 0 <= page.fired_at - crossing < MONTH_STEP
    # February starts from nothing at the 31st's $1,000 a day: 28,000, under the budget.
    assert page.resolved_at == utc("2026-02-01T00:00:00")
    # The peak "burn" of the forecast page is the forecast's share of the budget: from
    # the 21st, 28,500 + 4,000x spent and 4,000 a day for the 12 - x days left.
    assert page.peak_burn == pytest.approx((28_500 + 12 * 4000) / 60_000)
    assert r.pages == 1
    # $60,000 was spent by 21:00 on the 27th; from the 1st the month's budget is whole.
    assert r.breached_days == [f"2026-01-{d}" for d in range(27, 32)]
    budget = dict(r.budget)
    assert budget[utc("2026-02-01T00:00:00")] == 1.0
    # The history ends at 23:55 on 3 February: a step short of three days at $1,000.
    assert r.budget_end == pytest.approx(1 - (3 - MONTH_STEP / 86400) * 1000 / 60_000)


def gappy() -> History:
    """A day of 0.05% errors with an outage, a ticket-level drizzle, a gap in the data
    during the drizzle and a quiet hour with no traffic at all."""
    h = history(3000, {range(3000): 0.0005, range(1500, 1530): 1.0, range(2000, 2300): 0.02})
    bad, total = list(h.bad), list(h.total or [])
    for i in range(2100, 2110):
        bad[i] = total[i] = math.nan
    for i in range(2600, 2660):
        bad[i] = total[i] = 0.0
    return History(T0, 60, bad, total)


@pytest.mark.parametrize(
    ("alerting", "build"),
    [
        ("{}", gappy),
        ("{page: {for: 10m}, ticket: {for: 30m}}", gappy),
        ("{min_events: 2000000, min_bad_events: 5}", gappy),
        ("{ticket: {enabled: false}}", gappy),
    ],
    ids=[
        "the default policy",
        "pages and tickets held by for",
        "event guards that hold most pairs back",
        "tickets turned off",
    ],
)
def test_screening_quiet_steps_replays_exactly_what_judging_every_step_does(
    tmp_path: Path, alerting: str, build: Callable[[], History]
) -> None:
    obj = objective(tmp_path, alerting=alerting)
    h = build()
    screened = replay(obj, h, T0 + 600 * 60)
    assert screened == replay(obj, h, T0 + 600 * 60, screen=False)
    assert screened.episodes or alerting.startswith("{min_events")


def test_screening_replays_spend_and_calendar_months_exactly(tmp_path: Path) -> None:
    dollars = runaway(3000, 1200)
    dollars[2000:2005] = [math.nan] * 5
    h = History(T0, 60, dollars, None)
    obj = spend(tmp_path)
    assert replay(obj, h, T0 + 3600) == replay(obj, h, T0 + 3600, screen=False)
    month = load_specs([str(MONTH)])[0].objectives[0]
    since = utc("2026-01-02T00:00:00")
    assert replay(month, month_spend(), since) == replay(month, month_spend(), since, screen=False)


def test_a_page_after_a_known_incident_ended_is_not_its_page(tmp_path: Path) -> None:
    # A ticket-level drizzle from minute 60, then a full outage from minute 400 while
    # the ticket is still open: the escalation is the outage's page, not the drizzle's.
    h = history(1200, {range(60, 300): 0.03, range(400, 430): 1.0})
    r = replay(objective(tmp_path, 99.5), h, T0)
    [incident] = r.incidents
    assert incident.opened_at < T0 + 300 * 60 and incident.paged_at is not None
    assert incident.paged_at > T0 + 400 * 60
    drizzle = KnownIncident("drizzle", T0 + 59 * 60, T0 + 300 * 60)
    outage = KnownIncident("outage", T0 + 399 * 60, T0 + 430 * 60)
    found = {d.incident.name: d for d in detections(r, [drizzle, outage])}
    assert found["drizzle"].detected_at == incident.opened_at
    assert found["drizzle"].paged_at is None
    assert found["outage"].paged_at == incident.paged_at


def test_the_report_says_when_the_windows_reach_before_the_first_events(tmp_path: Path) -> None:
    obj = objective(tmp_path)
    # No traffic at all for the first 100 minutes (a service that did not exist yet).
    quiet_first = History(T0, 60, [0.0] * 100 + [0.5] * 500, [0.0] * 100 + [1000.0] * 500)
    r = replay(obj, quiet_first, T0 + 200 * 60)
    assert r.data_from == T0 + 100 * 60 and r.partial
    [row] = json.loads(render_json(entries([r])))
    assert row["data_from"] == "2027-01-15T09:40:00+00:00"
    assert "no events before 2027-01-15T09:40:00Z (the windows, read from" in (
        render_text(entries([r]))
    )
    whole = replay(obj, history(600, {range(600): 0.0005}), T0 + 200 * 60)
    assert whole.data_from == T0 and not whole.partial
    assert "no events before" not in render_text(entries([whole]))


def test_a_forecast_page_shows_its_peak_as_a_share_of_the_months_budget() -> None:
    obj = load_specs([str(MONTH)])[0].objectives[0]
    r = replay(obj, month_spend(), utc("2026-01-02T00:00:00"))
    text = render_text(entries([r]))
    assert "page   month/1d  fired 2026-01-20T10:" in text
    assert "resolved 2026-02-01T00:00:00Z  peak forecast 128% of the budget" in text
    assert "| forecast 128% of the budget |" in render_markdown(entries([r]))


def test_a_markdown_report_over_githubs_limit_leaves_out_the_last_details(
    tmp_path: Path,
) -> None:
    obj = objective(tmp_path)
    r = replay(obj, history(400, {range(120, 180): 1.0}), T0)
    items = entries([r] * 30)
    whole = render_markdown(items)
    assert whole.count("<details>") == 30 and "left out" not in whole
    cut = render_markdown(items, limit=len(whole) // 2)
    assert len(cut) <= len(whole) // 2
    kept = cut.count("<details>")
    assert 0 < kept < 30 and cut.count("| `shop/availability` |") == 30
    assert f"The episodes of {30 - kept} more SLO(s) are left out" in cut


def test_a_calendar_month_reads_its_history_from_midnight_on_the_1st(tmp_path: Path) -> None:
    month = load_specs([str(MONTH)])[0].objectives[0]
    # The month-to-date on the 20th needs every dollar since the 1st, more than its 3d pairs.
    assert first_point(month, utc("2026-01-20T12:00:00"), 60) == utc("2026-01-01T00:00:00")
    # On the 2nd, its longest window (3d) reaches further back.
    assert first_point(month, utc("2026-01-02T00:00:00"), 60) == utc("2025-12-30T00:00:00")
    # A rolling window reads its longest window before the start, on the step grid.
    rolling = objective(tmp_path)
    assert first_point(rolling, utc("2026-01-20T12:00:30"), 60) == utc("2025-12-21T12:00:00")
