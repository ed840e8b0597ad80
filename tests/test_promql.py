"""PromQL helpers the loader, the live checks and the promtool test builder share."""

from __future__ import annotations

import pytest

from sloengine import promql


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        pytest.param(
            'sum(rate(http_requests_total{code=~"5.."}[{{window}}]))',
            ["http_requests_total"],
            id="a rate of one counter selects that counter",
        ),
        pytest.param(
            "sum(rate(a_total[{{window}}])) + sum(rate(b_total[{{window}}])) "
            "- sum(rate(a_total[{{window}}]))",
            ["a_total", "b_total"],
            id="each metric is named once, in order of appearance",
        ),
        pytest.param(
            'sum(rate({__name__="llm_calls_total", ok="false"}[{{window}}]))',
            ["llm_calls_total"],
            id="a metric selected by its __name__ matcher counts",
        ),
        pytest.param(
            'sum(rate({__name__=~"llm_.*"}[{{window}}]))',
            [],
            id="a __name__ regex names no metric",
        ),
    ],
)
def test_metric_names_in_lists_the_metrics_an_sli_reads(expr: str, names: list[str]) -> None:
    assert promql.metric_names_in(expr) == names


def test_nodes_walks_every_sub_expression_root_first() -> None:
    tree = promql.parse("sum by (model) (rate(a_total[5m])) / on() group_left vector(1)")
    kinds = [type(node).__name__ for node in promql.nodes(tree)]
    assert kinds[0] == "BinaryExpr"
    assert kinds.count("VectorSelector") == 1
    assert {"AggregateExpr", "Call", "MatrixSelector", "NumberLiteral"} <= set(kinds)


@pytest.mark.parametrize(
    ("pairs", "text"),
    [
        ([], ""),
        ([("service", "chat"), ("slo", "availability")], 'service="chat",slo="availability"'),
        ([("b", "2"), ("a", "1")], 'b="2",a="1"'),  # the order given
        ([("v", 'say "hi"\\\n')], 'v="say \\"hi\\"\\\\\\n"'),  # OpenMetrics' escapes
    ],
)
def test_exposition_labels_spell_label_pairs_as_the_text_formats_do(
    pairs: list[tuple[str, str]], text: str
) -> None:
    assert promql.exposition_labels(pairs) == text
