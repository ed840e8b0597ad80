"""The demo: a local Prometheus, three days of a simulated LLM chatbot, a provider outage
under way, the generated rules loaded, and what sloengine reports and pages.

Steps: backfill the raw metrics; backfill the rules' 5m base series for the same days
(``promtool tsdb create-blocks-from rules``, so long windows have history, as after
days in production); start Prometheus with the generated rules; wait for it to evaluate
them; print ``status``; run one scheduler cycle, which prints the pages; backtest the
three days (``sloengine backtest``), which finds the past incidents; then, unless
``--no-serve``, keep the scheduler running and serve the web page until Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sloengine import conventions as cv
from sloengine import lookback
from sloengine.backtest import report
from sloengine.backtest.history import backtest
from sloengine.conventions import Mode
from sloengine.durations import format_duration
from sloengine.errors import UnavailableError, UserError
from sloengine.evaluate import Evaluator
from sloengine.model import Service
from sloengine.notify import ConsoleNotifier
from sloengine.prometheus import Prometheus
from sloengine.rules import render, rule_groups
from sloengine.scheduler import Engine, watch
from sloengine.server import address, check_free
from sloengine.sim.backfill import add_rule_history, backfill
from sloengine.sim.client import active_alerts
from sloengine.sim.exporter import serving
from sloengine.sim.launch import PROMETHEUS, PROMTOOL, prometheus_server
from sloengine.sim.traffic import Incident, Scope, example_scenario
from sloengine.state import Store
from sloengine.table import render_detector_table, render_table
from sloengine.web.app import engine_site, page_url

DAYS = 3
OUTAGE_MINUTES = 40
BACKTEST_STEP = 120


def ensure_prometheus(say: Callable[[str], None]) -> None:
    """Install Debian's prometheus package when prometheus or promtool is missing."""
    if shutil.which(PROMETHEUS) and shutil.which(PROMTOOL):
        return
    apt = shutil.which("apt-get")
    sudo = [] if _is_root() else (["sudo", "-n"] if shutil.which("sudo") else None)
    if apt is None or sudo is None:
        raise UnavailableError(
            "prometheus and promtool are needed",
            "install Debian's `prometheus` package (apt-get install -y prometheus) "
            "or put both binaries on PATH",
        )
    say("installing Debian's prometheus package (prometheus and promtool are missing)...")
    for args in (["update", "-qq"], ["install", "-y", "-qq", "prometheus"]):
        done = subprocess.run([*sudo, apt, *args], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise UnavailableError(
                f"apt-get {' '.join(args)} failed: {done.stderr.strip()[-500:]}",
                "install Debian's `prometheus` package yourself, then run the demo again",
            )
    # Debian starts the packaged service; the demo runs its own server on another port.
    subprocess.run([*sudo, "systemctl", "stop", "prometheus"], capture_output=True, check=False)


def _is_root() -> bool:
    import os

    return os.geteuid() == 0


def _rule_file(groups: list[dict[str, Any]]) -> str:
    return yaml.safe_dump({"groups": groups}, sort_keys=False)


def base_rules(service: Service, stage: int = 0) -> str:
    """The rule file with only the series whose history other rules read, one dependency
    layer of them, as ``sloengine backfill`` rebuilds them (``lookback.plan``): 0, the 5m
    base series and the raw 1h tile; then each roll-up the longer windows sum, once its
    tiles have history. Empty of groups past the last layer."""
    layers = lookback.plan(rule_groups(service)).layers
    layer = layers[stage] if stage < len(layers) else ()
    return _rule_file(
        [
            {"name": p.group, "interval": format_duration(p.interval), "rules": list(p.rules)}
            for p in layer
        ]
    )


def backfill_layers(service: Service) -> int:
    """How many dependency layers ``base_rules`` has for the service."""
    return len(lookback.plan(rule_groups(service)).layers)


def budget_rules(service: Service) -> str:
    """The rule file with only the budget groups: the SLO window and budget metadata."""
    return _rule_file([g for g in rule_groups(service) if cv.is_budget_group(g["name"])])


def run_demo(
    service: Service, say: Callable[[str], None], wait: float = 90.0, listen: str | None = None
) -> None:
    """The demo; with ``listen``, it then serves the web page there until Ctrl-C."""
    ensure_prometheus(say)
    if listen:
        check_free(listen)
    end = int(time.time()) // 60 * 60
    start = end - DAYS * 86400
    scenario = example_scenario(start, days=DAYS, service=service.name)
    provider = "openai"
    outage = Incident(
        end - OUTAGE_MINUTES * 60, end + 86400, "error_rate", 0.5, Scope(provider=provider)
    )
    # Beside it, the failure no SLO sees: a retry loop, every call now made three times,
    # that triples cost and tokens per call without an error. The detectors catch it.
    storm = Incident(end - OUTAGE_MINUTES * 60, end + 86400, "retry_storm", 2.0)
    scenario = dataclasses.replace(scenario, incidents=(*scenario.incidents, outage, storm))
    with tempfile.TemporaryDirectory(prefix="sloengine-demo-") as tmp:
        work = Path(tmp)
        tsdb, rules = work / "tsdb", work / f"{service.name}.rules.yml"
        say(
            f"1/5 simulating {DAYS} days of {service.name} ({scenario.series_count} series, "
            f"20:1 day/night traffic, past incidents, and a provider outage for the last "
            f"{OUTAGE_MINUTES} minutes: half of {provider}'s requests failing, and every call "
            "retried twice, at three times the cost)..."
        )
        samples = backfill(scenario, tsdb, start, end, 60)
        say(f"      {samples:,} samples written with promtool")
        say(
            "2/5 backfilling the rules' 5m base series and budgets, as if they had run all along..."
        )
        interval = service.objectives[0].interval
        base, budgets = work / "base.rules.yml", work / "budget.rules.yml"
        for stage in range(backfill_layers(service)):  # the base rates and 1h tile, then roll-ups
            base.write_text(base_rules(service, stage))
            add_rule_history(tsdb, base, start, end, interval, work / f"pass-{stage}")
        # The budget groups run every few minutes; their last few evaluations let status
        # read the SLO window before Prometheus first evaluates them itself.
        budgets.write_text(budget_rules(service))
        add_rule_history(tsdb, budgets, end - 600, end, interval, work)
        rules.write_text(render(service))
        say(f"3/5 starting Prometheus with the generated rules ({rules.name})...")
        # The simulated service goes on live: Prometheus scrapes it from where the
        # backfill ends, so the outage is still burning while the page is up.
        with (
            serving(scenario) as target,
            prometheus_server(tsdb, rule_files=[rules], scrape=[target]) as url,
        ):
            prom = Prometheus(url)
            objectives = list(service.objectives)
            evaluator = Evaluator(prom, mode=Mode.RECORDED)
            say("4/5 waiting for Prometheus to evaluate every rule group (up to a minute)...")
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                if len(evaluator.recorded_rates(objectives, time.time())) == len(objectives):
                    break
                time.sleep(2)
            statuses = Evaluator(prom, mode=Mode.AUTO).evaluate(objectives)
            # The detectors' hourly baseline has not run yet: they are read from the raw series.
            found = Evaluator(prom, mode=Mode.AUTO).evaluate_detectors(service.detectors)
            expected: set[tuple[str, ...]] = {
                (s.service, s.slo, p.severity, p.long_window, p.short_window)
                for s in statuses
                for p in s.pairs
                if p.active
            }
            firing = _prometheus_alerts(url, expected, wait)
            say("")
            say("== sloengine status ==")
            say(render_table(statuses))
            say("")
            say("== sloengine status: detectors (worse than it was) ==")
            say(render_detector_table(found))
            say("")
            say("== Prometheus is firing the generated alerts ==")
            for m in firing:
                say(
                    f"  {cv.ALERT_NAME} {m.get(cv.SERVICE)}/{m.get(cv.SLO)} severity={m.get(cv.SEVERITY)}"
                    f" long_window={m.get(cv.LONG_WINDOW)} short_window={m.get(cv.SHORT_WINDOW)}"
                )
            if not firing:
                say("  (none: Prometheus sees no burn above a threshold)")
            say("")
            say("== 5/5 pages the scheduler sends (no Slack configured: printed here) ==")
            pages = io.StringIO()
            engine = Engine(
                objectives,
                Evaluator(prom, mode=Mode.AUTO),
                Store(work / "state.db"),
                ConsoleNotifier(pages),
                detectors=service.detectors,
            )
            engine.cycle()
            say(pages.getvalue().rstrip() or "(no pages: every SLO is within its thresholds)")
            say("")
            say(f"== sloengine backtest: what these SLOs paged over the {DAYS} days ==")
            # The demo's samples are a minute apart: a rate over one step needs two.
            replays = backtest(prom, objectives, start, end, BACKTEST_STEP)
            say(report.render_text(report.entries(replays)).rstrip())
            if not listen:
                engine.store.close()
                return
            host, port = address(listen)
            say("")
            say(f"== the web page: {page_url(host, port)} (Ctrl-C to stop) ==")
            say("  the scheduler keeps evaluating every minute; the outage is on the page")
            # `kill` stops the demo as Ctrl-C does, Prometheus and the temporary files too.
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                watch(engine, interval, listen, engine_site([service], engine))
            except OSError as exc:
                raise UserError(
                    f"cannot listen on {listen}: {exc.strerror}", "choose another --listen"
                ) from None


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _prometheus_alerts(
    url: str, expected: set[tuple[str, ...]], wait: float
) -> list[dict[str, str]]:
    """Prometheus's own firing SLO alerts (their labels), sorted.

    Waits up to ``wait`` seconds for every pair sloengine sees firing to fire in
    Prometheus too (each rule group evaluates once a minute, at its own offset).
    """
    deadline = time.monotonic() + wait
    while True:
        firing = sorted(
            (
                a["labels"]
                for a in active_alerts(url)
                if a["state"] == "firing" and a["labels"].get("alertname") == cv.ALERT_NAME
            ),
            key=_alert_key,
        )
        if expected <= {_alert_key(a) for a in firing} or time.monotonic() >= deadline:
            return firing
        time.sleep(2)


def _alert_key(labels: dict[str, str]) -> tuple[str, ...]:
    keys = (cv.SERVICE, cv.SLO, cv.SEVERITY, cv.LONG_WINDOW, cv.SHORT_WINDOW)
    return tuple(labels.get(k, "") for k in keys)
