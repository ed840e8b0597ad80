"""Alert timing and precision: a scenario catalog through ``promtool test rules``.

Each scenario is a per-minute count of requests and failures for one 99.9% / 30d SLO:
three clean days first (the longest alert window must be full before the Workbook's
detection times hold), then the incident, then seven clean hours (the longest short
window, 6h, plus room to see it reset). promtool evaluates each rule set over the whole
timeline; a check at every minute reads which severities fire.

The reference is the Workbook's rule evaluated exactly: at every minute, each pair's
burn over its long and its short window from the true event counts, both above the
threshold. For a constant error ratio after a clean history this fires at the Workbook's
``(1 - SLO) / error ratio x long window x burn rate``, rounded up to the next minute.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import sloth
from bench.progress import log
from bench.slos import TIMING_SERVICE, TIMING_SLOS, as_sloth, load
from sloengine.budget import AlertWindow, detection_seconds
from sloengine.durations import parse_duration
from sloengine.promql import number
from sloengine.rules import render
from sloengine.sim import launch

HISTORY = 3 * 1440  # minutes of clean traffic before every incident
TAIL = 7 * 60  # minutes after it
RATE = 1000.0  # requests per minute
PAGE, TICKET = "page", "ticket"
SEVERITIES = (PAGE, TICKET)

# Both rule sets name severities differently; one query reads them the same way.
FIRING = (
    "count by (severity) (label_replace("
    f'ALERTS{{alertstate="firing"}}, "severity", "$1", "{sloth.SEVERITY}", "(.+)"))'
)
BUDGET_QUERIES = {
    "sloengine": 'sloengine:slo_error_budget_remaining{slo="availability"}',
    "sloth": "slo:period_error_budget_remaining:ratio",
}


@dataclass(frozen=True)
class Case:
    """One scenario: requests and failures per minute (index i is minute i + 1)."""

    key: str
    title: str
    total: tuple[float, ...]
    bad: tuple[float, ...]
    start: int  # first incident minute (events of minute start + 1 on)
    end: int  # minute the incident ends
    error_ratio: float | None = None  # constant ratio of a step incident: Workbook times
    expect: frozenset[str] = frozenset()  # severities that should fire
    note: str = ""

    @property
    def minutes(self) -> int:
        return len(self.total)


Pattern = Callable[[int], tuple[float, float]]  # minute -> (requests, failures)


def _steady(requests: float, failures: float = 0.0) -> Pattern:
    return lambda m: (requests, failures)


def _build(
    key: str,
    title: str,
    incident: int,
    during: Pattern,
    outside: Pattern | None = None,
    **extra: Any,
) -> Case:
    """``outside`` (default: clean, steady) for the history and the tail, ``during`` for
    ``incident`` minutes."""
    outside = outside or _steady(RATE)
    total, bad = [], []
    for m in range(HISTORY + incident + TAIL):
        inside = HISTORY <= m < HISTORY + incident
        t, b = during(m - HISTORY) if inside else outside(m)
        total.append(t)
        bad.append(b)
    return Case(key, title, tuple(total), tuple(bad), HISTORY, HISTORY + incident, **extra)


def _trickle(failing: bool) -> Pattern:
    """Ten requests an hour, one every six minutes, as whole requests."""
    return lambda m: (1.0, 1.0 if failing else 0.0) if m % 6 == 5 else (0.0, 0.0)


def catalog() -> list[Case]:
    """The scenarios of issue #5, each with the severities that should fire."""
    return [
        _build(
            "outage",
            "full outage for 30m",
            30,
            _steady(RATE, RATE),
            error_ratio=1.0,
            expect=frozenset(SEVERITIES),
        ),
        _build(
            "burn10x",
            "10x burn (1% errors) for 30m",
            30,
            _steady(RATE, 0.01 * RATE),
            error_ratio=0.01,
        ),
        _build(
            "burn2x",
            "2x burn (0.2% errors) for 2d",
            2 * 1440,
            _steady(RATE, 0.002 * RATE),
            error_ratio=0.002,
            expect=frozenset({TICKET}),
        ),
        _build(
            "flap",
            "5% errors for 1m in every 10m, for 1d (a mean 5x burn)",
            1440,
            lambda m: (RATE, 0.05 * RATE if m % 10 == 0 else 0.0),
            expect=frozenset({TICKET}),
        ),
        _build("zero", "zero traffic for 8h overnight", 8 * 60, _steady(0.0)),
        _build(
            "trickle",
            "10 requests an hour, one fails",
            6,
            _trickle(failing=True),
            _trickle(failing=False),
            note="the Workbook rule pages on the single failure (100x over 1h); one failure "
            "on a quiet service is not an incident, so no alert is expected",
        ),
        _build(
            "spike",
            "10x traffic for 2h at a constant 0.09% errors (0.9x)",
            120,
            _steady(10 * RATE, 10 * RATE * 0.0009),
            _steady(RATE, RATE * 0.0009),
        ),
    ]


# ------------------------------------------------------------------ the exact reference


def _cumulative(values: Sequence[float]) -> list[float]:
    out = [0.0]
    for v in values:
        out.append(out[-1] + v)
    return out


def reference(
    case: Case, windows: Sequence[AlertWindow], budget: float
) -> list[tuple[AlertWindow, set[int]]]:
    """Minutes at which each pair fires under the Workbook rule on exact counts."""
    total, bad = _cumulative(case.total), _cumulative(case.bad)
    firing: list[tuple[AlertWindow, set[int]]] = [(w, set()) for w in windows]

    def burn(t: int, minutes: int) -> float:
        lo = max(0, t - minutes)
        events = total[t] - total[lo]
        return (bad[t] - bad[lo]) / events / budget if events > 0 else 0.0

    for t in range(1, case.minutes + 1):
        for w, minutes in firing:
            long_m, short_m = w.long_seconds // 60, w.short_seconds // 60
            if burn(t, long_m) > w.burn_rate and burn(t, short_m) > w.burn_rate:
                minutes.add(t)
    return firing


def by_severity(per_pair: Sequence[tuple[AlertWindow, set[int]]]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {s: set() for s in SEVERITIES}
    for w, minutes in per_pair:
        out[w.severity] |= minutes
    return out


def workbook_minutes(case: Case, windows: Sequence[AlertWindow], budget: float) -> dict[str, float]:
    """The Workbook's detection time per severity for a constant-ratio step incident."""
    out: dict[str, float] = {}
    if case.error_ratio is None:
        return out
    for w in windows:
        seconds = detection_seconds(w.burn_rate, w.long_seconds, budget, case.error_ratio)
        if seconds is not None and seconds <= (case.end - case.start) * 60:
            out[w.severity] = min(out.get(w.severity, math.inf), seconds / 60)
    return out


# ------------------------------------------------------------------------- promtool


def notation(increments: Sequence[float]) -> str:
    """A counter's values at minutes 0..n in promtool's expanding notation, run-length coded."""
    parts = []
    value, i = 0.0, 0
    n = len(increments)
    first = True
    while i < n:
        step = increments[i]
        j = i
        while j < n and increments[j] == step:
            j += 1
        run = j - i
        if first:
            parts.append(f"{number(value)}+{number(step)}x{run}")
            first = False
        else:
            parts.append(f"{number(value + step)}+{number(step)}x{run - 1}")
        value += step * run
        i = j
    return " ".join(parts)


def promtool_test(
    case: Case, rule_file: str, budget_query: str, group_order: list[str]
) -> dict[str, Any]:
    """The promtool test: the scenario's two series and a check of every minute."""
    good = [t - b for t, b in zip(case.total, case.bad, strict=True)]
    series = [
        (f'llm_requests_total{{service="{TIMING_SERVICE}", status="ok"}}', good),
        (f'llm_requests_total{{service="{TIMING_SERVICE}", status="error"}}', list(case.bad)),
    ]
    checks = [
        {"expr": FIRING, "eval_time": f"{m}m", "exp_samples": []}
        for m in range(1, case.minutes + 1)
    ]
    checks.append({"expr": budget_query, "eval_time": f"{case.minutes}m", "exp_samples": []})
    return {
        "rule_files": [rule_file],
        "evaluation_interval": "1m",
        # Without an order promtool evaluates groups in random order; Sloth's alerts then
        # read its recordings from the step before, one run in two. In file order they
        # read this step's, Sloth's best case (a real server staggers its groups).
        "group_eval_order": group_order,
        "tests": [
            {
                "name": case.key,
                "interval": "1m",
                "input_series": [{"series": s, "values": notation(v)} for s, v in series],
                "promql_expr_test": checks,
            }
        ],
    }


_FAILURE = re.compile(r'expr: "(.*)", time: (\S+),\n\s+exp: .*\n\s+got: (.*)')
_SAMPLE = re.compile(r"(\{[^}]*\}) (\S+?)(?:, |$)")


@dataclass
class PromtoolRun:
    """What promtool saw: firing minutes per severity, the budget left at the end."""

    firing: dict[str, set[int]]
    budget_left: float | None
    seconds: float


def parse_output(text: str, budget_query: str) -> tuple[dict[str, set[int]], float | None] | None:
    """promtool's report of every check that got samples; None if it reported none."""
    found = _FAILURE.findall(text)
    if not found:
        return None
    firing: dict[str, set[int]] = {s: set() for s in SEVERITIES}
    budget: float | None = None
    for expr, at, got in found:
        minute = round(parse_duration(at) / 60)
        samples = _SAMPLE.findall(got)
        if expr.replace('\\"', '"') == budget_query:
            budget = float(samples[0][1]) if samples else None
            continue
        for labels, _value in samples:
            severity = re.search(r'severity="([^"]*)"', labels)
            if severity:
                firing.setdefault(severity.group(1), set()).add(minute)
    return firing, budget


def run_case(case: Case, rules_text: str, budget_query: str, workdir: Path) -> PromtoolRun:
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yml").write_text(rules_text)
    groups = [g["name"] for g in yaml.safe_load(rules_text)["groups"]]
    doc = promtool_test(case, "rules.yml", budget_query, groups)
    (workdir / "test.yml").write_text(yaml.safe_dump(doc, sort_keys=False, width=1_000_000))
    started = time.monotonic()
    done = subprocess.run(
        [launch.PROMTOOL, "test", "rules", "test.yml"],
        cwd=workdir,
        capture_output=True,
        text=True,
        check=False,
    )
    took = time.monotonic() - started
    # Every check expects nothing, so each one that sees a sample "fails" and promtool
    # prints what it got; the budget check always gets its value.
    parsed = parse_output(done.stdout + done.stderr, budget_query)
    if parsed is None:
        output = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"promtool test rules did not run {case.key}:\n{output}")
    firing, budget = parsed
    return PromtoolRun(firing, budget, took)


# ------------------------------------------------------------------------- summaries


@dataclass
class Outcome:
    """What one rule set (or the reference) did in one scenario, minutes."""

    first: dict[str, int | None] = field(default_factory=dict)  # after the incident starts
    reset: dict[str, int | None] = field(default_factory=dict)  # after it ends
    episodes: dict[str, int] = field(default_factory=dict)
    false: dict[str, int] = field(default_factory=dict)  # episodes nobody should get
    still_firing: dict[str, bool] = field(default_factory=dict)


def _episodes(minutes: set[int]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for m in sorted(minutes):
        if runs and m == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], m)
        else:
            runs.append((m, m))
    return runs


def outcome(case: Case, firing: dict[str, set[int]], allowed: dict[str, set[int]]) -> Outcome:
    out = Outcome()
    for severity in SEVERITIES:
        minutes = firing.get(severity, set())
        after = [m for m in minutes if m > case.start]
        out.first[severity] = min(after) - case.start if after else None
        last = max(minutes, default=None)
        out.still_firing[severity] = last == case.minutes
        if last is None or last < case.end:
            out.reset[severity] = None if last is None else 0
        else:
            out.reset[severity] = last + 1 - case.end
        runs = _episodes(minutes)
        out.episodes[severity] = len(runs)
        ok = allowed.get(severity, set())
        out.false[severity] = sum(1 for a, b in runs if not any(a <= m <= b for m in ok))
    return out


def allowed_minutes(case: Case, ideal: dict[str, set[int]]) -> dict[str, set[int]]:
    """The reference's firing minutes, widened by one interval, where an alert is expected."""
    out: dict[str, set[int]] = {}
    for severity, minutes in ideal.items():
        if severity in case.expect:
            out[severity] = {m + d for m in minutes for d in (-1, 0, 1)}
    return out


@dataclass
class CaseResult:
    case: Case
    reference: Outcome
    workbook: dict[str, float]  # closed-form detection minutes, step incidents only
    runs: dict[str, tuple[Outcome, PromtoolRun]]
    reset_bound: dict[str, int]  # longest short window of a firing pair + one interval


@dataclass
class Result:
    cases: list[CaseResult]
    objective: float
    windows: list[AlertWindow]
    identical_alerts: bool  # Sloth's optimized and exact alert rules are the same
    seconds: float = 0.0


def run(out: Path, quick: bool) -> Result:
    """The part: every scenario (the full outage only, quick) on every CPU."""
    log("3. alert timing: scenarios through promtool test rules")
    return measure(out / "timing", only=("outage",) if quick else (), workers=os.cpu_count() or 2)


def markdown(result: Result) -> str:
    from bench import report

    return report.timing_markdown(result)


def measure(out: Path, *, only: Sequence[str] = (), workers: int = 2) -> Result:
    """Every scenario through promtool for sloengine and Sloth, in parallel."""
    started = time.monotonic()
    service = load(TIMING_SLOS, out / "slos", "timing")
    (obj,) = service.objectives
    texts = {"sloengine": render(service), "sloth": sloth.render([as_sloth(obj)], "optimized")}
    exact = sloth.render([as_sloth(obj)], "exact")
    windows = list(obj.active_windows())
    cases = [c for c in catalog() if not only or c.key in only]
    # Longest scenarios first, so the pool does not end on one long run.
    jobs = sorted(((c, name) for c in cases for name in texts), key=lambda j: -j[0].minutes)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(
            pool.map(
                lambda job: run_case(
                    job[0], texts[job[1]], BUDGET_QUERIES[job[1]], out / job[0].key / job[1]
                ),
                jobs,
            )
        )
    by_job = {(c.key, name): r for (c, name), r in zip(jobs, done, strict=True)}
    results = []
    for case in cases:
        per_pair = reference(case, windows, obj.error_budget)
        ideal = by_severity(per_pair)
        allowed = allowed_minutes(case, ideal)
        bound = {
            severity: max(
                (w.short_seconds // 60 + 1 for w, m in per_pair if w.severity == severity and m),
                default=0,
            )
            for severity in SEVERITIES
        }
        runs = {}
        for name in texts:
            r = by_job[(case.key, name)]
            runs[name] = (outcome(case, r.firing, allowed), r)
        results.append(
            CaseResult(
                case,
                outcome(case, ideal, allowed),
                workbook_minutes(case, windows, obj.error_budget),
                runs,
                bound,
            )
        )
    return Result(
        results,
        obj.objective or 0.0,
        windows,
        _alerts(texts["sloth"]) == _alerts(exact),
        time.monotonic() - started,
    )


def _alerts(text: str) -> list[Any]:
    doc = yaml.safe_load(text)
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]
