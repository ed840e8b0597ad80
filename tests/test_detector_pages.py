"""Detector pages through the real slack-sdk client against the local Slack Web API, and
on the console: the detector, group and version, recent and baseline values, the change
in percent, the first look and the cost-spike runbook; the resolution in the thread."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from slack_api import TOKEN, SlackAPI
from test_slack import slack, texts

from sloengine.alerting import AlertRow
from sloengine.conventions import Mode, Severity
from sloengine.delivery import Message
from sloengine.detectors.incidents import advance_detector
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import Reading, judge_detector
from sloengine.loading import load_specs
from sloengine.notify import ConsoleNotifier, SlackNotifier
from sloengine.state import Store

SPEC = """\
apiVersion: sloengine/v1
service: chat
owner: assistant-team
notify: {ticket: {slack_channel: "#chat-cost"}}
runbooks: {base_url: "https://runbooks.example/chat/"}
slos:
  - {name: a, objective: 99, sli: {success_rate: {}}}
detectors:
  - {name: prompt-cost, kind: prompt_version_cost, group_by: [feature], window: 6h,
     baseline: 7d, max_increase: 50%, runbook: cost-spike.md,
     description: A new prompt version costs more per call than its feature did}
"""
GROUP = {"feature": "summarize", "prompt_sha": "9f8e7d6"}
LOOK = {
    "first_look_window": "6h",
    "first_look_what": "extra cost",
    "first_look": [{"label": "model", "values": [["gpt-4o", 0.7], ["claude-sonnet-4", 0.3]]}],
}


@pytest.fixture
def detector(tmp_path: Path) -> Detector:
    path = tmp_path / "chat.yaml"
    path.write_text(SPEC)
    (service,) = load_specs([str(path)])
    (det,) = service.detectors
    return det


def _messages(det: Detector) -> list[Message]:
    """The opening page, then the resolution, as the scheduler queues them."""
    rows: dict[str, AlertRow] = {}
    out: list[Message] = []
    for i, recent in enumerate((0.02, 0.01)):
        read = Reading(recent, 0.01, 4000, 90000, Mode.RECORDED, GROUP)
        step = advance_detector(
            det, rows, judge_detector(det, read, 300), 1000.0 + 300 * i, look=LOOK
        )
        rows |= {r.key: r for r in step.rows}
        out += [Message(len(out) + 1, n.kind, n.incident, n.payload, 0) for n in step.notifications]
    return out


__all__ = ["slack"]  # the local Slack API fixture, shared with test_slack


def test_a_detector_page_in_slack_names_group_version_values_change_and_runbook(
    slack: tuple[SlackAPI, str], tmp_path: Path, detector: Detector
) -> None:
    api, url = slack
    store = Store(tmp_path / "state.db")
    notifier = SlackNotifier(store, token=TOKEN, base_url=f"{url}/api/", timeout=1)
    page, resolved = _messages(detector)
    notifier.send(page)
    (message,) = api.posts()
    assert message["channel"] == "#chat-cost"
    title = "TICKET: chat/prompt-cost for feature=summarize, prompt_sha=9f8e7d6"
    assert message["blocks"][0]["text"]["text"] == title
    body = texts(message)
    assert "A new prompt version costs more per call than its feature did" in body
    assert "*cost per call ($)* regressed (prompt_version_cost detector)" in body
    assert (
        "cost per call ($) $0.02 over the last 6h against $0.01 over the 7d before it: "
        "+100.0% (limit +50%)" in body
    )
    assert "4,000 calls recent, 90,000 in the baseline (min_events 100)" in body
    assert "*First look* (extra cost over the last 6h):\n*model*: `gpt-4o` 70%" in body
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://runbooks.example/chat/cost-spike.md"
    notifier.send(resolved)
    reply = api.posts()[-1]
    assert reply["thread_ts"] == message["ts"]
    assert reply["blocks"][0]["text"]["text"] == title.replace("TICKET", "RESOLVED")
    assert "back within its limit" in texts(reply)


def test_a_detector_page_on_the_console_says_the_same(detector: Detector) -> None:
    out = io.StringIO()
    page, resolved = _messages(detector)
    ConsoleNotifier(out).send(page)
    ConsoleNotifier(out).send(resolved)
    text = out.getvalue()
    assert text.startswith(
        "[TICKET] chat/prompt-cost for feature=summarize, prompt_sha=9f8e7d6: "
        "cost per call ($) regressed (prompt_version_cost detector)\n"
        "  A new prompt version costs more per call than its feature did\n"
        "  cost per call ($) $0.02 over the last 6h against $0.01 over the 7d before it: "
        "+100.0% (limit +50%)\n"
        "  4,000 calls recent, 90,000 in the baseline (min_events 100)   owner: assistant-team\n"
        "  data: ok (recorded mode)\n"
        "  first look (extra cost over the last 6h):\n"
        "    model: gpt-4o 70%, claude-sonnet-4 30%\n"
        "  runbook: https://runbooks.example/chat/cost-spike.md\n"
        "  would go to: #chat-cost\n"
    )
    assert "[RESOLVED] chat/prompt-cost for feature=summarize, prompt_sha=9f8e7d6: " in text
    assert page.payload["severity"] == Severity.TICKET


def test_the_overview_shows_a_row_per_detector_group_firing_first_and_escaped(
    detector: Detector,
) -> None:
    from sloengine.web import pages, views

    hostile = {"feature": "<script>x</script>", "prompt_sha": "a1"}
    calm = judge_detector(detector, Reading(0.01, 0.01, 4000, 90000, Mode.RAW, hostile), 300)
    firing = judge_detector(detector, Reading(0.02, 0.01, 4000, 90000, Mode.RAW, GROUP), 300)
    view = views.overview([], {}, views.Filters(), 1000.0, [calm, firing])
    assert [(d.group, d.state, d.change) for d in view.detectors] == [
        ("feature=summarize, prompt_sha=9f8e7d6", "ticket", "+100.0%"),
        ("feature=<script>x</script>, prompt_sha=a1", "ok", "+0.0%"),
    ]
    html = pages.render_overview(view)
    assert '<table id="detectors">' in html
    assert 'data-detector="prompt-cost"' in html and ">$0.02<" in html
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    only = views.overview([], {}, views.Filters(state="ok"), 1000.0, [calm, firing])
    assert [d.state for d in only.detectors] == ["ok"]
