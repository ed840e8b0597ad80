"""The README's main job, `sloengine demo`, end to end: it must keep working."""

from __future__ import annotations

import re

from conftest import ROOT

from sloengine.demo import run_demo
from sloengine.loading import load_specs


def test_the_demo_shows_status_prometheus_alerts_and_the_page_with_its_runbook() -> None:
    (service,) = load_specs([str(ROOT / "slos" / "chat-assistant.yaml")])
    lines: list[str] = []
    run_demo(service, lines.append)
    text = "\n".join(lines)
    assert "== sloengine status ==" in text
    assert "chat-assistant/availability  [PAGE]  health: ok (recorded mode)" in text
    assert (
        "SLOErrorBudgetBurn chat-assistant/availability severity=page long_window=1h "
        "short_window=5m" in text
    )
    page, replayed = text.split("== 5/5 pages the scheduler sends", 1)[1].split(
        "== sloengine backtest", 1
    )
    assert "[PAGE] chat-assistant/availability is burning its error budget" in page
    assert "runbook: https://github.com/acme/chat/blob/main/runbooks/provider-outage.md" in page
    # The first look names the provider behind the failures. The others' baseline errors
    # come one at a time (anthropic's about one every ten minutes in the afternoon), so a
    # 5m window can hold one of them beside the outage's: some 70 in the afternoon, 10 at
    # the night trough (the simulator's exact counters: openai 91% at worst).
    look = re.search(
        r"first look \(bad events over the last 5m\):\n    provider: openai (\d+)%", page
    )
    assert look is not None, page
    assert int(look.group(1)) >= 85, page
    # Only the outage pages: every other SLO of the example stays quiet.
    assert page.count("[PAGE]") == 1
    # Beside the outage, the retry storm no SLO sees: the detectors ticket it, and only
    # they do (every ticket is a detector's).
    tickets = [line for line in page.splitlines() if line.startswith("[TICKET]")]
    assert all(" regressed (" in line and "detector)" in line for line in tickets), tickets
    storm = page.split("[TICKET] chat-assistant/tokens-per-call: tokens per call regressed", 1)[1]
    storm = storm.split("\n\n", 1)[0]
    assert "over the 7d before it: +" in storm and "(limit +50%)" in storm
    assert "first look (extra tokens over the last 1h):\n    provider: " in storm
    assert "runbook: https://github.com/acme/chat/blob/main/runbooks/cost-spike.md" in storm
    assert "== sloengine status: detectors (worse than it was) ==" in text
    assert "chat-assistant/tokens-per-call  [TICKET]  health: ok (raw mode)" in text
    # The backtest of the three days finds the past provider outage and the one under way.
    availability = replayed.split("chat-assistant/availability", 1)[1].split("\n\n", 1)[0]
    assert availability.count("page   1h/5m") == 2
    assert "still firing" in availability
