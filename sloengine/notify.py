"""Where pages go. Without Slack configured, they are printed: the same content, as text."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from jinja2 import FileSystemLoader, PackageLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from sloengine.state import Message


def templates(override_dir: str | None = None) -> SandboxedEnvironment:
    """Templates run sandboxed; a repo may override them from its own directory."""
    loader: Any = PackageLoader("sloengine", "templates")
    if override_dir:
        from jinja2 import ChoiceLoader

        loader = ChoiceLoader([FileSystemLoader(override_dir), loader])
    return SandboxedEnvironment(
        loader=loader, undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
    )


def render_console(message: Message, env: SandboxedEnvironment | None = None) -> str:
    env = env or templates()
    return env.get_template("console.txt.j2").render(
        kind=message.kind, p=message.payload, incident=message.incident
    )


class ConsoleNotifier:
    """Prints each page, ticket and resolution; the embedded default."""

    def __init__(self, out: TextIO | None = None, template_dir: str | None = None) -> None:
        self.out = out or sys.stdout
        self.env = templates(template_dir)

    def send(self, message: Message) -> None:
        print(render_console(message, self.env), file=self.out, flush=True)
        print(file=self.out, flush=True)
