"""Detector verdicts and incidents, pure: judge_detector decides as the alert rule does,
advance_detector keeps one incident per (detector, group, version) without losing,
repeating or falsely resolving a page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sloengine import conventions as cv
from sloengine.alerting import AlertRow, AlertState, Event
from sloengine.conventions import Mode
from sloengine.detectors import rules
from sloengine.detectors.incidents import advance_detector, detector_key, wants_first_look
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import (
    Group,
    Reading,
    judge_detector,
    raw_readings,
    reading,
    unavailable_detector,
)
from sloengine.loading import load_specs
from sloengine.status import Health

DETECTORS = """\
apiVersion: sloengine/v1
service: chat
notify: {ticket: {slack_channel: "#cost"}}
slos:
  - {name: a, objective: 99, sli: {success_rate: {}}}
detectors:
  - {name: cost, kind: cost_per_call, group_by: [feature], window: 1h, baseline: 7d,
     max_increase: 20%, min_events: 200, runbook: https://r.example/cost-spike.md}
  - {name: prompt, kind: prompt_version_cost, group_by: [feature], window: 6h, baseline: 7d,
     max_increase: 50%}
  - {name: cache, kind: cache_hit_ratio, window: 6h, baseline: 7d, max_decrease: 20%}
  - {name: budget, kind: token_budget_breaches, window: 1h, max_share: 1%}
  - {name: slow, kind: tokens_per_call, window: 1h, baseline: 7d, max_increase: 50%, for: 10m}
"""


@pytest.fixture(scope="module")
def detectors(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Detector]:
    path: Path = tmp_path_factory.mktemp("det") / "chat.yaml"
    path.write_text(DETECTORS)
    (service,) = load_specs([str(path)])
    return {d.name: d for d in service.detectors}


def raw(
    recent: float | None, baseline: float | None, events: float, base_events: float | None
) -> Reading:
    return Reading(recent, baseline, events, base_events, Mode.RAW)


@pytest.mark.parametrize(
    ("name", "read", "active", "health"),
    [
        ("cost", raw(0.0128, 0.008, 1000, 50000), True, Health.OK),  # +60% > 20%
        ("cost", raw(0.0096, 0.008, 1000, 50000), False, Health.OK),  # +20% is not above
        ("cost", raw(0.00961, 0.008, 1000, 50000), True, Health.OK),  # just above +20%
        ("cost", raw(0.0128, 0.008, 199, 50000), False, Health.LOW_TRAFFIC),  # recent < min
        ("cost", raw(0.0128, 0.008, 1000, 199), False, Health.LOW_TRAFFIC),  # baseline < min
        ("cost", raw(0.0128, None, 1000, 0), False, Health.LOW_TRAFFIC),  # a new group
        ("cost", raw(None, None, 0, 0), False, Health.NO_DATA),  # zero traffic: no NaN
        ("cost", raw(0.004, 0.008, 1000, 50000), False, Health.OK),  # cheaper never fires
        ("cache", raw(0.5, 0.8, 1000, 50000), True, Health.OK),  # -37.5% < -20%
        ("cache", raw(0.7, 0.8, 1000, 50000), False, Health.OK),  # -12.5%
        ("budget", raw(0.05, None, 1000, None), True, Health.OK),  # 5% > 1%
        ("budget", raw(0.01, None, 1000, None), False, Health.OK),  # 1% is not above
        ("budget", raw(0.05, None, 99, None), False, Health.LOW_TRAFFIC),
        ("cost", raw(float("nan"), 0.008, 1000, 50000), False, Health.UNAVAILABLE),
    ],
)
def test_judge_detector_decides_as_the_alert_rule(
    detectors: dict[str, Detector], name: str, read: Reading, active: bool, health: Health
) -> None:
    status = judge_detector(detectors[name], read, 300)
    assert (status.active, status.health) == (active, health)
    assert status.state == (detectors[name].severity if active else "ok")


def test_the_change_is_recent_over_baseline_less_one(detectors: dict[str, Detector]) -> None:
    status = judge_detector(detectors["cost"], raw(0.0128, 0.008, 1000, 50000), 300)
    assert status.change == pytest.approx(0.6)
    assert status.compared == "cost per call ($)"
    assert (status.window, status.baseline_window) == ("1h", "7d")


def test_recorded_series_older_than_three_intervals_are_stale(
    detectors: dict[str, Detector],
) -> None:
    old = Reading(0.0128, 0.008, 1000, 50000, Mode.RECORDED, age_seconds=901)
    assert judge_detector(detectors["cost"], old, 300).health == Health.STALE


def test_a_reading_divides_only_by_a_denominator_above_zero() -> None:
    assert reading(5.0, 0.0, 3.0, 0.0, Mode.RAW) == Reading(None, None, 0.0, 0.0, Mode.RAW)
    assert reading(4.0, 2.0, None, None, Mode.RAW).recent == 2.0


def test_raw_readings_compare_a_new_prompt_version_with_its_group_before_it(
    detectors: dict[str, Detector],
) -> None:
    det = detectors["prompt"]
    old: Group
    new: Group
    old, new = (
        (("feature", "chat"), ("prompt_sha", "a1")),
        (("feature", "chat"), ("prompt_sha", "b2")),
    )
    other: Group = (("feature", "search"), ("prompt_sha", "a1"))
    window, baseline = det.window, det.baseline
    assert baseline is not None
    rates: dict[str, dict[Group, float]] = {
        # recent: 600 calls of the new version at $0.02, 300 of the old at $0.01
        "numerator_recent": {new: 12.0 / window, old: 3.0 / window, other: 1.0 / window},
        "denominator_recent": {new: 600.0 / window, old: 300.0 / window, other: 100.0 / window},
        # baseline: only the old version, 10,000 calls at $0.01
        "numerator_baseline": {old: 100.0 / baseline, other: 10.0 / baseline},
        "denominator_baseline": {old: 10000.0 / baseline, other: 1000.0 / baseline},
    }
    readings = {tuple(r.group.items()): r for r in raw_readings(det, rates)}
    assert readings[new].recent == pytest.approx(0.02)
    assert readings[new].baseline == pytest.approx(0.01)  # the group less the new version: old
    assert readings[new].baseline_events == pytest.approx(10000)
    # The old version, live in the baseline, is compared with the others: none here.
    assert readings[old].baseline is None
    assert judge_detector(det, readings[new], 300).active
    assert not judge_detector(det, readings[old], 300).active


def test_raw_queries_read_the_counters_the_recorded_rates_read(
    detectors: dict[str, Detector],
) -> None:
    det = detectors["cost"]
    queries = rules.raw_queries(det)
    assert queries["numerator_recent"] == det.ratio.numerator.rate(det.keys, "1h", det.selector)
    assert queries["denominator_baseline"] == (
        "sum by (feature) (rate(llm_requests_total[7d] offset 1h))"
    )
    base = next(r for r in rules.recording_rules(det) if r["record"] == cv.DETECTOR_NUMERATOR_BASE)
    assert base["expr"] == det.ratio.numerator.rate(det.keys, "5m", det.selector)
    assert set(rules.raw_queries(detectors["budget"])) == {"numerator_recent", "denominator_recent"}


CHAT = {"feature": "chat"}
FIRING = Reading(0.0128, 0.008, 1000, 50000, Mode.RAW, CHAT)
CALM = Reading(0.008, 0.008, 1000, 50000, Mode.RAW, CHAT)


def _apply(rows: dict[str, AlertRow], step_rows: tuple[AlertRow, ...]) -> dict[str, AlertRow]:
    return {**rows, **{r.key: r for r in step_rows}}


def test_a_regression_opens_one_incident_and_resolves_once(
    detectors: dict[str, Detector],
) -> None:
    det = detectors["cost"]
    rows: dict[str, AlertRow] = {}
    kinds = []
    readings = [FIRING, FIRING, CALM, CALM]
    for i, read in enumerate(readings):
        step = advance_detector(det, rows, judge_detector(det, read, 300), 1000.0 + 300 * i)
        rows = _apply(rows, step.rows)
        kinds += [n.kind for n in step.notifications]
    assert kinds == [Event.FIRING, Event.RESOLVED]
    key = detector_key("chat", "cost", CHAT)
    assert key == "chat/detector:cost{feature=chat}"
    assert rows[key].state == AlertState.INACTIVE


def test_unavailable_or_stale_data_never_resolves_a_firing_regression(
    detectors: dict[str, Detector],
) -> None:
    det = detectors["cost"]
    step = advance_detector(det, {}, judge_detector(det, FIRING, 300), 1000.0)
    rows = _apply({}, step.rows)
    for status in (
        unavailable_detector(det, "connection refused", CHAT),
        judge_detector(det, Reading(0.008, 0.008, 1000, 50000, Mode.RECORDED, CHAT, 5000), 300),
        judge_detector(det, Reading(None, None, 0, 0, Mode.RAW, CHAT), 300),
    ):
        assert advance_detector(det, rows, status, 2000.0).notifications == ()
    assert rows[detector_key("chat", "cost", CHAT)].state == AlertState.FIRING


def test_for_holds_the_page_until_the_condition_has_lasted(
    detectors: dict[str, Detector],
) -> None:
    det = detectors["slow"]  # for: 10m
    rows: dict[str, AlertRow] = {}
    told = []
    for minute in (0, 5, 10):
        status = judge_detector(det, Reading(3000, 1900, 500, 50000, Mode.RAW), 300)
        step = advance_detector(det, rows, status, 60.0 * minute)
        rows = _apply(rows, step.rows)
        told.append([n.kind for n in step.notifications])
    assert told == [[], [], [Event.FIRING]]


def test_a_restart_with_the_stored_rows_does_not_page_again(
    detectors: dict[str, Detector],
) -> None:
    det = detectors["cost"]
    first = advance_detector(det, {}, judge_detector(det, FIRING, 300), 1000.0)
    rows = _apply({}, first.rows)
    again = advance_detector(det, rows, judge_detector(det, FIRING, 300), 1300.0)
    assert again.notifications == ()
    assert not wants_first_look(rows, judge_detector(det, FIRING, 300))
    assert wants_first_look({}, judge_detector(det, FIRING, 300))


def test_the_page_names_the_detector_group_values_runbook_and_channel(
    detectors: dict[str, Detector],
) -> None:
    det = detectors["cost"]
    look = {"first_look_window": "1h", "first_look": [{"label": "model", "values": [["m", 1.0]]}]}
    step = advance_detector(det, {}, judge_detector(det, FIRING, 300), 1000.0, look=look)
    (note,) = step.notifications
    assert note.incident == "chat/detector:cost{feature=chat}/1000"
    p = note.payload
    assert p["detector"]["group"] == CHAT
    assert p["detector"]["recent"] == 0.0128 and p["detector"]["baseline"] == 0.008
    assert p["runbook_url"] == "https://r.example/cost-spike.md"
    assert p["channel"] == "#cost"
    assert p["first_look"] == look["first_look"]


def test_alertmanager_gets_the_firing_detector_alert_held_while_blind_then_resolved(
    detectors: dict[str, Detector],
) -> None:
    from sloengine import amalerts

    det = detectors["cost"]
    by_key = {(det.service, det.name): det}
    firing = judge_detector(det, FIRING, 300)
    rows = _apply({}, advance_detector(det, {}, firing, 1000.0).rows)

    def send(status: Any, last: dict[str, Any], now: float) -> dict[str, Any]:
        return amalerts.detector_outgoing(
            by_key, [status], rows, last, now, interval=60, prometheus_url="http://p:9090"
        )

    sent = send(firing, {}, 1000.0)
    (alert,) = sent.values()
    assert alert.labels == {
        "service": "chat",
        "detector": "cost",
        "severity": "ticket",
        "feature": "chat",
        "alertname": "SLODetectorRegression",
    }
    assert alert.annotations["summary"] == "chat cost: cost per call ($) +60.0% for feature=chat"
    assert alert.annotations["runbook_url"] == "https://r.example/cost-spike.md"
    assert (alert.starts_at, alert.ends_at, alert.firing) == (1000.0, 1240.0, True)
    # Prometheus unreachable: the alert is re-sent with a fresh lease, never resolved.
    held = send(unavailable_detector(det, "down", CHAT), sent, 1060.0)
    assert [(a.firing, a.ends_at) for a in held.values()] == [(True, 1300.0)]
    # Back to normal: the scheduler resolves the row, Alertmanager hears it resolved.
    calm = judge_detector(det, CALM, 300)
    rows = _apply(rows, advance_detector(det, rows, calm, 1120.0).rows)
    resolved = send(calm, held, 1120.0)
    assert [(a.firing, a.ends_at) for a in resolved.values()] == [(False, 1120.0)]


def test_the_backtest_replay_fires_within_the_window_and_resets_after_the_rollback(
    detectors: dict[str, Detector],
) -> None:
    from sloengine.backtest.detectors import DetectorHistory, replay_detector

    det = detectors["cost"]  # 1h against 7d, +20%, 200 calls
    step, start = 300, 1_000_000_000.0
    n = (8 * 86400 + 6 * 3600) // step
    begins, ends = (8 * 86400) // step, (8 * 86400 + 3 * 3600) // step  # 3h of +60%
    calls = [300.0] * n
    cost = [3.0 * (1.6 if begins <= i < ends else 1.0) for i in range(n)]
    group: Group = (("feature", "chat"),)
    history = DetectorHistory(
        start, step, {"numerator": {group: cost}, "denominator": {group: calls}}
    )
    result = replay_detector(det, history, start + 7 * 86400 + 7200)
    (episode,) = result.episodes
    assert episode.group == CHAT
    began, rolled_back = start + begins * step, start + ends * step
    assert began < episode.fired_at <= began + det.window + 300
    assert episode.resolved_at is not None
    assert rolled_back < episode.resolved_at <= rolled_back + det.window + 300
    assert episode.peak_change == pytest.approx(0.6, abs=0.01)
