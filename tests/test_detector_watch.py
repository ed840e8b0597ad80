"""Detectors in `status` and `run` against a real Prometheus: two days of a simulated
chatbot with a retry storm on one feature for the last 40 minutes.

Raw mode computes each group's recent and baseline cost per call from the raw series;
recorded mode reads the rules' series, backfilled with promtool as Prometheus would
have recorded them; both give the same verdict. `run --once` prints one page for the
regressed feature, with its numbers, first look and runbook, and a restart does not
page again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sloengine import conventions as cv
from sloengine.cli import cli
from sloengine.conventions import Mode
from sloengine.detectors.rules import rule_groups
from sloengine.evaluate import detector_statuses
from sloengine.loading import load_specs
from sloengine.prometheus import Prometheus
from sloengine.sim.backfill import add_rule_history, backfill
from sloengine.sim.launch import prometheus_server
from sloengine.sim.traffic import Incident, Scenario, Scope, Traffic

SPEC = """\
apiVersion: sloengine/v1
service: shop
metrics: {preset: llm, selector: 'service="shop"'}
runbooks: {base_url: "https://runbooks.example/"}
slos:
  - {name: availability, objective: 99, sli: {success_rate: {}}}
detectors:
  - name: cost-per-call-change
    kind: cost_per_call
    group_by: [feature]
    window: 1h
    baseline: 1d
    max_increase: 20%
    min_events: 200
    runbook: cost-spike.md
  - {name: token-budget, kind: token_budget_breaches, window: 1h, max_share: 1%}
"""
NOW = int(time.time()) // 60 * 60
START = NOW - 2 * 86400
STORM = 40 * 60


def scenario() -> Scenario:
    return Scenario(
        origin=START,
        traffic=Traffic(base_rps=10.0),
        providers=1,
        models_per_provider=2,
        features=2,
        labels={"service": "shop"},
        # Every chat call retried 0.6 times more: its cost per call +60%.
        incidents=(Incident(NOW - STORM, NOW + 86400, "retry_storm", 0.6, Scope(feature="chat")),),
    )


def _layer(groups: list[dict[str, Any]], records: set[str]) -> str:
    kept = [{**g, "rules": [r for r in g["rules"] if r.get("record") in records]} for g in groups]
    return yaml.safe_dump({"groups": [g for g in kept if g["rules"]]}, sort_keys=False)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("detectors")
    spec = work / "shop.yaml"
    spec.write_text(SPEC)
    (service,) = load_specs([str(spec)])
    tsdb = work / "tsdb"
    backfill(scenario(), tsdb, START, NOW, 60)
    groups = rule_groups(service.detectors)
    # Each layer reads the one before it, as Prometheus's groups do when they run: the
    # 5m rates over the two days, the window sums, then the ratios at the end.
    layers = [
        ({cv.DETECTOR_NUMERATOR_BASE, cv.DETECTOR_DENOMINATOR_BASE}, START, NOW),
        (
            {
                cv.DETECTOR_NUMERATOR_RECENT,
                cv.DETECTOR_DENOMINATOR_RECENT,
                cv.DETECTOR_NUMERATOR_BASELINE,
                cv.DETECTOR_DENOMINATOR_BASELINE,
            },
            NOW - 2 * 3600,
            NOW,
        ),
        ({cv.DETECTOR_RECENT, cv.DETECTOR_BASELINE}, NOW - 600, NOW),
    ]
    for i, (records, start, end) in enumerate(layers):
        rule_file = work / f"layer{i}.yml"
        rule_file.write_text(_layer(groups, records))
        add_rule_history(tsdb, rule_file, start, end, cv.DETECTOR_INTERVAL_SECONDS, work)
    with prometheus_server(tsdb) as url:
        yield url, spec


def _by_group(rows: list[dict[str, Any]], detector: str) -> dict[str, dict[str, Any]]:
    return {r["group"].get("feature", ""): r for r in rows if r.get("detector") == detector}


def test_status_json_lists_each_detector_group_and_the_regressed_one_fires(
    served: tuple[str, Path],
) -> None:
    url, spec = served
    result = CliRunner().invoke(
        cli, ["status", "--prometheus", url, "--format", "json", "--mode", "raw", str(spec)]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["slo"] for r in rows if "slo" in r] == ["availability"]
    cost = _by_group(rows, "cost-per-call-change")
    assert sorted(cost) == ["chat", "summarize"]
    chat, other = cost["chat"], cost["summarize"]
    # 40 of the 60 minutes at +60%: the hour's cost per call is about +40%.
    assert chat["change"] == pytest.approx(0.4, abs=0.06)
    assert (chat["active"], chat["state"], chat["health"]) == (True, "ticket", "ok")
    assert abs(other["change"]) < 0.05
    assert (other["active"], other["state"]) == (False, "ok")
    assert chat["recent_events"] >= 200 and chat["baseline_events"] > 10000
    (budget,) = _by_group(rows, "token-budget").values()
    assert budget["recent"] == pytest.approx(0.002, rel=0.3)  # the simulator's 0.2%
    assert budget["active"] is False and budget["baseline"] is None


def _window_end(prom: Prometheus, detector: str, at: float) -> float:
    """When the recent window that a detector's recorded ratio at ``at`` reads ends.

    promtool backfills each layer of rules on a grid of its own, so the ratio at ``at``
    divides sums recorded up to 5m before it, which add 5m rates recorded up to 5m before
    those (live, one group evaluates all three at one instant). Raw mode read at that end
    counts the same calls; read at ``at``, it would count up to ten minutes more, which
    for a share of a dozen calls an hour is a third of the value.
    """
    t = at
    for name in (cv.DETECTOR_RECENT, cv.DETECTOR_DENOMINATOR_RECENT, cv.DETECTOR_DENOMINATOR_BASE):
        t = max(s.value for s in prom.query(f'timestamp({name}{{detector="{detector}"}})', t))
    return t


def test_recorded_and_raw_readings_give_the_same_verdicts(served: tuple[str, Path]) -> None:
    url, spec = served
    (service,) = load_specs([str(spec)])
    prom = Prometheus(url)
    at = float(NOW)
    recorded = detector_statuses(prom, list(service.detectors), at, Mode.RECORDED)
    raw = [
        status
        for det in service.detectors
        for status in detector_statuses(prom, [det], _window_end(prom, det.name, at), Mode.RAW)
    ]
    assert {s.mode for s in recorded} == {Mode.RECORDED}, [s.error for s in recorded]
    by_key = {(s.detector, tuple(s.group.items())): s for s in raw}
    assert len(recorded) == len(raw) == 3
    for r in recorded:
        twin = by_key[(r.detector, tuple(r.group.items()))]
        assert (r.active, r.health) == (twin.active, twin.health), r
        # Read over the same minutes, the two agree to well under a percent; a share of
        # some 70 calls an hour over budget moves by a few of them either way, as twelve
        # 5m rates and one 1h increase each extrapolate the counter's steps differently.
        share = twin.baseline is None
        assert r.recent == pytest.approx(twin.recent, rel=0.01, abs=5e-4 if share else 0), r
        if twin.baseline is not None:
            assert r.baseline == pytest.approx(twin.baseline, rel=0.03)
            assert r.recent_events == pytest.approx(twin.recent_events, rel=0.03)


def test_status_table_names_the_detector_its_change_and_limit(served: tuple[str, Path]) -> None:
    url, spec = served
    result = CliRunner().invoke(cli, ["status", "--prometheus", url, "--mode", "raw", str(spec)])
    assert result.exit_code == 0, result.output
    text = result.stdout
    block = text.split("shop/cost-per-call-change {feature=chat}  [TICKET]  health: ok", 1)[1]
    assert "cost per call ($) $0.0" in block.splitlines()[1]
    assert "over the 1d before it: +" in block and "(limit +20%)" in block


def test_run_pages_the_regressed_feature_once_with_its_first_look_and_runbook(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, spec = served
    for name in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL"):
        monkeypatch.delenv(name, raising=False)
    state = tmp_path / "state.db"
    args = ["run", "--prometheus", url, str(spec), "--once", "--state", str(state), "--listen", ""]
    args += ["--mode", "raw"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    page = first.stdout
    assert page.count("[TICKET] shop/cost-per-call-change") == 1
    assert (
        "[TICKET] shop/cost-per-call-change for feature=chat: cost per call ($) regressed" in page
    )
    assert "over the 1d before it: +" in page
    assert "calls recent" in page and "min_events 200" in page
    # The first look: which models carry the extra cost (both do: the storm hit the feature).
    assert "first look (extra cost over the last 1h):" in page
    assert "    model: " in page and "    provider: openai 100%" in page
    assert "runbook: https://runbooks.example/cost-spike.md" in page
    # A restart on the same state database: the regression is still on, nobody is paged again.
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    assert "cost-per-call-change" not in again.stdout


def test_backtest_replays_the_detectors_and_finds_the_storm_still_firing(
    served: tuple[str, Path],
) -> None:
    url, spec = served
    args = ["backtest", "--prometheus", url, str(spec), "--since", "3h", "--step", "1m"]
    at = ["--until", datetime.fromtimestamp(NOW, UTC).isoformat().replace("+00:00", "Z")]
    result = CliRunner().invoke(cli, [*args, *at, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    (cost,) = [r for r in rows if r.get("detector") == "cost-per-call-change"]
    assert cost["groups"] == 2
    (episode,) = cost["episodes"]  # the storm on chat, and nothing on summarize
    assert episode["group"] == {"feature": "chat"} and episode["resolved_at"] is None
    fired = datetime.fromisoformat(episode["fired_at"]).timestamp()
    # The storm began 40 minutes before the end; +60% fires a third of the way into 1h.
    assert NOW - STORM + 15 * 60 <= fired <= NOW - STORM + 30 * 60
    assert episode["peak_change"] > 0.2
    (budget,) = [r for r in rows if r.get("detector") == "token-budget"]
    assert budget["episodes"] == []
    text = CliRunner().invoke(cli, [*args, *at]).stdout
    assert "shop/cost-per-call-change (detector)" in text
    assert "episodes 1 over 2 group(s)" in text and "still firing" in text
