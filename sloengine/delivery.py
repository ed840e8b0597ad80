"""Notifications on their way out: the outbox entry, the notifier's contract, and retries.

Shared by the scheduler (which delivers from the outbox) and every notifier (console,
Slack), so neither imports the other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from sloengine.alerting import Event

# Transient failures are retried with backoff (capped at 5 minutes) this many times.
MAX_ATTEMPTS = 50
MAX_BACKOFF_SECONDS = 300.0
# A server's Retry-After is honoured up to this: every later page waits behind it.
MAX_RETRY_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class Message:
    """One outbox entry: a notification and how often delivery was attempted."""

    id: int
    kind: Event
    incident: str
    payload: dict[str, Any]
    attempts: int


class DeliveryError(Exception):
    """A notifier could not deliver; ``permanent`` errors are not retried."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.permanent = permanent
        self.retry_after = retry_after


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


def retry_delay(error: DeliveryError, attempts: int, jitter: float) -> float:
    """Seconds until the next attempt: the server's Retry-After (at most 5 minutes), else
    exponential backoff (``jitter`` in [1, 1.5) spreads retries of many replicas)."""
    if error.retry_after:
        return min(error.retry_after, MAX_RETRY_AFTER_SECONDS)
    return min(MAX_BACKOFF_SECONDS, 2.0**attempts) * jitter


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every secret replaced: servers and proxies echo what they were sent."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
