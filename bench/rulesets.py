"""The three rule sets measured side by side, for the same four SLOs.

``sloengine`` is exactly what ``sloengine generate`` writes for bench's SLO file; the two
Sloth-shaped sets are named ``<service>-optimized`` and ``<service>-exact`` so all three
can be loaded into one Prometheus without their series colliding.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import sloth
from bench.slos import COST_SLOS, SERVICE, as_sloth, load
from sloengine.model import Service
from sloengine.rules import render

SLOENGINE = "sloengine"
OPTIMIZED = "sloth-optimized"
EXACT = "sloth-exact"
NAMES = (SLOENGINE, OPTIMIZED, EXACT)


@dataclass(frozen=True)
class RuleSet:
    name: str
    text: str
    groups: dict[str, str]  # group name -> SLO name
    file: Path

    @property
    def sloth_service(self) -> str:
        return f"{SERVICE}-{self.name.removeprefix('sloth-')}"


def build(directory: Path) -> tuple[Service, dict[str, RuleSet]]:
    """Render the three rule files into ``directory`` (sloengine's via its own generator)."""
    service = load(COST_SLOS, directory / "slos", "cost")
    directory.mkdir(parents=True, exist_ok=True)
    texts = {SLOENGINE: render(service)}
    for mode in sloth.MODES:
        slos = [as_sloth(obj, f"{SERVICE}-{mode}") for obj in service.objectives]
        texts[f"sloth-{mode}"] = sloth.render(slos, mode)
    sets = {}
    for name, text in texts.items():
        path = directory / f"{name}.rules.yml"
        path.write_text(text)
        groups = {}
        for group in yaml.safe_load(text)["groups"]:
            group_name = group["name"].removesuffix(":budget")  # sloengine's budget groups
            slo = next(o.name for o in service.objectives if group_name.endswith(o.name))
            groups[group["name"]] = slo
        sets[name] = RuleSet(name, text, groups, path.resolve())
    return service, sets
