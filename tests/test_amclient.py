"""The Alertmanager adapter against a real Alertmanager and against servers that fail:
what Alertmanager holds is what the scheduler sent, a dead, hanging or refusing
Alertmanager costs at most the timeout and is named in the failures, and a URL with
credentials is refused before anything could log it."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from test_alerting import CLEAN, IMMEDIATE, PAGE_RATIO, T0, status

from sloengine.alerting import AlertRow, advance
from sloengine.alertmanager import render_config
from sloengine.amalerts import Alert, outgoing
from sloengine.amclient import API_PATH, STATE_KEY, AlertmanagerSender
from sloengine.cli import EXIT_BAD_INPUT, cli
from sloengine.conventions import Severity
from sloengine.loading import load_specs
from sloengine.sim.launch import alertmanager_server, free_port
from sloengine.state import Store

TIMEOUT = 1.0


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("am")
    config = workdir / "alertmanager.yml"
    config.write_text(
        render_config(load_specs([IMMEDIATE.file]), channels={Severity.TICKET: "#chat-alerts"})
    )
    with alertmanager_server(config, workdir / "data") as url:
        yield url


@pytest.fixture
def hanging() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    worker = threading.Thread(target=accept, daemon=True)
    worker.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    worker.join()
    for conn in held:
        conn.close()
    listener.close()


def firing(now: float = T0) -> dict[str, Alert]:
    st = status(IMMEDIATE, PAGE_RATIO)
    rows: dict[str, AlertRow] = {r.key: r for r in advance(IMMEDIATE, {}, st, now).rows}
    return outgoing(
        {IMMEDIATE.key: IMMEDIATE}, [st], rows, {}, now, interval=60, prometheus_url="http://p"
    )


def held(alertmanager: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(alertmanager + API_PATH, timeout=10) as response:
        found: list[dict[str, Any]] = json.load(response)
        return found


def sender(urls: list[str]) -> AlertmanagerSender:
    return AlertmanagerSender(urls, interval=60, timeout=TIMEOUT, prometheus_url="http://p")


def test_alertmanager_holds_what_was_sent_and_the_page_inhibits_the_ticket(
    alertmanager: str,
) -> None:
    now = time.time()
    sent = firing(now)
    assert sender([alertmanager]).post_all([a.as_json() for a in sent.values()]) == {}
    found = {a["labels"]["long_window"]: a for a in held(alertmanager)}
    assert len(found) == len(sent) == 4
    for alert in sent.values():
        got = found[alert.labels["long_window"]]
        assert got["labels"] == alert.labels
        assert got["annotations"] == alert.annotations
        assert got["generatorURL"] == alert.generator_url
        # Routed and inhibited by the generated configuration: the page silences the ticket.
        expected = "active" if alert.labels["severity"] == "page" else "suppressed"
        assert got["status"]["state"] == expected
        assert got["startsAt"].startswith(alert.as_json()["startsAt"][:19])


def test_a_dead_or_hanging_alertmanager_costs_at_most_the_timeout_and_the_others_still_hear(
    alertmanager: str, hanging: str
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    body = [a.as_json() for a in firing(time.time()).values()]
    started = time.monotonic()
    again = hanging.replace("127.0.0.1", "localhost")  # a second hanging Alertmanager
    failures = sender([hanging, dead, again, alertmanager]).post_all(body)
    # One deadline for all the posts (not one each), and never the hanging server's forever.
    assert time.monotonic() - started < 2 * TIMEOUT
    assert failures == {
        dead: "unreachable (ConnectionError)",
        hanging: f"no answer within {TIMEOUT:g}s",
        again: f"no answer within {TIMEOUT:g}s",
    }
    assert len(held(alertmanager)) >= 4


def test_an_alertmanager_refusing_the_alerts_says_why(alertmanager: str) -> None:
    failures = sender([alertmanager]).post_all([{"labels": {}, "annotations": {}}])
    assert failures[alertmanager].startswith("HTTP 400: ")


def test_what_was_sent_is_kept_in_the_state_database_and_the_failure_shows_in_healthz(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "state.db")
    dead = f"http://127.0.0.1:{free_port()}"
    st = status(IMMEDIATE, PAGE_RATIO)
    rows = {r.key: r for r in advance(IMMEDIATE, {}, st, T0).rows}
    out = sender([dead])
    failures = out.send({IMMEDIATE.key: IMMEDIATE}, [st], rows, T0, store)
    assert failures == {dead: "unreachable (ConnectionError)"}
    assert len(json.loads(store.get(STATE_KEY))) == 4
    assert store.get("delivery_failure").startswith("no Alertmanager took the alerts")
    # The next cycle, clean: the pairs resolve, and are sent resolved.
    clean = status(IMMEDIATE, CLEAN)
    after = {**rows, **{r.key: r for r in advance(IMMEDIATE, rows, clean, T0 + 60).rows}}
    out.send({IMMEDIATE.key: IMMEDIATE}, [clean], after, T0 + 60, store)
    kept = json.loads(store.get(STATE_KEY))
    assert [(a["firing"], a["ends_at"]) for a in kept] == [(False, T0 + 60)] * 4
    store.close()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://admin:hunter2@alertmanager:9093",
            "error: credentials in an --alertmanager URL would end up in logs and /metrics",
        ),
        ("alertmanager:9093", "error: --alertmanager 'alertmanager:9093' is not an http(s) URL"),
    ],
    ids=["credentials in the URL", "not an http URL"],
)
def test_a_bad_alertmanager_url_exits_2_and_never_shows_a_password(
    tmp_path: Path, url: str, message: str
) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--once",
            "--listen",
            "",
            "--state",
            str(tmp_path / "state.db"),
            "--prometheus",
            "http://127.0.0.1:9",
            "--alertmanager",
            url,
            IMMEDIATE.file,
        ],
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert message in result.output
    assert "hunter2" not in result.output
    assert "Traceback" not in result.output
