"""The rule sets measured side by side, for the same four SLOs (and one grouped SLO).

``sloengine`` is exactly what ``sloengine generate`` writes for bench's SLO file; the
Sloth- and Pyrra-shaped sets are named ``<service>-<set>`` so all of them can be loaded
into one Prometheus without their series colliding. ``sloengine-grouped`` is one more
sloengine SLO, grouped by provider and feature, measured for its cost per group only.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import pyrra, sloth
from bench.slos import COST_SLOS, GROUPED_SERVICE, GROUPED_SLOS, SERVICE, as_sloth, load
from sloengine.model import Service
from sloengine.rules import render

SLOENGINE = "sloengine"
OPTIMIZED = "sloth-optimized"
EXACT = "sloth-exact"
PYRRA = "pyrra"
PYRRA_PERFORMANCE = "pyrra-performance"
GROUPED = "sloengine-grouped"
NAMES = (SLOENGINE, OPTIMIZED, EXACT, PYRRA, PYRRA_PERFORMANCE)  # compared side by side
ALL = (*NAMES, GROUPED)


@dataclass(frozen=True)
class RuleSet:
    name: str
    text: str
    groups: dict[str, str]  # group name -> SLO name
    file: Path

    @property
    def service(self) -> str:
        """The service label (Sloth's sloth_service, Pyrra's slo prefix) of this set."""
        if self.name == SLOENGINE:
            return SERVICE
        if self.name == GROUPED:
            return GROUPED_SERVICE
        return f"{SERVICE}-{self.name.removeprefix('sloth-')}"

    @property
    def is_sloengine(self) -> bool:
        return self.name in (SLOENGINE, GROUPED)


def _groups(text: str, slos: list[str]) -> dict[str, str]:
    """Each group of a rule file -> the SLO it belongs to (by the longest name it holds)."""
    out = {}
    for group in yaml.safe_load(text)["groups"]:
        name = group["name"]
        out[name] = max((s for s in slos if s in name), key=len)
    return out


def grouped_service(directory: Path) -> Service:
    """The grouped SLO's service, loaded as ``build`` loads it."""
    return load(GROUPED_SLOS, directory / "slos", "grouped")


def build(directory: Path) -> tuple[Service, dict[str, RuleSet]]:
    """Render every rule file into ``directory`` (sloengine's via its own generator)."""
    service = load(COST_SLOS, directory / "slos", "cost")
    grouped = grouped_service(directory)
    directory.mkdir(parents=True, exist_ok=True)
    texts = {SLOENGINE: render(service)}
    for mode in sloth.MODES:
        slos = [as_sloth(obj, f"{SERVICE}-{mode}") for obj in service.objectives]
        texts[f"sloth-{mode}"] = sloth.render(slos, mode)
    for pmode in pyrra.MODES:
        name = PYRRA if pmode == "accuracy" else PYRRA_PERFORMANCE
        slos = [as_sloth(obj, f"{SERVICE}-{name}") for obj in service.objectives]
        texts[name] = pyrra.render(slos, pmode)
    texts[GROUPED] = render(grouped)
    sets = {}
    for name, text in texts.items():
        path = directory / f"{name}.rules.yml"
        path.write_text(text)
        objectives = grouped.objectives if name == GROUPED else service.objectives
        groups = _groups(text, [o.name for o in objectives])
        sets[name] = RuleSet(name, text, groups, path.resolve())
    return service, sets
