"""Read SLO.yaml files into resolved services, or fail with every problem located.

The steps, each in its own module: ``discovery`` finds the files, ``yamldoc`` parses
them with positions, pydantic validates them (``translation`` words its errors),
``checks`` finds what needs several fields at once (``partial`` runs those checks on
the valid SLOs of an invalid file), and ``resolution`` builds the model.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pydantic

from sloengine.errors import Problem, SpecError
from sloengine.loading.checks import check_file
from sloengine.loading.discovery import discover
from sloengine.loading.partial import partial_problems
from sloengine.loading.resolution import resolve_service
from sloengine.loading.translation import problems_from
from sloengine.model import Service
from sloengine.spec import SLOFile
from sloengine.yamldoc import Document, read_document

__all__ = ["load_document", "load_specs"]


def load_specs(paths: Iterable[str]) -> list[Service]:
    """Load, validate and resolve SLO files; SpecError lists every problem found."""
    files, problems = discover(paths)
    services: list[Service] = []
    owners: dict[str, str] = {}
    for file in files:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(
                Problem(
                    file,
                    1,
                    1,
                    f"cannot read the file: {exc.__class__.__name__}",
                    "check permissions and encoding (UTF-8)",
                )
            )
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
