"""Small, safe PromQL builders: every query sloengine writes goes through here."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from decimal import Decimal

import promql_parser

WINDOW_PLACEHOLDER = re.compile(r"\{\{\s*window\s*\}\}")
# promql_parser's matcher operators as PromQL spells them (the MatchOp values are not
# hashable; their names are stable).
MATCH_OPS = {
    "MatchOp.Equal": "=",
    "MatchOp.NotEqual": "!=",
    "MatchOp.Re": "=~",
    "MatchOp.NotRe": "!~",
}
# The PromQL of the Prometheus the rules are checked with (promtool 2.42): the parser
# here also reads Prometheus 3 (quoted UTF-8 names, limitk, ...), which it would refuse.
FUNCTIONS = frozenset(
    [
        "abs",
        "absent",
        "absent_over_time",
        "acos",
        "acosh",
        "asin",
        "asinh",
        "atan",
        "atanh",
        "avg_over_time",
        "ceil",
        "changes",
        "clamp",
        "clamp_max",
        "clamp_min",
        "cos",
        "cosh",
        "count_over_time",
        "day_of_month",
        "day_of_week",
        "day_of_year",
        "days_in_month",
        "deg",
        "delta",
        "deriv",
        "exp",
        "floor",
        "histogram_count",
        "histogram_fraction",
        "histogram_quantile",
        "histogram_sum",
        "holt_winters",
        "hour",
        "idelta",
        "increase",
        "irate",
        "label_join",
        "label_replace",
        "last_over_time",
        "ln",
        "log10",
        "log2",
        "max_over_time",
        "min_over_time",
        "minute",
        "month",
        "pi",
        "predict_linear",
        "present_over_time",
        "quantile_over_time",
        "rad",
        "rate",
        "resets",
        "round",
        "scalar",
        "sgn",
        "sin",
        "sinh",
        "sort",
        "sort_desc",
        "sqrt",
        "stddev_over_time",
        "stdvar_over_time",
        "sum_over_time",
        "tan",
        "tanh",
        "time",
        "timestamp",
        "vector",
        "year",
    ]
)
AGGREGATIONS = frozenset(
    [
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ]
)
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_LEGACY_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
# Regular expressions the Rust parser reads and Go's RE2 refuses.
_RE2_REFUSES = (
    (re.compile(r"\(\?<[^=!]"), "write a named group as (?P<name>...)"),
    (re.compile(r"\(\?[a-zA-Z]*[xuR]"), "RE2 has only the flags i, m, s and U"),
    (re.compile(r"\\[<>]|\\b\{"), "RE2 has no \\< or \\> word boundaries"),
)
_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
# The attributes of a parsed node that hold its sub-expressions.
_CHILDREN = ("lhs", "rhs", "expr", "vector_selector", "args", "param")


def quote(value: str) -> str:
    """A PromQL string literal; label values can never break out of it."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def number(value: float) -> str:
    """A float spelled without noise: 0.005, 14.4, 1e-05."""
    return (
        repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))
    )


def le_spellings(bound: float) -> list[str]:
    """Every spelling of a bucket bound: Prometheus 2 writes ``1``, Prometheus 3 ``1.0``."""
    value = float(bound)
    spellings = {repr(value), format(value, "g"), format(Decimal(repr(value)), "f")}
    if value.is_integer():
        spellings |= {str(int(value)), f"{int(value)}.0"}
    return sorted(spellings)


def le_matcher(bound: float) -> str:
    return "le=~" + quote("|".join(re.escape(s) for s in le_spellings(bound)))


def selector(metric: str, *matchers: str) -> str:
    """``metric{m1, m2}`` from matcher lists that may be empty."""
    parts = [m.strip().strip(",") for m in matchers if m and m.strip().strip(",")]
    return f"{metric}{{{', '.join(parts)}}}" if parts else metric


def labels(pairs: dict[str, str]) -> str:
    """Equality matchers for a dict of labels, in a stable order."""
    return ", ".join(f"{k}={quote(v)}" for k, v in sorted(pairs.items()))


def exposition_labels(pairs: Iterable[tuple[str, str]]) -> str:
    """Label pairs as the text exposition formats spell them between the braces, in the
    order given (OpenMetrics allows no spaces; its escapes are PromQL's)."""
    return ",".join(f"{k}={quote(v)}" for k, v in pairs)


def parse(expr: str) -> promql_parser.Expr:
    """The parsed expression; ValueError with the parser's message when it is not PromQL."""
    return promql_parser.parse(expr)


def _outside_strings(expr: str) -> Iterator[str]:
    """The characters of ``expr`` that are not inside a PromQL string literal."""
    quote_char = ""
    escaped = False
    for char in expr:
        if quote_char:
            if escaped:
                escaped = False
            elif char == "\\" and quote_char != "`":
                escaped = True
            elif char == quote_char:
                quote_char = ""
            continue
        if char in "\"'`":
            quote_char = char
            continue
        yield char


def has_comment(expr: str) -> bool:
    """Whether ``expr`` has a PromQL comment: it would hide what sloengine writes after it."""
    return "#" in _outside_strings(expr)


def check_selector(matchers: str) -> str | None:
    """None when ``matchers`` is a valid label-matcher list, else the parser's complaint."""
    if not matchers.strip():
        return None
    if any(ord(c) < 0x20 or c == "\x7f" for c in matchers):
        return "a selector is one line: it has a line break or control character"
    if has_comment(matchers):
        return "a # outside quotes starts a PromQL comment, which would hide the rest of the query"
    try:
        node = parse("{" + matchers + "}")
    except ValueError as exc:
        return str(exc)
    if not isinstance(node, promql_parser.VectorSelector):
        return 'expected label matchers such as job="api", model=~"gpt-.*"'
    if any(m.name == "__name__" for m in node.matchers.matchers):
        return "__name__ would set the metric name twice: the metric comes from the SLI"
    return dialect_problem(node)


def regex_problem(pattern: str) -> str | None:
    """Why Prometheus (Go's RE2) refuses a regular expression this parser accepted, or None."""
    for refused, why in _RE2_REFUSES:
        if refused.search(pattern):
            return f"Prometheus cannot compile {pattern!r}: {why}"
    for match in _REPEAT.finditer(pattern):
        if any(n and int(n) > 1000 for n in match.groups()):
            return f"Prometheus cannot compile {pattern!r}: RE2 repeats at most 1000 times"
    return None


def dialect_problem(node: object) -> str | None:
    """What in a parsed expression Prometheus 2 refuses, or None: names that need quotes,
    functions and aggregations it does not have, regular expressions RE2 cannot compile."""
    for part in nodes(node):
        names: list[str] = []
        if isinstance(part, promql_parser.VectorSelector):
            if part.name is not None and not _LEGACY_METRIC.fullmatch(part.name):
                return f"metric name {part.name!r} needs quotes, which Prometheus 2 does not read"
            for m in part.matchers.matchers:
                names.append(m.name)
                legacy = _LEGACY_METRIC.fullmatch(m.value)
                if m.name == "__name__" and str(m.op) == "MatchOp.Equal" and not legacy:
                    return f"metric name {m.value!r} needs quotes, which Prometheus 2 does not read"
                if str(m.op) in ("MatchOp.Re", "MatchOp.NotRe"):
                    complaint = regex_problem(m.value)
                    if complaint:
                        return complaint
        elif isinstance(part, promql_parser.AggregateExpr):
            if str(part.op) not in AGGREGATIONS:
                return f"Prometheus 2 has no aggregation {part.op}"
            names += list(part.modifier.labels) if part.modifier else []
        elif isinstance(part, promql_parser.BinaryExpr) and part.modifier is not None:
            matching = part.modifier.matching
            names += list(matching.labels) if matching else []
            names += list(part.modifier.group_labels or [])
        elif isinstance(part, promql_parser.Call) and part.func.name not in FUNCTIONS:
            return f"Prometheus 2 has no function {part.func.name}()"
        bad = next((n for n in names if not _LEGACY_LABEL.fullmatch(n)), None)
        if bad is not None:
            return f"label name {bad!r} needs quotes, which Prometheus 2 does not read"
    return None


def fill_window(expr: str, window: str) -> str:
    return WINDOW_PLACEHOLDER.sub(window, expr)


def children(node: object) -> Iterator[object]:
    """The sub-expressions of one parsed node, in order."""
    for attr in _CHILDREN:
        child = getattr(node, attr, None)
        for item in child if isinstance(child, list) else [child]:
            if item is not None and not isinstance(item, (str, int, float)):
                yield item


def nodes(node: object) -> Iterator[object]:
    """Every node of a parsed expression, depth first, the node itself first."""
    yield node
    for child in children(node):
        yield from nodes(child)


def selectors(expr: str) -> list[promql_parser.VectorSelector]:
    """The vector selectors of an SLI's PromQL ({{window}} filled), in order of appearance."""
    tree = parse(fill_window(expr, "5m"))
    return [n for n in nodes(tree) if isinstance(n, promql_parser.VectorSelector)]


def metric_names_in(expr: str) -> list[str]:
    """Metric names an SLI's PromQL selects, in order of appearance."""
    names = []
    for sel in selectors(expr):
        matchers = [(m.name, MATCH_OPS[str(m.op)], m.value) for m in sel.matchers.matchers]
        name = sel.name or next(
            (v for (n, op, v) in matchers if n == "__name__" and op == "="), None
        )
        if name and name not in names:
            names.append(name)
    return names
