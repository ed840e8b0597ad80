"""End to end through the real parts: a live service scraped by a real Prometheus running
the generated rules, a real Alertmanager running the generated configuration, and a
local server standing in for the Slack webhook.

An outage pages once, in the page channel, with the Runbook button; the same SLO's
ticket is inhibited; when the service recovers, the page is resolved."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from slack_api import SlackAPI, serve

from sloengine.alertmanager import Timing, render_config
from sloengine.loading import load_specs
from sloengine.rules import render
from sloengine.sim.launch import alertmanager_server, prometheus_server

SLO = """\
apiVersion: sloengine/v1
service: e2e
evaluation_interval: 5s
notify:
  page: {slack_channel: "#e2e-oncall"}
  ticket: {slack_channel: "#e2e-alerts"}
runbooks: {base_url: "https://runbooks.example/e2e/"}
slos:
  - name: availability
    objective: 99
    runbook: provider-outage.md
    sli:
      ratio:
        errors: sum(rate(e2e_requests_total{code="500"}[{{window}}]))
        total: sum(rate(e2e_requests_total[{{window}}]))
"""


class Service:
    """A live counter of requests by code: half fail until it recovers, then a burst of
    clean traffic (so the 5m window reads clean within a scrape, not five minutes)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ok = self.errors = 0.0
        self.last = time.monotonic()
        self.recovered = False

    def exposition(self) -> bytes:
        with self.lock:
            now = time.monotonic()
            seconds, self.last = now - self.last, now
            if self.recovered:
                self.ok += 100_000 * seconds
            else:
                self.ok += 5 * seconds
                self.errors += 5 * seconds
            lines = [
                "# TYPE e2e_requests_total counter",
                f'e2e_requests_total{{code="200"}} {self.ok:.3f}',
                f'e2e_requests_total{{code="500"}} {self.errors:.3f}',
            ]
        return ("\n".join(lines) + "\n").encode()


@pytest.fixture
def service() -> Iterator[tuple[Service, str]]:
    live = Service()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = live.exposition()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield live, f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def wait_for(what: str, found: Callable[[], bool], seconds: float = 150) -> None:
    deadline = time.monotonic() + seconds
    while not found():
        assert time.monotonic() < deadline, f"waited {seconds:g}s for {what}"
        time.sleep(0.5)


def alerts(alertmanager: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{alertmanager}/api/v2/alerts", timeout=10) as response:
        found: list[dict[str, Any]] = json.load(response)
        return found


@dataclass
class Routed:
    """The SLO file, its rules, a Slack double and the Alertmanager configuration for it."""

    spec: Path
    rules: Path
    config: Path
    slack: SlackAPI
    server: ThreadingHTTPServer

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """What the Slack double received for ``channel``, oldest first."""
        return [m for m in self.slack.webhook if m.get("channel") == channel]

    def prometheus(
        self, target: str, alertmanagers: Sequence[str] = ()
    ) -> AbstractContextManager[str]:
        """A Prometheus scraping the live service every second and running the rules
        every 5s, sending alerts to ``alertmanagers`` (host:port)."""
        return prometheus_server(
            self.spec.parent / "tsdb",
            rule_files=[self.rules],
            scrape=[target],
            scrape_interval="1s",
            evaluation_interval="5s",
            alertmanagers=alertmanagers,
        )


def routed(tmp_path: Path, timing: Timing) -> Routed:
    """Write the SLO file, its rules and an Alertmanager configuration whose Slack
    webhook (a secret file) points at a local Slack double, which is started."""
    spec = tmp_path / "e2e.yaml"
    spec.write_text(SLO)
    services = load_specs([str(spec)])
    rules = tmp_path / "e2e.rules.yml"
    rules.write_text(render(services[0]))
    slack = SlackAPI()
    slack_server = serve(slack)
    webhook = tmp_path / "slack-webhook-url"
    webhook.write_text(f"http://127.0.0.1:{slack_server.server_address[1]}/webhook/T0/B0/secret")
    config = tmp_path / "alertmanager.yml"
    config.write_text(render_config(services, webhook_file=str(webhook), timing=timing))
    return Routed(spec, rules, config, slack, slack_server)


def test_an_outage_pages_once_with_the_runbook_inhibits_the_ticket_and_resolves(
    service: tuple[Service, str], tmp_path: Path
) -> None:
    live, target = service
    # Pairs start burning an evaluation or two apart: a group_wait of three
    # evaluations gathers them into the one page; updates go out at once.
    setup = routed(tmp_path, Timing(group_wait="15s", group_interval="1s"))
    config, messages = setup.config, setup.messages
    assert "secret" not in config.read_text()

    with (
        alertmanager_server(config, tmp_path / "am") as am,
        setup.prometheus(target, alertmanagers=[am.removeprefix("http://")]),
    ):
        wait_for("the page", lambda: bool(messages("#e2e-oncall")))
        # Every pair burns; Alertmanager holds the ticket alerts as inhibited by the page.
        wait_for(
            "the tickets to be inhibited",
            lambda: any(
                a["labels"].get("severity") == "ticket" and a["status"]["inhibitedBy"]
                for a in alerts(am)
            ),
        )
        time.sleep(17)  # a ticket message would have come by now (group_wait is 15s)
        pages = messages("#e2e-oncall")
        assert len(pages) == 1, json.dumps(pages, indent=1)
        (page,) = pages
        assert messages("#e2e-alerts") == []
        (attachment,) = page["attachments"]
        assert attachment["title"] == "[PAGE] e2e/availability"
        assert "burning its error budget" in attachment["text"]
        assert "objective 99% over 30d" in attachment["text"]
        assert attachment["actions"] == [
            {
                "type": "button",
                "text": "Runbook",
                "url": "https://runbooks.example/e2e/provider-outage.md",
            }
        ]

        live.recovered = True
        wait_for(
            "the resolution",
            lambda: (
                messages("#e2e-oncall")[-1]["attachments"][0]["title"]
                == "[RESOLVED] e2e/availability"
            ),
        )
        assert messages("#e2e-alerts") == []
    setup.server.shutdown()
