"""The web page in a real browser: headless Chromium (Debian's) loads the overview and a
detail page that `sloengine serve` renders from a real Prometheus holding three days of
a simulated chatbot mid-outage, and the numbers it shows are `status --format json`'s.

Screenshots are saved under tests/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import ROOT
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver

from sloengine import evaluate
from sloengine.cli import cli
from sloengine.model import group_text
from sloengine.sim.backfill import backfill
from sloengine.sim.launch import prometheus_server
from sloengine.sim.traffic import Incident, Scope, example_scenario

DAYS = 3
OUTAGE_MINUTES = 40
CHAT = str(ROOT / "slos" / "chat-assistant.yaml")
ARTIFACTS = ROOT / "tests" / "artifacts"
SLOENGINE = str(Path(sys.executable).with_name("sloengine"))
HOSTILE = """\
apiVersion: sloengine/v1
service: hostile
description: "<script>window.pwned = 1</script>"
metrics:
  preset: llm
  selector: 'service="hostile"'
slos:
  - name: availability
    objective: 99.9
    description: "<img src=x onerror=\\"window.pwned = 2\\"> & </pre><b>bold</b>"
    runbook: "javascript:window.pwned = 3"
    alerting:
      annotations:
        dashboard: "https://grafana.example/d/x?a=1&b=<2>"
    sli:
      success_rate: {}
"""


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: run `apt-get install -y {package}` (see .ci/setup)")
    return path


@dataclasses.dataclass(frozen=True)
class Served:
    url: str  # the page's base URL
    prometheus: str
    at: int  # the instant every check reads
    state: Path
    hostile: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A real Prometheus with the demo's data, a state database with one incident, and
    `sloengine serve` on a free port: one of each for the whole module."""
    now = int(time.time()) // 60 * 60
    start = now - DAYS * 86400
    scenario = example_scenario(start, days=DAYS)
    outage = Incident(
        now - OUTAGE_MINUTES * 60, now + 86400, "error_rate", 0.5, Scope(provider="openai")
    )
    scenario = dataclasses.replace(scenario, incidents=(*scenario.incidents, outage))
    work = tmp_path_factory.mktemp("web")
    backfill(scenario, work / "tsdb", start, now, 60)
    hostile = work / "hostile.yaml"
    hostile.write_text(HOSTILE, encoding="utf-8")
    state = work / "state.db"
    with prometheus_server(work / "tsdb") as prom:
        # One real scheduler cycle opens the outage's incident and prints its page.
        ran = CliRunner().invoke(
            cli,
            ["run", "--once", "--mode", "raw", "--state", str(state), "--prometheus", prom, CHAT],
        )
        assert ran.exit_code == 0, ran.output
        args = [SLOENGINE, "serve", "--prometheus", prom, "--mode", "raw", "--listen"]
        args += ["127.0.0.1:0", "--state", str(state), CHAT, str(hostile)]
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            assert found, line
            yield Served(found[1], prom, now, state, hostile)
        finally:
            process.terminate()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = _tool("chromium", "chromium")
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(
        service=DriverService(_tool("chromedriver", "chromium-driver")), options=options
    )
    try:
        yield driver
    finally:
        driver.quit()


def _status_json(
    url: str, at: int, monkeypatch: pytest.MonkeyPatch, *paths: str
) -> list[dict[str, Any]]:
    """`sloengine status --format json`'s SLO rows, run as the CLI runs it, at ``at``."""
    with monkeypatch.context() as m:
        m.setattr(evaluate, "time", SimpleNamespace(time=lambda: float(at)))
        result = CliRunner().invoke(
            cli, ["status", "--prometheus", url, "--format", "json", "--mode", "raw", *paths]
        )
    assert result.exit_code in (0, 3), result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return [r for r in rows if "slo" in r]  # the SLOs' rows; detector rows follow them


def _shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))


def _value(element: Any, css: str) -> str:
    return str(element.find_element(By.CSS_SELECTOR, css).get_attribute("data-value"))


def _same_numbers(tr: Any, row: dict[str, Any], exact: bool = False) -> None:
    """One table row of the page shows exactly this status --format json row."""
    assert tr.get_attribute("data-state") == row["state"]
    badge = tr.find_element(By.CSS_SELECTOR, ".state")
    assert badge.text == {"page": "PAGE", "ticket": "TICKET", "ok": "ok"}[row["state"]]
    sli = tr.find_element(By.CSS_SELECTOR, ".sli")
    if row["sli"] is None:
        assert sli.text == "no data"
    else:
        assert float(_value(tr, ".sli")) == row["sli"]
        if row["kind"] == "spend":
            assert sli.text == f"${row['sli']:,.2f} spent"
        else:
            assert sli.text == f"{row['sli'] * 100:.3f}%"
    if row["error_budget_remaining"] is not None:
        assert float(_value(tr, ".budget")) == row["error_budget_remaining"]
        assert tr.find_element(By.CSS_SELECTOR, ".budget").text.startswith(
            f"{row['error_budget_remaining'] * 100:.1f}% left"
        )
    pairs = tr.find_elements(By.CSS_SELECTOR, ".pair")
    assert len(pairs) == len(row["pairs"])
    for div, pair in zip(pairs, row["pairs"], strict=True):
        assert div.text == (
            f"{pair['severity']} {pair['long_window']} / {pair['short_window']}: "
            f"{pair['long_burn']:.2f}x / {pair['short_burn']:.2f}x of {pair['threshold']:.2f}x"
        )
        assert ("active" in str(div.get_attribute("class")).split()) is pair["active"]
        if exact:  # the detail page keeps every burn's exact value too
            assert float(_value(div, ".long-burn")) == pair["long_burn"]
            assert float(_value(div, ".short-burn")) == pair["short_burn"]
    assert tr.find_element(By.CSS_SELECTOR, ".health").text == row["health"]
    assert tr.find_element(By.CSS_SELECTOR, ".mode").text == (row["mode"] or "none")


def test_the_overview_shows_every_slo_firing_first_with_status_jsons_numbers(
    served: Served, browser: WebDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One row per SLO, and per group of a grouped SLO (the chatbot's feature-spend).
    expected = {
        (r["service"], r["slo"], group_text(r["group"])): r
        for r in _status_json(served.prometheus, served.at, monkeypatch, CHAT, str(served.hostile))
    }
    assert any(group for _, _, group in expected)
    browser.get(f"{served.url}?at={served.at}")
    _shot(browser, "overview.png")
    rows = browser.find_elements(By.CSS_SELECTOR, "#slos tr.slo")
    keys = [
        (
            r.get_attribute("data-service") or "",
            r.get_attribute("data-slo") or "",
            r.get_attribute("data-group") or "",
        )
        for r in rows
    ]
    assert sorted(keys) == sorted(expected)
    # The outage pages; the page puts it first.
    assert keys[0] == ("chat-assistant", "availability", "")
    assert expected[keys[0]]["state"] == "page"
    states = [expected[k]["state"] for k in keys]
    assert states == sorted(states, key=["page", "ticket", "ok"].index)
    for tr, key in zip(rows, keys, strict=True):
        _same_numbers(tr, expected[key])
        link = tr.find_element(By.CSS_SELECTOR, "a.slo-link")
        assert link.get_attribute("href") == f"{served.url}slo/{key[0]}/{key[1]}"
    when = browser.find_element(By.ID, "evaluated-at").text
    assert when == time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(served.at))
    spend = next(tr for tr, k in zip(rows, keys, strict=True) if expected[k]["kind"] == "spend")
    assert spend.find_element(By.CSS_SELECTOR, ".objective").text.startswith("$")


def test_the_overview_filters_by_service_state_and_text(served: Served, browser: WebDriver) -> None:
    def shown(query: str) -> list[tuple[str | None, str | None]]:
        browser.get(f"{served.url}?at={served.at}&{query}")
        return [
            (r.get_attribute("data-service"), r.get_attribute("data-slo"))
            for r in browser.find_elements(By.CSS_SELECTOR, "#slos tr.slo")
        ]

    assert shown("state=page") == [("chat-assistant", "availability")]
    assert shown("service=hostile") == [("hostile", "availability")]
    assert shown("q=first+token") == [("chat-assistant", "ttft")]
    assert shown("q=nothing-matches-this") == []


def test_the_detail_page_shows_charts_thresholds_incident_links_definition_and_explain(
    served: Served, browser: WebDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    (expected,) = [
        r
        for r in _status_json(served.prometheus, served.at, monkeypatch, CHAT)
        if r["slo"] == "availability"
    ]
    browser.get(f"{served.url}slo/chat-assistant/availability?at={served.at}")
    _shot(browser, "detail.png")
    assert browser.find_element(By.ID, "slo-name").text == "chat-assistant/availability"
    (tr,) = browser.find_elements(By.CSS_SELECTOR, "#rows tr.slo")
    _same_numbers(tr, expected, exact=True)
    charts = browser.find_elements(By.CSS_SELECTOR, "svg.chart")
    assert [c.get_attribute("aria-label") for c in charts] == [
        "SLI over 30d",
        "Error budget remaining over 30d",
        "Burn rate per window, last day",
    ]
    for chart in charts:
        assert chart.find_elements(By.CSS_SELECTOR, "polyline"), chart.get_attribute("aria-label")
    # Every alert pair's threshold is drawn on the burn chart.
    thresholds = charts[2].find_elements(By.CSS_SELECTOR, "line.level")
    assert len(thresholds) == len(expected["pairs"])
    # Each burn line ends at the burn status reads for its window at the same instant.
    legend = browser.find_elements(By.CSS_SELECTOR, "figure .legend")[2].text
    windows = {w for p in expected["pairs"] for w in (p["long_window"], p["short_window"])}
    for window in windows:
        assert f"{window}: {expected['burn_rates'][window]:.2f}x" in legend, window
    runbook = browser.find_element(By.CSS_SELECTOR, "#links a.runbook")
    assert runbook.get_attribute("href") == (
        "https://github.com/acme/chat/blob/main/runbooks/provider-outage.md"
    )
    # The incident `run --once` opened, with its page delivered (to the console).
    (incident,) = browser.find_elements(By.CSS_SELECTOR, "#incidents tr.incident")
    assert str(incident.get_attribute("data-incident")).startswith("chat-assistant/availability/")
    note = incident.find_element(By.CSS_SELECTOR, ".note")
    assert note.get_attribute("data-kind") == "firing"
    assert note.get_attribute("data-delivered") == "true"
    assert "firing" in incident.text  # not resolved
    definition = browser.find_element(By.CSS_SELECTOR, "#definition pre").text
    assert definition.startswith("  - name: availability\n")
    assert "runbook: provider-outage.md" in definition
    explained = browser.find_element(By.CSS_SELECTOR, "#explain pre").text
    assert explained.startswith(
        "chat-assistant/availability: success_rate, objective 99.5% over 30d"
    )


def test_hostile_text_in_an_slo_file_is_shown_as_text_and_runs_nothing(
    served: Served, browser: WebDriver
) -> None:
    for path in ("", "slo/hostile/availability"):
        browser.get(f"{served.url}{path}?at={served.at}")
        assert browser.find_elements(By.TAG_NAME, "script") == []
        assert browser.find_elements(By.CSS_SELECTOR, "img, b") == []
        assert browser.execute_script("return window.pwned === undefined")
    assert "<img src=x onerror=" in browser.find_element(By.ID, "description").text
    # A javascript: runbook is never a link; an http(s) dashboard is, exactly as written.
    assert browser.find_elements(By.CSS_SELECTOR, "#links a.runbook") == []
    assert (
        "javascript:window.pwned = 3" in browser.find_element(By.CSS_SELECTOR, ".unsafe-link").text
    )
    dashboard = browser.find_element(By.CSS_SELECTOR, "#links a.dashboard")
    assert dashboard.get_attribute("href") == "https://grafana.example/d/x?a=1&b=%3C2%3E"
