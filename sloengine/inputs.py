"""Raw input series that drive an SLI: which series count good, bad or all events.

Used to write ``promtool test rules`` cases and the simulator's fixtures: given a
per-minute count of good and bad events (or dollars), every series the SLI reads
gets the increment that makes its rules see exactly those events.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Any

import rstr

from sloengine import promql, sli
from sloengine.model import Objective
from sloengine.promql import MATCH_OPS as _OPS
from sloengine.promql import selectors as _selectors
from sloengine.spec import RatioSLI

GOOD, BAD, ALL, ZERO = "good", "bad", "all", "zero"


@dataclass(frozen=True)
class Series:
    metric: str
    labels: dict[str, str]
    role: str  # GOOD, BAD, ALL (good + bad) or ZERO (present, never moves)

    def notation(self) -> str:
        return (
            promql.selector(self.metric, promql.labels(self.labels)) if self.labels else self.metric
        )


@dataclass
class Plan:
    """The series of one SLI; ``reason`` says why there is none (then tests are skipped)."""

    series: list[Series] = field(default_factory=list)
    reason: str = ""


class _Unsolvable(Exception):
    pass


Matcher = tuple[str, str, str]  # (label, op, value) with op one of = != =~ !~


def _holds(op: str, want: str, value: str) -> bool:
    if op == "=":
        return value == want
    if op == "!=":
        return value != want
    matched = re.fullmatch(want, value) is not None
    return matched if op == "=~" else not matched


def _matchers(text: str) -> list[Matcher]:
    if not text.strip():
        return []
    # With a metric name, a list of matchers that all match "" (error_type="") parses too.
    node: Any = promql.parse("x{" + text + "}")
    return [(m.name, _OPS[str(m.op)], m.value) for m in node.matchers.matchers]


def _value(label: str, must: list[Matcher], must_not: list[Matcher] = ()) -> str:  # type: ignore[assignment]
    """A label value satisfying every matcher in ``must`` and failing one in ``must_not``."""
    gen = rstr.Rstr(random.Random(label))
    candidates = [v for (_, op, v) in must if op == "="]
    candidates += [gen.xeger(v) for (_, op, v) in must if op == "=~"]
    candidates += [gen.xeger(v) for (_, op, v) in must_not if op == "=~"]
    candidates += [v + "_other" for (_, op, v) in must_not if op == "=" and v]
    candidates += ["ok", "200", "stop", "x", "1", ""]
    for value in candidates:
        if all(_holds(op, want, value) for (_, op, want) in must) and (
            not must_not or not all(_holds(op, want, value) for (_, op, want) in must_not)
        ):
            return value
    raise _Unsolvable(f"no value of {label} satisfies the matchers")


def _labels(must: list[Matcher], must_not: list[Matcher] = ()) -> dict[str, str]:  # type: ignore[assignment]
    names = sorted({m[0] for m in must} | {m[0] for m in must_not})
    out = {}
    flipped = False
    for name in names:
        own = [m for m in must if m[0] == name]
        against = [m for m in must_not if m[0] == name]
        if against and not flipped:
            try:
                value = _value(name, own, against)
                flipped = True
            except _Unsolvable:
                value = _value(name, own)
        else:
            value = _value(name, own)
        if value:
            out[name] = value
    if must_not and not flipped:
        raise _Unsolvable("cannot make a series that misses the bad-event matchers")
    return out


def plan(obj: Objective) -> Plan:
    try:
        return Plan(_series(obj))
    except _Unsolvable as exc:
        return Plan(reason=str(exc))


def _series(obj: Objective) -> list[Series]:
    spec = obj.sli.spec
    if isinstance(spec, RatioSLI):
        return _ratio_series(spec.errors, spec.good, spec.total)
    read = sli.reading(obj.sli, obj.preset, obj.file_selector)
    assert read is not None
    base = [m for text in read.matchers for m in _matchers(text)]
    if isinstance(read, sli.DollarReading):
        return [Series(read.counter, _labels(base), BAD)]
    if isinstance(read, sli.ThresholdReading):
        return _histogram_series(read.base, base, read.bound, quality=read.bad_below)
    extra = [Series(name, _labels(base), ZERO) for name in read.include]
    if read.bad_counter:
        return [
            Series(read.total, _labels(base), ALL),
            Series(read.bad_counter, _labels(base), BAD),
            *extra,
        ]
    bad = _matchers(read.bad_matchers)
    return [
        Series(read.total, _labels(base, bad), GOOD),
        Series(read.total, _labels(base + bad), BAD),
        *extra,
    ]


def _histogram_series(
    base: str, matchers: list[Matcher], bound: float, *, quality: bool
) -> list[Series]:
    labels = _labels(matchers)
    # Spell the bound as Prometheus 3 does (1.0); the rules also match Prometheus 2's 1.
    le = promql.le_spellings(bound)[-1]
    return [
        Series(f"{base}_bucket", {**labels, "le": le}, BAD if quality else GOOD),
        Series(f"{base}_bucket", {**labels, "le": "+Inf"}, ALL),
        Series(f"{base}_count", labels, ALL),
    ]


def _one(expr: str) -> tuple[str, list[Matcher]]:
    selectors = _selectors(expr)
    if len(selectors) != 1:
        raise _Unsolvable("the ratio SLI reads more than one series selector")
    sel = selectors[0]
    matchers = [(m.name, _OPS[str(m.op)], m.value) for m in sel.matchers.matchers]
    name = sel.name or next((v for (n, op, v) in matchers if n == "__name__" and op == "="), None)
    if not name:
        raise _Unsolvable("the ratio SLI selects series without a metric name")
    return name, [m for m in matchers if m[0] != "__name__"]


def _ratio_series(errors: str | None, good: str | None, total: str) -> list[Series]:
    total_name, total_m = _one(total)
    part_name, part_m = _one(errors if errors is not None else good)  # type: ignore[arg-type]
    part_role, rest_role = (BAD, GOOD) if errors is not None else (GOOD, BAD)
    if part_name != total_name:
        return [
            Series(total_name, _labels(total_m), ALL),
            Series(part_name, _labels(part_m), part_role),
        ]
    extra = [m for m in part_m if m not in total_m]
    return [
        Series(total_name, _labels(total_m + extra), part_role),
        Series(total_name, _labels(total_m, extra), rest_role),
    ]


def labels_for(*matchers: str) -> dict[str, str]:
    """Labels of one series that every matcher list in ``matchers`` selects.

    ValueError when no series can satisfy them (the rule tests are then skipped).
    """
    try:
        return _labels([m for text in matchers for m in _matchers(text)])
    except _Unsolvable as exc:
        raise ValueError(str(exc)) from None
