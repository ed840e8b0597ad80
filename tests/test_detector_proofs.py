"""The generated promtool tests of every detector pass against its generated rules.

Each case runs in real promtool: a planted regression (cost per call +60%, a new prompt
version at twice the cost on one feature, the cache hit ratio falling from 80% to 50%,
tokens per call doubling, 5% of calls over budget) fires within the recent window plus
an interval, for the group it hit only, with the recent value, the baseline and the
change in its annotations, and resets after the rollback; a clean week with a 20:1
day/night cycle and a tenfold spike stays silent; so do traffic below ``min_events``
and zero traffic (which records no ratio: no NaN).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import PRESET_FIXTURES, ROOT
from ruleproof import Proof, prove_detectors

from sloengine.detectors.rules import render
from sloengine.detectors.ruletests import render_files
from sloengine.detectors.spec import DetectorKind
from sloengine.loading import load_specs

SOURCES = [str(ROOT / "slos"), *PRESET_FIXTURES]
DETECTORS = [(s.name, d.name) for s in load_specs(SOURCES) for d in s.detectors]


@pytest.fixture(scope="module")
def proofs(promtool: str, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Proof]:
    return prove_detectors(SOURCES, tmp_path_factory.mktemp("detector-proofs"))


@pytest.mark.parametrize("key", DETECTORS, ids=lambda k: f"{k[0]}/{k[1]}")
def test_the_generated_promtool_tests_of_each_detector_pass(
    proofs: dict[tuple[str, str], Proof], key: tuple[str, str]
) -> None:
    proof = proofs[key]
    assert proof.cases >= 4
    assert proof.returncode == 0, proof.output


def test_every_detector_kind_is_proven_on_the_llm_preset() -> None:
    kinds = {(d.preset, d.kind) for s in load_specs(SOURCES) for d in s.detectors}
    assert {("llm", k) for k in DetectorKind} <= kinds


def test_the_proofs_fail_on_rules_that_miss_the_regression(promtool: str, tmp_path: Path) -> None:
    """The cases can fail: rules whose threshold (+70%) is above the planted +60% miss it."""
    text = (
        "apiVersion: sloengine/v1\nservice: proof\nslos:\n"
        "  - {name: a, objective: 99, sli: {success_rate: {}}}\n"
        "detectors:\n"
        "  - {name: cost, kind: cost_per_call, group_by: [feature], window: 1h, baseline: 1d, max_increase: 20%}\n"
    )
    spec = tmp_path / "slo.yaml"
    spec.write_text(text)
    (planted,) = load_specs([str(spec)])
    tests = yaml.safe_load(render_files(planted)["proof.cost.detector.test.yml"])
    regression = [c for c in tests["tests"] if "+60% on one group" in c["name"]]
    spec.write_text(text.replace("max_increase: 20%", "max_increase: 70%"))
    (blind,) = load_specs([str(spec)])
    (rule_file,) = tests["rule_files"]
    (tmp_path / rule_file).write_text(render(blind) or "")
    (tmp_path / "test.yml").write_text(yaml.safe_dump({**tests, "tests": regression}))
    done = subprocess.run(
        [promtool, "test", "rules", "test.yml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert len(regression) == 1
    assert done.returncode == 1
    assert "SLODetectorRegression" in done.stdout + done.stderr
