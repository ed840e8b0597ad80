"""A third baseline: Pyrra-shaped rules for the same SLOs, from Pyrra's generated shapes.

Pyrra (github.com/pyrra-dev/pyrra, ``slo/rules.go`` and its ``rules_test.go`` goldens)
writes, for a ratio or latency objective (its ``<metric>:`` names are ``pyrra:`` here,
so the SLOs' series stay apart however their metrics are named):

- a burn-rate group named after the SLO, every 30s: ``<metric>:burnrate<w>`` =
  ``sum(rate(errors[w])) / sum(rate(total[w]))`` read from the raw series for every
  window of its four pairs, then one ``ErrorBudgetBurn`` alert per pair,
  ``burnrate<short> > (factor * (1-target)) and burnrate<long> > (factor * (1-target))``
  with a ``for:`` of half the short window;
- an ``-increase`` group for the SLO window, every 150s for a 30d window (30s under 7d,
  +30s a week): ``<metric>:increase30d`` = ``sum(increase(metric[30d]))`` for the total
  and for the errors (or, for latency, the success bucket), read from the raw series;
- with ``performanceOverAccuracy``, the increase is split: ``<metric>:increase5m`` every
  30s, and ``sum_over_time(<metric>:increase5m[30d:5m])`` every 150s (a subquery: the 5m
  increases at the 8,640 5m-aligned instants of the window).

Pyrra's windows scale from 28 days (``Windows()``): 1h/5m at 14x, 6h/30m at 7x, 1d/2h
at 2x and 4d/6h at 1x for 28d, so for 30d they are 1h4m/5m, 6h26m/32m, 1d1h43m/2h9m and
4d6h51m/6h26m, rounded to the minute as Pyrra rounds them. Pyrra's ratio indicator
takes one errors metric; the availability SLO counts two (errors and guardrail
rejections), so its errors are the sum of two ``rate()`` terms, as in the Sloth set.

Only the shapes come from Pyrra; the code is this project's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import yaml

from bench.sloth import WINDOW_PLACEHOLDER, LiteralDumper, Rule, SlothSLO
from sloengine.durations import format_duration
from sloengine.promql import labels as label_matchers
from sloengine.promql import number

Mode = Literal["accuracy", "performance"]
MODES: tuple[Mode, ...] = ("accuracy", "performance")
PERIOD_SECONDS = 30 * 86400
PERIOD = "30d"
SLO = "slo"
PART = "pyrra_part"  # errors or total: the two increases of the SLO window
BURNRATE = "pyrra:burnrate"
INCREASE = "pyrra:increase"
BASE_INCREASE = "pyrra:increase5m"


@dataclass(frozen=True)
class Window:
    """One of Pyrra's pairs: its severity, ``for``, windows and burn-rate factor."""

    severity: str
    for_seconds: int
    long_seconds: int
    short_seconds: int
    factor: float


def _round_minute(seconds: float) -> int:
    """Go's ``Duration.Round(time.Minute)``: to the nearest minute, halves away from zero."""
    return int(seconds // 60 + (1 if seconds % 60 >= 30 else 0)) * 60


def windows(period: int = PERIOD_SECONDS) -> list[Window]:
    """Pyrra's four pairs for an SLO window of ``period`` seconds (scaled from 28 days)."""
    day = 28 * 24

    def scaled(severity: str, divisors: tuple[int, int, int], factor: float) -> Window:
        for_s, long_s, short_s = (_round_minute(period / d) for d in divisors)
        return Window(severity, for_s, long_s, short_s, factor)

    return [
        scaled("critical", (day * 30, day, day * 12), 14),
        scaled("critical", (day * 4, 28 * 4, day * 2), 7),
        scaled("warning", (day, 28, 28 * 12), 2),
        scaled("warning", (28 * 8, 7, 28 * 4), 1),
    ]


def increase_interval(period: int = PERIOD_SECONDS) -> int:
    """Seconds between evaluations of the increase group: 30s under 7d, +30s per week."""
    weeks = period // (7 * 86400)
    return min(30 + 30 * weeks, 240)


def _ids(slo: SlothSLO) -> dict[str, str]:
    return {SLO: slo.id}


def _sel(slo: SlothSLO, **extra: str) -> str:
    return "{" + label_matchers({**_ids(slo), **extra}) + "}"


def _at(query: str, window: str) -> str:
    return query.replace(WINDOW_PLACEHOLDER, window)


def _increase(query: str, window: str) -> str:
    return _at(query, window).replace("rate(", "increase(")


def burnrate_group(slo: SlothSLO) -> Rule:
    ws = windows()
    seconds = sorted({s for w in ws for s in (w.long_seconds, w.short_seconds)})
    rules: list[Rule] = []
    for each in seconds:
        w = format_duration(each)
        rules.append(
            {
                "record": BURNRATE + w,
                "expr": f"({_at(slo.errors, w)})\n/\n({_at(slo.total, w)})",
                "labels": _ids(slo),
            }
        )
    target = number(round(slo.objective / 100, 9))
    for pair in ws:
        short, long_ = format_duration(pair.short_seconds), format_duration(pair.long_seconds)
        threshold = f"({number(pair.factor)} * (1-{target}))"
        rules.append(
            {
                "alert": "ErrorBudgetBurn",
                "expr": (
                    f"{BURNRATE}{short}{_sel(slo)} > {threshold} "
                    f"and {BURNRATE}{long_}{_sel(slo)} > {threshold}"
                ),
                "for": format_duration(pair.for_seconds),
                "labels": {
                    **_ids(slo),
                    "severity": pair.severity,
                    "long": long_,
                    "short": short,
                },
            }
        )
    return {"name": slo.id, "interval": "30s", "rules": rules}


def increase_groups(slo: SlothSLO, mode: Mode) -> list[Rule]:
    parts = (("errors", slo.errors), ("total", slo.total))
    interval = format_duration(increase_interval())
    absent = {
        "alert": "SLOMetricAbsent",
        "expr": f"absent({_at(slo.total, '5m').split('(rate(')[1].split('[')[0]}) == 1",
        "for": "10m",
        "labels": {**_ids(slo), "severity": "critical"},
    }
    if mode == "accuracy":
        rules: list[Rule] = [
            {
                "record": INCREASE + PERIOD,
                "expr": _increase(query, PERIOD),
                "labels": {**_ids(slo), PART: part},
            }
            for part, query in parts
        ]
        return [{"name": f"{slo.id}-increase", "interval": interval, "rules": [*rules, absent]}]
    short: list[Rule] = [
        {
            "record": BASE_INCREASE,
            "expr": _increase(query, "5m"),
            "labels": {**_ids(slo), PART: part},
        }
        for part, query in parts
    ]
    long_: list[Rule] = [
        {
            "record": INCREASE + PERIOD,
            "expr": f"sum(sum_over_time({BASE_INCREASE}{_sel(slo, **{PART: part})}[{PERIOD}:5m]))",
            "labels": {**_ids(slo), PART: part},
        }
        for part, _ in parts
    ]
    return [
        {"name": f"{slo.id}-increase", "interval": "30s", "rules": [*short, absent]},
        {"name": f"{slo.id}-increase-long", "interval": interval, "rules": long_},
    ]


def rule_groups(slo: SlothSLO, mode: Mode) -> list[Rule]:
    return [burnrate_group(slo), *increase_groups(slo, mode)]


def period_exprs(text: str, slo_id: str) -> tuple[str, str]:
    """The errors and total increases over the SLO window, as the rule file records them."""
    found = {}
    for group in yaml.safe_load(text)["groups"]:
        for rule in group["rules"]:
            labels = rule.get("labels") or {}
            if rule.get("record") == INCREASE + PERIOD and labels.get(SLO) == slo_id:
                found[labels[PART]] = rule["expr"]
    return found["errors"], found["total"]


def render(slos: list[SlothSLO], mode: Mode) -> str:
    """A rule file for ``slos``, shaped as Pyrra generates it in ``mode``."""
    groups = [g for slo in slos for g in rule_groups(slo, mode)]
    return yaml.dump({"groups": groups}, Dumper=LiteralDumper, sort_keys=False, width=1_000_000)
