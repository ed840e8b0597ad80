"""The web page's core (views, charts, HTML) as tables, and its shell without Prometheus.

The browser, a real Prometheus and `status --format json` are in test_web_browser.py.
"""

from __future__ import annotations

import dataclasses
import io
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import ROOT

from sloengine.conventions import Severity
from sloengine.evaluate import Evaluator
from sloengine.explain import explain, render_text
from sloengine.loading import load_specs
from sloengine.model import Objective, Service
from sloengine.notify import ConsoleNotifier
from sloengine.prometheus import Prometheus
from sloengine.scheduler import Engine
from sloengine.server import serve
from sloengine.sim.launch import free_port
from sloengine.state import Store, incident_notes, open_read_only
from sloengine.status import Health, PairState, Status
from sloengine.web.app import Site, engine_site
from sloengine.web.charts import Level, Line, chart
from sloengine.web.pages import render_detail, render_overview
from sloengine.web.views import (
    Filters,
    Note,
    RatePoint,
    charts,
    definition,
    detail,
    incidents,
    overview,
    row,
    safe_url,
)

CHAT = str(ROOT / "slos" / "chat-assistant.yaml")
NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOSTILE = '<script>alert(1)</script><img src=x onerror="alert(2)">'


@pytest.fixture(scope="module")
def service() -> Service:
    (svc,) = load_specs([CHAT])
    return svc


def objectives(service: Service) -> dict[tuple[str, str], Objective]:
    return {o.key: o for o in service.objectives}


def status(slo: str, state: str = "ok", **changes: object) -> Status:
    base = Status(
        service="chat-assistant",
        slo=slo,
        kind="success_rate",  # type: ignore[arg-type]
        objective=99.5,
        window="30d",
        sli=0.996,
        error_budget_remaining=0.2,
        budget_remaining={"events": 251.0, "outage_minutes": 43.0},
        burn_rates={"1h": 20.0, "5m": 31.0},
        state=state,  # type: ignore[arg-type]
        exhaustion_at="2026-01-01T07:00:00+00:00",
        health=Health.OK,
        mode="recorded",  # type: ignore[arg-type]
        pairs=[PairState(Severity.PAGE, "1h", "5m", 14.4, 20.0, 31.0, state == "page")],
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        pytest.param(
            [("a", "ok"), ("b", "page"), ("c", "ticket")],
            ["b", "c", "a"],
            id="pages come first, then tickets, then the rest",
        ),
        pytest.param(
            [("b", "ok"), ("a", "ok")],
            ["a", "b"],
            id="SLOs in the same state are in name order",
        ),
    ],
)
def test_the_overview_shows_firing_slos_first(
    service: Service, states: list[tuple[str, str]], expected: list[str]
) -> None:
    view = overview([status(n, s) for n, s in states], objectives(service), Filters(), NOW)
    assert [r.slo for r in view.rows] == expected
    assert view.evaluated_at == "2026-01-01T00:00:00+00:00"


def test_an_unreadable_slo_comes_before_healthy_ones_in_the_same_state(service: Service) -> None:
    rows = [status("a"), status("b", health=Health.UNAVAILABLE, error="down")]
    assert [r.slo for r in overview(rows, objectives(service), Filters(), NOW).rows] == ["b", "a"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        pytest.param({}, ["availability", "grouped", "ttft"], id="no filter shows everything"),
        pytest.param({"state": ["page"]}, ["availability"], id="state keeps one state"),
        pytest.param(
            {"state": ["bogus"]},
            ["availability", "grouped", "ttft"],
            id="an unknown state is no filter",
        ),
        pytest.param({"service": ["other"]}, [], id="service keeps one service"),
        pytest.param(
            {"q": ["first TOKEN"]},
            ["ttft"],
            id="text matches the description, any case, every word",
        ),
        pytest.param({"q": ["openai"]}, ["grouped"], id="text matches a group's label values"),
    ],
)
def test_the_overview_filters(
    service: Service, query: dict[str, list[str]], expected: list[str]
) -> None:
    rows = [
        status("availability", "page"),
        status("ttft"),
        status("grouped", group={"provider": "openai"}),
    ]
    view = overview(rows, objectives(service), Filters.from_query(query), NOW)
    assert [r.slo for r in view.rows] == expected
    assert view.total == 3
    assert view.counts == {"page": 1, "ticket": 0, "ok": 2}


def test_a_row_shows_status_numbers_as_text_and_keeps_the_exact_values(service: Service) -> None:
    r = row(status("availability", "page"), objectives(service)[("chat-assistant", "availability")])
    assert (r.state, r.state_text, r.sli, r.sli_value) == ("page", "PAGE", "99.600%", "0.996")
    assert r.objective == "99.5% over 30d"
    assert (r.budget, r.budget_units) == ("20.0% left", "251 bad events, 43.0 min of full outage")
    assert (r.budget_value, r.budget_fill) == ("0.2", 20.0)
    assert r.exhaustion == "2026-01-01 07:00 UTC"
    (p,) = r.pairs
    assert (p.windows, p.long_burn, p.short_burn, p.threshold, p.active, p.fill) == (
        "1h / 5m",
        "20.00x",
        "31.00x",
        "14.40x",
        True,
        100.0,
    )


def test_a_spend_slo_is_in_dollars_with_its_month_forecast(service: Service) -> None:
    spend = objectives(service)[("chat-assistant", "spend")]
    s = status(
        "spend",
        kind="spend",
        objective=None,
        sli=3059.126,
        budget_remaining={"dollars": 56940.87},
        forecast_usd=61000.0,
        forecast_crosses_at="2026-01-29T10:00:00+00:00",
    )
    r = row(s, spend)
    assert r.sli == "$3,059.13 spent"
    assert r.objective == f"${spend.budget_usd:,.2f} per 30d"
    assert (r.budget, r.budget_units) == ("20.0% left", "$56,940.87")
    assert (
        r.forecast
        == "$61,000.00 by the end of the month, over budget from 2026-01-29T10:00:00+00:00"
    )


def test_a_grouped_slo_has_one_row_per_group(service: Service) -> None:
    rows = [status("availability", group={"provider": p}) for p in ("openai", "anthropic")]
    view = overview(rows, objectives(service), Filters(), NOW)
    assert [r.group for r in view.rows] == ["provider=anthropic", "provider=openai"]


def test_an_exhausted_budget_says_so_and_an_unreadable_one_says_nothing(service: Service) -> None:
    assert row(status("a", error_budget_remaining=-0.5), None).exhaustion == "exhausted"
    assert row(status("a", exhaustion_at=None), None).exhaustion == "not at this rate"
    unread = row(status("a", error_budget_remaining=None, sli=None), None)
    assert (unread.exhaustion, unread.budget, unread.sli) == ("", "unknown", "no data")


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://runbooks.example/outage.md", True),
        ("http://grafana.local:3000/d/x", True),
        ("javascript:alert(1)", False),
        (" JavaScript:alert(1)", False),
        ("data:text/html,<script>", False),
        ("//evil.example/x", False),
        ("runbooks/outage.md", False),
    ],
)
def test_only_http_links_from_slo_files_become_links(url: str, ok: bool) -> None:
    assert safe_url(url) is ok


def hostile_objective(service: Service) -> Objective:
    obj = objectives(service)[("chat-assistant", "availability")]
    return dataclasses.replace(
        obj,
        description=HOSTILE,
        owner=HOSTILE,
        runbook_url="javascript:alert(3)",
        annotations={"dashboard": 'https://grafana.example/d/"><script>alert(4)</script>'},
    )


def test_hostile_names_descriptions_and_label_values_cannot_add_markup(service: Service) -> None:
    obj = hostile_objective(service)
    s = status("availability", "page", group={"feature": HOSTILE}, error=HOSTILE)
    pages = [
        render_overview(overview([s], {obj.key: obj}, Filters(text=HOSTILE), NOW)),
        render_detail(
            detail(
                obj,
                [s],
                explanation=HOSTILE,
                source=(1, HOSTILE),
                drawn=charts(obj, [], {}, NOW - obj.period, NOW - 86400, NOW),
                notes=[Note(HOSTILE, "firing", NOW, "page", 1, None, HOSTILE)],
                evaluated_at=NOW,
            )
        ),
    ]
    for html in pages:
        assert "<script" not in html
        assert "<img" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert 'href="javascript:' not in html
    assert 'href="https://grafana.example/d/&#34;&gt;&lt;script&gt;' in pages[1]


def test_the_definition_is_the_slo_as_written_in_its_file(service: Service) -> None:
    text = Path(CHAT).read_text(encoding="utf-8")
    first, body = definition(text, service.document, "availability")
    assert text.splitlines()[first - 1] == "  - name: availability"
    assert body.splitlines()[-1] == "    runbook: provider-outage.md"
    last = service.objectives[-1].name
    line, body = definition(text, service.document, last)
    lines = text.splitlines()
    end = line - 1 + len(body.splitlines())
    assert body == "\n".join(lines[line - 1 : end])
    # It stops where the file's next top-level key (or its comment) starts.
    rest = [x for x in lines[end:] if x.strip()]
    assert not rest or not rest[0].startswith(" ")
    assert definition(text, service.document, "no-such-slo") == (0, "")


def test_incident_history_groups_notifications_with_their_delivery() -> None:
    notes = [
        Note("svc/a/100", "firing", 100, "ticket", 1, 101, None),
        Note("svc/a/100", "escalated", 200, "page", 3, None, "channel_not_found"),
        Note("svc/a/100", "resolved", 300, "page", 0, None, None),
        Note("svc/a/900", "firing", 900, "page", 2, None, None),
    ]
    newest, older = incidents(notes)
    assert (newest.id, newest.resolved, [n.delivery for n in newest.notes]) == (
        "svc/a/900",
        "",
        ["pending after 2 attempts"],
    )
    assert (older.severity, older.opened, older.escalated, older.resolved) == (
        "page",
        "1970-01-01T00:01:40+00:00",
        "1970-01-01T00:03:20+00:00",
        "1970-01-01T00:05:00+00:00",
    )
    assert [n.delivery for n in older.notes] == [
        "delivered 1970-01-01T00:01:41+00:00",
        "not delivered: channel_not_found",
        "pending",
    ]


def test_a_chart_breaks_its_line_where_there_is_no_data_and_draws_every_level() -> None:
    points = [(0.0, 1.0), (1.0, None), (2.0, 2.0), (3.0, 3.0)]
    c = chart("t", [Line("x", points)], 0, 3, str, levels=[Level("page", 14.4)])
    (line,) = c.lines
    assert len(line.segments) == 2
    assert len(line.segments[1].split()) == 2
    assert line.last == "3.0"
    assert [lv.name for lv in c.levels] == ["page"]
    # The level sets the range: it is at the top, the points below it.
    assert c.levels[0].y == c.top
    assert not c.empty
    assert chart("t", [Line("x", [(0.0, None)])], 0, 1, str).empty


def test_the_charts_of_an_slo_read_sli_budget_and_burn_from_the_same_rates(
    service: Service,
) -> None:
    obj = objectives(service)[("chat-assistant", "availability")]
    points = [RatePoint(NOW - 300 * i, 0.01, 1.0) for i in range(3, -1, -1)]
    sli, budget, burn_chart = charts(
        obj, points, {3600: points, 300: points}, NOW - obj.period, NOW - 86400, NOW
    )
    assert sli.lines[0].last == "99.000%"
    assert budget.lines[0].last == "-100.0%"  # 1% bad on a 0.5% budget: twice spent
    assert [line.last for line in burn_chart.lines] == ["2.00x", "2.00x"]
    assert [lv.name for lv in burn_chart.levels] == [
        "page 1h/5m",
        "page 6h/30m",
        "ticket 1d/2h",
        "ticket 3d/6h",
    ]


def test_the_explanation_on_the_page_is_explains(service: Service) -> None:
    obj = objectives(service)[("chat-assistant", "availability")]
    view = detail(
        obj,
        [status("availability")],
        explanation=render_text(explain(obj), obj),
        source=(0, ""),
        drawn=[],
        notes=None,
        evaluated_at=None,
    )
    html = render_detail(view)
    assert "chat-assistant/availability: success_rate, objective 99.5% over 30d" in html
    assert "no state database: start with --state" in html
    assert view.evaluated_at == "not yet"


# The shell, with a Prometheus that refuses connections (nothing listens on the port).


@pytest.fixture()
def nowhere() -> Evaluator:
    return Evaluator(Prometheus(f"http://127.0.0.1:{free_port()}", timeout=2))


@pytest.fixture()
def site_url(service: Service, nowhere: Evaluator) -> Iterator[str]:
    httpd = serve("127.0.0.1", 0, None, lambda: (True, {}), Site([service], nowhere))
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()


def get(url: str) -> tuple[int, str, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(), dict(exc.headers)


def test_the_page_says_when_prometheus_cannot_be_read_and_forbids_scripts(site_url: str) -> None:
    code, html, headers = get(site_url + "/")
    assert code == 200
    assert html.count('data-state="ok"') >= 1
    assert "is unreachable" in html
    assert "script-src" not in headers["Content-Security-Policy"]
    assert headers["Content-Security-Policy"].startswith("default-src 'none'")
    code, html, _ = get(site_url + "/slo/chat-assistant/availability")
    assert code == 200
    assert "charts unavailable" in html


@pytest.mark.parametrize(
    ("path", "code", "says"),
    [
        ("/slo/chat-assistant/nope", 404, "no SLO chat-assistant/nope is loaded here"),
        ("/slo/%3Cscript%3E/x", 404, "no SLO &lt;script&gt;/x is loaded here"),
        ("/admin", 404, "nothing at /admin"),
        ("/?at=yesterday", 400, "at= is a Unix time in seconds"),
    ],
)
def test_unknown_pages_and_bad_parameters_get_an_error_page(
    site_url: str, path: str, code: int, says: str
) -> None:
    got, html, _ = get(site_url + path)
    assert (got, says in html) == (code, True)


def test_the_page_only_answers_get(site_url: str) -> None:
    request = urllib.request.Request(site_url + "/", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 501


def test_run_serves_its_last_cycle_and_its_incident_history(
    service: Service, nowhere: Evaluator, tmp_path: Path
) -> None:
    store = Store(tmp_path / "state.db")
    engine = Engine(
        list(service.objectives), nowhere, store, ConsoleNotifier(io.StringIO()), clock=lambda: NOW
    )
    engine.cycle()
    httpd = serve("127.0.0.1", 0, None, engine.health, engine_site([service], engine))
    try:
        code, html, _ = get(f"http://127.0.0.1:{httpd.server_port}/")
    finally:
        httpd.shutdown()
    assert code == 200
    assert "2026-01-01T00:00:00+00:00" in html  # the cycle's time, not the request's
    assert html.count('class="health health-unavailable"') == len(service.objectives)
    store.close()


def test_a_state_database_is_read_without_its_lock_or_a_write(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    store = Store(path)  # a running scheduler holds the lock
    with store.transaction() as db:
        store.enqueue(db, "firing", "svc/a/1", {"severity": "page"})  # type: ignore[arg-type]
        store.enqueue(db, "firing", "svc/ab/2", {"severity": "page"})  # type: ignore[arg-type]
    reader = open_read_only(path)
    (note,) = incident_notes(reader, "svc/a/")
    assert note[:2] == ("svc/a/1", "firing") and note[3] == "page"
    with pytest.raises(Exception, match="readonly"):
        reader.execute("DELETE FROM outbox")
    assert store.notes("svc/ab/")[0][0] == "svc/ab/2"
    store.close()
