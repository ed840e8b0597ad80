"""High availability through Alertmanager, end to end through the real parts: a live
service scraped by a real Prometheus running the generated rules, two `sloengine run`
replicas (each with its own state database) sending their alert state to two clustered
real Alertmanagers running the configuration `sloengine alertmanager` writes, and a
local server standing in for the Slack webhook.

An outage pages once, though two replicas see it and two Alertmanagers hear it; when a
replica and an Alertmanager die mid-incident, nobody is paged again and nothing
resolves; when the service recovers, the surviving pair posts the resolution once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from test_alertmanager_e2e import Service, alerts, routed, service, wait_for

from sloengine.alertmanager import Timing
from sloengine.sim.launch import alertmanager_cluster, free_port

__all__ = ["service"]  # the live service's fixture, shared with the single-Alertmanager test

INTERVAL = "1"  # seconds between the replicas' cycles: a lease of 4s


@dataclass
class Replica:
    process: subprocess.Popen[bytes]
    listen: str  # host:port of its /metrics


def replica(
    prometheus: str, spec: Path, alertmanagers: list[str], workdir: Path, slack: str
) -> Replica:
    """`sloengine run` with its own state, sending to every Alertmanager; ``slack`` is a
    webhook it would post to itself without --alertmanager."""
    workdir.mkdir()
    listen = f"127.0.0.1:{free_port()}"
    command = [
        sys.executable,
        "-m",
        "sloengine.cli",
        "run",
        "--prometheus",
        prometheus,
        "--interval",
        INTERVAL,
        "--state",
        str(workdir / "state.db"),
        "--listen",
        listen,
        *(x for url in alertmanagers for x in ("--alertmanager", url)),
        str(spec),
    ]
    log = (workdir / "run.log").open("wb")
    env = {**os.environ, "SLACK_WEBHOOK_URL": slack}
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    return Replica(process, listen)


@pytest.fixture
def replicas() -> Iterator[list[Replica]]:
    started: list[Replica] = []
    yield started
    for r in started:
        if r.process.poll() is None:
            r.process.terminate()
            r.process.wait(timeout=30)


def failures(r: Replica) -> dict[str, float]:
    """The replica's failed posts per Alertmanager, from its /metrics."""
    with urllib.request.urlopen(f"http://{r.listen}/metrics", timeout=10) as response:
        text = response.read().decode()
    out = {}
    for line in text.splitlines():
        if line.startswith("sloengine_alertmanager_post_failures_total{"):
            labels, value = line.rsplit(" ", 1)
            out[labels.split('"')[1]] = float(value)
    return out


def page_alerts(alertmanager: str) -> list[dict[str, Any]]:
    return [a for a in alerts(alertmanager) if a["labels"]["severity"] == "page"]


def holds_incident(alertmanager: str) -> Callable[[], bool]:
    def holds() -> bool:
        found = alerts(alertmanager)
        states = sorted((a["labels"]["severity"], bool(a["status"]["inhibitedBy"])) for a in found)
        return states == [("page", False)] * 2 + [("ticket", True)] * 2

    return holds


def test_two_replicas_and_two_alertmanagers_page_once_and_survive_losing_one_of_each(
    service: tuple[Service, str], tmp_path: Path, replicas: list[Replica]
) -> None:
    live, target = service
    # The pairs start firing a cycle or two apart: a group_wait of 10s gathers them
    # into one page; updates (the resolution) go out within a second.
    setup = routed(tmp_path, Timing(group_wait="10s", group_interval="1s"))
    spec, config, messages = setup.spec, setup.config, setup.messages

    def titles() -> list[str]:
        return [m["attachments"][0]["title"] for m in messages("#e2e-oncall")]

    with (
        alertmanager_cluster(config, tmp_path / "am") as members,
        # Prometheus evaluates the rules but sends no alerts: the replicas do.
        setup.prometheus(target) as prometheus,
    ):
        urls = [m.url for m in members]
        direct = f"http://127.0.0.1:{setup.server.server_address[1]}/webhook/T0/B0/direct"
        for name in ("a", "b"):
            replicas.append(replica(prometheus, spec, urls, tmp_path / name, direct))

        wait_for("the page", lambda: bool(messages("#e2e-oncall")), seconds=60)
        # Both Alertmanagers hold both page pairs (one alert each, from both replicas)
        # and the tickets, inhibited by the page.
        for url in urls:
            wait_for(f"{url} to hold the pages and the inhibited tickets", holds_incident(url))
        time.sleep(4)  # the second Alertmanager would have paged by now (peer timeout 3s)
        assert titles() == ["[PAGE] e2e/availability"], json.dumps(messages("#e2e-oncall"))
        assert messages("#e2e-alerts") == []  # the ticket is inhibited by the page
        (page,) = messages("#e2e-oncall")
        assert page["attachments"][0]["actions"][0]["url"] == (
            "https://runbooks.example/e2e/provider-outage.md"
        )

        # Lose a replica and an Alertmanager mid-incident.
        replicas[0].process.kill()
        replicas[0].process.wait()
        members[0].kill()
        survivor = members[1].url
        # Three leases: had the surviving replica stopped refreshing, the pages would
        # have lapsed and resolved by now.
        time.sleep(12)
        assert all(a["status"]["state"] == "active" for a in page_alerts(survivor))
        assert titles() == ["[PAGE] e2e/availability"], json.dumps(messages("#e2e-oncall"))

        live.recovered = True
        wait_for(
            "the resolution",
            lambda: titles()[-1:] == ["[RESOLVED] e2e/availability"],
            seconds=60,
        )
        time.sleep(2)  # a second resolution would have come by now (group_interval 1s)
        assert titles() == ["[PAGE] e2e/availability", "[RESOLVED] e2e/availability"]
        assert messages("#e2e-alerts") == []
        # Alertmanager posted both; the replicas posted nothing to Slack themselves.
        assert len(setup.slack.webhook) == 2
        # The survivor counts its failed posts to the dead Alertmanager, and runs on.
        counted = failures(replicas[1])
        assert counted[urls[0]] > 0 and counted[survivor] == 0, counted
        assert replicas[1].process.poll() is None
    setup.server.shutdown()
