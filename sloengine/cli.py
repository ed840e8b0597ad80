"""The ``sloengine`` command. Only this module prints for users or chooses exit codes."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from sloengine import __version__, ruletests
from sloengine.alertmanager import DEFAULT_WEBHOOK_FILE
from sloengine.conventions import Mode, Severity
from sloengine.detectors import rules as detectors
from sloengine.detectors import ruletests as detector_tests
from sloengine.detectors.explain import explain_detector
from sloengine.durations import parse_duration
from sloengine.errors import Problem, SpecError, UnavailableError, UserError, printable
from sloengine.explain import explain as explain_slo
from sloengine.explain import render_text
from sloengine.formats import Format, Target, check_names, file_name, render_as, target
from sloengine.loading import load_specs
from sloengine.model import Service
from sloengine.output import stale, write_all, write_atomically

# The commands that talk to Prometheus or Slack import those clients when they run:
# `generate` and `validate`, which CI runs on every push, start without them.
if TYPE_CHECKING:
    from sloengine.delivery import Notifier
    from sloengine.importers import Imported
    from sloengine.prometheus import Prometheus
    from sloengine.yamldoc import Document

# The exit code table (README, Commands).
EXIT_OK = 0
EXIT_STALE = 1  # generate --check: the rule files are not what generate would write
EXIT_BAD_INPUT = 2  # a UserError: SLO files, options, config or secret files
EXIT_UNAVAILABLE = 3  # an UnavailableError: Prometheus, or the demo's prometheus and promtool

UNREACHABLE_HINT = "check the URL and that Prometheus is up and reachable from here"


def exit_code(exc: UserError) -> int:
    return EXIT_UNAVAILABLE if isinstance(exc, UnavailableError) else EXIT_BAD_INPUT


class Commands(click.Group):
    """The command group: every UserError a command raises ends here, and only here."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # Click's own (a bad option, a missing argument), in the same words as ours.
            where = (exc.ctx or ctx).command_path
            _fail(UserError(exc.format_message(), f"see `{where} --help`"))
        except UserError as exc:
            _fail(exc)


def _fail(exc: UserError) -> NoReturn:
    for line in exc.lines():
        # A message quoting a tool's output keeps its lines, indented under the first.
        click.echo("error: " + line.replace("\n", "\n  "), err=True)
    if isinstance(exc, SpecError):
        count = len(exc.problems)
        click.echo(
            f"{count} problem{'s' if count != 1 else ''} found; nothing was written", err=True
        )
    sys.exit(exit_code(exc))


paths_argument = click.argument("paths", nargs=-1, required=True, metavar="PATH...")


F = TypeVar("F", bound=Callable[..., Any])


def out_dir_option(help_text: str) -> Callable[[F], F]:
    """--out DIR, for the commands that write one file per SLO file."""
    return click.option(
        "--out",
        "out",
        required=True,
        type=click.Path(file_okay=False, path_type=Path),
        help=help_text,
    )


def channel_options(func: F) -> F:
    """--page-channel and --ticket-channel: defaults for SLO files without a notify route."""
    for severity in (Severity.TICKET, Severity.PAGE):
        func = click.option(
            f"--{severity}-channel",
            envvar=f"SLACK_{severity.upper()}_CHANNEL",
            default="",
            help=f"Slack channel for {severity}s when the SLO file names none.",
        )(func)
    return func


def _channels(page: str, ticket: str) -> dict[Severity, str]:
    return {k: v for k, v in ((Severity.PAGE, page), (Severity.TICKET, ticket)) if v}


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
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
            raise UnavailableError(str(exc), UNREACHABLE_HINT) from None
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        if errors:
            raise SpecError(errors)
    click.echo(f"ok: {len(services)} service{'s' if len(services) != 1 else ''}, {count} SLOs")


def _planned(services: list[Service], out: Path, tests: Path | None, to: Target) -> dict[Path, str]:
    check_names(services, to.format)
    files: dict[Path, str] = {}
    for service in services:
        files[out / file_name(service, to.format)] = render_as(service, to)
        detector_rules = detectors.render(service)
        if detector_rules is not None and to.format is Format.PROMETHEUS:
            files[out / detectors.rule_file_name(service.name)] = detector_rules
    if tests is not None:
        files |= _proof_files(services, tests)
    return files


def _proof_files(services: list[Service], tests: Path) -> dict[Path, str]:
    """Every SLO's and detector's promtool proof files in ``tests``; two that would
    share a name (names may hold dots) are an error."""
    files: dict[Path, str] = {}
    owner: dict[Path, str] = {}
    for service in services:
        proofs = ruletests.render_files(service) | detector_tests.render_files(service)
        for name, text in proofs.items():
            path = tests / name
            mine = f"service {service.name} ({printable(service.file)})"
            if path in owner:
                raise UserError(
                    f"the proofs of {owner[path]} and of {mine} would both write {path}",
                    "rename a service, SLO or detector: proof files are named "
                    "<service>.<slo>.test.yml and <service>.<detector>.detector.test.yml",
                )
            owner[path] = mine
            files[path] = text
        for note in ruletests.untested(service) + detector_tests.untested(service):
            click.echo(f"note: no promtool tests for {note}", err=True)
    return files


def _check_or_write(planned: dict[Path, str], check: bool, command: str) -> None:
    """--check: name every stale, missing or orphaned file and exit 1; otherwise write
    them all and remove the generated files nothing produces any more."""
    if check:
        problems = stale(planned)
        for line in problems:
            click.echo(f"stale: {line}", err=True)
        if problems:
            click.echo(
                f"run `sloengine {command}` with the same arguments and commit the result",
                err=True,
            )
            sys.exit(EXIT_STALE)
        click.echo(f"up to date: {len(planned)} files")
        return
    try:
        removed = write_all(planned)
    except OSError as exc:
        raise UserError(
            f"cannot write {exc.filename or sorted(planned)[0].parent}: {exc.strerror}",
            f"check that {'--out and --tests name directories' if command == 'generate' else '--out names a directory'} you can write",
        ) from None
    for path in sorted(planned):
        click.echo(f"wrote {path}")
    for path in removed:
        click.echo(f"removed {path}")


@cli.command()
@paths_argument
@out_dir_option("Directory for the rule files (one per SLO file).")
@click.option(
    "--tests",
    "tests",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also write promtool rule tests here (--format prometheus).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice([f.value for f in Format]),
    default=Format.PROMETHEUS.value,
    show_default=True,
    help="prometheus: rule files; operator: PrometheusRule objects; mimir: mimirtool rule "
    "files; thanos: rule files with partial_response_strategy.",
)
@click.option(
    "--namespace",
    default="",
    help="operator: the objects' Kubernetes namespace; mimir: the ruler namespace "
    "(default: the service name).",
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    help="operator: a label on every PrometheusRule (what the Prometheus ruleSelector "
    "matches); repeatable.",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if DIR is not what generate would write."
)
def generate(
    paths: tuple[str, ...],
    out: Path,
    tests: Path | None,
    fmt: str,
    namespace: str,
    labels: tuple[str, ...],
    check: bool,
) -> None:
    """Generate Prometheus recording and alerting rules (and promtool tests)."""
    to = target(Format(fmt), namespace, labels)
    if tests is not None and to.format is not Format.PROMETHEUS:
        raise UserError(
            f"--tests needs --format prometheus, not {fmt}",
            "promtool tests load Prometheus rule files: generate them in a second run",
        )
    if tests is not None and tests.resolve() == out.resolve():
        raise UserError(
            f"--tests and --out both name {out}",
            "give the tests their own directory (--tests rule-tests/): their per-SLO rule "
            "files beside the service's would make rules/*.yml load every rule twice",
        )
    services = load_specs(paths)
    _check_or_write(_planned(services, out, tests, to), check, "generate")


@cli.command()
@paths_argument
@out_dir_option("Directory for the dashboards (one JSON file per SLO file).")
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if DIR is not what dashboard would write."
)
def dashboard(paths: tuple[str, ...], out: Path, check: bool) -> None:
    """Write a Grafana dashboard per service: SLO state, budget and burn on top, the SLI,
    burn rates and the exporter's cost, errors and tokens below, firing alerts last."""
    from sloengine.dashboards import file_name as dashboard_file
    from sloengine.dashboards import render_dashboard

    services = load_specs(paths)
    planned = {out / dashboard_file(s): render_dashboard(s) for s in services}
    _check_or_write(planned, check, "dashboard")


def _write_file(out: Path, text: str) -> None:
    """Write one generated file whole, or fail with the reason and exit 2."""
    try:
        write_atomically(out, text)
    except OSError as exc:
        raise UserError(
            f"cannot write {out}: {exc.strerror}", "check that --out names a file you can write"
        ) from None
    click.echo(f"wrote {out}")


def _duration(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        parse_duration(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a duration such as 30s or 4h") from None
    return value


@cli.command()
@paths_argument
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Alertmanager configuration file to write.",
)
@click.option(
    "--webhook-file",
    default=DEFAULT_WEBHOOK_FILE,
    show_default=True,
    help="Where Alertmanager reads the Slack webhook URL (api_url_file); the URL itself is never written.",
)
@channel_options
@click.option("--group-wait", default="30s", show_default=True, callback=_duration)
@click.option("--group-interval", default="5m", show_default=True, callback=_duration)
@click.option(
    "--page-repeat",
    default="4h",
    show_default=True,
    callback=_duration,
    help="Repeat a firing page.",
)
@click.option(
    "--ticket-repeat",
    default="24h",
    show_default=True,
    callback=_duration,
    help="Repeat a firing ticket.",
)
@click.option(
    "--check", is_flag=True, help="Write nothing; exit 1 if FILE is not what it would write."
)
def alertmanager(
    paths: tuple[str, ...],
    out: Path,
    webhook_file: str,
    page_channel: str,
    ticket_channel: str,
    group_wait: str,
    group_interval: str,
    page_repeat: str,
    ticket_repeat: str,
    check: bool,
) -> None:
    """Write an Alertmanager configuration for the generated alerts: Slack routes per
    service and severity, Runbook buttons, and pages inhibiting the same SLO's tickets."""
    from sloengine.alertmanager import Timing, render_config

    channels = _channels(page_channel, ticket_channel)
    text = render_config(
        load_specs(paths),
        channels=channels,
        webhook_file=webhook_file,
        timing=Timing(group_wait, group_interval, page_repeat, ticket_repeat),
    )
    if check:
        if not out.is_file() or out.read_text(encoding="utf-8") != text:
            click.echo(f"stale: {out}", err=True)
            click.echo("run `sloengine alertmanager` with the same arguments", err=True)
            sys.exit(EXIT_STALE)
        click.echo(f"up to date: {out}")
        return
    _write_file(out, text)


@cli.command()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the schema here instead of printing it.",
)
def schema(out: Path | None) -> None:
    """Print the JSON Schema of SLO.yaml, for completion and checks in editors."""
    from sloengine.spec import json_schema

    text = json.dumps(json_schema(), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    _write_file(out, text)


@cli.group("import")
def import_() -> None:
    """Translate Sloth or OpenSLO specs into sloengine/v1 SLO files (one per service)."""


_import_out = click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory for the SLO files (<service>.yaml).",
)
_import_files = click.argument("files", nargs=-1, required=True, metavar="FILE...")


@import_.command("sloth")
@_import_files
@_import_out
def import_sloth(files: tuple[str, ...], out: Path) -> None:
    """Sloth prometheus/v1 specs and PrometheusServiceLevel objects."""
    from sloengine.importers import sloth

    _import(files, out, "sloth", sloth.translate)


@import_.command("openslo")
@_import_files
@_import_out
def import_openslo(files: tuple[str, ...], out: Path) -> None:
    """OpenSLO v1 documents: SLO, SLI, AlertPolicy, AlertCondition, Service, DataSource."""
    from sloengine.importers import openslo as openslo_importer

    _import(files, out, "openslo", openslo_importer.translate)


def _import(
    files: tuple[str, ...],
    out: Path,
    how: str,
    translate: Callable[[list[Document]], list[Imported]],
) -> None:
    """Read, translate, check every file as `validate` would, then write them all."""
    from sloengine.importers import render
    from sloengine.loading import load_document, read_text
    from sloengine.yamldoc import read_document, read_documents

    problems: list[Problem] = []
    docs: list[Document] = []
    for file in files:
        text = read_text(file, problems)
        if text is None:
            continue
        try:
            docs += read_documents(file, text)
        except SpecError as exc:
            problems += exc.problems
    if problems:
        raise SpecError(problems)
    planned: dict[Path, str] = {}
    notes = []
    for imported in translate(docs):
        path = out / f"{imported.service}.yaml"
        text = render(imported, how)
        try:
            load_document(read_document(str(path), text))
        except SpecError as exc:
            raise UserError(
                f"the SLO file imported for {imported.service!r} does not validate: "
                + "; ".join(exc.lines()),
                "fix the input where the message points, or report it as an import bug",
            ) from None
        planned[path] = text
        notes += imported.notes
    for note in sorted(set(notes), key=lambda n: (n.file, n.line, n.column)):
        click.echo(f"not carried over: {note}")
    for path, text in planned.items():
        _write_file(path, text)


@cli.command()
@paths_argument
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def explain(paths: tuple[str, ...], fmt: str) -> None:
    """Show each SLO's error budget and what its alerts mean: burn, windows, time to fire."""
    services = load_specs(paths)
    objectives = [obj for s in services for obj in s.objectives]
    explained = [explain_slo(obj) for obj in objectives]
    if fmt == "json":
        click.echo(json.dumps([asdict(e) for e in explained], indent=2))
        return
    texts = [render_text(e, o) for e, o in zip(explained, objectives, strict=True)]
    texts += [explain_detector(d) for s in services for d in s.detectors]
    click.echo("\n\n".join(texts))


def _prometheus(url: str, timeout: float) -> Prometheus:
    from sloengine.prometheus import Prometheus, PrometheusError

    try:
        return Prometheus(url, timeout=timeout)
    except PrometheusError as exc:
        # Raised before any query: the URL or a credential setting is wrong.
        raise UserError(
            str(exc), "check --prometheus and the SLOENGINE_PROMETHEUS_* settings"
        ) from None


prometheus_option = click.option(
    "--prometheus",
    "prometheus_url",
    required=True,
    envvar="SLOENGINE_PROMETHEUS_URL",
    help="Prometheus base URL (credentials come from SLOENGINE_PROMETHEUS_TOKEN or _USER/_PASSWORD).",
)
mode_option = click.option(
    "--mode",
    type=click.Choice([m.value for m in Mode]),
    default=Mode.AUTO.value,
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
def status(
    prometheus_url: str, paths: tuple[str, ...], fmt: str, mode: str, timeout: float
) -> None:
    """Evaluate every SLO and detector once against Prometheus and print budgets, burn
    rates, detectors' changes and state."""
    from sloengine.alerting import blind
    from sloengine.evaluate import Evaluator
    from sloengine.table import render_detector_table, render_table

    services = load_specs(paths)
    objectives = [obj for s in services for obj in s.objectives]
    evaluator = Evaluator(_prometheus(prometheus_url, timeout), mode=Mode(mode))
    statuses = evaluator.evaluate(objectives)
    found = evaluator.evaluate_detectors(d for s in services for d in s.detectors)
    if fmt == "json":
        rows = [s.as_json() for s in statuses] + [d.as_json() for d in found]
        click.echo(json.dumps(rows, indent=2))
    else:
        click.echo(render_table(statuses))
        if found:
            click.echo("\n" + render_detector_table(found))
    if blind(statuses):
        raise UnavailableError(statuses[0].error or "Prometheus did not answer", UNREACHABLE_HINT)


def _listen_address(value: str) -> str:
    """--listen checked before the scheduler starts: HOST:PORT, or empty."""
    port = re.fullmatch(r"\S*:(\d{1,5})", value)
    if value and (port is None or int(port[1]) > 65535):
        raise click.BadParameter(
            f"{value!r} is not HOST:PORT such as 127.0.0.1:9464 (empty disables it)"
        )
    return value


def listen_option(default: str, help: str, *, disable: bool = False) -> Callable[[F], F]:
    """--listen HOST:PORT, checked before anything starts; empty only where it disables."""

    def check(ctx: click.Context, param: click.Parameter, value: str) -> str:
        if not value and not disable:
            raise click.BadParameter(f"an address is needed, such as {default}")
        return _listen_address(value)

    return click.option("--listen", default=default, show_default=True, callback=check, help=help)


@cli.command()
@prometheus_option
@paths_argument
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Seconds between cycles.",
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
@listen_option(
    "127.0.0.1:9464",
    "Address for the web page, /metrics and /healthz; empty to disable.",
    disable=True,
)
@click.option(
    "--blind-after",
    type=int,
    default=3,
    show_default=True,
    help="Failed cycles in a row before the 'SLO evaluation is blind' page.",
)
@channel_options
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
@click.option(
    "--alertmanager",
    "alertmanagers",
    multiple=True,
    metavar="URL",
    envvar="SLOENGINE_ALERTMANAGER_URLS",
    help="Send the alerts to this Alertmanager's v2 API every cycle, instead of posting to "
    "Slack; repeat it for each member of a cluster (SLOENGINE_ALERTMANAGER_URLS: space-separated).",
)
@mode_option
@timeout_option
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
    alertmanagers: tuple[str, ...],
) -> None:
    """Watch the SLOs: evaluate every --interval, keep alert state, and notify on changes.

    Pages go to Slack when SLACK_BOT_TOKEN (threads, updates) or SLACK_WEBHOOK_URL is set;
    SLACK_API_URL overrides the Web API base URL. Otherwise they print here.

    With --alertmanager, every cycle sends the firing and resolved alerts to each
    Alertmanager, as Prometheus does, and Alertmanager notifies (route it with
    `sloengine alertmanager`); pages are only printed here. Several replicas, each with
    its own --state, sending to the same Alertmanager cluster page once.
    """
    import sqlite3

    from sloengine.amclient import AlertmanagerSender
    from sloengine.evaluate import Evaluator
    from sloengine.notify import ConsoleNotifier, make_notifier
    from sloengine.scheduler import Engine, watch
    from sloengine.state import Store

    services = load_specs(paths)
    objectives = [obj for s in services for obj in s.objectives]
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
        raise UserError(
            f"cannot open the state database {state_path}: {exc}",
            "check that its directory exists and is writable (--state)",
        ) from None
    channels = _channels(page_channel, ticket_channel)
    prometheus = _prometheus(prometheus_url, timeout)
    sender = None
    notifier: Notifier
    if alertmanagers:
        sender = AlertmanagerSender(
            alertmanagers, interval=interval, timeout=timeout, prometheus_url=prometheus.url
        )
        notifier = ConsoleNotifier(template_dir=template_dir)  # Alertmanager notifies
    else:
        try:
            notifier = make_notifier(
                store, dict(os.environ), channels=channels, template_dir=template_dir
            )
        except OSError as exc:
            raise UserError(
                f"cannot read the Slack secret file: {exc.strerror}",
                "check the path in SLACK_BOT_TOKEN_FILE or SLACK_WEBHOOK_URL_FILE",
            ) from None
    engine = Engine(
        objectives,
        Evaluator(prometheus, mode=Mode(mode)),
        store,
        notifier,
        blind_after=blind_after,
        renotify=renotify_seconds,
        alertmanager=sender,
        detectors=tuple(d for s in services for d in s.detectors),
    )
    if once:
        cycle = engine.run_cycle()
        if cycle is None:
            raise UserError(
                f"the evaluation cycle failed: {engine.last_crash}",
                "check the state database (--state); its alert state may be damaged",
            )
        if cycle.blind:
            raise UnavailableError(
                cycle.statuses[0].error or "Prometheus did not answer", UNREACHABLE_HINT
            )
        return
    from sloengine.web.app import engine_site

    try:
        watch(engine, interval, listen, engine_site(services, engine))
    except OSError as exc:
        raise UserError(f"cannot listen on {listen}: {exc.strerror}") from None


@cli.command()
@prometheus_option
@paths_argument
@listen_option("127.0.0.1:9465", "Address for the web page and /healthz.")
@click.option(
    "--state",
    "state_path",
    default=None,
    envvar="SLOENGINE_STATE",
    help="A state database `sloengine run` writes, read-only, for incident history.",
)
@mode_option
@timeout_option
def serve(
    prometheus_url: str,
    paths: tuple[str, ...],
    listen: str,
    state_path: str | None,
    mode: str,
    timeout: float,
) -> None:
    """Serve the web page alone: every SLO's state, budget and burn, read-only.

    Evaluates on each request (the same numbers as `status`); no state database is
    needed, and with --state it shows incident history without touching the file.
    """
    from sloengine.evaluate import Evaluator
    from sloengine.web.app import read_only_notes, serve_site

    services = load_specs(paths)
    notes = read_only_notes(state_path) if state_path else None
    evaluator = Evaluator(_prometheus(prometheus_url, timeout), mode=Mode(mode))
    try:
        serve_site(services, evaluator, listen, notes, click.echo)
    except OSError as exc:
        raise UserError(
            f"cannot listen on {listen}: {exc.strerror}", "choose another --listen address"
        ) from None


@cli.command()
@click.argument("path", default="slos/chat-assistant.yaml", metavar="[PATH]")
@click.option(
    "--no-serve",
    is_flag=True,
    help="Exit after printing, instead of serving the web page until Ctrl-C (for CI).",
)
@listen_option("127.0.0.1:9464", "Address for the demo's web page.")
def demo(path: str, no_serve: bool, listen: str) -> None:
    """Simulate an LLM service in a local Prometheus, mid-outage, and show status and pages,
    then serve the web page until Ctrl-C.

    PATH is the SLO file to demonstrate (default: slos/chat-assistant.yaml). Needs
    Debian's prometheus package; installs it when missing and allowed to.
    """
    from sloengine.demo import run_demo

    services = load_specs([path])
    if len(services) != 1:
        raise UserError(
            f"{path} holds {len(services)} services; the demo shows one",
            "name one SLO file, e.g. slos/chat-assistant.yaml",
        )
    run_demo(services[0], click.echo, listen=None if no_serve else listen)


@cli.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="OpenMetrics file to write.",
)
@click.option(
    "--days",
    type=click.IntRange(min=0),
    default=30,
    show_default=True,
    help="History length, ending now.",
)
@click.option(
    "--step",
    type=click.IntRange(min=1),
    default=60,
    show_default=True,
    help="Seconds between samples.",
)
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
    try:
        with out.open("w", encoding="utf-8") as handle:
            count = write_openmetrics(scenario, handle, start, end, step)
    except OSError as exc:
        raise UserError(
            f"cannot write {out}: {exc.strerror}", "check that its directory exists"
        ) from None
    click.echo(f"wrote {count:,} samples of {scenario.series_count} series to {out}")
    for incident in scenario.incidents:
        click.echo(
            f"  incident {incident.kind} from {_iso(incident.start)} to {_iso(incident.end)}"
        )


def _moment(text: str, now: float, option: str) -> float:
    """``now``, an ISO 8601 time with a zone, or a duration before ``now`` (``30d``)."""
    from datetime import datetime

    if text == "now":
        return now
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UserError(
            f"{option} {text!r} is not a time",
            "give `now`, a duration before now such as 30d, or ISO 8601 with a zone "
            "such as 2026-11-03T10:00:00Z",
        )
    return moment.timestamp()


@cli.command()
@prometheus_option
@paths_argument
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Start: a duration before --until, or ISO 8601.",
)
@click.option(
    "--until", default="now", show_default=True, help="End: now, a duration ago, or ISO 8601."
)
@click.option(
    "--step", default="1m", show_default=True, callback=_duration, help="Evaluation step."
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "--against",
    "against",
    multiple=True,
    type=click.Path(),
    help="The old SLO file(s): report the pages the change adds and removes.",
)
@click.option(
    "--incidents",
    "incidents_file",
    type=click.Path(),
    help="YAML list of known incidents (start, end, optional name/service/slo).",
)
@timeout_option
def backtest(
    prometheus_url: str,
    paths: tuple[str, ...],
    since: str,
    until: str,
    step: str,
    fmt: str,
    against: tuple[str, ...],
    incidents_file: str | None,
    timeout: float,
) -> None:
    """Replay every SLO's alerts over history: episodes, pages a week, budget, breaches."""
    from sloengine.backtest import detectors as detector_report
    from sloengine.backtest import report
    from sloengine.backtest.detector_history import backtest_detectors
    from sloengine.backtest.history import MIN_STEP_SECONDS
    from sloengine.backtest.history import backtest as run_backtest
    from sloengine.prometheus import PrometheusError

    step_seconds = round(parse_duration(step))
    if step_seconds < MIN_STEP_SECONDS or step_seconds > 300:
        raise UserError(
            f"--step {step} is outside 1m..5m",
            "a step shorter than 1m is under most scrape intervals, longer than 5m is "
            "longer than the shortest window",
        )
    now = time.time()
    end = _moment(until, now, "--until")
    start = _moment(since, end, "--since")
    if not start < end:
        raise UserError(f"--since {since} is not before --until {until}", "widen the range")
    services = load_specs(paths)
    objectives = [o for s in services for o in s.objectives]
    found = [d for s in services for d in s.detectors]
    old = [o for s in load_specs(against) for o in s.objectives] if against else None
    known = None
    if incidents_file is not None:
        try:
            text = Path(incidents_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(
                f"cannot read --incidents {incidents_file}: {exc}", "give a readable YAML file"
            ) from None
        known = report.parse_incidents(incidents_file, text)
    prom = _prometheus(prometheus_url, timeout)
    shown = sys.stderr.isatty()

    def progress(done: int, todo: int) -> None:
        if shown:
            click.echo(
                f"\rbacktest: {done * 100 // max(todo, 1)}% of {todo:,} points", err=True, nl=False
            )

    try:
        replays = run_backtest(prom, objectives, start, end, step_seconds, progress=progress)
        before = (
            None
            if old is None
            else run_backtest(prom, old, start, end, step_seconds, progress=progress)
        )
        detected = backtest_detectors(prom, found, start, end, step_seconds)
    except PrometheusError as exc:
        raise UnavailableError(str(exc), UNREACHABLE_HINT) from None
    finally:
        if shown:
            click.echo("", err=True)
    items = report.entries(replays, before, known)
    if fmt == "json":
        rows = report.as_json(items) + detector_report.as_json(detected)
        click.echo(json.dumps(rows, indent=2))
    elif fmt == "markdown":
        text = report.render_markdown(items, known)
        click.echo(text + detector_report.render_markdown(detected), nl=False)
    else:
        text = report.render_text(items, known)
        extra = detector_report.render_text(detected)
        click.echo(text + ("\n" + extra if extra else ""), nl=False)


@cli.command("backfill")
@prometheus_option
@paths_argument
@out_dir_option("New directory for the TSDB blocks (absent or empty).")
@click.option(
    "--since",
    default="window",
    show_default=True,
    help="Start: `window` (as far back as each rule reads), a duration before --until, or ISO 8601.",
)
@click.option(
    "--until",
    default="now",
    show_default=True,
    help="End: now, a duration ago, or ISO 8601; never past a group's first live sample.",
)
@click.option(
    "--timeout",
    type=float,
    default=120.0,
    show_default=True,
    help="Seconds per Prometheus query.",
)
def backfill_command(
    prometheus_url: str, paths: tuple[str, ...], out: Path, since: str, until: str, timeout: float
) -> None:
    """Rebuild the history of the recording rules other rules read over a range, from
    the raw series, as TSDB blocks to move into Prometheus's data directory."""
    from sloengine import lookback, rules
    from sloengine.backfill import backfill, promtool_binary, restart_safe_after

    promtool_binary()
    services = load_specs(paths)
    now = time.time()
    end = _moment(until, now, "--until")
    start = None if since == "window" else _moment(since, end, "--since")
    if start is not None and not start < end:
        raise UserError(f"--since {since} is not before --until {until}", "widen the range")
    groups = [
        g for s in services for g in rules.rule_groups(s) + detectors.rule_groups(s.detectors)
    ]
    plan = lookback.plan(groups)
    prom = _prometheus(prometheus_url, timeout)
    result = backfill(
        prom,
        plan,
        None if start is None else int(start),
        int(end),
        out,
        log=lambda line: click.echo(f"backfill: {line}", err=True),
    )
    for planned, went_live in result.covered:
        click.echo(f"{planned.group}: recorded since {_iso(went_live)} already, nothing to add")
    for span in result.spans:
        records = ", ".join(sorted({str(r["record"]) for r in span.planned.rules}))
        click.echo(f"{span.planned.group}: {records} from {_iso(span.start)} to {_iso(span.end)}")
    for skipped in plan.skipped:
        click.echo(f"{skipped.group}: {skipped.record} left out: {skipped.reason}")
    if not result.spans:
        click.echo(f"nothing to backfill; {out} is empty")
        return
    click.echo(f"wrote {result.blocks} blocks to {out}")
    data_dir = result.data_dir or "<Prometheus's --storage.tsdb.path>"
    click.echo(
        f"next: move them into the server's data directory (mv {out}/* {data_dir}/); "
        "Prometheus 2.39 and later loads them within a minute (2.38 and older: "
        "restart it with --storage.tsdb.allow-overlapping-blocks)"
    )
    safe = restart_safe_after(result)
    if safe is not None:
        click.echo(
            f"warning: the blocks reach into the samples Prometheus holds in memory: do not "
            f"restart it before {_iso(safe)}, or it drops the raw samples of the hours "
            "before the blocks' end (see README, Rolling out)"
        )


def _iso(t: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(t, UTC).isoformat(timespec="minutes")


def main() -> None:
    cli(prog_name="sloengine")


if __name__ == "__main__":
    main()
