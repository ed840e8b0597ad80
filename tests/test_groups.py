"""Grouped SLOs (group_by) as tables: the rules they generate, the status and alert
decisions per group, and what explain, the table and the pages say. The promtool
proofs (one group burning, another clean) are in test_rule_proofs; Prometheus-backed
status and scheduler checks in test_status and test_scheduler."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ROOT

from sloengine import conventions as cv
from sloengine.alerting import Event, Notification, advance, incident_key, pair_key
from sloengine.conventions import Mode, Severity
from sloengine.delivery import Message
from sloengine.explain import explain, render_text
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.notify import render_console, render_slack, slack_templates
from sloengine.rules import alert_annotations, render
from sloengine.status import PairState, Rates, Status, burn, judge
from sloengine.table import render_table

T0 = 1_800_000_000.0
GROUPED = ROOT / "tests" / "fixtures" / "grouped.yaml"
(SERVICE,) = load_specs([str(GROUPED)])
SLOS = {o.name: o for o in SERVICE.objectives}
AVAILABILITY = SLOS["availability"]  # group_by [tenant], 99.5%
FEATURE_SPEND = SLOS["feature-spend"]  # $5000, chat $20000, search $1000


def rules(name: str) -> dict[tuple[str, str], str]:
    """(record or alert, window) -> expr of one SLO's rules."""
    out = {}
    for group in yaml.safe_load(render(SERVICE))["groups"]:
        for rule in group["rules"]:
            if rule["labels"][cv.SLO] == name:
                at = rule["labels"].get(cv.WINDOW) or rule["labels"].get(cv.LONG_WINDOW, "")
                out[(rule.get("record") or rule["alert"], at)] = rule["expr"]
    return out


def window_rates(obj: Objective, bad: float, total: float | None) -> dict[str, Any]:
    windows = (300, 1800, 3600, 7200, 21600, 86400, 259200, obj.period)
    return {
        "bad": dict.fromkeys(windows, bad),
        "total": None if total is None else dict.fromkeys(windows, total),
    }


def grouped_status(
    obj: Objective, group: dict[str, str], bad: float, total: float | None
) -> Status:
    return judge(obj, Rates(**window_rates(obj, bad, total), mode=Mode.RAW, group=group), T0)


def test_base_rates_are_summed_by_the_group_labels_and_a_group_without_failures_reads_zero() -> (
    None
):
    base = rules("availability")
    assert base[(cv.TOTAL_BASE, "")] == "sum by (tenant) (rate(llm_requests_total[5m]))"
    total = "sum by (tenant) (rate(llm_requests_total[5m]))"
    assert base[(cv.BAD_BASE, "")] == (
        f'(sum by (tenant) (rate(llm_requests_total{{status="error"}}[5m])) or {total} * 0)'
        f" + (sum by (tenant) (rate(llm_validation_errors_total[5m])) or {total} * 0)"
    )
    latency = rules("latency")
    assert latency[(cv.TOTAL_BASE, "")] == (
        "sum by (tenant, model) (rate(llm_total_latency_seconds_count[5m]))"
    )


def test_the_longer_windows_and_alerts_keep_the_group_labels_by_selecting_every_group() -> None:
    got = rules("availability")
    # Built from the base series without aggregating: every group keeps its labels.
    two = 'sloengine:sli_bad:rate{service="grouped", slo="availability", window="2h"}'
    assert got[(cv.BAD_RATE, "6h")].startswith(f"({two} + ({two} offset 2h or {two} * 0) + ")
    assert "sum" not in got[(cv.BURN_RATE, "1h")] and "by" not in got[(cv.BURN_RATE, "1h")]
    assert got[(cv.ALERT_NAME, "1h")].startswith(
        'max without (window) (sloengine:slo_burn_rate{service="grouped", slo="availability", '
        'window="1h"}) > 14.4'
    )


def test_per_group_spend_budgets_are_one_term_per_listed_value_then_the_default_for_the_rest() -> (
    None
):
    got = rules("feature-spend")
    sel = 'service="grouped", slo="feature-spend", window="1h"'
    assert got[(cv.BURN_RATE, "1h")] == (
        f'sloengine:sli_bad:rate{{feature="chat", {sel}}} / {20000 / (30 * 86400)!r}'
        f' or sloengine:sli_bad:rate{{feature="search", {sel}}} / {1000 / (30 * 86400)!r}'
        f" or sloengine:sli_bad:rate{{{sel}}} / {5000 / (30 * 86400)!r}"
    )
    month = sel.replace('"1h"', '"30d"')
    assert got[(cv.BUDGET_USD, "30d")] == (
        f'sloengine:sli_bad:rate{{feature="chat", {month}}} * 0 + 20000'
        f' or sloengine:sli_bad:rate{{feature="search", {month}}} * 0 + 1000'
        f" or sloengine:sli_bad:rate{{{month}}} * 0 + 5000"
    )


def test_a_grouped_slos_constants_are_recorded_per_group() -> None:
    got = rules("availability")
    burn_30d = 'sloengine:slo_burn_rate{service="grouped", slo="availability", window="30d"}'
    assert got[(cv.OBJECTIVE, "30d")] == f"{burn_30d} * 0 + 0.995"
    assert got[(cv.WINDOW_SECONDS, "30d")] == f"{burn_30d} * 0 + 2592000"
    assert got[(cv.BUDGET_REMAINING, "30d")] == f"1 - {burn_30d}"


def test_each_alert_names_its_group_through_prometheus_templates() -> None:
    alerts = [
        r
        for g in yaml.safe_load(render(SERVICE))["groups"]
        for r in g["rules"]
        if r.get("alert") and r["labels"][cv.SLO] == "latency"
    ]
    summary = alerts[0]["annotations"]["summary"]
    assert summary == (
        "grouped latency for tenant={{ $labels.tenant }}, model={{ $labels.model }}: "
        "error budget burning over 14.4x for 1h"
    )


@pytest.mark.parametrize(
    ("name", "group", "budget"),
    [
        ("A group listed in budget_usd_by has its own budget", {"feature": "chat"}, 20000),
        ("A group not listed has the default budget", {"feature": "summarize"}, 5000),
        ("A group without the label has the default budget", {"feature": ""}, 5000),
    ],
)
def test_a_groups_spend_burns_against_its_own_budget(
    name: str, group: dict[str, str], budget: float
) -> None:
    per_second = budget / FEATURE_SPEND.period
    assert burn(FEATURE_SPEND, 2 * per_second, None, group) == pytest.approx(2.0)
    status = grouped_status(FEATURE_SPEND, group, per_second / 2, None)
    assert status.group == group
    assert status.budget_remaining == {"dollars": budget / 2}


def test_a_group_with_no_traffic_burns_nothing_and_has_no_data_while_another_pages() -> None:
    quiet = grouped_status(AVAILABILITY, {"tenant": "quiet"}, 0.0, 0.0)
    loud = grouped_status(AVAILABILITY, {"tenant": "acme"}, 5.0, 10.0)
    assert (quiet.state, quiet.health, quiet.burn_rates["1h"]) == ("ok", "no_data", 0.0)
    assert (loud.state, loud.group) == (Severity.PAGE, {"tenant": "acme"})


def test_an_ungrouped_slo_keeps_its_state_keys_and_a_group_has_keys_of_its_own() -> None:
    pair = PairState(Severity.PAGE, "1h", "5m", 14.4, 20.0, 20.0, True)
    assert incident_key("chat", "availability") == "chat/availability"
    assert incident_key("chat", "availability", {}) == "chat/availability"
    assert pair_key("chat", "availability", pair) == "chat/availability/page/1h"
    group = {"tenant": "acme", "model": "m1"}
    assert incident_key("chat", "availability", group) == "chat/availability{tenant=acme, model=m1}"
    assert (
        pair_key("chat", "availability", pair, group)
        == "chat/availability{tenant=acme, model=m1}/page/1h"
    )


def test_two_burning_groups_open_two_incidents_and_a_clean_one_opens_none() -> None:
    rows: dict[str, Any] = {}
    notes: list[Notification] = []
    for tenant, bad in (("acme", 5.0), ("globex", 5.0), ("initech", 0.0)):
        step = advance(
            AVAILABILITY, rows, grouped_status(AVAILABILITY, {"tenant": tenant}, bad, 10.0), T0
        )
        rows |= {r.key: r for r in step.rows}
        notes += step.notifications
    assert [(n.kind, n.incident) for n in notes] == [
        (Event.FIRING, f"grouped/availability{{tenant=acme}}/{int(T0)}"),
        (Event.FIRING, f"grouped/availability{{tenant=globex}}/{int(T0)}"),
    ]
    assert notes[0].payload["status"]["group"] == {"tenant": "acme"}
    again = advance(
        AVAILABILITY, rows, grouped_status(AVAILABILITY, {"tenant": "acme"}, 5.0, 10.0), T0 + 60
    )
    assert again.notifications == ()


def test_the_page_the_slack_message_and_the_table_name_the_group() -> None:
    status = grouped_status(AVAILABILITY, {"tenant": "acme"}, 5.0, 10.0)
    step = advance(AVAILABILITY, {}, status, T0)
    (note,) = step.notifications
    message = Message(1, note.kind, note.incident, json.loads(json.dumps(note.payload)), 0)
    assert render_console(message).startswith(
        "[PAGE] grouped/availability for tenant=acme is burning its error budget"
    )
    text, blocks = render_slack(message, slack_templates())
    assert text.startswith("PAGE: grouped/availability for tenant=acme")
    assert blocks[0]["text"]["text"] == "PAGE: grouped/availability for tenant=acme"
    assert render_table([status]).startswith("grouped/availability {tenant=acme}  [PAGE]")


def test_explain_says_the_slo_is_per_group_and_what_each_group_costs() -> None:
    text = render_text(explain(FEATURE_SPEND), FEATURE_SPEND)
    assert (
        "  error budget: $20000 per 30d for feature=chat; $1000 per 30d for feature=search; "
        "$5000 per 30d ($166.67 a day) for every other feature"
    ) in text
    assert (
        "  per group: one SLI, budget, set of burn rates and 4 alerts per value of feature: "
        "21 recorded series per group, so 100 groups are 2100 series; each group pages on its own"
    ) in text
    assert explain(SLOS["availability"]).group_by == ["tenant"]
    ungrouped = next(o for s in load_specs([str(ROOT / "slos")]) for o in s.objectives)
    assert explain(ungrouped).groups == "" and "per group" not in render_text(
        explain(ungrouped), ungrouped
    )


def test_a_budget_usd_by_key_reaches_the_alert_text_as_written_never_as_a_template(
    tmp_path: Path,
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "apiVersion: sloengine/v1\nservice: h\nslos:\n  - name: s\n    group_by: [feature]\n"
        "    sli: {spend: {budget_usd: 5, budget_usd_by: {'{{ query \"up\" }}': 20}}}\n"
    )
    (service,) = load_specs([str(spec)])
    alert = next(
        r for g in yaml.safe_load(render(service))["groups"] for r in g["rules"] if "alert" in r
    )
    assert (
        '(budget $20 for feature={{ "{{" }} query "up" }}, $5 for any other per 30d)'
        in (alert["annotations"]["description"])
    )


def test_an_alert_sent_for_one_group_names_that_groups_values() -> None:
    latency = SLOS["latency"]
    window = latency.active_windows()[0]
    notes = alert_annotations(latency, window, group={"tenant": "acme", "model": "m1"})
    assert notes["summary"] == (
        "grouped latency for tenant=acme, model=m1: error budget burning over 14.4x for 1h"
    )
