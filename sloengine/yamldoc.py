"""YAML documents read with the position of every key and value, for located errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from sloengine.errors import Problem, SpecError

# A path into a document: mapping keys and list indexes, e.g. ("slos", 0, "name").
KeyPath = tuple[str | int, ...]


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


def _pos(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


_SCALARS = yaml.SafeLoader("")
# libyaml's parser when PyYAML was built with it: the same nodes and marks, several
# times faster on the thousand-file repositories `generate` is run on.
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _scalar(node: yaml.Node) -> Any:
    return _SCALARS.construct_object(node, deep=True)


def _walk(node: yaml.Node, path: KeyPath, doc: Document, problems: list[Problem]) -> Any:
    doc.values[path] = _pos(node)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = (
                _scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            )
            if key in out:
                line, col = _pos(key_node)
                problems.append(
                    Problem(
                        doc.file,
                        line,
                        col,
                        f"duplicate key {key!r}",
                        "each key may appear once; remove one",
                    )
                )
            doc.keys[(*path, key)] = _pos(key_node)
            out[key] = _walk(value_node, (*path, key), doc, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_walk(item, (*path, i), doc, problems) for i, item in enumerate(node.value)]
    return _scalar(node)


def _yaml_complaint(exc: yaml.MarkedYAMLError) -> tuple[str, str]:
    """PyYAML's problem, with what it was reading and where that began when it is elsewhere."""
    problem = exc.problem or str(exc)
    if isinstance(exc, yaml.composer.ComposerError) and "another document" in problem:
        return "invalid YAML: a second document", "one file holds one service: remove the ---"
    context, start, end = exc.context, exc.context_mark, exc.problem_mark
    if context and start and end and start.line != end.line:
        problem = f"{problem}, {context} that starts at line {start.line + 1}"
    elif context:
        problem = f"{problem}, {context}"
    return f"invalid YAML: {problem}", "check indentation and quoting"


def read_document(file: str, text: str) -> Document:
    """Parse one YAML document; a syntax error becomes a located SpecError."""
    doc = Document(file, None)
    try:
        try:
            node = yaml.compose(text, Loader=_FAST_LOADER)
        except yaml.YAMLError:
            # PyYAML's own parser words the problem (and its context) best.
            node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise SpecError([Problem(file, line, col, *_yaml_complaint(exc))]) from None
    except yaml.YAMLError as exc:
        raise SpecError(
            [Problem(file, 1, 1, f"invalid YAML: {exc}", "check the file is one YAML document")]
        ) from None
    if node is None:
        raise SpecError(
            [Problem(file, 1, 1, "the file is empty", "start from an example in slos/")]
        )
    problems: list[Problem] = []
    doc.data = _walk(node, (), doc, problems)
    if problems:
        raise SpecError(problems)
    return doc
