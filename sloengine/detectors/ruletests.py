"""``promtool test rules`` cases that prove each detector fires on the regression it is
for and stays silent on clean traffic.

Per detector, on two groups (the regression is planted on the first only):

- a planted regression after a clean history as long as both windows fires within the
  recent window plus one evaluation interval, only for the group it hit (and, for
  ``prompt_version_cost``, the new version), and resets within the recent window plus
  an interval after it is rolled back. The regressions are the incidents of the seed
  articles: cost per call +60% (a retry loop), a new prompt version at twice the cost
  on one feature, the cache hit ratio falling from 80% to 50%, tokens per call
  doubling, 5% of calls over their token budget (each larger when the detector's
  threshold asks for more);
- a clean history with a 20:1 day/night cycle and a tenfold traffic spike at a constant
  ratio (and, for ``prompt_version_cost``, a new version at the same cost) stays silent;
- the same regression on traffic below ``min_events`` per window stays silent;
- zero traffic fires nothing and records no ratio (no NaN).

Rules run every 5 minutes (the detectors' interval) over input series sampled each
minute, so a week of history costs promtool about two thousand evaluations.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sloengine import conventions as cv
from sloengine.detectors.model import Detector, Direction
from sloengine.detectors.rules import alert_annotations, rule_file_name, rule_groups, template_query
from sloengine.detectors.spec import DetectorKind
from sloengine.durations import format_duration
from sloengine.inputs import labels_for
from sloengine.model import Service
from sloengine.promql import labels as label_matchers
from sloengine.promql import number
from sloengine.ruletests import RULES_SUFFIX, TEST_SUFFIX, file_stem, own_rules, proof_file

INTERVAL_MINUTES = cv.DETECTOR_INTERVAL_SECONDS // 60
BASELINE_INTERVAL = cv.DETECTOR_BASELINE_INTERVAL_SECONDS
# Input samples as far apart as the rules' evaluations: promtool's cost is its samples.
INPUT_MINUTES = INTERVAL_MINUTES
OLD_VERSION, NEW_VERSION = "v1", "v2"
# The clean value of each kind's ratio, and the regression planted on it (when the
# detector's threshold allows: otherwise one well past the threshold).
CLEAN = {
    DetectorKind.COST_PER_CALL: 0.01,
    DetectorKind.PROMPT_VERSION_COST: 0.01,
    DetectorKind.TOKENS_PER_CALL: 1200.0,
    DetectorKind.CACHE_HIT_RATIO: 0.8,
}
PLANTED_FACTOR = {
    DetectorKind.COST_PER_CALL: 1.6,  # a retry loop: +60%
    DetectorKind.PROMPT_VERSION_COST: 2.0,  # a prompt version at twice the cost
    DetectorKind.TOKENS_PER_CALL: 2.0,  # tokens per call doubling
    DetectorKind.CACHE_HIT_RATIO: 0.5 / 0.8,  # cache hits falling from 80% to 50%
}
PLANTED_SHARE = 0.05  # 5% of calls over their token budget


@dataclass(frozen=True)
class Stretch:
    """Some minutes of one group's traffic: denominator units a minute and the ratio."""

    minutes: int
    per_minute: float
    ratio: float
    version: str = OLD_VERSION


def clean_ratio(det: Detector) -> float:
    if det.direction is Direction.SHARE:
        return det.threshold / 2
    return CLEAN[det.kind]


def planted_ratio(det: Detector) -> float:
    """The regression: the seed's incident, or one twice as far as the threshold."""
    if det.direction is Direction.SHARE:
        return PLANTED_SHARE if 2 * det.threshold <= PLANTED_SHARE else min(1.0, 2 * det.threshold)
    factor = PLANTED_FACTOR[det.kind]
    if det.direction is Direction.INCREASE and factor - 1 < 1.5 * det.threshold:
        factor = 1 + 2 * det.threshold
    if det.direction is Direction.DECREASE and 1 - factor < 1.5 * det.threshold:
        factor = 1 - (1 + det.threshold) / 2
    return CLEAN[det.kind] * factor


def _minutes(seconds: int) -> int:
    return math.ceil(seconds / 60)


def _volume(det: Detector) -> float:
    """Denominator units a minute: each window holds at least four times ``min_events``."""
    return max(100.0, math.ceil(4 * det.min_events / _minutes(det.window)))


def _expanding(steps: list[tuple[int, float]]) -> str:
    """promtool's expanding notation for a counter sampled every INPUT_MINUTES, rising by
    ``step`` a minute over each stretch of minutes (all multiples of INPUT_MINUTES)."""
    parts, value = [], 0.0
    for i, (minutes, per_minute) in enumerate(steps):
        samples = minutes // INPUT_MINUTES
        step = round(per_minute * INPUT_MINUTES, 9)
        if i == 0:
            parts.append(f"{number(value)}+{number(step)}x{samples}")
        elif samples:
            parts.append(f"{number(round(value + step, 9))}+{number(step)}x{samples - 1}")
        value += step * samples
    return " ".join(parts)


def _group_labels(det: Detector, group: int) -> dict[str, str]:
    return {label: f"{label}-{group}" for label in det.group_by}


def _series(det: Detector, group: int, stretches: list[Stretch]) -> list[dict[str, str]]:
    """Input series of one group: the numerator's counters and the denominator's."""
    out = []
    versions = [None] if det.version_label is None else sorted({s.version for s in stretches})
    for version in versions:
        labels = _group_labels(det, group)
        if det.version_label is not None and version is not None:
            labels[det.version_label] = version

        def mine(s: Stretch, version: str | None = version) -> bool:
            return version is None or s.version == version

        names = det.ratio.numerator.names
        for name in names:
            at = {**labels_for(det.selector, det.ratio.numerator.matchers), **labels}
            steps = [
                (s.minutes, s.per_minute * s.ratio / len(names) if mine(s) else 0)
                for s in stretches
            ]
            out.append({"series": _notation(name, at), "values": _expanding(steps)})
        for name in det.ratio.denominator.names:
            at = {**labels_for(det.selector, det.ratio.denominator.matchers), **labels}
            steps = [(s.minutes, s.per_minute if mine(s) else 0) for s in stretches]
            out.append({"series": _notation(name, at), "values": _expanding(steps)})
    return out


def _notation(name: str, labels: dict[str, str]) -> str:
    return f"{name}{{{label_matchers(labels)}}}" if labels else name


def _alerts_query(det: Detector) -> str:
    wanted = {"alertname": cv.DETECTOR_ALERT_NAME, "alertstate": "firing", **_ids(det)}
    return "ALERTS{" + label_matchers(wanted) + "}"


def _ids(det: Detector) -> dict[str, str]:
    return {cv.SERVICE: det.service, cv.DETECTOR: det.name}


def _firing(det: Detector, group: int, version: str | None = None) -> dict[str, Any]:
    labels = {
        **det.labels,
        "alertname": cv.DETECTOR_ALERT_NAME,
        "alertstate": "firing",
        **_ids(det),
        cv.SEVERITY: det.severity.value,
        **_group_labels(det, group),
    }
    if det.version_label is not None and version is not None:
        labels[det.version_label] = version
    return {"labels": "ALERTS{" + label_matchers(labels) + "}", "value": 1}


def _check(query: str, minutes: int, samples: list[dict[str, Any]]) -> dict[str, Any]:
    return {"expr": query, "eval_time": f"{minutes}m", "exp_samples": samples}


def _history(det: Detector) -> int:
    """Minutes of clean traffic that fill both windows."""
    return _minutes(det.window + (det.baseline or 0)) + 2 * INTERVAL_MINUTES


def _short_history(det: Detector) -> int:
    """Minutes of clean traffic before a planted regression: the recent window and at
    least as much baseline again (the clean test fills the whole baseline), so that
    promtool runs the case in a fraction of the full history's evaluations."""
    return min(_history(det), 2 * _minutes(det.window) + 2 * _minutes(BASELINE_INTERVAL))


def _regressed(
    det: Detector, clean: float, bad: float, volume: float, minutes: int
) -> list[Stretch]:
    if det.kind == DetectorKind.PROMPT_VERSION_COST:
        return [Stretch(minutes, volume, bad, NEW_VERSION)]
    return [Stretch(minutes, volume, bad)]


def regression_test(det: Detector) -> dict[str, Any]:
    history, window = _short_history(det), _minutes(det.window)
    fire_at = history + window + INTERVAL_MINUTES + _minutes(det.for_seconds)
    rollback = fire_at + INTERVAL_MINUTES
    reset_at = rollback + window + INTERVAL_MINUTES
    end = reset_at + INTERVAL_MINUTES
    volume, clean, bad = _volume(det), clean_ratio(det), planted_ratio(det)
    # Five quiet minutes between: the 5m sample at the boundary then counts nothing, in
    # whichever window a Prometheus puts it (2.x ranges include both ends, 3.x only the
    # newest), so the page's numbers are exact.
    hit = [
        Stretch(history, volume, clean),
        Stretch(INTERVAL_MINUTES, 0.0, clean),
        *_regressed(det, clean, bad, volume, rollback - history - INTERVAL_MINUTES),
        Stretch(end - rollback, volume, clean),
    ]
    spared = [Stretch(end, volume, clean)]
    version = NEW_VERSION if det.kind == DetectorKind.PROMPT_VERSION_COST else None
    query = _alerts_query(det)
    case: dict[str, Any] = {
        "name": (
            f"{det.service}/{det.name}: {_what(det, bad)} on one group after a clean "
            f"{format_duration(history * 60)} fires within the {format_duration(det.window)} "
            "window plus an interval, for that group only, and resets within the window "
            "plus an interval after the rollback"
        ),
        "interval": f"{INPUT_MINUTES}m",
        "input_series": _series(det, 1, hit) + (_series(det, 2, spared) if det.group_by else []),
        "promql_expr_test": [
            _check(query, history, []),
            _check(query, fire_at, [_firing(det, 1, version)]),
            _check(query, reset_at, []),
        ],
    }
    # The page's numbers, once the recent window holds only regressed calls and the
    # baseline window before it none (promtool runs the hourly group every evaluation).
    if not det.for_seconds:
        labels = {**det.labels, **_ids(det), cv.SEVERITY: det.severity.value}
        labels |= _group_labels(det, 1)
        if det.version_label is not None and version is not None:
            labels[det.version_label] = version
        case["alert_rule_test"] = [
            {
                "eval_time": f"{fire_at}m",
                "alertname": cv.DETECTOR_ALERT_NAME,
                "exp_alerts": [
                    {"exp_labels": labels, "exp_annotations": _expanded(det, labels, bad, clean)}
                ],
            }
        ]
    return case


def _expanded(
    det: Detector, labels: dict[str, str], recent: float, baseline: float
) -> dict[str, str]:
    """The alert's annotations as Prometheus expands them for these values."""
    value = recent if det.direction is Direction.SHARE else recent / baseline - 1
    out = {}
    for key, text in alert_annotations(det).items():
        text = text.replace(template_query(det, cv.DETECTOR_RECENT), _go_g(recent))
        text = text.replace(template_query(det, cv.DETECTOR_BASELINE), _go_g(baseline))
        text = text.replace("{{ $value | humanizePercentage }}", _humanize_percentage(value))
        for k in det.keys:
            text = text.replace(f"{{{{ $labels.{k} }}}}", labels[k])
        out[key] = text.replace('{{ "{{" }}', "{{")
    return out


def _go_g(value: float) -> str:
    """Go's ``printf "%.4g"`` (the same as Python's for these magnitudes)."""
    return f"{value:.4g}"


def _humanize_percentage(ratio: float) -> str:
    """Prometheus' humanizePercentage for a change of at least 1%."""
    return f"{ratio * 100:.4g}%"


def _what(det: Detector, bad: float) -> str:
    clean = clean_ratio(det)
    if det.direction is Direction.SHARE:
        return f"{number(round(bad * 100, 4))}% of calls over budget"
    if det.kind == DetectorKind.PROMPT_VERSION_COST:
        return f"a new {det.version_label} at {number(round(bad / clean, 4))}x the cost per call"
    change = round((bad / clean - 1) * 100, 4)
    noun = {
        DetectorKind.COST_PER_CALL: "cost per call",
        DetectorKind.TOKENS_PER_CALL: "tokens per call",
        DetectorKind.CACHE_HIT_RATIO: "the cache hit ratio",
    }[det.kind]
    return f"{noun} {'+' if change > 0 else ''}{number(change)}%"


def _cycle(minute: int) -> float:
    """Traffic at ``minute`` of the day: 1 at 03:00 and 20 at 15:00 (20:1 day/night)."""
    hour = minute // 60 % 24
    return 1 + 19 * (1 - math.cos(2 * math.pi * (hour - 3) / 24)) / 2


def clean_test(det: Detector) -> dict[str, Any]:
    history = _history(det)
    watched = max(24 * 60, _minutes(det.window))
    end = history + watched
    spike = history + watched // 2
    volume, clean = _volume(det), clean_ratio(det)
    stretches = []
    for start in range(0, end, 60):
        factor = _cycle(start) * (10 if spike <= start < spike + 60 else 1)
        version = (
            NEW_VERSION
            if det.kind == DetectorKind.PROMPT_VERSION_COST and start >= history
            else OLD_VERSION
        )
        stretches.append(Stretch(min(60, end - start), volume * factor, clean, version))
    query = _alerts_query(det)
    checks = [_check(query, at, []) for at in range(history, end + 1, max(60, watched // 12))]
    rollout = (
        f", a new {det.version_label} at the same cost"
        if det.kind == DetectorKind.PROMPT_VERSION_COST
        else ""
    )
    return {
        "name": (
            f"{det.service}/{det.name}: clean traffic with a 20:1 day/night cycle, a tenfold "
            f"spike{rollout} and a constant ratio stays silent"
        ),
        "interval": f"{INPUT_MINUTES}m",
        "input_series": _series(det, 1, stretches)
        + (_series(det, 2, stretches) if det.group_by else []),
        "promql_expr_test": checks,
    }


def low_traffic_test(det: Detector) -> dict[str, Any] | None:
    if det.min_events <= 1:
        return None
    history, window = _short_history(det), _minutes(det.window)
    end = history + window + 2 * INTERVAL_MINUTES
    thin = det.min_events / 2 / window
    clean, bad = clean_ratio(det), planted_ratio(det)
    stretches = [Stretch(history, thin, clean), *_regressed(det, clean, bad, thin, end - history)]
    return {
        "name": (
            f"{det.service}/{det.name}: {_what(det, bad)} with half of min_events "
            f"({det.min_events}) in the window stays silent"
        ),
        "interval": f"{INPUT_MINUTES}m",
        "input_series": _series(det, 1, stretches),
        "promql_expr_test": [_check(_alerts_query(det), end, [])],
    }


def zero_test(det: Detector) -> dict[str, Any]:
    end = _minutes(det.window) + 6 * INTERVAL_MINUTES
    stretches = [Stretch(end, 0.0, 0.0)]
    ids = "{" + label_matchers(_ids(det)) + "}"
    return {
        "name": f"{det.service}/{det.name}: zero traffic fires nothing and records no ratio",
        "interval": f"{INPUT_MINUTES}m",
        "input_series": _series(det, 1, stretches),
        "promql_expr_test": [
            _check(_alerts_query(det), end, []),
            _check(cv.DETECTOR_RECENT + ids, end, []),
        ],
    }


def detector_tests(det: Detector) -> list[dict[str, Any]]:
    tests = [regression_test(det), clean_test(det)]
    low = low_traffic_test(det)
    if low is not None:
        tests.append(low)
    return [*tests, zero_test(det)]


# A detector's proof files, beside the SLOs' in the tests directory (``DIR/*.test.yml``
# runs them all): its own two groups and its cases, at the detectors' interval.
DETECTOR_SUFFIX = ".detector"


def render_files(service: Service) -> dict[str, str]:
    """Per detector, ``<service>.<detector>.detector.rules.yml`` (its groups alone) and
    ``<service>.<detector>.detector.test.yml``: file name to text. A detector no series
    can satisfy has none (:func:`untested` says why)."""
    files: dict[str, str] = {}
    rule_file = rule_file_name(service.name)
    for det in service.detectors:
        try:
            cases = detector_tests(det)
        except ValueError:  # no series satisfies the detector's selectors
            continue
        what = f"detector {det.service}/{det.name}"
        stem = file_stem(det.service, det.name) + DETECTOR_SUFFIX
        rules = stem + RULES_SUFFIX
        files[rules] = own_rules(service, what, rule_groups((det,)), rule_file)
        interval = format_duration(cv.DETECTOR_INTERVAL_SECONDS)
        files[stem + TEST_SUFFIX] = proof_file(service, what, rules, interval, cases)
    return files


def untested(service: Service) -> list[str]:
    """``service/detector: reason`` for each detector that gets no generated proofs."""
    notes = []
    for det in service.detectors:
        try:
            detector_tests(det)
        except ValueError as exc:
            notes.append(f"{det.service}/{det.name}: {exc}")
    return notes
