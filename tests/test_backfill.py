"""`sloengine backfill` against a real Prometheus and promtool: the first day after the
rules are loaded, with and without the backfilled history, against the exact policy.

Three days of raw history, then the rules go live at T0 and run for a day. A ten-minute
spike of errors starts just after T0: too small for the true 1h burn to reach 14.4x, but
the only minutes a freshly loaded rule's 1h window has seen. Twelve hours later a real
outage pages every policy. The rules' life after T0 is played by promtool evaluating
every recording rule over the day, layer by layer (each reads the layers before it from
a Prometheus holding them, as the live rules would); the alerts are their expressions,
evaluated over the day. The exact policy is the backtest's replay of the raw series.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import faultproxy
import pytest
from click.testing import CliRunner

from sloengine import lookback, rules
from sloengine.backtest.history import backtest
from sloengine.cli import cli
from sloengine.detectors import rules as detector_rules
from sloengine.durations import format_duration
from sloengine.loading import load_specs
from sloengine.prometheus import Prometheus
from sloengine.sim import launch
from sloengine.sim.backfill import backfill, evaluate_rules, write_series
from sloengine.sim.traffic import Baseline, Incident, Scenario, Traffic

HOUR, DAY, STEP = 3600, 86400, 60
END = int(time.time()) // HOUR * HOUR - HOUR
T0 = END - DAY  # the rules go live
START = T0 - 3 * DAY  # raw history begins
SPIKE = (T0 + 15 * 60, T0 + 25 * 60)  # 5% errors: true 1h burn 8.5x, under 14.4x
OUTAGE = (T0 + 12 * HOUR, T0 + 12 * HOUR + 20 * 60)  # 30% errors: every policy fires

SLO = """\
apiVersion: sloengine/v1
service: rollout
metrics: {preset: llm, selector: 'service="rollout"'}
window: 30d
slos:
  - name: availability
    objective: 99.9
    sli: {success_rate: {}}
detectors:  # its hourly baseline sums its recorded 5m rates: a second layer to rebuild
  - {name: cost, kind: cost_per_call, window: 1h, baseline: 1d, max_increase: 50%}
"""

Key = tuple[str, str, str]  # severity, long window, short window
Episodes = dict[Key, list[tuple[float, float | None]]]


def scenario() -> Scenario:
    return Scenario(
        origin=START,
        traffic=Traffic(base_rps=5),
        providers=1,
        models_per_provider=1,
        features=1,
        labels={"service": "rollout"},
        incidents=(
            Incident(SPIKE[0], SPIKE[1], "error_rate", 0.05),
            Incident(OUTAGE[0], OUTAGE[1], "error_rate", 0.3),
        ),
        baseline=Baseline(error_rate=0.0002),
    )


@dataclass
class World:
    slo_file: str
    groups: list[dict[str, Any]]
    exact: Episodes
    without: Episodes
    with_backfill: Episodes
    cli_output: str
    out: Path
    base_samples_around_t0: list[float]  # the times of a base series' samples
    baselines: list[tuple[float, float]]  # a rebuilt baseline and its expression's value


def live_rules(tsdb: Path, groups: list[dict[str, Any]], work: Path) -> None:
    """Every recording rule from T0 to END, as the live server would record them: each
    dependency layer is evaluated by a Prometheus holding the layers before it (a range
    query of each rule at its group's interval, which is what promtool's rule backfill
    runs, though not through it: this is the reference `sloengine backfill` is held to),
    and added to the TSDB with promtool as one block per 2h."""
    for depth, layer in enumerate(lookback.plan(groups, every_rule=True).layers):
        rules = [(rule, planned.interval) for planned in layer for rule in planned.rules]
        with launch.prometheus_server(tsdb) as url:
            series, _ = evaluate_rules(url, rules, T0, END)
        write_series(series, tsdb, work / f"layer-{depth}")


def alert_episodes(url: str, groups: list[dict[str, Any]]) -> Episodes:
    """Each alert pair's firing spells from T0 to END, from its expression, evaluated at
    its group's own instants (those of the recorded series it reads)."""
    prom = Prometheus(url, timeout=60)
    out: Episodes = {}
    for group in groups:
        first = next(r for r in group["rules"] if "record" in r)
        recorded = prom.query(f'timestamp({first["record"]}{{slo="availability"}})', at=END)
        offset = recorded[0].value % STEP
        for rule in group["rules"]:
            if "alert" not in rule:
                continue
            labels = rule["labels"]
            key = (labels["severity"], labels["long_window"], labels["short_window"])
            firing = sorted(
                t - offset
                for s in prom.query_range(rule["expr"], T0 + offset, END + offset, STEP)
                for t, _ in s.points
            )
            spells: list[tuple[float, float | None]] = []
            for t in firing:
                if spells and spells[-1][1] == t:
                    spells[-1] = (spells[-1][0], t + STEP)
                else:
                    spells.append((t, t + STEP))
            out[key] = [(a, None if b is not None and b > END else b) for a, b in spells]
    return out


def exact_episodes(url: str, slo_file: str) -> Episodes:
    obj = load_specs([slo_file])[0].objectives[0]
    (replay,) = backtest(Prometheus(url, timeout=60), [obj], T0, END, STEP)
    out: Episodes = {}
    for e in replay.episodes:
        out.setdefault((e.severity.value, e.long_window, e.short_window), []).append(
            (e.fired_at, e.resolved_at)
        )
    return out


def detector_baseline_expr(slo_file: str) -> str:
    (service,) = load_specs([slo_file])
    return next(
        str(r["expr"])
        for g in detector_rules.rule_groups(service.detectors)
        for r in g["rules"]
        if r.get("record") == "sloengine:detector_denominator:baseline"
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # promtool writes a block per rule and 2h and syncs each: memory is faster than disk.
    shm = Path("/dev/shm")
    work = Path(tempfile.mkdtemp(dir=shm)) if shm.is_dir() else tmp_path_factory.mktemp("bf")
    slo_file = work / "rollout.yaml"
    slo_file.write_text(SLO)
    (service,) = load_specs([str(slo_file)])
    # The groups the alerts are in (the budget group's SLO window is read by none).
    groups = [g for g in rules.rule_groups(service) if any("alert" in r for r in g["rules"])]
    raw = work / "raw"
    backfill(scenario(), raw, START, END, STEP)

    # Without the backfill: the rules' history starts at T0.
    plain = work / "plain"
    shutil.copytree(raw, plain)
    live_rules(plain, groups, work / "plain-work")
    with launch.prometheus_server(plain) as url:
        without = alert_episodes(url, groups)
        exact = exact_episodes(url, str(slo_file))

    # With it: the rules that read raw series only (layer 0: the base rates, the raw 1h
    # tile, a detector's 5m rates) go live at T0; `sloengine backfill --until T0` then
    # finds their first sample and rebuilds every layer's history before it; the rules
    # reading that history (roll-up tiles, baselines, burn rates, alerts) run from T0, as
    # when the rules are loaded after the backfill (a roll-up recorded before its history
    # was there would stay short until it ages out of the windows that read it).
    filled = work / "filled"
    shutil.copytree(raw, filled)
    base_groups: list[dict[str, Any]] = [
        {"name": p.group, "interval": format_duration(p.interval), "rules": list(p.rules)}
        for p in lookback.plan(groups).groups
        if p.layer == 0
    ]
    live_rules(filled, base_groups, work / "filled-base")
    out = work / "blocks"
    with launch.prometheus_server(filled) as url:
        result = CliRunner().invoke(
            cli,
            [
                *("backfill", str(slo_file), "--prometheus", url, "--out", str(out)),
                *("--since", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START))),
                *("--until", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(T0))),
            ],
        )
    assert result.exit_code == 0, result.output
    for block in out.iterdir():
        shutil.copytree(block, filled / block.name)

    def key(rule: dict[str, Any]) -> tuple[str, str]:
        return str(rule.get("record")), json.dumps(rule.get("labels") or {}, sort_keys=True)

    base = {key(r) for g in base_groups for r in g["rules"]}
    everything_else = [
        {**g, "rules": [r for r in g["rules"] if "alert" in r or key(r) not in base]}
        for g in groups
    ]
    live_rules(filled, everything_else, work / "filled-rest")
    with launch.prometheus_server(filled) as url:
        with_backfill = alert_episodes(url, groups)
        prom = Prometheus(url)
        (stamps,) = prom.query_range(
            'timestamp(sloengine:sli_bad:rate5m{slo="availability"})', T0 - 600, T0 + 600, 1
        )
        # The hourly baseline's own instants, and its expression evaluated at each.
        baseline = 'sloengine:detector_denominator:baseline{detector="cost"}'
        (when,) = prom.query_range(f"timestamp({baseline})", T0 - 6 * HOUR, T0, STEP)
        expr = detector_baseline_expr(str(slo_file))
        baselines = [
            (prom.query(baseline, at=t)[0].value, prom.query(expr, at=t)[0].value)
            for t in sorted({v for _, v in when.points})
        ]
    built = World(
        str(slo_file),
        groups,
        exact,
        without,
        with_backfill,
        result.output,
        out,
        sorted({v for _, v in stamps.points}),
        baselines,
    )
    try:
        yield built
    finally:
        shutil.rmtree(work, ignore_errors=True)


def pages(episodes: Episodes, until: float) -> list[tuple[Key, float]]:
    return sorted(
        (key, fired)
        for key, spells in episodes.items()
        for fired, _ in spells
        if key[0] == "page" and fired < until
    )


def test_without_the_backfill_the_spike_after_loading_pages_though_the_exact_policy_does_not(
    world: World,
) -> None:
    first_hour = T0 + HOUR
    assert pages(world.exact, first_hour) == []
    spurious = pages(world.without, first_hour)
    assert spurious, world.without
    assert all(SPIKE[0] <= fired <= SPIKE[1] + 5 * 60 for _, fired in spurious)


def test_with_the_backfill_no_page_in_the_first_hour_that_the_exact_policy_would_not_send(
    world: World,
) -> None:
    assert pages(world.with_backfill, T0 + HOUR) == pages(world.exact, T0 + HOUR) == []


def test_with_the_backfill_every_alert_fires_and_resolves_with_the_exact_policy_over_the_first_day(
    world: World,
) -> None:
    assert pages(world.exact, END), "the outage pages"
    assert set(world.with_backfill) >= set(world.exact)
    for key in world.with_backfill:
        got, want = world.with_backfill[key], world.exact.get(key, [])
        assert len(got) == len(want), (key, got, want)
        for (fired, resolved), (exact_fired, exact_resolved) in zip(got, want, strict=True):
            assert abs(fired - exact_fired) <= STEP, (key, got, want)
            if exact_resolved is None or resolved is None:
                assert resolved == exact_resolved, (key, got, want)
            else:
                assert abs(resolved - exact_resolved) <= STEP, (key, got, want)


def test_the_backfill_stops_before_the_rules_first_live_sample(world: World) -> None:
    # One sample a minute on each side of T0, and one junction where the backfill's
    # instants meet the live rules': the two never overlap, and leave no gap.
    times = world.base_samples_around_t0
    assert min(times) < T0 < max(times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(0 < g <= STEP for g in gaps), gaps
    assert sum(1 for g in gaps if g < STEP - 1) <= 1, gaps
    spans = re.findall(
        r"^sloengine:rollout:availability: .* from (\S+) to (\S+)$", world.cli_output, re.M
    )
    assert spans, world.cli_output
    minutes = {time.strftime("%Y-%m-%dT%H:%M+00:00", time.gmtime(T0 + d)) for d in (-60, 0)}
    assert {end for _, end in spans} <= minutes, world.cli_output
    assert "next: move them into the server's data directory" in world.cli_output
    assert all(
        json.loads((block / "meta.json").read_text())["ulid"] for block in world.out.iterdir()
    )


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["backfill", *args])


def test_without_promtool_it_says_so_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slo.yaml").write_text(SLO)
    monkeypatch.setattr(launch, "PROMTOOL", str(tmp_path / "no-promtool"))
    result = run(str(tmp_path / "slo.yaml"), "--prometheus", "http://127.0.0.1:9", "--out", "x")
    assert result.exit_code == 2
    assert "error: promtool not found" in result.output
    assert "apt-get install prometheus" in result.output
    assert "Traceback" not in result.output


def test_a_bad_path_is_the_usual_clear_error(tmp_path: Path) -> None:
    result = run(str(tmp_path / "missing.yaml"), "--prometheus", "http://127.0.0.1:9", "--out", "x")
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "missing.yaml" in result.output
    assert not (tmp_path / "x").exists()


def test_a_non_empty_out_is_refused_and_left_alone(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(SLO)
    out = tmp_path / "blocks"
    out.mkdir()
    (out / "keep").write_text("mine")
    result = run(
        str(tmp_path / "slo.yaml"), "--prometheus", "http://127.0.0.1:9", "--out", str(out)
    )
    assert result.exit_code == 2
    assert "exists and is not an empty directory" in result.output
    assert [p.name for p in out.iterdir()] == ["keep"]


def test_an_unreachable_prometheus_exits_3_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "slo.yaml").write_text(SLO)
    out = tmp_path / "blocks"
    result = run(
        str(tmp_path / "slo.yaml"), "--prometheus", "http://127.0.0.1:9", "--out", str(out)
    )
    assert result.exit_code == 3, result.output
    assert "error: http://127.0.0.1:9 is unreachable" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slo.yaml"]


def test_a_detector_baseline_rebuilt_in_a_second_layer_is_its_expression_over_the_rebuilt_rates(
    world: World,
) -> None:
    # Read through a local Prometheus holding the first layer's blocks, the rest remote.
    assert len(world.baselines) >= 5
    for got, want in world.baselines:
        assert got == pytest.approx(want, rel=1e-9)


def test_credentials_come_from_the_environment_and_never_show(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "slo.yaml").write_text(SLO)
    monkeypatch.setenv("SLOENGINE_PROMETHEUS_TOKEN", "backfill-t0ken")
    out = tmp_path / "blocks"
    with faultproxy.serve("http://127.0.0.1:9") as (proxy, url):
        proxy.mode = "echo-auth"  # answers 401 quoting the Authorization it was sent
        result = run(str(tmp_path / "slo.yaml"), "--prometheus", url, "--out", str(out))
    assert result.exit_code == 3, result.output
    assert "Bearer [redacted]" in result.output
    assert "backfill-t0ken" not in result.output
    assert not out.exists()
