"""The errors users see: what is wrong, where when it is in a file, and what to do.

Library code raises these and never exits; the CLI turns each into ``error:`` lines
and the exit code of its kind (see the README's exit code table).
"""

from __future__ import annotations

from dataclasses import dataclass


def printable(text: str) -> str:
    """``text`` with line breaks and other unprintable characters escaped (\\n, \\x1b)."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def with_hint(text: str, hint: str) -> str:
    """``text (hint)``, or the text alone when there is no hint."""
    return f"{text} ({hint})" if hint else text


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one input file."""

    file: str
    line: int
    column: int
    message: str
    hint: str = ""

    def __str__(self) -> str:
        # A file name with a line break would split the one line the user reads.
        where = f"{printable(self.file)}:{self.line}:{self.column}"
        return with_hint(f"{where}: {self.message}", self.hint)


class UserError(Exception):
    """Bad input (a file, an option, a secret file) the user can fix; the hint says how."""

    def __init__(self, message: str, hint: str = "") -> None:
        self.message = message
        self.hint = hint
        super().__init__(with_hint(message, hint))

    def lines(self) -> list[str]:
        """What the user reads, one line per problem."""
        return [str(self)]


class SpecError(UserError):
    """Invalid SLO files; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def lines(self) -> list[str]:
        return [str(p) for p in self.problems]


class UnavailableError(UserError):
    """Something sloengine needs is not there or not answering: Prometheus, promtool."""
