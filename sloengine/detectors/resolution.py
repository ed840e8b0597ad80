"""A file's validated detectors resolved into :class:`~sloengine.detectors.model.Detector`."""

from __future__ import annotations

from sloengine.detectors import catalog
from sloengine.detectors.catalog import Ratio
from sloengine.detectors.model import DIRECTIONS, THRESHOLD_FIELDS, Detector
from sloengine.detectors.spec import Detector as DetectorSpec
from sloengine.detectors.spec import DetectorKind
from sloengine.loading.resolution import file_channels, resolve_runbook
from sloengine.spec import SLOFile


def resolve_detectors(file: str, spec: SLOFile) -> tuple[Detector, ...]:
    """The detectors of a file that passed every check."""
    return tuple(_resolve(file, spec, det) for det in spec.detectors)


def _resolve(file: str, spec: SLOFile, det: DetectorSpec) -> Detector:
    ratio = catalog.entry(spec.metrics.preset, det.kind)
    assert isinstance(ratio, Ratio), "checked: the preset serves the kind"
    threshold = getattr(det, THRESHOLD_FIELDS[DIRECTIONS[det.kind]])
    assert threshold is not None, "checked: the kind's threshold is given"
    selector = ", ".join(
        s.strip().strip(",") for s in (spec.metrics.selector, det.selector) if s.strip().strip(",")
    )
    return Detector(
        service=spec.service,
        name=det.name,
        file=file,
        kind=det.kind,
        preset=spec.metrics.preset,
        ratio=ratio,
        window=round(det.window),
        baseline=None if det.baseline is None else round(det.baseline),
        threshold=round(threshold, 12),
        min_events=det.min_events,
        severity=det.severity,
        for_seconds=round(det.for_),
        group_by=tuple(det.group_by),
        version_label=det.version_label if det.kind == DetectorKind.PROMPT_VERSION_COST else None,
        selector=selector,
        labels={**spec.labels, **det.labels},
        runbook_url=resolve_runbook(spec, det.runbook),
        description=det.description,
        owner=spec.owner,
        channels=file_channels(spec),
    )
