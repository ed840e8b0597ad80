"""The watch loop: evaluate, advance alert state, notify, and never fall over.

Each cycle reads every SLO's status (:mod:`sloengine.evaluate`), decides what moves
(:mod:`sloengine.alerting`, pure), writes the new alert rows and their notifications to
the store in one transaction, then delivers from the outbox. Every failure is caught,
counted and logged: one bad cycle never stops the next.
"""

from __future__ import annotations

import gc
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sloengine import alerting
from sloengine import conventions as cv
from sloengine.alerting import AlertRow, AlertState, Sight
from sloengine.amclient import AlertmanagerSender
from sloengine.delivery import MAX_ATTEMPTS, DeliveryError, Notifier, retry_delay
from sloengine.detectors.incidents import advance_detector, detector_key, wants_first_look
from sloengine.detectors.model import Detector
from sloengine.detectors.rules import extra_what
from sloengine.detectors.verdict import DetectorStatus
from sloengine.evaluate import Evaluator
from sloengine.firstlook import detector_first_look, first_look
from sloengine.model import Objective
from sloengine.state import Store
from sloengine.status import Health, Status

if TYPE_CHECKING:
    from sloengine.server import Pages

log = logging.getLogger("sloengine")


@dataclass(frozen=True)
class Cycle:
    statuses: list[Status]
    blind: bool
    delivered: int
    at: float = 0.0  # when the statuses were read
    detectors: list[DetectorStatus] = field(default_factory=list)


class EngineMetrics:
    """The scheduler's own metrics and per-SLO gauges, served on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.cycles = Counter(
            "sloengine_cycles", "Evaluation cycles by result", ["result"], registry=r
        )
        self.duration = Histogram(
            "sloengine_cycle_duration_seconds", "Time to evaluate every SLO once", registry=r
        )
        self.requests = Counter(
            "sloengine_prometheus_requests", "Queries sent to Prometheus", registry=r
        )
        self.failures = Gauge(
            "sloengine_consecutive_failed_cycles",
            "Cycles in a row with no SLO readable",
            registry=r,
        )
        self.last_success = Gauge(
            "sloengine_last_success_timestamp_seconds", "End of the last good cycle", registry=r
        )
        self.outbox = Gauge(
            "sloengine_outbox_pending", "Notifications not yet delivered", registry=r
        )
        self.dead_letters = Gauge(
            "sloengine_outbox_failed",
            "Notifications given up on (a permanent delivery error or too many attempts)",
            registry=r,
        )
        self.delivery_failing = Gauge(
            "sloengine_delivery_failing",
            "1 while the last delivery attempt failed permanently (revoked token, wrong channel)",
            registry=r,
        )
        self.crashed = Gauge(
            "sloengine_consecutive_crashed_cycles",
            "Cycles in a row that ended in an unexpected error (state database, a bug)",
            registry=r,
        )
        self.alertmanager_failures = Counter(
            "sloengine_alertmanager_post_failures",
            "Posts of the alerts an Alertmanager did not take (run --alertmanager)",
            ["alertmanager"],
            registry=r,
        )
        self.slos = SLOGauges()
        r.register(self.slos)

    def observe(self, statuses: list[Status], incidents: dict[str, AlertRow]) -> None:
        self.slos.observe(statuses, incidents)


@dataclass(frozen=True)
class GaugeValues:
    """The per-SLO gauges' values. A grouped SLO shows its worst group (least budget,
    fastest burn, most severe alert, least healthy), so the gauges keep their labels and
    meaning."""

    remaining: dict[tuple[str, str], float]
    burns: dict[tuple[str, str, str], float]
    states: dict[tuple[str, str], int]
    healths: dict[tuple[str, str], Health]


def gauge_values(statuses: list[Status], incidents: dict[str, AlertRow]) -> GaugeValues:
    remaining: dict[tuple[str, str], float] = {}
    burns: dict[tuple[str, str, str], float] = {}
    states: dict[tuple[str, str], int] = {}
    seen: dict[tuple[str, str], set[Health]] = {}
    for s in statuses:
        if s.error_budget_remaining is not None:
            remaining[s.key] = min(remaining.get(s.key, math.inf), s.error_budget_remaining)
        for window, value in s.burn_rates.items():
            at = (*s.key, window)
            burns[at] = max(burns.get(at, -math.inf), value)
        row = incidents.get(alerting.incident_key(s.service, s.slo, s.group))
        rank = row.severity.rank if row is not None and row.state == AlertState.FIRING else 0
        states[s.key] = max(states.get(s.key, 0), rank)
        seen.setdefault(s.key, set()).add(s.health)
    healths = {
        key: next((h for h in reversed(Health) if h in found), Health.OK)
        for key, found in seen.items()
    }
    return GaugeValues(remaining, burns, states, healths)


class SLOGauges(Collector):
    """The per-SLO gauges, worked out from the last cycle's statuses when /metrics is
    read: at 10,000 SLOs a cycle would otherwise set 150,000 gauges, a seventh of its
    time, most of them overwritten before anyone reads them. An SLO the last cycle did
    not read (unavailable, or gone from the files) has no budget or burn value rather
    than a stale one."""

    def __init__(self) -> None:
        self._last: tuple[list[Status], dict[str, AlertRow]] = ([], {})

    def observe(self, statuses: list[Status], incidents: dict[str, AlertRow]) -> None:
        self._last = (statuses, incidents)  # one assignment: a scrape sees either cycle

    def collect(self) -> Iterator[Metric]:
        values = gauge_values(*self._last)
        ids = [cv.SERVICE, cv.SLO]
        remaining = GaugeMetricFamily(
            "sloengine_slo_error_budget_remaining", "Share of the error budget left", labels=ids
        )
        for key, value in values.remaining.items():
            remaining.add_metric(key, value)
        burn = GaugeMetricFamily(
            "sloengine_slo_burn_rate", "Burn rate per window", labels=[*ids, cv.WINDOW]
        )
        for at, value in values.burns.items():
            burn.add_metric(at, value)
        state = GaugeMetricFamily("sloengine_slo_alert_state", "0 ok, 1 ticket, 2 page", labels=ids)
        for key, rank in values.states.items():
            state.add_metric(key, rank)
        healthy = GaugeMetricFamily(
            "sloengine_slo_data_healthy",
            "1 when the SLO's data is healthy",
            labels=[*ids, "health"],
        )
        for key, worst in values.healths.items():
            for health in Health:
                healthy.add_metric([*key, str(health.value)], 1 if health == worst else 0)
        yield from (remaining, burn, state, healthy)


class Engine:
    """The scheduler's cycle: the shell that applies :mod:`sloengine.alerting`'s decisions."""

    def __init__(
        self,
        objectives: list[Objective],
        evaluator: Evaluator,
        store: Store,
        notifier: Notifier,
        *,
        blind_after: int = 3,
        renotify: float = 0,
        clock: Callable[[], float] = time.time,
        alertmanager: AlertmanagerSender | None = None,
        detectors: tuple[Detector, ...] = (),
    ) -> None:
        self.objectives = {o.key: o for o in objectives}
        self.detectors = {(d.service, d.name): d for d in detectors}
        self.evaluator = evaluator
        self.store = store
        self.notifier = notifier
        self.blind_after = blind_after
        self.clock = clock
        self.metrics = EngineMetrics()
        self.last: Cycle | None = None
        self.renotify = renotify
        self.page_channels = alerting.page_channels(objectives)
        self.crashes = 0
        self.last_crash = ""
        # With Alertmanager, the alert state goes there each cycle and Alertmanager
        # notifies; the notifier only prints.
        self.alertmanager = alertmanager

    def run_cycle(self) -> Cycle | None:
        """One cycle that never raises: what the schedule runs. A crash (a corrupted or
        deleted state database, a bug) is logged, counted and turns /healthz unhealthy
        until a cycle succeeds again."""
        try:
            cycle = self.cycle()
        except Exception as exc:  # the scheduler outlives any single bad cycle
            self.crashes += 1
            self.last_crash = f"{type(exc).__name__}: {exc}"
            self.metrics.crashed.set(self.crashes)
            self.metrics.cycles.labels("crashed").inc()
            log.error(
                "evaluation cycle crashed (%d in a row): %s; the next one runs on schedule",
                self.crashes,
                self.last_crash,
            )
            return None
        self.crashes, self.last_crash = 0, ""
        self.metrics.crashed.set(0)
        return cycle

    def cycle(self) -> Cycle:
        """One evaluation; failures of Prometheus and Slack are caught, counted and logged."""
        self.store.check()
        started = self.clock()
        before = self.evaluator.prom.requests
        statuses = self.evaluator.evaluate(self.objectives.values(), started)
        found = self.evaluator.evaluate_detectors(self.detectors.values(), started)
        self.metrics.requests.inc(self.evaluator.prom.requests - before)
        blind = alerting.blind(statuses)
        rows = self.store.alerts()  # nothing writes them before the transaction below
        looks = self.first_looks(statuses, started, rows)
        detector_looks = self.detector_looks(found, started, rows)
        with self.store.transaction() as db:
            self._track_sight(db, statuses, started)
            for status in statuses:
                step = alerting.advance(
                    self.objectives[status.key],
                    rows,
                    status,
                    started,
                    renotify=self.renotify,
                    look=looks.get(alerting.incident_key(*status.key, status.group)),
                )
                for row in step.rows:
                    self.store.put_alert(db, row)
                for note in step.notifications:
                    self.store.enqueue(db, note.kind, note.incident, note.payload)
            self._advance_detectors(db, rows, found, started, detector_looks)
        delivered = self.deliver()
        incidents = self.store.alerts()
        if self.alertmanager is not None:
            failed = self.alertmanager.send(
                self.objectives, statuses, incidents, started, self.store, self.detectors, found
            )
            for url in self.alertmanager.urls:
                self.metrics.alertmanager_failures.labels(url).inc(1 if url in failed else 0)
        self.metrics.observe(statuses, incidents)
        self.metrics.cycles.labels("blind" if blind else "ok").inc()
        self.metrics.duration.observe(self.clock() - started)
        self.metrics.outbox.set(self.store.pending_count())
        self.metrics.dead_letters.set(len(self.store.failed()))
        self.metrics.delivery_failing.set(1 if self.store.get("delivery_failure") else 0)
        if not blind:
            self.metrics.last_success.set(self.clock())
        self.last = Cycle(statuses, blind, delivered, started, found)
        return self.last

    def _advance_detectors(
        self,
        db: Any,
        rows: dict[str, AlertRow],
        found: list[DetectorStatus],
        now: float,
        looks: dict[str, dict[str, Any]],
    ) -> None:
        """Each detector group's alert and incident, in the cycle's transaction."""
        for status in found:
            step = advance_detector(
                self.detectors[status.key],
                rows,
                status,
                now,
                renotify=self.renotify,
                look=looks.get(detector_key(*status.key, status.group)),
            )
            for row in step.rows:
                self.store.put_alert(db, row)
            for note in step.notifications:
                self.store.enqueue(db, note.kind, note.incident, note.payload)

    def detector_looks(
        self, found: list[DetectorStatus], now: float, rows: dict[str, AlertRow]
    ) -> dict[str, dict[str, Any]]:
        """For detector groups about to open an incident: which labels carry the extra
        cost, by incident key."""
        wanted = [s for s in found if wants_first_look(rows, s)]
        with ThreadPoolExecutor(max_workers=self.evaluator.concurrency) as pool:
            looks = list(
                pool.map(
                    lambda s: detector_first_look(
                        self.evaluator.prom, self.detectors[s.key], s, now
                    ),
                    wanted,
                )
            )
        return {
            detector_key(*s.key, s.group): {
                "first_look_window": s.window,
                "first_look_what": extra_what(self.detectors[s.key]),
                "first_look": [{"label": x.label, "values": x.values} for x in slices],
            }
            for s, slices in zip(wanted, looks, strict=True)
        }

    def _track_sight(self, db: Any, statuses: list[Status], now: float) -> None:
        before = Sight(int(self.store.get("failed_cycles", "0")), self.store.get("blind_incident"))
        sight, notes = alerting.track_sight(
            before, statuses, now, blind_after=self.blind_after, channels=self.page_channels
        )
        self.store.set(db, "failed_cycles", str(sight.failed_cycles))
        self.store.set(db, "blind_incident", sight.blind_incident)
        self.metrics.failures.set(sight.failed_cycles)
        if sight.failed_cycles:
            log.warning(
                "evaluation cycle failed (%d in a row): %s",
                sight.failed_cycles,
                "; ".join(alerting.errors(statuses)),
            )
        for note in notes:
            self.store.enqueue(db, note.kind, note.incident, note.payload)

    def first_looks(
        self, statuses: list[Status], now: float, rows: dict[str, AlertRow]
    ) -> dict[str, dict[str, Any]]:
        """For SLOs (or groups) about to page or escalate: the label values behind their
        bad events, by incident key."""
        wanted: list[tuple[str, Objective, str]] = []
        for status in statuses:
            window = alerting.wants_first_look(rows, status)
            if window is not None:
                key = alerting.incident_key(*status.key, status.group)
                wanted.append((key, self.objectives[status.key].in_group(status.group), window))
        # Many SLOs can start burning in one cycle: look at them through the evaluator's pool.
        with ThreadPoolExecutor(max_workers=self.evaluator.concurrency) as pool:
            looks = list(
                pool.map(lambda w: first_look(self.evaluator.prom, w[1], w[2], now), wanted)
            )
        return {
            key: {
                "first_look_window": window,
                "first_look": [{"label": x.label, "values": x.values} for x in slices],
            }
            for (key, _, window), slices in zip(wanted, looks, strict=True)
        }

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless evaluation has been blind for ``blind_after`` cycles, the last
        cycle crashed, or pages cannot be delivered at all."""
        if self.crashes:
            return False, {"crashed_cycles": self.crashes, "last_crash": self.last_crash}
        failures = int(self.store.get("failed_cycles", "0"))
        failing = self.store.get("delivery_failure")
        detail: dict[str, Any] = {
            "failed_cycles": failures,
            "outbox_pending": self.store.pending_count(),
            "outbox_failed": len(self.store.failed()),
            "slos": len(self.objectives),
        }
        if failing:
            detail["delivery_failure"] = failing
        if self.last is not None:
            detail["last_cycle_blind"] = self.last.blind
        return failures < self.blind_after and not failing, detail

    def deliver(self) -> int:
        """Send what the outbox holds; transient failures wait with backoff and jitter."""
        sent = 0
        for message in self.store.due(self.clock()):
            if message.attempts >= MAX_ATTEMPTS:
                log.error(
                    "notification %d given up after %d attempts", message.id, message.attempts
                )
                self.store.give_up(message.id, f"gave up after {message.attempts} attempts")
                continue
            self.store.attempting(message.id)
            try:
                self.notifier.send(message)
            except DeliveryError as exc:
                if exc.permanent:
                    log.error("notification %d not deliverable: %s", message.id, exc)
                    self.store.give_up(message.id, str(exc))
                    self.store.put("delivery_failure", str(exc))
                    continue
                delay = retry_delay(exc, message.attempts, random.uniform(1, 1.5))
                log.warning("notification %d will be retried in %.0fs: %s", message.id, delay, exc)
                self.store.retry_later(message.id, self.clock() + delay)
                break  # keep order: nothing newer goes out before this one
            except Exception as exc:  # a notifier bug must not stop the scheduler
                log.exception("notifier failed on message %d", message.id)
                self.store.retry_later(message.id, self.clock() + 60)
                del exc
                break
            else:
                self.store.delivered(message.id)
                if self.store.get("delivery_failure"):
                    self.store.put("delivery_failure", "")  # delivering again
                sent += 1
        return sent


def keep_loaded() -> None:
    """Everything loaded so far (the SLOs, the templates, the modules) lives as long as
    the process: moved out of the garbage collector's sight, a cycle's full collections
    no longer walk it (at 10,000 SLOs, millions of objects) again and again."""
    gc.collect()
    gc.freeze()


def watch(engine: Engine, interval: float, listen: str, pages: Pages | None = None) -> None:
    """Run cycles every ``interval`` seconds until interrupted, serving /metrics and
    /healthz (and the web page, when given)."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from sloengine.server import address, serve

    httpd = None
    if listen:
        host, port = address(listen)
        httpd = serve(host, port, engine.metrics.registry, engine.health, pages)
        log.info(
            "serving /metrics and /healthz%s on %s", " and the web page" if pages else "", listen
        )

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(
        engine.run_cycle,
        "interval",
        seconds=interval,
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    log.info("watching %d SLOs every %gs", len(engine.objectives), interval)
    keep_loaded()
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if httpd is not None:
            httpd.shutdown()
        engine.store.close()
