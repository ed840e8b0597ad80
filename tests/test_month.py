"""Spend budgets on the calendar month (`window: month`): reset at 00:00 UTC on the 1st,
a forecast at month end, a page when it overshoots; proven in promtool across a month
boundary and read from a real Prometheus in raw mode."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from sloengine import conventions as cv
from sloengine.alerting import Event, payload
from sloengine.budget import month_bounds, month_forecast
from sloengine.cli import cli
from sloengine.conventions import Mode, Severity
from sloengine.delivery import Message
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.notify import render_console, render_slack, slack_templates
from sloengine.prometheus import Prometheus
from sloengine.rules import render
from sloengine.ruletests import RULES_SUFFIX, render_files
from sloengine.sim.backfill import backfill
from sloengine.sim.launch import prometheus_server
from sloengine.sim.traffic import Scenario, Traffic, truth
from sloengine.status import Rates, judge
from sloengine.windows import windows_of

FIXTURE = ROOT / "tests" / "fixtures" / "month.yaml"
DAY = 86400


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def invoice() -> Objective:
    (service,) = load_specs([str(FIXTURE)])
    (obj,) = service.objectives
    return obj


@pytest.mark.parametrize(
    ("now", "start", "end"),
    [
        ("2026-03-15T12:00:00", "2026-03-01T00:00:00", "2026-04-01T00:00:00"),
        ("2026-12-31T23:59:59", "2026-12-01T00:00:00", "2027-01-01T00:00:00"),
        ("2028-02-29T00:00:00", "2028-02-01T00:00:00", "2028-03-01T00:00:00"),
        ("2026-02-01T00:00:00", "2026-02-01T00:00:00", "2026-03-01T00:00:00"),
    ],
)
def test_a_month_runs_from_midnight_utc_on_the_1st_to_the_next_1st(
    now: str, start: str, end: str
) -> None:
    assert month_bounds(at(now)) == (at(start), at(end))


NOW = "2026-03-19T00:00:00"  # 13 days of March left


@pytest.mark.parametrize(
    ("name", "spent", "per_day", "usd", "crosses"),
    [
        ("a pace that ends under budget never crosses", 100.0, 10.0, 230.0, None),
        ("a fast pace crosses when spent plus rate reaches the budget", 100.0, 100.0, 1400.0,
         "2026-03-28T00:00:00"),
        ("a pace that crosses on the last day", 900.0, 10.0, 1030.0, "2026-03-29T00:00:00"),
        ("already over budget crossed now", 1200.0, 0.0, 1200.0, NOW),
        ("no spending forecasts nothing more", 0.0, 0.0, 0.0, None),
    ],
)  # fmt: skip
def test_the_forecast_is_spent_plus_the_rate_until_month_end(
    name: str, spent: float, per_day: float, usd: float, crosses: str | None
) -> None:
    got = month_forecast(spent, per_day / DAY, 1000.0, at(NOW))
    assert got.usd == pytest.approx(usd)
    assert got.crosses_at == (None if crosses is None else at(crosses))


def test_status_on_a_month_reads_month_to_date_dollars_and_pages_on_the_forecast() -> None:
    obj = invoice()
    now = at("2026-03-21T00:00:00")  # 11 days of March left
    windows = sorted({w for p in obj.active_windows() for w in (p.long_seconds, p.short_seconds)})
    per_second = 3000.0 / DAY  # $3,000 a day
    rates = Rates(
        dict.fromkeys([*windows, cv.FORECAST_WINDOW_SECONDS], per_second),
        None,
        Mode.RAW,
        month_to_date=35000.0,
    )
    status = judge(obj, rates, now)
    assert status.window == "month"
    assert status.sli == 35000.0
    assert status.budget_remaining == {"dollars": 25000.0}
    assert status.forecast_usd == 35000.0 + 11 * 3000.0
    # $25,000 left at $3,000 a day: 8 days and 8 hours.
    assert status.forecast_crosses_at == "2026-03-29T08:00:00+00:00"
    (page,) = [p for p in status.pairs if p.long_window == cv.MONTH_WINDOW]
    assert page.severity == Severity.PAGE and page.active
    assert status.state == Severity.PAGE
    # 6 March, $10,000 spent: 26 days at $1,000 a day end at $36,000, under the budget.
    slow = dict.fromkeys(rates.bad, 1000.0 / DAY)
    under = judge(obj, Rates(slow, None, Mode.RAW, month_to_date=10000.0), now - 15 * DAY)
    assert under.forecast_usd == 36000.0 and under.forecast_crosses_at is None
    assert under.state == "ok"


def test_the_forecast_page_carries_month_to_date_forecast_and_budget() -> None:
    (service,) = load_specs([str(FIXTURE)])
    groups = yaml.safe_load(render(service))["groups"]
    (page,) = [
        r for g in groups for r in g["rules"] if r.get("labels", {}).get(cv.LONG_WINDOW) == "month"
    ]
    assert page["alert"] == cv.ALERT_NAME
    assert page["expr"] == (
        'sloengine:spend_month_forecast_usd{service="monthly-spend", slo="invoice"} > 60000'
    )
    assert page["labels"] == {
        "service": "monthly-spend",
        "slo": "invoice",
        "severity": "page",
        "long_window": "month",
        "short_window": "1d",
    }
    notes = page["annotations"]
    assert notes["summary"] == (
        "monthly-spend invoice: spend heading over the $60000 monthly budget"
    )
    assert notes["description"] == (
        'monthly-spend/invoice has spent ${{ with query "sloengine:spend_month_to_date_usd'
        '{service=\\"monthly-spend\\", slo=\\"invoice\\"}" }}{{ . | first | value | '
        'printf "%.2f" }}{{ end }} this month (since 00:00 UTC on the 1st); at the last 1d\'s '
        'rate the month ends at ${{ $value | printf "%.2f" }}, over its budget of $60000.'
    )
    # No rule reads a 30d window: the month-to-date is the budget.
    assert not any('window="30d"' in r["expr"] for g in groups for r in g["rules"])


def test_the_page_says_what_the_month_has_spent_and_where_it_is_heading() -> None:
    obj = invoice()
    now = at("2026-03-21T00:00:00")
    bad = dict.fromkeys([*windows_of(obj)], 3000.0 / DAY)
    status = judge(obj, Rates(bad, None, Mode.RAW, month_to_date=35000.0), now)
    message = Message(1, Event.FIRING, "i", payload(obj, status, Severity.PAGE, now), 0)
    text = render_console(message)
    assert (
        "this month: $35000.00 spent since the 1st; forecast at month end $68000.00, "
        "over budget from 2026-03-29T08:00:00+00:00" in text
    )
    assert "page      1.13x over month, 1.13x over 1d (threshold 1x)  <- firing" in text
    _, blocks = render_slack(message, slack_templates())
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section" and "text" in b]
    assert (
        "*This month:* $35000.00 spent since the 1st · *forecast at month end:* $68000.00 · "
        "*over budget from* 2026-03-29T08:00:00+00:00" in sections
    )


def test_window_month_is_refused_for_anything_but_spend(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "apiVersion: sloengine/v1\nservice: svc\nslos:\n"
        "  - {name: ttft, objective: 99, window: month, sli: {ttft: {threshold: 1s}}}\n"
    )
    result = CliRunner().invoke(cli, ["validate", str(spec)])
    assert result.exit_code == 2
    assert result.stderr.replace(str(spec), "slo.yaml") == (
        "error: slo.yaml:4:41: window: month is for spend SLOs only, not ttft (a calendar "
        "month resets a dollar budget on the 1st, like an invoice; give this SLO a rolling "
        "window such as 30d or 28d)\n1 problem found; nothing was written\n"
    )


def _prove(promtool: str, work: Path, edit: Callable[[str], str] = str) -> tuple[int, str]:
    """The fixture's generated month-boundary proof run by promtool against its
    generated rule file, edited by ``edit``."""
    (service,) = load_specs([str(FIXTURE)])
    files = render_files(service)
    for name, text in files.items():
        (work / name).write_text(edit(text) if name.endswith(RULES_SUFFIX) else text)
    assert "monthly-spend.invoice.month.test.yml" in files
    run = subprocess.run(
        [promtool, "test", "rules", "monthly-spend.invoice.month.test.yml"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    return run.returncode, run.stdout + run.stderr


def test_the_generated_month_boundary_proof_passes_in_promtool(
    promtool: str, tmp_path: Path
) -> None:
    code, out = _prove(promtool, tmp_path)
    assert code == 0, out


def test_the_proof_fails_when_the_budget_does_not_reset(promtool: str, tmp_path: Path) -> None:
    # The same proof against rules whose month-to-date never drops the previous value.
    (service,) = load_specs([str(FIXTURE)])

    def broken(rules: str) -> str:
        return rules.replace(" unless on () ((day_of_month()", " or on () ((day_of_month()")

    assert broken(render(service)) != render(service)
    code, out = _prove(promtool, tmp_path, broken)
    assert code != 0
    # January still reads right; February carries January's dollars.
    assert "time: 31d" in out and "time: 30d" not in out


# A real Prometheus: two days of spend around 1 January 2026, read in raw mode.
NEW_YEAR = int(at("2026-01-01T00:00:00"))
START, END = NEW_YEAR - DAY, NEW_YEAR + DAY


def spending() -> Scenario:
    return Scenario(
        origin=START,
        traffic=Traffic(base_rps=5, peak_to_trough=3),
        labels={"service": "chat-assistant"},
    )


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tsdb = tmp_path_factory.mktemp("tsdb")
    backfill(spending(), tsdb, START, END, 60)
    with prometheus_server(tsdb) as url:
        yield url


def test_raw_status_counts_the_dollars_since_midnight_on_the_1st(prometheus: str) -> None:
    obj = invoice()
    now = NEW_YEAR + 12 * 3600
    (status,) = Evaluator(Prometheus(prometheus), mode=Mode.RAW).evaluate([obj], now)
    spent = truth(spending(), "spend", NEW_YEAR, now).bad
    last_day = truth(spending(), "spend", now - DAY, now).bad
    assert status.error == ""
    assert status.sli == pytest.approx(spent, rel=0.01)
    assert status.forecast_usd == pytest.approx(spent + last_day / DAY * (DAY * 30.5), rel=0.01)
    assert status.budget_remaining["dollars"] == pytest.approx(60000 - spent, rel=0.01)
