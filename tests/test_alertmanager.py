"""The Alertmanager configuration `sloengine alertmanager` writes: accepted by amtool,
routed per SLO and severity, Runbook buttons only where there is a runbook, a page
inhibiting its own SLO's ticket, and the webhook URL never in the file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from sloengine.alertmanager import DEFAULT_WEBHOOK_FILE, build_config, render_config
from sloengine.cli import cli
from sloengine.conventions import Severity
from sloengine.errors import UserError
from sloengine.loading import load_specs

CHAT = str(ROOT / "slos" / "chat-assistant.yaml")
GATEWAY = str(ROOT / "slos" / "gateway.yaml")
DEFAULTS = {Severity.PAGE: "#platform-oncall", Severity.TICKET: "#platform-alerts"}


@pytest.mark.parametrize(
    "paths",
    [
        [str(ROOT / "slos")],
        # The preset fixtures; the subdirectories hold Sloth and OpenSLO files to import.
        sorted(str(p) for p in (ROOT / "tests" / "fixtures").glob("*.yaml")),
    ],
    ids=["examples", "preset fixtures"],
)
def test_amtool_accepts_the_configuration(amtool: str, tmp_path: Path, paths: list[str]) -> None:
    out = tmp_path / "alertmanager.yml"
    out.write_text(render_config(load_specs(paths), channels=DEFAULTS))
    done = subprocess.run([amtool, "check-config", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_each_slo_and_severity_routes_to_its_files_channel_grouped_by_service_and_slo() -> None:
    config = build_config(load_specs([CHAT]))
    routes = config["route"]["routes"]
    receivers = {r["name"]: r for r in config["receivers"]}
    chat = load_specs([CHAT])[0]
    severities = [{w.severity for w in o.active_windows()} for o in chat.objectives]
    # One per SLO and live severity, and one per detector.
    assert len(routes) == sum(len(s) for s in severities) + len(chat.detectors)
    page = next(
        r
        for r in routes
        if 'slo="availability"' in r["matchers"] and 'severity="page"' in r["matchers"]
    )
    assert page["matchers"] == [
        'alertname="SLOErrorBudgetBurn"',
        'service="chat-assistant"',
        'slo="availability"',
        'severity="page"',
    ]
    assert page["group_by"] == ["service", "slo", "severity"]
    slack = receivers[page["receiver"]]["slack_configs"][0]
    assert slack["channel"] == "#chat-oncall"
    assert slack["send_resolved"] is True
    assert slack["api_url_file"] == DEFAULT_WEBHOOK_FILE
    assert "Annotations.description" in slack["text"]
    assert [a["text"] for a in slack["actions"]] == ["Runbook"]


def test_each_detector_routes_to_its_files_channel_per_group_as_amtool_resolves_it(
    amtool: str, tmp_path: Path
) -> None:
    chat = load_specs([CHAT])[0]
    out = tmp_path / "alertmanager.yml"
    out.write_text(render_config([chat]))
    config = yaml.safe_load(out.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    for det in chat.detectors:
        labels = {
            "alertname": "SLODetectorRegression",
            "service": det.service,
            "detector": det.name,
            "severity": det.severity.value,
            **dict.fromkeys(det.keys, "chat"),
        }
        done = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={out}"]
            + [f"{k}={v}" for k, v in labels.items()],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        [receiver] = done.stdout.split()
        slack = receivers[receiver]["slack_configs"][0]
        assert slack["channel"] == det.channels[det.severity] == "#chat-alerts"
        route = next(
            r
            for r in config["route"]["routes"]
            if r["receiver"] == receiver and f'detector="{det.name}"' in r["matchers"]
        )
        assert route["group_by"] == ["service", "detector", "severity", *det.keys]
        assert [a["text"] for a in slack.get("actions", [])] == (
            ["Runbook"] if det.runbook_url else []
        )


def test_a_page_inhibits_the_same_slos_ticket_and_a_groups_page_only_its_groups_ticket() -> None:
    config = build_config(load_specs([CHAT]))
    (rule,) = config["inhibit_rules"]
    # feature-spend is grouped by feature; on ungrouped alerts the label is absent on both
    # sides, which Alertmanager counts as equal.
    assert rule == {
        "source_matchers": ['alertname="SLOErrorBudgetBurn"', 'severity="page"'],
        "target_matchers": ['alertname="SLOErrorBudgetBurn"', 'severity="ticket"'],
        "equal": ["service", "slo", "feature"],
    }
    grouped = [r for r in config["route"]["routes"] if 'slo="feature-spend"' in r["matchers"]]
    assert [r["group_by"] for r in grouped] == [["service", "slo", "severity", "feature"]] * 2


def test_an_slo_without_a_runbook_gets_no_runbook_button(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "apiVersion: sloengine/v1\nservice: bare\n"
        "notify: {page: {slack_channel: '#bare'}, ticket: {slack_channel: '#bare'}}\n"
        "slos:\n  - {name: ok, objective: 99, sli: {success_rate: {}}}\n"
    )
    config = build_config(load_specs([str(spec)]))
    for receiver in config["receivers"][1:]:
        assert "actions" not in receiver["slack_configs"][0]


def test_the_webhook_url_is_never_written_only_the_file_alertmanager_reads_it_from() -> None:
    text = render_config(load_specs([CHAT]), webhook_file="/run/secrets/slack")
    assert "api_url_file: /run/secrets/slack" in text
    assert "api_url:" not in text and "hooks.slack.com" not in text


def test_a_file_without_a_route_needs_a_default_channel() -> None:
    with pytest.raises(UserError, match=r"no Slack channel for .*api-gateway/errors \(ticket\)"):
        build_config(load_specs([GATEWAY]))
    config = build_config(load_specs([GATEWAY]), channels=DEFAULTS)
    channels = {r["slack_configs"][0]["channel"] for r in config["receivers"][1:]}
    assert channels == {"#platform-oncall", "#platform-alerts"}


def test_the_command_writes_the_file_and_check_finds_it_current(tmp_path: Path) -> None:
    out = tmp_path / "am.yml"
    runner = CliRunner()
    args = ["alertmanager", CHAT, "--out", str(out), "--group-wait", "10s"]
    assert runner.invoke(cli, args).exit_code == 0
    assert yaml.safe_load(out.read_text())["route"]["group_wait"] == "10s"
    assert runner.invoke(cli, [*args, "--check"]).exit_code == 0
    assert runner.invoke(cli, [*args[:-1], "20s", "--check"]).exit_code == 1
