"""Read SLO.yaml files into resolved services, or fail with every problem located.

The steps, each in its own module: ``discovery`` finds the files, ``yamldoc`` parses
them with positions, pydantic validates them (``translation`` words its errors),
``checks`` finds what needs several fields at once (``partial`` runs those checks on
the valid SLOs of an invalid file), and ``resolution`` builds the model.
"""

from __future__ import annotations

from collections.abc import Iterable

import pydantic

from sloengine.errors import Problem, SpecError
from sloengine.loading.checks import check_file
from sloengine.loading.discovery import discover
from sloengine.loading.partial import partial_problems
from sloengine.loading.resolution import resolve_service
from sloengine.loading.translation import problems_from
from sloengine.model import Service
from sloengine.spec import SLOFile
from sloengine.yamldoc import MAX_CHARS, Document, read_document

__all__ = ["load_document", "load_specs"]


def load_specs(paths: Iterable[str]) -> list[Service]:
    """Load, validate and resolve SLO files; SpecError lists every problem found."""
    files, problems = discover(paths)
    services: list[Service] = []
    owners: dict[str, str] = {}
    for file in files:
        text = read_text(file, problems)
        if text is None:
            continue
        try:
            doc = read_document(file, text)
            service = load_document(doc)
        except SpecError as exc:
            problems += exc.problems
            continue
        if service.name in owners:
            problems.append(
                doc.problem(
                    ("service",),
                    f"service {service.name!r} is also defined in {owners[service.name]}",
                    "one file per service: merge them or rename one",
                )
            )
            continue
        owners[service.name] = file
        services.append(service)
    if problems:
        raise SpecError(problems)
    return services


def read_text(file: str, problems: list[Problem]) -> str | None:
    """The file's text, or None with a located problem when it cannot be read as UTF-8."""
    try:
        with open(file, "rb") as stream:
            # One byte over the limit is enough for read_document to report the size.
            data = stream.read(MAX_CHARS * 4 + 1)
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        problems.append(
            Problem(file, 1, 1, f"cannot read the file: {reason}", "check its permissions")
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = data.rfind(b"\n", 0, exc.start) + 1
        line = data.count(b"\n", 0, exc.start) + 1
        column = len(data[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        problems.append(
            Problem(
                file,
                line,
                column,
                f"the file is not UTF-8: byte 0x{data[exc.start]:02x} is not a character",
                "save the file as UTF-8",
            )
        )
        return None


def load_document(doc: Document) -> Service:
    """Validate one parsed file and resolve its SLOs."""
    if not isinstance(doc.data, dict):
        raise SpecError(
            [doc.problem((), "an SLO file is a mapping", "start from an example in slos/")]
        )
    try:
        spec = SLOFile.model_validate(doc.data)
    except pydantic.ValidationError as exc:
        problems = problems_from(doc, exc) + partial_problems(doc)
        raise SpecError(sorted(set(problems))) from None
    problems = check_file(doc, spec)
    if problems:
        raise SpecError(problems)
    return resolve_service(doc, spec)
