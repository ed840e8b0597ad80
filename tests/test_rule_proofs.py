"""The generated promtool tests pass against the generated rules, for every SLI kind and preset.

Each case runs in real promtool: a steady burn just above each pair's threshold fires it
and one just below does not; a full outage fires every alert within one evaluation
interval of the Workbook's detection time and each resets within its short window plus
an interval after recovery; a lone bad event in a trickle of traffic and zero traffic
fire nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import PRESET_FIXTURES, ROOT
from ruleproof import Proof, prove

from sloengine.loading import load_specs
from sloengine.ruletests import render_files

SOURCES = [str(ROOT / "slos"), *PRESET_FIXTURES]
SLOS = [(obj.service, obj.name) for s in load_specs(SOURCES) for obj in s.objectives]


@pytest.fixture(scope="session")
def proofs(promtool: str, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Proof]:
    return prove(SOURCES, tmp_path_factory.mktemp("proofs"))


@pytest.mark.parametrize("key", SLOS, ids=lambda k: f"{k[0]}/{k[1]}")
def test_the_generated_promtool_tests_pass(
    proofs: dict[tuple[str, str], Proof], key: tuple[str, str]
) -> None:
    proof = proofs[key]
    assert proof.cases >= 3
    assert proof.returncode == 0, proof.output


def test_every_sli_kind_and_preset_is_proven() -> None:
    kinds = {(obj.preset, obj.kind) for s in load_specs(SOURCES) for obj in s.objectives}
    for kind in ("success_rate", "ttft", "latency", "cost_per_call", "quality", "spend", "tpot"):
        assert ("llm", kind) in kinds
    for preset, supported in {
        "otel": ("success_rate", "ttft", "latency", "cost_per_call", "spend", "tpot"),
        "vllm": ("success_rate", "ttft", "latency", "tpot"),
        "litellm": ("success_rate", "ttft", "latency", "spend"),
    }.items():
        assert {(preset, k) for k in supported} <= kinds
    assert {k for (_, k) in kinds} >= {"ratio", "histogram"}


def test_a_threshold_bucket_spelt_le_1_as_by_prometheus_2_is_counted(
    promtool: str, tmp_path: Path
) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "apiVersion: sloengine/v1\nservice: prom-two\nwindow: 7d\nslos:\n"
        "  - {name: ttft, objective: 95, sli: {ttft: {threshold: 1s}}}\n"
    )
    (service,) = load_specs([str(spec)])
    assert 'le="1.0"' in render_files(service)["prom-two.ttft.test.yml"]
    # The same cases with Prometheus 2's spelling of the bucket bound.
    (proof,) = prove(
        [str(spec)], tmp_path / "work", lambda text: text.replace('le="1.0"', 'le="1"')
    ).values()
    assert proof.cases >= 3
    assert proof.returncode == 0, proof.output
