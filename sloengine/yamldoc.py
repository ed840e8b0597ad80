"""YAML documents read with the position of every key and value, for located errors.

The reader builds the data straight from the parser's events, without recursion, and
accepts only what an SLO file needs: plain mappings, lists and scalars. It refuses
what turns a small file into a huge or surprising one (aliases, merge keys, custom
tags, deep nesting, a file over a megabyte), each as a located problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import yaml

from sloengine.errors import Problem, SpecError

# A path into a document: mapping keys and list indexes, e.g. ("slos", 0, "name").
KeyPath = tuple[str | int, ...]

# An SLO file is a few kilobytes; a megabyte is thousands of SLOs.
MAX_CHARS = 1_000_000
# The deepest SLO field (slos[0].alerting.page.for) is five collections down.
MAX_DEPTH = 32

_TAG = "tag:yaml.org,2002:"
# Tags whose values are built as YAML would; a timestamp stays the text that was written.
_SCALAR_TAGS = {f"{_TAG}{kind}" for kind in ("str", "int", "float", "bool", "null")}
_TEXT_TAGS = {f"{_TAG}timestamp", f"{_TAG}value"}
_ALLOWED_CONTROLS = {"\t", "\n"}


@dataclass
class Document:
    """A parsed YAML file: its data plus where each key path starts (1-based line, column)."""

    file: str
    data: Any
    values: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    keys: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)

    def at(self, path: KeyPath, key: bool = False) -> tuple[int, int]:
        """Position of the deepest known prefix of path (a key's own position if asked)."""
        for end in range(len(path), -1, -1):
            prefix = path[:end]
            if key and end == len(path) and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return (1, 1)

    def problem(self, path: KeyPath, message: str, hint: str = "", key: bool = False) -> Problem:
        line, column = self.at(path, key)
        return Problem(self.file, line, column, message, hint)


def _pos(mark: Any) -> tuple[int, int]:
    return mark.line + 1, mark.column + 1


_SCALARS = yaml.SafeLoader("")
# libyaml's parser when PyYAML was built with it: the same events and marks, several
# times faster on the thousand-file repositories `generate` is run on.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Refused(Exception):
    """A problem that stops reading (the rest of the file cannot be trusted or is huge)."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem


@dataclass
class _Frame:
    """A mapping or list being read: its data, path, and a mapping's key awaiting a value."""

    path: KeyPath
    data: dict[Any, Any] | list[Any]
    key: Any = None
    has_key: bool = False


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def _bad_character(text: str) -> str | None:
    for char in text:
        code = ord(char)
        if 0xD800 <= code <= 0xDFFF:
            return f"U+{code:04X} (half of a surrogate pair) is not a character"
        if (code < 0x20 or 0x7F <= code <= 0x9F) and char not in _ALLOWED_CONTROLS:
            return f"the control character U+{code:04X} is not allowed in text"
    return None


class _Reader:
    def __init__(self, doc: Document) -> None:
        self.doc = doc
        self.problems: list[Problem] = []

    def problem(self, mark: Any, message: str, hint: str) -> Problem:
        return Problem(self.doc.file, *_pos(mark), message, hint)

    def scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = _SCALARS.resolve(yaml.ScalarNode, event.value, event.implicit)  # type: ignore[no-untyped-call]
        if tag == f"{_TAG}merge":
            self.problems.append(
                self.problem(
                    event.start_mark,
                    "YAML merge keys (<<) are not supported",
                    "write the keys out; settings shared by every SLO go in the file's "
                    "alerting, labels and metrics",
                )
            )
            return None
        if tag not in _SCALAR_TAGS | _TEXT_TAGS:
            self.problems.append(self._tag_problem(event, tag))
            return None
        value: Any = event.value
        if tag in _SCALAR_TAGS and tag != f"{_TAG}str":
            node = yaml.ScalarNode(tag, event.value)
            try:
                value = _SCALARS.construct_object(node, deep=True)
            except (ValueError, ArithmeticError, yaml.YAMLError):
                # An explicit !!int on text, or more digits than Python converts.
                self.problems.append(
                    self.problem(
                        event.start_mark,
                        f"{_shorten(event.value)!r} cannot be read as {tag.removeprefix(_TAG)}",
                        "write a plain number, or quote the value",
                    )
                )
                return None
        if isinstance(value, str):
            bad = _bad_character(value)
            if bad:
                self.problems.append(
                    self.problem(event.start_mark, bad, "remove it: SLO files hold plain text")
                )
                return None
        return value

    def _tag_problem(self, event: Any, tag: str) -> Problem:
        shown = "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag
        return self.problem(
            event.start_mark,
            f"the YAML tag {shown} is not supported",
            "remove the tag: an SLO file holds plain mappings, lists, strings and numbers",
        )

    def collection_tag(self, event: Any, default: str) -> None:
        tag = event.tag
        if tag is not None and tag != "!" and tag != default:
            self.problems.append(self._tag_problem(event, tag))

    def read(self, events: Any, many: bool = False) -> Any:
        """The document's data, from the parser's events (with ``many``, the next
        document's, or _END after the last)."""
        stack: list[_Frame] = []
        root: Any = None
        seen_root = False
        documents = 0
        for event in events:
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1 and not many:
                    raise _Refused(
                        self.problem(
                            event.start_mark,
                            "invalid YAML: a second document",
                            "one file holds one service: remove the ---",
                        )
                    )
                continue
            if isinstance(event, yaml.StreamEndEvent) and many:
                return _END
            if isinstance(event, (yaml.StreamStartEvent, yaml.StreamEndEvent)):
                continue
            if isinstance(event, yaml.DocumentEndEvent):
                if many:
                    return root if seen_root else _EMPTY
                continue
            if isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                frame = stack.pop()
                if stack:
                    self.attach(stack[-1], frame.data, frame.path[-1], None)
                else:
                    root, seen_root = frame.data, True
                continue
            parent = stack[-1] if stack else None
            is_key = (
                isinstance(parent, _Frame) and isinstance(parent.data, dict) and not parent.has_key
            )
            path = self.child_path(parent)
            if isinstance(event, yaml.AliasEvent):
                # The first is enough: a "billion laughs" file has thousands.
                raise _Refused(
                    self.problem(
                        event.start_mark,
                        f"YAML aliases (*{event.anchor}) are not supported",
                        "write the value out; settings shared by every SLO go in the file's "
                        "alerting, labels and metrics",
                    )
                )
            if isinstance(event, yaml.ScalarEvent):
                value: Any = self.scalar(event)
            elif isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                if is_key:
                    raise _Refused(
                        self.problem(
                            event.start_mark,
                            "a key is a mapping or a list",
                            "keys are plain names such as service or objective",
                        )
                    )
                if len(stack) >= MAX_DEPTH:
                    raise _Refused(
                        self.problem(
                            event.start_mark,
                            f"the YAML is nested more than {MAX_DEPTH} levels deep",
                            "an SLO file nests a few levels: check the indentation and brackets",
                        )
                    )
                mapping = isinstance(event, yaml.MappingStartEvent)
                self.collection_tag(event, f"{_TAG}map" if mapping else f"{_TAG}seq")
                self.doc.values[path] = _pos(event.start_mark)
                stack.append(_Frame(path, {} if mapping else []))
                continue
            else:  # pragma: no cover - PyYAML has no other events
                continue
            if parent is None:
                self.doc.values[path] = _pos(event.start_mark)
                root, seen_root = value, True
            elif is_key:
                # A null or float key (~, .nan) would not survive pydantic's location
                # (it spells them as text): keep the text that was written.
                if value is None or isinstance(value, float):
                    value = event.value
                self.key(parent, value, event.start_mark)
            else:
                self.doc.values[path] = _pos(event.start_mark)
                self.attach(parent, value, path[-1], event.start_mark)
        return root if seen_root else _EMPTY

    def child_path(self, parent: _Frame | None) -> KeyPath:
        if parent is None:
            return ()
        if isinstance(parent.data, list):
            return (*parent.path, len(parent.data))
        return (*parent.path, parent.key)

    def key(self, parent: _Frame, key: Any, mark: Any) -> None:
        assert isinstance(parent.data, dict)
        try:
            duplicate = key in parent.data
        except TypeError:  # pragma: no cover - scalars are hashable
            duplicate = False
        if duplicate:
            self.problems.append(
                self.problem(mark, f"duplicate key {key!r}", "each key may appear once; remove one")
            )
        parent.key, parent.has_key = key, True
        self.doc.keys[(*parent.path, key)] = _pos(mark)

    def attach(self, parent: _Frame, value: Any, _last: Any, mark: Any) -> None:
        if isinstance(parent.data, list):
            parent.data.append(value)
            return
        parent.data[parent.key] = value
        parent.key, parent.has_key = None, False


_EMPTY = object()
_END = object()


def _yaml_complaint(exc: yaml.MarkedYAMLError) -> tuple[str, str]:
    """PyYAML's problem, with what it was reading and where that began when it is elsewhere."""
    problem = exc.problem or str(exc)
    context, start, end = exc.context, exc.context_mark, exc.problem_mark
    if context and start and end and start.line != end.line:
        problem = f"{problem}, {context} that starts at line {start.line + 1}"
    elif context:
        problem = f"{problem}, {context}"
    return f"invalid YAML: {problem}", "check indentation and quoting"


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of the character at ``index``."""
    line_start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - line_start + 1


def _parse(file: str, text: str, loader: Any) -> Document:
    doc = Document(file, None)
    reader = _Reader(doc)
    try:
        data = reader.read(yaml.parse(text, Loader=loader))
    except _Refused as refused:
        raise SpecError([*reader.problems, refused.problem]) from None
    if data is _EMPTY:
        raise SpecError(
            [Problem(file, 1, 1, "the file is empty", "start from an example in slos/")]
        )
    if reader.problems:
        raise SpecError(reader.problems)
    doc.data = data
    return doc


def _too_big(file: str, text: str) -> None:
    if len(text) > MAX_CHARS:
        raise SpecError(
            [
                Problem(
                    file,
                    1,
                    1,
                    f"the file has {len(text):,} characters, more than the {MAX_CHARS:,} "
                    "an SLO file may have",
                    "one file describes one service: split it, or remove what is not SLOs",
                )
            ]
        )


def _parse_many(file: str, text: str, loader: Any) -> list[Document]:
    docs = []
    events = iter(yaml.parse(text, Loader=loader))
    while True:
        doc = Document(file, None)
        reader = _Reader(doc)
        try:
            data = reader.read(events, many=True)
        except _Refused as refused:
            raise SpecError([*reader.problems, refused.problem]) from None
        if reader.problems:
            raise SpecError(reader.problems)
        if data is _END:
            break
        if data is not _EMPTY and data is not None:
            doc.data = data
            docs.append(doc)
    if not docs:
        raise SpecError([Problem(file, 1, 1, "the file is empty", "give the file's YAML")])
    return docs


def read_document(file: str, text: str) -> Document:
    """Parse one YAML document; a syntax error or a refused construct is a located SpecError."""
    _too_big(file, text)
    return _located(file, text, lambda loader: _parse(file, text, loader))


def read_documents(file: str, text: str) -> list[Document]:
    """Every document of a ``---`` separated stream (Kubernetes, OpenSLO), with positions."""
    _too_big(file, text)
    return _located(file, text, lambda loader: _parse_many(file, text, loader))


T = TypeVar("T")


def _located(file: str, text: str, parse: Callable[[Any], T]) -> T:
    """``parse`` with libyaml, its YAML errors as located SpecErrors."""
    try:
        try:
            return parse(_FAST_LOADER)
        except yaml.YAMLError:
            # PyYAML's own parser words the problem (and its context) best.
            return parse(yaml.SafeLoader)
    except yaml.reader.ReaderError as exc:
        line, col = _line_col(text, exc.position)
        char = (
            exc.character if isinstance(exc.character, int) else ord(str(exc.character)[:1] or "?")
        )
        raise SpecError(
            [
                Problem(
                    file,
                    line,
                    col,
                    f"invalid YAML: the character U+{char:04X} is not allowed in a YAML file",
                    "remove it: SLO files hold plain text",
                )
            ]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError([Problem(file, line, col, *_yaml_complaint(exc))]) from None
    except yaml.YAMLError as exc:
        raise SpecError(
            [Problem(file, 1, 1, f"invalid YAML: {exc}", "check the file is one YAML document")]
        ) from None
