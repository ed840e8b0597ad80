"""The watch loop: evaluate, advance alert state, notify, and never fall over.

Per alert pair the state goes inactive -> pending -> firing (after its ``for``) and back;
per SLO, an incident opens when a pair fires, escalates when a page pair joins a ticket,
and resolves when no pair fires. Nothing moves while the SLO's data is unavailable,
stale or absent: missing data never resolves an alert. When every SLO is unavailable
for ``blind_after`` cycles in a row, one "SLO evaluation is blind" page goes out, and
its resolution when sight returns.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from sloengine import conventions as cv
from sloengine.evaluate import NO_DATA, STALE, UNAVAILABLE, Evaluator, Status
from sloengine.firstlook import first_look
from sloengine.model import Objective
from sloengine.state import FIRING, INACTIVE, PENDING, AlertRow, Message, Store

log = logging.getLogger("sloengine")

SEVERITY_RANK = {cv.TICKET: 1, cv.PAGE: 2}
HOLD = {UNAVAILABLE, STALE, NO_DATA}
BLIND = "sloengine/evaluation-blind"
# Transient failures are retried with backoff (capped at 5 minutes) this many times.
MAX_ATTEMPTS = 50


class DeliveryError(Exception):
    """A notifier could not deliver; ``permanent`` errors are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


@dataclass(frozen=True)
class Cycle:
    statuses: list[Status]
    blind: bool
    delivered: int


class Metrics:
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
        ids = [cv.SERVICE, cv.SLO]
        self.remaining = Gauge(
            "sloengine_slo_error_budget_remaining",
            "Share of the error budget left",
            ids,
            registry=r,
        )
        self.burn = Gauge(
            "sloengine_slo_burn_rate", "Burn rate per window", [*ids, cv.WINDOW], registry=r
        )
        self.state = Gauge("sloengine_slo_alert_state", "0 ok, 1 ticket, 2 page", ids, registry=r)
        self.healthy = Gauge(
            "sloengine_slo_data_healthy",
            "1 when the SLO's data is healthy",
            [*ids, "health"],
            registry=r,
        )

    def observe(self, statuses: list[Status], incidents: dict[str, AlertRow]) -> None:
        for s in statuses:
            if s.error_budget_remaining is not None:
                self.remaining.labels(s.service, s.slo).set(s.error_budget_remaining)
            for window, value in s.burn_rates.items():
                self.burn.labels(s.service, s.slo, window).set(value)
            row = incidents.get(f"{s.service}/{s.slo}")
            firing = row is not None and row.state == FIRING
            self.state.labels(s.service, s.slo).set(
                SEVERITY_RANK[row.severity] if firing and row else 0
            )
            for health in ("ok", "no_data", "low_traffic", "stale", "unavailable"):
                self.healthy.labels(s.service, s.slo, health).set(1 if s.health == health else 0)


class Engine:
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
    ) -> None:
        self.objectives = {(o.service, o.name): o for o in objectives}
        self.evaluator = evaluator
        self.store = store
        self.notifier = notifier
        self.blind_after = blind_after
        self.clock = clock
        self.metrics = Metrics()
        self.last: Cycle | None = None
        self.renotify = renotify
        self._looks: dict[str, dict[str, Any]] = {}

    def cycle(self) -> Cycle:
        """One evaluation; every failure is caught, counted and logged."""
        started = self.clock()
        before = self.evaluator.prom.requests
        statuses = self.evaluator.evaluate(self.objectives.values(), started)
        self.metrics.requests.inc(self.evaluator.prom.requests - before)
        blind = bool(statuses) and all(s.health == UNAVAILABLE for s in statuses)
        self._looks = self._first_looks(statuses, started)
        with self.store.transaction() as db:
            self._track_sight(db, blind, statuses, started)
            rows = self.store.alerts()
            for status in statuses:
                self._advance(db, rows, status, started)
        delivered = self.deliver()
        incidents = self.store.alerts()
        self.metrics.observe(statuses, incidents)
        self.metrics.cycles.labels("blind" if blind else "ok").inc()
        self.metrics.duration.observe(self.clock() - started)
        self.metrics.outbox.set(self.store.pending_count())
        if not blind:
            self.metrics.last_success.set(self.clock())
        self.last = Cycle(statuses, blind, delivered)
        return self.last

    def _track_sight(self, db: Any, blind: bool, statuses: list[Status], now: float) -> None:
        failures = int(self.store.get("failed_cycles", "0"))
        failures = failures + 1 if blind else 0
        self.store.set(db, "failed_cycles", str(failures))
        self.metrics.failures.set(failures)
        incident = self.store.get("blind_incident")
        if blind:
            errors = sorted({s.error for s in statuses if s.error})
            log.warning("evaluation cycle failed (%d in a row): %s", failures, "; ".join(errors))
            if failures >= self.blind_after and not incident:
                incident = f"{BLIND}/{int(now)}"
                self.store.set(db, "blind_incident", incident)
                self.store.enqueue(
                    db,
                    "blind",
                    incident,
                    {"severity": cv.PAGE, "failed_cycles": failures, "errors": errors, "at": now},
                )
        elif incident:
            self.store.set(db, "blind_incident", "")
            self.store.enqueue(db, "sight", incident, {"severity": cv.PAGE, "at": now})

    def _advance(self, db: Any, rows: dict[str, AlertRow], status: Status, now: float) -> None:
        obj = self.objectives[(status.service, status.slo)]
        if status.health in HOLD:
            return  # missing data neither fires nor resolves anything
        firing: list[str] = []
        for pair in status.pairs:
            key = f"{obj.service}/{obj.name}/{pair.severity}/{pair.long_window}"
            row = rows.get(key) or AlertRow(key, INACTIVE, pair.severity, now, None, None)
            wait = obj.for_seconds.get(pair.severity, 0)
            if pair.active:
                since = row.since if row.state in (PENDING, FIRING) else now
                state = FIRING if now - since >= wait else PENDING
                fired = row.fired_at if row.state == FIRING else (now if state == FIRING else None)
                new = AlertRow(key, state, pair.severity, since, fired, None)
            else:
                new = AlertRow(key, INACTIVE, pair.severity, now, None, None)
            if new != row:
                self.store.put_alert(db, new)
            if new.state == FIRING:
                firing.append(pair.severity)
        self._incident(db, rows, obj, status, firing, now)

    def _incident(
        self,
        db: Any,
        rows: dict[str, AlertRow],
        obj: Objective,
        status: Status,
        firing: list[str],
        now: float,
    ) -> None:
        key = f"{obj.service}/{obj.name}"
        row = rows.get(key)
        open_ = row is not None and row.state == FIRING
        severity = max(firing, key=SEVERITY_RANK.__getitem__) if firing else None
        if severity and not open_:
            incident = f"{key}/{int(now)}"
            self.store.put_alert(db, AlertRow(key, FIRING, severity, now, now, incident))
            self.store.enqueue(db, "firing", incident, self._payload(obj, status, severity, now))
        elif severity and row and SEVERITY_RANK[severity] > SEVERITY_RANK[row.severity]:
            self.store.put_alert(
                db, AlertRow(key, FIRING, severity, row.since, row.fired_at, row.incident)
            )
            self.store.enqueue(
                db, "escalated", row.incident or key, self._payload(obj, status, severity, now)
            )
        elif severity and row and self.renotify and now - row.since >= self.renotify:
            # Still burning after `renotify` seconds: say so again, in the incident's thread.
            self.store.put_alert(db, dataclasses.replace(row, since=now))
            self.store.enqueue(
                db, "renotify", row.incident or key, self._payload(obj, status, row.severity, now)
            )
        elif not severity and open_ and row:
            self.store.put_alert(db, AlertRow(key, INACTIVE, row.severity, now, None, None))
            payload = self._payload(obj, status, row.severity, now)
            payload["fired_at"] = row.fired_at
            self.store.enqueue(db, "resolved", row.incident or key, payload)

    def _first_looks(self, statuses: list[Status], now: float) -> dict[str, dict[str, Any]]:
        """For SLOs about to page or escalate: the label values behind their bad events."""
        rows = self.store.alerts()
        wanted: list[tuple[str, Objective, str]] = []
        for status in statuses:
            active = [p for p in status.pairs if p.active]
            if not active or status.health in HOLD:
                continue
            key = f"{status.service}/{status.slo}"
            worst = max(active, key=lambda p: SEVERITY_RANK[p.severity])
            row = rows.get(key)
            if (
                row
                and row.state == FIRING
                and SEVERITY_RANK[row.severity] >= SEVERITY_RANK[worst.severity]
            ):
                continue  # already told at this severity
            wanted.append((key, self.objectives[(status.service, status.slo)], worst.short_window))
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

    def _payload(self, obj: Objective, status: Status, severity: str, now: float) -> dict[str, Any]:
        return {
            **self._looks.get(f"{obj.service}/{obj.name}", {}),
            "severity": severity,
            "at": now,
            "status": status.as_json(),
            "description": obj.description,
            "owner": obj.owner,
            "runbook_url": obj.runbook_url,
            "channel": obj.channels.get(severity, ""),
            "annotations": obj.annotations,
        }

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Healthy unless evaluation has been blind for ``blind_after`` cycles."""
        failures = int(self.store.get("failed_cycles", "0"))
        detail: dict[str, Any] = {
            "failed_cycles": failures,
            "outbox_pending": self.store.pending_count(),
            "slos": len(self.objectives),
        }
        if self.last is not None:
            detail["last_cycle_blind"] = self.last.blind
        return failures < self.blind_after, detail

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
                    continue
                delay = exc.retry_after or min(300.0, 2.0**message.attempts) * random.uniform(
                    1, 1.5
                )
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
                sent += 1
        return sent


def watch(engine: Engine, interval: float, listen: str) -> None:
    """Run cycles every ``interval`` seconds until interrupted, serving /metrics and /healthz."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    from sloengine.server import serve

    httpd = None
    if listen:
        host, _, port = listen.rpartition(":")
        httpd = serve(host or "127.0.0.1", int(port), engine.metrics.registry, engine.health)
        log.info("serving /metrics and /healthz on %s", listen)

    def guarded() -> None:
        try:
            engine.cycle()
        except Exception:  # the scheduler outlives any single bad cycle
            log.exception("evaluation cycle crashed; the next one runs on schedule")
            engine.metrics.cycles.labels("crashed").inc()

    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(
        guarded,
        "interval",
        seconds=interval,
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )
    log.info("watching %d SLOs every %gs", len(engine.objectives), interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        if httpd is not None:
            httpd.shutdown()
        engine.store.close()
