"""The scheduler against a real Prometheus: pages once, survives restarts and outages.

A simulated provider outage is under way at NOW; the engine's clock is pinned there so
every cycle reads the same data unless a test moves it.
"""

from __future__ import annotations

import io
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import ROOT

from sloengine.alerting import AlertRow, AlertState
from sloengine.cli import cli
from sloengine.conventions import Mode, Severity
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.notify import ConsoleNotifier
from sloengine.prometheus import TOKEN_ENV, Prometheus
from sloengine.scheduler import Engine, gauge_values
from sloengine.server import serve
from sloengine.sim.backfill import backfill
from sloengine.sim.launch import free_port, prometheus_server
from sloengine.sim.traffic import Incident, Scenario, Scope, Traffic
from sloengine.spec import SLIKind
from sloengine.state import Store
from sloengine.status import Health, Status

# Reset when the module's data is made, so "now" stays within Prometheus's 5m lookback.
NOW = int(time.time()) // 60 * 60
START = NOW - 2 * 86400
SPEC = str(ROOT / "tests" / "live-slos" / "outage.yaml")
SECRET = "s3cr3t-token-value"


def outage() -> Scenario:
    return Scenario(
        origin=START,
        traffic=Traffic(base_rps=5),
        labels={"service": "chat-assistant"},
        incidents=(Incident(NOW - 40 * 60, NOW + 3600, "error_rate", 0.5),),
    )


def chat_outage() -> Scenario:
    """The chat feature failing half its requests, the summarize feature clean."""
    return Scenario(
        origin=NOW - 6 * 3600,
        traffic=Traffic(base_rps=2),
        labels={"service": "grouped-chat"},
        incidents=(Incident(NOW - 40 * 60, NOW + 3600, "error_rate", 0.5, Scope(feature="chat")),),
    )


@pytest.fixture(scope="module")
def tsdb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    global NOW, START
    NOW = int(time.time()) // 60 * 60
    START = NOW - 2 * 86400
    path = tmp_path_factory.mktemp("tsdb")
    backfill(outage(), path, START, NOW, 60)
    backfill(chat_outage(), path, NOW - 6 * 3600, NOW, 60)
    return path


@pytest.fixture(scope="module")
def prometheus(tsdb: Path) -> Iterator[str]:
    with prometheus_server(tsdb) as url:
        yield url


def objectives(*names: str) -> list[Objective]:
    found = [o for s in load_specs([SPEC]) for o in s.objectives]
    return [o for o in found if not names or o.name in names]


class Clock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def engine(
    url: str, db: Path, out: io.StringIO, clock: Clock, *names: str, timeout: float = 5.0
) -> Engine:
    return Engine(
        objectives(*names) if names else objectives("availability"),
        Evaluator(Prometheus(url, timeout=timeout)),
        Store(db),
        ConsoleNotifier(out),
        blind_after=3,
        clock=clock,
    )


def pages(out: io.StringIO) -> list[str]:
    return [block for block in out.getvalue().split("\n\n") if block.strip()]


def test_an_outage_pages_once_with_the_runbook_and_a_restart_does_not_page_again(
    prometheus: str, tmp_path: Path
) -> None:
    out, clock, db = io.StringIO(), Clock(NOW), tmp_path / "state.db"
    first = engine(prometheus, db, out, clock)
    cycle = first.cycle()
    assert cycle.statuses[0].state == "page"
    (page,) = pages(out)
    assert page.startswith("[PAGE] chat-assistant/availability is burning its error budget")
    assert "runbook: https://runbooks.example/chat/provider-outage.md" in page
    assert "would go to: #chat-oncall" in page
    assert "owner: assistant-team" in page
    first.cycle()
    assert len(pages(out)) == 1
    first.store.close()
    restarted = engine(prometheus, db, out, clock)
    restarted.cycle()
    assert len(pages(out)) == 1
    assert restarted.store.alerts()["chat-assistant/availability"].state == AlertState.FIRING


def test_a_grouped_slo_pages_once_for_the_burning_group_only_and_names_it(
    prometheus: str, tmp_path: Path
) -> None:
    out, clock, db = io.StringIO(), Clock(NOW), tmp_path / "state.db"

    def grouped() -> Engine:
        slos = [
            o
            for s in load_specs([str(ROOT / "tests" / "live-slos" / "grouped-outage.yaml")])
            for o in s.objectives
        ]
        return Engine(
            slos, Evaluator(Prometheus(prometheus)), Store(db), ConsoleNotifier(out), clock=clock
        )

    first = grouped()
    cycle = first.cycle()
    assert {s.group["feature"]: s.state for s in cycle.statuses} == {
        "chat": "page",
        "summarize": "ok",
    }
    (page,) = pages(out)
    assert page.startswith(
        "[PAGE] grouped-chat/availability for feature=chat is burning its error budget"
    )
    # The first look is the group's own: every bad event is chat's.
    assert "feature: chat 100%" in page
    rows = first.store.alerts()
    assert rows["grouped-chat/availability{feature=chat}"].state == AlertState.FIRING
    assert rows["grouped-chat/availability{feature=chat}/page/1h"].state == AlertState.FIRING
    assert "grouped-chat/availability{feature=summarize}" not in rows
    first.store.close()
    restarted = grouped()
    restarted.cycle()
    assert len(pages(out)) == 1


def test_for_holds_the_page_pending_until_it_has_passed(prometheus: str, tmp_path: Path) -> None:
    out, clock = io.StringIO(), Clock(NOW)
    patient = engine(prometheus, tmp_path / "s.db", out, clock, "availability-patient")
    patient.cycle()
    rows = patient.store.alerts()
    assert rows["chat-assistant/availability-patient/page/1h"].state == AlertState.PENDING
    assert pages(out) == []
    clock.t = NOW + 60
    patient.cycle()
    assert pages(out) == []
    clock.t = NOW + 120
    patient.cycle()
    assert len(pages(out)) == 1


def test_prometheus_killed_mid_run_never_resolves_and_pages_once_that_evaluation_is_blind(
    tsdb: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(TOKEN_ENV, SECRET)
    port = free_port()
    out, clock = io.StringIO(), Clock(NOW)
    with prometheus_server(tsdb, port=port) as url:
        eng = engine(url, tmp_path / "s.db", out, clock, timeout=2)
        eng.cycle()
    assert len(pages(out)) == 1
    caplog.set_level(logging.INFO, logger="sloengine")
    for n in range(1, 5):
        cycle = eng.cycle()
        assert cycle.blind
        assert eng.store.alerts()["chat-assistant/availability"].state == AlertState.FIRING
        assert eng.health()[0] is (n < 3)
    messages = pages(out)
    assert len(messages) == 2, messages
    assert messages[1].startswith("[PAGE] SLO evaluation is blind: 3 cycles in a row")
    assert "is unreachable" in messages[1]
    with prometheus_server(tsdb, port=port):
        cycle = eng.cycle()
    assert not cycle.blind
    messages = pages(out)
    assert len(messages) == 3
    assert messages[2].startswith("[RESOLVED] SLO evaluation can see again")
    assert eng.store.alerts()["chat-assistant/availability"].state == AlertState.FIRING
    assert eng.health()[0]
    assert SECRET not in out.getvalue() + caplog.text


class _Broken(BaseHTTPRequestHandler):
    delay = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay)
        body = b'{"status":"error","errorType":"internal","error":"storage is on fire"}'
        try:
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("delay", "reason"),
    [(0.0, "refused the query: storage is on fire"), (3.0, "did not answer within 0.5s")],
    ids=["answering 500", "answering too slowly"],
)
def test_a_failing_prometheus_never_crashes_the_scheduler_or_resolves_an_alert(
    prometheus: str, tmp_path: Path, delay: float, reason: str
) -> None:
    out, clock, db = io.StringIO(), Clock(NOW), tmp_path / "s.db"
    engine(prometheus, db, out, clock).cycle()
    handler = type("Handler", (_Broken,), {"delay": delay})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        broken = engine(f"http://127.0.0.1:{server.server_port}", db, out, clock, timeout=0.5)
        for _ in range(3):
            cycle = broken.cycle()
            assert cycle.statuses[0].health == "unavailable"
            assert reason in cycle.statuses[0].error
        assert broken.store.alerts()["chat-assistant/availability"].state == AlertState.FIRING
    finally:
        server.shutdown()
    kinds = [m.split("]")[0] for m in pages(out)]
    assert kinds == ["[PAGE", "[PAGE"]  # the outage, then the blind page; nothing resolved


def test_metrics_and_healthz_are_served(prometheus: str, tmp_path: Path) -> None:
    eng = engine(prometheus, tmp_path / "s.db", io.StringIO(), Clock(NOW))
    eng.cycle()
    httpd = serve("127.0.0.1", 0, eng.metrics.registry, eng.health)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/metrics") as response:
            text = response.read().decode()
        with urllib.request.urlopen(f"{base}/healthz") as response:
            health = json.load(response)
    finally:
        httpd.shutdown()
    assert 'sloengine_slo_alert_state{service="chat-assistant",slo="availability"} 2.0' in text
    assert 'sloengine_cycles_total{result="ok"} 1.0' in text
    assert "sloengine_slo_error_budget_remaining{" in text
    assert health["ok"] is True
    assert health["failed_cycles"] == 0


def test_run_once_prints_the_page_on_the_console(prometheus: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--prometheus",
            prometheus,
            "--once",
            "--state",
            str(tmp_path / "s.db"),
            SPEC,
        ],
    )
    assert result.exit_code == 0, result.output
    # The CLI evaluates at the present, a moment after the data ends: still the outage.
    assert "[PAGE] chat-assistant/availability" in result.stdout


def test_killed_mid_delivery_and_restarted_the_page_reaches_slack_exactly_once(
    prometheus: str, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from slack_api import TOKEN, Failure, SlackAPI
    from slack_api import serve as serve_slack

    api = SlackAPI()
    server = serve_slack(api)
    # Slack records the page, then holds its answer: the process dies before it hears back.
    api.fail("chat.postMessage", Failure("hold"))
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_API_URL": f"http://127.0.0.1:{server.server_address[1]}/api/",
    }
    args = [
        sys.executable,
        "-m",
        "sloengine.cli",
        "run",
        "--once",
        "--prometheus",
        prometheus,
        "--state",
        str(tmp_path / "state.db"),
        SPEC,
    ]
    try:
        first = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert api.held.wait(60), first.communicate(timeout=5)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        api.released.set()
        assert len(api.posts()) == 1
        second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert TOKEN not in second.stdout + second.stderr
    finally:
        api.released.set()
        server.shutdown()
    (page,) = api.posts()
    assert page["blocks"][0]["text"]["text"] == "PAGE: chat-assistant/availability"
    assert [m for m, _ in api.calls].count("chat.postMessage") == 1
    assert "conversations.history" in [m for m, _ in api.calls]
    assert Store(tmp_path / "state.db").pending_count() == 0


def _status(
    slo: str, group: dict[str, str], remaining: float | None, burn: float, health: Health
) -> Status:
    return Status(
        "svc", slo, SLIKind.SUCCESS_RATE, 99.0, "30d", None, remaining, {}, {"1h": burn},
        "ok", None, health, Mode.RECORDED, group=group,
    )  # fmt: skip


def test_a_grouped_slos_gauges_show_its_worst_group() -> None:
    statuses = [
        _status("a", {"tenant": "x"}, 0.8, 2.0, Health.OK),
        _status("a", {"tenant": "y"}, 0.1, 20.0, Health.STALE),
        _status("b", {}, None, 0.5, Health.UNAVAILABLE),
    ]
    firing = AlertRow("svc/a{tenant=y}", AlertState.FIRING, Severity.PAGE, 0.0, 0.0, "i1")
    done = AlertRow("svc/a{tenant=x}", AlertState.INACTIVE, Severity.TICKET, 0.0, None, None)
    values = gauge_values(statuses, {r.key: r for r in (firing, done)})
    assert values.remaining == {("svc", "a"): 0.1}  # b read nothing: no value, not a stale one
    assert values.burns == {("svc", "a", "1h"): 20.0, ("svc", "b", "1h"): 0.5}
    assert values.states == {("svc", "a"): 2, ("svc", "b"): 0}
    assert values.healths == {("svc", "a"): Health.STALE, ("svc", "b"): Health.UNAVAILABLE}
