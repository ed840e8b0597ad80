"""`sloengine import sloth|openslo`: the translation, table by table, and the command as a
user meets it (notes, located errors, exit 2, nothing written on bad input)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import ROOT

from sloengine.cli import cli
from sloengine.errors import SpecError
from sloengine.importers import Imported, openslo, render, sloth
from sloengine.loading import load_document, load_specs
from sloengine.yamldoc import read_document, read_documents

FIXTURES = ROOT / "tests" / "fixtures"
SLOTH = sorted((FIXTURES / "sloth").glob("*.yml"))
OPENSLO = sorted((FIXTURES / "openslo").glob("*.yaml"))

Translate = Callable[[list[Any]], list[Imported]]


def translated(translate: Translate, text: str, file: str = "in.yml") -> list[Imported]:
    return translate(read_documents(file, text))


def one(translate: Translate, text: str) -> Imported:
    (imported,) = translated(translate, text)
    return imported


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


SLOTH_HEAD = """version: "prometheus/v1"
service: shop
slos:
  - name: availability
    objective: 99.9
"""
EVENTS = """    sli:
      events:
        error_query: sum(rate(req_total{code=~"5.."}[{{.window}}]))
        total_query: sum(rate(req_total[{{.window}}]))
"""
RATIO = {
    "errors": 'sum(rate(req_total{code=~"5.."}[{{window}}]))',
    "total": "sum(rate(req_total[{{window}}]))",
}

# (case, Sloth SLO text after the head, the imported SLO, the input fields noted)
SLOTH_CASES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    (
        "an events SLI becomes a ratio SLI with sloengine's {{window}}",
        EVENTS,
        {"name": "availability", "objective": 99.9, "sli": {"ratio": RATIO}},
        [],
    ),
    (
        "alert labels and annotations become the SLO's alerting labels and annotations",
        EVENTS
        + """    alerting:
      name: ShopErrors
      labels: {category: availability}
      annotations: {dashboard: "https://grafana/d/shop"}
""",
        {
            "name": "availability",
            "objective": 99.9,
            "sli": {"ratio": RATIO},
            "alerting": {
                "labels": {"category": "availability"},
                "annotations": {"dashboard": "https://grafana/d/shop"},
            },
        },
        ["slos[0].alerting.name"],
    ),
    (
        "a disabled page or ticket alert becomes enabled: false",
        EVENTS
        + """    alerting:
      page_alert: {disable: true}
      ticket_alert: {disable: false}
""",
        {
            "name": "availability",
            "objective": 99.9,
            "sli": {"ratio": RATIO},
            "alerting": {"page": {"enabled": False}},
        },
        [],
    ),
    (
        "a runbook annotation also becomes the SLO's runbook, so pages link it",
        EVENTS
        + """    alerting:
      annotations: {runbook: "https://runbooks/shop"}
""",
        {
            "name": "availability",
            "objective": 99.9,
            "sli": {"ratio": RATIO},
            "runbook": "https://runbooks/shop",
            "alerting": {"annotations": {"runbook": "https://runbooks/shop"}},
        },
        [],
    ),
    (
        "summary, severity and per-severity labels are noted, never dropped silently",
        EVENTS
        + """    alerting:
      annotations: {summary: "Shop is failing"}
      page_alert:
        labels: {severity: critical, routing_key: shop}
        annotations: {extra: x}
""",
        {"name": "availability", "objective": 99.9, "sli": {"ratio": RATIO}},
        [
            "slos[0].alerting.annotations.summary",
            "slos[0].alerting.page_alert.labels.severity",
            "slos[0].alerting.page_alert.labels.routing_key",
            "slos[0].alerting.page_alert.annotations",
        ],
    ),
    (
        "SLO labels go on the SLO's alerts, with a note that recordings do not carry them",
        "    labels: {category: availability}\n" + EVENTS,
        {
            "name": "availability",
            "objective": 99.9,
            "sli": {"ratio": RATIO},
            "alerting": {"labels": {"category": "availability"}},
        },
        ["slos[0].labels"],
    ),
    (
        "an unknown key is noted",
        "    owner_team: shop\n" + EVENTS,
        {"name": "availability", "objective": 99.9, "sli": {"ratio": RATIO}},
        ["slos[0].owner_team"],
    ),
]


@pytest.mark.parametrize(
    ("text", "slo", "noted"),
    [c[1:] for c in SLOTH_CASES],
    ids=[c[0] for c in SLOTH_CASES],
)
def test_sloth_translation(text: str, slo: dict[str, Any], noted: list[str]) -> None:
    imported = one(sloth.translate, SLOTH_HEAD + text)
    assert imported.data["slos"] == [slo]
    assert imported.data["window"] == "30d"
    assert [n.field for n in imported.notes] == noted


def test_sloth_raw_and_plugin_slis_are_noted_and_their_slos_left_out() -> None:
    text = (
        SLOTH_HEAD
        + EVENTS
        + """  - name: raw
    objective: 99
    sli: {raw: {error_ratio_query: "x:ratio_rate{{.window}}"}}
  - name: plugin
    objective: 99
    sli: {plugin: {id: some/plugin}}
"""
    )
    imported = one(sloth.translate, text)
    assert [s["name"] for s in imported.data["slos"]] == ["availability"]
    assert [n.field for n in imported.notes] == ["slos[1].sli.raw", "slos[2].sli.plugin"]
    assert all(n.at == ("slos",) for n in imported.notes)


def test_sloth_slack_channel_labels_become_the_files_notify_route() -> None:
    text = (
        SLOTH_HEAD
        + EVENTS
        + "    alerting:\n      ticket_alert: {labels: {slack_channel: '#shop'}}\n"
    )
    assert one(sloth.translate, text).data["notify"] == {"ticket": {"slack_channel": "#shop"}}


def test_the_sloth_crd_reads_like_the_plain_spec_with_its_kubernetes_fields_noted() -> None:
    (plain,) = sloth.translate(read_documents("a", (FIXTURES / "sloth/checkout.yml").read_text()))
    (crd,) = sloth.translate(read_documents("b", (FIXTURES / "sloth/k8s-checkout.yml").read_text()))
    assert crd.data["service"] == plain.data["service"] == "checkout"
    assert crd.data["slos"][0]["sli"] == plain.data["slos"][0]["sli"]
    assert crd.data["slos"][0]["alerting"]["ticket"] == {"enabled": False}
    assert "metadata" in [n.field for n in crd.notes]


def test_a_service_name_sloengine_cannot_use_is_renamed_with_a_note() -> None:
    imported = one(sloth.translate, SLOTH_HEAD.replace("shop", "Shop Front") + EVENTS)
    assert imported.service == "shop-front"
    assert "renamed" in imported.notes[0].reason


OPENSLO_SLO = """apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout}
spec:
  service: shop
  budgetingMethod: Occurrences
  indicator:
    metadata: {name: checkout-codes}
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource: {type: Prometheus, spec: {query: 'sum(req_total{code=~"5.."})'}}
        total:
          metricSource: {type: Prometheus, spec: {query: req_total}}
"""

# (case, the SLO's tail, the imported SLOs (name, objective, window), the noted fields)
OPENSLO_CASES: list[tuple[str, str, list[tuple[str, float, str]], list[str]]] = [
    (
        "a target of 0.995 over a rolling 28d window is objective 99.5, window 28d",
        "  timeWindow: [{duration: 28d, isRolling: true}]\n  objectives: [{target: 0.995}]\n",
        [("checkout", 99.5, "28d")],
        [],
    ),
    (
        "several objectives make one SLO each, named after their display names",
        "  objectives:\n    - {displayName: Good, target: 0.99}\n    - {targetPercent: 99.9}\n",
        [("checkout-good", 99.0, "30d"), ("checkout-2", 99.9, "30d")],
        [],
    ),
    (
        "a calendar window is noted and imported as a rolling 30d",
        "  timeWindow: [{duration: 1M, calendar: {startTime: '2020-01-01 00:00:00', "
        "timeZone: UTC}}]\n  objectives: [{target: 0.99}]\n",
        [("checkout", 99.0, "30d")],
        ["spec.timeWindow[0]"],
    ),
    (
        "time-slice budgeting is noted and imported as occurrences",
        "  objectives: [{target: 0.99, timeSliceTarget: 0.9, timeSliceWindow: 1m}]\n",
        [("checkout", 99.0, "30d")],
        [
            "spec.budgetingMethod",
            "spec.objectives[0].timeSliceTarget",
            "spec.objectives[0].timeSliceWindow",
        ],
    ),
]


@pytest.mark.parametrize(
    ("tail", "slos", "noted"),
    [c[1:] for c in OPENSLO_CASES],
    ids=[c[0] for c in OPENSLO_CASES],
)
def test_openslo_translation(
    tail: str, slos: list[tuple[str, float, str]], noted: list[str]
) -> None:
    text = OPENSLO_SLO + tail
    if "timeSlice" in tail:
        text = text.replace("Occurrences", "Timeslices")
    imported = one(openslo.translate, text)
    got = [(s["name"], s["objective"], s["window"]) for s in imported.data["slos"]]
    assert got == slos
    assert [n.field for n in imported.notes] == noted


def test_openslo_counters_become_rates_over_the_window_bad_becomes_errors() -> None:
    imported = one(openslo.translate, OPENSLO_SLO + "  objectives: [{target: 0.99}]\n")
    assert imported.data["slos"][0]["sli"] == {
        "ratio": {
            "errors": 'sum(rate(req_total{code=~"5.."}[{{window}}]))',
            "total": "sum(rate(req_total[{{window}}]))",
        }
    }


def test_an_openslo_threshold_metric_counts_the_samples_that_miss_the_objective() -> None:
    (imported,) = openslo.translate(
        [d for f in OPENSLO for d in read_documents(str(f), f.read_text())]
    )
    (latency,) = [s for s in imported.data["slos"] if s["name"] == "search-latency"]
    query = "histogram_quantile(0.99, sum by (le) (rate(search_duration_seconds_bucket[5m])))"
    assert latency["sli"]["ratio"] == {
        "errors": f"sum_over_time((({query}) >= bool 0.5)[{{{{window}}}}:])",
        "total": f"count_over_time(({query})[{{{{window}}}}:])",
    }
    assert latency["window"] == "14d"


def test_openslo_burn_rate_conditions_become_the_slos_policy() -> None:
    (imported,) = openslo.translate(
        [d for f in OPENSLO for d in read_documents(str(f), f.read_text())]
    )
    main = imported.data["slos"][0]
    assert main["name"] == "main-page-good"
    assert main["policy"] == [
        {"severity": "page", "burn_rate": 14.4, "long_window": "1h", "short_window": "5m"},
        {"severity": "ticket", "burn_rate": 3.0, "long_window": "1d", "short_window": "2h"},
    ]
    assert main["alerting"] == {"page": {"for": "2m"}, "labels": {"team": "storefront"}}
    assert imported.data["description"] == "The shop's storefront"
    noted = {n.field for n in imported.notes}
    assert {
        "spec.notificationTargets",
        "spec.connectionDetails",
        "spec.alertWhenBreaching",
    } <= noted


def test_an_openslo_query_without_a_window_that_is_not_a_counter_is_noted() -> None:
    text = OPENSLO_SLO.replace("counter: true", "counter: false")
    text += "  objectives: [{target: 0.99}]\n"
    with pytest.raises(SpecError, match="no objective of this SLO can be carried over"):
        one(openslo.translate, text)


@pytest.mark.parametrize(
    ("translate", "text", "message"),
    [
        (sloth.translate, "service: x\nslos: []\n", "1:1: not a Sloth spec"),
        (sloth.translate, 'version: "prometheus/v1"\nslos: []\n', "1:1: service is missing"),
        (
            sloth.translate,
            SLOTH_HEAD + "    sli:\n      events:\n        error_query: x\n",
            "7:7: slos[0].sli.events.total_query is missing",
        ),
        (
            sloth.translate,
            SLOTH_HEAD.replace("99.9", "high") + EVENTS,
            "5:5: slos[0].objective is not a number",
        ),
        (
            openslo.translate,
            "apiVersion: openslo/v1alpha\nkind: SLO\n",
            "1:1: apiVersion 'openslo/v1alpha' is not openslo/v1",
        ),
        (
            openslo.translate,
            OPENSLO_SLO.replace("  indicator:", "  indicatorRef: nowhere\n  unused:"),
            "no SLI named 'nowhere'",
        ),
    ],
    ids=[
        "a file that is not Sloth's",
        "a Sloth spec without a service",
        "an events SLI without a total query",
        "an objective that is not a number",
        "OpenSLO v1alpha",
        "an indicatorRef to no SLI",
    ],
)
def test_bad_input_is_a_located_error(translate: Translate, text: str, message: str) -> None:
    with pytest.raises(SpecError, match=message.replace("(", r"\(").replace("[", r"\[")):
        translated(translate, text)


@pytest.mark.parametrize("path", SLOTH + OPENSLO, ids=lambda p: p.name)
def test_every_fixture_imports_into_a_file_that_validates(path: Path, tmp_path: Path) -> None:
    how = "sloth" if path.parent.name == "sloth" else "openslo"
    files = [path] if how == "sloth" else OPENSLO
    code, out, err = run("import", how, *map(str, files), "--out", str(tmp_path))
    assert code == 0, err
    written = sorted(tmp_path.glob("*.yaml"))
    assert written and all(f"wrote {w}" in out for w in written)
    assert load_specs([str(tmp_path)])
    code, out, _ = run("validate", str(tmp_path))
    assert code == 0 and out.startswith("ok:")


def test_each_note_is_in_the_output_and_a_comment_where_the_field_would_go(tmp_path: Path) -> None:
    code, out, _ = run(
        "import", "sloth", str(FIXTURES / "sloth/checkout.yml"), "--out", str(tmp_path)
    )
    assert code == 0
    noted = [line for line in out.splitlines() if line.startswith("not carried over: ")]
    assert len(noted) == 5
    lines = (tmp_path / "checkout.yaml").read_text().splitlines()
    for line in noted:
        comment = line.replace("not carried over: ", "# not carried over: ")
        (at,) = [i for i, written in enumerate(lines) if written.strip() == comment]
        # Each comment sits just above the SLO's alerting, where those fields would go.
        after = [x.strip() for x in lines[at + 1 :] if not x.strip().startswith("#")]
        assert after[0] == "alerting:"
    text = "\n".join(lines)
    assert yaml.safe_load(text)["notify"] == {"ticket": {"slack_channel": "#payments-alerts"}}


def test_the_written_file_is_the_rendered_translation(tmp_path: Path) -> None:
    source = FIXTURES / "sloth/two-services.yml"
    code, _, _ = run("import", "sloth", str(source), "--out", str(tmp_path))
    assert code == 0
    for imported in sloth.translate(read_documents(str(source), source.read_text())):
        path = tmp_path / f"{imported.service}.yaml"
        assert path.read_text() == render(imported, "sloth")
        assert load_document(read_document(str(path), path.read_text())).name == imported.service


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("version: [unclosed\n", "bad.yml:2:1: invalid YAML"),
        ("apiVersion: v1\nkind: ConfigMap\n", "bad.yml:1:1: not a Sloth spec"),
        (
            SLOTH_HEAD + "    sli: {}\n",
            "bad.yml:6:5: an SLI has exactly one of events, raw or plugin",
        ),
    ],
    ids=["not YAML", "not Sloth", "an SLI with no kind"],
)
def test_bad_input_exits_2_with_the_location_and_writes_nothing(
    text: str, where: str, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(text)
    good = FIXTURES / "sloth/checkout.yml"
    out_dir = tmp_path / "out"
    code, _, err = run("import", "sloth", str(good), str(bad), "--out", str(out_dir))
    assert code == 2
    assert f"error: {bad.parent}/{where}" in err
    assert "nothing was written" in err
    assert not out_dir.exists()


def test_a_stream_of_documents_is_read_each_with_its_own_positions() -> None:
    first, second = read_documents("f", "---\na: 1\n---\n# c\nb:\n  - 2\n")
    assert (first.data, second.data) == ({"a": 1}, {"b": [2]})
    assert second.at(("b", 0)) == (6, 5)
    with pytest.raises(SpecError, match="f:3:1: invalid YAML: a second document"):
        read_document("f", "---\na: 1\n---\nb: 2\n")
