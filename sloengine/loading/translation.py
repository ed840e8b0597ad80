"""Pydantic's validation errors as located Problems in the user's words, with hints."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

import pydantic

from sloengine.errors import Problem
from sloengine.loading.hints import (
    HINTS,
    HISTOGRAM_THRESHOLD_HINT,
    IDENTIFIER_GROUP_HINT,
    LABEL_KEY_TYPE_HINT,
    LABEL_NAME_HINT,
    OBJECTIVE_BOUND_HINT,
    RESERVED_LABEL_HINT,
)
from sloengine.spec import SLOFile
from sloengine.yamldoc import Document, KeyPath


def problems_from(doc: Document, exc: pydantic.ValidationError) -> list[Problem]:
    """One Problem per error pydantic found in the document."""
    return [_problem_from_pydantic(doc, e) for e in exc.errors()]


def _vocabulary() -> list[str]:
    words: set[str] = set()
    pending: list[Any] = [SLOFile]
    seen: set[Any] = set()
    while pending:
        model = pending.pop()
        if model in seen:
            continue
        seen.add(model)
        for name, info in model.model_fields.items():
            words.add(info.alias or name)
            for arg in _model_args(info.annotation):
                pending.append(arg)
    return sorted(words)


def _model_args(annotation: Any) -> Iterable[Any]:
    if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
        yield annotation
    for arg in getattr(annotation, "__args__", ()):
        yield from _model_args(arg)


_WORDS = _vocabulary()


def _problem_from_pydantic(doc: Document, err: Any) -> Problem:
    # Unions add type names (``float``, ``function-before[...]``) to a location: drop them.
    loc = tuple(
        p
        for p in err["loc"]
        if not isinstance(p, str) or p in _WORDS or p in _free_keys(err["loc"])
    )
    path: KeyPath = loc
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    kind = err["type"]
    message = str(err["msg"]).removeprefix("Value error, ")
    if len(path) >= 2 and path[-2] in ("labels", "annotations"):
        on_key = bool(err["loc"]) and err["loc"][-1] == "[key]"
        return _mapping_entry_problem(doc, path, on_key, kind, message, err["input"])
    if kind in ("extra_forbidden", "invalid_key"):
        return _unknown_field_problem(doc, path)
    if kind == "missing":
        return doc.problem(path[:-1], f"missing required field {field!r}", HINTS.get(field, ""))
    hint = HINTS.get(field, "")
    if field == "threshold" and "histogram" in path:
        hint = HISTOGRAM_THRESHOLD_HINT
    if kind == "objective_too_high":
        hint = OBJECTIVE_BOUND_HINT
    if kind == "identifier_group":
        hint = IDENTIFIER_GROUP_HINT
    elif field == "group_by" and "set by sloengine" in message:
        hint = RESERVED_LABEL_HINT
    if kind == "string_pattern_mismatch":
        noun = "metric name" if field == "metric" else "name"
        message = f"{field}: {err['input']!r} is not a valid {noun}"
    elif kind.startswith("literal_error") and field == "apiVersion":
        message = f"apiVersion: {err['input']!r} is not supported"
    elif kind in ("model_type", "model_attributes_type", "dict_type"):
        message = f"{field}: expected a mapping, got {_describe(err['input'])}"
    else:
        message = f"{field}: {message}" if field and not message.startswith(field) else message
    return doc.problem(path, message, hint)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _mapping_entry_problem(
    doc: Document, path: KeyPath, on_key: bool, kind: str, message: str, value: Any
) -> Problem:
    """A bad entry in labels or annotations: a key users chose (value is then the key)."""
    name, noun = path[-1], str(path[-2]).removesuffix("s")
    if on_key and kind == "string_type":
        return doc.problem(
            path, f"{noun} name {value!r} is not a string", LABEL_KEY_TYPE_HINT, key=True
        )
    if on_key:
        hint = RESERVED_LABEL_HINT if "set by sloengine" in message else LABEL_NAME_HINT
        return doc.problem(path, message, hint, key=True)
    if kind == "string_too_long":
        return doc.problem(path, f"{noun} {name!r}: {message}", "shorten it, or link to the text")
    return doc.problem(
        path,
        f"{noun} {name!r}: value {value!r} is not a string",
        f"{noun} values are strings: quote numbers and booleans",
    )


def _unknown_field_problem(doc: Document, path: KeyPath) -> Problem:
    field = path[-1]
    allowed = _fields_at(path[:-1])
    close = difflib.get_close_matches(str(field), allowed or _WORDS, n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif path[-2:-1] == ("sli",):
        hint = HINTS["sli"]
    elif allowed:
        hint = "allowed here: " + ", ".join(allowed)
    else:
        hint = "remove it; see the SLO.yaml reference"
    what = "SLI kind" if path[-2:-1] == ("sli",) else "field"
    return doc.problem(path, f"unknown {what} {field!r}", hint, key=True)


def _fields_at(path: KeyPath) -> list[str]:
    """Field names of the model at path (list indexes skipped); empty if none is known."""
    model: Any = SLOFile
    for part in path:
        if isinstance(part, int):
            continue
        info = next((i for n, i in model.model_fields.items() if (i.alias or n) == part), None)
        model = next(iter(_model_args(info.annotation)), None) if info else None
        if model is None:
            return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _free_keys(loc: tuple[Any, ...]) -> set[str]:
    """Keys users choose (label names, unknown fields) that must stay in a location."""
    keys = set()
    for i, part in enumerate(loc):
        if i and loc[i - 1] in ("labels", "annotations"):
            keys.add(part)
    keys.add(loc[-1]) if loc and isinstance(loc[-1], str) and "[" not in loc[-1] and loc[
        -1
    ] not in {"float", "int", "str", "bool", "none", "list", "dict"} else None
    return keys
