"""``run --alertmanager``: the scheduler's alerts posted to every Alertmanager, every cycle.

What to send is decided in :mod:`sloengine.amalerts` (pure); this adapter remembers what
it sent (in the state database, so a restart neither forgets a firing alert nor a
resolution still to be told), posts the alerts to ``POST /api/v2/alerts`` on each
Alertmanager in parallel within one deadline, and counts failures per Alertmanager. An
Alertmanager that is down or slow costs at most the deadline and is posted to again the
next cycle: re-sending every cycle is what makes losing a post safe, as with Prometheus.
Alertmanager deduplicates the replicas' identical alerts and its cluster deduplicates
the notifications.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from sloengine import amalerts
from sloengine.alerting import AlertRow
from sloengine.detectors.model import Detector
from sloengine.detectors.verdict import DetectorStatus
from sloengine.errors import UserError
from sloengine.model import Objective
from sloengine.prometheus import redact
from sloengine.state import Store
from sloengine.status import Status

log = logging.getLogger("sloengine")

API_PATH = "/api/v2/alerts"
# The state database's meta entry holding what was last sent.
STATE_KEY = "alertmanager_alerts"
# The meta entry /healthz reads: set while no Alertmanager accepts the alerts.
FAILURE_KEY = "delivery_failure"


def check_url(url: str) -> str:
    """``url`` as the base of an Alertmanager, or a UserError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UserError(
            f"--alertmanager {redact(url)!r} is not an http(s) URL",
            "give the Alertmanager's base URL, e.g. http://alertmanager-0:9093",
        )
    if parts.username or parts.password:
        raise UserError(
            "credentials in an --alertmanager URL would end up in logs and /metrics",
            "reach Alertmanager without credentials in the URL (on a private network or "
            "through an authenticating proxy)",
        )
    return redact(url).rstrip("/")


class AlertmanagerSender:
    """Posts the scheduler's alert state to each Alertmanager; never raises."""

    def __init__(
        self, urls: Sequence[str], *, interval: float, timeout: float, prometheus_url: str
    ) -> None:
        self.urls = list(dict.fromkeys(check_url(u) for u in urls))  # each once
        self.interval = interval
        self.timeout = timeout  # for each post, connection and answer together
        self.prometheus_url = prometheus_url
        self.session = requests.Session()

    def send(
        self,
        objectives: Mapping[tuple[str, str], Objective],
        statuses: Sequence[Status],
        rows: Mapping[str, AlertRow],
        now: float,
        store: Store,
        detectors: Mapping[tuple[str, str], Detector] | None = None,
        detector_statuses: Sequence[DetectorStatus] = (),
    ) -> dict[str, str]:
        """Post this cycle's alerts (the SLOs', and the detectors'); returns each
        Alertmanager's failure (none when all took them)."""
        last = amalerts.load(_stored(store.get(STATE_KEY, "[]")))
        alerts = amalerts.outgoing(
            objectives,
            statuses,
            rows,
            last,
            now,
            interval=self.interval,
            prometheus_url=self.prometheus_url,
        )
        alerts |= amalerts.detector_outgoing(
            detectors or {},
            detector_statuses,
            rows,
            last,
            now,
            interval=self.interval,
            prometheus_url=self.prometheus_url,
        )
        store.put(STATE_KEY, json.dumps(amalerts.dump(alerts)))
        if not alerts:
            failures: dict[str, str] = {}
        else:
            body = [a.as_json() for a in alerts.values()]
            failures = self.post_all(body)
        for url, reason in failures.items():
            log.warning(
                "Alertmanager %s did not take the alerts (next cycle retries): %s", url, reason
            )
        if failures and len(failures) == len(self.urls):
            store.put(
                FAILURE_KEY, "no Alertmanager took the alerts: " + "; ".join(failures.values())
            )
        elif store.get(FAILURE_KEY):
            store.put(FAILURE_KEY, "")
        return failures

    def post_all(self, body: list[dict[str, Any]]) -> dict[str, str]:
        """Post ``body`` to every Alertmanager at once; waits at most the timeout in all."""
        outcome: dict[str, str | None] = {}
        lock = threading.Lock()

        def post(url: str) -> None:
            reason = self._post(url, body)
            with lock:
                outcome[url] = reason

        workers = [
            threading.Thread(target=post, args=(url,), name="sloengine-alertmanager", daemon=True)
            for url in self.urls
        ]
        for worker in workers:
            worker.start()
        # One deadline for all: a server answering a byte at a time outlives requests'
        # per-read timeout, and the cycle does not wait for it (its thread ends with
        # the server's answer).
        deadline = time.monotonic() + self.timeout
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        with lock:
            return {
                url: outcome.get(url) or f"no answer within {self.timeout:g}s"
                for url in self.urls
                if url not in outcome or outcome[url] is not None
            }

    def _post(self, url: str, body: list[dict[str, Any]]) -> str | None:
        """None when the Alertmanager took the alerts, else why not (safe to log)."""
        try:
            response = self.session.post(url + API_PATH, json=body, timeout=self.timeout)
        except requests.Timeout:
            return f"no answer within {self.timeout:g}s"
        except (requests.RequestException, OSError) as exc:
            return f"unreachable ({type(exc).__name__})"
        if response.status_code // 100 == 2:
            return None
        # Alertmanager explains a refusal in its body (the URL carries no credentials).
        return f"HTTP {response.status_code}: {response.text[:300].strip()}"


def _stored(text: str) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except ValueError:
        return []
    return [x for x in data if isinstance(x, dict)] if isinstance(data, list) else []
