"""The simulated series as text: OpenMetrics for promtool, the text format for scrapes,
and the one parser of Prometheus's text exposition the toolkit reads back."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TextIO

from sloengine.sim.traffic import Family, Model, Scenario, families, series_at

Labels = tuple[tuple[str, str], ...]  # sorted (name, value) pairs
Exposition = dict[tuple[str, Labels], float]


def sample_times(start: int, end: int, step: int) -> range:
    """start, start + step, ... <= end (unix s)."""
    if step <= 0:
        raise ValueError("step must be a positive number of seconds")
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return range(start, end + 1, step)


def format_value(value: float) -> str:
    """Integer counters as integers; float sums in their shortest exact spelling."""
    return str(value) if isinstance(value, int) else repr(value)


def _header(family: Family) -> str:
    # OpenMetrics names a counter family without its _total suffix; promtool stores
    # the sample names verbatim, so Prometheus sees exactly llm_requests_total.
    name = family.name.removesuffix("_total") if family.kind == "counter" else family.name
    return f"# TYPE {name} {family.kind}\n# HELP {name} {family.help}\n"


def write_samples(model: Model, fh: TextIO, times: Sequence[int]) -> int:
    """Stream the samples at ``times`` family by family, series by series; sample count."""
    origin = model.scenario.origin
    if times and times[0] < origin:
        raise ValueError(f"start {times[0]} is before the scenario origin {origin}")
    # The shape integral is shared by every series: compute it once per timestamp.
    rs = [model.shape.integral(t) for t in times]
    stamps = [f" {t}\n" for t in times]
    written = 0
    for family in families(model):
        fh.write(_header(family))
        for combo in model.combos:
            names = family.sample_names(combo)
            # A histogram point (buckets, count, sum at one time) stays together; other
            # label sets (status="ok" and "error") each get their whole history in turn,
            # since OpenMetrics forbids interleaving the samples of different Metrics.
            metrics = (
                [range(len(names))]
                if family.kind == "histogram"
                else [[i] for i in range(len(names))]
            )
            for metric in metrics:
                buf: list[str] = []
                for t, r, stamp in zip(times, rs, stamps, strict=True):
                    values = family.values(combo, t, r)
                    buf += [names[i] + format_value(values[i]) + stamp for i in metric]
                    if len(buf) >= 8192:
                        written += len(buf)
                        fh.write("".join(buf))
                        buf.clear()
                written += len(buf)
                fh.write("".join(buf))
    fh.write("# EOF\n")
    return written


def write_openmetrics(scenario: Scenario, fh: TextIO, start: int, end: int, step: int) -> int:
    """Write samples at start, start + step, ... <= end (unix s) as OpenMetrics text.

    Families and series are contiguous and each series' timestamps ascend, as the
    OpenMetrics spec asks (promtool 2.42 would also take them interleaved, but silently
    drops a sample that is older than the previous one of its series). Memory use does
    not grow with the range. Returns the number of samples written.
    """
    return write_samples(scenario.compiled, fh, sample_times(start, end, step))


def exposition(scenario: Scenario, t: float) -> str:
    """Every series at ``t`` in the Prometheus text format (what a scrape reads)."""
    return "".join(f"{key} {format_value(v)}\n" for key, v in series_at(scenario, t).items())


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> Exposition:
    """Text exposition (e.g. Prometheus's own /metrics) keyed by (name, sorted labels)."""
    out = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or line.startswith("#"):
            continue
        name, labels, value = match.groups()
        pairs = tuple(sorted(_LABEL.findall(labels or "")))
        out[(name, pairs)] = float(value)
    return out
