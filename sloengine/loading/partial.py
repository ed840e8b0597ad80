"""The checks run on the SLOs that are valid while their file is not.

A file with one bad field still gets its other SLOs checked: the file's shared
settings are validated with every invalid one dropped (each is reported already), and
each SLO that validates on its own is checked against them.
"""

from __future__ import annotations

import copy
from typing import Any

import pydantic

from sloengine.errors import Problem
from sloengine.loading.checks import check_slo, duplicate_names, selector_problems
from sloengine.spec import SLO, SLOFile
from sloengine.yamldoc import Document


def partial_problems(doc: Document) -> list[Problem]:
    """Checks for the SLOs that are valid on their own while the file as a whole is not."""
    data = doc.data
    slos = data.get("slos") if isinstance(data, dict) else None
    if not isinstance(slos, list):
        return []
    problems = duplicate_names(
        doc, [raw.get("name") if isinstance(raw, dict) else None for raw in slos]
    )
    shell = _shell(data)
    if shell is None:
        return problems
    problems += selector_problems(doc, ("metrics", "selector"), shell.metrics.selector)
    for index, raw in enumerate(slos):
        try:
            slo = SLO.model_validate(raw)
        except pydantic.ValidationError:
            continue
        problems += check_slo(doc, shell, index, slo)
    return problems + _detector_problems(doc, data, shell)


def _detector_problems(doc: Document, data: dict[Any, Any], shell: SLOFile) -> list[Problem]:
    """The checks of each detector that is valid on its own."""
    # Imported here: the detectors' checks build on sloengine.loading.checks.
    from sloengine.detectors.checks import check_detector
    from sloengine.detectors.spec import Detector

    raw_detectors = data.get("detectors")
    if not isinstance(raw_detectors, list):
        return []
    problems: list[Problem] = []
    for index, raw in enumerate(raw_detectors):
        try:
            det = Detector.model_validate(raw)
        except pydantic.ValidationError:
            continue
        problems += check_detector(doc, shell, ("detectors", index), det)
    return problems


_STUB_SLO = {"name": "x", "objective": 99, "sli": {"ratio": {"errors": "0", "total": "1"}}}


def _shell(data: dict[Any, Any]) -> SLOFile | None:
    """The file's shared settings with every invalid one left out (each is reported already)."""
    shell = copy.deepcopy(
        {**data, "apiVersion": "sloengine/v1", "service": "x", "slos": [_STUB_SLO]}
    )
    for _ in range(10):
        try:
            return SLOFile.model_validate(shell)
        except pydantic.ValidationError as exc:
            if not any([_drop(shell, err["loc"]) for err in exc.errors()]):
                return None
    return None


def _drop(data: dict[Any, Any], loc: tuple[Any, ...]) -> bool:
    """Remove the deepest mapping entry on the way to loc (a list goes as a whole)."""
    parent: dict[Any, Any] | None = None
    key: Any = None
    node: Any = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            parent, key, node = node, part, node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            break
    if parent is None or key not in parent:
        return False
    del parent[key]
    return True
