"""Which recorded series the rules read into the past, how far, and in what order their
history can be rebuilt: the plan of ``sloengine backfill``, from the rule groups alone.

A rule that reads a recorded series over a range (``avg_over_time(x[1d])``), through a
subquery or with an ``offset`` sees only what the rules have recorded since they were
loaded. Those series, and every recorded series they are computed from, need history.
``promtool tsdb create-blocks-from rules`` evaluates each rule on its own against a
Prometheus, so a rule that reads another recorded series can only be rebuilt once that
series' history is there: rules come in dependency layers, layer 0 reading raw series
only. A rule that reads its own earlier values (a running total) cannot be rebuilt
point by point at all: it and everything that needs it are left out, with the reason.

Nothing here knows today's rule names or windows; everything comes from the PromQL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import promql_parser

from sloengine.durations import parse_duration
from sloengine.promql import MATCH_OPS, children, parse
from sloengine.promql import labels as label_matchers

Rule = dict[str, Any]


@dataclass(frozen=True)
class Read:
    """One selector of a rule's expression: the series name, its label matchers
    (label, operator, value), how far before the evaluation it reaches (seconds) and
    whether it reads a range of samples (a range selector or inside a subquery) rather
    than the one sample at its offset."""

    name: str
    matchers: tuple[tuple[str, str, str], ...]
    back: int
    ranged: bool = False


@dataclass(frozen=True)
class Planned:
    """Rules of one group to rebuild together, in one dependency layer.

    ``lookback``: seconds of history these rules need before the first live sample.
    ``probe``: a selector of the group's first such rule, to find when it went live.
    """

    group: str
    interval: int
    rules: tuple[Rule, ...]
    layer: int
    lookback: int
    probe: str


@dataclass(frozen=True)
class Skipped:
    """A recorded series whose history is needed but cannot be rebuilt, and why."""

    group: str
    record: str
    reason: str


@dataclass(frozen=True)
class Plan:
    layers: tuple[tuple[Planned, ...], ...] = ()
    skipped: tuple[Skipped, ...] = ()

    @property
    def groups(self) -> list[Planned]:
        return [p for layer in self.layers for p in layer]

    @property
    def lookback(self) -> int:
        """The longest history any planned rule needs (0 when nothing is planned)."""
        return max((p.lookback for p in self.groups), default=0)


def _seconds(delta: Any) -> int:
    """A parsed range or offset in whole seconds; a negative offset reaches no further back."""
    return max(0, round(delta.total_seconds())) if delta is not None else 0


def _walk(node: object, back: int, ranged: bool = False) -> Iterator[Read]:
    if isinstance(node, promql_parser.VectorSelector):
        matchers = tuple((m.name, MATCH_OPS[str(m.op)], m.value) for m in node.matchers.matchers)
        name = node.name or next((v for n, op, v in matchers if n == "__name__" and op == "="), "")
        yield Read(name, matchers, back + _seconds(node.offset), ranged)
        return
    if isinstance(node, promql_parser.MatrixSelector):
        back, ranged = back + _seconds(node.range), True
    elif isinstance(node, promql_parser.SubqueryExpr):
        back, ranged = back + _seconds(node.range) + _seconds(node.offset), True
    for child in children(node):
        yield from _walk(child, back, ranged)


def reads(expr: str) -> list[Read]:
    """Every selector of ``expr`` with how far back it reads: a range, a subquery's range
    and any offset add up (``sum_over_time(x[7d] offset 1h)`` reads 7d1h back)."""
    return list(_walk(parse(expr), 0))


def selects(read: Read, rule: Rule) -> bool:
    """Whether a selector can select a recording rule's series. Only labels the rule sets
    itself decide; any other label may hold anything, so it matches."""
    if read.name != rule.get("record"):
        return False
    static: Mapping[str, str] = rule.get("labels") or {}
    for label, op, value in read.matchers:
        if label == "__name__" or label not in static:
            continue
        have = str(static[label])
        if (op == "=" and have != value) or (op == "!=" and have == value):
            return False
        if op in ("=~", "!~"):
            try:
                hit = re.fullmatch(value, have) is not None
            except re.error:
                continue
            if hit != (op == "=~"):
                return False
    return True


_NONE: frozenset[int] = frozenset()


class Targets:
    """The recording rules a selector can select (see :func:`selects`), found through an
    index of the rules by record name and by the value of each label they set: a scan of
    every rule of a name per selector is quadratic in the SLOs (5,000 SLOs' rules hold
    some 40,000 rules of one name, read by 150,000 selectors)."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.rules = rules
        self.by_name: dict[str, list[int]] = {}
        # (name, label) -> value -> rules setting it; (name, label) -> rules not setting it
        self.by_value: dict[tuple[str, str], dict[str, set[int]]] = {}
        self.unset: dict[tuple[str, str], set[int]] = {}
        self._found: dict[tuple[str, tuple[tuple[str, str, str], ...]], list[int]] = {}
        for i, rule in enumerate(rules):
            name = str(rule["record"])
            self.by_name.setdefault(name, []).append(i)
            for label, value in (rule.get("labels") or {}).items():
                self.by_value.setdefault((name, label), {}).setdefault(str(value), set()).add(i)
        for (name, label), values in self.by_value.items():
            setting = set().union(*values.values())
            self.unset[(name, label)] = {i for i in self.by_name[name] if i not in setting}

    def __call__(self, read: Read) -> list[int]:
        key = (read.name, read.matchers)  # a tile's offsets repeat one selector
        found = self._found.get(key)
        if found is None:
            found = self._found[key] = self._find(read)
        return found

    def _find(self, read: Read) -> list[int]:
        # Each equality matcher on a label some rule sets admits the rules setting that
        # value and those not setting the label; the rules every such matcher admits,
        # intersected from the smallest pool up, are then checked in full.
        pools = []
        for label, op, value in read.matchers:
            values = self.by_value.get((read.name, label))
            if op == "=" and values is not None:
                pools.append((values.get(value, _NONE), self.unset[(read.name, label)]))
        if not pools:
            candidates: Iterable[int] = self.by_name.get(read.name, [])
        else:
            pools.sort(key=lambda pool: len(pool[0]) + len(pool[1]))
            have, lack = pools[0]
            admitted = have | lack
            for have, lack in pools[1:]:
                admitted = (admitted & have) | (admitted & lack) if lack else admitted & have
            candidates = sorted(admitted)
        return [i for i in candidates if selects(read, self.rules[i])]


@dataclass
class _Node:
    group: int
    rule: Rule
    deps: list[tuple[int, int]] = field(default_factory=list)  # (node, how far back)


def _cyclic(nodes: Sequence[_Node]) -> set[int]:
    """Nodes on a dependency cycle (a rule reading its own series included)."""
    reach: dict[int, set[int]] = {}

    def reachable(start: int) -> set[int]:
        if start not in reach:
            seen: set[int] = set()
            todo = [d for d, _ in nodes[start].deps]
            while todo:
                n = todo.pop()
                if n not in seen:
                    seen.add(n)
                    todo += [d for d, _ in nodes[n].deps]
            reach[start] = seen
        return reach[start]

    return {i for i in range(len(nodes)) if i in reachable(i)}


def plan(groups: Sequence[Rule], *, every_rule: bool = False) -> Plan:
    """The recording rules of ``groups`` whose history other rules read, in layers; with
    ``every_rule``, every recording rule (the order in which to evaluate them all)."""
    nodes: list[_Node] = []
    for g, group in enumerate(groups):
        nodes += [_Node(g, rule) for rule in group.get("rules", []) if "record" in rule]
    targets = Targets([node.rule for node in nodes])
    read_by_rule = {
        id(r): reads(str(r["expr"])) for group in groups for r in group.get("rules", [])
    }
    for node in nodes:
        for read in read_by_rule[id(node.rule)]:
            node.deps += [(t, read.back) for t in targets(read)]
    cyclic = _cyclic(nodes)
    index = {id(node.rule): i for i, node in enumerate(nodes)}

    # Seeds: what any rule (alerts too) reads into the past, unless the reader is one of
    # the rules that cannot be rebuilt: its own history is missing anyway.
    lookback: dict[int, int] = dict.fromkeys(range(len(nodes)), 0) if every_rule else {}
    for group in groups:
        for rule in group.get("rules", []):
            if index.get(id(rule)) in cyclic:
                continue
            for read in read_by_rule[id(rule)]:
                for t in targets(read):
                    if read.back > 0:
                        lookback[t] = max(lookback.get(t, 0), read.back)
    # Closure: a rule rebuilt over a span needs what it reads over that span and more.
    changed = True
    while changed:
        changed = False
        for i in list(lookback):
            if i in cyclic:
                continue
            for dep, back in nodes[i].deps:
                need = lookback[i] + back
                if dep not in cyclic and need > lookback.get(dep, -1):
                    lookback[dep], changed = need, True
                elif dep in cyclic and dep not in lookback:
                    lookback[dep], changed = 0, True

    skipped: dict[int, str] = {
        i: "it reads its own earlier values (a running total), which promtool, evaluating "
        "each instant on its own, cannot rebuild; it counts from when the rules were loaded"
        for i in lookback
        if i in cyclic
    }
    # A rule that needs one that cannot be rebuilt cannot be rebuilt either.
    changed = True
    while changed:
        changed = False
        for i in lookback:
            if i in skipped:
                continue
            bad = next((d for d, _ in nodes[i].deps if d in skipped), None)
            if bad is not None:
                skipped[i] = f"it reads {nodes[bad].rule['record']}, which cannot be rebuilt"
                changed = True

    layer: dict[int, int] = {}

    def layer_of(i: int) -> int:
        if i not in layer:
            layer[i] = 1 + max((layer_of(d) for d, _ in nodes[i].deps), default=-1)
        return layer[i]

    # Each layer's rules by group, in the groups' order and each group's rules' order.
    by_layer: dict[int, dict[int, list[int]]] = {}
    for i in sorted(lookback):
        if i not in skipped:
            by_layer.setdefault(layer_of(i), {}).setdefault(nodes[i].group, []).append(i)
    layers: list[list[Planned]] = []
    for depth in sorted(by_layer):
        out = []
        for g, mine in sorted(by_layer[depth].items()):
            group = groups[g]
            first = nodes[mine[0]].rule
            probe = str(first["record"])
            if first.get("labels"):
                probe += "{" + label_matchers({k: str(v) for k, v in first["labels"].items()}) + "}"
            out.append(
                Planned(
                    group=str(group["name"]),
                    interval=round(parse_duration(str(group["interval"]))),
                    rules=tuple(nodes[i].rule for i in mine),
                    layer=depth,
                    lookback=max(lookback[i] for i in mine),
                    probe=probe,
                )
            )
        layers.append(out)
    return Plan(
        layers=tuple(tuple(layer_) for layer_ in layers),
        skipped=tuple(
            Skipped(str(groups[nodes[i].group]["name"]), str(nodes[i].rule["record"]), why)
            for i, why in sorted(skipped.items())
        ),
    )
