"""The ``sloengine`` command. Only this module prints for users or chooses exit codes."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from sloengine import __version__
from sloengine.conventions import AUTO, RAW, RECORDED
from sloengine.durations import parse_duration
from sloengine.errors import SpecError
from sloengine.explain import explain as explain_slo
from sloengine.explain import render_text
from sloengine.loading import load_specs
from sloengine.model import Service
from sloengine.output import stale, write_all
from sloengine.rules import render
from sloengine.ruletests import render_tests

# The commands that talk to Prometheus or Slack import those clients when they run:
# `generate` and `validate`, which CI runs on every push, start without them.
if TYPE_CHECKING:
    from sloengine.prometheus import Prometheus

F = TypeVar("F", bound=Callable[..., Any])

EXIT_STALE = 1
EXIT_BAD_INPUT = 2
EXIT_UNAVAILABLE = 3


def reports_spec_errors(func: F) -> F:
    """Turn SpecError into one clean line per problem and exit code 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except SpecError as exc:
            for problem in exc.problems:
                click.echo(f"error: {problem}", err=True)
            count = len(exc.problems)
            click.echo(
                f"{count} problem{'s' if count != 1 else ''} found; nothing was written", err=True
            )
            sys.exit(EXIT_BAD_INPUT)

    return wrapper  # type: ignore[return-value]


paths_argument = click.argument("paths", nargs=-1, required=True, metavar="PATH...")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sloengine")
def cli() -> None:
    """SLOs and multi-window burn-rate alerts for LLM services on Prometheus.

    PATH is an SLO.yaml file or a directory of them.
    """


@cli.command()
@paths_argument
@click.option(
    "--prometheus",
    "prometheus_url",
    default=None,
    help="Also check against this live Prometheus: metrics exist, thresholds are bucket bounds.",
)
@click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds per Prometheus query."
)
@reports_spec_errors
def validate(paths: tuple[str, ...], prometheus_url: str | None, timeout: float) -> None:
    """Check SLO files against the sloengine/v1 contract (and, with --prometheus, live data)."""
    services = load_specs(paths)
    count = sum(len(s.objectives) for s in services)
    if prometheus_url:
        from sloengine.live import check
        from sloengine.prometheus import PrometheusError

        try:
            errors, warnings = check(services, _prometheus(prometheus_url, timeout))
        except PrometheusError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(EXIT_UNAVAILABLE)
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        if errors:
            raise SpecError(errors)
    click.echo(f"ok: {len(services)} service{'s' if len(services) != 1 else ''}, {count} SLOs")


def _rule_name(service: Service) -> str:
    return f"{service.name}.rules.yml"


def _planned(services: list[Service], out: Path, tests: Path | None) -> dict[Path, str]:
    files: dict[Path, str] = {}
    for service in services:
        rule_path = out / _rule_name(service)
        files[rule_path] = render(service)
        if tests is not None:
            relative = os.path.relpath(rule_path, tests).replace(os.sep, "/")
            files[tests / f"{service.name}.test.yml"] = render_tests(service, relative)
    return files


@cli.command()
@paths_argument
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the rule files (one per SLO file).",
)
@click.option(
    "--tests",
    "tests",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write promtool rule tests here.",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if DIR is not what generate would write."
)
@reports_spec_errors
def generate(paths: tuple[str, ...], out: Path, tests: Path | None, check: bool) -> None:
    """Generate Prometheus recording and alerting rules (and promtool tests)."""
    services = load_specs(paths)
    planned = _planned(services, out, tests)
    if check:
        problems = stale(planned)
        for line in problems:
            click.echo(f"stale: {line}", err=True)
        if problems:
            click.echo(
                "run `sloengine generate` with the same arguments and commit the result", err=True
            )
            sys.exit(EXIT_STALE)
        click.echo(f"up to date: {len(planned)} files")
        return
    removed = write_all(planned)
    for path in sorted(planned):
        click.echo(f"wrote {path}")
    for path in removed:
        click.echo(f"removed {path}")


@cli.command()
@paths_argument
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@reports_spec_errors
def explain(paths: tuple[str, ...], fmt: str) -> None:
    """Show each SLO's error budget and what its alerts mean: burn, windows, time to fire."""
    services = load_specs(paths)
    objectives = [obj for s in services for obj in s.objectives]
    reports = [explain_slo(obj) for obj in objectives]
    if fmt == "json":
        click.echo(json.dumps([asdict(r) for r in reports], indent=2))
        return
    click.echo("\n\n".join(render_text(r, o) for r, o in zip(reports, objectives, strict=True)))


def _prometheus(url: str, timeout: float) -> Prometheus:
    from sloengine.prometheus import Prometheus, PrometheusError

    try:
        return Prometheus(url, timeout=timeout)
    except PrometheusError as exc:
        raise click.UsageError(str(exc)) from None


prometheus_option = click.option(
    "--prometheus",
    "prometheus_url",
    required=True,
    envvar="SLOENGINE_PROMETHEUS_URL",
    help="Prometheus base URL (credentials come from SLOENGINE_PROMETHEUS_TOKEN or _USER/_PASSWORD).",
)
mode_option = click.option(
    "--mode",
    type=click.Choice([AUTO, RECORDED, RAW]),
    default=AUTO,
    show_default=True,
    help="recorded: read the generated rules' series; raw: compute from raw metrics; auto: recorded where loaded.",
)
timeout_option = click.option(
    "--timeout", type=float, default=10.0, show_default=True, help="Seconds per Prometheus query."
)


@cli.command()
@prometheus_option
@paths_argument
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True
)
@mode_option
@timeout_option
@reports_spec_errors
def status(
    prometheus_url: str, paths: tuple[str, ...], fmt: str, mode: str, timeout: float
) -> None:
    """Evaluate every SLO once against Prometheus and print budgets, burn rates and state."""
    from sloengine.evaluate import Evaluator
    from sloengine.report import render_table

    objectives = [obj for s in load_specs(paths) for obj in s.objectives]
    evaluator = Evaluator(_prometheus(prometheus_url, timeout), mode=mode)
    statuses = evaluator.evaluate(objectives)
    if fmt == "json":
        click.echo(json.dumps([s.as_json() for s in statuses], indent=2))
    else:
        click.echo(render_table(statuses))
    if statuses and all(s.health == "unavailable" for s in statuses):
        click.echo(f"error: {statuses[0].error}", err=True)
        sys.exit(EXIT_UNAVAILABLE)


@cli.command()
@prometheus_option
@paths_argument
@click.option(
    "--interval", type=float, default=60.0, show_default=True, help="Seconds between cycles."
)
@click.option("--once", is_flag=True, help="Run one cycle and exit.")
@click.option(
    "--state",
    "state_path",
    default=".sloengine/state.db",
    show_default=True,
    envvar="SLOENGINE_STATE",
    help="SQLite file holding alert state and the notification outbox.",
)
@click.option(
    "--listen",
    default="127.0.0.1:9464",
    show_default=True,
    help="Address for /metrics and /healthz; empty to disable.",
)
@click.option(
    "--blind-after",
    type=int,
    default=3,
    show_default=True,
    help="Failed cycles in a row before the 'SLO evaluation is blind' page.",
)
@click.option(
    "--page-channel",
    envvar="SLACK_PAGE_CHANNEL",
    default="",
    help="Slack channel for pages when the SLO file names none.",
)
@click.option(
    "--ticket-channel",
    envvar="SLACK_TICKET_CHANNEL",
    default="",
    help="Slack channel for tickets when the SLO file names none.",
)
@click.option(
    "--renotify",
    default="4h",
    show_default=True,
    help="Repeat a still-firing incident in its thread this often (0 = never).",
)
@click.option(
    "--templates",
    "template_dir",
    default=None,
    help="Directory of templates overriding the built-in ones.",
)
@mode_option
@timeout_option
@reports_spec_errors
def run(
    prometheus_url: str,
    paths: tuple[str, ...],
    interval: float,
    once: bool,
    state_path: str,
    listen: str,
    blind_after: int,
    page_channel: str,
    ticket_channel: str,
    renotify: str,
    template_dir: str | None,
    mode: str,
    timeout: float,
) -> None:
    """Watch the SLOs: evaluate every --interval, keep alert state, and notify on changes.

    Pages go to Slack when SLACK_BOT_TOKEN (threads, updates) or SLACK_WEBHOOK_URL is set;
    SLACK_API_URL overrides the Web API base URL. Otherwise they print here.
    """
    import sqlite3

    from sloengine.evaluate import Evaluator
    from sloengine.notify import make_notifier
    from sloengine.scheduler import Engine, watch
    from sloengine.state import Store

    objectives = [obj for s in load_specs(paths) for obj in s.objectives]
    try:
        renotify_seconds = parse_duration(renotify) if renotify != "0" else 0.0
    except ValueError:
        raise click.BadParameter(
            f"{renotify!r} is not a duration such as 4h", param_hint="--renotify"
        ) from None
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        store = Store(state_path)
    except (OSError, sqlite3.Error) as exc:
        click.echo(f"error: cannot open the state database {state_path}: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    channels = {k: v for k, v in (("page", page_channel), ("ticket", ticket_channel)) if v}
    try:
        notifier = make_notifier(
            store, dict(os.environ), channels=channels, template_dir=template_dir
        )
    except OSError as exc:
        click.echo(f"error: cannot read the Slack secret file: {exc.strerror}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    engine = Engine(
        objectives,
        Evaluator(_prometheus(prometheus_url, timeout), mode=mode),
        store,
        notifier,
        blind_after=blind_after,
        renotify=renotify_seconds,
    )
    if once:
        engine.cycle()
        return
    try:
        watch(engine, interval, listen)
    except OSError as exc:
        click.echo(f"error: cannot listen on {listen}: {exc.strerror}", err=True)
        sys.exit(EXIT_BAD_INPUT)


@cli.command()
@click.argument("path", default="slos/chat-assistant.yaml", metavar="[PATH]")
@reports_spec_errors
def demo(path: str) -> None:
    """Simulate an LLM service in a local Prometheus, mid-outage, and show status and pages.

    PATH is the SLO file to demonstrate (default: slos/chat-assistant.yaml). Needs
    Debian's prometheus package; installs it when missing and allowed to.
    """
    from sloengine.demo import DemoError, run_demo

    (service,) = load_specs([path])
    try:
        run_demo(service, click.echo)
    except DemoError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OpenMetrics file to write.",
)
@click.option("--days", type=int, default=30, show_default=True, help="History length, ending now.")
@click.option("--step", type=int, default=60, show_default=True, help="Seconds between samples.")
@click.option("--service", default="chat-assistant", show_default=True, help="The service label.")
def simulate(out: Path, days: int, step: int, service: str) -> None:
    """Write a simulated LLM service's metrics (llm preset) as OpenMetrics for promtool.

    Load them with `promtool tsdb create-blocks-from openmetrics FILE DIR`. The traffic
    follows a 20:1 day/night cycle and carries one incident of each kind.
    """
    from sloengine.sim.openmetrics import write_openmetrics
    from sloengine.sim.traffic import example_scenario

    end = int(time.time()) // step * step
    start = end - days * 86400
    scenario = example_scenario(start, days=days, service=service)
    with out.open("w", encoding="utf-8") as handle:
        count = write_openmetrics(scenario, handle, start, end, step)
    click.echo(f"wrote {count:,} samples of {scenario.series_count} series to {out}")
    for incident in scenario.incidents:
        click.echo(
            f"  incident {incident.kind} from {_iso(incident.start)} to {_iso(incident.end)}"
        )


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="minutes")


def main() -> None:
    cli(prog_name="sloengine")


if __name__ == "__main__":
    main()
