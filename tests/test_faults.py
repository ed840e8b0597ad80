"""The scheduler behind a fault-injecting proxy in front of a real Prometheus.

An outage is paging; then Prometheus's answers go wrong in each way a gateway or a
broken server makes them. Every cycle still ends, the SLO reads as unavailable with a
reason that carries no secret, the firing incident is neither resolved nor paged again,
and after three such cycles one blind page goes out; when the answers come back, sight
returns and the incident is still the same one."""

from __future__ import annotations

import dataclasses
import gc
import io
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT
from faultproxy import FaultProxy, serve

from sloengine.alerting import AlertState
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.notify import ConsoleNotifier
from sloengine.prometheus import TOKEN_ENV, Prometheus
from sloengine.scheduler import Engine
from sloengine.sim.backfill import backfill
from sloengine.sim.launch import prometheus_server
from sloengine.sim.traffic import Incident, Scenario, Traffic
from sloengine.state import Store
from sloengine.status import Health

SPEC = str(ROOT / "tests" / "live-slos" / "outage.yaml")
SECRET = "proxy-echoed-t0ken"
NOW = 0


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    global NOW
    NOW = int(time.time()) // 60 * 60
    start = NOW - 2 * 86400
    scenario = Scenario(
        origin=start,
        traffic=Traffic(base_rps=5),
        labels={"service": "chat-assistant"},
        incidents=(Incident(NOW - 40 * 60, NOW + 3600, "error_rate", 0.5),),
    )
    tsdb = tmp_path_factory.mktemp("tsdb")
    backfill(scenario, tsdb, start, NOW, 60)
    with prometheus_server(tsdb) as url:
        yield url


@pytest.fixture
def proxied(upstream: str) -> Iterator[tuple[FaultProxy, str]]:
    with serve(upstream) as found:
        yield found


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def paging_engine(url: str, db: Path, out: io.StringIO, clock: Clock) -> Engine:
    objectives = [o for s in load_specs([SPEC]) for o in s.objectives if o.name == "availability"]
    prom = Prometheus(url, timeout=2.0, env={TOKEN_ENV: SECRET})
    return Engine(objectives, Evaluator(prom), Store(db), ConsoleNotifier(out), clock=clock)


FAULTS = {
    "no-data": "shape that is not a Prometheus query result",
    "null-data": "shape that is not a Prometheus query result",
    "no-value": "shape that is not a Prometheus query result",
    "text-values": "not JSON or not numbers",
    "nan": "NaN or Inf",
    "inf": "NaN or Inf",
    "trickle": "did not answer within 2s",
    "huge": "answered with more than 64 MB",
    "5xx": "refused the query",
    "hang": "did not answer within 2s",
    "echo-auth": "HTTP Status Code 401 (b'unauthorized: Bearer [redacted]')",
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_broken_answer_holds_the_incident_and_pages_blind_once(
    fault: str, proxied: tuple[FaultProxy, str], tmp_path: Path
) -> None:
    proxy, url = proxied
    out, clock = io.StringIO(), Clock(NOW)
    engine = paging_engine(url, tmp_path / "state.db", out, clock)
    assert engine.cycle().statuses[0].state == "page"
    opened = engine.store.alerts()["chat-assistant/availability"]
    assert opened.state == AlertState.FIRING

    proxy.mode = fault
    for i in range(1, 4):
        clock.t = NOW + 60 * i
        cycle = engine.cycle()
        (status,) = cycle.statuses
        assert status.health == Health.UNAVAILABLE
        assert FAULTS[fault] in status.error
        assert cycle.blind
    # The garbage collector, paused while answers are read, resumes after failed ones.
    assert gc.isenabled()
    text = out.getvalue()
    assert text.count("[PAGE] SLO evaluation is blind") == 1
    assert FAULTS[fault] in text
    assert "[RESOLVED]" not in text
    assert SECRET not in text
    assert engine.health()[0] is False

    proxy.mode = "pass"
    proxy.release.set()
    clock.t = NOW + 240
    cycle = engine.cycle()
    assert not cycle.blind and cycle.statuses[0].state == "page"
    text = out.getvalue()
    assert "[RESOLVED] SLO evaluation can see again" in text
    assert text.count("[PAGE] chat-assistant/availability") == 1  # never paged twice
    assert engine.store.alerts()["chat-assistant/availability"] == opened
    engine.store.close()


def test_an_slo_whose_status_cannot_be_computed_never_stops_the_others_from_paging(
    upstream: str, tmp_path: Path
) -> None:
    # An objective so strict its error budget rounds to zero (the loader refuses it now;
    # judged anyway, it divided by zero and every cycle of every SLO crashed).
    out, clock = io.StringIO(), Clock(NOW)
    engine = paging_engine(upstream, tmp_path / "state.db", out, clock)
    (sound,) = engine.objectives.values()
    broken = dataclasses.replace(sound, name="impossible", objective=1.0, error_budget=0.0)
    engine.objectives[broken.key] = broken
    cycle = engine.cycle()
    by_slo = {s.slo: s for s in cycle.statuses}
    assert by_slo["impossible"].health == Health.UNAVAILABLE
    assert "cannot compute this SLO's status (ZeroDivisionError)" in by_slo["impossible"].error
    assert by_slo["availability"].state == "page"
    assert "[PAGE] chat-assistant/availability" in out.getvalue()
    assert not cycle.blind
    engine.store.close()
