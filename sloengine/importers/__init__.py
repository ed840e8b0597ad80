"""SLO specs of other tools (Sloth, OpenSLO) translated into sloengine/v1 files.

Pure: the CLI reads the files and writes the results. A translator walks the parsed
documents with a :class:`Walk`, which remembers every key it used; whatever it did not
use becomes a :class:`Note`, so nothing in the input is dropped without saying so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sloengine import conventions as cv
from sloengine.errors import Problem, SpecError, printable
from sloengine.spec import LABEL_NAME, MAX_NAME, MAX_OBJECTIVE, NAME_PATTERN
from sloengine.yamldoc import Document, KeyPath, read_document
from sloengine.yamlwriter import dump_yaml

# Sloth's Go template variable, with or without spaces: {{.window}}, {{ .window }}.
GO_WINDOW = re.compile(r"\{\{-?\s*\.window\s*-?\}\}")
SLOENGINE_WINDOW = "{{window}}"
# Annotations sloengine writes on every alert, whatever the SLO file says.
OWN_ANNOTATIONS = frozenset({"summary", "description", "runbook_url"})


@dataclass(frozen=True)
class Note:
    """One input field the imported file does not carry, and why."""

    file: str
    line: int
    column: int
    field: str  # the input field as written, e.g. slos[0].alerting.name
    reason: str
    at: KeyPath = ()  # where in the written file it would go

    def __str__(self) -> str:
        return f"{printable(self.file)}:{self.line}:{self.column}: {self.field}: {self.reason}"


@dataclass
class Imported:
    """One service's sloengine/v1 document and what could not be carried into it."""

    service: str
    data: dict[str, Any]
    sources: list[str]
    notes: list[Note] = field(default_factory=list)


def spelled(path: KeyPath) -> str:
    """A key path as written in docs: slos[0].sli.events."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(the document)"


class Walk:
    """Reads one document: typed, located lookups; the keys used; notes for the rest."""

    def __init__(self, doc: Document, problems: list[Problem], notes: list[Note]) -> None:
        self.doc = doc
        self.problems = problems
        self.notes = notes
        self.used: set[KeyPath] = set()
        self.whole: set[KeyPath] = set()
        # Input prefix -> output path: where a note about that input goes in the file.
        self.targets: dict[KeyPath, KeyPath] = {}
        # For documents that refer to others (OpenSLO): the service whose file the notes
        # go to, the metric source types by DataSource name, and the sources referred to.
        self.service: str | None = None
        self.source_types: dict[str, str] = {}
        self.source_refs: set[str] = set()

    def target(self, path: KeyPath) -> KeyPath:
        for end in range(len(path), -1, -1):
            if path[:end] in self.targets:
                return self.targets[path[:end]]
        return ()

    def problem(self, path: KeyPath, message: str, hint: str = "") -> None:
        self.problems.append(self.doc.problem(path, message, hint, key=bool(path)))

    def note(
        self, path: KeyPath, reason: str, at: KeyPath | None = None, whole: bool = True
    ) -> None:
        """``path`` is not carried over (nor, with ``whole``, anything under it); without
        ``whole``, a remark on how it was carried over."""
        line, column = self.doc.at(path, key=bool(path))
        target = self.target(path) if at is None else at
        self.notes.append(Note(self.doc.file, line, column, spelled(path), reason, target))
        if whole:
            self.whole.add(path)

    def value(self, path: KeyPath) -> Any:
        data: Any = self.doc.data
        part: Any
        for part in path:
            if (isinstance(data, dict) and part in data) or (
                isinstance(data, list) and isinstance(part, int) and part < len(data)
            ):
                data = data[part]
            else:
                return None
        return data

    def get(self, path: KeyPath, kind: type | tuple[type, ...], required: bool = False) -> Any:
        """The value at ``path`` if it has the ``kind``; a located problem otherwise."""
        value = self.value(path)
        self.used.add(path)
        if value is None:
            if required:
                self.problem(path[:-1], f"{spelled(path)} is missing", f"give {spelled(path[-1:])}")
            return None
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            wanted = " or ".join(_KIND_NAMES.get(k, k.__name__) for k in kinds)
            self.problem(path, f"{spelled(path)} is not {wanted}", f"write {wanted} there")
            return None
        return value

    def take(self, path: KeyPath) -> None:
        """``path`` and everything under it are carried over as a whole."""
        self.used.add(path)
        self.whole.add(path)

    def leftovers(self, root: KeyPath = (), reason: str = "") -> None:
        """A note for each key under ``root`` that nothing used."""
        for path in sorted(self.doc.keys, key=lambda p: self.doc.keys[p]):
            if path[: len(root)] != root or path in self.used:
                continue
            if any(path[:end] in self.whole for end in range(len(path) + 1)):
                continue
            self.note(path, reason or "not a field sloengine knows how to carry over")


_KIND_NAMES = {str: "text", dict: "a mapping", list: "a list", bool: "true or false"}
NUMBER = (int, float)
_KIND_NAMES.update({int: "a number", float: "a number"})


def slug(text: str) -> str:
    """``text`` as a sloengine name ([a-z0-9] with - _ . inside)."""
    out = re.sub(r"[^a-z0-9_.-]+", "-", text.strip().lower()).strip("-_.")
    return out[:MAX_NAME].rstrip("-_.")


def is_name(text: str) -> bool:
    return bool(re.match(NAME_PATTERN, text)) and len(text) <= MAX_NAME


def name_from(walk: Walk, path: KeyPath, text: str, what: str) -> str | None:
    """``text`` as a sloengine name; a renamed one is noted, an unusable one is a problem."""
    if is_name(text):
        return text
    name = slug(text)
    if not name:
        walk.problem(path, f"the {what} {text!r} has no letters or digits", "name it")
        return None
    walk.note(
        path,
        f"{text!r} renamed {name!r} (sloengine names are lowercase letters, digits, - _ .)",
        whole=False,
    )
    return name


def objective_percent(walk: Walk, path: KeyPath, percent: float) -> float | int | None:
    """An objective sloengine can hold (0 < objective <= 99.999), or a note why not."""
    if 0 < percent <= MAX_OBJECTIVE:
        return percent_value(round(percent, 9))
    if 0 < percent <= 100:
        walk.note(
            path,
            f"objective {percent:g}% is above sloengine's {MAX_OBJECTIVE}% "
            "(a smaller budget cannot be measured with 5m rates); SLO not carried over",
        )
        return None
    walk.problem(path, f"objective {percent:g} is not a percentage in (0, 100]", "e.g. 99.9")
    return None


def labels_into(
    walk: Walk, path: KeyPath, labels: dict[Any, Any], into: dict[str, str], what: str
) -> None:
    """Copy Prometheus labels that sloengine accepts; note the others."""
    for key, value in labels.items():
        here = (*path, key)
        walk.used.add(here)
        if not isinstance(key, str) or not LABEL_NAME.match(key) or key.startswith("__"):
            walk.note(here, f"{key!r} is not a Prometheus label name")
        elif key in cv.SLOENGINE_LABELS:
            walk.note(here, f"sloengine sets the {key!r} label of its {what} itself")
        elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
            into[key] = str(value)
            walk.take(here)
        else:
            walk.note(here, "the label's value is not text")


def window_query(text: str) -> str:
    """A query with Sloth's ``{{.window}}`` spelled as sloengine's ``{{window}}``."""
    return GO_WINDOW.sub(SLOENGINE_WINDOW, text)


def render(imported: Imported, how: str) -> str:
    """The written file: a header, the YAML, and each note as a comment where it would go."""
    text = dump_yaml(imported.data)
    doc = read_document("imported", text)
    lines = text.splitlines()
    comments: dict[int, list[str]] = {}
    for note in imported.notes:
        line, column = doc.at(note.at, key=bool(note.at)) if note.at else (1, 1)
        indent = " " * (column - 1)
        comments.setdefault(line, []).append(f"{indent}# not carried over: {_comment(note)}")
    out = [
        f"# Imported by `sloengine import {how}` from {', '.join(imported.sources)}.",
        "# Review it, then commit it with the service: it is yours to edit from here on.",
    ]
    if imported.notes:
        out.append(
            f"# {len(imported.notes)} input fields were not carried over as written: "
            "each is a comment below, where it would go."
        )
    for at, written in enumerate(lines, start=1):
        out += comments.get(at, [])
        out.append(written)
    return "\n".join(out) + "\n"


def _comment(note: Note) -> str:
    return printable(str(note)).replace("\n", " ")


def with_key(data: dict[str, Any], key: str, value: Any, before: str) -> dict[str, Any]:
    """``data`` with ``key`` set just before the key ``before``, where people look for it."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        if k == before:
            out[key] = value
        if k != key:
            out[k] = v
    return out


def percent_value(percent: float) -> float | int:
    """99 rather than 99.0 in the written file."""
    return int(percent) if float(percent).is_integer() else percent


def nothing_left(walk: Walk, path: KeyPath, what: str, why: list[Note]) -> None:
    """Every SLO was left out: an error, with each reason as a located problem."""
    for note in why:
        walk.problems.append(
            Problem(note.file, note.line, note.column, f"{note.field}: {note.reason}")
        )
    walk.problem(path, f"no {what} can be carried over", "the problems listed say why")


def fail_on(problems: list[Problem]) -> None:
    if problems:
        raise SpecError(problems)
