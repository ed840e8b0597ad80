"""HTML for the web page's views: jinja2 templates in web/templates/, autoescaped, so no
SLO name, description, label value or runbook URL can add markup or script."""

from __future__ import annotations

from functools import cache

import jinja2

from sloengine.web.views import Detail, Overview


@cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("sloengine.web", "templates"),
        autoescape=True,  # every template is HTML, whatever its file name ends with
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_overview(view: Overview) -> str:
    return (
        _environment()
        .get_template("overview.html.j2")
        .render(view=view, evaluated_at=view.evaluated_at)
    )


def render_detail(view: Detail) -> str:
    return (
        _environment()
        .get_template("detail.html.j2")
        .render(view=view, evaluated_at=view.evaluated_at)
    )


def render_error(code: int, message: str) -> str:
    return (
        _environment()
        .get_template("error.html.j2")
        .render(code=code, message=message, evaluated_at="")
    )
