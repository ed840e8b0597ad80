"""Read SLO rates from Prometheus and judge them: the shell around :mod:`sloengine.status`.

Two ways to read the numbers, chosen per SLO:

* recorded: the generated rules run in Prometheus; two queries read every SLO's rates
  at every window, whatever the number of SLOs;
* raw: the rules are not loaded; each SLO's bad and total rates are computed from the
  raw series at every window, a few queries at a time.

Everything after the readings is :func:`sloengine.status.judge`, so both modes give the
same verdicts on the same rates.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sloengine import conventions as cv
from sloengine.budget import month_bounds
from sloengine.conventions import Mode
from sloengine.detectors import rules as detector_rules
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import (
    DetectorStatus,
    Reading,
    group_of,
    judge_detector,
    raw_readings,
    unavailable_detector,
)
from sloengine.durations import format_duration, parse_duration
from sloengine.model import Objective
from sloengine.prometheus import Prometheus, PrometheusError, collector_paused
from sloengine.status import Rates, Status, judge, unavailable
from sloengine.windows import windows_of

log = logging.getLogger("sloengine")


class Evaluator:
    """Reads rates from Prometheus and judges every SLO."""

    def __init__(self, prom: Prometheus, *, mode: Mode = Mode.AUTO, concurrency: int = 8) -> None:
        self.prom = prom
        self.mode = mode
        self.concurrency = concurrency
        self._needs: dict[int, tuple[Objective, frozenset[int]]] = {}

    def evaluate(self, objectives: Iterable[Objective], now: float | None = None) -> list[Status]:
        """One status per SLO (per group, for a grouped SLO); a failed query marks that
        SLO unavailable, it never raises."""
        with collector_paused():
            return self._evaluate(list(objectives), time.time() if now is None else now)

    def _evaluate(self, objectives: list[Objective], at: float) -> list[Status]:
        recorded: dict[tuple[str, str], list[Rates]] = {}
        if self.mode in (Mode.RECORDED, Mode.AUTO):
            try:
                recorded = self.recorded_rates(objectives, at)
            except PrometheusError as exc:
                return [unavailable(obj, str(exc)) for obj in objectives]
        missing = [o for o in objectives if (o.service, o.name) not in recorded]
        raw: dict[tuple[str, str], list[Rates] | str] = {}
        if missing and self.mode in (Mode.RAW, Mode.AUTO):
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                for obj, result in zip(
                    missing, pool.map(lambda o: self._raw_or_error(o, at), missing), strict=True
                ):
                    raw[(obj.service, obj.name)] = result
        out = []
        for obj in objectives:
            key = (obj.service, obj.name)
            found = recorded.get(key) or raw.get(key)
            if isinstance(found, list):
                out += [_judge(obj, rates, at) for rates in found]
            elif isinstance(found, str):
                out.append(unavailable(obj, found))
            else:
                out.append(
                    unavailable(
                        obj, "the generated rules for this SLO are not loaded in Prometheus"
                    )
                )
        return out

    def recorded_rates(
        self, objectives: list[Objective], at: float
    ) -> dict[tuple[str, str], list[Rates]]:
        """Every SLO's recorded rates (one Rates per group) in two queries sent at once,
        half the series each: the bad rates (and months to date), then the total rates
        and the sample ages. An SLO none of whose groups has every window is left out."""
        wanted = {(o.service, o.name): o for o in objectives}
        # Every rate series has a window label and no 5m base series has one (window is
        # reserved), so `or` adds every base series' timestamp, without a metric name.
        bad_rows, total_rows = self.prom.query_all(
            [
                f'{{__name__=~"{cv.BAD_RATE}|{cv.MONTH_TO_DATE}"}}',
                f"{cv.TOTAL_RATE} or timestamp({cv.BAD_BASE})",
            ],
            at,
        )
        newest: dict[tuple[str, str], float] = {}
        bad: dict[tuple[str, str], dict[Group, dict[int, float]]] = {}
        total: dict[tuple[str, str], dict[Group, dict[int, float]]] = {}
        month: dict[tuple[str, str], dict[Group, float]] = {}
        for s in bad_rows:
            labels = s.labels
            key = (labels.get(cv.SERVICE, ""), labels.get(cv.SLO, ""))
            obj = wanted.get(key)
            if obj is None:
                continue
            group = _group(obj, labels) if obj.group_by else ()
            if labels.get("__name__") == cv.MONTH_TO_DATE:
                month.setdefault(key, {})[group] = s.value
                continue
            window = labels.get(cv.WINDOW)
            if window is not None:
                bad.setdefault(key, {}).setdefault(group, {})[_seconds(window)] = s.value
        for s in total_rows:
            labels = s.labels
            key = (labels.get(cv.SERVICE, ""), labels.get(cv.SLO, ""))
            if "__name__" not in labels:  # a base series' timestamp
                newest[key] = max(newest.get(key, 0.0), s.value)
                continue
            obj = wanted.get(key)
            window = labels.get(cv.WINDOW)
            if obj is None or window is None:
                continue
            group = _group(obj, labels) if obj.group_by else ()
            total.setdefault(key, {}).setdefault(group, {})[_seconds(window)] = s.value
        out = {}
        for key, obj in wanted.items():
            by_group = bad.get(key)
            if not by_group:
                continue
            need = self._windows(obj)
            age = max(0.0, at - newest[key]) if key in newest else float("inf")
            months = month.get(key, {})
            totals = total.get(key, {})
            found = [
                Rates(
                    by_window,
                    None if obj.is_spend else totals[group],
                    Mode.RECORDED,
                    age,
                    months.get(group),
                    group=dict(group),
                )
                for group, by_window in sorted(by_group.items())
                if by_window.keys() >= need
                and (obj.is_spend or totals.get(group, {}).keys() >= need)
                and (not obj.calendar_month or group in months)
            ]
            if found:
                out[key] = found
        return out

    def _windows(self, obj: Objective) -> frozenset[int]:
        """windows_of(obj), worked out once per SLO rather than once a cycle."""
        cached = self._needs.get(id(obj))
        if cached is None or cached[0] is not obj:
            if len(self._needs) > 100_000:  # SLO files reloaded many times over
                self._needs.clear()
            cached = self._needs[id(obj)] = (obj, frozenset(windows_of(obj)))
        return cached[1]

    def raw_rates(self, obj: Objective, at: float) -> list[Rates]:
        """Bad and total rates straight from the raw series, at every window the SLO
        needs: one Rates, or one per group of a grouped SLO."""
        if not obj.group_by:
            bad: dict[int, float] = {}
            total: dict[int, float] = {}
            for seconds in windows_of(obj):
                q = obj.queries(seconds)
                bad[seconds] = _one(self.prom.query(q.bad, at))
                if q.total is not None:
                    total[seconds] = _one(self.prom.query(q.total, at))
            month = self._month(obj, at)
            return [Rates(bad, None if obj.is_spend else total, Mode.RAW, 0.0, month)]
        bads: dict[Group, dict[int, float]] = {}
        totals: dict[Group, dict[int, float]] = {}
        for seconds in windows_of(obj):
            q = obj.queries(seconds)
            for s in self.prom.query(q.bad, at):
                bads.setdefault(_group(obj, s.labels), {})[seconds] = s.value
            for s in self.prom.query(q.total, at) if q.total is not None else []:
                totals.setdefault(_group(obj, s.labels), {})[seconds] = s.value
        windows = windows_of(obj)
        # A group missing from a window had no events in it: its rate there is zero.
        return [
            Rates(
                {w: bads.get(group, {}).get(w, 0.0) for w in windows},
                None if obj.is_spend else {w: totals.get(group, {}).get(w, 0.0) for w in windows},
                Mode.RAW,
                group=dict(group),
            )
            for group in sorted(set(bads) | set(totals))
        ] or [
            Rates(
                dict.fromkeys(windows, 0.0),
                None if obj.is_spend else dict.fromkeys(windows, 0.0),
                Mode.RAW,
            )
        ]

    def _month(self, obj: Objective, at: float) -> float | None:
        """Dollars spent since 00:00 UTC on the 1st, from the raw counter (calendar months;
        a grouped SLO cannot have one, see loading.checks)."""
        if not obj.calendar_month:
            return None
        seconds = round(at - month_bounds(at)[0])
        if seconds < 1:
            return 0.0
        return _one(self.prom.query(obj.queries(seconds).bad, at)) * seconds

    def evaluate_detectors(
        self, detectors: Iterable[Detector], now: float | None = None
    ) -> list[DetectorStatus]:
        """One status per detector group (see :func:`detector_statuses`)."""
        at = time.time() if now is None else now
        return detector_statuses(self.prom, list(detectors), at, self.mode, self.concurrency)

    def _raw_or_error(self, obj: Objective, at: float) -> list[Rates] | str:
        try:
            return self.raw_rates(obj, at)
        except PrometheusError as exc:
            return str(exc)


# A group's label values, in group_by order: a sortable, hashable key.
Group = tuple[tuple[str, str], ...]


def _group(obj: Objective, labels: Mapping[str, str]) -> Group:
    return tuple((label, labels.get(label, "")) for label in obj.group_by)


def _judge(obj: Objective, rates: Rates, at: float) -> Status:
    """One SLO's verdict; if judging it fails, that SLO is unavailable and every other
    SLO in the process still pages."""
    try:
        return judge(obj, rates, at)
    except Exception as exc:  # an SLO the loader should have refused, or a bug
        log.error("cannot judge %s/%s: %s: %s", obj.service, obj.name, type(exc).__name__, exc)
        return unavailable(obj, f"cannot compute this SLO's status ({type(exc).__name__})")


def _one(samples: list[Any]) -> float:
    # Non-finite sums stay what they are: status.judge treats them as missing data.
    return sum(s.value for s in samples) if samples else 0.0


@functools.cache  # a cycle reads a handful of window labels on every one of its series
def _seconds(window: str) -> int:
    return round(parse_duration(window))


# ---------------------------------------------------------------------------- detectors

DETECTOR_INTERVAL = cv.DETECTOR_INTERVAL_SECONDS


def detector_statuses(
    prom: Prometheus, detectors: list[Detector], at: float, mode: Mode, concurrency: int = 8
) -> list[DetectorStatus]:
    """Every detector's verdict per group: from the recorded series in five queries,
    whatever the number of detectors, or (for detectors whose rules are not loaded)
    from the raw series, a few queries each. A failed query marks its detectors
    unavailable, it never raises."""
    if not detectors:
        return []
    recorded: dict[tuple[str, str], list[Reading]] = {}
    if mode in (Mode.RECORDED, Mode.AUTO):
        try:
            recorded = recorded_detector_readings(prom, detectors, at)
        except PrometheusError as exc:
            return [unavailable_detector(det, str(exc)) for det in detectors]
    missing = [d for d in detectors if (d.service, d.name) not in recorded]
    raw: dict[tuple[str, str], list[Reading] | str] = {}
    if missing and mode in (Mode.RAW, Mode.AUTO):
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            found = pool.map(lambda d: _raw_detector_or_error(prom, d, at), missing)
            for det, result in zip(missing, found, strict=True):
                raw[(det.service, det.name)] = result
    out: list[DetectorStatus] = []
    for det in detectors:
        key = (det.service, det.name)
        readings = recorded.get(key) or raw.get(key)
        if isinstance(readings, str):
            out.append(unavailable_detector(det, readings))
        elif readings is None:
            out.append(
                unavailable_detector(
                    det, "the generated rules for this detector are not loaded in Prometheus"
                )
            )
        elif not readings:
            # No group has any series: the counters are not there (yet) to compare.
            out.append(judge_detector(det, Reading(None, None, 0.0, None, Mode.RAW), 0))
        else:
            out += [judge_detector(det, r, DETECTOR_INTERVAL) for r in readings]
    return out


def recorded_detector_readings(
    prom: Prometheus, detectors: list[Detector], at: float
) -> dict[tuple[str, str], list[Reading]]:
    """Every detector's recorded recent and baseline ratios and events per group, in five
    queries whatever the number of detectors: the 5m group's three series and the hourly
    baseline events, each the newest sample within one interval and a minute (a 5m
    group's sample can be a little over Prometheus's 5m lookback old), and the samples'
    age. A detector none of whose groups has its series is left out (its rules are not
    loaded)."""
    wanted = {(d.service, d.name): d for d in detectors}
    fresh = format_duration(DETECTOR_INTERVAL + 60)
    # The hourly group's sums: the newest within two of its intervals, as the alert reads.
    hourly = format_duration(2 * cv.DETECTOR_BASELINE_INTERVAL_SECONDS)
    names = (cv.DETECTOR_RECENT, cv.DETECTOR_BASELINE, cv.DETECTOR_DENOMINATOR_RECENT)
    values: dict[tuple[str, str], dict[Group, dict[str, float]]] = {}
    for name in names:
        for s in prom.query(f"last_over_time({name}[{fresh}])", at):
            key = (s.labels.get(cv.SERVICE, ""), s.labels.get(cv.DETECTOR, ""))
            det = wanted.get(key)
            if det is not None:
                values.setdefault(key, {}).setdefault(group_of(det, s.labels), {})[name] = s.value
    events: dict[tuple[str, str], dict[Group, float]] = {}
    for s in prom.query(f"last_over_time({cv.DETECTOR_DENOMINATOR_BASELINE}[{hourly}])", at):
        key = (s.labels.get(cv.SERVICE, ""), s.labels.get(cv.DETECTOR, ""))
        det = wanted.get(key)
        if det is not None:
            events.setdefault(key, {})[group_of(det, s.labels)] = s.value
    newest: dict[tuple[str, str], float] = {}
    stamps = f"max_over_time(timestamp({cv.DETECTOR_DENOMINATOR_RECENT})[{hourly}:1m])"
    for s in prom.query(stamps, at):
        key = (s.labels.get(cv.SERVICE, ""), s.labels.get(cv.DETECTOR, ""))
        newest[key] = max(newest.get(key, 0.0), s.value)
    out: dict[tuple[str, str], list[Reading]] = {}
    for key, det in wanted.items():
        groups = {
            g: v for g, v in values.get(key, {}).items() if cv.DETECTOR_DENOMINATOR_RECENT in v
        }
        if not groups or (det.baseline is not None and key not in events):
            continue
        age = max(0.0, at - newest[key]) if key in newest else float("inf")
        out[key] = [
            Reading(
                recent=v.get(cv.DETECTOR_RECENT),
                baseline=v.get(cv.DETECTOR_BASELINE),
                recent_events=v[cv.DETECTOR_DENOMINATOR_RECENT],
                baseline_events=None
                if det.baseline is None
                else events.get(key, {}).get(group, 0.0),
                mode=Mode.RECORDED,
                group=dict(group),
                age_seconds=age,
            )
            for group, v in sorted(groups.items())
        ]
    return out


def raw_detector_readings(prom: Prometheus, det: Detector, at: float) -> list[Reading]:
    """One detector's readings per group, computed from the raw series."""
    rates = {
        name: {group_of(det, s.labels): s.value for s in prom.query(expr, at)}
        for name, expr in detector_rules.raw_queries(det).items()
    }
    return raw_readings(det, rates)


def _raw_detector_or_error(prom: Prometheus, det: Detector, at: float) -> list[Reading] | str:
    try:
        return raw_detector_readings(prom, det, at)
    except PrometheusError as exc:
        return str(exc)
