"""Pages in Slack through the real slack-sdk client, against a local Slack Web API double.

Each test queues notifications in the outbox as the scheduler does, delivers them, and
checks exactly what the Slack double received: messages, threads, updates, retries.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from slack_api import TOKEN, Failure, SlackAPI, serve

from sloengine.alerting import Event, payload
from sloengine.conventions import Mode, Severity
from sloengine.errors import UserError
from sloengine.evaluate import Evaluator
from sloengine.loading import load_specs
from sloengine.model import Objective
from sloengine.notify import ConsoleNotifier, SlackNotifier, make_notifier
from sloengine.prometheus import Prometheus
from sloengine.scheduler import Engine
from sloengine.state import Store
from sloengine.status import Rates, Status, judge

NOW = 1_800_000_000.0
SPEC = str(ROOT / "tests" / "live-slos" / "outage.yaml")


class Clock:
    def __init__(self) -> None:
        self.t = NOW

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def slack() -> Iterator[tuple[SlackAPI, str]]:
    api = SlackAPI()
    server = serve(api)
    yield api, f"http://127.0.0.1:{server.server_address[1]}"
    api.released.set()
    server.shutdown()


def availability() -> Objective:
    return next(o for s in load_specs([SPEC]) for o in s.objectives if o.name == "availability")


def burning(obj: Objective, bad_ratio: float) -> Status:
    windows = {300, 1800, 3600, 7200, 21600, 86400, 259200, 2592000}
    return judge(
        obj,
        Rates({w: bad_ratio * 10 for w in windows}, {w: 10.0 for w in windows}, Mode.RECORDED),
        NOW,
    )


def setup(
    tmp_path: Path, url: str, *, token: str = TOKEN, webhook: str | None = None
) -> tuple[Engine, Clock]:
    store = Store(tmp_path / "state.db")
    notifier = SlackNotifier(
        store,
        token=None if webhook else token,
        webhook_url=webhook,
        base_url=f"{url}/api/",
        channels={Severity.TICKET: "#chat-alerts"},
        timeout=1,
    )
    clock = Clock()
    engine = Engine(
        [availability()], Evaluator(Prometheus("http://127.0.0.1:9")), store, notifier, clock=clock
    )
    return engine, clock


def enqueue(engine: Engine, kind: str, severity: str = "page", **extra: Any) -> None:
    obj = availability()
    status = burning(obj, 0.5 if kind != "resolved" else 0.0)
    look = {
        "first_look_window": "5m",
        "first_look": [{"label": "model", "values": [["gpt-4o", 0.82], ["claude-3", 0.18]]}],
    }
    content = {**payload(obj, status, Severity(severity), NOW, look), **extra}
    with engine.store.transaction() as db:
        engine.store.enqueue(db, Event(kind), "chat-assistant/availability/1800000000", content)


def texts(message: dict[str, Any]) -> str:
    out = []
    for block in message["blocks"]:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [
            e.get("text", {}).get("text", "")
            for e in block.get("elements", [])
            if isinstance(e.get("text"), dict)
        ]
    return "\n".join(out)


def test_a_page_is_one_block_kit_message_with_burn_budget_first_look_and_runbook_button(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    engine, _ = setup(tmp_path, url)
    enqueue(engine, "firing")
    assert engine.deliver() == 1
    (message,) = api.posts()
    assert message["channel"] == "#chat-oncall"
    assert message["thread_ts"] is None
    assert message["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "PAGE: chat-assistant/availability"},
    }
    body = texts(message)
    assert "Requests that return an answer" in body
    assert "Objective *99.5%* over 30d · owner *assistant-team*" in body
    assert "*page* 1h / 5m: 100.0x / 100.0x (threshold 14.4x) :fire:" in body
    assert "*Error budget left:* -9900.0%" in body
    assert (
        "*First look* (bad events over the last 5m):\n*model*: `gpt-4o` 82%, `claude-3` 18%" in body
    )
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert actions["elements"][0]["url"] == "https://runbooks.example/chat/provider-outage.md"
    assert actions["elements"][0]["text"]["text"] == "Runbook"
    assert message["metadata"]["event_payload"]["outbox_id"] == 1
    assert message["text"] == (
        "PAGE: chat-assistant/availability — https://runbooks.example/chat/provider-outage.md"
    )


def test_escalation_goes_in_the_thread_and_resolution_replies_and_updates_the_original(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    engine, _ = setup(tmp_path, url)
    enqueue(engine, "firing", severity="ticket")
    enqueue(engine, "escalated", severity="page")
    enqueue(engine, "renotify", severity="page")
    enqueue(engine, "resolved", severity="page")
    assert engine.deliver() == 4
    first, escalated, again, resolved = api.posts("#chat-alerts")
    assert first["thread_ts"] is None
    assert first["blocks"][0]["text"]["text"] == "RESOLVED: chat-assistant/availability"
    assert first.get("edited") is True
    assert escalated["thread_ts"] == first["ts"]
    assert (
        escalated["blocks"][0]["text"]["text"] == "ESCALATED to PAGE: chat-assistant/availability"
    )
    assert again["blocks"][0]["text"]["text"] == "STILL PAGE: chat-assistant/availability"
    assert resolved["thread_ts"] == first["ts"]
    assert resolved["blocks"][0]["text"]["text"] == "RESOLVED: chat-assistant/availability"
    assert [m for m, _ in api.calls].count("chat.update") == 1


def test_429_waits_for_retry_after_then_delivers_exactly_once(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    api.fail("chat.postMessage", Failure("429", retry_after=7))
    engine, clock = setup(tmp_path, url)
    enqueue(engine, "firing")
    assert engine.deliver() == 0
    clock.t = NOW + 6
    assert engine.deliver() == 0  # not before Retry-After
    clock.t = NOW + 7
    assert engine.deliver() == 1
    assert len(api.posts()) == 1


def test_a_500_is_retried_with_backoff_and_delivered_once(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    api.fail("chat.postMessage", Failure("500"), Failure("500"))
    engine, clock = setup(tmp_path, url)
    enqueue(engine, "firing")
    for step in range(1, 10):
        clock.t = NOW + step * 10
        engine.deliver()
    assert len(api.posts()) == 1
    assert engine.store.pending_count() == 0


def test_a_timeout_after_the_post_landed_does_not_post_twice(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    api.fail("chat.postMessage", Failure("slow", delay=2.5))
    engine, clock = setup(tmp_path, url)
    enqueue(engine, "firing")
    assert engine.deliver() == 0  # the client gave up after 1s; Slack had the message
    clock.t = NOW + 60
    assert engine.deliver() == 1
    assert len(api.posts()) == 1
    assert "conversations.history" in [m for m, _ in api.calls]
    # The thread was recovered from the metadata: a resolution goes into it.
    enqueue(engine, "resolved")
    engine.deliver()
    assert api.posts()[-1]["thread_ts"] == api.posts()[0]["ts"]


@pytest.mark.parametrize("error", ["invalid_auth", "channel_not_found"])
def test_permanent_errors_are_reported_once_and_never_retried(
    slack: tuple[SlackAPI, str], tmp_path: Path, caplog: pytest.LogCaptureFixture, error: str
) -> None:
    api, url = slack
    api.fail("chat.postMessage", Failure(error))
    engine, clock = setup(tmp_path, url)
    enqueue(engine, "firing")
    with caplog.at_level(logging.ERROR, logger="sloengine"):
        engine.deliver()
        clock.t = NOW + 3600
        engine.deliver()
    assert [m for m, _ in api.calls].count("chat.postMessage") == 1
    assert engine.store.failed() == [(1, "firing", f"Slack refused the message: {error}")]
    assert f"Slack refused the message: {error}" in caplog.text
    assert TOKEN not in caplog.text


def test_a_wrong_token_is_invalid_auth_and_the_token_is_never_logged(
    slack: tuple[SlackAPI, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _, url = slack
    engine, _ = setup(tmp_path, url, token="xoxb-wrong-secret")
    enqueue(engine, "firing")
    with caplog.at_level(logging.DEBUG):
        engine.deliver()
    assert engine.store.failed()[0][2] == "Slack refused the message: invalid_auth"
    assert "xoxb-wrong-secret" not in caplog.text


def test_label_values_cannot_inject_links_or_mentions(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    engine, _ = setup(tmp_path, url)
    obj = availability()
    look = {
        "first_look_window": "5m",
        "first_look": [{"label": "model", "values": [["<!channel> <http://evil|x> & `", 1.0]]}],
    }
    with engine.store.transaction() as db:
        engine.store.enqueue(
            db, Event.FIRING, "i", payload(obj, burning(obj, 0.5), Severity.PAGE, NOW, look)
        )
    engine.deliver()
    body = texts(api.posts()[0])
    assert "`&lt;!channel&gt; &lt;http://evil|x&gt; &amp; '` 100%" in body
    assert "<!channel>" not in body and "<http://evil" not in body


def test_long_content_is_cut_to_slacks_limits_not_rejected(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    engine, _ = setup(tmp_path, url)
    enqueue(engine, "firing", description="x" * 10_000)
    assert engine.deliver() == 1
    section = api.posts()[0]["blocks"][1]["text"]["text"]
    assert len(section) == 3000
    assert section.endswith("…")


def test_an_incoming_webhook_gets_the_same_blocks(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    engine, _ = setup(tmp_path, url, webhook=f"{url}/webhook/T000/B000")
    enqueue(engine, "firing")
    assert engine.deliver() == 1
    (posted,) = api.webhook
    assert posted["blocks"][0]["text"]["text"] == "PAGE: chat-assistant/availability"


def test_without_slack_configuration_pages_go_to_the_console(tmp_path: Path) -> None:
    out = io.StringIO()
    notifier = make_notifier(Store(tmp_path / "s.db"), {}, channels={}, out=out)
    assert type(notifier).__name__ == "ConsoleNotifier"
    slack_notifier = make_notifier(
        Store(tmp_path / "t.db"), {"SLACK_BOT_TOKEN": TOKEN}, channels={Severity.PAGE: "#x"}
    )
    assert isinstance(slack_notifier, SlackNotifier)


def test_a_slack_server_without_history_still_gets_the_retried_page(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    api.fail("chat.postMessage", Failure("500"))
    api.fail("conversations.history", Failure("unknown_method"))
    engine, clock = setup(tmp_path, url)
    enqueue(engine, "firing")
    engine.deliver()
    clock.t = NOW + 60
    assert engine.deliver() == 1
    assert len(api.posts()) == 1


def test_the_blind_page_reaches_the_page_channel_the_slo_file_names(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    # No page channel on the command line: the only one is notify.page in the SLO file.
    api, url = slack
    engine, clock = setup(tmp_path, url)
    for minute in range(3):
        clock.t = NOW + 60 * minute
        engine.cycle()  # Prometheus at 127.0.0.1:9 never answers
    assert engine.store.failed() == []
    (post,) = api.posts("#chat-oncall")
    assert post["text"].startswith("PAGE: SLO evaluation is blind")


def test_a_retry_after_of_an_hour_is_honoured_for_five_minutes_at_most(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    api, url = slack
    api.fail("chat.postMessage", Failure("429", retry_after=3600))
    engine, clock = setup(tmp_path, url)
    enqueue(engine, "firing")
    assert engine.deliver() == 0
    clock.t = NOW + 299
    assert engine.deliver() == 0
    clock.t = NOW + 300
    assert engine.deliver() == 1  # later pages do not wait an hour behind this one


@pytest.mark.parametrize("webhook", [False, True], ids=["web api", "webhook"])
def test_a_proxy_echoing_the_credentials_never_puts_them_in_logs_or_the_outbox(
    slack: tuple[SlackAPI, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    webhook: bool,
) -> None:
    api, url = slack
    secret_url = f"{url}/webhook/T000/B000/webhook-secret-part"
    api.fail("webhook" if webhook else "chat.postMessage", Failure("echo-auth"))
    engine, clock = setup(tmp_path, url, webhook=secret_url if webhook else None)
    enqueue(engine, "firing")
    with caplog.at_level(logging.DEBUG):
        engine.deliver()
        clock.t = NOW + 3600
        engine.deliver()
    stored = repr(engine.store.failed()) + repr(engine.store.due(NOW + 10**6))
    for secret in (TOKEN, "webhook-secret-part"):
        assert secret not in caplog.text
        assert secret not in stored
    assert "401" in caplog.text


def test_a_webhook_url_without_a_scheme_is_refused_at_start_without_echoing_it(
    tmp_path: Path,
) -> None:
    env = {"SLACK_WEBHOOK_URL": "hooks.slack.com/services/T0/B0/secret-part"}
    with pytest.raises(UserError) as caught:
        make_notifier(Store(tmp_path / "s.db"), env, channels={})
    assert "not an http(s) URL" in str(caught.value)
    assert "secret-part" not in str(caught.value)


@pytest.mark.parametrize(
    ("runbook", "button"),
    [
        ("https://runbooks.example/chat/provider-outage.md", True),
        ("javascript:alert(1)", False),
        ("slack://channel?id=C1", False),
        ("https://runbooks.example/" + "x" * 3000, False),
    ],
)
def test_only_a_web_url_of_slacks_length_becomes_a_button_and_the_text_is_escaped(
    slack: tuple[SlackAPI, str], tmp_path: Path, runbook: str, button: bool
) -> None:
    api, url = slack
    engine, _ = setup(tmp_path, url)
    enqueue(engine, "firing", runbook_url=runbook + "<!channel>")
    assert engine.deliver() == 1  # Slack accepted it: no button it would refuse
    (post,) = api.posts()
    buttons = [e for b in post["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert bool(buttons) == (button and len(runbook) < 3000 - len("<!channel>"))
    assert "<!channel>" not in post["text"]
    assert "&lt;!channel&gt;" in post["text"]


def test_a_revoked_token_turns_health_and_metrics_red_until_a_page_gets_through(
    slack: tuple[SlackAPI, str], tmp_path: Path
) -> None:
    from prometheus_client import generate_latest

    api, url = slack
    api.fail("chat.postMessage", Failure("token_revoked"))
    engine, _ = setup(tmp_path, url)
    enqueue(engine, "firing")
    engine.deliver()
    ok, detail = engine.health()
    assert not ok
    assert detail["delivery_failure"] == "Slack refused the message: token_revoked"
    assert detail["outbox_failed"] == 1
    engine.cycle()  # Prometheus is unreachable here; the cycle still updates the gauges
    metrics = generate_latest(engine.metrics.registry).decode()
    assert "sloengine_delivery_failing 1.0" in metrics
    assert "sloengine_outbox_failed 1.0" in metrics
    enqueue(engine, "renotify")  # the token was fixed: the next page gets through
    engine.deliver()
    assert engine.health()[1].get("delivery_failure") is None
    assert engine.store.get("delivery_failure") == ""


def test_a_template_override_with_a_syntax_error_stops_run_at_start_with_file_and_line(
    tmp_path: Path,
) -> None:
    from click.testing import CliRunner

    from sloengine.cli import cli

    (tmp_path / "console.txt.j2").write_text("[PAGE] {{ p.severity\n")
    result = CliRunner().invoke(
        cli,
        [
            "run",
            "--prometheus",
            "http://127.0.0.1:9",
            "--once",
            "--state",
            str(tmp_path / "s.db"),
            "--templates",
            str(tmp_path),
            SPEC,
        ],
    )
    assert result.exit_code == 2
    assert "console.txt.j2:1: template error" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("to_slack", [False, True], ids=["console", "slack"])
def test_a_template_override_that_fails_at_page_time_falls_back_and_the_page_goes_out(
    slack: tuple[SlackAPI, str],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    to_slack: bool,
) -> None:
    api, url = slack
    overrides = tmp_path / "templates"
    overrides.mkdir()
    (overrides / "console.txt.j2").write_text("{{ p.no_such_field }}")
    (overrides / "slack.json.j2").write_text('{"text": {{ p.no_such_field | tojson }}}')
    out = io.StringIO()
    engine, _ = setup(tmp_path, url)
    engine.notifier = (
        SlackNotifier(
            engine.store, token=TOKEN, base_url=f"{url}/api/", template_dir=str(overrides)
        )
        if to_slack
        else ConsoleNotifier(out, template_dir=str(overrides))
    )
    enqueue(engine, "firing")
    with caplog.at_level(logging.ERROR, logger="sloengine"):
        assert engine.deliver() == 1
    shown = api.posts()[0]["text"] if to_slack else out.getvalue()
    assert "chat-assistant/availability" in shown
    assert "the --templates override failed" in caplog.text


def test_a_slack_answering_a_byte_at_a_time_is_given_up_on_and_the_retry_posts_once(
    slack: tuple[SlackAPI, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    api, url = slack
    api.fail("chat.postMessage", Failure("trickle", delay=0.5))
    engine, clock = setup(tmp_path, url)
    enqueue(engine, "firing")
    with caplog.at_level(logging.WARNING, logger="sloengine"):
        assert engine.deliver() == 0  # Slack recorded the post; its answer never finished
    assert "Slack did not answer within 3s" in caplog.text
    api.released.set()
    clock.t = NOW + 60
    assert engine.deliver() == 1
    assert len(api.posts()) == 1  # the retry found the first post by its outbox id
