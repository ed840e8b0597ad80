"""The backfill's plan, from rule groups alone: which recorded series other rules read into
the past, how far back, in which dependency layer, and what cannot be rebuilt."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import ROOT

from sloengine import conventions as cv
from sloengine import lookback, rules
from sloengine.detectors import rules as detector_rules
from sloengine.loading import load_specs


def group(name: str, *rules_: dict[str, Any], interval: str = "1m") -> dict[str, Any]:
    return {"name": name, "interval": interval, "rules": list(rules_)}


def rec(record: str, expr: str, **labels: str) -> dict[str, Any]:
    return {"record": record, "expr": expr, "labels": labels}


def alert(expr: str) -> dict[str, Any]:
    return {"alert": "A", "expr": expr}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("x", [("x", 0)]),
        ("rate(x[5m])", [("x", 300)]),
        ("x offset 1h", [("x", 3600)]),
        ("sum_over_time(x[7d] offset 1h)", [("x", 7 * 86400 + 3600)]),
        ("max_over_time(rate(x[5m])[1h:1m] offset 30m)", [("x", 300 + 3600 + 1800)]),
        ("x offset -5m", [("x", 0)]),
        ('{__name__="x", a="b"} / max_over_time(y[1h:])', [("x", 0), ("y", 3600)]),
    ],
)
def test_a_read_reaches_back_by_its_ranges_subqueries_and_offsets(
    expr: str, expected: list[tuple[str, int]]
) -> None:
    assert [(r.name, r.back) for r in lookback.reads(expr)] == expected


def test_a_series_read_only_at_the_instant_needs_no_history() -> None:
    groups = [group("g", rec("base", "rate(raw[5m])"), rec("burn", "base / 2"), alert("burn > 1"))]
    assert lookback.plan(groups).layers == ()


def test_a_series_read_over_a_range_needs_history_as_long_as_the_range() -> None:
    groups = [
        group(
            "g",
            rec("base", "rate(raw[5m])", slo="a"),
            rec("long", 'avg_over_time(base{slo="a"}[1d])', slo="a"),
            alert('long > 1 and base{slo="a"} offset 3d > 0'),
        )
    ]
    plan = lookback.plan(groups)
    (layer,) = plan.layers
    (planned,) = layer
    assert [r["record"] for r in planned.rules] == ["base"]
    assert planned.lookback == 3 * 86400
    assert planned.layer == 0
    assert planned.probe == 'base{slo="a"}'
    assert planned.interval == 60


def test_a_selector_needs_only_the_rules_whose_own_labels_it_matches() -> None:
    groups = [
        group(
            "a", rec("base", "rate(raw[5m])", slo="a"), rec("w", 'sum_over_time(base{slo="a"}[1h])')
        ),
        group("b", rec("base", "rate(raw[5m])", slo="b")),
    ]
    assert [p.group for p in lookback.plan(groups).groups] == ["a"]


@pytest.mark.parametrize(
    "selector",
    [
        "base",
        'base{slo="a"}',
        'base{slo="a", window="1h"}',
        'base{slo="c"}',  # only the rule that sets no slo label
        'base{slo!="a"}',
        'base{slo=~"a|b", window="5m"}',
        'base{slo!~"a.*"}',
        'base{team="x"}',  # a label no rule sets: any value may be there
        'base{window="1d"}',
        "other",
    ],
)
def test_the_rule_index_finds_what_a_scan_of_every_rule_finds(selector: str) -> None:
    rules_ = [
        rec("base", "raw", slo="a", window="5m"),
        rec("base", "raw", slo="a", window="1h"),
        rec("base", "raw", slo="b", window="5m"),
        rec("base", "raw", window="1d"),
        rec("base", "raw"),
        rec("other", "raw", slo="a"),
    ]
    (read,) = lookback.reads(selector)
    scan = [i for i, rule in enumerate(rules_) if lookback.selects(read, rule)]
    assert lookback.Targets(rules_)(read) == scan


def test_a_roll_up_read_over_a_range_is_a_later_layer_and_its_inputs_reach_further_back() -> None:
    groups = [
        group(
            "g",
            rec("base", "rate(raw[5m])"),
            rec("hourly", "sum_over_time(base[1h])"),
            rec("monthly", "sum_over_time(hourly[30d])"),
        ),
        group("g:slow", rec("hourly2", "sum_over_time(base[1h])"), interval="1h"),
        group("g:alerts", alert("monthly > 1 and max_over_time(hourly2[2h]) > 0")),
    ]
    plan = lookback.plan(groups)
    assert [
        [(p.group, [r["record"] for r in p.rules], p.lookback) for p in layer]
        for layer in plan.layers
    ] == [
        [("g", ["base"], 30 * 86400 + 3600)],
        [("g", ["hourly"], 30 * 86400), ("g:slow", ["hourly2"], 7200)],
    ]
    assert plan.lookback == 30 * 86400 + 3600


def test_a_running_total_cannot_be_rebuilt_nor_what_reads_it() -> None:
    groups = [
        group(
            "g",
            rec("base", "rate(raw[5m])"),
            rec("total", "last_over_time(total[10m]) + base * 60 or base * 60"),
            rec("daily", "total - total offset 1d"),
            alert("max_over_time(daily[1h]) > 1"),
        )
    ]
    plan = lookback.plan(groups)
    assert [(s.record, s.reason.split(",")[0]) for s in plan.skipped] == [
        ("total", "it reads its own earlier values (a running total)"),
        ("daily", "it reads total"),
    ]
    assert plan.layers == ()


def test_every_rule_orders_all_recording_rules_by_what_they_read() -> None:
    groups = [group("g", rec("c", "b * 2"), rec("b", "a + 1"), rec("a", "rate(raw[5m])"))]
    plan = lookback.plan(groups, every_rule=True)
    assert [[r["record"] for p in layer for r in p.rules] for layer in plan.layers] == [
        ["a"],
        ["b"],
        ["c"],
    ]


def test_the_example_rules_need_their_base_rates_then_each_tile_after_the_tiles_it_sums() -> None:
    """From the PromQL alone: the base rates and the raw 1h tile first, then each roll-up
    one layer after the tiles it is summed from (chat-assistant's 30d SLOs: 2h from 1h,
    6h from 2h, 1d from 6h, 3d from 1d; api-gateway's 28d: 1d from 1h), and nothing
    read only at the instant (30m, the SLO window, burn rates)."""
    groups: list[dict[str, Any]] = []
    for service in load_specs([str(ROOT / "slos")]):
        groups += rules.rule_groups(service) + detector_rules.rule_groups(service.detectors)
    plan = lookback.plan(groups)
    found = {
        (
            str(r["record"]),
            r["labels"][cv.SERVICE],
            r["labels"][cv.SLO],
            r["labels"].get(cv.WINDOW),
        ): p.layer
        for p in plan.groups
        if not p.group.startswith("sloengine-detector")
        for r in p.rules
    }
    base: dict[str, str | None] = {
        "sloengine:sli_bad:rate5m": None,
        "sloengine:sli_total:rate5m": None,
    }
    rate = ("sloengine:sli_bad:rate", "sloengine:sli_total:rate")
    availability: dict[tuple[str, str, str, str | None], int] = {
        **{(name, "chat-assistant", "availability", w): 0 for name, w in base.items()},
        **{
            (name, "chat-assistant", "availability", w): layer
            for layer, w in enumerate(("1h", "2h", "6h", "1d", "3d"))
            for name in rate
        },
    }
    assert {k: v for k, v in found.items() if k[1:3] == ("chat-assistant", "availability")} == (
        availability
    )
    errors: dict[tuple[str, str, str, str | None], int] = {
        **{(name, "api-gateway", "errors", w): 0 for name, w in base.items()},
        **{(name, "api-gateway", "errors", "1h"): 0 for name in rate},
        **{(name, "api-gateway", "errors", "1d"): 1 for name in rate},
    }
    assert {k: v for k, v in found.items() if k[1:3] == ("api-gateway", "errors")} == errors
    # A spend SLO's windows have no total; one without a 30m window reads no 5m tile.
    spend = {k for k in found if k[1:3] == ("chat-assistant", "spend")}
    assert spend and all(name != "sloengine:sli_total:rate" for name, *_ in spend)
    assert not {k for k in found if k[1:3] == ("chat-assistant", "refusals") and k[3] is None}
    # The 30d window reads the 3d tile at offsets up to 27d: 30d of history, bar the hour
    # the raw 1h tile reads itself.
    assert plan.lookback == 30 * 86400 - 3600
    # A detector's hourly baseline sums its recorded 5m rates: a later layer.
    assert any(p.layer > 0 for p in plan.groups if p.group.startswith("sloengine-detector"))
    assert plan.skipped == ()
