"""`sloengine status` against a real Prometheus holding simulated data with known answers."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from sloengine.cli import cli
from sloengine.conventions import Mode
from sloengine.durations import parse_duration
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.prometheus import Prometheus
from sloengine.rules import render
from sloengine.sim.backfill import backfill
from sloengine.sim.client import query
from sloengine.sim.exporter import serve_metrics
from sloengine.sim.launch import prometheus_server
from sloengine.sim.traffic import Baseline, Scenario, Scope, Traffic, example_scenario, truth
from sloengine.status import Rates, Status
from sloengine.windows import raw_windows

DAYS = 3
# The data ends when the module's Prometheus starts (set there), not at import: tests that
# read "now" must find it within Prometheus's 5m lookback however long collection took.
NOW = int(time.time()) // 60 * 60
START = NOW - DAYS * 86400
CHAT = str(ROOT / "slos" / "chat-assistant.yaml")
LIVE = ROOT / "tests" / "live-slos"


def busy() -> Scenario:
    """Three days of the example chatbot, its incidents included, ending now."""
    return example_scenario(START, days=DAYS)


def quiet() -> Scenario:
    """Ten requests an hour, one in a thousand failing."""
    return Scenario(
        origin=START,
        traffic=Traffic(base_rps=10 / 3600),
        providers=1,
        models_per_provider=1,
        features=1,
        labels={"service": "quiet"},
    )


def wide() -> Scenario:
    """An hour of a service with 120 features: more groups than a grouped SLO should have."""
    return Scenario(
        origin=NOW - 3600,
        traffic=Traffic(base_rps=2),
        providers=1,
        models_per_provider=1,
        features=120,
        labels={"service": "wide"},
    )


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    global NOW, START
    NOW = int(time.time()) // 60 * 60
    START = NOW - DAYS * 86400
    tsdb = tmp_path_factory.mktemp("tsdb")
    backfill(busy(), tsdb, START, NOW, 60)
    backfill(quiet(), tsdb, START, NOW, 60)
    backfill(wide(), tsdb, NOW - 3600, NOW, 60)
    with prometheus_server(tsdb) as url:
        yield url


def statuses(url: str, path: str, mode: Mode = Mode.RAW) -> dict[str, Status]:
    objectives = [o for s in load_specs([path]) for o in s.objectives]
    return {s.slo: s for s in Evaluator(Prometheus(url), mode=mode).evaluate(objectives, NOW)}


def test_raw_status_matches_the_simulators_ground_truth_within_one_percent(
    prometheus: str,
) -> None:
    got = statuses(prometheus, CHAT)
    sc = busy()
    # The data is three days old, so every window reaches back to its start.
    expected = {
        "availability": truth(sc, "success_rate", START, NOW, include=("guardrail_rejections",)),
        "ttft": truth(sc, "ttft", START, NOW, threshold=1.0),
        "latency": truth(sc, "latency", START, NOW, threshold=5.0),
        "tpot": truth(sc, "tpot", START, NOW, threshold=0.05),
        "cost-per-call": truth(sc, "cost_per_call", START, NOW, threshold_usd=0.10),
        "quality": truth(sc, "quality", START, NOW, min_score=0.8),
    }
    for slo, t in expected.items():
        assert t.total is not None and t.good is not None
        assert got[slo].sli == pytest.approx(t.good / t.total, rel=0.01), slo
        bad_ratio = t.bad / t.total
        objective = got[slo].objective
        assert objective is not None
        burn = bad_ratio / (1 - objective / 100)
        assert got[slo].burn_rates[got[slo].window] == pytest.approx(burn, rel=0.01), slo
        assert got[slo].error_budget_remaining == pytest.approx(1 - burn, rel=0.01, abs=0.01)
    spend = truth(sc, "spend", START, NOW)
    assert got["spend"].sli == pytest.approx(spend.bad, rel=0.01)
    assert got["spend"].budget_remaining["dollars"] == pytest.approx(60000 - spend.bad, rel=0.01)


def test_a_grouped_slo_has_one_row_per_group_each_matching_the_ground_truth(
    prometheus: str,
) -> None:
    objectives = [o for s in load_specs([CHAT]) for o in s.objectives if o.name == "feature-spend"]
    sc = busy()
    for mode in (Mode.RAW, Mode.AUTO):  # AUTO falls back to raw: the rules are not loaded
        rows = Evaluator(Prometheus(prometheus), mode=mode).evaluate(objectives, NOW)
        assert [r.group for r in rows] == [{"feature": "chat"}, {"feature": "summarize"}]
        for row in rows:
            feature = row.group["feature"]
            spent = truth(sc, "spend", START, NOW, where=Scope(feature=feature)).bad
            budget = 40000 if feature == "chat" else 15000
            assert row.sli == pytest.approx(spent, rel=0.01), feature
            assert row.budget_remaining["dollars"] == pytest.approx(budget - spent, rel=0.01)
            assert row.burn_rates["30d"] == pytest.approx(spent / budget, rel=0.01)


def test_zero_traffic_is_no_data_never_nan_and_never_an_alert(prometheus: str) -> None:
    nothing = statuses(prometheus, str(LIVE / "edges.yaml"))["nothing"]
    assert nothing.health == "no_data"
    assert nothing.state == "ok"
    assert all(b == 0 for b in nothing.burn_rates.values())
    assert nothing.error_budget_remaining == 1
    assert nothing.exhaustion_at is None


def test_ten_requests_an_hour_is_low_traffic(prometheus: str) -> None:
    quiet_status = statuses(prometheus, str(LIVE / "edges.yaml"))["quiet"]
    assert quiet_status.health == "low_traffic"
    assert quiet_status.state == "ok"


def test_status_json_has_the_documented_fields(prometheus: str) -> None:
    result = CliRunner().invoke(
        cli, ["status", "--prometheus", prometheus, "--format", "json", "--mode", "raw", CHAT]
    )
    assert result.exit_code == 0, result.output
    everything = json.loads(result.stdout)
    # The SLOs' rows, then one per detector group (with a `detector` key instead of `slo`).
    rows = [r for r in everything if "slo" in r]
    detectors = everything[len(rows) :]
    assert detectors and all("detector" in r and "slo" not in r for r in detectors)
    assert [r["slo"] for r in rows][:2] == ["availability", "ttft"]
    assert [r["group"] for r in rows if r["slo"] == "feature-spend"] == [
        {"feature": "chat"},
        {"feature": "summarize"},
    ]
    for row in rows:
        assert {
            "service",
            "slo",
            "objective",
            "window",
            "sli",
            "error_budget_remaining",
            "burn_rates",
            "state",
            "exhaustion_at",
            "health",
        } <= row.keys()
        assert row["window"] in row["burn_rates"]


def test_status_table_names_each_slo_its_state_and_budget(prometheus: str) -> None:
    result = CliRunner().invoke(cli, ["status", "--prometheus", prometheus, "--mode", "raw", CHAT])
    assert result.exit_code == 0
    assert "chat-assistant/availability  [" in result.stdout
    assert "budget left" in result.stdout
    assert "burn: 5m " in result.stdout
    assert "chat-assistant/feature-spend {feature=chat}  [" in result.stdout


def test_status_exits_3_with_a_clear_error_when_prometheus_is_unreachable() -> None:
    result = CliRunner().invoke(cli, ["status", "--prometheus", "http://127.0.0.1:9", CHAT])
    assert result.exit_code == 3
    assert "error: http://127.0.0.1:9 is unreachable" in result.stderr
    assert "Traceback" not in result.output


def test_recorded_and_raw_modes_read_the_same_numbers(tmp_path: Path) -> None:
    path = str(LIVE / "llm-short.yaml")
    (service,) = load_specs([path])
    rules = tmp_path / "rules.yml"
    rules.write_text("groups: []\n")  # loaded once the scraped data has caught up
    end = int(time.time()) // 60 * 60
    sc = Scenario(
        origin=end - 2 * 86400,
        # Busy enough that whole-event counting is noise well under 1% even over 5m.
        traffic=Traffic(base_rps=300),
        labels={"service": "chat-assistant"},
        baseline=Baseline(error_rate=0.02),
    )
    tsdb = tmp_path / "tsdb"
    # The last 3h at the scrape interval: rate() extrapolates to a window's edge only by
    # the average sample spacing, so a window of 5s samples that starts among 1m ones
    # reads up to 55s short (17% of 5m). Every window but the 1d one fits inside.
    backfill(sc, tsdb, end - 2 * 86400, end - 3 * 3600, 60)
    backfill(sc, tsdb, end - 3 * 3600, end, 5)
    # History is backfilled; from then on Prometheus scrapes the same simulated service, so
    # both modes read windows with no gap at their end (spend has no denominator to cancel
    # an edge effect).
    service_server = serve_metrics(sc)
    target = f"127.0.0.1:{service_server.server_address[1]}"
    with prometheus_server(tsdb, rule_files=[rules], scrape=[target]) as url:
        prom = Prometheus(url)
        objectives = list(service.objectives)
        deadline = time.monotonic() + 60
        while not query(url, 'up{job="simulated"} == 1') and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)
        rules.write_text(render(service))
        urllib.request.urlopen(urllib.request.Request(f"{url}/-/reload", method="POST")).close()
        deadline = time.monotonic() + 60
        recorded: dict[tuple[str, str], list[Rates]] = {}
        while time.monotonic() < deadline:
            at = time.time()
            recorded = Evaluator(prom, mode=Mode.RECORDED).recorded_rates(objectives, at)
            if len(recorded) == len(objectives):
                break
            time.sleep(1)
        assert len(recorded) == len(objectives), "the rules never produced every window"
        by_mode = {
            mode: {
                (s.slo, *s.group.values()): s
                for s in Evaluator(prom, mode=mode).evaluate(objectives, at)
            }
            for mode in (Mode.RECORDED, Mode.RAW)
        }
    grouped = [(slo, f) for slo in ("by-feature", "feature-spend") for f in ("chat", "summarize")]
    assert set(by_mode[Mode.RECORDED]) == set(by_mode[Mode.RAW])
    assert set(grouped) <= set(by_mode[Mode.RECORDED])
    spend = {o.name: o for o in objectives if o.is_spend}
    for key in [("availability",), ("ttft",), ("spend",), *grouped]:
        rec, raw = by_mode[Mode.RECORDED][key], by_mode[Mode.RAW][key]
        slo = key
        assert rec.mode == Mode.RECORDED and raw.mode == Mode.RAW
        for window, value in raw.burn_rates.items():
            if key[0] in spend and parse_duration(window) not in raw_windows(spend[key[0]]):
                # Rules loaded a minute ago: their tiles count the time before as no
                # spending (README, "Rolling out"), where raw mode reads the raw series.
                # A ratio is the same either way: both sides miss the same minutes.
                continue
            # 1% of the burn, or a thousandth of the budget rate for near-zero burns.
            assert rec.burn_rates[window] == pytest.approx(value, rel=0.01, abs=1e-3), (slo, window)
        if key[0] not in spend:  # a spend SLI is the dollars of its (tiled) window
            assert rec.sli == pytest.approx(raw.sli, rel=0.001)


def _validate(url: str, tmp_path: Path, body: str) -> tuple[int, str]:
    spec = tmp_path / "slo.yaml"
    spec.write_text("apiVersion: sloengine/v1\nservice: chat-assistant\nslos:\n" + body)
    result = CliRunner().invoke(cli, ["validate", "--prometheus", url, str(spec)])
    assert "Traceback" not in result.output
    return result.exit_code, result.stderr.replace(str(spec), "slo.yaml")


def test_validate_against_prometheus_accepts_the_example_whose_metrics_exist(
    prometheus: str,
) -> None:
    result = CliRunner().invoke(cli, ["validate", "--prometheus", prometheus, CHAT])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok: 1 service, 9 SLOs\n"


def test_validate_against_prometheus_names_a_metric_that_has_no_series(
    prometheus: str, tmp_path: Path
) -> None:
    code, err = _validate(
        prometheus,
        tmp_path,
        "  - {name: ttft, objective: 99, sli: {ttft: {threshold: 1s, metric: llm_first_token_seconds}}}\n",
    )
    assert code == 2
    assert (
        f"error: slo.yaml:4:38: chat-assistant/ttft: metric llm_first_token_seconds_bucket has "
        f"no series in {prometheus} (check the metric name, the preset and that the service is "
        "scraped)"
    ) in err


def test_validate_against_prometheus_rejects_a_threshold_that_is_not_a_bucket_bound(
    prometheus: str, tmp_path: Path
) -> None:
    code, err = _validate(
        prometheus, tmp_path, "  - {name: ttft, objective: 99, sli: {ttft: {threshold: 1.2s}}}\n"
    )
    assert code == 2
    assert (
        "chat-assistant/ttft: 1.2 is not a bucket bound of llm_ttft_seconds (its bounds: 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10)"
        in err
    )


def test_validate_against_prometheus_counts_le_1_as_the_bound_1_0(
    prometheus: str, tmp_path: Path
) -> None:
    # The simulator writes Prometheus 2's le="1"; the threshold 1s is the bound 1.0.
    code, err = _validate(
        prometheus, tmp_path, "  - {name: ttft, objective: 99, sli: {ttft: {threshold: 1s}}}\n"
    )
    assert code == 0, err


def test_validate_against_prometheus_warns_past_a_hundred_groups(
    prometheus: str, tmp_path: Path
) -> None:
    body = (
        "  - name: per-feature\n    objective: 99\n    group_by: [feature]\n"
        "    sli: {success_rate: {selector: 'service=\"%s\"'}}\n"
    )
    code, err = _validate(prometheus, tmp_path, body % "wide")
    assert code == 0
    assert (
        "warning: slo.yaml:6:15: chat-assistant/per-feature: group_by [feature] makes 120 groups "
        f"in {prometheus} (more than 100), each with its own series, budget and pages (group by "
        "a label with fewer values (tenant tier, feature), or narrow the SLI's selector to the "
        "groups that need their own page)"
    ) in err
    code, err = _validate(prometheus, tmp_path, body % "chat-assistant")
    assert (code, err) == (0, "")
    code, err = _validate(prometheus, tmp_path, body.replace("feature", "tenant") % "wide")
    assert code == 0
    assert (
        "warning: slo.yaml:6:15: chat-assistant/per-tenant: no series the SLI reads carries "
        f"tenant in {prometheus}, so every event falls in one group with an empty tenant (group "
        "by a label the SLI's metrics carry, or add tenant where they are recorded)"
    ) in err


def test_validate_against_prometheus_warns_on_grouping_by_a_user_id(
    prometheus: str, tmp_path: Path
) -> None:
    body = (
        "  - name: per-user\n    objective: 99\n    sli:\n      ratio:\n"
        '        errors: sum by (user_id) (rate(llm_requests_total{status="error"}[{{window}}]))\n'
        "        total: sum(rate(llm_requests_total[{{window}}]))\n"
    )
    code, err = _validate(prometheus, tmp_path, body)
    assert code == 0
    assert (
        "warning: slo.yaml:7:7: chat-assistant/per-user: the SLI groups by user_id, likely one "
        "series per request or user (aggregate it away: an SLO counts events, not who sent them)"
    ) in err
