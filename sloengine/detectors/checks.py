"""What is wrong with a file's detectors beyond their shape: the fields each kind takes,
what the preset can serve, group labels, selectors, runbooks and duplicate names."""

from __future__ import annotations

from sloengine import conventions as cv
from sloengine.detectors import catalog
from sloengine.detectors.model import DIRECTIONS, THRESHOLD_FIELDS, Direction
from sloengine.detectors.spec import Detector, DetectorKind
from sloengine.errors import Problem
from sloengine.loading.checks import runbook_problems, selector_problems
from sloengine.spec import SLOFile
from sloengine.yamldoc import Document

MIN_WINDOW = cv.BASE_WINDOW_SECONDS


def check_detectors(doc: Document, spec: SLOFile) -> list[Problem]:
    """Every problem with the file's detectors, each located at its field."""
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, det in enumerate(spec.detectors):
        at = ("detectors", index)
        if det.name in seen:
            problems.append(
                doc.problem(
                    (*at, "name"),
                    f"detector name {det.name!r} is used twice in this service",
                    "detector names are unique per service",
                )
            )
        seen.add(det.name)
        problems += check_detector(doc, spec, at, det)
    return problems


def check_detector(
    doc: Document, spec: SLOFile, at: tuple[str, int], det: Detector
) -> list[Problem]:
    problems: list[Problem] = []
    missing = catalog.unsupported(spec.metrics.preset, det.kind)
    if missing is not None:
        problems.append(doc.problem((*at, "kind"), *missing))
    direction = DIRECTIONS[det.kind]
    wanted = THRESHOLD_FIELDS[direction]
    for key in THRESHOLD_FIELDS.values():
        given = getattr(det, key) is not None
        if key == wanted and not given:
            problems.append(
                doc.problem(
                    at,
                    f"a {det.kind} detector needs {key}",
                    f"e.g. {key}: 20% ({_meaning(direction)})",
                )
            )
        elif key != wanted and given:
            problems.append(
                doc.problem(
                    (*at, key),
                    f"{key} does not apply to a {det.kind} detector",
                    f"use {wanted} ({_meaning(direction)})",
                )
            )
    if direction is Direction.SHARE and det.baseline is not None:
        problems.append(
            doc.problem(
                (*at, "baseline"),
                f"a {det.kind} detector has no baseline: it compares the share with max_share",
                "remove baseline",
            )
        )
    if direction is not Direction.SHARE and det.baseline is None:
        problems.append(
            doc.problem(
                at,
                f"a {det.kind} detector needs a baseline window",
                "e.g. baseline: 7d (the 7 days before the recent window)",
            )
        )
    for key in ("window", "baseline"):
        seconds = getattr(det, key)
        if seconds is not None and (seconds < MIN_WINDOW or seconds % MIN_WINDOW):
            problems.append(
                doc.problem(
                    (*at, key),
                    f"{key} must be a whole number of {cv.BASE_WINDOW} periods",
                    f"detectors sum {cv.BASE_WINDOW} samples: use e.g. 1h, 24h or 7d",
                )
            )
    if "version_label" in det.model_fields_set and det.kind != DetectorKind.PROMPT_VERSION_COST:
        problems.append(
            doc.problem(
                (*at, "version_label"),
                f"version_label does not apply to a {det.kind} detector",
                "only prompt_version_cost compares versions; remove it",
            )
        )
    for i, label in enumerate(det.group_by):
        if cv.identifier_label(label):
            problems.append(
                doc.problem(
                    (*at, "group_by", i),
                    f"group_by {label!r} would make a detector per individual",
                    "group by tenant, feature or model instead",
                )
            )
        if label in {**spec.labels, **det.labels}:
            problems.append(
                doc.problem(
                    (*at, "group_by", i),
                    f"{label!r} is also a fixed label (labels), which would overwrite each group's value",
                    "rename the fixed label, or group by another label",
                )
            )
        if label in det.group_by[:i]:
            problems.append(
                doc.problem((*at, "group_by", i), f"{label!r} is in group_by twice", "remove one")
            )
        if det.kind == DetectorKind.PROMPT_VERSION_COST and label == det.version_label:
            problems.append(
                doc.problem(
                    (*at, "group_by", i),
                    f"{label!r} is the version label: each version is compared already",
                    "remove it from group_by",
                )
            )
    problems += selector_problems(doc, (*at, "selector"), det.selector)
    problems += runbook_problems(doc, (*at, "runbook"), det.runbook, spec)
    return problems


def _meaning(direction: Direction) -> str:
    return {
        Direction.INCREASE: "fires when the recent value is above the baseline by more",
        Direction.DECREASE: "fires when the recent value is below the baseline by more",
        Direction.SHARE: "fires when more than this share of calls is over budget",
    }[direction]
