"""Evaluate SLOs against Prometheus: SLI, budget, burn rates, alert conditions, data health.

Two ways to read the numbers, chosen per SLO:

* recorded: the generated rules run in Prometheus; two queries read every SLO's rates
  at every window, whatever the number of SLOs;
* raw: the rules are not loaded; each SLO's bad and total rates are computed from the
  raw series at every window, a few queries at a time.

Everything after the readings (burn rates, conditions, health) is one pure function of
them, so both modes give the same verdicts on the same rates.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sloengine import conventions as cv
from sloengine.budget import AlertWindow, budget_exhaustion_seconds, pair_fires
from sloengine.conventions import AUTO, RAW, RECORDED
from sloengine.durations import format_duration
from sloengine.model import Objective
from sloengine.prometheus import Prometheus, PrometheusError
from sloengine.rules import raw_queries, windows_of

OK, NO_DATA, LOW_TRAFFIC, STALE, UNAVAILABLE = (
    "ok",
    "no_data",
    "low_traffic",
    "stale",
    "unavailable",
)
# Recorded series older than this many evaluation intervals mean the rules stopped running.
STALE_INTERVALS = 3


@dataclass(frozen=True)
class Rates:
    """Per-second bad and total rates at each window (seconds); total is None for spend."""

    bad: dict[int, float]
    total: dict[int, float] | None
    mode: str
    age_seconds: float = 0.0  # how old the newest recorded sample is (0 in raw mode)


@dataclass(frozen=True)
class PairState:
    severity: str
    long_window: str
    short_window: str
    threshold: float
    long_burn: float
    short_burn: float
    active: bool  # the alert condition holds now


@dataclass
class Status:
    service: str
    slo: str
    kind: str
    objective: float | None  # percent
    window: str
    sli: float | None  # good ratio over the SLO window; dollars spent for spend
    error_budget_remaining: float | None
    budget_remaining: dict[str, float]  # in the SLO's units: events, outage_minutes, dollars
    burn_rates: dict[str, float]
    state: str  # ok, ticket or page (from the conditions; the scheduler adds `for`)
    exhaustion_at: str | None
    health: str
    mode: str
    pairs: list[PairState] = field(default_factory=list)
    error: str = ""

    def as_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "pairs"}
        out["pairs"] = [p.__dict__ for p in self.pairs]
        return out


def burn(obj: Objective, bad: float, total: float | None) -> float:
    """Budget burn at these rates: 1 spends exactly the budget over the SLO window."""
    if obj.is_spend:
        assert obj.budget_usd is not None
        return bad / (obj.budget_usd / obj.period)
    if not total or total <= 0:
        return 0.0  # no traffic burns nothing; never NaN
    return (bad / total) / obj.error_budget


def judge(obj: Objective, rates: Rates, now: float) -> Status:
    """Everything a status shows, from one set of window rates."""
    period = obj.period
    burns = {
        s: burn(obj, rates.bad.get(s, 0.0), None if rates.total is None else rates.total.get(s))
        for s in sorted(rates.bad)
    }
    pairs = [_pair(obj, w, burns, rates) for w in obj.active_windows()]
    state = next(
        (sev for sev in (cv.PAGE, cv.TICKET) if any(p.active and p.severity == sev for p in pairs)),
        "ok",
    )
    window_burn = burns.get(period, 0.0)
    remaining = 1 - window_burn
    total_window = None if rates.total is None else rates.total.get(period, 0.0) * period
    sli: float | None
    if obj.is_spend:
        sli = rates.bad.get(period, 0.0) * period
        units = {"dollars": round((obj.budget_usd or 0) * remaining, 2)}
    else:
        bad_window = rates.bad.get(period, 0.0) * period
        sli = None if not total_window else 1 - bad_window / total_window
        units = {
            "events": round(obj.error_budget * (total_window or 0) * remaining, 1),
            "outage_minutes": round(obj.error_budget * period * remaining / 60, 1),
        }
    current = min((w.long_seconds for w in obj.active_windows()), default=period)
    exhaustion = _exhaustion(period, remaining, burns.get(current, 0.0), now)
    return Status(
        service=obj.service,
        slo=obj.name,
        kind=obj.kind,
        objective=None if obj.objective is None else round(obj.objective * 100, 10),
        window=format_duration(period),
        sli=sli,
        error_budget_remaining=remaining,
        budget_remaining=units,
        burn_rates={format_duration(s): b for s, b in burns.items()},
        state=state,
        exhaustion_at=exhaustion,
        health=_health(obj, rates),
        mode=rates.mode,
        pairs=pairs,
    )


def _pair(obj: Objective, w: AlertWindow, burns: dict[int, float], rates: Rates) -> PairState:
    long_b, short_b = burns.get(w.long_seconds, 0.0), burns.get(w.short_seconds, 0.0)
    events = None if rates.total is None else rates.total.get(w.long_seconds, 0.0) * w.long_seconds
    bad_events = rates.bad.get(w.long_seconds, 0.0) * w.long_seconds
    return PairState(
        severity=w.severity,
        long_window=format_duration(w.long_seconds),
        short_window=format_duration(w.short_seconds),
        threshold=w.burn_rate,
        long_burn=long_b,
        short_burn=short_b,
        active=pair_fires(
            w,
            long_b,
            short_b,
            events=events,
            bad_events=None if obj.is_spend else bad_events,
            min_events=obj.min_events,
            min_bad_events=obj.min_bad_events,
        ),
    )


def _exhaustion(period: int, remaining: float, rate: float, now: float) -> str | None:
    if remaining <= 0:
        seconds: float | None = 0.0
    else:
        lasts = budget_exhaustion_seconds(period, rate)
        seconds = None if lasts is None else remaining * lasts
    if seconds is None:
        return None
    return datetime.fromtimestamp(now + seconds, UTC).isoformat(timespec="seconds")


def _health(obj: Objective, rates: Rates) -> str:
    if rates.mode == RECORDED and rates.age_seconds > STALE_INTERVALS * obj.interval:
        return STALE
    if obj.is_spend:
        return OK
    assert rates.total is not None
    if rates.total.get(obj.period, 0.0) <= 0:
        return NO_DATA
    active = obj.active_windows()
    if not active:
        return OK
    fastest = min(active, key=lambda w: w.long_seconds)
    events = rates.total.get(fastest.long_seconds, 0.0) * fastest.long_seconds
    # Below this volume a single failure already burns at the fastest page threshold.
    single_failure_pages = fastest.burn_rate * obj.error_budget * events < 1
    if single_failure_pages or events < obj.min_events:
        return LOW_TRAFFIC
    return OK


def unavailable(obj: Objective, error: str) -> Status:
    """A status for an SLO whose numbers could not be read."""
    return Status(
        service=obj.service,
        slo=obj.name,
        kind=obj.kind,
        objective=None if obj.objective is None else round(obj.objective * 100, 10),
        window=format_duration(obj.period),
        sli=None,
        error_budget_remaining=None,
        budget_remaining={},
        burn_rates={},
        state="ok",
        exhaustion_at=None,
        health=UNAVAILABLE,
        mode="",
        error=error,
    )


class Evaluator:
    """Reads rates from Prometheus and judges every SLO."""

    def __init__(self, prom: Prometheus, *, mode: str = AUTO, concurrency: int = 8) -> None:
        self.prom = prom
        self.mode = mode
        self.concurrency = concurrency

    def evaluate(self, objectives: Iterable[Objective], now: float | None = None) -> list[Status]:
        """One status per SLO; a failed query marks that SLO unavailable, it never raises."""
        objectives = list(objectives)
        at = time.time() if now is None else now
        recorded: dict[tuple[str, str], Rates] = {}
        if self.mode in (RECORDED, AUTO):
            try:
                recorded = self.recorded_rates(objectives, at)
            except PrometheusError as exc:
                return [unavailable(obj, str(exc)) for obj in objectives]
        missing = [o for o in objectives if (o.service, o.name) not in recorded]
        raw: dict[tuple[str, str], Rates | str] = {}
        if missing and self.mode in (RAW, AUTO):
            with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
                for obj, result in zip(
                    missing, pool.map(lambda o: self._raw_or_error(o, at), missing), strict=True
                ):
                    raw[(obj.service, obj.name)] = result
        out = []
        for obj in objectives:
            key = (obj.service, obj.name)
            found = recorded.get(key) or raw.get(key)
            if isinstance(found, Rates):
                out.append(judge(obj, found, at))
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
    ) -> dict[tuple[str, str], Rates]:
        """Every SLO's recorded rates in two queries (values, then sample ages)."""
        wanted = {(o.service, o.name): o for o in objectives}
        rows = self.prom.query(f'{{__name__=~"{cv.BAD_RATE}|{cv.TOTAL_RATE}"}}', at)
        stamps = self.prom.query(f"timestamp({cv.BAD_BASE})", at)
        newest: dict[tuple[str, str], float] = {}
        for s in stamps:
            key = (s.labels.get(cv.SERVICE, ""), s.labels.get(cv.SLO, ""))
            newest[key] = max(newest.get(key, 0.0), s.value)
        bad: dict[tuple[str, str], dict[int, float]] = {}
        total: dict[tuple[str, str], dict[int, float]] = {}
        for s in rows:
            key = (s.labels.get(cv.SERVICE, ""), s.labels.get(cv.SLO, ""))
            obj = wanted.get(key)
            window = s.labels.get(cv.WINDOW)
            if obj is None or window is None:
                continue
            seconds = _seconds(window)
            into = bad if s.labels.get("__name__") == cv.BAD_RATE else total
            into.setdefault(key, {})[seconds] = _finite(s.value)
        out = {}
        for key, obj in wanted.items():
            need = set(windows_of(obj))
            if key not in bad or not need <= set(bad[key]):
                continue
            if not obj.is_spend and (key not in total or not need <= set(total[key])):
                continue
            age = max(0.0, at - newest[key]) if key in newest else float("inf")
            out[key] = Rates(bad[key], None if obj.is_spend else total[key], RECORDED, age)
        return out

    def raw_rates(self, obj: Objective, at: float) -> Rates:
        """Bad and total rates straight from the raw series, at every window the SLO needs."""
        bad: dict[int, float] = {}
        total: dict[int, float] = {}
        for seconds in windows_of(obj):
            bad_q, total_q = raw_queries(obj, seconds)
            bad[seconds] = _one(self.prom.query(bad_q, at))
            if total_q is not None:
                total[seconds] = _one(self.prom.query(total_q, at))
        return Rates(bad, None if obj.is_spend else total, RAW)

    def _raw_or_error(self, obj: Objective, at: float) -> Rates | str:
        try:
            return self.raw_rates(obj, at)
        except PrometheusError as exc:
            return str(exc)


def _one(samples: list[Any]) -> float:
    return _finite(sum(s.value for s in samples)) if samples else 0.0


def _finite(value: float) -> float:
    return value if value == value and abs(value) != float("inf") else 0.0


def _seconds(window: str) -> int:
    from sloengine.durations import parse_duration

    return round(parse_duration(window))
