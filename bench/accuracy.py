"""Long-window accuracy: each rule set's error ratio over 1d, 3d and 30d against the truth.

The rule sets' own recording expressions (read from the rule files, not rewritten) are
evaluated as instant queries over the backfilled month at instants two hours apart
through its last day, at the phase the SLO's rule group evaluates at (the timestamps of
its recorded history, like a live group reading what it recorded itself); the truth is the simulator's exact count of bad and total events
in the same window. sloengine's ratio is its bad rate over its total rate for the window;
Sloth's is its ``slo:sli_error:ratio_rate<window>``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from bench import pyrra
from bench.rulesets import NAMES, OPTIMIZED, SLOENGINE, RuleSet
from sloengine import conventions as cv
from sloengine.durations import parse_duration
from sloengine.model import Objective, Service
from sloengine.sim import client
from sloengine.sim.launch import Server
from sloengine.sim.traffic import Scenario, truth
from sloengine.spec import CostPerCallSLI, LatencySLI, SuccessRateSLI

WINDOWS = ("1d", "3d", "30d")
POINTS = 13  # instants, two hours apart, over the last day


@dataclass
class Cell:
    """One SLO, window and rule set: relative errors at each instant."""

    errors: list[float | None] = field(default_factory=list)

    @property
    def worst(self) -> float | None:
        known = [e for e in self.errors if e is not None]
        if len(known) < len(self.errors) or not known:
            return None  # NaN or missing somewhere
        return max(known, key=abs)

    @property
    def last(self) -> float | None:
        return self.errors[-1] if self.errors else None


@dataclass
class AccuracyResult:
    cells: dict[tuple[str, str, str], Cell]  # (slo, window, rule set)
    truth_at_end: dict[tuple[str, str], float]
    instants: list[int]  # of the last SLO; every SLO's group has its own phase
    agreement_5m: dict[str, float]  # max relative gap of the 5m ratios, sloengine vs Sloth


def _truth_args(obj: Objective) -> dict[str, Any]:
    spec = obj.sli.spec
    if isinstance(spec, SuccessRateSLI):
        return {"include": list(spec.include)}
    if isinstance(spec, CostPerCallSLI):
        return {"threshold_usd": float(spec.threshold_usd)}
    assert isinstance(spec, LatencySLI), f"the accuracy bench has no truth for {obj.kind}"
    return {"threshold": float(spec.threshold)}


def expressions(rs: RuleSet, slo: str, window: str) -> tuple[str, str | None] | None:
    """The rule set's expression(s) for a window: (ratio, None) or (bad rate, total rate);
    None when the set has no such window (Pyrra's windows are 1d1h43m and 4d6h51m)."""
    if rs.name.startswith("pyrra"):
        if window != pyrra.PERIOD:
            return None
        return pyrra.period_exprs(rs.text, f"{rs.service}-{slo}")
    for group in yaml.safe_load(rs.text)["groups"]:
        if rs.groups[group["name"]] != slo:
            continue
        if rs.name == SLOENGINE:
            found = {
                r["record"]: r["expr"]
                for r in group["rules"]
                if (r.get("labels") or {}).get(cv.WINDOW) == window
                and r.get("record") in (cv.BAD_RATE, cv.TOTAL_RATE)
            }
            if len(found) == 2:
                return found[cv.BAD_RATE], found[cv.TOTAL_RATE]
        else:
            for r in group["rules"]:
                if r.get("record") == f"slo:sli_error:ratio_rate{window}":
                    return r["expr"], None
    raise KeyError(f"{rs.name} has no {window} rule for {slo}")


def base_expressions(rs: RuleSet, slo: str) -> tuple[str, str]:
    """sloengine's two 5m rules over the raw series (what every longer window is built from)."""
    for group in yaml.safe_load(rs.text)["groups"]:
        if rs.groups[group["name"]] == slo:
            found = {r.get("record"): r["expr"] for r in group["rules"]}
            return found[cv.BAD_BASE], found[cv.TOTAL_BASE]
    raise KeyError(slo)


def ratio(server: Server, exprs: tuple[str, str | None], at: float) -> float | None:
    first = client.scalar(server.url, exprs[0], at)
    if exprs[1] is None:
        return first
    second = client.scalar(server.url, exprs[1], at)
    if first is None or second is None or second == 0:
        return None
    return first / second


def measure(
    server: Server, service: Service, sets: dict[str, RuleSet], scenario: Scenario, end: int
) -> AccuracyResult:
    cells: dict[tuple[str, str, str], Cell] = {}
    truths: dict[tuple[str, str], float] = {}
    agreement = {}
    for obj in service.objectives:
        # The instants this SLO's rule group evaluates at: the phase of its recorded history.
        newest = client.scalar(server.url, f'timestamp({cv.TOTAL_BASE}{{slo="{obj.name}"}})', end)
        assert newest is not None, f"no recorded history for {obj.name}"
        instants = [newest - k * 7200 for k in reversed(range(POINTS))]
        for window in WINDOWS:
            seconds = parse_duration(window)
            for t in instants:
                start = max(scenario.origin, t - seconds)
                exact = truth(scenario, obj.kind, start, t, **_truth_args(obj)).bad_ratio  # type: ignore[arg-type]
                assert exact, f"no bad events for {obj.name} over {window}"
                truths[(obj.name, window)] = exact
                for name in NAMES:
                    exprs = expressions(sets[name], obj.name, window)
                    if exprs is None:
                        continue
                    got = ratio(server, exprs, t)
                    rel = None if got is None or got != got else got / exact - 1
                    cells.setdefault((obj.name, window, name), Cell()).errors.append(rel)
        ours = base_expressions(sets[SLOENGINE], obj.name)
        theirs = expressions(sets[OPTIMIZED], obj.name, "5m")
        assert theirs is not None
        gaps = []
        for t in instants:
            a, b = ratio(server, ours, t), ratio(server, theirs, t)
            if a and b:
                gaps.append(abs(a / b - 1))
        agreement[obj.name] = max(gaps, default=float("nan"))
    return AccuracyResult(cells, truths, [round(t) for t in instants], agreement)
