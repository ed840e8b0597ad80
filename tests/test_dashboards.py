"""`sloengine dashboard`: a Grafana dashboard per service, laid out as on-call reads it,
and every panel's query answered by a real Prometheus holding the demo's data."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from sloengine import conventions as cv
from sloengine.cli import cli
from sloengine.dashboards import (
    PRESET_EXTRAS,
    dashboard,
    queries,
    render_dashboard,
    uid,
    with_selector,
)
from sloengine.demo import base_rules, budget_rules
from sloengine.loading import load_specs
from sloengine.model import Service
from sloengine.output import GENERATED_JSON_MARK
from sloengine.promql import dialect_problem, parse
from sloengine.rules import render
from sloengine.sim.backfill import add_rule_history, backfill
from sloengine.sim.client import query, query_range
from sloengine.sim.launch import prometheus_server
from sloengine.sim.traffic import Incident, Scope, example_scenario
from sloengine.sli import CATALOG

CHAT = ROOT / "slos" / "chat-assistant.yaml"


def service(path: Path = CHAT) -> Service:
    return load_specs([str(path)])[0]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def titles(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [(p["type"], p["title"]) for p in doc["panels"]]


def test_the_dashboard_reads_top_to_bottom_as_on_call_does() -> None:
    doc = dashboard(service())
    names = [f"{t}:{title}" for t, title in titles(doc)]
    assert names[:4] == [
        "row:Now: state, budget, burn",
        "stat:State",
        "bargauge:Error budget remaining",
        "stat:Burn rate now",
    ]
    middle = names[names.index("row:Over time") + 1 : names.index("row:Firing alerts")]
    assert middle[0] == "timeseries:SLI (5m)"
    assert [n for n in middle if "Burn rate by window" in n] == [
        f"timeseries:Burn rate by window: {obj.name}" for obj in service().objectives
    ]
    assert {"timeseries:Cost per day by feature", "timeseries:Errors by class"} <= set(middle)
    assert names[-1] == "table:Firing alerts"
    # The top row sits above the middle, the alerts below everything.
    ys = [p["gridPos"]["y"] for p in doc["panels"]]
    assert ys == sorted(ys)


def test_panels_a_preset_has_no_metrics_for_are_left_out() -> None:
    """The gateway reads plain HTTP ratios: no cost, error-class or token panels."""
    doc = dashboard(service(ROOT / "slos" / "gateway.yaml"))
    shown = {title for _, title in titles(doc)}
    assert not shown & {"Cost per day by feature", "Errors by class", "Tokens per second"}
    assert "Firing alerts" in shown


def test_the_firing_alerts_table_links_each_slos_runbook() -> None:
    doc = dashboard(service())
    table = doc["panels"][-1]
    (target,) = table["targets"]
    assert target["instant"] is True
    assert target["format"] == "table"
    for obj in service().objectives:
        assert f'"{obj.runbook_url}"' in target["expr"]
    (override,) = table["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byName", "options": "runbook_url"}
    assert override["properties"][0]["id"] == "links"
    assert override["properties"][0]["value"][0]["url"] == "${__value.raw}"


def test_every_query_reads_the_datasource_variable_and_parses_as_prometheus_2_promql() -> None:
    for path in sorted((ROOT / "slos").glob("*.yaml")):
        doc = dashboard(service(path))
        for panel in doc["panels"]:
            for target in panel.get("targets") or []:
                assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for title, expr, _ in queries(doc):
            assert dialect_problem(parse(expr)) is None, (title, expr)


def test_every_presets_extra_queries_parse_with_and_without_a_selector() -> None:
    assert set(PRESET_EXTRAS) <= set(CATALOG)
    for extras in PRESET_EXTRAS.values():
        found = [
            extras.cost_per_day,
            extras.cache_hit_ratio,
            *extras.errors_by_class,
            *extras.tokens,
        ]
        for one in (q for q in found if q is not None):
            expr = with_selector(service(), one).expr
            assert "{sel" not in expr
            assert 'service="chat-assistant"' in expr
            assert dialect_problem(parse(expr)) is None, expr


def test_a_dashboard_is_deterministic_and_known_as_generated_by_how_it_starts() -> None:
    text = render_dashboard(service())
    assert text == render_dashboard(service())
    assert text.startswith(GENERATED_JSON_MARK)
    doc = json.loads(text)
    assert doc["uid"] == uid(service()) == "sloengine-chat-assistant"
    assert doc["title"] == "SLOs: chat-assistant"


def test_a_long_service_name_gets_a_uid_grafana_accepts() -> None:
    long = dataclasses.replace(service(), name="a" * 100)
    assert len(uid(long)) <= 40
    assert uid(long) != uid(dataclasses.replace(service(), name="a" * 99 + "b"))


def test_dashboard_check_names_a_changed_or_orphaned_dashboard(tmp_path: Path) -> None:
    out = tmp_path / "dash"
    args = ["dashboard", str(ROOT / "slos"), "--out", str(out)]
    code, _, _ = run(*args)
    assert code == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [
        "api-gateway.dashboard.json",
        "chat-assistant.dashboard.json",
    ]
    assert run(*args, "--check")[:2] == (0, "up to date: 2 files\n")
    orphan = out / "gone.dashboard.json"
    orphan.write_text(written[0].read_text())
    mine = out / "mine.json"  # a dashboard someone else wrote is never touched
    mine.write_text('{"title": "hand made"}\n')
    written[1].write_text("{}\n")
    code, _, err = run(*args, "--check")
    assert code == 1
    assert f"stale: {written[1]}: out of date" in err
    assert f"stale: {orphan}: generated from an SLO that no longer exists" in err
    assert str(mine) not in err
    assert run(*args)[0] == 0
    assert sorted(out.iterdir()) == sorted([*written, mine])


def test_an_invalid_slo_file_writes_no_dashboard(tmp_path: Path) -> None:
    bad = tmp_path / "slo.yaml"
    bad.write_text("apiVersion: sloengine/v1\nservice: x\nslos: []\n")
    code, _, err = run("dashboard", str(bad), "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"{bad}:" in err
    assert not (tmp_path / "out").exists()


# The demo's data: the chatbot with a provider outage under way (six hours of it, enough
# for every window to have samples), the rules' base series and budgets backfilled as the
# demo does, then the generated rules evaluated by the server itself, so every recorded
# series and the outage's page exist.
HOURS = 6
OUTAGE_MINUTES = 40


@pytest.fixture(scope="module")
def demo_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    chat = service()
    work = tmp_path_factory.mktemp("dashboard-demo")
    tsdb = work / "tsdb"
    end = int(time.time()) // 60 * 60
    start = end - HOURS * 3600
    scenario = example_scenario(end - 86400, days=1, service=chat.name)
    outage = Incident(
        end - OUTAGE_MINUTES * 60, end + 86400, "error_rate", 0.5, Scope(provider="openai")
    )
    backfill(
        dataclasses.replace(scenario, incidents=(*scenario.incidents, outage)), tsdb, start, end, 60
    )
    interval = chat.objectives[0].interval
    for name, text, since in (
        ("base", base_rules(chat), start),
        ("budget", budget_rules(chat), end - 600),
    ):
        rule_file = work / f"{name}.rules.yml"
        rule_file.write_text(text)
        add_rule_history(tsdb, rule_file, since, end, interval, work)
    # The generated rules, evaluated every 10s rather than every minute: Prometheus first
    # evaluates a group up to two intervals after it starts, and the dashboard needs only
    # that the series and alerts exist (their values are the rule tests' business).
    groups = [{**g, "interval": "10s"} for g in yaml.safe_load(render(chat))["groups"]]
    rules = work / f"{chat.name}.rules.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    with prometheus_server(tsdb, rule_files=[rules]) as url:
        # The outage's page: the last thing to appear (it needs the live 5m window).
        page = 'ALERTS{alertstate="firing",slo="availability",severity="page"}'
        every_slo = [
            f'count(count by (slo) ({name}{{service="{chat.name}"}}))'
            for name in (cv.BURN_RATE, cv.CURRENT_BURN, cv.BUDGET_REMAINING)
        ]
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            counts = [query(url, expr) for expr in every_slo]
            complete = all(c and float(c[0]["value"][1]) == len(chat.objectives) for c in counts)
            if complete and query(url, page):
                break
            time.sleep(2)
        yield url


@pytest.mark.slow
def test_every_panel_query_returns_data_from_the_demos_prometheus(demo_prometheus: str) -> None:
    doc = dashboard(service())
    now = time.time()
    empty = []
    for title, expr, instant in queries(doc):
        if instant:
            got = query(demo_prometheus, expr)
        else:
            # What Grafana asks for the last quarter hour, a point a minute.
            got = query_range(demo_prometheus, expr, now - 900, now, 60)
        if not got:
            empty.append((title, expr))
    assert not empty
    assert len(queries(doc)) >= 15


@pytest.mark.slow
def test_the_state_panel_shows_the_outage_paging_and_the_alerts_carry_runbooks(
    demo_prometheus: str,
) -> None:
    doc = dashboard(service())
    by_title = {title: expr for title, expr, _ in queries(doc)}
    state = {
        r["metric"]["slo"]: float(r["value"][1]) for r in query(demo_prometheus, by_title["State"])
    }
    assert set(state) == {obj.name for obj in service().objectives}
    assert state["availability"] == 2  # half of one provider's calls failing: a page
    alerts = query(demo_prometheus, by_title["Firing alerts"])
    runbooks = {obj.name: obj.runbook_url for obj in service().objectives}
    assert alerts
    for alert in alerts:
        assert alert["metric"]["runbook_url"] == runbooks[alert["metric"]["slo"]]
