"""`sloengine backtest` against a real Prometheus holding simulated history with known
incidents, and against promtool running the generated rules over the same history."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from sloengine.backtest.history import read_history
from sloengine.backtest.replay import Replay, Windows, replay
from sloengine.budget import detection_seconds
from sloengine.cli import cli
from sloengine.conventions import ALERT_NAME, LONG_WINDOW, SERVICE, SEVERITY
from sloengine.conventions import SLO as SLO_LABEL
from sloengine.inputs import plan
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.prometheus import Prometheus
from sloengine.promql import labels as label_matchers
from sloengine.rules import render

# The rule tests' own input writer, so promtool and the backfill see the same counters.
from sloengine.ruletests import Phase, _increment, _inputs
from sloengine.sim.backfill import backfill
from sloengine.sim.launch import free_port, prometheus_server
from sloengine.sim.traffic import Baseline, Incident, Scenario, Traffic

DAYS = 2
NOW = int(time.time()) // 3600 * 3600
START = NOW - DAYS * 86400
STEP = 60
# Small enough that an 11,000-point chunk of a 15s-scraped series is refused, so the
# reader's halving is exercised on every test.
MAX_SAMPLES = 20_000

SLO = """\
apiVersion: sloengine/v1
service: {service}
metrics: {{preset: llm, selector: 'service="{service}"'}}
window: 30d
slos:
  - name: availability
    objective: {objective}
    sli: {{success_rate: {{}}}}
"""


def a_hit() -> Incident:
    """A quarter of requests fail for 45 minutes: every policy pages."""
    return Incident(START + 26 * 3600, START + 26 * 3600 + 45 * 60, "error_rate", 0.25)


def a_drizzle() -> Incident:
    """2% fail for three hours: a 99.9% objective pages, 99.5% does not."""
    return Incident(START + 36 * 3600, START + 39 * 3600, "error_rate", 0.02)


def shop() -> Scenario:
    return Scenario(
        origin=START,
        traffic=Traffic(base_rps=5),
        providers=1,
        models_per_provider=1,
        features=2,  # chat and summarize, for the grouped SLO
        labels={"service": "shop"},
        incidents=(a_hit(), a_drizzle()),
        baseline=Baseline(error_rate=0.0005),
    )


# The promtool cross-check: the same counters written as promtool input series and
# backfilled, 15s apart, for a service of its own: clean, a 30% outage, clean again.
XCHECK_SAMPLE = 15
XCHECK = [Phase(120 * 4, 0.0005, 150), Phase(45 * 4, 0.3, 150), Phase(180 * 4, 0.0005, 150)]

# And for a calendar month's spend, from 00:00 UTC on 1 January 2026: promtool's clock
# starts at 00:00 UTC on 1 January 1970, so the same minute is the same day of a 31-day
# month in both, and the month-end forecast has as many days left. A day at 0.2x the
# budget's pace (a spend Phase's ratio is the burn per 15s sample, a quarter of the
# per-minute pace), then 20x for 90 minutes: the 1h/5m page fires and resolves, and the
# forecast page fires and holds (the month still ends over budget). A day first, so the
# 1d window of the rules, which averages only what they have seen, is whole.
MONTH_START = int(datetime(2026, 1, 1, tzinfo=UTC).timestamp())
XMONTH = [Phase(1470 * 4, 0.2 / 4), Phase(90 * 4, 20 / 4), Phase(60 * 4, 0.2 / 4)]
XMONTH_SLO = """\
apiVersion: sloengine/v1
service: xmonth
metrics: {preset: llm, selector: 'service="xmonth"'}
slos:
  - name: invoice
    window: month
    sli: {spend: {budget_usd: 43200}}
    # The default pairs without 3d/6h: after a day of history, promtool's rules would
    # average a 3d window over that day alone (a Prometheus running them for months
    # would not).
    policy:
      - {severity: page, burn_rate: 14.4, long_window: 1h, short_window: 5m}
      - {severity: page, burn_rate: 6, long_window: 6h, short_window: 30m}
      - {severity: ticket, burn_rate: 3, long_window: 1d, short_window: 2h}
"""


def minutes_of(phases: list[Phase]) -> int:
    return sum(p.minutes for p in phases) * XCHECK_SAMPLE // 60


def slo_file(directory: Path, service: str, objective: float, group_by: str = "") -> str:
    path = directory / f"{service}-{objective}{'-by-' + group_by if group_by else ''}.yaml"
    text = SLO.format(service=service, objective=objective)
    if group_by:
        text += f"    group_by: [{group_by}]\n"
    path.write_text(text)
    return str(path)


def objective_of(path: str) -> Objective:
    return load_specs([path])[0].objectives[0]


def counter_values(obj: Objective, role: str, phases: list[Phase]) -> list[float]:
    """The values promtool's expanding notation gives the series, sample by sample."""
    values, value = [0.0], 0.0
    for phase in phases:
        for _ in range(phase.minutes):
            value += _increment(phase, role, obj)
            values.append(value)
    return values


def write_xcheck(
    obj: Objective, phases: list[Phase], origin: int, tsdb: Path, promtool: str
) -> None:
    source = tsdb.parent / f"{obj.service}.om"
    lines = []
    for series in plan(obj).series:
        # OpenMetrics allows no space between labels, unlike promtool's notation.
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(series.labels.items()))
        name = f"{series.metric}{{{labels}}}"
        for k, v in enumerate(counter_values(obj, series.role, phases)):
            lines.append(f"{name} {v:.6f} {origin + k * XCHECK_SAMPLE}")
    source.write_text("\n".join(lines) + "\n# EOF\n")
    subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(source), str(tsdb)],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("slos")
    (d / "xmonth.yaml").write_text(XMONTH_SLO)
    return {
        "strict": slo_file(d, "shop", 99.9),
        "loose": slo_file(d, "shop", 99.5),
        "xcheck": slo_file(d, "xcheck", 99.9),
        "grouped": slo_file(d, "shop", 99.9, group_by="feature"),
        "xmonth": str(d / "xmonth.yaml"),
    }


@pytest.fixture(scope="module")
def prometheus(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, str], promtool: str
) -> Iterator[str]:
    tsdb = tmp_path_factory.mktemp("tsdb")
    backfill(shop(), tsdb, START, NOW, 15)
    write_xcheck(objective_of(files["xcheck"]), XCHECK, START, tsdb, promtool)
    write_xcheck(objective_of(files["xmonth"]), XMONTH, MONTH_START, tsdb, promtool)
    with prometheus_server(tsdb, extra_args=[f"--query.max-samples={MAX_SAMPLES}"]) as url:
        yield url


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat()


def backtest(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, ["backtest", "--prometheus", url, *args])


def unseen() -> Incident:
    """An incident the team remembers that the SLO never saw (a quiet morning)."""
    return Incident(START + 10 * 3600, START + 11 * 3600, "error_rate", 0.0)


def known(directory: Path) -> str:
    path = directory / "known.yaml"
    path.write_text(
        yaml.safe_dump(
            [
                {"name": n, "start": iso(i.start), "end": iso(i.end), "service": "shop"}
                for n, i in (("hit", a_hit()), ("drizzle", a_drizzle()), ("unseen", unseen()))
            ]
        )
    )
    return str(path)


def test_known_incidents_are_found_at_the_workbooks_detection_time(
    prometheus: str, files: dict[str, str], tmp_path: Path
) -> None:
    since, until = iso(START + 6 * 3600), iso(NOW)
    args = ["--since", since, "--until", until, "--format", "json"]
    result = backtest(prometheus, files["strict"], *args, "--incidents", known(tmp_path))
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    found = {i["name"]: i for i in row["incidents"]}
    obj = objective_of(files["strict"])
    fastest = obj.active_windows()[0]
    for name, incident in (("hit", a_hit()), ("drizzle", a_drizzle())):
        # The incident's share of failures on top of the baseline's.
        ratio = incident.intensity + 0.0005 * (1 - incident.intensity)
        expected = detection_seconds(
            fastest.burn_rate, fastest.long_seconds, obj.error_budget, ratio
        )
        assert expected is not None
        assert found[name]["time_to_page_seconds"] == pytest.approx(expected, abs=2 * STEP)
        assert found[name]["time_to_detect_seconds"] <= found[name]["time_to_page_seconds"]
    assert found["unseen"]["detected_at"] is None
    assert row["pages_outside_incidents"] == []
    assert row["pages"] == 2 and row["budget_remaining_end"] < 1

    loose = backtest(prometheus, files["loose"], *args[:-2], "--incidents", known(tmp_path))
    assert loose.exit_code == 0, loose.output
    assert "incident 'hit': detected after" in loose.stdout
    # 2% failing for three hours opens a ticket at 99.5%, and pages nobody.
    assert "incident 'drizzle': detected after 1h" in loose.stdout
    assert "incident 'drizzle': detected after 1h" in loose.stdout
    assert "never paged" in loose.stdout.split("'drizzle'")[1].splitlines()[0]
    assert "missed incidents: 1\n  unseen" in loose.stdout


def test_a_clean_period_has_no_episodes(prometheus: str, files: dict[str, str]) -> None:
    window = ["--since", iso(START + 6 * 3600), "--until", iso(START + 24 * 3600)]
    result = backtest(prometheus, files["strict"], files["xcheck"], *window, "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    shop_row = rows[0]
    assert shop_row["episodes"] == [] and shop_row["pages_per_week"] == 0
    assert shop_row["breached_days"] == []
    # 0.05% failing against a 0.1% budget leaves half of it.
    assert shop_row["budget_remaining_end"] == pytest.approx(0.5, abs=0.02)


def test_a_grouped_slo_is_replayed_per_group_as_run_pages_it(
    prometheus: str, files: dict[str, str]
) -> None:
    window = ["--since", iso(START + 6 * 3600), "--until", iso(NOW)]
    grouped = backtest(prometheus, files["grouped"], *window, "--format", "json")
    assert grouped.exit_code == 0, grouped.output
    rows = json.loads(grouped.stdout)
    assert [r["group"] for r in rows] == [{"feature": "chat"}, {"feature": "summarize"}]
    [whole] = json.loads(backtest(prometheus, files["strict"], *window, "--format", "json").stdout)
    # The incidents hit every feature alike: each group pages when the whole SLO does.
    for row in rows:
        assert row["pages"] == whole["pages"] == 2
        assert {e["long_window"] for e in row["episodes"]} == {
            e["long_window"] for e in whole["episodes"]
        }
    text = backtest(prometheus, files["grouped"], *window)
    assert "shop/availability {feature=chat}" in text.stdout
    assert "shop/availability {feature=summarize}" in text.stdout


def test_a_stricter_objective_shows_the_pages_it_adds(
    prometheus: str, files: dict[str, str]
) -> None:
    window = ["--since", iso(START + 6 * 3600), "--until", iso(NOW)]
    result = backtest(
        prometheus, files["strict"], *window, "--against", files["loose"], "--format", "json"
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.stdout)
    assert row["against"]["old_pages"] == 1 and row["against"]["pages_removed"] == []
    [added] = row["against"]["pages_added"]
    drizzle = a_drizzle()
    assert drizzle.start < datetime.fromisoformat(added).timestamp() < drizzle.end
    markdown = backtest(
        prometheus, files["strict"], *window, "--against", files["loose"], "--format", "markdown"
    )
    assert "| `shop/availability` |" in markdown.stdout and "+1 / -0 |" in markdown.stdout


def test_windows_built_from_step_increments_match_prometheus_increase(
    prometheus: str, files: dict[str, str]
) -> None:
    prom = Prometheus(prometheus)
    obj = objective_of(files["strict"])
    [history] = read_history(prom, obj, START + 6 * 3600, NOW, STEP)
    [small] = read_history(prom, obj, START + 6 * 3600, NOW, STEP, points=700)
    assert list(history.bad) == list(small.bad) and history.total == small.total
    windows = Windows(history)
    selector = 'llm_requests_total{service="shop"}'
    for at in (a_hit().start + 1800, a_drizzle().end - 600, NOW - 7200):
        i = round((at - history.start) / STEP)
        for seconds in (3600, 6 * 3600):
            bad, total = windows.increase(i, seconds)
            assert total is not None
            window = f"{seconds}s"
            [want_total] = prom.query(f"sum(increase({selector}[{window}]))", at)
            [want_bad] = prom.query(
                f'sum(increase(llm_requests_total{{service="shop",status="error"}}[{window}]))', at
            )
            assert total == pytest.approx(want_total.value, rel=0.005)
            assert bad == pytest.approx(want_bad.value, rel=0.02)


def test_the_generated_rules_in_promtool_fire_the_same_episodes_within_one_step(
    prometheus: str, files: dict[str, str], promtool: str, tmp_path: Path
) -> None:
    r = promtool_agrees(prometheus, files["xcheck"], XCHECK, START, promtool, tmp_path)
    assert {e.long_window for e in r.episodes} >= {"1h", "6h"}


def test_a_calendar_months_forecast_page_fires_as_in_promtool_within_one_step(
    prometheus: str, files: dict[str, str], promtool: str, tmp_path: Path
) -> None:
    r = promtool_agrees(prometheus, files["xmonth"], XMONTH, MONTH_START, promtool, tmp_path)
    fired = {e.long_window: e for e in r.episodes}
    assert set(fired) == {"1h", "month"}
    assert fired["1h"].resolved_at is not None
    # Still firing at the end: the month is heading over budget at the last day's rate.
    assert fired["month"].resolved_at is None and fired["month"].short_window == "1d"
    assert fired["1h"].fired_at < fired["month"].fired_at
    assert r.pages == 1 and r.budget_end is not None and 0 < r.budget_end < 1


def alerts(obj: Objective, severity: str = "", long_window: str = "") -> str:
    """ALERTS of the SLO that are firing (of one pair, given its severity and window)."""
    wanted = {"alertname": ALERT_NAME, SERVICE: obj.service, SLO_LABEL: obj.name}
    if severity:
        wanted |= {SEVERITY: severity, LONG_WINDOW: long_window}
    return "ALERTS{" + label_matchers({**wanted, "alertstate": "firing"}) + "}"


def promtool_agrees(
    url: str, file: str, phases: list[Phase], origin: int, promtool: str, directory: Path
) -> Replay:
    """Backtest the SLO over the history written from ``phases`` at ``origin``, then run
    the same counters through promtool with the generated rules: every episode fires in
    promtool one step after the backtest says and not two steps before (and so for its
    resolution), and every five minutes away from a transition as many alerts fire."""
    obj = objective_of(file)
    minutes = minutes_of(phases)
    end = origin + minutes * 60
    [history] = read_history(Prometheus(url), obj, origin, end, STEP)
    r = replay(obj, history, origin + STEP)
    transitions = sorted(
        t - origin for e in r.episodes for t in (e.fired_at, e.resolved_at) if t is not None
    )

    def firing(minute: int) -> int:
        t = origin + minute * 60
        return sum(1 for e in r.episodes if e.fired_at <= t and (e.resolved_at or end + 1) > t)

    checks = []
    for minute in range(5, minutes, 5):
        if any(abs(minute * 60 - t) <= STEP for t in transitions):
            continue
        checks.append(
            {
                "expr": f"count({alerts(obj)}) or vector(0)",
                "eval_time": f"{minute}m",
                "exp_samples": [{"labels": "{}", "value": firing(minute)}],
            }
        )
    for e in r.episodes:
        query = f"count({alerts(obj, str(e.severity), e.long_window)})"
        at = {"fired": e.fired_at, "resolved": e.resolved_at}
        for what, t in at.items():
            if t is None:
                continue
            minute = round((t - origin) / 60)
            after = [{"labels": "{}", "value": 1}] if what == "fired" else []
            before = [] if what == "fired" else [{"labels": "{}", "value": 1}]
            checks += [
                {"expr": query, "eval_time": f"{minute + 1}m", "exp_samples": after},
                {"expr": query, "eval_time": f"{minute - 2}m", "exp_samples": before},
            ]
    service = load_specs([file])[0]
    (directory / "rules.yml").write_text(render(service))
    (directory / "test.yml").write_text(
        yaml.safe_dump(
            {
                "rule_files": ["rules.yml"],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": f"{XCHECK_SAMPLE}s",
                        "input_series": _inputs(plan(obj), phases, obj),
                        "promql_expr_test": checks,
                    }
                ],
            }
        )
    )
    run = subprocess.run(
        [promtool, "test", "rules", "test.yml"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return r


def test_prometheus_down_exits_3_with_a_clear_message(files: dict[str, str]) -> None:
    result = backtest(f"http://127.0.0.1:{free_port()}", files["strict"], "--since", "1d")
    assert result.exit_code == 3
    assert "is unreachable" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "last week"], "--since 'last week' is not a time"),
        (["--step", "10s"], "--step 10s is outside 1m..5m"),
        (
            ["--since", "2026-01-02T00:00:00Z", "--until", "2026-01-01T00:00:00Z"],
            "is not before --until",
        ),
    ],
    ids=["a since that is no time", "a step under a minute", "a range that ends before it starts"],
)
def test_bad_options_exit_2(files: dict[str, str], args: list[str], message: str) -> None:
    result = backtest("http://127.0.0.1:9", files["strict"], *args)
    assert result.exit_code == 2 and message in result.output


def test_a_bad_incidents_file_exits_2_with_its_line(files: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "known.yaml"
    bad.write_text("- name: outage\n  start: 2026-11-03T10:00:00Z\n  end: soon\n")
    result = backtest("http://127.0.0.1:9", files["strict"], "--incidents", str(bad))
    assert result.exit_code == 2
    assert f"{bad}:3:8: end 'soon' is not a time" in result.output
