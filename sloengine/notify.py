"""Where pages go. Without Slack configured, they are printed: the same content, as text."""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO, TypeVar
from urllib.parse import urlsplit

from jinja2 import (
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateError,
    TemplateSyntaxError,
)
from jinja2.sandbox import SandboxedEnvironment
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from sloengine.alerting import Event
from sloengine.conventions import Severity
from sloengine.delivery import DeliveryError, Message, scrub
from sloengine.errors import UserError
from sloengine.state import Store

_T = TypeVar("_T")
log = logging.getLogger("sloengine")


def templates(override_dir: str | None = None) -> SandboxedEnvironment:
    """Templates run sandboxed; a repo may override them from its own directory."""
    loader: Any = PackageLoader("sloengine", "templates")
    if override_dir:
        from jinja2 import ChoiceLoader

        loader = ChoiceLoader([FileSystemLoader(override_dir), loader])
    return SandboxedEnvironment(
        loader=loader, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def compile_templates(env: SandboxedEnvironment, *names: str) -> None:
    """Load each template now, so a syntax error in an override stops `run` at start
    (exit 2, with the file and line) instead of failing every page later."""
    for name in names:
        try:
            env.get_template(name)
        except TemplateSyntaxError as exc:
            raise UserError(
                f"{exc.filename or name}:{exc.lineno}: template error: {exc.message}",
                "fix the template in --templates, or remove it to use the built-in one",
            ) from None


def _with_fallback(
    render: Callable[[SandboxedEnvironment], _T],
    env: SandboxedEnvironment,
    builtin: SandboxedEnvironment,
) -> _T:
    """Render with the user's templates; if that fails at page time (an undefined
    variable, broken JSON), render the built-in ones: a custom template never loses a page."""
    if env is builtin:
        return render(env)
    try:
        return render(env)
    except (TemplateError, ValueError, KeyError, TypeError) as exc:
        log.error(
            "the --templates override failed (%s: %s); using the built-in template",
            type(exc).__name__,
            exc,
        )
        return render(builtin)


def render_console(message: Message, env: SandboxedEnvironment | None = None) -> str:
    env = env or templates()
    return env.get_template("console.txt.j2").render(
        kind=message.kind, p=message.payload, incident=message.incident
    )


class ConsoleNotifier:
    """Prints each page, ticket and resolution; the embedded default."""

    def __init__(self, out: TextIO | None = None, template_dir: str | None = None) -> None:
        self.out = out or sys.stdout
        self.builtin = templates()
        self.env = templates(template_dir) if template_dir else self.builtin
        compile_templates(self.env, "console.txt.j2")

    def send(self, message: Message) -> None:
        text = _with_fallback(lambda env: render_console(message, env), self.env, self.builtin)
        print(text, file=self.out, flush=True)
        print(file=self.out, flush=True)


# Slack's documented limits; longer content is cut, never rejected.
HEADER_LIMIT = 150
TEXT_LIMIT = 3000
FIELD_LIMIT = 2000
FALLBACK_LIMIT = 4000
BUTTON_URL_LIMIT = 3000
MAX_BLOCKS = 50
MAX_FIELDS = 10
# Errors that no retry can fix: report them and stop.
PERMANENT = {
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_blocks",
    "invalid_arguments",
    "msg_too_long",
    "no_text",
    "restricted_action",
}
METADATA_EVENT = "sloengine_notification"


def is_web_url(value: object) -> bool:
    """An http(s) URL with a host: what Slack accepts on a button, and nothing else
    (no javascript:, no slack:// deep link, no bare host)."""
    parts = urlsplit(str(value))
    return parts.scheme in ("http", "https") and bool(parts.netloc)


def button_url(value: object) -> str:
    """``value`` if a button may link to it, else "": Slack rejects the whole message
    for a button URL over 3,000 characters or one it does not accept."""
    text = str(value or "")
    return text if is_web_url(text) and len(text) <= BUTTON_URL_LIMIT else ""


def mrkdwn(value: object) -> str:
    """Escape text for Slack mrkdwn so it cannot form links, mentions or markup."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _share(item: Any) -> str:
    value, share = item
    shown = mrkdwn(value).replace("`", "'")  # a backtick would end the code span
    return f"`{shown}` {share * 100:.0f}%"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fit(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for block in blocks[:MAX_BLOCKS]:
        block = dict(block)
        text = block.get("text")
        if isinstance(text, dict) and "text" in text:
            limit = HEADER_LIMIT if block["type"] == "header" else TEXT_LIMIT
            block["text"] = {**text, "text": _cut(text["text"], limit)}
        if "fields" in block:
            block["fields"] = [
                {**f, "text": _cut(f["text"], FIELD_LIMIT)} for f in block["fields"][:MAX_FIELDS]
            ]
        out.append(block)
    return out


def render_slack(message: Message, env: SandboxedEnvironment) -> tuple[str, list[dict[str, Any]]]:
    """(fallback text, blocks) for a message, cut to Slack's limits."""
    text = env.get_template("slack.json.j2").render(
        kind=message.kind, p=message.payload, incident=message.incident
    )
    doc = json.loads(text)
    return _cut(doc["text"], FALLBACK_LIMIT), _fit(doc["blocks"])


def slack_templates(override_dir: str | None = None) -> SandboxedEnvironment:
    env = templates(override_dir)
    env.filters["mrkdwn"] = mrkdwn
    env.filters["share"] = _share
    env.filters["button_url"] = button_url
    return env


class SlackNotifier:
    """Slack through slack-sdk: a bot token (threads and updates) or an incoming webhook.

    With a token, an incident is one message: escalations, re-notifications and the
    resolution are replies in its thread, and the resolution also updates the original.
    Every message carries its outbox id in Slack message metadata; when an attempt may
    have landed (a timeout, a 5xx, a crash before the delivery was recorded), the next
    attempt first looks for that id in the channel and does not post twice.
    """

    def __init__(
        self,
        store: Store,
        *,
        token: str | None = None,
        webhook_url: str | None = None,
        base_url: str | None = None,
        channels: dict[Severity, str] | None = None,
        template_dir: str | None = None,
        timeout: int = 10,
    ) -> None:
        if not token and not webhook_url:
            raise ValueError("SlackNotifier needs a bot token or a webhook URL")
        self.store = store
        self.channels = channels or {}
        self.deadline = 3.0 * timeout  # for a whole attempt, history check included
        # An incoming webhook's path is its secret: servers may echo the path alone.
        hook_path = urlsplit(webhook_url).path if webhook_url else ""
        self._secrets = [token, webhook_url, hook_path if len(hook_path) > 1 else None]
        # slack-sdk's debug log writes every request's URL and body: the webhook URL is
        # the secret itself, so that log stays off whatever level the process runs at.
        logging.getLogger("slack_sdk").setLevel(logging.INFO)
        self.builtin = slack_templates()
        self.env = slack_templates(template_dir) if template_dir else self.builtin
        compile_templates(self.env, "slack.json.j2")
        self.client = (
            WebClient(
                token=token,
                base_url=base_url or WebClient.BASE_URL,
                timeout=timeout,
                retry_handlers=[],  # the outbox retries, with backoff, across restarts
            )
            if token
            else None
        )
        self.webhook = (
            WebhookClient(webhook_url, timeout=timeout, retry_handlers=[])
            if webhook_url and not token
            else None
        )

    def send(self, message: Message) -> None:
        text, blocks = _with_fallback(
            lambda env: render_slack(message, env), self.env, self.builtin
        )
        try:
            self._within_deadline(lambda: self._send(message, text, blocks))
        except DeliveryError as exc:
            # No reason leaves here with the token or the webhook URL in it.
            raise DeliveryError(
                scrub(str(exc), self._secrets),
                permanent=exc.permanent,
                retry_after=exc.retry_after,
            ) from None

    def _within_deadline(self, attempt: Callable[[], None]) -> None:
        """Run one delivery attempt, giving up after ``deadline`` seconds in all: slack-sdk's
        timeout is per read, so a server answering a byte at a time would hold every
        later page and the scheduler's cycle. An attempt given up on may still land; the
        next one looks for it in the channel before posting (the metadata check)."""
        outcome: list[BaseException | None] = []

        def run() -> None:
            try:
                attempt()
                outcome.append(None)
            except BaseException as exc:  # handed to the caller's thread below
                outcome.append(exc)

        worker = threading.Thread(target=run, name="sloengine-slack", daemon=True)
        worker.start()
        worker.join(self.deadline)
        if not outcome:
            raise DeliveryError(f"Slack did not answer within {self.deadline:g}s")
        if outcome[0] is not None:
            raise outcome[0]

    def _send(self, message: Message, text: str, blocks: list[dict[str, Any]]) -> None:
        try:
            if self.client is None:
                self._webhook(text, blocks)
            else:
                self._post(message, text, blocks)
        except SlackApiError as exc:
            raise _classify(exc) from None
        except (TimeoutError, OSError) as exc:  # urllib's URLError is an OSError
            raise DeliveryError(f"Slack did not answer ({type(exc).__name__})") from None
        except DeliveryError:
            raise
        except Exception as exc:  # slack-sdk's own failures: retried, never a traceback
            raise DeliveryError(f"Slack delivery failed ({type(exc).__name__})") from None

    def _channel(self, message: Message) -> str:
        severity = Severity(message.payload.get("severity", Severity.PAGE))
        channel = message.payload.get("channel") or self.channels.get(severity)
        if not channel:
            raise DeliveryError(
                f"no Slack channel for {severity}: set notify.{severity}.slack_channel in the "
                f"SLO file or SLACK_{severity.upper()}_CHANNEL",
                permanent=True,
            )
        return str(channel)

    def _post(self, message: Message, text: str, blocks: list[dict[str, Any]]) -> None:
        assert self.client is not None
        thread = self.store.thread(message.incident)
        opening = message.kind in (Event.FIRING, Event.BLIND) or thread is None
        if message.kind in (Event.RESOLVED, Event.SIGHT) and thread is not None:
            # The update is idempotent, so it goes first; the reply is checked below.
            self.client.chat_update(channel=thread[0], ts=thread[1], text=text, blocks=blocks)
        channel = self._channel(message) if opening else thread[0]  # type: ignore[index]
        parent = None if opening else thread[1]  # type: ignore[index]
        if message.attempts:
            found = self._already_posted(channel, parent, message.id)
            if found is not None:
                if opening:
                    self.store.put_thread(message.incident, channel, found)
                return
        response = self.client.chat_postMessage(
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=parent,
            metadata={
                "event_type": METADATA_EVENT,
                "event_payload": {"outbox_id": message.id, "incident": message.incident},
            },
        )
        if opening and response.get("ts"):
            self.store.put_thread(
                message.incident, str(response.get("channel") or channel), str(response["ts"])
            )

    def _already_posted(self, channel: str, parent: str | None, outbox_id: int) -> str | None:
        """The ts of a message carrying this outbox id, if an earlier attempt landed."""
        assert self.client is not None
        try:
            if parent is None:
                response = self.client.conversations_history(
                    channel=channel, include_all_metadata=True, limit=100
                )
            else:
                response = self.client.conversations_replies(
                    channel=channel, ts=parent, include_all_metadata=True, limit=100
                )
        except SlackApiError as exc:
            status = getattr(exc.response, "status_code", 0) or 0
            if status == 429 or status >= 500:
                raise  # Slack is struggling: try the whole delivery again later
            # Cannot look (no history scope, a server without the method): post, at least once.
            log.info("cannot check Slack history before a retry (%s); posting", _classify(exc))
            return None
        for item in response.get("messages") or []:
            meta = item.get("metadata") or {}
            payload = meta.get("event_payload") or {}
            if meta.get("event_type") == METADATA_EVENT and payload.get("outbox_id") == outbox_id:
                return str(item.get("ts"))
        return None

    def _webhook(self, text: str, blocks: list[dict[str, Any]]) -> None:
        assert self.webhook is not None
        response = self.webhook.send(text=text, blocks=blocks)
        if response.status_code == 200:
            return
        if response.status_code == 429:
            retry = response.headers.get("Retry-After") or response.headers.get("retry-after")
            raise DeliveryError("Slack rate limit", retry_after=_seconds(retry))
        body = (response.body or "")[:200]
        if response.status_code >= 500:
            raise DeliveryError(f"Slack webhook answered {response.status_code}: {body}")
        raise DeliveryError(
            f"Slack webhook refused the message ({response.status_code}: {body})", permanent=True
        )


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _classify(exc: SlackApiError) -> DeliveryError:
    response = exc.response
    status = getattr(response, "status_code", 0) or 0
    error = ""
    try:
        error = str(response.get("error") or "")
    except Exception:  # a non-JSON body
        error = ""
    if status == 429 or error == "ratelimited":
        headers = getattr(response, "headers", {}) or {}
        retry = headers.get("Retry-After") or headers.get("retry-after")
        return DeliveryError("Slack rate limit", retry_after=_seconds(retry))
    if error in PERMANENT:
        return DeliveryError(f"Slack refused the message: {error}", permanent=True)
    return DeliveryError(f"Slack answered {status or 'an error'}: {error or 'no reason given'}")


def make_notifier(
    store: Store,
    env: dict[str, str],
    *,
    channels: dict[Severity, str],
    template_dir: str | None = None,
    out: TextIO | None = None,
) -> ConsoleNotifier | SlackNotifier:
    """Slack when SLACK_BOT_TOKEN or SLACK_WEBHOOK_URL is set (or *_FILE), else the console."""
    token = _env_secret("SLACK_BOT_TOKEN", env)
    webhook = _env_secret("SLACK_WEBHOOK_URL", env)
    if not token and not webhook:
        return ConsoleNotifier(out, template_dir)
    if webhook and not token and not is_web_url(webhook):
        # Never echoed: the URL is the secret.
        raise UserError(
            "SLACK_WEBHOOK_URL is not an http(s) URL",
            "copy the whole incoming-webhook URL, https:// included, from the Slack app",
        )
    return SlackNotifier(
        store,
        token=token,
        webhook_url=webhook,
        base_url=env.get("SLACK_API_URL") or None,
        channels=channels,
        template_dir=template_dir,
    )


def _env_secret(name: str, env: dict[str, str]) -> str | None:
    if env.get(name):
        return env[name]
    path = env.get(f"{name}_FILE")
    if path:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip() or None
    return None
