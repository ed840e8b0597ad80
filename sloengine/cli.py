"""The ``sloengine`` command. Only this module prints for users or chooses exit codes."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import click

from sloengine import __version__
from sloengine.errors import SpecError
from sloengine.explain import explain as explain_slo
from sloengine.explain import render_text
from sloengine.loading import load_specs
from sloengine.model import Service
from sloengine.output import stale, write_all
from sloengine.rules import render
from sloengine.ruletests import render_tests

F = TypeVar("F", bound=Callable[..., Any])

EXIT_STALE = 1
EXIT_BAD_INPUT = 2


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
@reports_spec_errors
def validate(paths: tuple[str, ...]) -> None:
    """Check SLO files against the sloengine/v1 contract."""
    services = load_specs(paths)
    count = sum(len(s.objectives) for s in services)
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


def main() -> None:
    cli(prog_name="sloengine")


if __name__ == "__main__":
    main()
